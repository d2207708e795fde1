"""Waivers: a maintainer's decision, with a reason, that a finding does not block a folder.

A waiver names a rule ID, a glob on the folder path (`records/track_10min_16mb/2026-04-*`, or a folder
name), a mandatory reason and optionally a message substring, a glob on an evidence path and an expiry
date (the last day it applies). The engine applies them in one place, after the rules ran: a matching
fail/warn finding keeps its severity and data and gets `waived = reason`, which makes its status
`waived` (auditor/core/grades.py), so it no longer counts toward the verdict and every report shows it
with its reason. Waivers never build findings; what happened to each waiver that concerns the folder
(applied, expired, unmatched) is reported beside the findings as information.

Where waivers come from (the audited repository's `.auditor.toml`, `--waive`) is the commands' business.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Iterable

from auditor.core.errors import ToolError

_DATE = re.compile(r"20\d\d-\d\d-\d\d")
WAIVABLE = ("fail", "warn")  # pass/info findings block nothing: there is nothing to waive


@dataclass(frozen=True)
class Waiver:
    rule: str
    folder: str  # glob on the folder's repository path, or on its name
    reason: str
    message: str | None = None  # substring the finding's message must contain
    path: str | None = None  # glob one of the finding's evidence paths must match
    expires: str | None = None  # YYYY-MM-DD, the last day the waiver applies
    source: str = ""  # where it was declared, for the report

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "folder": self.folder, "reason": self.reason, "message": self.message,
                "path": self.path, "expires": self.expires, "source": self.source}

    def concerns(self, folder_paths: Iterable[str]) -> bool:
        return any(fnmatchcase(p, self.folder) for p in folder_paths if p)

    def matches(self, finding) -> bool:
        if finding.rule != self.rule or str(finding.severity) not in WAIVABLE:
            return False
        if self.message is not None and self.message not in finding.message:
            return False
        if self.path is not None and not any(fnmatchcase(e.path or "", self.path) for e in finding.evidence):
            return False
        return True

    def expired(self, today: str | None) -> bool:
        return bool(self.expires and today and today > self.expires)


@dataclass(frozen=True)
class WaiverOutcome:
    """What a waiver concerning this folder did: applied (to `findings` findings), expired, unmatched."""

    waiver: Waiver
    status: str  # applied | expired | unmatched
    findings: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "findings": self.findings, **self.waiver.to_json()}


def apply_waivers(findings: list, waivers: Iterable[Waiver], folder_paths: Iterable[str],
                  today: str | None) -> list[WaiverOutcome]:
    """Mark the findings the waivers match (first matching waiver wins); return each concerned waiver's
    outcome, in declaration order. Waivers whose folder glob matches none of `folder_paths` are left out."""
    paths = tuple(folder_paths)
    out: list[WaiverOutcome] = []
    for w in waivers:
        if not w.concerns(paths):
            continue
        if w.expired(today):
            out.append(WaiverOutcome(w, "expired"))
            continue
        hit = 0
        for f in findings:
            if f.waived is None and w.matches(f):
                f.waived = w.reason
                hit += 1
        out.append(WaiverOutcome(w, "applied" if hit else "unmatched", hit))
    return out


_KEYS = {"rule", "folder", "reason", "message", "path", "expires"}


def parse_waiver(entry: Any, source: str, known_rules: Iterable[str] | None = None) -> Waiver:
    """One `[[waiver]]` table; a ToolError (one line, exit 2) names what is wrong and where."""
    if not isinstance(entry, dict):
        raise ToolError(f"{source}: a waiver must be a table (rule, folder, reason)")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ToolError(f"{source}: unknown waiver key {unknown[0]!r} (allowed: {', '.join(sorted(_KEYS))})")
    for key in _KEYS:
        if key in entry and not isinstance(entry[key], str):
            raise ToolError(f"{source}: waiver {key!r} must be a string")
    rule = (entry.get("rule") or "").strip().upper()
    if not rule:
        raise ToolError(f"{source}: a waiver needs a rule ID ('rule')")
    if known_rules is not None and rule not in set(known_rules):
        raise ToolError(f"{source}: unknown rule {rule!r} in a waiver; `auditor rules` lists them")
    reason = " ".join((entry.get("reason") or "").split())
    if not reason:
        raise ToolError(f"{source}: the waiver of {rule} has no reason; every waiver needs one ('reason')")
    folder = (entry.get("folder") or "").strip()
    if not folder:
        raise ToolError(f"{source}: the waiver of {rule} needs a folder glob ('folder'; '*' for every folder)")
    expires = entry.get("expires")
    if expires is not None and not _DATE.fullmatch(expires):
        raise ToolError(f"{source}: the waiver of {rule} has expires {expires!r}; expected YYYY-MM-DD")
    return Waiver(rule, folder, reason, message=entry.get("message") or None, path=entry.get("path") or None,
                  expires=expires, source=source)


def parse_waive_flag(text: str, known_rules: Iterable[str] | None = None) -> Waiver:
    """`--waive RULE[:FOLDER_GLOB]=REASON` (the folder glob defaults to every folder)."""
    head, sep, reason = text.partition("=")
    if not sep:
        raise ToolError(f"--waive {text!r}: expected RULE[:FOLDER_GLOB]=REASON (a reason is required)")
    rule, _, folder = head.partition(":")
    return parse_waiver({"rule": rule, "folder": folder or "*", "reason": reason}, "--waive", known_rules)
