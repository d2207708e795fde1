"""Per-position capture: the per-token losses the script's own evaluation computes, with their targets.

Wraps the loss primitives record scripts score with — `F.cross_entropy` (any reduction; also through
`nn.CrossEntropyLoss`), `F.nll_loss`, and `log_softmax` followed by `gather` — and, while the driver
has switched capture on (the script's main stage) and autograd is off (evaluation runs under
`no_grad` / `inference_mode`; training steps do not), sends each call's per-token losses and target
ids to the parent over the audit hook's socket. The parent locates the targets in the synthetic
validation stream (auditor/sandbox/capture.py); nothing is judged here.

Bounded: at most MAX_TOKENS tokens per run, sent in chunks of CHUNK tokens (float32 losses and int32
targets, base64). Standard library + torch (+ numpy, which torch uses to export arrays).
"""

from __future__ import annotations

import base64
import sys

import torch
import torch.nn.functional as F

import _gauntlet_hooks as hooks

MAX_TOKENS = 1 << 19
CHUNK = 4096
K = 4  # consecutive target ids that identify a position of the random validation stream
STATE = {"enabled": False, "sent": 0, "calls": 0, "dropped": 0, "busy": False, "skipped": 0}
INDEX: dict[bytes, int] = {}  # K ids of the validation stream -> their position (empty: send every call)

_real = {}


def read_shard(path: str):
    """A token shard's ids (256 int32 header, then uint16 tokens) as int64."""
    import numpy as np

    header = np.fromfile(path, dtype="<i4", count=256)
    return np.fromfile(path, dtype="<u2", count=int(header[2]), offset=256 * 4).astype(np.int64)


