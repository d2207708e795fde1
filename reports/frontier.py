"""The frontier table of a whole track (`auditor frontier`): Markdown and the JSON document.

Duck-typed on auditor.ci.track.TrackAudit (reports sit below the CI layer and never import it).
"""

from __future__ import annotations

from typing import Any

from auditor import __version__
from reports.json_doc import SCHEMA_VERSION
from reports.render import environment, writable


def _row_json(row) -> dict[str, Any]:
    res = row.result
    return {
        "path": row.path,
        "name": row.name,
        "date": row.date,
        "claimed_val_bpb": row.claimed,
        "verdict": row.verdict,
        "must_change": row.count("fail"),
        "to_review": row.count("review", "warn"),
        "waived": row.count("waived"),
        "blocking_rules": row.blocking_rules(limit=99),
        "compared_with": row.compared_with,
        "frontier": row.frontier,
        "judged_on": None if res.facts is None else res.facts.judged_on,
    }


def frontier_to_json(track) -> dict[str, Any]:
    rows = [_row_json(r) for r in track.rows]
    return {
        "schema_version": SCHEMA_VERSION,
        "track": track.track,
        "source": track.source,
        "rev": track.rev,
        "folders_found": track.folders,
        "audited": len(rows),
        "interrupted": track.interrupted,
        "counts": {v: sum(1 for r in rows if r["verdict"] == v) for v in ("PASS", "NEEDS_REVIEW", "FAIL")},
        "frontier": [r["name"] for r in rows if r["frontier"]],
        "folders": rows,
        "tool": {"name": "auditor", "version": __version__},
    }


def render_frontier(track) -> str:
    doc = frontier_to_json(track)
    for row, r in zip(doc["folders"], track.rows):
        row["icon"] = r.verdict.row.icon
        row["top"] = r.blocking_rules()
    return writable(environment().get_template("frontier.md.j2").render(**doc))
