"""What the dynamic probes saw: plain data the sandbox records and the rules judge.

The sandbox never decides whether a submission breaks a rule. It records stages, the audit hook's
events (network attempts, files opened, by phase), the final lines the run printed and the numbers of
the random-stream e-value test; rules/evalue_random_stream.py, rules/no_network.py and
rules/no_train_data_at_eval.py turn them into findings, and reports/ render the stage table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STAGE_STATUSES = ("pass", "fail", "needs_gpu", "skipped")


@dataclass
class Stage:
    name: str
    status: str  # one of STAGE_STATUSES
    seconds: float = 0.0
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "seconds": round(self.seconds, 1),
                "detail": self.detail, "data": self.data}


@dataclass
class NetworkAttempt:
    call: str
    target: str
    phase: str  # setup | probe | train | serialize | eval
    blocked: bool
    urls: list[str] = field(default_factory=list)  # urllib targets seen in the same run (context)


@dataclass
class LimitStop:
    """A total the sandbox enforced by stopping the run ("memory total 6 GiB reached at stage eval")."""

    kind: str  # "memory total" | "disk total" | "process count" | "wall-clock" | "CPU-time limit" | ...
    limit: str  # human-readable size of the limit ("6 GiB", "512 processes", "120 s")
    observed: str  # what the watchdog measured when it stopped the run ("" when the kernel did)
    stage: str  # the stage (or phase of the script's main) running at the time

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "limit": self.limit, "observed": self.observed, "stage": self.stage}


@dataclass
class GauntletObservation:
    """One sandboxed run of the submission's own script on synthetic data (see auditor/sandbox/gauntlet.py)."""

    stages: list[Stage]
    isolation: dict[str, str]
    device: str
    env: dict[str, str] = field(default_factory=dict)
    vocab_size: int | None = None
    evalue: dict[str, Any] | None = None  # {"tests": [...], "worst": {...}, "n_note": str}
    control: dict[str, Any] | None = None
    network: list[NetworkAttempt] = field(default_factory=list)
    train_shards_at_eval: list[str] = field(default_factory=list)  # paths opened after the model read-back
    incomplete: str | None = None  # why the e-value test could not be completed, when it could not
    notes: list[str] = field(default_factory=list)
    stopped_by: LimitStop | None = None  # the limit that stopped the run, when one did
    unsafe: bool = False  # run without OS-level isolation (--unsafe-no-sandbox)
    missing: list[str] = field(default_factory=list)  # evidence the parent expected and never received
    # per-position capture (auditor/sandbox/capture.py): the losses the script's own evaluation computed,
    # located in the stream: {"captured", "located", "dropped", "calls", "primitives", "n_positions",
    # "passes": [{"scored", "never_scored", "scored_twice", "mean_loss", "advantage_nats", ...}],
    # "claim": {"printed_val_loss", "pass", "difference", "matches"}, "coverage": {...}, "evalue": {...}}
    capture: dict[str, Any] | None = None
    # the flip test (capture.flip_compare): {"k", "tolerance", "passes": [{"index", "compared", "differing",
    # "first_diff", "max_abs_diff"}], "first_pass", "first_diff", "seconds"} or {"k", "incomplete"}
    flip: dict[str, Any] | None = None

    def stage(self, name: str) -> Stage | None:
        return next((s for s in self.stages if s.name == name), None)

    @property
    def cannot_run_here(self) -> str | None:
        """Why the script could not run here for a reason on the auditor's side (no script to run, or
        Python 3.12 syntax that the sandbox's interpreter cannot parse), else None."""
        dec = self.stage("decode")
        if dec is not None and dec.status != "pass" and ("no entry-point" in dec.detail or "is empty" in dec.detail):
            return dec.detail
        for st in self.stages:
            if st.status == "fail" and "SyntaxError" in st.detail and "f-string" in st.detail:
                return f"{st.name}: the script uses Python 3.12 syntax (PEP 701 f-strings); the sandbox runs Python 3.11"
        return None

    @property
    def needs_gpu(self) -> list[str]:
        return [s.name for s in self.stages if s.status == "needs_gpu"]

    def to_json(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "isolation": self.isolation,
            "vocab_size": self.vocab_size,
            "env": self.env,
            "stages": [s.to_json() for s in self.stages],
            "evalue": self.evalue,
            "control": self.control,
            "notes": self.notes,
            "stopped_by": None if self.stopped_by is None else self.stopped_by.to_json(),
            "unsafe": self.unsafe,
            "missing": self.missing,
            "capture": self.capture,
            "flip": self.flip,
        }
