"""The flip test inside the run: train once, evaluate twice.

The script runs once. At the first loss primitive (the capture wrappers call `check`) whose target ids
are a stretch of the validation stream — with or without gradients, so before any test-time training,
pre-quantisation fine-tuning on validation tokens, SLOT or scoring — the process forks:

  run A (this process) goes on with the stream it loaded (S);
  run B (the child) rewrites, in its own memory, every integer tensor or writable array that holds a
        stretch of S so that positions >= k hold the re-drawn stream S' (equal to S before k), reconnects
        to the parent's evidence socket with its records tagged `flip: "b"`, sends its output to
        /dev/null, works in its own folder, and goes on.

Everything before the fork (training on the training shards) is shared; the two evaluations run side
by side. A causal evaluation that scores before it learns gives every position < k the same loss in
both runs; the parent compares them (auditor/sandbox/capture.flip_compare). Memory not found by the
scan (a read-only memory map, a Python list of ints) keeps S in run B: positions after k may then be
scored with S's tokens, which can hide a difference but never create one. Standard library + torch.
"""

from __future__ import annotations

import gc
import os
import shutil
import sys

import numpy as np
import torch

import _gauntlet_hooks as hooks

K = 4  # as gauntlet_capture.K
STATE = {"armed": False, "forked": False, "grad_seen": False, "role": "", "child": 0, "k": 0, "a": None, "b": None,
         "index": None}
_MAX_COPY = 64 << 20  # bytes of a top-level run-folder file run B gets its own copy of


def configure(flip: dict) -> None:
    """flip: {"k": position, "stream_a": val shard path, "stream_b": re-drawn val shard path}. The
    stream index is the capture's (gauntlet_capture.configure ran first)."""
    import gauntlet_capture

    st = hooks.STATE
    if st is not None:
        st.busy = True  # the auditor's own reads are not the script's
    try:
        a, b = gauntlet_capture.read_shard(flip["stream_a"]), gauntlet_capture.read_shard(flip["stream_b"])
    finally:
        if st is not None:
            st.busy = False
    a.flags.writeable = False  # the scan for stretches of the stream must not rewrite its own copies
    b.flags.writeable = False
    STATE.update(k=int(flip["k"]), a=a, b=b, index=gauntlet_capture.INDEX or None)


def arm(on: bool = True) -> None:
    STATE["armed"] = bool(on) and STATE["index"] is not None


def _position(t) -> int | None:
    import gauntlet_capture

    return gauntlet_capture.locate(t, STATE["index"] or {})


def check(target) -> None:
    """Called by every wrapped loss primitive with its target tensor, before the loss is computed:
    forks at the first loss on validation targets, and records the first one taken with gradients
    (training on validation tokens: C3 decides whether it came before they were scored)."""
    if not STATE["armed"] or (STATE["forked"] and STATE["grad_seen"]):
        return
    grad = torch.is_grad_enabled()
    if STATE["forked"] and not grad:
        return
    pos = _position(target)
    if pos is None:
        return
    if grad and not STATE["grad_seen"]:
        STATE["grad_seen"] = True
        capture = sys.modules.get("gauntlet_capture")
        hooks.emit({"event": "flip_val_grad", "position": pos,
                    "calls_before": capture.STATE["calls"] if capture is not None else 0})
    if not STATE["forked"]:
        _fork(pos)


def _fork(pos: int) -> None:
    STATE["forked"] = True
    capture = sys.modules.get("gauntlet_capture")
    calls = capture.STATE["calls"] if capture is not None else 0
    hooks.emit({"event": "flip_fork", "position": pos, "calls_before": calls, "grad": torch.is_grad_enabled(),
                "k": STATE["k"]})
    sys.stdout.flush()
    sys.stderr.flush()
    st = hooks.STATE
    if st is not None:
        st.busy = True  # the auditor's own fork is not a process the script launched
    try:
        pid = os.fork()
    except OSError as exc:
        hooks.emit({"event": "flip_fork_failed", "error": str(exc)[:200]})
        return
    finally:
        if st is not None:
            st.busy = False
    # One thread in both runs from here: the child has none of the parent's OpenMP workers (a parallel
    # region would wait for them forever), and equal thread counts give bit-equal float reductions.
    try:
        torch.set_num_threads(1)
    except Exception:  # noqa: BLE001
        pass
    if pid:
        STATE.update(role="a", child=pid)
        return
    STATE["role"] = "b"
    hooks.reconnect("b")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    swapped = _swap_memory()
    _index_stream_b()
    _own_folder()
    hooks.emit({"event": "flip_swap", **swapped})


def _index_stream_b() -> None:
    """Run B scores S' from k on: its windows must locate too, or the capture would skip the calls that
    lie wholly after k and number the rest differently from run A."""
    b, k, index = STATE["b"], STATE["k"], STATE["index"]
    raw = b.astype("<i4").tobytes()
    for p in range(max(0, k - K + 1), b.size - K + 1):
        index.setdefault(raw[4 * p:4 * (p + K)], p)


