"""Read Parameter Golf train logs into `RunEvidence` records.

Why this module is careful: a log is the only first-hand record of what a run measured, and it is
easy to read the wrong number from it. Many logs begin with the training script's own source, which
is full of strings that look like metric lines; several families print the same figure twice under
different labels; sizes come as raw checkpoints, compressed models and totals. Every figure read here
therefore carries the file, the 1-based line and the line text so a maintainer can check it by hand.

Line handling
    The text is split on "\\n" only (so line numbers match what an editor shows); a trailing "\\r" and
    NUL characters are dropped, an optional Unix-timestamp prefix (``1776142348.135 ``) is removed
    before matching, lines starting with ``[rankN]:`` (stderr of other ranks) are ignored, and lines
    longer than `MAX_LINE` characters are never matched (metric lines are short; this keeps the work
    linear and bounded). Every regex is anchored at the start of the line and requires numeric
    captures, and no pattern can backtrack catastrophically. A numeric capture has at most 18
    integer digits, so every figure converts to a finite float or a 64-bit-sized int (a longer digit
    run does not match). Complexity: O(n) time and memory in the length of the log (each line is
    matched by a fixed set of regexes, each linear in a line of at most `MAX_LINE` characters); the
    loader bounds the total (budget.LOG_PARSE_BYTES).

Embedded source
    Scripts of the root lineage log their own source and then a line of exactly 100 ``=``. For every
    such separator we look at the lines since the previous separator, skip past the last line that
    is clearly log output, and take the first line that starts like Python (``import``, ``from x
    import``, ``def``, ``class``, ``#``, a docstring, a decorator) as the start of the source block,
    provided the block contains an ``import``/``def``/``class`` line (a region with no program output
    right after such a block continues it: the source contained a 100-``=`` line). The block is never
    matched; it is kept as `RunEvidence.embedded_source` (CR line ends and timestamp prefixes
    removed; first line in `embedded_source_line`). A line
    ``[embedded source removed from this copy: N lines]`` (the dev-corpus redaction) counts as a
    source block with no text.

Several runs in one log
    A new run starts at a clear run start (an embedded-source block, a 100-``=`` separator,
    ``Running Python``, a ``Hyperparameters:`` / ``--- Hyperparameters ---`` header, a root ``seed:N``
    line, ``val_bpb:enabled``, a ``logs/<id>.txt`` path line or the LegendreGPT banner) when the
    current run has already produced results (a final metric line, a model or total size, or a
    wall-clock stop). Runs with nothing recognisable are dropped, so a log of noise yields [].

Families (`RunEvidence.family`), first match wins
    ``legendre``       LegendreGPT one-off (``val tokens:``, ``INT7+zlib model: … | Total submission:``)
    ``dgattention``    DGAttention one-off (``dg_beta(`` lines, ``rdquant+`` model tag)
    ``ciprian``        ternary/binary/JEPA/XNOR scripts (``--- Hyperparameters ---``, ``artifact:``,
                       ``budget:``, ``final_sliding … (stride=16, T=…)``)
    ``varlen-phased``  2026-04-10+ VarLen / LoRA / phased TTT (``Code size (compressed)``,
                       ``quantized_ttt_phased``, ``ttt_lora:``/``ttt_phased:``, ``total_eval_time:``)
    ``timed-eval``     2026-04-01+ modular scripts (``Hyperparameters:`` dump, ``N/M train_loss:``
                       minutes format, ``val_tokens:``, ``quantized_sliding_window``)
    ``march-sliding``  March scripts with explicit ``final_sliding_window*`` labels
    ``int6-ttt``       int6/GPTQ lineage (``final_int6_*``, ``DIAGNOSTIC post_ema``, ``legal_ttt``)
    ``root-sliding``   root labels carrying a sliding result (``final_eval_mode:sliding_window``)
    ``root``           root/baseline format (``final_int8_zlib_roundtrip``, ``val_loader:shards``)
    ``unknown``        none of the above

Choices worth knowing
    * Phase labels have any ``stride:N`` removed (and stored in `stride`); a ``sliding val_bpb`` form
      adds `` sliding`` to the label; an ``X_exact`` line without a stride inherits the one of ``X``.
      A preceding ``final_eval_mode:sliding_window stride:N`` line gives its stride to later phases
      of the run that print none. ``ttt_sliding:done … elapsed=Ns`` is a final phase whose
      `eval_time_ms` is the elapsed time.
    * Hyperparameters come from the root ``key:value`` lines, the ``Hyperparameters:`` dump
      (``  key: value``) and the Ciprian ``k=v`` line; dump values only fill fields that no dedicated
      line set. Figures read from a ``k=v`` line carry the ``k=v`` token as their text.
    * Notes (`RunEvidence.notes`) record heuristics that fired (file-name seed, derived sizes, GPTQ
      reserve, temperature scaling, sizes printed only in MB); at most `MAX_NOTES` per run.
    * ``is_final`` is False for periodic ``step:N/M`` and ``N/M`` validation lines (label
      ``step:N/M``) and for diagnostic / pre-quantization labels. `RunEvidence.score_phase` is the
      last final phase.
    * `total_bytes` is the last qualified ``Total submission size <tag>:``. An unqualified total is
      used only when no qualified one exists and it follows a compressed ``Serialized model <tag>:``
      line (DGAttention); the root-style unqualified total is raw checkpoint + code and is ignored.
      Ciprian ``budget:`` and LegendreGPT ``Total submission:`` also set it.
    * `train_time_ms` comes from ``stopping_early``; without one, from the last step line
      (``train_time:Nms``, ``t:Nms``, or the new format's minutes × 60,000). `step_stop` comes from
      the stop line or, when it has no ``step:`` part (XNOR) or there is no stop line, from the last
      step line of the run.
    * The seed falls back to the file name (``seed42``, ``seed-42``, ``_s42``, ``_log_42``); such a
      figure has line 0. A file-name seed that disagrees with the logged one is noted.
    * Subset markers: any non-source line mentioning ``subset``, ``VAL_TOKEN_LIMIT``-like limits,
      ``max_val_tokens`` or an eval announced as ``(limited)``, unless the line sets it to
      0/False/None/empty.
"""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import PurePosixPath

