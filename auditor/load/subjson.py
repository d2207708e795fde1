"""submission.json: strict parse, lenient normalisation.

No key appears in every real submission file, types drift (seeds as list or dict, string seed keys,
`val_loss` sometimes holding a BPB value), so we keep the raw object, validate its types against a
JSON schema (submission.schema.json, shipped beside this module) and derive the figures the rules need
through documented fallbacks. Every oddity becomes a SUBMISSION_JSON finding, never an exception.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from importlib import resources
from statistics import fmean
from typing import Any

import jsonschema

from auditor.core.model import Evidence, Issue, SubmissionMeta

RULE_ID = "SUBMISSION_JSON"
# `val_bpb_3seed_mean`, `val_bpb_mean`: a claimed mean under another name (used when `val_bpb` is absent)
_MEAN_BPB_KEY = re.compile(r"^val_bpb_(?:\w+_)?mean$|^val_bpb_mean_\w+$")
MAX_JSON_BYTES = 4 * 1024 * 1024


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(resources.files("auditor.load").joinpath("submission.schema.json").read_text("utf-8"))
    return jsonschema.Draft202012Validator(schema)


class _Duplicate(Exception):
    pass


_SURROGATE = re.compile(r"[\ud800-\udfff]")
MAX_ITEMS = 1_000  # per list/object: real files hold a handful of seeds; more is a flood
MAX_SAME_ISSUES = 10  # per kind of issue, then one line saying how many more


def _scrub(obj: Any, flags: set[str], depth: int = 0) -> Any:
    """Make the parsed object safe to report on. Lone surrogates (from `\\ud800`-style escapes)
    become U+FFFD: they cannot be written as UTF-8, so one in a name would crash every report writer.
    Nested lists and objects keep their first MAX_ITEMS entries, so a flood of entries cannot turn into a
    flood of findings (or minutes of schema validation). Deeper than 100 levels is left as is
    (nothing that deep is read or shown)."""
    if isinstance(obj, str):
        clean = _SURROGATE.sub("\ufffd", obj)
        if clean != obj:
            flags.add("surrogate")
        return clean
    if depth > 100:
        return obj
    if isinstance(obj, dict):
        # the top-level object is kept whole: padding it with junk keys must not hide a real one
        limit = len(obj) if depth == 0 else MAX_ITEMS
        if len(obj) > limit:
            flags.add("truncated")
        items = list(obj.items())[:limit]
        return {_scrub(k, flags, depth + 1): _scrub(v, flags, depth + 1) for k, v in items}
    if isinstance(obj, list):
        if len(obj) > MAX_ITEMS:
            flags.add("truncated")
        return [_scrub(v, flags, depth + 1) for v in obj[:MAX_ITEMS]]
    return obj


MAX_INT = 2 ** 63  # larger integers (JSON allows any number of digits) are not figures


def _number(value: Any) -> float | None:
    """A finite float, or None: a bool, a non-number, NaN, infinity (`1e400`) or an integer beyond 64
    bits (a 309-digit `val_bpb`) is not a figure (_huge_numbers reports the last two)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and not -MAX_INT < value < MAX_INT:
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -MAX_INT < value < MAX_INT else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value) if -MAX_INT < value < MAX_INT else None
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", value):
        return int(value)
    return None


def _huge_numbers(obj: Any, where: str, out: list[str], depth: int = 0) -> None:
    """Paths (`a/b`) of numbers that do not fit a finite float or a 64-bit integer: JSON has no size
    limit, Python parses `1e400` to infinity and a 309-digit integer to an int no float can hold.
    Linear in the (already scrubbed, so bounded) object; stops after 20."""
    if len(out) >= 20 or depth > 100:
        return
    if isinstance(obj, bool):
        return
    if isinstance(obj, int):
        if not -MAX_INT < obj < MAX_INT:
            out.append(where)
    elif isinstance(obj, float):
        if math.isinf(obj):
            out.append(where)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _huge_numbers(v, f"{where}/{k}" if where else str(k), out, depth + 1)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _huge_numbers(v, f"{where}/{i}" if where else str(i), out, depth + 1)


