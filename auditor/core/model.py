"""The records that flow between loader, rules and reports.

Everything here is plain data so that reports can serialise it deterministically and rules can be
tested without touching the file system.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditor.core.grades import Confidence, Severity


@dataclass(frozen=True)
class Evidence:
    """A pointer a maintainer can check by hand: a file (relative to the folder), a 1-based line, the text."""

    path: str
    line: int | None = None
    text: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line, "text": self.text}


@dataclass
class Finding:
    """One conclusion of one rule.

    `severity` is fail | warn | info | pass. `confidence` is high (direct evidence or data flow) or
    medium (pattern match); only high-confidence fails make the verdict FAIL. `data` holds measured
    figures (JSON-serialisable) that the report shows and tests assert on. `waived` is the reason of a
    maintainer's waiver that matched the finding (auditor/core/waivers.py): the finding keeps its data and
    is shown as waived, and it no longer counts toward the verdict. Only the engine sets it.
    """

    rule: str
    severity: str
    message: str
    evidence: list[Evidence] = field(default_factory=list)
    confidence: str = "high"
    data: dict[str, Any] = field(default_factory=dict)
    waived: str | None = None

    def __post_init__(self) -> None:
        self.severity = Severity(self.severity)  # ValueError on anything else
        self.confidence = Confidence(self.confidence)

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "confidence": self.confidence,
            "message": self.message,
            "evidence": [e.to_json() for e in self.evidence],
            "data": self.data,
            "waived": self.waived,
        }


@dataclass
class Issue:
    """Something met while reading the folder (or the pull request) that a rule will judge.

    Loading, the CI gate and the sandbox never decide; they record what they saw here and the rule
    module named by `rule` turns each issue into a finding (rules/files.py, rules/submission_json.py).
    """

    rule: str
    severity: str
    message: str
    evidence: list[Evidence] = field(default_factory=list)
    confidence: str = "high"
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Figure:
    """A number read from a file, with where it was read."""

    value: float | int
    path: str
    line: int
    text: str = ""

    def evidence(self) -> Evidence:
        return Evidence(self.path, self.line, self.text)

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "path": self.path, "line": self.line}


@dataclass
class EvalPhase:
    """One metric line: `<label> val_loss:X val_bpb:Y [eval_time:Nms]`."""

    label: str
    val_loss: float
    val_bpb: float
    path: str
    line: int
    text: str = ""
    eval_time_ms: float | None = None
    stride: int | None = None
    is_final: bool = True  # False for periodic step-val lines and diagnostics

    def evidence(self) -> Evidence:
        return Evidence(self.path, self.line, self.text)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "val_loss": self.val_loss,
            "val_bpb": self.val_bpb,
            "eval_time_ms": self.eval_time_ms,
            "stride": self.stride,
            "path": self.path,
            "line": self.line,
        }


@dataclass
class RunEvidence:
    """Everything one training/eval run (usually one seed) left in one log file.

    A log holding several runs (one after the other) yields several RunEvidence objects with the
    same `path` and increasing `index`.
    """

    path: str
    index: int = 0
    family: str = "unknown"
    seed: Figure | None = None
    world_size: Figure | None = None
    val_tokens: Figure | None = None
    train_shards: Figure | None = None
    train_shards_path: str | None = None
    stop_reason: str | None = None  # "wallclock_cap" | "iterations" | None
    train_time_ms: Figure | None = None
    step_stop: Figure | None = None
    max_wallclock_seconds: Figure | None = None
    phases: list[EvalPhase] = field(default_factory=list)
    total_eval_time_s: Figure | None = None
    compile_warmup_s: Figure | None = None
    code_bytes: Figure | None = None  # plain `Code size:` figure
    code_bytes_raw: Figure | None = None  # `Code size (uncompressed):`
    code_bytes_compressed: Figure | None = None  # `Code size (compressed):`
    model_bytes: Figure | None = None  # compressed model
    model_tag: str | None = None
    total_bytes: Figure | None = None  # last qualified total
    subset_markers: list[Evidence] = field(default_factory=list)
    artifact_production_wallclock_s: Figure | None = None
    tokenizer_vocab: int | None = None
    byte_sidecar: bool = False
    embedded_source: str | None = None  # source text the script logged about itself, if present
    embedded_source_line: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def score_phase(self) -> EvalPhase | None:
        """The phase whose val_bpb the run reports as its score (chosen by the log parser)."""
        finals = [p for p in self.phases if p.is_final]
        return finals[-1] if finals else None

    def to_json(self) -> dict[str, Any]:
        def fig(f: Figure | None) -> Any:
            return None if f is None else f.to_json()

        score = self.score_phase
        return {
            "path": self.path,
            "index": self.index,
            "family": self.family,
            "seed": fig(self.seed),
            "world_size": fig(self.world_size),
            "val_tokens": fig(self.val_tokens),
            "train_shards": fig(self.train_shards),
            "stop_reason": self.stop_reason,
            "train_time_ms": fig(self.train_time_ms),
            "step_stop": fig(self.step_stop),
            "phases": [p.to_json() for p in self.phases],
            "score": None if score is None else score.to_json(),
            "total_eval_time_s": fig(self.total_eval_time_s),
            "compile_warmup_s": fig(self.compile_warmup_s),
            "code_bytes": fig(self.code_bytes),
            "code_bytes_raw": fig(self.code_bytes_raw),
            "code_bytes_compressed": fig(self.code_bytes_compressed),
            "model_bytes": fig(self.model_bytes),
            "model_tag": self.model_tag,
            "total_bytes": fig(self.total_bytes),
            "subset_markers": [e.to_json() for e in self.subset_markers],
            "artifact_production_wallclock_s": fig(self.artifact_production_wallclock_s),
            "byte_sidecar": self.byte_sidecar,
        }


@dataclass
class CodeFile:
    """A shipped code file. `text` is the decoded source the auditor analyses: the payload of a
    self-extracting stub when the file is one, else the file's own text. `shipped` is the raw bytes."""

    path: str
    shipped: bytes
    text: str | None
    kind: str  # "python" | "c" | "other"
    stub: str | None = None  # None | "lzma-xz" | "lzma-raw" | "zlib" | "base64" | "exec-file"
    stub_target: str | None = None  # for exec shims: the file that actually runs
    decode_error: str | None = None
    layers: int = 0  # how many stub layers were peeled

    @property
    def shipped_bytes(self) -> int:
        return len(self.shipped)


