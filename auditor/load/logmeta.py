"""Metadata lines of a record log: sizes, seeds, token counts, configuration, family markers.

`parse_meta` reads one line that is not a metric line; each family of lines has its own matcher,
tried in order, so the cheap tests run first and most lines leave after one comparison.
"""

from __future__ import annotations

from auditor.load.logpatterns import (
    _ARTIFACT,
    _ARTIFACT_WALL,
    _BPB_ENABLED,
    _BUDGET,
    _CODE,
    _CODE_COMP,
    _CODE_RAW,
    _COMPILE_WARMUP,
    _FINAL_EVAL_MODE,
    _GPTQ_RESERVE,
    _KV_SEED,
    _LEGENDRE_MODEL,
    _LEGENDRE_RAW,
    _MB_SIZES,
    _META_PREFIX,
    _MODEL,
    _MODEL_RAW,
    _OFF_WORDS,
    _PARAMS_SEED,
    _SIDECAR,
    _SUBSET,
    _TEMP_SCALING,
    _TOTAL,
    _TOTAL_EVAL,
    _TRAIN_LOADER,
    _TRAIN_SHARDS,
    _USING,
    _VAL_TOKENS,
    _VOCAB_PATH,
    _WALLCLOCK_ROOT,
    _WORLD_ROOT,
    _WORLD_WS,
    _ZERO,
    MAX_TEXT,
)
from auditor.load.logrun import _num, _Run, _short


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
    """One metadata line: the first matcher that recognises it records what it carries."""
    if _sizes(run, line, ln, raw) or _free_form(run, line, ln, raw):
        return
    if not _META_PREFIX.match(line):
        return  # cheap exit for the bulk of lines that carry nothing we read
    _prefixed(run, line, ln, raw) or _family_lines(run, line, ln, raw)


def _sizes(run: _Run, line: str, ln: int, raw: str) -> bool:
    """Model, code and total sizes (dispatched on the first character)."""
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
            return True
        if _MODEL_RAW.match(line):
            run.content = True
            return True
    if first == "C":
        for rx, attr in ((_CODE, "code_bytes"), (_CODE_RAW, "code_bytes_raw"), (_CODE_COMP, "code_bytes_compressed")):
            m = rx.match(line)
            if m:
                setattr(ev, attr, run.fig(int(m.group(1)), ln, raw))
                if attr != "code_bytes":
                    run.flags.add("varlen-phased")
                return True
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
            return True
    return False


def _free_form(run: _Run, line: str, ln: int, raw: str) -> bool:
    """Subset markers, seeds, world size, wallclock cap and MB-only sizes anywhere in a line."""
    ev = run.ev
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
            return True
    if ev.seed is None and "seed=" in line:
        m = _KV_SEED.search(line)
        if m:
            run.set_seed(int(m.group(1)), ln, raw)
            return True
    if "max_wallclock_seconds:" in line:
        m = _WALLCLOCK_ROOT.search(line)
        if m:
            ev.max_wallclock_seconds = run.fig(_num(m.group(1)), ln, raw)
            return True
    if "MB model + " in line:
        m = _MB_SIZES.match(line)
        if m:
            run.content = True
            run.note(f"sizes logged only in MB at line {ln}: {m.group(1)} model {m.group(2)}MB + code "
                     f"{m.group(3)}MB = {m.group(4)}MB")
            return True
    return False