def _key_lines(text: str) -> dict[str, int]:
    """First line on which each `"key":` appears (good enough to point a reviewer at a key).
    O(n): one bounded-quantifier regex over at most the first 10,000 characters of each line."""
    lines: dict[str, int] = {}
    for no, line in enumerate(text.splitlines(), 1):
        for m in re.finditer(r'"([^"\\]{1,80})"\s*:', line[:10_000]):
            lines.setdefault(m.group(1), no)
    return lines


class _IssueLog:
    """Issues for SUBMISSION_JSON, at most MAX_SAME_ISSUES of one group (a hostile file could make millions)."""

    def __init__(self, meta: SubmissionMeta, path: str):
        self.meta, self.path, self.repeats = meta, path, {}

    def __call__(self, severity: str, message: str, key: str | None = None, group: str | None = None,
                 **extra: Any) -> None:
        if group is not None:
            self.repeats[group] = self.repeats.get(group, 0) + 1
            if self.repeats[group] > MAX_SAME_ISSUES:
                return
        line = self.meta.line_of.get(key) if key else None
        self.meta.issues.append(Issue(RULE_ID, severity, message, [Evidence(self.path, line, "")], "high", extra))

    def close(self) -> None:
        for group, n in sorted(self.repeats.items()):
            if n > MAX_SAME_ISSUES:
                self("warn", f"… and {n - MAX_SAME_ISSUES:,} more issues like the above ({group}); not listed")


def parse_submission_json(path: str, data: bytes) -> SubmissionMeta:
    meta = SubmissionMeta(path=path)
    issue = _IssueLog(meta, path)
    obj = _load(meta, data, issue)
    if obj is not None:
        _names_and_seeds(obj, meta, issue)
        _claims(obj, meta, issue)
        issue.close()
    return meta


