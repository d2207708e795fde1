"""`auditor ci`: audit the record folders a pull request adds or changes.

Split by job: `git` talks to git (argument lists, never a shell), `discover` turns a diff into record
folders and repository-level findings, `frontier` finds the best merged record on the base revision,
`gate` runs the audits and decides the exit code, `comment` writes the review comment.
Nothing here touches the user's working tree: revisions are read with `git ls-tree`/`git cat-file` and
exported into a temporary folder.
"""
