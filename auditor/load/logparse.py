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

The driver for eight log families (~460 lines); line shapes, run state and metadata are split out.
"""

from __future__ import annotations

import re
from fnmatch import fnmatch
from pathlib import PurePosixPath

from auditor.core.model import EvalPhase, RunEvidence
from auditor.load.logmeta import _is_subset_setting, _parse_kv, _parse_meta
from auditor.load.logpatterns import (
    _CIPRIAN_LABELS,
    _DIAGNOSTIC,
    _DUMP_LINE,
    _LABEL_STRIDE,
    _LOGLIKE,
    _METRIC,
    _PLACEHOLDER,
    _PY_CORE,
    _PY_START,
    _RANK,
    _REST_ELAPSED,
    _REST_EVAL_TIME,
    _RUN_START,
    _SEED_ROOT,
    _STEP_TRAIN_NEW,
    _STEP_TRAIN_OLD,
    _STEP_VAL_NEW,
    _STEP_VAL_OLD,
    _STOP,
    _STRIDE,
    _TRAIN_TIME,
    _TS,
    MAX_LINE,
    SEPARATOR,
)
from auditor.load.logrun import _Run, _short

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


def _parse_line(run: _Run, line: str, ln: int, raw: str) -> None:  # dispatch on the line shape: the one place metric lines are read
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

