"""`auditor frontier TRACK_DIR` (or `--repo DIR --rev REV TRACK`): audit every merged folder of a track.

Prints one table (folder, date, claimed val_bpb, verdict, must-change and review counts, the rules
behind the verdict) and the chronological frontier of passing records; `--format json` gives the
document of reports/schemas/frontier.schema.json. Progress goes to stderr; Ctrl-C stops after the
folder being audited and prints what was done (exit 130). Exit 0 otherwise: this is a report, not a gate.
"""

from __future__ import annotations

import sys
from pathlib import Path

from auditor.commands._common import options_from_args, write_output
from auditor.core.errors import ToolError
from auditor.core.grades import EXIT_INTERRUPTED


def add_parser(sub) -> None:
    p = sub.add_parser("frontier", help="audit every merged folder of a track and print the frontier table",
                       description="Audit every folder of records/<track> (a directory, or a git revision read "
                                   "without a checkout) in date order and print a table. Exit 0, 2 tool error, "
                                   "130 interrupted.")
    p.add_argument("track", metavar="TRACK",
                   help="a records/<track> directory; with --repo, the track name (track_10min_16mb)")
    p.add_argument("--repo", metavar="DIR", help="read the folders from this git repository instead of the disk")
    p.add_argument("--rev", metavar="REV", default="HEAD", help="with --repo: the revision (default HEAD)")
    p.add_argument("--format", choices=["md", "json"], default="md", help="what goes to stdout/--out")
    p.add_argument("--out", metavar="FILE", help="write that output here instead of stdout")
    p.add_argument("--json-out", metavar="FILE", help="also write the JSON document here")
    p.add_argument("--no-compare", action="store_true",
                   help="do not compare each folder with the best claim merged before it (SIGNIFICANCE)")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.add_argument("--as-of", metavar="YYYY-MM-DD", help="judge every folder by the rulings in force on this date")
    p.add_argument("--val-manifest", metavar="FILE", help="dataset manifest for non-FineWeb folders")
    p.add_argument("--config", metavar="FILE", help="configuration file (waivers, as_of policy)")
    p.add_argument("--no-config", action="store_true", help="ignore any configuration file")
    p.add_argument("--waive", action="append", metavar="RULE[:FOLDER_GLOB]=REASON", help="waive with a reason")
    p.set_defaults(func=run)


def run(args) -> int:
    from auditor.ci.track import TrackAudit, audit_track
    from auditor.commands._config import apply_to_options, config_for_ci, config_for_folder
    from reports.frontier import frontier_to_json, render_frontier
    from reports.render import finite, to_json_text

    options = options_from_args(args)
    if args.repo:
        from auditor.ci.git import GitError, Repo

        name = args.track.rstrip("/").removeprefix("records/")
        if not name or "/" in name:
            raise ToolError(f"{args.track}: with --repo, give the track's name (track_10min_16mb)")
        track = TrackAudit(name, "git", rev=args.rev)
        try:
            repo = Repo(args.repo)
            cfg = config_for_ci(args, repo, repo.resolve(args.rev))
        except GitError as exc:
            raise ToolError(str(exc)) from None
        source = {"repo_dir": args.repo}
    else:
        track = TrackAudit(Path(args.track).resolve().name, "directory")
        cfg = config_for_folder(args, args.track)
        source = {"directory": args.track}
    apply_to_options(options, cfg, args, None)
    say = (lambda msg: None) if args.quiet else (lambda msg: sys.stderr.write(f"auditor frontier: {msg}\n"))
    try:
        for _ in audit_track(track, options, compare=not args.no_compare, progress=say, **source):
            pass
    except KeyboardInterrupt:
        track.interrupted = True
        say(f"interrupted after {len(track.rows)} folder(s)")
    doc = to_json_text(finite(frontier_to_json(track)))
    if args.json_out:
        try:
            Path(args.json_out).write_text(doc, encoding="utf-8")
        except OSError as exc:
            raise ToolError(f"--json-out {args.json_out}: {exc.strerror}") from None
    write_output(doc if args.format == "json" else render_frontier(track), args.out)
    return EXIT_INTERRUPTED if track.interrupted else 0