from auditor.core import budget
from auditor.core.model import EvalPhase, Evidence, Figure, RunEvidence

MAX_LINE = budget.SCAN_LINE_CHARS  # longer lines are never matched
MAX_TEXT = 200  # evidence text is truncated to this many characters
MAX_SUBSET_MARKERS = 100  # per run; further ones are counted in a note
MAX_NOTES = 50  # per run; a hostile log could otherwise make millions
SEPARATOR = "=" * 100

# at most 18 integer digits (a figure of 10^18 or more is not a measurement: a 400-digit number would
# make float() infinite and int(round()) raise); a longer digit run does not match at all
_F = r"[0-9]{1,18}(?![0-9])(?:\.[0-9]+)?"
_I = r"[0-9]{1,18}(?![0-9])"

_TS = re.compile(r"^[0-9]{10}\.[0-9]{3} ")
_RANK = re.compile(r"^\[rank[0-9]+\]:")
_PLACEHOLDER = re.compile(r"^\[embedded source removed from this copy: ([0-9]+) lines\]$")

# --- training progress -------------------------------------------------------------------------
_STEP_TAG = r"(?: \[[^\]]{1,40}\])?"
_STEP_VAL_OLD = re.compile(rf"^step:({_I})/({_I}){_STEP_TAG} val_loss:({_F}) val_bpb:({_F})(?= |$)")
_TRAIN_TIME = re.compile(rf" train_time:({_I})ms(?= |$)")
# a training-progress line: step, and the train time when printed (`train_time:Nms` or `t:Nms`)
_STEP_TRAIN_OLD = re.compile(
    rf"^step:({_I})/({_I}){_STEP_TAG} (?!val_loss)(?:.*? (?:train_time|t):({_I})ms(?= |$))?"
)
_STEP_VAL_NEW = re.compile(rf"^({_I})/({_I}) val_loss: ({_F}) val_bpb: ({_F})$")
_STEP_TRAIN_NEW = re.compile(rf"^({_I})/({_I}) train_loss: ({_F}) train_time: ({_F})m(?= |$)")
_STOP = re.compile(rf"^stopping_early: wallclock_cap train_time: ?({_I})ms(?: step: ?({_I})/({_I}))?$")

# --- eval timing ----------------------------------------------------------------------------------
_TOTAL_EVAL = re.compile(rf"^total_eval_time: ?({_F})s$")
_COMPILE_WARMUP = re.compile(rf"^ttt_lora:compile warmup done \(({_F})s\)")
_ARTIFACT_WALL = re.compile(rf"^artifact_production_wallclock: ({_F})s \(must be < ({_F})\)$")
_GPTQ_RESERVE = re.compile(rf"^gptq:reserving ({_F})(s|ms)(?: from training budget)?, effective=({_I})ms$")
_TEMP_SCALING = re.compile(rf"^temp_scaling optimal_T:({_F}) (?:eval_)?time:({_I})ms$")
_FINAL_EVAL_MODE = re.compile(rf"^final_eval_mode:(\w+)(?: stride:({_I}))?")

# --- sizes ----------------------------------------------------------------------------------------
_MODEL_RAW = re.compile(rf"^Serialized model: ({_I}) bytes$")
_MODEL = re.compile(
    rf"^Serialized model (\S+): ({_I}) bytes(?: \(payload:{_I} raw_torch:{_I} payload_ratio:{_F}x\))?$"
)
_CODE = re.compile(rf"^Code size: ({_I}) bytes$")
_CODE_RAW = re.compile(rf"^Code size \(uncompressed\): ({_I}) bytes$")
_CODE_COMP = re.compile(rf"^Code size \(compressed\): ({_I}) bytes$")
_TOTAL = re.compile(rf"^Total submission size(?: (\S+))?: ({_I}) bytes$")
_ARTIFACT = re.compile(
    rf"^artifact:({_F})MB (ternary|binary):({_I})\(({_I})B\) fp:({_I})\(({_I})B\) code:({_I})$"
)
_BUDGET = re.compile(rf"^budget:({_I})/16000000 \(({_F})/({_F})MB\) (.*)$")
_USING = re.compile(r"^using: (\w+)$")
_LEGENDRE_MODEL = re.compile(rf"^INT7\+zlib model: ({_I}) bytes \| Total submission: ({_I}) bytes$")
_LEGENDRE_RAW = re.compile(rf"^Raw model: ({_I}) bytes \| Code: ({_I}) bytes \| Total: ({_I})$")
# every anchored prefix `_parse_meta` reads after its substring checks
_META_PREFIX = re.compile(
    r"^(?:val_loader:|val_tokens:|val tokens:|train_loader:|train_shards:|val_bpb:|world_size:"
    r"|total_eval_time:|ttt_lora:|ttt_phased:|artifact_production_wallclock:|gptq:reserving "
    r"|final_eval_mode:|temp_scaling |using: |artifact:|budget:|INT7\+zlib model:|Raw model:"
    r"|LEGENDRE GPT|dg_beta\()"
)
_MB_SIZES = re.compile(rf"^\s*(\S+): ({_F})MB model \+ ({_F})MB code = ({_F})/({_F})MB")

