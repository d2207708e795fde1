"""The frontier a PR's record is compared against: the best merged record of its track on the base.

"Best" is the lowest val_bpb claimed in a merged folder's submission JSON (what the leaderboard
shows); its per-seed scores are then read from that folder's logs, because the significance rules
need them. Folders the PR itself changes are not candidates (a record is not compared with itself).
"""

from __future__ import annotations

import math
from datetime import datetime
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from auditor.ci.git import Repo
from auditor.core.errors import LoadError
from auditor.facts import reference_of
from auditor.load.loader import is_submission_json, load_submission
from auditor.load.subjson import MAX_JSON_BYTES, parse_submission_json
from auditor.core.contract import Reference


@dataclass
class Frontier:
    track: str | None
    source: str  # "base" (best merged record), "option" (--against/--sota-*), "none"
    reference: Reference | None
    folder: str | None = None  # repo path of the frontier folder when source == "base"
    base_sha: str | None = None
    candidates: int = 0  # merged folders considered
    merged_at: str | None = None  # when the frontier folder landed on the base branch

    def to_json(self) -> dict:
        ref = self.reference
        return {
            "track": self.track,
            "source": self.source,
            "folder": self.folder,
            "base": self.base_sha,
            "candidates": self.candidates,
            "merged_at": self.merged_at,
            "label": None if ref is None else ref.label,
            "val_bpb": None if ref is None else ref.val_bpb,
            "val_loss": None if ref is None else ref.val_loss,
            "seed_bpbs": [] if ref is None else list(ref.seed_bpbs),
            "seed_losses": [] if ref is None else list(ref.seed_losses),
        }


def claimed_scores(repo: Repo, rev: str, track: str, exclude: set[str]) -> list[tuple[float, str]]:
    """(claimed val_bpb, folder name) for every merged folder of the track that states one."""
    entries = repo.tree(rev, f"records/{track}")
    by_folder: dict[str, list] = {}
    for e in entries:
        parts = PurePosixPath(e.path).parts
        if len(parts) == 4 and e.kind == "blob" and e.mode != "120000" and is_submission_json(parts[3]):
            by_folder.setdefault(parts[2], []).append(e)
    out = []
    for name, files in sorted(by_folder.items()):
        if f"records/{track}/{name}" in exclude:
            continue
        chosen = next((f for f in files if PurePosixPath(f.path).name == "submission.json"),
                      sorted(files, key=lambda f: f.path)[0])
        if chosen.size is not None and chosen.size > MAX_JSON_BYTES:
            continue
        data = repo.read_blob(chosen.sha, MAX_JSON_BYTES)
        if data is None:
            continue
        meta = parse_submission_json(PurePosixPath(chosen.path).name, data)
        if meta.val_bpb is not None and math.isfinite(meta.val_bpb) and meta.val_bpb > 0:
            out.append((meta.val_bpb, name))
    return sorted(out)


def frontier_from_base(repo: Repo, base_sha: str, track: str, exclude: set[str], workdir: Path) -> Frontier:
    scores = claimed_scores(repo, base_sha, track, exclude)
    if not scores:
        return Frontier(track, "none", None, base_sha=base_sha)
    bpb, name = scores[0]
    path = f"records/{track}/{name}"
    repo.export(base_sha, path, workdir)
    label = f"merged record {name} (base {base_sha[:7]})"
    try:
        ref = reference_of(load_submission(str(workdir / path)), label) or Reference(label=label)
    except LoadError:
        ref = Reference(label=label)
    ref.val_bpb = bpb  # the leaderboard figure, even where the logs disagree
    return Frontier(track, "base", ref, folder=path, base_sha=base_sha, candidates=len(scores),
                    merged_at=repo.added_time(base_sha, path))


def merged_after(merged_at: str | None, opened_at: str | None) -> bool:
    """True when the frontier landed after the PR was opened: records are accepted in PR order, so
    the maintainer may want to judge this PR against the frontier of its own time."""
    if not merged_at or not opened_at:
        return False
    try:
        return datetime.fromisoformat(merged_at) > datetime.fromisoformat(opened_at.replace("Z", "+00:00"))
    except ValueError:
        return False
