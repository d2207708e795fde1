"""Census of the sandboxed gauntlet over real record folders: does each script reach its scoring line?

Usage: python benchmarks/gauntlet_census.py [CORPUS_DIR] [--only SUBSTR ...] [--timeout S] [--limit N]
                                            [--json OUT] [--no-flip] [--threads N]
  CORPUS_DIR defaults to ../shared/corpus (labels.tsv names the folders, their label and families).
  --only keeps the folders whose path contains any of the given substrings (repeatable).

Prints one line per folder as it finishes, then a table: folder, label, reached scoring (y/n), the
typed reason when not (missing shim for X / needs GPU: X / timeout at stage S / script error at line N
/ ...), the captured per-position statistics when there are some (located/captured losses, coverage of
the claimed pass with positions scored twice and the number of passes, captured e-value advantage),
the flip test (on unless --no-flip), the worst verdict per probe (E = EVALUE_RANDOM_STREAM, C4 / C1 = their dynamic
findings) and the seconds. Each folder costs 30-180 s of CPU.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from auditor.core.contract import AuditOptions  # noqa: E402
from auditor.engine import audit_folder  # noqa: E402

_SCRIPT_LINE = re.compile(r'File "[^"]*/run/([^"]+)", line (\d+)')


def labelled(corpus: Path) -> list[tuple[str, str, str]]:
    """(relative path, expected, families) for every labelled folder present."""
    out = []
    labels = corpus / "labels.tsv"
    if not labels.is_file():
        return out
    for line in labels.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) >= 3 and (corpus / parts[0]).is_dir():
            out.append((parts[0], parts[1], parts[2]))
    return out


def script_line(tb: str) -> str | None:
    """The last frame of the traceback inside the submission's own files ("train_gpt.py:123")."""
    hits = _SCRIPT_LINE.findall(tb or "")
    hits = [h for h in hits if not h[0].startswith(".gauntlet")]
    return f"{hits[-1][0]}:{hits[-1][1]}" if hits else None


def _line_of(st) -> str | None:
    where = script_line(str(st.data.get("traceback_tail", "")))
    if where:
        return where
    m = re.search(r"\(<string>, line (\d+)\)|line (\d+)", st.detail or "")
    return f"line {m.group(1) or m.group(2)}" if m else None


def reason_of(obs) -> tuple[bool, str]:
    """(reached scoring, typed reason) for one GauntletObservation."""
    if obs is None:
        return False, "no gauntlet observation"
    if obs.evalue is not None:
        return True, "scored"
    decode = next((s for s in obs.stages if s.name == "decode"), None)
    if decode is not None and (decode.status == "fail" or decode.detail.startswith("no entry-point")):
        return False, f"no runnable script: {decode.detail[:90]}"
    gpu = [s for s in obs.stages if s.status == "needs_gpu"]
    if gpu:
        return False, f"needs GPU: {gpu[0].detail[:90]}"
    if obs.stopped_by is not None:
        kind = obs.stopped_by.kind
        if "wall" in kind or "CPU" in kind or "timed" in kind:
            return False, f"timeout at stage {obs.stopped_by.stage}"
        return False, f"{kind} at stage {obs.stopped_by.stage}"
    main = [s for s in obs.stages if s.name in ("train", "serialize", "eval") and s.status != "pass"]
    failed = next((s for s in main if s.status in ("fail", "skipped") and s.detail
                   and not s.detail.startswith(("not reached", "no model file", "the serialized"))), None)
    if failed is None:
        failed = next((s for s in obs.stages if s.status == "fail"), None)
    if failed is None:
        return False, f"no scoring line: {(obs.incomplete or '')[:90]}"
    if failed.name == "log parsing" and any(s.name == "train" and s.status == "pass" for s in obs.stages):
        return False, "no scoring line: the script ended normally without printing a final val_loss line"
    detail = failed.detail or ""
    m = re.search(r"package '([^']+)' is not installed", detail)
    if m:
        return False, f"missing shim for {m.group(1)}"
    if "SyntaxError" in detail and "f-string" in detail:
        return False, f"needs Python >= 3.12 (PEP 701 f-string) at {_line_of(failed) or '?'}"
    return False, f"script error at {_line_of(failed) or 'unknown line'} ({failed.name}): {detail[:90]}"


def capture_cols(obs) -> dict:
    cap = getattr(obs, "capture", None) if obs is not None else None
    flip = getattr(obs, "flip", None) if obs is not None else None
    out = {"scored": "-", "coverage": "-", "e_adv": "-", "flip": "-"}
    if flip:
        out["flip"] = ("incomplete" if flip.get("incomplete") else
                       "equal" if flip.get("first_diff") is None else f"diff@{flip['first_diff']}/k={flip['k']}")
    if not cap:
        return out
    cov = cap.get("coverage") or {}
    ev = cap.get("evalue") or {}
    out.update(scored=f"{cap.get('located', 0)}/{cap.get('captured', 0)}",
               coverage=(f"{cov.get('fraction_scored', 0):.2f} x2:{cov.get('scored_twice', 0)} "
                         f"p{len(cap.get('passes') or [])}" if cov else "-"),
               e_adv=(f"{ev.get('advantage_nats', 0):.0f}/{ev.get('bound_nats', 0):.0f}" if ev else "-"))
    return out