# --- metadata -------------------------------------------------------------------------------------
_VAL_TOKENS = (
    re.compile(rf"^val_loader:shards pattern=\S+ tokens:({_I})$"),
    re.compile(rf"^val_tokens: ({_I})$"),
    re.compile(rf"^val tokens: ({_I})$"),
)
_TRAIN_LOADER = re.compile(rf"^train_loader:dataset:(\S+) train_shards:({_I})$")
_TRAIN_SHARDS = re.compile(rf"^train_shards: ?({_I})$")
_BPB_ENABLED = re.compile(rf"^val_bpb:enabled tokenizer_kind=(\w+) (?:tokenizer_path=(\S+)|vocab_size=({_I}))$")
_SIDECAR = re.compile(r"^val_bpb:byte_sidecar:enabled$")
_SEED_ROOT = re.compile(rf"^seed:({_I})$")
_PARAMS_SEED = re.compile(rf" s:({_I})$")
_KV_SEED = re.compile(rf"(?:^| |,)seed=({_I})(?=[ ,]|$)")
_WORLD_ROOT = re.compile(rf"^world_size:({_I}) grad_accum_steps:({_I})$")
_WORLD_WS = re.compile(rf" ws:({_I})(?= |$)")
_WALLCLOCK_ROOT = re.compile(rf"(?:^| )max_wallclock_seconds:({_F})(?= |$)")
_DUMP_LINE = re.compile(r"^  (\w+): ?(.*)$")
_VOCAB_PATH = re.compile(r"fineweb_([0-9]+)_bpe")
_VOCAB_DATASET = re.compile(r"fineweb10B_sp([0-9]+)")

# --- metric line (generic) ------------------------------------------------------------------------
_METRIC = re.compile(
    rf"^(?P<label>[A-Za-z_][\w .:+()=-]*?) val_loss[:=](?P<loss>{_F}) (?P<sliding>sliding )?"
    rf"val_bpb[:=](?P<bpb>{_F})(?P<rest>.*)$"
)
_REST_EVAL_TIME = re.compile(rf"(?:^|[ )])(?:eval_)?time:({_I})ms(?= |$)")
_REST_ELAPSED = re.compile(rf"(?:^| )elapsed=({_F})s(?= |$)")
_STRIDE = re.compile(rf"(?:^|[ (,])stride[:=]({_I})(?=[ ,)]|$)")
_LABEL_STRIDE = re.compile(rf" stride[:=]({_I})(?= |$)")
_DIAGNOSTIC = re.compile(r"(?i)diagnostic|pre-quant|pre_quant|post_ema|post-ema")

# --- run starts, source detection, subset markers ---------------------------------------------
_RUN_START = re.compile(
    r"^(?:Running Python |Hyperparameters:$|--- Hyperparameters ---$|seed:[0-9]+$|val_bpb:enabled "
    r"|logs/[\w.-]+\.txt$|LEGENDRE GPT)"
)
# lines only a running program prints (progress, nvidia-smi); source never starts before the last one
_LOGLIKE = re.compile(
    r"^(?:step:[0-9]+/[0-9]+ |[0-9]+/[0-9]+ (?:train_loss|val_loss): |warmup_step|stopping_early: "
    r"|Running Python |Running PyTorch |Hyperparameters:$|--- Hyperparameters ---$|\||\+-)"
)
_PY_START = re.compile(
    r"^(?:#|[rRbBuU]?\"\"\"|[rRbBuU]?'''|import \w|from [\w.]+ import |def \w|class \w|@\w|if __name__)"
)
_PY_CORE = re.compile(r"^\s*(?:import \w|from [\w.]+ import |def \w|class \w)")
_SUBSET = re.compile(
    r"(?i)subset|val_tokens?_limit|eval_tokens?_limit|max_val_tokens|val_max_tokens|\(limited\)"
)
_ZERO = re.compile(r"0+(?:\.0+)?")
_OFF_WORDS = frozenset({"", "false", "none", "off", "no"})

# file-name seed fallbacks, most specific first
_NAME_SEED = (
    re.compile(r"seed[-_]?([0-9]+)", re.IGNORECASE),
    re.compile(r"_s([0-9]+)(?=[._-]|$)"),
    re.compile(r"_log_([0-9]+)(?=\.)"),
)

_CIPRIAN_LABELS = {
    "final_ternary_roundtrip", "final_binary_roundtrip", "final_xnor_roundtrip",
    "final_roundtrip", "final_temped", "final_sliding",
}
_FAMILY_ORDER = (
    "legendre", "dgattention", "ciprian", "varlen-phased", "timed-eval",
    "march-sliding", "int6-ttt", "root-sliding", "root",
)

