"""The stable JSON document of one audit (`auditor run --format json`, and each folder of `auditor ci`).

Later features add keys; they never rename or remove one. The document's shape is published as a JSON
Schema (reports/schemas/audit.schema.json; the CI aggregate's is ci.schema.json) and every document
carries `schema_version`: the minor number grows when keys are added, the major one would grow only
if a key changed meaning (never so far).
"""

from __future__ import annotations

from typing import Any

from auditor import __version__

SCHEMA_VERSION = "1.1"  # 1.0: the documents before the version field; 1.1: schema_version, waivers, waived


def result_to_json(result) -> dict[str, Any]:
    sub = result.submission
    meta = sub.meta
    ref = result.options.reference
    gauntlet = result.observations.get("gauntlet")
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": result.verdict,
        "submission": {
            "name": sub.name,
            "track": sub.track,
            "files": sub.files,
            "readme": sub.readme_path,
            "submission_json": meta.path,
            "claims": {
                "name": meta.name,
                "author": meta.author,
                "github_id": meta.github_id,
                "date": meta.date,
                "track": meta.track,
                "val_bpb": meta.val_bpb,
                "val_bpb_source": meta.val_bpb_source,
                "val_loss": meta.val_loss,
                "bytes_total": meta.bytes_total,
                "bytes_code": meta.bytes_code,
                "seeds": meta.seeds,
            },
            "logs": sub.logs,
            "code": [
                {"path": c.path, "shipped_bytes": c.shipped_bytes, "stub": c.stub, "stub_target": c.stub_target,
                 "decoded_bytes": None if c.text is None else len(c.text.encode("utf-8", "replace")),
                 "decode_error": c.decode_error}
                for c in sub.code
            ],
        },
        "reference": None if ref is None else {
            "label": ref.label, "val_bpb": ref.val_bpb, "val_loss": ref.val_loss,
            "seed_bpbs": ref.seed_bpbs, "seed_losses": ref.seed_losses,
        },
        "runs": [r.to_json() for r in sub.runs],
        "rules": [{"id": r.id, "title": r.title, "status": result.rule_status(r.id)} for r in result.rules],
        "findings": [f.to_json() for f in result.findings],
        "waivers": [w.to_json() for w in getattr(result, "waivers", [])],
        "sections": {} if gauntlet is None else {"gauntlet": gauntlet.to_json()},
        "judged": None if result.facts is None else {
            "date": result.facts.judged_on, "date_source": result.facts.judged_on_source,
            "submission_date": result.facts.date, "track": result.facts.track,
            "track_source": result.facts.track_source, "non_record": result.facts.non_record,
        },
        "tool": {"name": "auditor", "version": __version__},
    }


def load_schema(name: str) -> dict[str, Any]:
    """A published schema: "audit" (auditor run --format json), "ci" (the CI aggregate), "frontier"."""
    import json
    from importlib.resources import files

    return json.loads(files("reports").joinpath("schemas", f"{name}.schema.json").read_text("utf-8"))


def validator(name: str):
    """A jsonschema validator for a published schema, resolving the references between them offline."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schemas = [load_schema(n) for n in dict.fromkeys(("audit", name))]
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas)
    return Draft202012Validator(schemas[-1], registry=registry)