def configure(stream_path: str) -> None:
    """Index the validation stream, so that only calls scoring it are sent (a calibration or training
    batch under no_grad would otherwise use up the capture budget)."""
    raw = read_shard(stream_path).astype("<i4").tobytes()
    for p in range(len(raw) // 4 - K + 1):
        INDEX.setdefault(raw[4 * p:4 * (p + K)], p)


def locate(target, index: dict | None = None) -> int | None:
    """Stream position of the first K ids of an integer tensor (in `index`, default the capture's), or None."""
    try:
        if not isinstance(target, torch.Tensor) or target.is_floating_point() or target.numel() < K:
            return None
        head = target.detach().reshape(-1)[:K].to("cpu", torch.int64).numpy().astype("<i4").tobytes()
    except Exception:  # noqa: BLE001 - evidence gathering must never break the script
        return None
    return (INDEX if index is None else index).get(head)


def _from_val(target) -> bool:
    """Does the call score stretches of the validation stream (its start, middle or end located)?"""
    if not INDEX:
        return True
    flat = target.detach().reshape(-1)
    n = int(flat.numel())
    for start in sorted({0, max(0, n // 2 - K // 2), max(0, n - K)}):
        if locate(flat[start:start + K]) is not None:
            return True
    STATE["skipped"] += n
    return False


def enable(on: bool = True) -> None:
    STATE["enabled"] = on


def _flip(target) -> None:
    """The flip test forks at the first loss on validation targets (shims/gauntlet_flip.py)."""
    flip = sys.modules.get("gauntlet_flip")
    if flip is not None and not STATE["busy"]:
        flip.check(target)


def _want(target) -> bool:
    return (STATE["enabled"] and not STATE["busy"] and not torch.is_grad_enabled()
            and isinstance(target, torch.Tensor) and not target.is_floating_point() and target.numel() > 0
            and _from_val(target))


def _send(prim: str, losses, targets) -> None:
    """losses, targets: tensors of the same number of elements (flattened in row-major order)."""
    STATE["busy"] = True
    try:
        losses = losses.detach().reshape(-1).float().cpu()
        targets = targets.detach().reshape(-1).to(torch.int64).cpu()
        if losses.numel() != targets.numel():
            return
        keep = targets >= 0  # ignore_index (-100) positions are not scored
        if not bool(keep.all()):
            losses, targets = losses[keep], targets[keep]
        room = MAX_TOKENS - STATE["sent"]
        n = int(losses.numel())
        if n > room:
            STATE["dropped"] += n - max(room, 0)
            losses, targets, n = losses[:max(room, 0)], targets[:max(room, 0)], max(room, 0)
        if n == 0:
            return
        call = STATE["calls"]
        STATE["calls"] += 1
        lo = losses.numpy().astype("<f4").tobytes()
        tg = targets.to(torch.int32).numpy().astype("<i4").tobytes()
        for i in range(0, n, CHUNK):
            k = min(CHUNK, n - i)
            hooks.emit({"event": "capture", "call": call, "prim": prim, "first": i, "n": k, "total": n,
                        "loss": base64.b64encode(lo[4 * i:4 * (i + k)]).decode("ascii"),
                        "tgt": base64.b64encode(tg[4 * i:4 * (i + k)]).decode("ascii"),
                        "dropped": STATE["dropped"]})
        STATE["sent"] += n
    except Exception:  # noqa: BLE001 - evidence gathering must never break the script
        pass
    finally:
        STATE["busy"] = False


def _per_token(name: str, args: tuple, reduction: str, size_average, reduce, target):
    """(the call's own output, per-token losses or None). Nested calls (torch's own re-dispatch of the
    same function through the CUDA-to-CPU mode) run with `busy` set and are not captured twice."""
    real = _real[name]
    STATE["busy"] = True
    try:
        out = real(*args)
        if reduction == "none" and size_average is None and reduce is None and out.shape == target.shape:
            return out, out
        try:
            return out, real(*args[:3], None, args[4], None, "none", *args[7:])
        except Exception:  # noqa: BLE001
            return out, None
    finally:
        STATE["busy"] = False


def _loss_call(name: str, args: tuple, target, reduction: str, size_average, reduce):
    """One wrapped loss call: the flip test's fork point, then the call, and its per-token losses sent
    when the capture wants them."""
    _flip(target)
    if not _want(target):
        return _real[name](*args)
    out, per = _per_token(name, args, reduction, size_average, reduce, target)
    if per is not None:
        _send(name, per, target)
    return out


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                  reduction="mean", label_smoothing=0.0):
    args = (input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing)
    return _loss_call("cross_entropy", args, target, reduction, size_average, reduce)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    args = (input, target, weight, size_average, ignore_index, reduce, reduction)
    return _loss_call("nll_loss", args, target, reduction, size_average, reduce)


def _tag(out):
    try:
        out._gauntlet_logprobs = True
    except Exception:  # noqa: BLE001
        pass
    return out


def log_softmax(*args, **kwargs):
    return _tag(_real["log_softmax"](*args, **kwargs))


def torch_log_softmax(*args, **kwargs):
    return _tag(_real["torch_log_softmax"](*args, **kwargs))


def tensor_log_softmax(self, *args, **kwargs):
    return _tag(_real["tensor_log_softmax"](self, *args, **kwargs))


def _rows_kind(inp) -> str:
    """"logp" / "p" when the first rows of a vocabulary-wide tensor are normalized log-probabilities /
    probabilities (|logsumexp| or |sum - 1| <= 0.01), else "" (logits, or anything else)."""
    try:
        rows = inp.detach().reshape(-1, inp.shape[-1])[:8].double()
        if bool((rows <= 0).all()) and float((torch.logsumexp(rows, -1)).abs().max()) <= 0.01:
            return "logp"
        if bool(((rows >= 0) & (rows <= 1)).all()) and float((rows.sum(-1) - 1).abs().max()) <= 0.01:
            return "p"
    except Exception:  # noqa: BLE001
        pass
    return ""


def _gather(name: str, inp, dim, index, args, kwargs):
    """Scores gathered at the targets along the last dimension: after log_softmax (tagged), or from
    a vocabulary-wide tensor whose rows are normalized log-probabilities or probabilities (a mixture
    built in torch, `-log(p_mix.gather(-1, y))`, is captured here too)."""
    lookup = (not STATE["busy"] and isinstance(inp, torch.Tensor) and isinstance(index, torch.Tensor)
              and inp.is_floating_point() and inp.dim() >= 2 and index.dim() == inp.dim()
              and index.shape[-1] == 1 and dim in (-1, inp.dim() - 1))
    tagged = lookup and getattr(inp, "_gauntlet_logprobs", False)
    if not lookup or not (tagged or inp.shape[-1] >= 256):
        return _real[name](inp, dim, index, *args, **kwargs)
    _flip(index)
    kind = "logp" if tagged else (_rows_kind(inp) if _want(index) else "")
    if not kind or not _want(index):
        return _real[name](inp, dim, index, *args, **kwargs)
    STATE["busy"] = True  # torch re-dispatches Tensor.gather through the CUDA-to-CPU mode: one capture
    try:
        out = _real[name](inp, dim, index, *args, **kwargs)
        if out.shape == index.shape:
            prim = "log_softmax+gather" if tagged else "log-probabilities+gather" if kind == "logp" \
                else "probabilities+gather"
            _send(prim, -out.float() if kind == "logp" else -torch.log(out.double()).float(), index)
    finally:
        STATE["busy"] = False
    return out


def gather(input, dim, index, *args, **kwargs):
    return _gather("gather", input, dim, index, args, kwargs)


def tensor_gather(self, dim, index, *args, **kwargs):
    return _gather("tensor_gather", self, dim, index, args, kwargs)


def install() -> None:
    if _real:
        return
    _real.update(cross_entropy=F.cross_entropy, nll_loss=F.nll_loss, log_softmax=F.log_softmax,
                 torch_log_softmax=torch.log_softmax, tensor_log_softmax=torch.Tensor.log_softmax,
                 gather=torch.gather, tensor_gather=torch.Tensor.gather)
    F.cross_entropy = cross_entropy
    F.nll_loss = nll_loss
    F.log_softmax = log_softmax
    torch.log_softmax = torch_log_softmax
    torch.Tensor.log_softmax = tensor_log_softmax
    torch.gather = gather
    torch.Tensor.gather = tensor_gather
