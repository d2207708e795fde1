"""Wording shared by the evidence rules' messages."""

from __future__ import annotations

from auditor.core.model import RunEvidence


def run_label(run: RunEvidence) -> str:
    seed = f"seed {run.seed.value}" if run.seed is not None else "seed ?"
    return f"{run.path}" + (f" (run {run.index + 1})" if run.index else "") + f", {seed}"
