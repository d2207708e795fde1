"""The pull-request review comment (Markdown) for a CI run.

Written for the submitter: per folder the verdict comes first, then what must change, then the
evidence (file:line, rule, source), then the command that reproduces the review. The first line is
an HTML marker a bot can search for to update its previous comment instead of adding another.
Submission text reaches the template only through the escaping filters (reports/escape.py).
"""

from __future__ import annotations

import re
from typing import Any

from auditor import __version__
from reports.render import environment, review_context

MARKER = "<!-- parameter-golf-auditor:ci -->"


def citation_label(url: str) -> str:
    """Short link text for a rule source: `PR #1017`, `issue #897`, `README`, else the host path."""
    m = re.search(r"/pull/(\d+)", url)
    if m:
        return f"PR #{m.group(1)}"
    m = re.search(r"/issues/(\d+)", url)
    if m:
        return f"issue #{m.group(1)}"
    if url.lower().split("#")[0].endswith("readme.md"):
        return "README" + (" §" + url.split("#", 1)[1] if "#" in url else "")
    return "source"


def _link_ok(url: str) -> bool:
    """Citations come from our own rulebook, but a link that would break the Markdown is dropped."""
    return url.startswith("https://") and not re.search(r"[\s()<>\[\]]", url)


def folder_context(fa) -> dict[str, Any]:
    """`fa`: an auditor.ci.gate.FolderAudit."""
    ctx = review_context(fa.result)
    rules = {r.id: r for r in fa.result.rules}
    cites = {rid: [(citation_label(u), u) for u in r.citations if _link_ok(u)] for rid, r in rules.items()}
    front = fa.frontier
    ref = front.reference
    ctx.update({
        "path": fa.change.path,
        "status": fa.change.status,
        "emoji": fa.verdict.row.emoji,
        "verdict_words": fa.verdict.row.words,
        "citations": cites,
        "repro": fa.repro,
        "frontier": {
            "source": front.source,
            "folder": front.folder,
            "name": front.folder.rsplit("/", 1)[-1] if front.folder else None,
            "label": None if ref is None else ref.label,
            "val_bpb": None if ref is None else ref.val_bpb,
            "seeds": 0 if ref is None else len(ref.seed_bpbs),
            "candidates": front.candidates,
            "merged_at": front.merged_at,
            "merged_after_pr": fa.frontier_after_pr,
        },
    })
    return ctx


def comment_context(run) -> dict[str, Any]:
    """`run`: an auditor.ci.gate.CiRun."""
    opened = run.opened_at
    folders = [folder_context(fa) for fa in run.folders]
    repo = run.repo_findings
    return {
        "marker": MARKER,
        "verdict": run.verdict,
        "emoji": run.verdict.row.emoji,
        "verdict_words": run.verdict.row.words,
        "verdict_icon": run.verdict.row.icon,
        "exit_code": run.exit_code,
        "strict": run.strict,
        "gauntlet": run.gauntlet,
        "fail_on": list(run.fail_on),
        "fail_on_hits": run.fail_on_hits(),
        "base_sha": run.base_sha,
        "head_sha": run.head_sha,
        "pr": run.pr,
        "folders": folders,
        "opened_at": opened,
        "deleted": [f.path for f in run.discovery.folders if f.status == "deleted"],
        "repo_fail": [f for f in repo if f.severity == "fail"],
        "repo_warn": [f for f in repo if f.severity == "warn"],
        "repo_info": [f for f in repo if f.severity == "info"],
        "command": run.command,
        "version": __version__,
    }


def render_comment(run) -> str:
    text = environment().get_template("comment.md.j2").render(**comment_context(run))
    return re.sub(r"\n{3,}", "\n\n", text)
