"""The audited repository's configuration: `.auditor.toml` (or `auditor.toml`, or `[tool.pgolf-auditor]`
in its `pyproject.toml`).

```toml
fail_on = ["NO_NETWORK"]      # auditor ci: also fail when these rules report a fail or warn
strict = false                # auditor ci: exit 3 when anything needs review
as_of = "folder"              # which rulings judge a folder: "folder" (its own date), "latest", YYYY-MM-DD

[[waiver]]
rule = "ARTIFACT_SIZE"
folder = "records/track_10min_16mb/2026-03-*"   # glob on the folder's repository path (or its name)
reason = "merged before the decimal cap was ruled; see #123"
message = "over the cap"      # optional: substring of the finding's message
path = "train_seed*.log"      # optional: glob on one of the finding's evidence paths
expires = "2026-12-31"        # optional: the last day it applies
```

Command-line flags override these defaults. A broken file is a tool error (one line, exit 2), never a
verdict. `auditor run` looks for the file from the folder upwards to the repository root; `auditor ci`
reads it from the base revision (what the PR targets), never from the PR head, so a PR cannot waive
its own findings.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from auditor.core.errors import ToolError
from auditor.core.waivers import Waiver, parse_waive_flag, parse_waiver

CONFIG_NAMES = (".auditor.toml", "auditor.toml")
PYPROJECT_TABLE = "pgolf-auditor"
MAX_CONFIG_BYTES = 1_000_000
_KEYS = {"fail_on", "strict", "as_of", "waiver"}


@dataclass
class Config:
    source: str | None = None  # the file it came from (for messages), None when there is none
    label: str | None = None  # the same, for reports: a name that does not depend on where the repository lies
    root: Path | None = None  # the folder globs are relative to (the file's folder)
    waivers: tuple[Waiver, ...] = ()
    fail_on: tuple[str, ...] | None = None
    strict: bool | None = None
    as_of: str | None = None  # "folder" | "latest" | YYYY-MM-DD


def _known_rules() -> list[str]:
    from rules import all_rules

    return [r.id for r in all_rules()]


def parse_config(data: bytes, source: str, *, pyproject: bool = False, label: str | None = None) -> Config:
    """`source` names the file in error messages; `label` (default: source) in the reports, which must
    not depend on where the repository lies."""
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ToolError(f"{source}: not valid TOML ({' '.join(str(exc).split())[:160]})") from None
    if pyproject:
        doc = doc.get("tool", {}).get(PYPROJECT_TABLE, {}) if isinstance(doc.get("tool"), dict) else {}
        if not isinstance(doc, dict):
            raise ToolError(f"{source}: [tool.{PYPROJECT_TABLE}] must be a table")
    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise ToolError(f"{source}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(_KEYS))})")
    known = _known_rules()
    cfg = Config(source=source, label=label or source)
    entries = doc.get("waiver", [])
    if not isinstance(entries, list):
        raise ToolError(f"{source}: 'waiver' must be an array of tables ([[waiver]])")
    waivers = []
    for i, e in enumerate(entries, 1):
        w = parse_waiver(e, f"{source} waiver {i}", known)
        waivers.append(dataclasses.replace(w, source=f"{label or source} waiver {i}"))
    cfg.waivers = tuple(waivers)
    if "fail_on" in doc:
        vals = doc["fail_on"]
        if not (isinstance(vals, list) and all(isinstance(v, str) for v in vals)):
            raise ToolError(f"{source}: 'fail_on' must be a list of rule IDs")
        ids = tuple(dict.fromkeys(v.strip().upper() for v in vals if v.strip()))
        bad = [v for v in ids if v not in known]
        if bad:
            raise ToolError(f"{source}: unknown rule {bad[0]!r} in 'fail_on'; `auditor rules` lists them")
        cfg.fail_on = ids
    if "strict" in doc:
        if not isinstance(doc["strict"], bool):
            raise ToolError(f"{source}: 'strict' must be true or false")
        cfg.strict = doc["strict"]
    if "as_of" in doc:
        val = doc["as_of"]
        if not (isinstance(val, str) and (val in ("folder", "latest") or re.fullmatch(r"20\d\d-\d\d-\d\d", val))):
            raise ToolError(f"{source}: 'as_of' must be \"folder\", \"latest\" or a date YYYY-MM-DD")
        cfg.as_of = val
    return cfg


def _read(path: Path, flag: str) -> bytes:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ToolError(f"{flag}{path}: larger than {MAX_CONFIG_BYTES:,} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise ToolError(f"{flag}{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None


def load_file(path: Path, flag: str = "") -> Config:
    cfg = parse_config(_read(path, flag), str(path), pyproject=path.name == "pyproject.toml", label=path.name)
    cfg.root = path.resolve().parent
    return cfg


def find_config(start: Path) -> Path | None:
    """The first config file from `start` upwards, stopping at the repository root (a `.git` entry)."""
    try:
        here = start.resolve()
    except (OSError, ValueError):  # a missing or unusable path: the loader reports it
        return None
    for d in (here, *here.parents):
        for name in CONFIG_NAMES:
            try:
                if (d / name).is_file():
                    return d / name
            except (OSError, ValueError):
                return None
        py = d / "pyproject.toml"
        if py.is_file():
            try:
                if f"[tool.{PYPROJECT_TABLE}]".encode() in py.read_bytes()[:MAX_CONFIG_BYTES]:
                    return py
            except OSError:
                pass
        if (d / ".git").exists():
            return None
    return None


def config_for_folder(args, folder: str) -> Config:
    """`--config FILE` when given, else the file found from the folder upwards (or none)."""
    if getattr(args, "no_config", False):
        return Config()
    explicit = getattr(args, "config", None)
    if explicit:
        return load_file(Path(explicit), "--config ")
    found = find_config(Path(folder))
    return load_file(found) if found else Config()


def flag_waivers(args) -> list[Waiver]:
    return [parse_waive_flag(t, _known_rules()) for t in (getattr(args, "waive", None) or [])]


def today() -> str:
    """The date waiver expiry is judged on (UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def latest_ruling() -> str:
    from rules._rulings import RULINGS

    return max(r.effective for r in RULINGS.values())


def repository_root(start: Path) -> Path | None:
    try:
        here = start.resolve()
    except (OSError, ValueError):  # a missing or unusable path: the loader reports it
        return None
    return next((d for d in (here, *here.parents) if (d / ".git").exists()), None)


def folder_path(folder: str, root: Path | None) -> str:
    """What waiver folder globs match: the folder's path relative to the config file's folder, else to the
    repository root, else to the current folder; its name when it lies outside all of them."""
    p = Path(folder)
    for base in (root, repository_root(p), Path.cwd()):
        if base is None:
            continue
        try:
            return p.resolve().relative_to(base.resolve()).as_posix()
        except (ValueError, OSError):
            continue
    return p.name


def apply_to_options(options, cfg: Config, args, path: str) -> None:
    """Waivers (the file's, then --waive), the folder's repository path, today's date and the as_of policy."""
    options.waivers = tuple(cfg.waivers) + tuple(flag_waivers(args))
    options.folder_path = path
    options.today = today()
    if options.as_of is None and cfg.as_of and cfg.as_of != "folder":
        date = latest_ruling() if cfg.as_of == "latest" else cfg.as_of
        options.as_of, options.as_of_source = date, f"as_of = \"{cfg.as_of}\" in {Path(cfg.source or '').name}"


def config_for_ci(args, repo, base_sha: str) -> Config:
    """`--config FILE` when given, else the configuration committed on the base revision (never the PR's)."""
    if getattr(args, "no_config", False):
        return Config()
    if getattr(args, "config", None):
        return load_file(Path(args.config), "--config ")
    for name in (*CONFIG_NAMES, "pyproject.toml"):
        data = repo.read_file(base_sha, name, MAX_CONFIG_BYTES)
        if data is None:
            continue
        if name == "pyproject.toml" and f"[tool.{PYPROJECT_TABLE}]".encode() not in data:
            continue
        return parse_config(data, f"{name} at {base_sha[:12]}", pyproject=name == "pyproject.toml", label=name)
    return Config()