# --- log file names -----------------------------------------------------------------------------
# (pattern on the lower-cased base name, or on a parent folder for `*.txt`) -> counts as a log.
LOG_NAME_PATTERNS = (
    "*.log",            # train.log, train_seed42.log, anything.log
    "train_log*.txt",   # JEPA train_log_bpe_10min.txt
    "log_*.txt",        # XNOR log_10mins_seed-42.txt
    "*_log_*.txt",      # ternary_log_42.txt
    "*_log.txt",        # binary_log.txt
    "log.txt",
    "train_seed*.txt",
    "*.log.txt",
)
LOG_DIR_PREFIXES = ("logs", "log")  # any *.txt below logs/, logs_experiment/, log/ ...
NOT_LOG_PREFIXES = ("readme", "requirements", "license")


def is_log_name(relpath: str) -> bool:
    """True when a file in a submission folder should be read as a train log.

    The table is `LOG_NAME_PATTERNS` (matched on the lower-cased base name) plus any ``.txt`` file
    inside a folder whose name starts with ``log`` (``logs/``, ``logs_experiment/``). README,
    requirements and licence files never count.
    """
    p = PurePosixPath(relpath.replace("\\", "/"))
    name = p.name.lower()
    if not name or name.startswith(NOT_LOG_PREFIXES):
        return False
    if any(fnmatch(name, pat) for pat in LOG_NAME_PATTERNS):
        return True
    if name.endswith(".txt"):
        return any(part.lower().startswith(LOG_DIR_PREFIXES) for part in p.parts[:-1])
    return False


# --- helpers ----------------------------------------------------------------------------------------

def _num(s: str) -> int | float:
    return float(s) if "." in s else int(s)


def _short(raw: str) -> str:
    return raw.strip()[:MAX_TEXT]


class _Run:
    """Mutable state while one run is being read; `finish()` turns it into a RunEvidence."""

    def __init__(self, path: str, index: int) -> None:
        self.ev = RunEvidence(path=path, index=index)
        self.flags: set[str] = set()
        self.has_results = False
        self.content = False  # anything recognisable at all
        self.unqualified_totals: list[Figure] = []  # only those after a compressed-model line
        self.qualified_total: Figure | None = None
        self.model_seen = False
        # (value, line, raw text) of the last step line; Figures are built once, at the end, because
        # a long log has a million of these lines
        self.last_step: tuple[int, int, str] | None = None
        self.last_step_time: tuple[int, int, str] | None = None
        self.sliding_mode = False  # `final_eval_mode:sliding_window` seen
        self.eval_stride: int | None = None
        self.using: str | None = None
        self.in_dump = False
        self.kv_next = False  # the line after `--- Hyperparameters ---` is the k=v dump
        self.hparams: dict[str, tuple[str, int, str]] = {}  # key -> (value, line, text)
        self.subset_extra = 0
        self.note_set: set[str] = set()
        self.notes_dropped = 0

    # Figures ---------------------------------------------------------------------------------------
    def fig(self, value: int | float, line: int, raw: str) -> Figure:
        self.content = True
        return Figure(value, self.ev.path, line, _short(raw))

    def note(self, text: str) -> None:
        if text in self.note_set:
            return
        if len(self.ev.notes) >= MAX_NOTES:
            self.notes_dropped += 1
            return
        self.note_set.add(text)
        self.ev.notes.append(text)

    def set_seed(self, value: int, line: int, raw: str) -> None:
        if self.ev.seed is not None and self.ev.seed.value != value:
            self.note(f"several seeds logged in one run: {self.ev.seed.value} (line {self.ev.seed.line}) "
                      f"and {value} (line {line})")
        self.ev.seed = self.fig(value, line, raw)

    def subset(self, line: int, text: str) -> None:
        self.content = True
        if len(self.ev.subset_markers) < MAX_SUBSET_MARKERS:
            self.ev.subset_markers.append(Evidence(self.ev.path, line, text[:MAX_TEXT]))
        else:
            self.subset_extra += 1

    def add_phase(self, phase: EvalPhase) -> None:
        self.content = True
        self.ev.phases.append(phase)
        if phase.is_final:
            self.has_results = True

    # Finishing -------------------------------------------------------------------------------------
    def finish(self, base_name: str) -> RunEvidence | None:
        ev = self.ev
        self._apply_hparams()
        if ev.stop_reason is None and self.last_step_time is not None:
            ev.train_time_ms = self.fig(*self.last_step_time)
        if ev.step_stop is None and self.last_step is not None:
            ev.step_stop = self.fig(*self.last_step)
        if self.qualified_total is not None:
            ev.total_bytes = self.qualified_total
        elif ev.total_bytes is None and self.unqualified_totals:
            ev.total_bytes = self.unqualified_totals[-1]
            self.note("total size taken from an unqualified 'Total submission size' line that "
                      "follows the compressed model line")
        if not self.content and ev.embedded_source is None and ev.embedded_source_line is None:
            return None
        name_seed = _seed_from_name(base_name)
        if ev.seed is None and name_seed is not None:
            ev.seed = Figure(name_seed, ev.path, 0, f"file name {base_name}")
            self.note("seed taken from the file name (no seed line in the log)")
        elif ev.seed is not None and name_seed is not None and name_seed != ev.seed.value:
            self.note(f"file name says seed {name_seed} but the log says seed {ev.seed.value}")
        ev.family = self._family()
        if self.subset_extra:  # always kept: it qualifies the subset evidence above
            ev.notes.append(f"{self.subset_extra} further subset markers not listed")
        if self.notes_dropped:
            ev.notes.append(f"{self.notes_dropped} further notes dropped")
        return ev

    def _apply_hparams(self) -> None:
        """Hyperparameter-dump values fill whatever the dedicated lines did not."""
        ev, hp = self.ev, self.hparams

        def figure(key: str, cast) -> Figure | None:
            if key not in hp:
                return None
            value, line, text = hp[key]
            try:
                number = cast(value)
            except (ValueError, OverflowError):
                return None
            if not abs(number) < 10 ** 18:  # inf, nan, or too large to be a measurement
                return None
            return Figure(number, ev.path, line, text)

        if ev.seed is None:
            ev.seed = figure("seed", int)
        if ev.world_size is None:
            ev.world_size = figure("world_size", int)
        if ev.max_wallclock_seconds is None:
            ev.max_wallclock_seconds = figure("max_wallclock_seconds", float)
        if ev.tokenizer_vocab is None and "vocab_size" in hp:
            v = hp["vocab_size"][0]
            if v.isascii() and v.isdigit():
                ev.tokenizer_vocab = int(v)
        if ev.tokenizer_vocab is None and "tokenizer_path" in hp:
            m = _VOCAB_PATH.search(hp["tokenizer_path"][0])
            if m:
                ev.tokenizer_vocab = int(m.group(1))
        if ev.train_shards_path is None:
            for key in ("datasets_dir", "train_files", "data_path"):
                if key in hp and hp[key][0]:
                    value = hp[key][0]
                    ev.train_shards_path = value.rsplit("/", 1)[0] if "*" in value else value
                    break
        if ev.tokenizer_vocab is None and ev.train_shards_path:
            m = _VOCAB_DATASET.search(ev.train_shards_path)
            if m:
                ev.tokenizer_vocab = int(m.group(1))
        if hp.get("caseops_enabled", ("",))[0] == "True":
            ev.byte_sidecar = True

    def _family(self) -> str:
        for name in _FAMILY_ORDER:
            if name in self.flags:
                return name
        return "unknown"


