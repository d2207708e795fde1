"""Scale knobs of a certified scorer: `--set NAME=VALUE` and the stress profile.

Why: real caches and test-time training act on 32K-1M-token chunks and 2^22-bucket tables. On a stream of
a few hundred tokens a faithful wrapper at the record's own settings never updates its state, so the
certificate would only see the neural stand-in. A wrapper declares the knobs its record reads, next to its
scorer, as a plain dict (no import of this project needed):

    CONFORM_KNOBS = {
        "NGRAM_EVAL_CHUNK_TOKENS": {"default": 1_000_000, "role": "chunk", "stress": 16},
        "NGRAM_EVAL_BUCKETS": {"default": 4_194_304, "role": "table", "stress": 64},
    }

Roles: `chunk` (tokens between state updates), `table` (hash buckets / table entries: reduced until
collisions are certain), `window` (context length), `stride`, `other`. The stress profile uses each knob's
`stress` value (or the role's default), lengthens the stream to several chunks and probes only positions
after the first update. Values reach the scorer as environment variables during the run (restored after)
and as keyword arguments where the factory or scorer has a parameter of that name (or its lower case).
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

ROLE_STRESS = {"chunk": 32, "table": 64, "window": 16, "stride": 8}
STRESS_CHUNKS = 6  # stress streams hold this many chunks of the smallest chunk knob


class KnobError(ValueError):
    """A --set or CONFORM_KNOBS entry that cannot be used (one line)."""


@dataclass
class Scale:
    """The knob values a certificate ran with, and where each came from."""

    values: dict[str, str] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)  # NAME -> default | stress | set
    roles: dict[str, str] = field(default_factory=dict)

    def chunk(self) -> int | None:
        """The smallest chunk-role value (tokens until the first state update), if any."""
        vals = [int(float(self.values[n])) for n, r in self.roles.items() if r == "chunk" and n in self.values]
        return min(vals) if vals else None

    def describe(self) -> list[dict]:
        return [{"name": n, "value": self.values[n], "source": self.source[n], "role": self.roles.get(n, "other")}
                for n in sorted(self.values)]


def parse_sets(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not name.strip().replace("_", "").isalnum():
            raise KnobError(f"--set expects NAME=VALUE, got {item!r}")
        out[name.strip()] = value.strip()
    return out


def _validate(knobs: Any) -> dict[str, dict]:
    if knobs is None:
        return {}
    if not isinstance(knobs, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in knobs.items()):
        raise KnobError("CONFORM_KNOBS must map NAME to a dict with default/role/stress")
    for name, spec in knobs.items():
        role = spec.get("role", "other")
        if role not in (*ROLE_STRESS, "other"):
            raise KnobError(f"knob {name}: unknown role {role!r}")
    return knobs


def resolve(knobs: Any, profile: str, sets: dict[str, str]) -> Scale:
    """Knob values for `profile` ("own": the record's defaults; "stress") with --set on top."""
    knobs = _validate(knobs)
    if profile not in ("own", "stress"):
        raise KnobError(f"unknown profile {profile!r} (use own or stress)")
    if profile == "stress" and not knobs:
        raise KnobError("--profile stress needs the target to declare CONFORM_KNOBS (or use --set NAME=VALUE)")
    scale = Scale()
    for name, spec in knobs.items():
        role = spec.get("role", "other")
        scale.roles[name] = role
        if profile == "stress" and ("stress" in spec or role in ROLE_STRESS):
            scale.values[name], scale.source[name] = str(spec.get("stress", ROLE_STRESS.get(role))), "stress"
        elif "default" in spec:
            scale.values[name], scale.source[name] = str(spec["default"]), "default"
    for name, value in sets.items():
        scale.values[name], scale.source[name] = value, "set"
        scale.roles.setdefault(name, "other")
    return scale


def stress_length(scale: Scale, length: int) -> int:
    chunk = scale.chunk()
    return max(length, STRESS_CHUNKS * chunk + 1) if chunk else length


@contextlib.contextmanager
def environment(scale: Scale) -> Iterator[None]:
    """Expose the knob values as environment variables for the duration of a certificate."""
    saved = {n: os.environ.get(n) for n in scale.values}
    os.environ.update(scale.values)
    try:
        yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def _coerce(value: str) -> Any:
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def bind(fn: Callable, scale: Scale) -> Callable:
    """`fn` with the knobs it names as parameters bound as keyword arguments (others go by environment)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn
    kwargs = {}
    for name, value in scale.values.items():
        for cand in (name, name.lower()):
            if cand in params:
                kwargs[cand] = _coerce(value)
                break
    if not kwargs:
        return fn

    def bound(*args, **kw):
        return fn(*args, **{**kwargs, **kw})

    bound.__wrapped__ = fn  # inspect.signature follows it: the shape guess still sees fn's parameters
    for attr in ("batch", "knobs"):
        if hasattr(fn, attr):
            setattr(bound, attr, getattr(fn, attr))
    return bound
