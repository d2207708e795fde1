"""From a pull request's changed paths to the record folders to audit, plus repository-level issues.

A record PR should add one folder, `records/<track>/<folder>/`, and nothing else. Everything that
departs from that (files outside `records/`, files dropped straight into `records/` or a track,
an unknown track, a record nested one level too deep, edits to an already-merged record, several
folders at once) becomes an issue for the FILES rule whose evidence is the repository path, so the same finding
can be shown in the comment, as a GitHub annotation and in SARIF.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from auditor.ci.git import Change
from auditor.core.model import Evidence, Issue

RECORDS = "records"
RECORD_MARKERS = ("submission.json", "readme.md")
MAX_LISTED = 10
# Files outside records/ that a submitter sometimes edits in good faith: flagged for review, not failed.
SOFT_OUTSIDE = {"README.md": "the leaderboard in README.md is updated by the maintainers when they merge"}


@dataclass
class FolderChange:
    track: str
    name: str
    status: str  # added | modified | deleted
    files: list[str] = field(default_factory=list)  # repo paths the PR added or changed in it
    deleted: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{RECORDS}/{self.track}/{self.name}"


@dataclass
class Discovery:
    folders: list[FolderChange]
    issues: list[Issue]  # repository-level (rule FILES judges them), evidence paths relative to the repo root
    pr_files: set[str]  # repo paths that exist at head and were added or changed by the PR

    @property
    def audited(self) -> list[FolderChange]:
        return [f for f in self.folders if f.status != "deleted"]


def _finding(severity: str, message: str, paths: list[str], confidence: str = "high") -> Issue:
    ev = [Evidence(p) for p in paths[:MAX_LISTED]]
    return Issue("FILES", severity, message, ev, confidence)


def _listing(paths: list[str]) -> str:
    shown = ", ".join(paths[:3])
    return shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


def discover(changes: list[Change], base_tracks: list[str], existed_at_base: set[str],
             head_files: dict[str, set[str]]) -> Discovery:  # ~85 lines: the PR-layout policy read top-down
    """Classify changed paths.

    `base_tracks`: folder names under records/ on the base revision. `existed_at_base`: repo paths of
    record folders (records/<track>/<name>) present at the merge base. `head_files`: for each changed
    record folder, the repo paths of all files it holds at head (used to spot nesting and deletion).
    """
    folders: dict[tuple[str, str], FolderChange] = {}
    outside: list[str] = []
    misplaced: list[str] = []
    pr_files: set[str] = set()
    for ch in changes:
        if ch.status != "D":
            pr_files.add(ch.path)
        parts = PurePosixPath(ch.path).parts
        if parts[0] != RECORDS:
            outside.append(ch.path)  # deletions outside records/ count too
            continue
        if len(parts) <= 3:
            if ch.status != "D":  # removing a stray file is a clean-up, not a misplacement
                misplaced.append(ch.path)
            continue
        key = (parts[1], parts[2])
        fc = folders.setdefault(key, FolderChange(parts[1], parts[2], "modified"))
        (fc.deleted if ch.status == "D" else fc.files).append(ch.path)

    findings: list[Issue] = []
    for fc in folders.values():
        at_head = head_files.get(fc.path, set())
        if not at_head:
            fc.status = "deleted"
        elif fc.path not in existed_at_base:
            fc.status = "added"

    audited = sorted((f for f in folders.values() if f.status != "deleted"), key=lambda f: f.path)
    touches_records = bool(audited)

    hard_outside = [p for p in outside if p not in SOFT_OUTSIDE]
    soft_outside = [p for p in outside if p in SOFT_OUTSIDE]
    if hard_outside:
        if touches_records:
            findings.append(_finding(
                "fail", f"this PR also changes {len(hard_outside)} file(s) outside records/ "
                        f"({_listing(hard_outside)}); a record PR may only add its own folder under "
                        "records/<track>/ — move these changes to a separate PR", hard_outside))
        else:
            findings.append(_finding(
                "info", f"no record folder is changed; {len(hard_outside)} file(s) outside records/ "
                        "were not audited", hard_outside))
    for p in soft_outside:
        findings.append(_finding("warn", f"{p} is changed: {SOFT_OUTSIDE[p]}; drop this change unless "
                                         "a maintainer asked for it", [p]))
    if misplaced:
        findings.append(_finding(
            "fail", f"{len(misplaced)} file(s) sit directly in records/ or in a track folder "
                    f"({_listing(misplaced)}); every file belongs inside records/<track>/<folder>/",
            misplaced))

    known = set(base_tracks)
    for fc in audited:
        if known and fc.track not in known:
            findings.append(_finding(
                "warn", f"{fc.path} is in an unknown track folder {fc.track!r}; the base revision has "
                        f"{', '.join(sorted(known))}", fc.files[:1]))
        if fc.status == "modified":
            findings.append(_finding(
                "warn", f"{fc.path} already exists on the base branch and this PR changes it; merged "
                        "records are not edited in place — submit a new folder, or ask a maintainer",
                fc.files + fc.deleted))
        nested = _nested_record(fc.path, at_head=head_files.get(fc.path, set()))
        if nested:
            findings.append(_finding(
                "warn", f"the record files of {fc.path} are nested in {nested}/; move them up so "
                        f"README.md and submission.json sit directly in {fc.path}/",
                [f for f in fc.files if f.startswith(nested + "/")][:MAX_LISTED]))
    for fc in sorted(folders.values(), key=lambda f: f.path):
        if fc.status == "deleted":
            findings.append(_finding("warn", f"this PR deletes the record folder {fc.path}", fc.deleted))
    if len(audited) > 1:
        findings.append(_finding(
            "warn", f"this PR changes {len(audited)} record folders; the submission process expects "
                    "one folder per PR (each is audited below)", [f.path for f in audited]))
    return Discovery(sorted(folders.values(), key=lambda f: f.path), findings, pr_files)


def _nested_record(folder: str, at_head: set[str]) -> str | None:
    """The sub-folder holding the record files when the folder itself has none (a common copy slip)."""
    top = {PurePosixPath(p).name.lower() for p in at_head if PurePosixPath(p).parent.as_posix() == folder}
    if any(m in top for m in RECORD_MARKERS):
        return None
    deeper = sorted(PurePosixPath(p).parent.as_posix() for p in at_head
                    if PurePosixPath(p).name.lower() in RECORD_MARKERS and PurePosixPath(p).parent.as_posix() != folder)
    return deeper[0] if deeper else None