def _seed_from_name(base_name: str) -> int | None:
    for rx in _NAME_SEED:
        m = rx.search(base_name)
        if m:
            return int(m.group(1))
    return None


# --- embedded source -----------------------------------------------------------------------------

def _source_spans(clean: list[str | None]) -> dict[int, int]:
    """Map start index -> end index (exclusive) of embedded-source blocks, 0-based.

    A region (lines between two separators) that holds no program output and starts like Python
    right after a source block continues that block: the source itself contained a 100-`=` line.
    """
    spans: dict[int, int] = {}
    prev = 0
    open_start: int | None = None  # candidate block that reached the previous separator
    open_core = False  # ... and whether it has shown an import/def/class line yet
    for i, line in enumerate(clean):
        if line is None:
            continue
        if line[:1] == "[" and _PLACEHOLDER.match(line):
            spans[i] = i + 1
            prev, open_start = i + 1, None
            continue
        if line != SEPARATOR:
            continue
        start, core, had_log = _scan_region(clean, prev, i)
        if open_start is not None and not had_log and (start is not None or core):
            open_core = open_core or core
        elif start is not None:
            open_start, open_core = start, core
        else:
            open_start = None
        if open_start is not None and open_core:
            spans[open_start] = i
        prev = i + 1
    return spans


def _scan_region(clean: list[str | None], lo: int, hi: int) -> tuple[int | None, bool, bool]:
    """For the lines before the separator at `hi`: where a Python block starts (after the last line
    only a running program prints), whether that block has an import/def/class line, and whether
    the region holds any program output at all."""
    last_log = lo - 1
    for j in range(lo, hi):
        line = clean[j]
        if line is not None and _LOGLIKE.match(line):
            last_log = j
    had_log = last_log >= lo
    start = None
    for j in range(last_log + 1, hi):
        line = clean[j]
        if line is not None and _PY_START.match(line):
            start = j
            break
    core = False
    for j in range(last_log + 1 if start is None else start, hi):
        line = clean[j]
        if line is not None and _PY_CORE.match(line):
            core = True
            break
    return start, core, had_log


# --- main entry point -------------------------------------------------------------------------------