def _own_folder() -> None:
    """Run B writes its model files and logs in a folder of its own (relative paths keep working)."""
    here = os.getcwd()
    mine = os.path.join(here, "flip_b")
    try:
        os.makedirs(mine, exist_ok=True)
        for name in os.listdir(here):
            src = os.path.join(here, name)
            if name in ("flip_b", ".gauntlet") or os.path.islink(src):
                continue
            if os.path.isdir(src):
                os.makedirs(os.path.join(mine, name), exist_ok=True)
            elif os.path.isfile(src) and os.path.getsize(src) <= _MAX_COPY:
                shutil.copyfile(src, os.path.join(mine, name))
        os.chdir(mine)
    except OSError:
        pass


def _rewrite(flat_np: np.ndarray, write) -> int:
    """Positions >= k of a stretch of S found in `flat_np` (1-D view of the memory): the number of
    elements rewritten, through `write(start, values)`."""
    a, b, k = STATE["a"], STATE["b"], STATE["k"]
    if flat_np.size < K:
        return 0
    o = STATE["index"].get(flat_np[:K].astype("<i4").tobytes())
    if o is None:
        return 0
    m = min(flat_np.size, a.size - o)
    seg = flat_np[:m].astype(np.int64)
    cut = max(0, min(m, k - o))
    if not np.array_equal(seg[:cut], a[o:o + cut]):
        return 0
    tail, ta, tb = seg[cut:], a[o + cut:o + m], b[o + cut:o + m]
    if not np.all((tail == ta) | (tail == tb)) or np.array_equal(tail, tb):
        return 0
    write(cut, tb)
    return int(m - cut)


def _swap_tensor(t: torch.Tensor) -> int:
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool or t.numel() < K or t.device.type != "cpu":
        return 0
    if not t.is_contiguous() or t.requires_grad or _position(t) is None:
        return 0
    flat = t.data.view(-1)  # .data: a write autograd does not see (a batch saved for backward stays usable)
    try:
        host = flat.to(torch.int64).numpy()
    except Exception:  # noqa: BLE001
        return 0

    def write(start, values):
        src = torch.from_numpy(np.ascontiguousarray(values)).to(flat.dtype)
        if flat.is_inference():
            with torch.inference_mode():
                flat[start:start + values.size].copy_(src)
        else:
            flat[start:start + values.size].copy_(src)

    try:
        return _rewrite(host, write)
    except Exception:  # noqa: BLE001
        return 0


def _swap_array(arr: np.ndarray) -> int:
    if arr.dtype.kind not in "iu" or arr.size < K or not arr.flags.writeable or not arr.flags.c_contiguous:
        return 0
    flat = arr.reshape(-1)
    if STATE["index"].get(flat[:K].astype("<i4").tobytes()) is None:
        return 0

    def write(start, values):
        flat[start:start + values.size] = values.astype(flat.dtype)

    return _rewrite(flat, write)


def _swap_memory() -> dict:
    """Every reachable integer tensor and numpy array holding a stretch of S: rewritten from k on."""
    done: set[int] = {id(STATE["a"]), id(STATE["b"])}
    n_t = n_a = elems = 0
    objs = gc.get_objects()
    frame = sys._getframe()
    while frame is not None:  # locals of the running frames (numpy arrays are not tracked by gc)
        objs.append(frame.f_locals)
        frame = frame.f_back
    for obj in objs:  # no attribute access on the script's objects: only the references gc reports
        cands = [obj] if issubclass(type(obj), (torch.Tensor, np.ndarray)) else []
        try:
            for r in gc.get_referents(obj):
                if issubclass(type(r), np.ndarray):
                    cands.append(r)
                elif type(r) is dict:  # an instance's __dict__ (untracked when it holds only arrays)
                    cands += [v for v in r.values() if issubclass(type(v), np.ndarray)]
        except Exception:  # noqa: BLE001
            pass
        for c in cands:
            if id(c) in done:
                continue
            done.add(id(c))
            if isinstance(c, torch.Tensor):
                n = _swap_tensor(c)
                n_t += n > 0
            else:
                n = _swap_array(c)
                n_a += n > 0
            elems += n
    return {"tensors": n_t, "arrays": n_a, "elements": elems}


def finish() -> None:
    """End of the script's main: run B stops here; run A waits for it."""
    if STATE["role"] == "b":
        hooks.emit({"event": "flip_end"})
        os._exit(0)
    if STATE["role"] == "a" and STATE["child"]:
        try:
            _, status = os.waitpid(STATE["child"], 0)
            hooks.emit({"event": "flip_child_exit", "status": status})
        except OSError:
            pass
