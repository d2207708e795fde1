"""Read-only git plumbing for `auditor ci`.

Every call is `git` with an argument list (no shell) and `--literal-pathspecs`, so folder names with
spaces, globs or leading dashes are data, not syntax. Revisions are exported with `ls-tree` +
`cat-file` rather than `git archive` or a worktree: no filters, attributes or hooks from the pull
request run, and the user's working tree and `.git` are never written.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_EXPORT_ENTRIES = 20_000
# Blobs above this are exported as sparse files of the right size: the loader never reads files this
# large (auditor.load.loader.MAX_TEXT_BYTES), but size checks must still see them.
SPARSE_ABOVE = 64 * 1024 * 1024


class GitError(Exception):
    """git could not answer: not a repository, unknown revision, git missing."""


@dataclass(frozen=True)
class Change:
    status: str  # A (added), M (modified), D (deleted), T (type change)
    path: str  # repository-relative POSIX path


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    kind: str  # blob | tree | commit
    sha: str
    size: int | None
    path: str


@dataclass
class ExportReport:
    """What an export left out, so the audit can say so."""

    skipped: list[tuple[str, str]]  # (path, reason)
    sparse: list[str]


def _decode(raw: bytes) -> str:
    return os.fsdecode(raw)


class Repo:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise GitError(f"{path}: no such folder")
        try:
            top = self._text("rev-parse", "--show-toplevel").strip()
        except GitError as exc:
            if "not a git repository" in str(exc):
                raise GitError(f"{path}: not a git repository") from None
            raise  # e.g. git's "dubious ownership" refusal: its own message says what to do
        if not top:
            raise GitError(f"{path}: not inside a git work tree")
        self.path = Path(top)

    # -- low level ---------------------------------------------------------------------------
    def _git(self, *args: str, input: bytes | None = None, ok: tuple[int, ...] = (0,)) -> bytes:
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_PAGER="cat")
        cmd = ["git", "--literal-pathspecs", "-C", str(self.path), *args]
        try:
            proc = subprocess.run(cmd, input=input, capture_output=True, env=env, check=False)
        except FileNotFoundError:
            raise GitError("git is not installed or not on PATH") from None
        if proc.returncode not in ok:
            msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise GitError(f"git {args[0]} failed: {msg[-1] if msg else 'exit ' + str(proc.returncode)}")
        return proc.stdout

    def _text(self, *args: str) -> str:
        return self._git(*args).decode("utf-8", "replace")

    # -- revisions ---------------------------------------------------------------------------
    def resolve(self, rev: str) -> str:
        """Full commit id of `rev`. Revisions starting with '-' are refused (they would be options)."""
        if not rev or rev.startswith("-") or "\0" in rev:
            raise GitError(f"{rev!r} is not a revision")
        out = self._git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", ok=(0, 1)).decode().strip()
        if not out:
            hint = "; is the clone shallow? (actions/checkout needs fetch-depth: 0)" if self._shallow() else ""
            raise GitError(f"unknown revision {rev!r}{hint}")
        return out

    def _shallow(self) -> bool:
        return self._git("rev-parse", "--is-shallow-repository", ok=(0, 128)).strip() == b"true"

    def merge_base(self, a: str, b: str) -> str | None:
        out = self._git("merge-base", a, b, ok=(0, 1)).decode().strip()
        return out or None

    def commit_time(self, rev: str) -> str:
        """Committer time, ISO 8601 with the committer's offset (as recorded, so deterministic)."""
        return self._text("log", "-1", "--format=%cI", rev, "--").strip()

    def first_commit_time(self, base: str, head: str) -> str | None:
        """Author time of the earliest commit on head that base lacks: the best git-only proxy for
        when the work was first proposed (GitHub's PR creation time is used when available)."""
        out = self._text("log", "--reverse", "--format=%aI", f"{base}..{head}", "--").split()
        return out[0] if out else None

    def added_time(self, rev: str, folder: str) -> str | None:
        """Committer time of the latest commit reachable from rev that added files under folder
        (for a merged record: when it landed on the base branch)."""
        out = self._text("log", "-1", "--diff-filter=A", "--format=%cI", rev, "--", folder.rstrip("/") + "/").strip()
        return out or None

    # -- trees -------------------------------------------------------------------------------
    def changes(self, base: str, head: str) -> list[Change]:
        """Files changed by head relative to its merge base with base (what the PR itself changed)."""
        mb = self.merge_base(base, head)
        if mb is None:
            raise GitError("base and head have no common history")
        raw = self._git("diff", "--name-status", "-z", "--no-renames", "--no-ext-diff", "--no-textconv",
                        mb, head, "--")
        parts = raw.split(b"\0")
        out: list[Change] = []
        i = 0
        while i + 1 < len(parts):
            status = parts[i].decode("ascii", "replace")
            if not status:
                break
            out.append(Change(status[0], _decode(parts[i + 1])))
            i += 2
        return sorted(out, key=lambda c: c.path)

    def tree(self, rev: str, prefix: str, recursive: bool = True) -> list[TreeEntry]:
        """Entries under `prefix` (a folder path, no trailing slash) at `rev`."""
        args = ["ls-tree", "-z", "-l", "--full-tree"]
        if recursive:
            args.append("-r")
        raw = self._git(*args, rev, "--", prefix.rstrip("/") + "/")
        entries = []
        for rec in raw.split(b"\0"):
            if not rec:
                continue
            meta, _, path = rec.partition(b"\t")
            mode, kind, sha, size = meta.split()
            entries.append(TreeEntry(mode.decode(), kind.decode(), sha.decode(),
                                     None if size == b"-" else int(size), _decode(path)))
        return entries

    def subdirs(self, rev: str, prefix: str) -> list[str]:
        """Names of the folders directly under `prefix` at `rev`."""
        return sorted(PurePosixPath(e.path).name for e in self.tree(rev, prefix, recursive=False)
                      if e.kind == "tree")

    def read_file(self, rev: str, path: str, limit: int) -> bytes | None:
        """A regular file's bytes at `rev` (no checkout), or None when absent, not a plain file or too large."""
        raw = self._git("ls-tree", "-z", "-l", "--full-tree", rev, "--", path)
        for rec in raw.split(b"\0"):
            meta, _, name = rec.partition(b"\t")
            if rec and _decode(name) == path:
                mode, kind, sha, _size = meta.split()
                if kind == b"blob" and mode in (b"100644", b"100755"):
                    return self.read_blob(sha.decode(), limit)
        return None

    def read_blob(self, sha: str, limit: int) -> bytes | None:
        """A blob's bytes, or None when it is larger than `limit`."""
        size = int(self._git("cat-file", "-s", sha).strip() or 0)
        if size > limit:
            return None
        return self._git("cat-file", "blob", sha)

    def export(self, rev: str, prefix: str, dest: Path) -> ExportReport:
        """Write the tree under `prefix` at `rev` to dest/prefix, byte for byte.

        Symbolic links are recreated as links (the loader reports them and never follows them);
        submodules and unsafe names are skipped and listed.
        """
        report = ExportReport(skipped=[], sparse=[])
        entries = self.tree(rev, prefix)
        if len(entries) > MAX_EXPORT_ENTRIES:
            report.skipped.append((prefix, f"more than {MAX_EXPORT_ENTRIES} entries; only the first were exported"))
            entries = entries[:MAX_EXPORT_ENTRIES]
        dest = Path(dest)
        (dest / prefix).mkdir(parents=True, exist_ok=True)
        wanted: list[tuple[TreeEntry, Path]] = []
        for e in entries:
            parts = PurePosixPath(e.path).parts
            if any(p in ("", ".", "..", ".git") or "\0" in p for p in parts) or e.path.startswith("/"):
                report.skipped.append((e.path, "unsafe path name"))
                continue
            target = dest.joinpath(*parts)
            if e.kind == "commit":
                report.skipped.append((e.path, "git submodule; not exported"))
                continue
            if e.kind != "blob":
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if e.mode == "120000":
                link = self.read_blob(e.sha, 4096)
                os.symlink(_decode(link or b"?"), target)
                continue
            if e.size is not None and e.size > SPARSE_ABOVE:
                with open(target, "wb") as fh:
                    fh.truncate(e.size)
                report.sparse.append(e.path)
                continue
            wanted.append((e, target))
        self._write_blobs(wanted)
        for e, target in wanted:
            if e.mode == "100755":
                target.chmod(0o755)
        return report

    def _write_blobs(self, wanted: list[tuple[TreeEntry, Path]]) -> None:
        """One `cat-file --batch` process for all blobs (a folder can hold thousands of small files)."""
        if not wanted:
            return
        env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
        proc = subprocess.Popen(["git", "-C", str(self.path), "cat-file", "--batch"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for e, target in wanted:
                proc.stdin.write(e.sha.encode() + b"\n")
                proc.stdin.flush()
                header = proc.stdout.readline().split()
                if len(header) != 3 or header[1] != b"blob":
                    raise GitError(f"git cat-file: cannot read {e.path}")
                remaining = int(header[2])
                with open(target, "wb") as fh:
                    while remaining:
                        chunk = proc.stdout.read(min(remaining, 1 << 20))
                        if not chunk:
                            raise GitError(f"git cat-file: {e.path} ended early")
                        fh.write(chunk)
                        remaining -= len(chunk)
                proc.stdout.read(1)  # the newline after each object
        finally:
            proc.stdin.close()
            proc.stdout.close()
            proc.wait()