def parse_log(path: str, text: str) -> list[RunEvidence]:
    """Every run found in one log, in order. Pure and deterministic; never raises on odd text."""
    raw_lines = text.split("\n")
    clean: list[str | None] = []
    for raw in raw_lines:
        clean.append(_clean(raw))
    spans = _source_spans(clean)
    base_name = PurePosixPath(path.replace("\\", "/")).name

    runs: list[RunEvidence] = []
    cur = _Run(path, 0)

    def new_run() -> None:
        nonlocal cur
        done = cur.finish(base_name)
        if done is not None:
            runs.append(done)
            cur = _Run(path, len(runs))
        else:
            cur = _Run(path, cur.ev.index)

    i = 0
    n = len(clean)
    while i < n:
        line = clean[i]
        if i in spans:
            end = spans[i]
            if cur.has_results:
                new_run()
            m = _PLACEHOLDER.match(line or "")
            if cur.ev.embedded_source_line is None:
                cur.ev.embedded_source_line = i + 1
                if m:
                    cur.note(f"embedded source removed from this copy ({m.group(1)} lines)")
                else:
                    cur.ev.embedded_source = _source_text(raw_lines[i:end])
            else:
                cur.note(f"another embedded source block at line {i + 1}")
            cur.in_dump = False
            i = end
            continue
        if line is not None:
            if line[:5] == "step:" and not cur.in_dump and not cur.kv_next and "val_loss" not in line:
                # fast path for the bulk of a long log: training-progress lines
                m = _STEP_TRAIN_OLD.match(line)
                if m:
                    cur.content = True
                    cur.last_step = (int(m.group(1)), i + 1, raw_lines[i])
                    if m.group(3) is not None:
                        cur.last_step_time = (int(m.group(3)), i + 1, raw_lines[i])
                    i += 1
                    continue
            if cur.has_results and (line == SEPARATOR or _RUN_START.match(line)):
                new_run()
            _parse_line(cur, line, i + 1, raw_lines[i])
        i += 1
    done = cur.finish(base_name)
    if done is not None:
        runs.append(done)
    return runs


def _source_text(lines: list[str]) -> str:
    """The embedded source as the script printed it: CR line ends and timestamp prefixes removed."""
    out = []
    for raw in lines:
        if raw.endswith("\r"):
            raw = raw[:-1]
        if raw[:1].isdigit():
            m = _TS.match(raw)
            if m:
                raw = raw[m.end():]
        out.append(raw)
    return "\n".join(out)


def _clean(raw: str) -> str | None:
    """The matchable form of a line, or None for lines that must never match."""
    if len(raw) > MAX_LINE:
        return None
    line = raw.rstrip()
    if "\x00" in line:
        line = line.replace("\x00", "").rstrip()
    if line[:1].isdigit():
        m = _TS.match(line)
        if m:
            line = line[m.end():]
    if line.startswith("[rank") and _RANK.match(line):
        return None
    return line


def _parse_line(run: _Run, line: str, ln: int, raw: str) -> None:
    ev = run.ev
    if not line:
        run.in_dump = False
        return

    # hyperparameter dumps -------------------------------------------------------------------------
    if run.in_dump:
        m = _DUMP_LINE.match(line)
        if m:
            key, value = m.group(1), m.group(2).strip()
            run.hparams[key] = (value, ln, _short(raw))
            run.content = True
            if _is_subset_setting(key, value):
                run.subset(ln, _short(raw))
            return
        run.in_dump = False
    if line == "Hyperparameters:":
        run.in_dump = True
        run.flags.add("timed-eval")
        return
    if run.kv_next:
        run.kv_next = False
        _parse_kv(run, line, ln, raw)
        return
    if line == "--- Hyperparameters ---":
        run.kv_next = True
        run.flags.add("ciprian")
        return

    first = line[0]
    # metric lines -----------------------------------------------------------------------------------
    if "val_loss" in line:
        if first == "s" and line.startswith("step:"):
            m = _STEP_VAL_OLD.match(line)
            if m:
                _periodic(run, int(m.group(1)), int(m.group(2)), m.group(3), m.group(4), ln, raw)
                t = _TRAIN_TIME.search(line, m.end())
                if t:
                    run.last_step_time = (int(t.group(1)), ln, raw)
                run.flags.add("root")
                return
        if first.isdigit():
            m = _STEP_VAL_NEW.match(line)
            if m:
                _periodic(run, int(m.group(1)), int(m.group(2)), m.group(3), m.group(4), ln, raw)
                run.flags.add("timed-eval")
                return
        m = _METRIC.match(line)
        if m and not m.group("label").startswith("step:"):
            _metric(run, m, ln, raw)
            return

    # step lines ----------------------------------------------------------------------------------------
    if first == "s" and line.startswith("step:"):
        m = _STEP_TRAIN_OLD.match(line)
        if m:
            run.content = True
            run.last_step = (int(m.group(1)), ln, raw)
            if m.group(3) is not None:
                run.last_step_time = (int(m.group(3)), ln, raw)
            return
    if first.isdigit():
        m = _STEP_TRAIN_NEW.match(line)
        if m:
            run.content = True
            run.last_step = (int(m.group(1)), ln, raw)
            run.last_step_time = (int(round(float(m.group(4)) * 60000)), ln, raw)
            run.flags.add("timed-eval")
            return

    if first == "s":
        m = _STOP.match(line)
        if m:
            ev.stop_reason = "wallclock_cap"
            ev.train_time_ms = run.fig(int(m.group(1)), ln, raw)
            if m.group(2) is not None:
                ev.step_stop = run.fig(int(m.group(2)), ln, raw)
            run.has_results = True
            return
        m = _SEED_ROOT.match(line)
        if m:
            run.set_seed(int(m.group(1)), ln, raw)
            return

    _parse_meta(run, line, ln, raw)


def _periodic(run: _Run, step: int, total: int, loss: str, bpb: str, ln: int, raw: str) -> None:
    run.add_phase(EvalPhase(
        label=f"step:{step}/{total}", val_loss=float(loss), val_bpb=float(bpb), path=run.ev.path,
        line=ln, text=_short(raw), is_final=False,
    ))
    run.last_step = (step, ln, raw)