PROBES = {"E": "EVALUE_RANDOM_STREAM", "C4": "C4_SINGLE_PASS", "C1": "C1_CAUSAL", "C3": "C3_SCORE_FIRST"}
ORDER = {"fail": 0, "warn": 1, "info": 2, "pass": 3}


def _dynamic(result, rule: str) -> list:
    return [f for f in result.findings if f.rule == rule and (rule == "EVALUE_RANDOM_STREAM" or f.data.get("dynamic"))]


def verdict_of(result) -> str:
    """Worst severity per probe: E = e-value (printed or captured), C4 = coverage, C1 / C3 = the flip test."""
    out = []
    for key, rule in PROBES.items():
        sev = [f.severity.value for f in _dynamic(result, rule)]
        if sev:
            out.append(f"{key}:{min(sev, key=lambda x: ORDER.get(x, 9))}")
    return " ".join(out) or "-"


def caught_conditions(result) -> list[str]:
    """Conditions the failing probes name: the flip test's rule (C1 or C3), C4 for coverage, and for the
    e-value the conditions its finding names (C2 alone when the flip test and coverage rule out the rest)."""
    out: set[str] = set()
    for key, rule in PROBES.items():
        for f in _dynamic(result, rule):
            if f.severity.value != "fail":
                continue
            out.update(f.data.get("conditions") or [] if key == "E" else [key])
    return sorted(out)


def clean(result) -> bool:
    """Every probe that ran passed (no fail, no warn)."""
    return all(f.severity.value in ("pass", "info") for rule in PROBES.values() for f in _dynamic(result, rule))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="?", default=str(ROOT.parent / "shared" / "corpus"))
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--json", default="")
    ap.add_argument("--no-flip", action="store_true", help="skip the flip test (train once, evaluate twice)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads per sandboxed run (default: the sandbox's)")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    rows = labelled(corpus)
    if not rows:
        print(f"no labelled folders under {corpus} (labels.tsv); nothing to do")
        return 0
    if args.only:
        rows = [r for r in rows if any(s in r[0] for s in args.only)]
    if args.limit:
        rows = rows[:args.limit]
    table = []
    for i, (rel, expected, fams) in enumerate(rows, 1):
        t0 = time.monotonic()
        opts = AuditOptions(gauntlet=True, gauntlet_control=False, gauntlet_timeout=args.timeout,
                            gauntlet_flip=not args.no_flip, gauntlet_threads=args.threads or None)
        try:
            result = audit_folder(str(corpus / rel), opts)
            obs = result.observations.get("gauntlet")
            reached, why = reason_of(obs)
            caught = caught_conditions(result)
            row = {"folder": rel.rsplit("/", 1)[-1], "label": expected, "families": fams,
                   "reached": "y" if reached else "n", "reason": why, **capture_cols(obs),
                   "verdict": verdict_of(result), "caught": "|".join(caught) or "-",
                   "right_family": bool(set(caught) & set(fams.split("|"))), "clean": clean(result),
                   "stage_s": {s.name: round(s.seconds, 1) for s in (obs.stages if obs else [])
                               if s.name in ("train", "serialize", "eval", "flip test")}}
        except Exception as exc:  # noqa: BLE001 - a census keeps going
            row = {"folder": rel.rsplit("/", 1)[-1], "label": expected, "families": fams, "reached": "n",
                   "reason": f"auditor error: {type(exc).__name__}: {str(exc)[:80]}", **capture_cols(None),
                   "verdict": "-", "caught": "-", "right_family": False, "clean": False, "stage_s": {}}
        row["seconds"] = round(time.monotonic() - t0, 1)
        table.append(row)
        print(f"[{i}/{len(rows)}] {row['seconds']:6.1f}s {row['reached']} {row['label']:<7} {row['folder'][:60]}: "
              f"{row['reason']}", flush=True)
    print("\n| folder | label (families) | reached | reason | located/captured | coverage | captured e-adv/bound | "
          "flip | probes | caught | s (train/eval/flip) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in table:
        st = r.get("stage_s") or {}
        secs = f"{r['seconds']} ({st.get('train', 0):.0f}/{st.get('eval', 0):.0f}/{st.get('flip test', 0):.0f})"
        fam = r["label"] + ("" if r["families"] == "-" else f" ({r['families']})")
        print(f"| {r['folder'][:50]} | {fam} | {r['reached']} | {r['reason'][:80]} | {r['scored']} | "
              f"{r['coverage']} | {r['e_adv']} | {r.get('flip', '-')} | {r['verdict']} | {r['caught']} | {secs} |")
    n = sum(r["reached"] == "y" for r in table)
    print(f"\nreached scoring: {n}/{len(table)}")
    valid = [r for r in table if r["label"] == "VALID" and r["reached"] == "y"]
    bad = [r for r in table if r["label"] == "INVALID" and r["reached"] == "y"]
    if valid:
        ok = sum(r["clean"] for r in valid)
        print(f"runnable merged folders passing every probe: {ok}/{len(valid)} ({100 * ok / len(valid):.0f} %)")
    if bad:
        ok = sum(r["right_family"] for r in bad)
        fams = sorted({r["families"] for r in bad})
        print(f"runnable invalid folders caught with the right family: {ok}/{len(bad)} ({100 * ok / len(bad):.0f} %); "
              f"families run: {', '.join(fams)}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
