"""Run the audits a pull request needs and decide whether the gate passes.

Exit policy (documented in docs/ci.md): 1 when any audited folder or the repository-level check is
FAIL, or when a rule named in --fail-on reports a fail or warn; 3 under --strict when anything needs
review; 0 otherwise. A PR that changes no record folder passes (there is nothing to audit).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.ci.discover import Discovery, FolderChange, discover
from auditor.ci.frontier import Frontier, frontier_from_base, merged_after
from auditor.ci.git import ExportReport, GitError, Repo
from auditor.core.errors import LoadError, ToolError
from reports import escape
from auditor.core.contract import AuditOptions, AuditResult
from auditor.core.grades import Verdict, verdict_of, worst_verdict
from auditor.core.model import Evidence, Finding, Issue
from auditor.engine import audit_submission
from auditor.load.loader import load_submission
from reports.json_doc import SCHEMA_VERSION, result_to_json
from rules.files import RULE as FILES

@dataclass
class FolderAudit:
    change: FolderChange
    result: AuditResult
    frontier: Frontier
    repro: str  # shell command that reproduces this folder's review on a checkout of head
    frontier_after_pr: bool = False  # the frontier was merged after this PR was opened

    @property
    def verdict(self) -> str:
        return self.result.verdict

    def repo_path(self, ev: Evidence) -> str:
        return f"{self.change.path}/{ev.path}" if ev.path else self.change.path


@dataclass
class PullRequest:
    number: int | None = None
    url: str | None = None
    created_at: str | None = None  # from the GitHub event, when run by Actions
    first_commit_at: str | None = None  # author time of the earliest commit head adds
    head_commit_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "url": self.url, "created_at": self.created_at,
                "first_commit_at": self.first_commit_at, "head_commit_at": self.head_commit_at}


@dataclass
class CiRun:
    base_rev: str
    base_sha: str
    head_rev: str
    head_sha: str
    pr: PullRequest
    discovery: Discovery
    folders: list[FolderAudit]
    command: str  # how to reproduce the whole run
    frontiers: dict[str, Frontier] = field(default_factory=dict)
    strict: bool = False
    fail_on: tuple[str, ...] = ()
    gauntlet: bool = False  # whether submission code ran in the sandbox
    repo_findings: list[Finding] = field(default_factory=list)  # the FILES rule's judgement of discovery.issues
    config_source: str | None = None  # the configuration (waivers, defaults) the run used, if any

    @property
    def opened_at(self) -> str | None:
        return self.pr.created_at or self.pr.first_commit_at

    @property
    def repo_verdict(self) -> Verdict:
        return verdict_of(self.repo_findings)

    @property
    def verdict(self) -> Verdict:
        return worst_verdict([self.repo_verdict] + [f.verdict for f in self.folders])

    def fail_on_hits(self) -> list[Finding]:
        rules = set(self.fail_on)
        every = list(self.repo_findings) + [f for fa in self.folders for f in fa.result.findings]
        return [f for f in every if f.rule in rules and f.severity in ("fail", "warn") and not f.waived]

    @property
    def exit_code(self) -> int:
        if self.fail_on_hits():
            return Verdict.FAIL.exit_code
        if self.verdict is Verdict.NEEDS_REVIEW and not self.strict:
            return Verdict.PASS.exit_code  # review is advisory unless --strict
        return self.verdict.exit_code


def pr_from_github_event(env: dict[str, str]) -> PullRequest:
    """PR number and creation time from the Actions event payload (a file the runner writes)."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path or env.get("GITHUB_ACTIONS") != "true":
        return PullRequest()
    try:
        event = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError):
        return PullRequest()
    pr = event.get("pull_request") if isinstance(event, dict) else None
    if not isinstance(pr, dict):
        return PullRequest()
    number = pr.get("number")
    return PullRequest(number=number if isinstance(number, int) else None,
                       url=pr.get("html_url") if isinstance(pr.get("html_url"), str) else None,
                       created_at=pr.get("created_at") if isinstance(pr.get("created_at"), str) else None)