def _metric(run: _Run, m: re.Match, ln: int, raw: str) -> None:
    label = m.group("label").strip()
    rest = m.group("rest")
    stride = None
    ls = _LABEL_STRIDE.search(label)
    if ls:
        stride = int(ls.group(1))
        label = (label[: ls.start()] + label[ls.end():]).strip()
    if m.group("sliding"):
        label = f"{label} sliding"
    rs = _STRIDE.search(rest)
    if rs:
        stride = int(rs.group(1))
    if stride is None and label.endswith("_exact"):
        # `X_exact` repeats `X` with more digits; it inherits the stride printed on `X`
        for prev in reversed(run.ev.phases[-3:]):
            if prev.label == label[: -len("_exact")]:
                stride = prev.stride
                break
    if stride is None and run.eval_stride is not None and not _DIAGNOSTIC.search(label):
        stride = run.eval_stride
    eval_ms: float | None = None
    t = _REST_EVAL_TIME.search(rest)
    if t:
        eval_ms = float(t.group(1))
    else:
        e = _REST_ELAPSED.search(rest)
        if e:
            eval_ms = float(e.group(1)) * 1000.0
    is_final = not _DIAGNOSTIC.search(label)
    run.add_phase(EvalPhase(
        label=label, val_loss=float(m.group("loss")), val_bpb=float(m.group("bpb")), path=run.ev.path,
        line=ln, text=_short(raw), eval_time_ms=eval_ms, stride=stride, is_final=is_final,
    ))
    _label_flags(run, label)


def _label_flags(run: _Run, label: str) -> None:
    base = label.split(" ")[0]
    flags = run.flags
    if base == "final_INT7_zlib_roundtrip":
        flags.add("legendre")
    elif base in _CIPRIAN_LABELS:
        flags.add("ciprian")
    elif base.startswith(("quantized_ttt_phased", "quantized_ttt_lora")) or label.startswith("diagnostic quantized"):
        flags.add("varlen-phased")
    elif base.startswith(("quantized", "pre-quantization")):
        flags.add("timed-eval")
    elif base.startswith("final_sliding_window"):
        flags.add("march-sliding")
    elif base.startswith(("final_int6_", "legal_ttt", "ttt_sliding:done")) or label.startswith("DIAGNOSTIC"):
        flags.add("int6-ttt")
    elif base.startswith("final_int8_zlib_roundtrip"):
        flags.add("root-sliding" if run.sliding_mode else "root")


def _is_off(value: str) -> bool:
    """A setting value that disables the feature: 0, 0.0, False, None, off, or empty."""
    value = value.strip()
    return value.lower() in _OFF_WORDS or _ZERO.fullmatch(value) is not None


def _is_subset_setting(key: str, value: str) -> bool:
    """A hyperparameter that restricts evaluation to part of the validation set."""
    if key == "val_doc_fraction":
        try:
            return float(value) < 1.0
        except ValueError:
            return False
    return _SUBSET.search(key) is not None and not _is_off(value)


def _parse_kv(run: _Run, line: str, ln: int, raw: str) -> None:
    """The Ciprian-family one-line `k=v k=v ...` hyperparameter dump."""
    run.content = True
    for tok in line.split(" "):
        if "=" not in tok:
            continue
        key, _, value = tok.partition("=")
        if key and key not in run.hparams:
            run.hparams[key] = (value, ln, tok[:MAX_TEXT])
        if _is_subset_setting(key, value):
            run.subset(ln, tok[:MAX_TEXT])


