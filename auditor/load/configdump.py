"""The configuration a run printed about itself: the `  name: value` dump most record scripts log at start,
and lines of `name:value` pairs (`model_preset:frontier_lean run_profile:full_8gpu_600s`).

When the code reads a switch from the environment (`PPM_ENABLED`, default off), the dump says what the run
that produced the score actually used (`ppm_enabled: True`): evidence over the code's default. The loader
keeps, per lower-case key, the first value met in the logs (sorted by path) and where it was read.

Linear in the log: only the first MAX_LINES lines are read, one anchored regex test per line.
"""

from __future__ import annotations

import re

from auditor.core.model import Figure

MAX_LINES = 600  # the dump sits at the top of the log
_ENTRY = re.compile(r"^\s{1,4}([a-z][a-z0-9_]{1,63}):[ \t]*(\S[^\n]{0,200})?$")
# a line of `key:value` pairs and nothing else (`model_preset:frontier_lean run_profile:full_8gpu_600s`);
# a step or metric line has a `/`, `=` or a label without a colon and does not match
_PAIRS = re.compile(r"^(?:[a-z][a-z0-9_]{1,63}:[\w.+\-]{1,64}[ \t]+){0,7}[a-z][a-z0-9_]{1,63}:[\w.+\-]{1,64}[ \t]*$")
_PAIR = re.compile(r"([a-z][a-z0-9_]{1,63}):([\w.+\-]{1,64})")


def config_dump(path: str, text: str) -> dict[str, tuple[str, Figure]]:
    """lower-case key -> (value text, where): the `  key: value` lines at the top of one log."""
    out: dict[str, tuple[str, Figure]] = {}
    for no, line in enumerate(text.splitlines()[:MAX_LINES], 1):
        m = _ENTRY.match(line)
        if m is not None and m.group(1) not in out:
            value = (m.group(2) or "").strip()
            out[m.group(1)] = (value, Figure(0, path, no, line.strip()[:200]))
        elif m is None and len(line) <= 600 and _PAIRS.match(line):
            for key, value in _PAIR.findall(line):
                out.setdefault(key, (value, Figure(0, path, no, line.strip()[:200])))
    return out
