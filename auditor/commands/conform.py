"""`auditor conform TARGET`: certify a predictor or gold-only scorer against conditions C1-C4.

Why a command: a reviewer who suspects a record's eval (hashed cache, target-keyed gate, update before
score, rescoring) can wrap the eval in a small file and get numbers a submitter can reproduce.
"""

from __future__ import annotations

import json
import sys

from auditor.core.errors import ToolError

_HELP = """\
TARGET is FILE.py:NAME or catalog:NAME. NAME is a predictor class or factory (vocab_size ->
object with next_logprobs()/observe() and/or stream_logprobs(tokens)) or a gold-only scorer
score(tokens) -> log p(tokens[t] | tokens[:t]) for t = 1..len-1 (needs --vocab).
WARNING: FILE.py is imported and run in this process; that is the point of the command (you are
certifying your own code). Do not point it at code you would not run.
Reviewer recipe: wrap the record's eval loop as score(tokens) returning its per-token natural-log
probabilities, run `auditor conform wrap.py:score --vocab 1024`, and paste the text output (its last
line reproduces the run). C2 examples give the observed sum and the gold token's probability.
Exit status: 0 all conditions pass, 1 some condition fails, 2 the target could not be run."""


def add_parser(sub) -> None:
    import argparse

    p = sub.add_parser("conform", help="certify a predictor or scorer against C1-C4 (runs the given code)",
                       description="Measure conditions C1-C4 of issue #1017 on a random stream.",
                       epilog=_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", nargs="?", metavar="TARGET", help="FILE.py:NAME or catalog:NAME")
    p.add_argument("--name", metavar="NAME", help="certify catalog entry NAME (same as catalog:NAME)")
    p.add_argument("--list", action="store_true", help="list the catalog: mixers and negative controls")
    p.add_argument("--vocab", type=int, metavar="V", help="alphabet size (required for gold-only scorers)")
    p.add_argument("--length", type=int, default=96, metavar="T", help="random stream length (default 96)")
    p.add_argument("--positions", type=int, default=6, metavar="K", help="positions sampled (default 6)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="stream and sampling seed (default 0)")
    p.add_argument("--candidates", type=int, metavar="N",
                   help="candidates per position for the gold-scorer C1 check (default 16; C2 always uses all V)")
    p.add_argument("--tolerance", type=float, default=0.0, metavar="X",
                   help="C1/C4: allowed |diff| between runs of the same path (default 0: bit-identical)")
    p.add_argument("--trace-tolerance", type=float, default=1e-9, metavar="X",
                   help="C3: allowed |diff| between batch rows and the streaming trace (default 1e-9; "
                        "float32 models may need ~1e-5)")
    p.add_argument("--shape", choices=["auto", "stream", "gold"], default="auto",
                   help="override the shape guess (stream: predictor factory; gold: score(tokens))")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(func=run)


def _list(fmt: str) -> int:
    from reference_impl import catalog

    if fmt == "json":
        rows = {name: {"description": e.description, "expected": e.expected, "violates": list(e.violates),
                       "vocab": e.vocab} for name, e in sorted(catalog.ENTRIES.items())}
        print(json.dumps(rows, indent=2, sort_keys=True))
        return 0
    width = max(len(n) for n in catalog.ENTRIES)
    for name, e in sorted(catalog.ENTRIES.items()):
        tag = e.expected.upper() + (f" ({', '.join(e.violates)})" if e.violates else "")
        print(f"{name:<{width}}  {tag:<10}  {e.description}")
    return 0


def run(args) -> int:
    from reference_impl.harness import HarnessError, certify, format_text, load_spec

    if args.list:
        return _list(args.format)
    spec = f"catalog:{args.name}" if args.name else args.target
    if not spec:
        raise ToolError("give TARGET (FILE.py:NAME or catalog:NAME), --name NAME, or --list")
    if args.name and args.target:
        raise ToolError("give either TARGET or --name, not both")
    progress = None
    if not args.quiet and sys.stderr.isatty():
        def progress(msg: str) -> None:
            sys.stderr.write(f"\r\033[K{msg}")
            sys.stderr.flush()
    try:
        obj, vocab, label = load_spec(spec, args.vocab)
        report = certify(obj, vocab=vocab, length=args.length, positions=args.positions, seed=args.seed,
                         candidates=args.candidates, shape=args.shape, name=label, progress=progress,
                         tolerance=args.tolerance, trace_tolerance=args.trace_tolerance)
    except HarnessError as exc:
        raise ToolError(str(exc)) from None
    finally:
        if progress is not None:
            sys.stderr.write("\r\033[K")
    report["reproduce"] = _reproduce(spec, args, report)
    if args.format == "json":
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        sys.stdout.write(format_text(report) + f"reproduce: {report['reproduce']}\n")
    return 0 if report["verdict"] == "pass" else 1



def _reproduce(spec: str, args, report: dict) -> str:
    """The command line that regenerates this report (what a reviewer pastes into the PR thread)."""
    st = report["settings"]
    parts = ["auditor conform", spec, f"--vocab {st['vocab']}", f"--length {st['length']}",
             f"--positions {args.positions}", f"--seed {st['seed']}"]
    if args.candidates is not None:
        parts.append(f"--candidates {args.candidates}")
    if args.tolerance != 0.0:
        parts.append(f"--tolerance {args.tolerance:g}")
    if args.trace_tolerance != 1e-9:
        parts.append(f"--trace-tolerance {args.trace_tolerance:g}")
    if args.shape != "auto":
        parts.append(f"--shape {args.shape}")
    return " ".join(parts)
