"""One run being read from a log: the figures found so far and the state the parser needs.

Split from logparse.py so that the line matchers (logmeta.py) and the driver share it.
"""

from __future__ import annotations

from auditor.core.model import EvalPhase, Evidence, Figure, RunEvidence
from auditor.load.logpatterns import (
    _FAMILY_ORDER,
    _NAME_SEED,
    _VOCAB_DATASET,
    _VOCAB_PATH,
    MAX_NOTES,
    MAX_SUBSET_MARKERS,
    MAX_TEXT,
)

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