def _load(meta: SubmissionMeta, data: bytes, issue: _IssueLog) -> dict | None:
    """The parsed object, scrubbed and schema-checked (issues for what is odd), or None with meta.parse_error."""
    if len(data) > MAX_JSON_BYTES:
        meta.parse_error = f"{len(data):,} bytes; larger than the {MAX_JSON_BYTES:,}-byte limit for a metadata file"
        return None
    text = data.decode("utf-8", errors="replace")
    meta.line_of = _key_lines(text)
    duplicates: list[str] = []
    non_finite: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in items:
            if k in out:
                duplicates.append(k)
            out[k] = v
        return out

    def constant(name: str) -> float:
        non_finite.append(name)
        return math.nan

    try:
        obj = json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        msg = getattr(exc, "msg", None) or type(exc).__name__
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        meta.parse_error = f"not valid JSON: {msg}{where}"
        return None
    if not isinstance(obj, dict):
        meta.parse_error = f"top level is a {type(obj).__name__}, not an object"
        return None
    flags: set[str] = set()
    obj = _scrub(obj, flags)
    meta.raw = obj
    if "surrogate" in flags:
        issue("warn", "a string holds an unpaired UTF-16 surrogate escape (invalid Unicode); shown as \ufffd")
    if "truncated" in flags:
        issue("warn", f"a list or object holds more than {MAX_ITEMS:,} entries; only the first {MAX_ITEMS:,} were read")
    for k in sorted(set(duplicates)):
        issue("warn", f"key {str(k)[:80]!r} appears more than once; JSON parsers keep the last value", k,
              group="duplicate keys")
    for c in sorted(set(non_finite)):
        issue("warn", f"non-standard JSON constant {c} in the file; it is treated as missing")
    huge: list[str] = []
    _huge_numbers(obj, "", huge)
    for where in huge:
        issue("warn", f"{where[:120]}: number too large (beyond a finite float or a 64-bit integer); it is "
                      "treated as missing", where.split("/", 1)[0], group="huge numbers")

    for err in sorted(_validator().iter_errors(obj), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        key = str(err.absolute_path[0]) if err.absolute_path else None
        where = "/".join(map(str, err.absolute_path)) or "(top level)"
        issue("warn", f"{where}: {err.message[:200]}", key, group="schema")

    return obj


def _names_and_seeds(obj: dict, meta: SubmissionMeta, issue: _IssueLog) -> None:
    def s(key: str) -> str | None:
        v = obj.get(key)
        return v if isinstance(v, str) else None

    meta.name = s("name") or s("run_name")
    meta.author = s("author")
    meta.github_id = s("github_id")
    meta.track = s("track")
    meta.date = s("date")

    # per-seed results, keyed by int seed
    for container in ("seed_results", "seeds"):
        block = obj.get(container)
        if isinstance(block, dict):
            for k, v in block.items():
                seed = _int(k)
                if seed is None or not isinstance(v, dict):
                    issue("warn", f"{container}: entry {str(k)[:40]!r} is not a seed-keyed object", container,
                          group=container)
                    continue
                meta.seed_results.setdefault(seed, {}).update(v)
    seeds = obj.get("seeds")
    if isinstance(seeds, list):
        for v in seeds:
            seed = _int(v)
            if seed is None:
                issue("warn", f"seeds: {str(v)[:40]!r} is not an integer seed", "seeds", group="seeds-list")
            else:
                meta.seeds.append(seed)
    for seed in sorted(meta.seed_results):
        if seed not in meta.seeds:
            meta.seeds.append(seed)
    if not meta.seeds and _int(obj.get("seed")) is not None:
        meta.seeds.append(_int(obj.get("seed")))



def _claims(obj: dict, meta: SubmissionMeta, issue: _IssueLog) -> None:
    """val_bpb (or a mean under another key), val_loss, bytes_total and bytes_code."""
    seed_bpbs = [b for b in (_number(r.get("val_bpb")) for r in meta.seed_results.values()) if b is not None]
    mean_keys = sorted(k for k in obj if isinstance(k, str) and _MEAN_BPB_KEY.match(k))
    for key in ("val_bpb", "mean_val_bpb", "mean_bpb", *mean_keys):
        if _number(obj.get(key)) is not None:
            meta.val_bpb, meta.val_bpb_source = _number(obj[key]), key
            break
    else:
        if seed_bpbs:
            meta.val_bpb, meta.val_bpb_source = fmean(seed_bpbs), "mean of per-seed val_bpb"
    if meta.val_bpb_source not in (None, "val_bpb"):
        issue("info", f"no numeric `val_bpb` key; using {meta.val_bpb_source} = {meta.val_bpb:.8f}",
              meta.val_bpb_source if meta.val_bpb_source in obj else None)
    elif meta.val_bpb is None and not any(k in obj for k in ("val_loss", "mean_val_loss")):
        issue("warn", "no val_bpb claim found (val_bpb, mean_val_bpb, mean_bpb or per-seed values)")

    for key in ("val_loss", "mean_val_loss", "val_loss_nats", "mean_val_loss_nats"):
        if _number(obj.get(key)) is not None:
            meta.val_loss = _number(obj[key])
            break

    for key in ("bytes_total", "artifact_bytes_max"):
        if _int(obj.get(key)) is not None:
            meta.bytes_total = _int(obj[key])
            break
    else:
        per_seed = [b for b in (_int(r.get("artifact_bytes")) for r in meta.seed_results.values()) if b is not None]
        if per_seed:
            meta.bytes_total = max(per_seed)
        else:
            for key in ("artifact_bytes", "artifact_size_bytes"):
                if _int(obj.get(key)) is not None:
                    meta.bytes_total = _int(obj[key])
                    break
    for key in ("bytes_code", "code_bytes"):
        if _int(obj.get(key)) is not None:
            meta.bytes_code = _int(obj[key])
            break
