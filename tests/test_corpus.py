"""The labeled real folders (../shared/corpus): every merged folder ends as maintainers judged it, except
the FAILs documented in docs/merged-exceptions.md, and the rejected clusters are caught with the right
rule family. Skips cleanly when ../shared is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.engine import audit_folder

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"

# docs/merged-exceptions.md: merged folders whose FAIL stands, and the rule that fails them
EXCEPTIONS = {
    "2026-03-19_MLP3x_QAT_Int6_SlidingWindow": {"CLAIM_CONSISTENCY"},
    "2026-03-19_int6_STE QAT_ MLP_bigram _U_Net": {"ARTIFACT_SIZE", "FILES"},
    "2026-03-23_DGAttention_DavidGao": {"ARTIFACT_SIZE"},
}
MIN_PASS = 30  # of 35 merged folders (measured 2026-12-07; none FAIL beyond EXCEPTIONS)
MIN_CAUGHT = 29  # of 29 rejected folders, with the right family


def _labels() -> list[tuple[str, str, str]]:
    if not (CORPUS / "labels.tsv").is_file():
        pytest.skip("../shared/corpus is not present")
    rows = []
    for line in (CORPUS / "labels.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            path, expected, families, _ = line.split("\t", 3)
            rows.append((path, expected, families))
    return rows


@pytest.fixture(scope="module")
def outcomes():
    out = {}
    for path, expected, families in _labels():
        result = audit_folder(str(CORPUS / path))
        failing = {f.rule for f in result.findings if f.severity == "fail"}  # as corpus_score.py counts
        out[path] = (expected, families, str(result.verdict), failing)
    return out


def test_merged_folders_fail_only_where_documented(outcomes):
    wrong = {}
    for path, (expected, _, verdict, failing) in outcomes.items():
        if expected != "VALID":
            continue
        name = path.rsplit("/", 1)[-1]
        if name in EXCEPTIONS:
            assert verdict == "FAIL" and failing == EXCEPTIONS[name], (name, failing)
        elif verdict == "FAIL":
            wrong[name] = sorted(failing)
    assert wrong == {}


def test_merged_folders_mostly_pass(outcomes):
    passed = [p for p, (e, _, v, _) in outcomes.items() if e == "VALID" and v == "PASS"]
    assert len(passed) >= MIN_PASS


def test_rejected_folders_are_caught_with_the_right_family(outcomes):
    caught = [p for p, (e, fams, v, failing) in outcomes.items()
              if e == "INVALID" and v == "FAIL" and any(r.startswith(f) for r in failing for f in fams.split("|"))]
    assert len(caught) >= MIN_CAUGHT


def test_byte_mixture_claims_fail_c2_with_the_log_lines(outcomes):
    """Every rejected folder whose claim is the byte-PPM mixture's printed figure gets C2 from the logs."""
    ppm = [p for p, (e, fams, _, _) in outcomes.items() if e == "INVALID" and fams == "C2" and "PPM" in p.upper()]
    assert len(ppm) >= 6
    caught = [p for p in ppm if "C2_NORMALIZED" in outcomes[p][3]]
    assert len(caught) >= 6
