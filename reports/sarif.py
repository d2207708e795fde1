"""SARIF 2.1.0 for code scanning: one result per finding that is an alert, with the rulebook as metadata.

Code scanning opens an alert for every result it is given, so by default only fail, review and warn
findings become results (grades.STATUSES[...].alert); `include_all` (`--sarif-all`) adds info and
pass results for other SARIF viewers. Level/kind follow SARIF §3.27.9 (a level other than "none"
requires kind "fail"): high-confidence fail -> error, warn or medium-confidence fail -> warning,
info -> informational, pass -> pass. A rule's defaultConfiguration.level is the worst level of its
results in the log, else the table in grades.SARIF_DEFAULT_LEVEL by rule kind. The run records the
invocation (exit code) and, when known, the repository and revision audited.
Paths are repository-relative URIs under %SRCROOT%; a finding without a file points at its folder's
submission JSON or README (code-scanning uploads need a location). Output is deterministic: no clock,
no absolute paths; fingerprints hash the rule, folder and message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import quote

from auditor.core.grades import SARIF_DEFAULT_LEVEL, SARIF_LEVEL_RANK, finding_status
from reports import escape

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
MAX_LOCATIONS = 10


@dataclass
class SarifUnit:
    """Findings whose evidence paths are relative to `prefix` (a record folder, or "" for the repo)."""

    prefix: str
    findings: list
    anchor: str | None = None  # repo path used as location for findings without file evidence
    properties: dict[str, Any] = field(default_factory=dict)


def _level_kind(finding) -> tuple[str, str]:
    row = finding_status(finding)
    return row.sarif_level, row.sarif_kind


def _pascal(rule_id: str) -> str:
    return "".join(part.capitalize() for part in rule_id.split("_")) or "Rule"


def _uri(path: str) -> str:
    return quote(path, safe="/-._~")


def _join(prefix: str, path: str | None) -> str:
    if not path:
        return prefix
    return f"{prefix}/{path}" if prefix else path


def rule_descriptor(rule) -> dict[str, Any]:
    explanation = " ".join((rule.explanation or "").split())
    cites = list(rule.citations)
    help_md = explanation + ("\n\nSources: " + ", ".join(f"<{c}>" for c in cites) if cites else "")
    desc: dict[str, Any] = {
        "id": rule.id,
        "name": _pascal(rule.id),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.summary or rule.title},
        "help": {"text": explanation + (" Sources: " + " ".join(cites) if cites else ""), "markdown": help_md},
        "defaultConfiguration": {"level": SARIF_DEFAULT_LEVEL.get(getattr(rule, "kind", "evidence"), "warning")},
        "properties": {"citations": cites, "kind": getattr(rule, "kind", "evidence"),
                       "tags": ["parameter-golf", getattr(rule, "kind", "evidence")]},
    }
    if cites:
        desc["helpUri"] = cites[0]
    return desc


def _unknown_rule(rule_id: str) -> dict[str, Any]:
    return {"id": rule_id, "name": _pascal(rule_id), "shortDescription": {"text": rule_id},
            "fullDescription": {"text": rule_id}, "defaultConfiguration": {"level": "warning"},
            "properties": {"citations": [], "kind": "unknown", "tags": ["parameter-golf"]}}


def _location(uri_path: str, line: int | None, text: str, loc_id: int | None = None) -> dict[str, Any]:
    phys: dict[str, Any] = {"artifactLocation": {"uri": _uri(uri_path), "uriBaseId": "%SRCROOT%"}}
    if isinstance(line, int) and line >= 1:
        region: dict[str, Any] = {"startLine": line}
        if text:
            region["snippet"] = {"text": escape.plain(text, 500)}
        phys["region"] = region
    loc: dict[str, Any] = {"physicalLocation": phys}
    if loc_id is not None:
        loc["id"] = loc_id
    return loc


def _fingerprint(rule: str, prefix: str, message: str, first_path: str) -> str:
    h = hashlib.sha256("\0".join([rule, prefix, message, first_path]).encode("utf-8", "replace"))
    return h.hexdigest()[:32]


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else str(obj)
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


def sarif_log(units: Iterable[SarifUnit], rules: list, *, tool_version: str,
              run_properties: dict[str, Any] | None = None, include_all: bool = False,
              exit_code: int | None = None, repository_uri: str | None = None,
              revision: str | None = None) -> dict[str, Any]:
    """The SARIF document as a dict (serialise with reports.render.to_json_text)."""
    descriptors = [rule_descriptor(r) for r in rules]
    index = {d["id"]: i for i, d in enumerate(descriptors)}
    results = []
    for unit in units:
        for f in unit.findings:
            if not (include_all or finding_status(f).alert):
                continue
            if f.rule not in index:
                index[f.rule] = len(descriptors)
                descriptors.append(_unknown_rule(f.rule))
            level, kind = _level_kind(f)
            evidence = [e for e in f.evidence if e.path][:MAX_LOCATIONS]
            if evidence:
                locations = [_location(_join(unit.prefix, evidence[0].path), evidence[0].line, evidence[0].text)]
                related = [_location(_join(unit.prefix, e.path), e.line, e.text, i)
                           for i, e in enumerate(evidence[1:], 1)]
            else:
                anchor = unit.anchor or unit.prefix
                locations = [_location(anchor, None, "")] if anchor else []
                related = []
            first = locations[0]["physicalLocation"]["artifactLocation"]["uri"] if locations else ""
            res: dict[str, Any] = {
                "ruleId": f.rule,
                "ruleIndex": index[f.rule],
                "kind": kind,
                "level": level,
                "message": {"text": _sarif_text(f.message) or f.rule},
                "locations": locations,
                "partialFingerprints": {"auditorFinding/v1": _fingerprint(f.rule, unit.prefix, f.message, first)},
                "properties": _json_safe({"severity": f.severity, "confidence": f.confidence,
                                          "folder": unit.prefix, "data": f.data, **unit.properties}),
            }
            if related:
                res["relatedLocations"] = related
            if getattr(f, "waived", None):  # only with include_all: a waived finding is no alert
                res["suppressions"] = [{"kind": "external", "status": "accepted",
                                        "justification": _sarif_text(f.waived)}]
            results.append(res)
    _match_default_levels(descriptors, results)
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "auditor", "fullName": "Parameter Golf record auditor",
                            "version": tool_version, "semanticVersion": tool_version, "rules": descriptors}},
        "automationDetails": {"id": "parameter-golf-auditor/"},
        "columnKind": "unicodeCodePoints",
        "results": results,
    }
    if exit_code is not None:  # a verdict (0, 1, 3) is a successful execution; 2 is a tool error
        run["invocations"] = [{"executionSuccessful": exit_code != 2, "exitCode": exit_code}]
    if repository_uri:
        vcs: dict[str, Any] = {"repositoryUri": repository_uri}
        if revision:
            vcs["revisionId"] = revision
        run["versionControlProvenance"] = [vcs]
    if run_properties:
        run["properties"] = _json_safe(run_properties)
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def _match_default_levels(descriptors: list[dict[str, Any]], results: list[dict[str, Any]]) -> None:
    """A rule that has results defaults to the worst level among them (alerts match their rule)."""
    worst: dict[int, str] = {}
    for r in results:
        cur = worst.get(r["ruleIndex"])
        if cur is None or SARIF_LEVEL_RANK[r["level"]] < SARIF_LEVEL_RANK[cur]:
            worst[r["ruleIndex"]] = r["level"]
    for i, level in worst.items():
        if level != "none":
            descriptors[i]["defaultConfiguration"] = {"level": level}


def _sarif_text(text: str) -> str:
    """SARIF message text: one plain line, with [ and ] escaped so no embedded link (§3.11.6) can be formed."""
    return escape.plain(text, 2000).replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