def _parse_meta(run: _Run, line: str, ln: int, raw: str) -> None:
    ev = run.ev
    first = line[0]

    if first == "S":
        m = _MODEL.match(line)
        if m:
            ev.model_bytes = run.fig(int(m.group(2)), ln, raw)
            ev.model_tag = m.group(1)
            run.model_seen = True
            run.has_results = True
            if ev.model_tag.startswith("rdquant"):
                run.flags.add("dgattention")
            return
        if _MODEL_RAW.match(line):
            run.content = True
            return
    if first == "C":
        for rx, attr in ((_CODE, "code_bytes"), (_CODE_RAW, "code_bytes_raw"), (_CODE_COMP, "code_bytes_compressed")):
            m = rx.match(line)
            if m:
                setattr(ev, attr, run.fig(int(m.group(1)), ln, raw))
                if attr != "code_bytes":
                    run.flags.add("varlen-phased")
                return
    if first == "T":
        m = _TOTAL.match(line)
        if m:
            f = run.fig(int(m.group(2)), ln, raw)
            if m.group(1):
                run.qualified_total = f
                run.has_results = True
            elif run.model_seen:
                run.unqualified_totals.append(f)
                run.has_results = True
            return

    low = line.lower()
    if (("subset" in low or "limit" in low or "max_val_tokens" in low or "val_max_tokens" in low)
            and _SUBSET.search(line) and not _is_off(line[max(line.rfind(":"), line.rfind("=")) + 1:])):
        run.subset(ln, _short(raw))
        # fall through: a subset line may still carry other figures

    if "params:" in line:
        m = _PARAMS_SEED.search(line)
        if m:
            run.set_seed(int(m.group(1)), ln, raw)
        m = _WORLD_WS.search(line)
        if m:
            ev.world_size = run.fig(int(m.group(1)), ln, raw)
        if m:
            return
    if ev.seed is None and "seed=" in line:
        m = _KV_SEED.search(line)
        if m:
            run.set_seed(int(m.group(1)), ln, raw)
            return
    if "max_wallclock_seconds:" in line:
        m = _WALLCLOCK_ROOT.search(line)
        if m:
            ev.max_wallclock_seconds = run.fig(_num(m.group(1)), ln, raw)
            return
    if "MB model + " in line:
        m = _MB_SIZES.match(line)
        if m:
            run.content = True
            run.note(f"sizes logged only in MB at line {ln}: {m.group(1)} model {m.group(2)}MB + code "
                     f"{m.group(3)}MB = {m.group(4)}MB")
            return
    if not _META_PREFIX.match(line):
        return  # cheap exit for the bulk of lines that carry nothing we read

    for rx in _VAL_TOKENS:
        m = rx.match(line)
        if m:
            ev.val_tokens = run.fig(int(m.group(1)), ln, raw)
            if line.startswith("val_loader"):
                run.flags.add("root")
            elif line.startswith("val tokens"):
                run.flags.add("legendre")
            else:
                run.flags.add("timed-eval")
            return
    m = _TRAIN_LOADER.match(line)
    if m:
        ev.train_shards = run.fig(int(m.group(2)), ln, raw)
        ev.train_shards_path = m.group(1)
        return
    m = _TRAIN_SHARDS.match(line)
    if m:
        ev.train_shards = run.fig(int(m.group(1)), ln, raw)
        return
    m = _BPB_ENABLED.match(line)
    if m:
        run.content = True
        if m.group(3):
            ev.tokenizer_vocab = int(m.group(3))
        elif m.group(2):
            v = _VOCAB_PATH.search(m.group(2))
            if v:
                ev.tokenizer_vocab = int(v.group(1))
        return
    if _SIDECAR.match(line):
        ev.byte_sidecar = True
        run.content = True
        run.flags.add("varlen-phased")
        return
    m = _WORLD_ROOT.match(line)
    if m:
        ev.world_size = run.fig(int(m.group(1)), ln, raw)
        return
    m = _TOTAL_EVAL.match(line)
    if m:
        ev.total_eval_time_s = run.fig(float(m.group(1)), ln, raw)
        run.flags.add("varlen-phased")
        return
    m = _COMPILE_WARMUP.match(line)
    if m:
        ev.compile_warmup_s = run.fig(float(m.group(1)), ln, raw)
        run.flags.add("varlen-phased")
        return
    if line.startswith(("ttt_lora:", "ttt_phased:")):
        run.flags.add("varlen-phased")
        run.content = True
        return
    m = _ARTIFACT_WALL.match(line)
    if m:
        ev.artifact_production_wallclock_s = run.fig(float(m.group(1)), ln, raw)
        return
    m = _GPTQ_RESERVE.match(line)
    if m:
        run.content = True
        run.note(f"gptq reserve {m.group(1)}{m.group(2)}, effective training budget {m.group(3)}ms "
                 f"(line {ln})")
        return
    m = _FINAL_EVAL_MODE.match(line)
    if m:
        run.content = True
        if m.group(1) == "sliding_window":
            run.sliding_mode = True
            run.eval_stride = int(m.group(2)) if m.group(2) else None
            run.flags.add("root-sliding")
            run.note(f"final_eval_mode:sliding_window announced at line {ln}: later root labels carry "
                     f"a sliding result")
        return
    m = _TEMP_SCALING.match(line)
    if m:
        run.content = True
        run.flags.add("ciprian")
        run.note(f"temperature scaling T={m.group(1)} fitted (line {ln})")
        return

    # Ciprian and one-off size lines --------------------------------------------------------------
    m = _USING.match(line)
    if m:
        run.using = m.group(1)
        return
    m = _ARTIFACT.match(line)
    if m:
        ev.code_bytes = run.fig(int(m.group(7)), ln, raw)
        ev.model_tag = m.group(2) + (f"+{run.using}" if run.using else "")
        run.flags.add("ciprian")
        run.has_results = True
        return
    m = _BUDGET.match(line)
    if m:
        total = int(m.group(1))
        run.qualified_total = run.fig(total, ln, raw)
        if ev.code_bytes is not None and ev.code_bytes.value <= total:
            ev.model_bytes = run.fig(total - int(ev.code_bytes.value), ln, raw)
            run.note(f"model size {ev.model_bytes.value} derived as budget total minus code (line {ln})")
        run.flags.add("ciprian")
        run.has_results = True
        return
    m = _LEGENDRE_MODEL.match(line)
    if m:
        ev.model_bytes = run.fig(int(m.group(1)), ln, raw)
        ev.model_tag = "INT7+zlib"
        run.qualified_total = run.fig(int(m.group(2)), ln, raw)
        run.flags.add("legendre")
        run.has_results = True
        return
    m = _LEGENDRE_RAW.match(line)
    if m:
        ev.code_bytes = run.fig(int(m.group(2)), ln, raw)
        run.flags.add("legendre")
        return
    if line.startswith("LEGENDRE GPT"):
        run.flags.add("legendre")
        run.content = True
        return
    if line.startswith("dg_beta("):
        run.flags.add("dgattention")
        return