def _head_files(repo: Repo, head: str, folders: set[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in sorted(folders):
        out[path] = {e.path for e in repo.tree(head, path) if e.kind != "tree"}
    return out


def _export_issues(report: ExportReport, folder: str) -> list[Issue]:
    """What the export left out, as FILES issues with folder-relative evidence like the loader's."""
    out = []
    for path, why in report.skipped:
        rel = path[len(folder) + 1:] if path.startswith(folder + "/") else path
        out.append(Issue("FILES", "warn", f"not audited: {why}", [Evidence(rel)]))
    return out


def run_ci(repo_dir: str, base: str, head: str, options: AuditOptions, *, strict: bool = False,
           fail_on: tuple[str, ...] = (), flags: list[str] | None = None, env: dict[str, str] | None = None,
           progress=None, config_source: str | None = None) -> CiRun:
    """Audit every record folder head adds or changes relative to base.

    `options.reference`, when set (from --against/--sota-*), is used for every folder instead of the
    base revision's frontier. `progress(msg)` is called before each slow step.
    """
    env = dict(os.environ) if env is None else env
    raw_say = progress or (lambda msg: None)

    def say(msg: str) -> None:  # paths come from the PR: one printable line, never a workflow command
        raw_say(escape.plain(msg, 500))
    try:
        repo = Repo(repo_dir)
        base_sha, head_sha = repo.resolve(base), repo.resolve(head)
        changes = repo.changes(base_sha, head_sha)
        merge_base = repo.merge_base(base_sha, head_sha) or base_sha
        base_tracks = repo.subdirs(base_sha, "records")
        touched = {"/".join(c.path.split("/")[:3]) for c in changes
                   if c.path.startswith("records/") and c.path.count("/") >= 3}
        existed = {p for p in touched if repo.tree(merge_base, p, recursive=False)}
        disc = discover(changes, base_tracks, existed, _head_files(repo, head_sha, touched))
        pr = pr_from_github_event(env)
        pr.first_commit_at = repo.first_commit_time(base_sha, head_sha)
        pr.head_commit_at = repo.commit_time(head_sha)
        run = CiRun(base, base_sha, head, head_sha, pr, disc, [],
                    command=shlex.join(["auditor", "ci", "--base", base_sha[:12], "--head", head_sha[:12],
                                        *(flags or [])]),
                    strict=strict, fail_on=tuple(fail_on), gauntlet=options.gauntlet,
                    repo_findings=[FILES.judge(i) for i in disc.issues], config_source=config_source)
        exclude = {f.path for f in disc.folders}
        with tempfile.TemporaryDirectory(prefix="auditor-ci-") as tmp:
            tmpdir = Path(tmp)
            for fc in disc.audited:
                frontier = _frontier(run, repo, fc.track, exclude, tmpdir / "base", options, say)
                say(f"auditing {fc.path}")
                report = repo.export(head_sha, fc.path, tmpdir / "head")
                opts = dataclasses.replace(options, reference=frontier.reference, folder_path=fc.path)
                if opts.as_of is None and pr.created_at:  # a PR is judged by the rulings of the day it opened
                    opts = dataclasses.replace(opts, as_of=pr.created_at[:10], as_of_source="PR's open date")
                try:
                    sub = load_submission(str(tmpdir / "head" / fc.path))
                except LoadError as exc:  # cannot happen for an exported folder, but never a traceback
                    raise GitError(f"{fc.path}: {exc}") from None
                sub.load_issues[:0] = _export_issues(report, fc.path)
                result = audit_submission(sub, opts)
                run.folders.append(FolderAudit(fc, result, frontier, _repro(fc, frontier, options),
                                               merged_after(frontier.merged_at, run.opened_at)))
    except GitError as exc:
        raise ToolError(str(exc)) from None
    return run


def _frontier(run: CiRun, repo: Repo, track: str, exclude: set[str], workdir: Path, options: AuditOptions,
              say) -> Frontier:
    if options.reference is not None:
        return Frontier(track, "option", options.reference)
    if track not in run.frontiers:
        say(f"reading the frontier of records/{track} at {run.base_sha[:7]}")
        run.frontiers[track] = frontier_from_base(repo, run.base_sha, track, exclude, workdir)
    return run.frontiers[track]


def _repro(fc: FolderChange, frontier: Frontier, options: AuditOptions) -> str:
    """`auditor run` for one folder on a checkout of head, against the same frontier."""
    parts = ["auditor", "run", fc.path]
    ref = frontier.reference
    if frontier.source == "base" and frontier.folder:
        parts += ["--against", frontier.folder]
    elif ref is not None and ref.val_bpb is not None:
        parts += ["--sota-bpb", f"{ref.val_bpb:.8f}"]
        if ref.seed_bpbs:
            parts += ["--sota-seed-bpbs", ",".join(f"{v:.8f}" for v in ref.seed_bpbs)]
    if options.gauntlet:
        parts.append("--gauntlet")
    return shlex.join(parts)


def run_to_json(run: CiRun) -> dict[str, Any]:
    """Aggregate JSON: stable keys; each folder embeds the same document `auditor run --format json` gives."""
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": run.verdict,
        "exit_code": run.exit_code,
        "base": {"rev": run.base_rev, "sha": run.base_sha},
        "head": {"rev": run.head_rev, "sha": run.head_sha},
        "pull_request": run.pr.to_json(),
        "command": run.command,
        "policy": {"strict": run.strict, "fail_on": list(run.fail_on), "gauntlet": run.gauntlet,
                   "config": run.config_source},
        "repository": {
            "verdict": run.repo_verdict,
            "findings": [f.to_json() for f in run.repo_findings],
            "pr_files": sorted(run.discovery.pr_files),
        },
        "folders": [
            {"path": fa.change.path, "track": fa.change.track, "status": fa.change.status,
             "verdict": fa.verdict, "frontier": fa.frontier.to_json(), "reproduce": fa.repro,
             "audit": result_to_json(fa.result)}
            for fa in run.folders
        ],
        "deleted_folders": [f.path for f in run.discovery.folders if f.status == "deleted"],
    }
