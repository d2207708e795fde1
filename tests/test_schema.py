"""The published JSON Schemas (reports/schemas) describe what the commands write: every document carries
`schema_version` and validates, on synthetic folders always and on every corpus folder when ../shared is here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from auditor.cli import main
from auditor.core.contract import AuditOptions
from auditor.engine import audit_folder
from reports.json_doc import SCHEMA_VERSION, load_schema, validator
from reports.render import render_json
from tests.recordkit import write_record

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"


@pytest.mark.parametrize("name", ["audit", "ci", "frontier"])
def test_the_schemas_are_valid_and_packaged(name):
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    assert (ROOT / "reports" / "schemas" / f"{name}.schema.json").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text("utf-8")
    assert '"schemas/*.json"' in pyproject


def _doc(folder: Path, **opts) -> dict:
    return json.loads(render_json(audit_folder(str(folder), AuditOptions(**opts))))


@pytest.mark.parametrize("kwargs", [
    {},
    {"log_kwargs": {"model_bytes": 16_100_000}},
    {"seeds": {42: 1.081}},
    {"script": None},
    {"meta": {"val_bpb": "nan?", "seeds": "x"}},
])
def test_synthetic_documents_validate(tmp_path, kwargs):
    doc = _doc(write_record(tmp_path, **kwargs))
    assert doc["schema_version"] == SCHEMA_VERSION
    validator("audit").validate(doc)


def test_numbers_stay_numbers(tmp_path):
    doc = _doc(write_record(tmp_path))
    assert isinstance(doc["submission"]["claims"]["val_bpb"], float)
    assert all(isinstance(r["score"]["val_bpb"], float) for r in doc["runs"])


def test_a_drifted_document_fails_validation(tmp_path):
    doc = _doc(write_record(tmp_path))
    v = validator("audit")
    for bad in ({**doc, "verdict": "MAYBE"}, {k: v for k, v in doc.items() if k != "schema_version"},
                {**doc, "findings": [{**doc["findings"][0], "severity": "bad"}]}):
        assert not v.is_valid(bad)


def test_the_example_validates_via_the_cli(capsys):
    code = main(["run", str(ROOT / "examples" / "austen_demo"), "--format", "json", "--no-config",
                 "--val-manifest", str(ROOT / "examples" / "austen_demo" / "dataset_manifest.json")])
    assert code == 0
    validator("audit").validate(json.loads(capsys.readouterr().out))


def _corpus_folders() -> list[Path]:
    if not (CORPUS / "labels.tsv").is_file():
        return []
    rows = [line.split("\t")[0] for line in (CORPUS / "labels.tsv").read_text("utf-8").splitlines()
            if line and not line.startswith("#")]
    return [CORPUS / r for r in rows if (CORPUS / r).is_dir()]


@pytest.mark.skipif(not _corpus_folders(), reason="../shared/corpus is not here")
def test_every_corpus_folder_validates():
    v = validator("audit")
    folders = _corpus_folders()
    assert len(folders) == 64
    bad = {}
    for folder in folders:
        errors = sorted(v.iter_errors(_doc(folder)), key=lambda e: list(e.path))
        if errors:
            bad[folder.name] = f"{list(errors[0].path)}: {errors[0].message[:200]}"
    assert bad == {}
