"""What the flow analysis reports: one event kind per semantic fact, each with a typed payload.

The flow analyser (flow.py) walks each function once and emits events; the code rules query them
(`CodeAnalysis.of(kind)`). An event seen through a call to a summarised function carries the callee
(`via`, `via_name`), where it happened inside the callee (`origin`) and the call's argument names.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from auditor.analysis.index import Func


class EventKind(StrEnum):
    CALL = "call"  # a call to a project function (for reachability)
    REF = "ref"  # a function or class named as a value (passed, stored, compiled)
    IMPORT = "import"  # an import of a shipped module
    FILEREF = "fileref"  # a shipped file named in a string (compiled, loaded or executed)
    EXT = "ext"  # a call into the outside world (network, processes, exec/eval)
    DEL = "del"  # `del` of names (state thrown away)
    OPT = "opt"  # an optimizer constructed
    FRESH = "fresh"  # a model/state rebuilt from scratch
    STEP = "step"  # optimizer.step()
    RESTORE = "restore"  # state restored (load_state_dict, copy back)
    UPDATE = "update"  # a parameter or count-table update (backward, autograd.grad, counts)
    SCORE = "score"  # a loss/NLL accumulated into a reported score
    LOSS = "loss"  # a per-token loss computed
    LOOKUP = "lookup"  # a table lookup (hashed when keyed by a hash)
    POS_WRITE = "pos_write"  # a write into a per-position table
    VAL_SLICE = "val_slice"  # validation tokens sliced
    RATIO = "ratio"  # a count ratio (numerator / denominator)
    PERBYTE = "perbyte"  # a quantity divided by a byte count
    MIX = "mix"  # two predictions mixed with a weight
    MIN_SELECT = "min_select"  # the minimum of several per-token losses kept
    TRAIN_READ = "train_read"  # training data read


@dataclass(frozen=True)
class Payload:
    """Fields any event may carry when seen through a call to a summarised function."""

    via: str | None = None
    via_name: str | None = None
    origin: dict[str, Any] | None = None
    argnames: list[str] | None = None
    how: str | None = None


@dataclass(frozen=True)
class CallData(Payload):
    callees: list[Any] | None = None
    cls: Any = None


@dataclass(frozen=True)
class ImportData(Payload):
    module: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class FileRefData(Payload):
    name: str | None = None


@dataclass(frozen=True)
class ExtData(Payload):
    qual: str = ""
    strings: list[str] | None = None
    call: ast.Call | None = None
    guards: list[str] | None = None


@dataclass(frozen=True)
class NamesData(Payload):
    names: list[str] | None = None


@dataclass(frozen=True)
class OptData(Payload):
    names: list[str] | None = None
    params: list[str] | None = None
    fresh: bool = False


@dataclass(frozen=True)
class StepData(Payload):
    obj: str | None = None
    params: list[str] | None = None
    fresh: bool = False
    opt_line: int | None = None


@dataclass(frozen=True)
class ObjData(Payload):
    obj: str | None = None


@dataclass(frozen=True)
class UpdateData(Payload):
    table: str | None = None
    obj: str | None = None


@dataclass(frozen=True)
class ScoreData(Payload):
    acc: str | None = None


@dataclass(frozen=True)
class LookupData(Payload):
    table: str | None = None
    hashed: bool = False


@dataclass(frozen=True)
class TableData(Payload):
    table: str | None = None


@dataclass(frozen=True)
class SliceData(Payload):
    upper: ast.AST | None = None
    lower: ast.AST | None = None
    base: str | None = None


@dataclass(frozen=True)
class DenomData(Payload):
    denom: str | None = None


@dataclass(frozen=True)
class MixData(Payload):
    weight_labels: frozenset = frozenset()
    operand_labels: list[frozenset] | None = None
    weight_text: str = ""


PAYLOADS: dict[EventKind, type[Payload]] = {
    EventKind.CALL: CallData, EventKind.REF: CallData, EventKind.IMPORT: ImportData,
    EventKind.FILEREF: FileRefData, EventKind.EXT: ExtData, EventKind.DEL: NamesData, EventKind.FRESH: NamesData,
    EventKind.OPT: OptData, EventKind.STEP: StepData, EventKind.RESTORE: ObjData, EventKind.UPDATE: UpdateData,
    EventKind.SCORE: ScoreData, EventKind.LOSS: Payload, EventKind.LOOKUP: LookupData,
    EventKind.POS_WRITE: TableData, EventKind.VAL_SLICE: SliceData, EventKind.RATIO: DenomData,
    EventKind.PERBYTE: DenomData, EventKind.MIX: MixData, EventKind.MIN_SELECT: Payload,
    EventKind.TRAIN_READ: Payload,
}


def payload(kind: EventKind, data: dict[str, Any]) -> Payload:
    """The typed payload of one event; an unknown field is a programming error (TypeError)."""
    return PAYLOADS[kind](**data)


@dataclass(frozen=True)
class Loop:
    start: int
    end: int
    targets: tuple[str, ...]
    iter_text: str
    node_id: int


@dataclass
class Event:
    kind: EventKind
    path: str
    line: int
    func: "Func"
    labels: frozenset
    loops: tuple[Loop, ...]
    dead: frozenset | None
    text: str
    data: Payload = field(default_factory=Payload)
    end_line: int = 0
    nograd: bool = False
    enabled_by: frozenset = frozenset()  # env vars whose README / logged value opens the guard this sits under

    def in_loop(self, loop: Loop) -> bool:
        return any(l.node_id == loop.node_id for l in self.loops)


@dataclass
class Summary:
    ret: frozenset = frozenset()
    # (kind, labels) -> origin dict (path, line, text, chain)
    effects: dict[tuple[str, frozenset], dict] = field(default_factory=dict)

    def key(self) -> tuple:
        return (self.ret, frozenset(self.effects))
