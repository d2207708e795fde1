"""Generated folders through the public CLI: every run ends with a verdict or a clean one-line error
(exit 2), within 5 s + 1 s/MB of CPU, and never with a traceback.

CI runs a small derandomized sample (AUDITOR_FUZZ_EXAMPLES unset: 60 folder cases, 30 per piece).
Long run (10,000 cases; the piece properties take half the number each), two processes:

    AUDITOR_FUZZ_EXAMPLES=2500 AUDITOR_FUZZ_STATS=/tmp/fuzz_a.jsonl pytest -q -p no:cacheprovider \
        --hypothesis-seed=20261122 tests/test_fuzz_cli.py::test_generated_folder_ends_in_verdict
    AUDITOR_FUZZ_EXAMPLES=5000 AUDITOR_FUZZ_STATS=/tmp/fuzz_b.jsonl pytest -q -p no:cacheprovider \
        --hypothesis-seed=20261122 tests/test_fuzz_cli.py -k "json or log or code"

Each stats line records one case (CPU and wall seconds, input bytes, exit code, a summary).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hypothesis import given, note
from hypothesis import strategies as st

from adversarial_kit import (
    Blob,
    CliResult,
    assert_clean_outcome,
    code_doc,
    describe,
    folder_spec,
    fuzz_settings,
    json_doc,
    log_doc,
    record_stats,
    run_main,
    spec_bytes,
    time_bound,
    valid_spec,
    write_spec,
)


def _audit_spec(spec, fmt: str, kind: str) -> str | None:
    size = spec_bytes(spec)
    note(describe(spec))
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        folder = write_spec(Path(tmp) / "records" / "track_10min_16mb" / "2026-01-01_Fuzz", spec)
        bound = time_bound(size)
        res = run_main(["run", str(folder), "--format", fmt], hang_after=4 * bound)
    record_stats(kind, res, size, describe(spec))
    verdict = assert_clean_outcome(res, fmt)
    assert res.cpu < bound, f"{res.cpu:.2f} s CPU for {size:,} bytes (bound {bound:.1f} s)"
    return verdict


@fuzz_settings()
@given(spec=folder_spec(), fmt=st.sampled_from(["md", "json"]))
def test_generated_folder_ends_in_verdict(spec, fmt):
    verdict = _audit_spec(spec, fmt, "folder")
    # a generated folder always exists and is readable, so the tool itself never errors
    assert verdict in ("PASS", "FAIL", "NEEDS_REVIEW")


@fuzz_settings(0.5)
@given(doc=json_doc().map(Blob))
def test_generated_submission_json(doc):
    spec = valid_spec() + [("submission.json", doc)]
    verdict = _audit_spec(spec, "json", "json")
    assert verdict in ("PASS", "FAIL", "NEEDS_REVIEW")


@fuzz_settings(0.5)
@given(log=log_doc().map(Blob), name=st.sampled_from(["train_seed42.log", "train.log", "logs/seed42.txt"]))
def test_generated_log(log, name):
    spec = valid_spec() + [(name, log)]
    verdict = _audit_spec(spec, "md", "log")
    assert verdict in ("PASS", "FAIL", "NEEDS_REVIEW")


@fuzz_settings(0.5)
@given(code=code_doc().map(Blob), sibling=st.one_of(st.none(), code_doc().map(Blob)))
def test_generated_code(code, sibling):
    spec = valid_spec() + [("train_gpt.py", code)] + ([("train_gpt_real.py", sibling)] if sibling is not None else [])
    verdict = _audit_spec(spec, "json", "code")
    assert verdict in ("PASS", "FAIL", "NEEDS_REVIEW")


@fuzz_settings(0.1)
@given(spec=folder_spec(), fmt=st.sampled_from(["md", "json"]))
def test_generated_folder_through_a_real_process(spec, fmt):
    """A few cases through a real interpreter: exit status, stdout bytes (strict UTF-8) and stderr
    as CI sees them, which in-process capture cannot show."""
    note(describe(spec))
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        folder = write_spec(Path(tmp) / "records" / "track_10min_16mb" / "2026-01-01_Fuzz", spec)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PYTHONIOENCODING": "ascii"}
        proc = subprocess.run([sys.executable, "-m", "auditor", "run", str(folder), "--format", fmt],
                              capture_output=True, timeout=300, env=env, cwd=tmp)
    res = CliResult(proc.returncode, proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8"), 0.0)
    assert assert_clean_outcome(res, fmt) in ("PASS", "FAIL", "NEEDS_REVIEW")
