"""Static analysis of the submission's decoded code, shared by the code rules (C1-C4, data, network).

`get_analysis(ctx)` computes it once per audit; rules query events, reachability and evidence from it.
"""

from __future__ import annotations

from auditor.analysis.program import CodeAnalysis, Reach, analyze

__all__ = ["CodeAnalysis", "Reach", "analyze", "get_analysis"]


def get_analysis(ctx) -> CodeAnalysis:
    return ctx.memo("code_analysis", lambda: analyze(ctx.submission))
