"""Audit every merged folder of a track in one process: the frontier pass maintainers did by hand.

The folders come from a records directory on disk or from a git revision (exported as data, no
checkout, auditor/ci/git.py). They are audited in date order, each by the rulings in force on its own
date and compared (SIGNIFICANCE) with the best claim merged before it, as the leaderboard stood then.
`audit_track` yields one row per folder as it goes, so a caller can show progress and stop early.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from auditor import facts as facts_mod
from auditor.ci.git import GitError, Repo
from auditor.core.contract import AuditOptions, AuditResult, Reference
from auditor.core.errors import LoadError, ToolError
from auditor.core.grades import Verdict, finding_status
from auditor.core.model import Submission
from auditor.engine import audit_submission
from auditor.load.loader import load_submission

_DATE = re.compile(r"(20\d\d-\d\d-\d\d)")


@dataclass
class TrackRow:
    """One folder's line of the frontier table."""

    path: str  # repository path (records/<track>/<folder>) or the folder name
    name: str
    date: str | None
    result: AuditResult
    compared_with: str | None = None  # the folder whose claim SIGNIFICANCE compared against
    frontier: bool = False  # a PASS that set a new best claim when it was merged

    @property
    def verdict(self) -> Verdict:
        return self.result.verdict

    @property
    def claimed(self) -> float | None:
        v = self.result.submission.meta.val_bpb
        return v if isinstance(v, float) and math.isfinite(v) else None

    def count(self, *statuses: str) -> int:
        return sum(1 for f in self.result.findings if finding_status(f).name in statuses)

    def blocking_rules(self, limit: int = 3) -> list[str]:
        """The rules behind the verdict, worst first (fail, then review/warn), each once."""
        ranked = sorted((finding_status(f).rank, f.rule) for f in self.result.findings if finding_status(f).alert)
        return list(dict.fromkeys(rule for _, rule in ranked))[:limit]


@dataclass
class TrackAudit:
    track: str
    source: str  # "directory" or "git"
    rev: str | None = None  # the commit, for a git source
    folders: int = 0  # folders found
    rows: list[TrackRow] = field(default_factory=list)
    interrupted: bool = False


def _date_and_record(sub: Submission) -> tuple[str | None, bool]:
    """The folder's date, and whether it is held to the record bar (a non-record folder is never compared)."""
    facts = facts_mod.derive(sub)
    return facts.date or (m.group(1) if (m := _DATE.match(sub.name)) else None), not facts.non_record


def _audit_dir(track_dir: Path, repo_prefix: str | None, options: AuditOptions, compare: bool,
               progress) -> Iterator[TrackRow]:
    names = sorted(p.name for p in track_dir.iterdir() if p.is_dir() and not p.is_symlink()
                   and not p.name.startswith("."))
    subs = []
    for name in names:
        try:
            sub = load_submission(str(track_dir / name))
        except LoadError:
            continue
        date, record = _date_and_record(sub)
        subs.append((date or "9999-99-99", name, sub, record))
    subs.sort(key=lambda t: (t[0], t[1]))
    best: tuple[float, str, Reference] | None = None  # the best claim merged on an earlier date
    best_today: tuple[float, str, Reference] | None = None  # folders of one date do not compete
    today = None
    best_pass: float | None = None  # the chronological frontier of passing records
    for i, (date, name, sub, record) in enumerate(subs, 1):
        progress(f"[{i}/{len(subs)}] {name}")
        if date != today:
            today, best = date, _better(best, best_today)
        path = f"{repo_prefix}/{name}" if repo_prefix else name
        against = best if compare and record and options.reference is None else None
        opts = dataclasses.replace(options, folder_path=path,
                                   reference=options.reference or (against[2] if against else None))
        result = audit_submission(sub, opts)
        row = TrackRow(path, name, None if date.startswith("9999") else date, result,
                       compared_with=against[1] if against else None)
        claim = row.claimed
        if claim is not None and claim > 0:
            if row.verdict is Verdict.PASS and (best_pass is None or claim < best_pass):
                row.frontier, best_pass = True, claim
            if best_today is None or claim < best_today[0]:
                ref = facts_mod.reference_of(sub, f"merged record {name}") or Reference(label=f"merged record {name}")
                ref.val_bpb = claim  # the leaderboard figure, as the CI gate's frontier
                best_today = (claim, name, ref)
        yield row


def _better(a, b):
    if a is None or b is None:
        return a or b
    return a if a[0] <= b[0] else b


def audit_track(track: TrackAudit, options: AuditOptions, *, directory: str | None = None,
                repo_dir: str | None = None, compare: bool = True, progress=None) -> Iterator[TrackRow]:
    """Yield a row per folder of `directory` (a records/<track> folder), or of records/<track.track> at
    `track.rev` in the git repository `repo_dir`; rows are appended to `track.rows` as well."""
    say = progress or (lambda msg: None)
    if directory is not None:
        root = Path(directory)
        if not root.is_dir():
            raise ToolError(f"{directory}: not a directory")
        prefix = f"records/{root.name}" if root.parent.name == "records" else None
        track.folders = sum(1 for p in root.iterdir() if p.is_dir())
        for row in _audit_dir(root, prefix, options, compare, say):
            track.rows.append(row)
            yield row
        return
    try:
        repo = Repo(repo_dir or ".")
        track.rev = repo.resolve(track.rev or "HEAD")
        prefix = f"records/{track.track}"
        if not repo.tree(track.rev, prefix, recursive=False):
            raise ToolError(f"{prefix}: no such folder at {track.rev[:12]}")
        with tempfile.TemporaryDirectory(prefix="auditor-frontier-") as tmp:
            say(f"reading {prefix} at {track.rev[:12]}")
            repo.export(track.rev, prefix, Path(tmp))
            root = Path(tmp) / prefix
            track.folders = sum(1 for p in root.iterdir() if p.is_dir())
            for row in _audit_dir(root, prefix, options, compare, say):
                track.rows.append(row)
                yield row
    except GitError as exc:
        raise ToolError(str(exc)) from None