@dataclass
class SubmissionMeta:
    """submission.json, normalised. `raw` keeps the parsed object; `issues` lists normalisation notes."""

    path: str | None = None
    raw: dict[str, Any] | None = None
    name: str | None = None
    author: str | None = None
    github_id: str | None = None
    track: str | None = None
    date: str | None = None
    val_bpb: float | None = None
    val_bpb_source: str | None = None
    val_loss: float | None = None
    bytes_total: int | None = None
    bytes_code: int | None = None
    seeds: list[int] = field(default_factory=list)
    seed_results: dict[int, dict[str, Any]] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    parse_error: str | None = None
    line_of: dict[str, int] = field(default_factory=dict)  # top-level key -> line in the file


@dataclass
class Submission:
    """A record folder as the auditor sees it: everything read, nothing executed."""

    root: Path
    name: str
    track: str | None
    files: list[str]  # every file relative to root, sorted
    readme: str | None = None
    readme_path: str | None = None
    meta: SubmissionMeta = field(default_factory=SubmissionMeta)
    meta_files: list[str] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)
    runs: list[RunEvidence] = field(default_factory=list)
    code: list[CodeFile] = field(default_factory=list)
    requirements: str | None = None
    load_issues: list[Issue] = field(default_factory=list)  # problems met while reading (rule FILES)
    mixture_scores: list[Figure] = field(default_factory=list)  # byte-mixture score lines in the logs
    # the `  key: value` configuration the runs printed: lower-case key -> (value, where); first log wins
    log_config: dict[str, tuple[str, Figure]] = field(default_factory=dict)

    def code_file(self, path: str) -> CodeFile | None:
        for c in self.code:
            if c.path == path:
                return c
        return None

    @property
    def entry_point(self) -> CodeFile | None:
        """The script that runs: train_gpt.py if shipped, else the single/most likely train*.py."""
        py = [c for c in self.code if c.kind == "python"]
        for c in py:
            if c.path == "train_gpt.py":
                return c
        top = [c for c in py if "/" not in c.path and c.path.startswith("train")]
        if top:
            return sorted(top, key=lambda c: (-len(c.shipped), c.path))[0]
        return None
