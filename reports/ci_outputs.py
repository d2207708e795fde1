"""A CI run seen as the (prefix, findings) units the SARIF and annotation writers take.

Duck-typed on auditor.ci.gate.CiRun: reports sit below the CI layer and never import it.
"""

from __future__ import annotations

from typing import Any

from auditor import __version__
from reports.sarif import SarifUnit, sarif_log


def annotation_units(run) -> list[tuple[str, list]]:
    return [("", run.repo_findings)] + [(fa.change.path, fa.result.findings) for fa in run.folders]


def _anchor(fa) -> str:
    """Where a finding without a file is shown: the submission JSON, else the README, else the folder."""
    sub = fa.result.submission
    for rel in (sub.meta.path, sub.readme_path):
        if rel:
            return f"{fa.change.path}/{rel}"
    return fa.change.path


def sarif_for_run(run, rules: list, *, include_all: bool = False,
                  repository_uri: str | None = None) -> dict[str, Any]:
    """`run`: an auditor.ci.gate.CiRun; `rules`: the registry, for the rule descriptors.
    Only alerts (fail/review/warn) unless `include_all`; the head commit is the revision audited."""
    units = [SarifUnit("", run.repo_findings, anchor=None, properties={"verdict": run.repo_verdict})]
    for fa in run.folders:
        units.append(SarifUnit(fa.change.path, fa.result.findings, anchor=_anchor(fa),
                               properties={"verdict": fa.verdict}))
    props = {
        "base": run.base_sha,
        "head": run.head_sha,
        "verdict": run.verdict,
        "pullRequest": run.pr.to_json(),
        "frontiers": {fa.change.path: fa.frontier.to_json() for fa in run.folders},
    }
    return sarif_log(units, rules, tool_version=__version__, run_properties=props, include_all=include_all,
                     exit_code=run.exit_code, repository_uri=repository_uri, revision=run.head_sha)