def _prefixed(run: _Run, line: str, ln: int, raw: str) -> bool:  # one matcher per key, tried in order (cheapest first)
    """Lines that start with a known key: token counts, shards, tokenizer, eval timing, GPTQ."""
    ev = run.ev
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
            return True
    m = _TRAIN_LOADER.match(line)
    if m:
        ev.train_shards = run.fig(int(m.group(2)), ln, raw)
        ev.train_shards_path = m.group(1)
        return True
    m = _TRAIN_SHARDS.match(line)
    if m:
        ev.train_shards = run.fig(int(m.group(1)), ln, raw)
        return True
    m = _BPB_ENABLED.match(line)
    if m:
        run.content = True
        if m.group(3):
            ev.tokenizer_vocab = int(m.group(3))
        elif m.group(2):
            v = _VOCAB_PATH.search(m.group(2))
            if v:
                ev.tokenizer_vocab = int(v.group(1))
        return True
    if _SIDECAR.match(line):
        ev.byte_sidecar = True
        run.content = True
        run.flags.add("varlen-phased")
        return True
    m = _WORLD_ROOT.match(line)
    if m:
        ev.world_size = run.fig(int(m.group(1)), ln, raw)
        return True
    m = _TOTAL_EVAL.match(line)
    if m:
        ev.total_eval_time_s = run.fig(float(m.group(1)), ln, raw)
        run.flags.add("varlen-phased")
        return True
    m = _COMPILE_WARMUP.match(line)
    if m:
        ev.compile_warmup_s = run.fig(float(m.group(1)), ln, raw)
        run.flags.add("varlen-phased")
        return True
    if line.startswith(("ttt_lora:", "ttt_phased:")):
        run.flags.add("varlen-phased")
        run.content = True
        return True
    m = _ARTIFACT_WALL.match(line)
    if m:
        ev.artifact_production_wallclock_s = run.fig(float(m.group(1)), ln, raw)
        return True
    m = _GPTQ_RESERVE.match(line)
    if m:
        run.content = True
        run.note(f"gptq reserve {m.group(1)}{m.group(2)}, effective training budget {m.group(3)}ms "
                 f"(line {ln})")
        return True
    m = _FINAL_EVAL_MODE.match(line)
    if m:
        run.content = True
        if m.group(1) == "sliding_window":
            run.sliding_mode = True
            run.eval_stride = int(m.group(2)) if m.group(2) else None
            run.flags.add("root-sliding")
            run.note(f"final_eval_mode:sliding_window announced at line {ln}: later root labels carry "
                     f"a sliding result")
        return True
    m = _TEMP_SCALING.match(line)
    if m:
        run.content = True
        run.flags.add("ciprian")
        run.note(f"temperature scaling T={m.group(1)} fitted (line {ln})")
        return True
    return False


def _family_lines(run: _Run, line: str, ln: int, raw: str) -> bool:
    """Lines only one log family prints (Ciprian budgets, Legendre sizes, DG attention)."""
    ev = run.ev
    # Ciprian and one-off size lines --------------------------------------------------------------
    m = _USING.match(line)
    if m:
        run.using = m.group(1)
        return True
    m = _ARTIFACT.match(line)
    if m:
        ev.code_bytes = run.fig(int(m.group(7)), ln, raw)
        ev.model_tag = m.group(2) + (f"+{run.using}" if run.using else "")
        run.flags.add("ciprian")
        run.has_results = True
        return True
    m = _BUDGET.match(line)
    if m:
        total = int(m.group(1))
        run.qualified_total = run.fig(total, ln, raw)
        if ev.code_bytes is not None and ev.code_bytes.value <= total:
            ev.model_bytes = run.fig(total - int(ev.code_bytes.value), ln, raw)
            run.note(f"model size {ev.model_bytes.value} derived as budget total minus code (line {ln})")
        run.flags.add("ciprian")
        run.has_results = True
        return True
    m = _LEGENDRE_MODEL.match(line)
    if m:
        ev.model_bytes = run.fig(int(m.group(1)), ln, raw)
        ev.model_tag = "INT7+zlib"
        run.qualified_total = run.fig(int(m.group(2)), ln, raw)
        run.flags.add("legendre")
        run.has_results = True
        return True
    m = _LEGENDRE_RAW.match(line)
    if m:
        ev.code_bytes = run.fig(int(m.group(2)), ln, raw)
        run.flags.add("legendre")
        return True
    if line.startswith("LEGENDRE GPT"):
        run.flags.add("legendre")
        run.content = True
        return True
    if line.startswith("dg_beta("):
        run.flags.add("dgattention")
        return True
    return False
