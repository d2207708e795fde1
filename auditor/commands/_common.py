"""Options shared by the commands that audit folders (run, review, ci)."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from auditor.core.errors import ToolError
from auditor.core.errors import LoadError
from auditor.facts import reference_of
from auditor.load.loader import load_submission
from auditor.core.contract import AuditOptions, Reference


def add_audit_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("comparison (SIGNIFICANCE)")
    g.add_argument("--against", metavar="FOLDER", help="record folder of the current frontier to compare with")
    g.add_argument("--sota-bpb", type=float, metavar="X", help="frontier val_bpb (instead of --against)")
    g.add_argument("--sota-loss", type=float, metavar="X", help="frontier val_loss in nats")
    g.add_argument("--sota-seed-bpbs", metavar="X,Y,Z", help="frontier per-seed val_bpb values (for Welch's test)")
    p.add_argument("--val-manifest", metavar="FILE",
                   help="dataset manifest (JSON with val_tokens, val_bytes, vocab_size) to check coverage "
                        "against instead of the built-in FineWeb table; for non-FineWeb datasets such as the "
                        "bundled example")
    p.add_argument("--as-of", metavar="YYYY-MM-DD",
                   help="judge by the rulings in force on this date (default: the folder's own date)")
    g = p.add_argument_group("configuration and waivers")
    g.add_argument("--config", metavar="FILE",
                   help="configuration file (default: .auditor.toml or auditor.toml found from the folder up to "
                        "the repository root; `auditor ci` reads it from the base revision)")
    g.add_argument("--no-config", action="store_true", help="ignore any configuration file")
    g.add_argument("--waive", action="append", metavar="RULE[:FOLDER_GLOB]=REASON",
                   help="waive a rule's fail/warn findings with a reason (repeatable); shown in the review")
    g = p.add_argument_group("gauntlet (runs the submission's script in a sandbox)")
    g.add_argument("--gauntlet", action="store_true",
                   help="run the script on synthetic data in a sandbox and apply the random-stream e-value test")
    g.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                   help="where the gauntlet runs the script (cpu: with CUDA shims; cuda: unmodified)")
    g.add_argument("--gauntlet-timeout", type=float, default=240.0, metavar="SECONDS",
                   help="wall-clock limit for the sandboxed run (default 240: the heaviest real records finish in about 180 s on 2 CPU cores, flip test included)")
    g.add_argument("--no-flip", action="store_true",
                   help="skip the flip test (the run forks at its first validation loss and evaluates a second "
                        "stream, re-drawn after N/2, beside the first; on the CPU only)")
    g.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="run the gauntlet even where bubblewrap cannot isolate it (weaker legacy layers; the "
                        "review says so in its first lines)")


def _floats(text: str, flag: str) -> list[float]:
    try:
        vals = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ToolError(f"{flag}: expected comma-separated numbers") from None
    if not all(math.isfinite(v) for v in vals):
        raise ToolError(f"{flag}: values must be finite")
    return vals


def reference_from_folder(path: str) -> Reference:
    try:
        ref = load_submission(path)
    except LoadError as exc:
        raise ToolError(f"--against {exc}") from None
    reference = reference_of(ref, f"folder {Path(path).name}")
    if reference is None:
        raise ToolError(f"--against {path}: no val_bpb could be read from that folder")
    return reference


def load_manifest(path: str) -> dict:
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ToolError(f"--val-manifest {path}: cannot be read as JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("val_tokens"), int):
        raise ToolError(f"--val-manifest {path}: needs an integer 'val_tokens'")
    return data


def options_from_args(args: argparse.Namespace) -> AuditOptions:
    opts = AuditOptions()
    if getattr(args, "against", None):
        opts.reference = reference_from_folder(args.against)
    elif getattr(args, "sota_bpb", None) is not None or getattr(args, "sota_seed_bpbs", None):
        bpbs = _floats(args.sota_seed_bpbs, "--sota-seed-bpbs") if args.sota_seed_bpbs else []
        bpb = args.sota_bpb if args.sota_bpb is not None else sum(bpbs) / len(bpbs)
        if not math.isfinite(bpb):
            raise ToolError("--sota-bpb must be finite")
        opts.reference = Reference(label=f"given val_bpb {bpb:.8f}", val_bpb=bpb,
                                   val_loss=getattr(args, "sota_loss", None), seed_bpbs=bpbs)
    if getattr(args, "gauntlet", False):
        timeout = float(getattr(args, "gauntlet_timeout", 240.0))
        if not (math.isfinite(timeout) and 1 <= timeout <= 86_400):
            raise ToolError("--gauntlet-timeout must be between 1 and 86400 seconds")
        opts.gauntlet = True
        opts.device = getattr(args, "device", "cpu") or "cpu"
        opts.gauntlet_timeout = timeout
        opts.gauntlet_flip = not bool(getattr(args, "no_flip", False))
        opts.unsafe_no_sandbox = bool(getattr(args, "unsafe_no_sandbox", False))
    as_of = getattr(args, "as_of", None)
    if as_of:
        if not re.fullmatch(r"20\d\d-\d\d-\d\d", as_of):
            raise ToolError("--as-of: expected a date YYYY-MM-DD")
        opts.as_of, opts.as_of_source = as_of, "--as-of option"
    if getattr(args, "val_manifest", None):
        opts.val_manifest = load_manifest(args.val_manifest)
    return opts


def audit(folder: str, args: argparse.Namespace):
    from auditor.engine import audit_submission

    from auditor.commands._config import apply_to_options, config_for_folder, folder_path

    options = options_from_args(args)
    try:
        sub = load_submission(folder)
    except LoadError as exc:
        raise ToolError(str(exc)) from None
    cfg = config_for_folder(args, folder)  # only for a folder that could be read
    apply_to_options(options, cfg, args, folder_path(folder, cfg.root))
    return audit_submission(sub, options)


def write_output(text: str, out: str | None) -> None:
    import sys

    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ToolError(f"--out {out}: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
