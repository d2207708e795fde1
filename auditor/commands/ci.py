"""`auditor ci --base REV [--head REV]`: the pull-request gate.

Audits every record folder the PR adds or changes, compares each with the best merged record of its
track on the base revision, and writes the review comment, SARIF, GitHub annotations and a JSON
aggregate from the one run. Exit code: 0 pass, 1 a folder (or the PR layout) fails or a --fail-on
rule fired, 3 needs review under --strict, 2 tool error.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from auditor.core.errors import ToolError
from auditor.commands._common import add_audit_options, options_from_args, write_output
from auditor.commands._config import apply_to_options, config_for_ci


def add_parser(sub) -> None:
    p = sub.add_parser(
        "ci", help="audit the record folders a PR adds or changes (CI gate)",
        description="Audit the record folders changed between two revisions and write a PR review comment, "
                    "SARIF and GitHub annotations. Exit code: 0 pass, 1 fail, 3 needs review (--strict), "
                    "2 tool error.")
    p.add_argument("--repo", default=".", metavar="DIR", help="git repository (default: current folder)")
    p.add_argument("--base", required=True, metavar="REV", help="base revision (the PR's target branch)")
    p.add_argument("--head", default="HEAD", metavar="REV", help="head revision (default HEAD)")
    p.add_argument("--format", choices=["md", "json"], default="md",
                   help="what goes to stdout/--out: the comment (md) or the JSON aggregate")
    p.add_argument("--out", metavar="FILE", help="write that output here instead of stdout")
    p.add_argument("--comment-out", metavar="FILE", help="also write the Markdown review comment here")
    p.add_argument("--sarif-out", metavar="FILE", help="also write SARIF 2.1.0 here")
    p.add_argument("--sarif-all", action="store_true",
                   help="SARIF: also info and pass results (by default only fail/warn, which code scanning "
                        "turns into alerts)")
    p.add_argument("--json-out", metavar="FILE", help="also write the JSON aggregate here")
    p.add_argument("--strict", action="store_true",
                   help="fail (exit 3) when anything needs review (default: `strict` in the configuration)")
    p.add_argument("--fail-on", metavar="RULE,...", default="",
                   help="also fail (exit 1) when these rules report a fail or a warn that is not waived "
                        "(default: `fail_on` in the configuration)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_audit_options(p)
    p.set_defaults(func=run)


def _fail_on(text: str) -> tuple[str, ...]:
    from rules import all_rules

    ids = tuple(dict.fromkeys(x.strip().upper() for x in text.split(",") if x.strip()))
    known = {r.id for r in all_rules()}
    unknown = [x for x in ids if x not in known]
    if unknown:
        raise ToolError(f"--fail-on: unknown rule {unknown[0]!r}; `auditor rules` lists them")
    return ids


def _write(path: str | None, text: str, flag: str) -> None:
    if not path:
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ToolError(f"{flag} {path}: {exc.strerror}") from None


def run(args) -> int:
    from auditor.ci.gate import run_ci, run_to_json
    from reports.ci_outputs import annotation_units, sarif_for_run
    from auditor.commands.comment import summary_url
    from reports.comment import render_comment
    from reports.comment_cap import cap_comment
    from reports.github import append_step_summary, workflow_commands
    from reports.render import finite, to_json_text
    from rules import all_rules

    options = options_from_args(args)
    cfg = _config(args)
    apply_to_options(options, cfg, args, None)
    fail_on = _fail_on(args.fail_on) if args.fail_on else tuple(cfg.fail_on or ())
    strict = bool(args.strict or cfg.strict)
    say = (lambda msg: None) if args.quiet else (lambda msg: sys.stderr.write(f"auditor ci: {msg}\n"))
    ci = run_ci(args.repo, args.base, args.head, options, strict=strict, fail_on=fail_on,
                flags=_flags(args), progress=say, config_source=cfg.label)

    comment = render_comment(ci)
    doc = to_json_text(finite(run_to_json(ci)))
    # the file a bot posts is capped under GitHub's comment limit; the step summary keeps it all
    _write(args.comment_out, cap_comment(comment, summary_url=summary_url()), "--comment-out")
    _write(args.json_out, doc, "--json-out")
    if args.sarif_out:
        sarif = sarif_for_run(ci, all_rules(), include_all=args.sarif_all, repository_uri=_repository_uri())
        _write(args.sarif_out, to_json_text(sarif), "--sarif-out")
    write_output(doc if args.format == "json" else comment, args.out)

    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in workflow_commands(annotation_units(ci), ci.discovery.pr_files):
            sys.stdout.write(line + "\n")
        try:
            append_step_summary(comment, os.environ.get("GITHUB_STEP_SUMMARY"))
        except OSError as exc:
            say(f"could not write the step summary ({exc.strerror})")
    say(f"{ci.verdict} ({len(ci.folders)} folder(s)); exit {ci.exit_code}")
    return ci.exit_code


def _config(args):
    """The audited repository's configuration, read from the base revision (or --config FILE)."""
    from auditor.ci.git import GitError, Repo

    try:
        repo = Repo(args.repo)
        return config_for_ci(args, repo, repo.resolve(args.base))
    except GitError as exc:
        raise ToolError(str(exc)) from None


def _repository_uri() -> str | None:
    """For SARIF versionControlProvenance: the repository the Actions run belongs to, when there is one."""
    repo = os.environ.get("GITHUB_REPOSITORY")
    return f"{os.environ.get('GITHUB_SERVER_URL') or 'https://github.com'}/{repo}" if repo else None


def _flags(args) -> list[str]:
    """The options that shaped this run, for the "reproduce" line (revisions are added resolved)."""
    parts: list[str] = []
    for flag, value in (("--against", args.against), ("--sota-bpb", args.sota_bpb),
                        ("--sota-loss", args.sota_loss), ("--sota-seed-bpbs", args.sota_seed_bpbs),
                        ("--val-manifest", args.val_manifest)):
        if value is not None:
            parts += [flag, str(value)]
    if getattr(args, "gauntlet", False):
        parts.append("--gauntlet")
        if getattr(args, "device", "cpu") != "cpu":
            parts += ["--device", args.device]
        if getattr(args, "gauntlet_timeout", 240.0) != 240.0:
            parts += ["--gauntlet-timeout", f"{args.gauntlet_timeout:g}"]
    if args.strict:
        parts.append("--strict")
    if args.fail_on:
        parts += ["--fail-on", args.fail_on]
    return parts
