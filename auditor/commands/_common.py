"""Options shared by the commands that audit folders (run, review, ci)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from auditor.cli import ToolError
from auditor.loader import LoadError, load_submission
from rules.base import AuditOptions, Reference


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
    seeds: dict[int | str, tuple[float, float]] = {}
    for run in ref.runs:
        score = run.score_phase
        if score is None:
            continue
        key = run.seed.value if run.seed is not None else f"{run.path}#{run.index}"
        seeds[key] = (score.val_bpb, score.val_loss)
    bpbs = [v[0] for _, v in sorted(seeds.items(), key=lambda kv: str(kv[0]))]
    losses = [v[1] for _, v in sorted(seeds.items(), key=lambda kv: str(kv[0]))]
    val_bpb = ref.meta.val_bpb if ref.meta.val_bpb is not None else (sum(bpbs) / len(bpbs) if bpbs else None)
    val_loss = ref.meta.val_loss if ref.meta.val_loss is not None else (sum(losses) / len(losses) if losses else None)
    if val_bpb is None:
        raise ToolError(f"--against {path}: no val_bpb could be read from that folder")
    return Reference(label=f"folder {Path(path).name}", val_bpb=val_bpb, val_loss=val_loss,
                     seed_bpbs=bpbs, seed_losses=losses)


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
    if getattr(args, "val_manifest", None):
        opts.extra["val_manifest"] = load_manifest(args.val_manifest)
    return opts


def audit(folder: str, args: argparse.Namespace):
    from auditor.audit import audit_folder

    options = options_from_args(args)
    try:
        return audit_folder(folder, options)
    except LoadError as exc:
        raise ToolError(str(exc)) from None


def write_output(text: str, out: str | None) -> None:
    import sys

    if out:
        try:
            Path(out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ToolError(f"--out {out}: {exc.strerror}") from None
    else:
        sys.stdout.write(text)
