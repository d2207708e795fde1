"""The program the sandbox starts: runs the submission's script in stages and records each outcome.

Stages (each recorded as a `stage` event with status pass / fail / needs_gpu / skipped and seconds):
  import           the script's top level, run with a non-main __name__ (skipped when the script has
                   no `if __name__ == "__main__"` guard: then importing *is* the full run)
  hyperparameters  the script's Hyperparameters class, instantiated as the script would
  model            its GPT class built from those hyperparameters; parameter count
  forward          one forward pass on random tokens returning a finite loss
  train_steps      three optimiser steps on that loss
  main             the script run as __main__ (its own training, serialization and evaluation)

Statuses come from this process, which also runs the untrusted script: they are what the run
reported, and the parent treats them as such. Standard library + torch only.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import runpy
import sys
import time
import traceback

import _gauntlet_hooks as hooks

GPU_PACKAGES = {"triton", "flash_attn", "flash_attn_interface", "mamba_ssm", "causal_conv1d", "fla", "apex",
                "transformer_engine", "liger_kernel", "xformers", "bitsandbytes", "cupy", "pycuda", "torchao",
                "deepspeed", "nvidia", "cuda"}
HPARAM_CLASSES = ("Hyperparameters", "HyperParameters", "Hparams", "HParams", "Args", "Config")
ALIASES = {"dim": "model_dim", "d_model": "model_dim", "n_embd": "model_dim", "n_layer": "num_layers",
           "n_layers": "num_layers", "depth": "num_layers", "n_head": "num_heads", "n_heads": "num_heads",
           "heads": "num_heads", "kv_heads": "num_kv_heads", "n_kv_heads": "num_kv_heads",
           "vocab": "vocab_size", "mlp_ratio": "mlp_mult", "tie_embed": "tie_embeddings",
           "softcap": "logit_softcap", "seq_len": "train_seq_len", "max_seq_len": "train_seq_len"}


class Skip(Exception):
    pass


def classify(exc: BaseException) -> tuple[str, str]:
    """(status, one-line reason) for an exception that ended a stage."""
    name = type(exc).__name__
    text = f"{name}: {str(exc)[:300]}"
    if name == "NeedsGPU":
        return "needs_gpu", text
    if isinstance(exc, ModuleNotFoundError):
        root = (exc.name or "").split(".")[0]
        if root in GPU_PACKAGES:
            return "needs_gpu", f"GPU-only package {root!r} is not available on this machine"
        return "skipped", f"package {root!r} is not installed in the auditor's environment"
    low = str(exc).lower()
    if ("cuda" in low or "nccl" in low) and isinstance(exc, (RuntimeError, AssertionError, NotImplementedError)):
        return "needs_gpu", text
    if isinstance(exc, MemoryError):
        return "fail", "MemoryError: the sandbox's memory limit was reached"
    if isinstance(exc, Skip):
        return "skipped", str(exc)
    return "fail", text


def stage(name: str, fn, results: dict):
    hooks.emit({"event": "stage_start", "stage": name})
    t0 = time.monotonic()
    status, detail, value = "pass", "", None
    try:
        value = fn()
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], dict):
            value, extra = value
        else:
            extra = {}
    except SystemExit as exc:
        extra = {}
        code = exc.code
        if code not in (None, 0):
            status, detail = "fail", f"SystemExit({str(code)[:200]})"
    except BaseException as exc:  # noqa: BLE001 - the submission may raise anything
        extra = {}
        status, detail = classify(exc)
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        extra["traceback_tail"] = "".join(tb)[-1500:]
    seconds = time.monotonic() - t0
    record = {"event": "stage", "stage": name, "status": status, "detail": detail, "seconds": round(seconds, 3)}
    record.update(extra)
    hooks.emit(record)
    results[name] = status
    return value if status == "pass" else None


def _scalars(obj) -> dict:
    out = {}
    for k in sorted(dir(obj)):
        if k.startswith("_"):
            continue
        try:
            v = getattr(obj, k)
        except Exception:  # noqa: BLE001
            continue
        if isinstance(v, bool) or isinstance(v, (int, float)) and math.isfinite(float(v)):
            out[k] = v
        elif isinstance(v, str) and len(out) < 200:
            out[k] = v[:120]
    return dict(list(out.items())[:80])


def find_hparams(ns: dict):
    for name in HPARAM_CLASSES:
        cls = ns.get(name)
        if inspect.isclass(cls):
            for make in (getattr(cls, "from_env", None), cls):  # dataclass-style scripts read env in from_env
                if callable(make):
                    try:
                        return make()
                    except TypeError:
                        continue
            return cls
    raise Skip("no Hyperparameters class at module level")


def build_model(ns: dict, hp, device: str):
    import torch

    cls = ns.get("GPT")
    if not inspect.isclass(cls):
        cands = [v for k, v in ns.items() if inspect.isclass(v) and issubclass(v, torch.nn.Module)
                 and ("GPT" in k or k.endswith("LM") or k == "Model")]
        if not cands:
            raise Skip("no GPT / model class at module level")
        cls = cands[0]
    sig = inspect.signature(cls.__init__)
    params = [p for p in list(sig.parameters.values())[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(params) >= 1 and params[0].name in ("args", "h", "hp", "hps", "hparams", "config", "cfg", "hyperparameters"):
        model = cls(hp)
    else:
        kwargs, missing = {}, []
        for p in params:
            key = p.name if hasattr(hp, p.name) else ALIASES.get(p.name)
            if key is not None and hasattr(hp, key):
                kwargs[p.name] = getattr(hp, key)
            elif p.default is inspect.Parameter.empty:
                missing.append(p.name)
        if missing:
            raise Skip(f"{cls.__name__}() needs arguments the Hyperparameters do not name: {', '.join(missing[:8])}")
        model = cls(**kwargs)
    model = model.to(device).float()
    n = sum(p.numel() for p in model.parameters())
    return model, {"model_class": cls.__name__, "parameters": int(n)}


def _loss(model, x, y):
    import torch
    import torch.nn.functional as F

    try:
        out = model(x, y)
    except TypeError:
        out = model(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise Skip(f"forward returned {type(out).__name__}, not a tensor")
    if out.dim() == 0:
        return out
    if out.dim() == 3:
        return F.cross_entropy(out.float().reshape(-1, out.size(-1)), y.reshape(-1))
    raise Skip(f"forward returned a tensor of shape {tuple(out.shape)}")


def probe(ns: dict, cfg: dict, results: dict) -> None:
    import torch

    hp = stage("hyperparameters", lambda: (True, {"values": _scalars(find_hparams(ns))}), results)
    if hp is None:
        for s in ("model", "forward", "train_steps"):
            hooks.emit({"event": "stage", "stage": s, "status": "skipped", "detail": "no hyperparameters", "seconds": 0})
        return
    hparams = find_hparams(ns)
    built = stage("model", lambda: build_model(ns, hparams, cfg["device"]), results)
    if built is None:
        for s in ("forward", "train_steps"):
            hooks.emit({"event": "stage", "stage": s, "status": "skipped", "detail": "no model", "seconds": 0})
        return
    model = built
    vocab = int(cfg["vocab_size"])
    seq = int(min(getattr(hparams, "train_seq_len", 64) or 64, 64))
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(4, vocab, (2, seq), generator=gen).to(cfg["device"])
    y = torch.randint(4, vocab, (2, seq), generator=gen).to(cfg["device"])

    def forward():
        with torch.no_grad():
            loss = _loss(model, x, y)
        if not torch.isfinite(loss):
            raise ValueError(f"forward loss is not finite ({loss.item()})")
        return True, {"loss": round(float(loss), 6), "ln_vocab": round(math.log(vocab), 6)}

    if stage("forward", forward, results) is None:
        hooks.emit({"event": "stage", "stage": "train_steps", "status": "skipped", "detail": "no forward", "seconds": 0})
        return

    def train():
        model.train()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        losses = []
        for _ in range(3):
            opt.zero_grad(set_to_none=True)
            loss = _loss(model, x, y)
            loss.backward()
            opt.step()
            losses.append(round(float(loss), 6))
        if not all(math.isfinite(v) for v in losses):
            raise ValueError(f"training loss is not finite: {losses}")
        return True, {"losses": losses}

    stage("train_steps", train, results)


def main() -> int:
    with open(os.environ["GAUNTLET_CONFIG"], encoding="utf-8") as fh:
        cfg = json.load(fh)
    script = cfg["script"]
    os.chdir(cfg["run_dir"])
    sys.path.insert(0, os.path.dirname(script))
    sys.argv = [script]
    try:
        import torch

        torch.set_num_threads(int(cfg.get("threads", 2)))
    except Exception:  # noqa: BLE001 - a broken torch shows up in the import stage
        pass
    results: dict = {}
    hooks.set_phase("probe")
    if cfg.get("has_main_guard"):
        ns = stage("import", lambda: runpy.run_path(script, run_name="__gauntlet_import__"), results)
        if ns is not None:
            probe(ns, cfg, results)
    else:
        for s in ("import", "hyperparameters", "model", "forward", "train_steps"):
            hooks.emit({"event": "stage", "stage": s, "status": "skipped",
                        "detail": "script has no __main__ guard: importing it runs everything", "seconds": 0})
    hooks.set_phase("train")
    capture = sys.modules.get("gauntlet_capture")  # installed by sitecustomize on a CPU run
    if capture is not None:
        capture.enable(True)  # only the script's own run: not the driver's probe stages
    flip = sys.modules.get("gauntlet_flip")  # the flip test (configured by sitecustomize)
    if flip is not None:
        flip.arm(True)
    stage("main", lambda: runpy.run_path(script, run_name="__main__"), results)
    if flip is not None:
        flip.finish()  # run B ends here; run A waits for it
    if capture is not None:
        capture.enable(False)
        hooks.emit({"event": "capture_end", "sent": capture.STATE["sent"], "calls": capture.STATE["calls"],
                    "dropped": capture.STATE["dropped"]})
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
