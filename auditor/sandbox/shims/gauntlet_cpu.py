"""Make a CUDA-only record script run on a CPU-only torch, without editing the script.

What is covered (and why each matters; see docs runtime_surface.md):
* `torch.compile` -> identity (60 of 83 scripts compile; compiling on a tiny CPU run only costs time), and
  `torch._dynamo.reset` -> no-op (it would import inductor, which probes triton);
* every CUDA device request (`device="cuda"`, `.cuda()`, `.to("cuda:0")`, `pin_memory`) -> CPU, via a
  global TorchFunctionMode, so tensors the script thinks are on the GPU live on the CPU;
* `torch.cuda` queries (availability, device count/properties/capability, memory stats, synchronize,
  streams, events, RNG state) answered as one idle device;
* `torch.inference_mode` -> `no_grad` (tensors it makes stay usable by a later TTT step, as on the GPU);
* `torch.autocast(device_type="cuda", dtype=bf16)` -> disabled (fp32 on CPU: slower bf16 would change
  nothing the gauntlet measures); inside such a region, matmul-like ops on mixed float dtypes (bf16
  weights, fp32 activations) run in fp32, where autocast would have cast both to bf16 on the GPU;
* `torch.distributed` -> a single-process `gloo` group when gloo can start, else an exact in-process
  world-size-1 emulation of the collectives; `DistributedDataParallel` -> the bare module;
* FlashAttention (2 and 3) and triton -> stand-ins in `fallback/` (appended to sys.path, so a real
  installed package wins); launching a triton kernel raises NeedsGPU.

Not covered (the stage ends as `needs GPU`): triton kernel launches, custom CUDA extensions,
`torch._scaled_mm`/fp8 matmuls, mamba_ssm / flash-linear-attention kernels.
"""

from __future__ import annotations

import contextlib
import types

import torch
import torch.distributed as dist
from torch.overrides import TorchFunctionMode

from gauntlet_needs_gpu import NeedsGPU  # noqa: F401  (re-exported for scripts' stand-ins)

STATE = {"distributed": None, "autocast": 0}  # autocast: depth of requested CUDA autocast regions


def _cpu(dev):
    if isinstance(dev, torch.device):
        return torch.device("cpu") if dev.type == "cuda" else dev
    if isinstance(dev, str) and dev.startswith("cuda"):
        return "cpu"
    return dev


def _device_like(x) -> bool:
    return isinstance(x, torch.device) or (isinstance(x, str) and x.startswith("cuda"))


_AUTOCAST_OPS = {"linear", "matmul", "mm", "bmm", "addmm", "baddbmm", "addbmm", "conv1d", "conv2d", "einsum",
                 "scaled_dot_product_attention", "__matmul__", "__rmatmul__"}


def _float_dtypes(args, kwargs) -> set:
    out = set()
    for a in list(args) + list(kwargs.values()):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            out.add(a.dtype)
        elif isinstance(a, (list, tuple)):
            out.update(x.dtype for x in a if isinstance(x, torch.Tensor) and x.is_floating_point())
    return out


def _upcast(x):
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != torch.float32:
        return x.float()
    if isinstance(x, (list, tuple)):
        return type(x)(_upcast(y) for y in x)
    return x


class CudaToCpu(TorchFunctionMode):
    """Rewrites device arguments; inside a region the script ran under CUDA autocast (disabled here),
    a matmul-like op whose float arguments have mixed dtypes (bf16 weights, fp32 activations: autocast
    would cast both to bf16 on the GPU) runs with all of them in fp32. Everything else passes through."""

    def __torch_function__(self, func, types_, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if STATE["autocast"] > 0 and getattr(func, "__name__", "") in _AUTOCAST_OPS \
                and len(_float_dtypes(args, kwargs)) > 1:
            args = tuple(_upcast(a) for a in args)
            kwargs = {k: _upcast(v) for k, v in kwargs.items()}
        if "device" in kwargs:
            kwargs["device"] = _cpu(kwargs["device"])
        name = getattr(func, "__name__", "")
        if name in ("cuda", "pin_memory") and args and isinstance(args[0], torch.Tensor):
            return args[0]
        if name == "to" and len(args) > 1 and _device_like(args[1]):
            args = (args[0], _cpu(args[1])) + tuple(args[2:])
        kwargs.pop("pin_memory", None) if kwargs.get("pin_memory") else None
        return func(*args, **kwargs)


class _Event:
    def __init__(self, *a, **k):
        pass

    def record(self, *a, **k):
        return None

    def synchronize(self):
        return None

    def wait(self, *a, **k):
        return None

    def query(self):
        return True

    def elapsed_time(self, other):
        return 0.0


class _Stream(_Event):
    def wait_stream(self, *a, **k):
        return None

    def wait_event(self, *a, **k):
        return None

    def record_event(self, *a, **k):
        return _Event()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _const(value):
    """A fresh function per name: torch._dynamo's trace rules reject one object under two names."""
    def f(*args, **kwargs):
        return value
    return f


def _patch_cuda() -> None:
    c = torch.cuda
    props = types.SimpleNamespace(name="CPU (auditor shim)", total_memory=8 << 30, multi_processor_count=132,
                                  major=9, minor=0, is_integrated=False)
    answers = {
        "is_available": True, "is_initialized": True, "device_count": 1, "current_device": 0,
        "set_device": None, "synchronize": None, "empty_cache": None, "init": None,
        "max_memory_allocated": 0, "max_memory_reserved": 0, "memory_allocated": 0, "memory_reserved": 0,
        "reset_peak_memory_stats": None, "reset_max_memory_allocated": None, "memory_stats": {},
        "mem_get_info": (8 << 30, 8 << 30), "get_device_name": props.name, "get_device_capability": (9, 0),
        "get_device_properties": props, "is_bf16_supported": True, "manual_seed": None, "manual_seed_all": None,
        "seed_all": None, "set_rng_state": None, "set_rng_state_all": None,
    }
    for name, value in answers.items():
        setattr(c, name, _const(value))
    c.get_rng_state = lambda *a, **k: torch.get_rng_state()
    c.get_rng_state_all = lambda *a, **k: [torch.get_rng_state()]
    c.Stream = _Stream
    c.Event = _Event
    c.stream = lambda *a, **k: contextlib.nullcontext()
    c.current_stream = lambda *a, **k: _Stream()
    c.default_stream = lambda *a, **k: _Stream()
    c.device = lambda *a, **k: contextlib.nullcontext()


class CpuAutocast(torch.amp.autocast_mode.autocast):
    """autocast(...) for any device type -> a disabled CPU autocast (also usable as a decorator)."""

    def __init__(self, device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
        super().__init__("cpu", dtype=torch.bfloat16, enabled=False)
        self._requested = bool(enabled) and dtype in (None, torch.bfloat16, torch.float16)

    def __enter__(self):
        if self._requested:
            STATE["autocast"] += 1
        return super().__enter__()

    def __exit__(self, *exc):
        if self._requested:
            STATE["autocast"] = max(0, STATE["autocast"] - 1)
        return super().__exit__(*exc)


def _compile(model=None, *args, **kwargs):
    if model is None:
        return lambda m: m
    return model


class _DDP(torch.nn.Module):
    """World size 1: DDP's gradient all-reduce is the identity, so the bare module is exact."""

    def __init__(self, module, *args, **kwargs):
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @contextlib.contextmanager
    def no_sync(self):
        yield


class _Work:
    def wait(self, *a, **k):
        return True

    def is_completed(self):
        return True


def _emulate_distributed() -> None:
    """Exact world-size-1 semantics for the collectives record scripts call."""
    done = _Work()

    def ret(async_op=False):
        return done if async_op else None

    dist.is_initialized = lambda: True
    dist.get_rank = lambda *a, **k: 0
    dist.get_world_size = lambda *a, **k: 1
    dist.get_backend = lambda *a, **k: "gloo"
    dist.barrier = lambda *a, **k: None
    dist.destroy_process_group = lambda *a, **k: None
    dist.all_reduce = lambda tensor, *a, async_op=False, **k: ret(async_op)
    dist.reduce = lambda tensor, *a, async_op=False, **k: ret(async_op)
    dist.broadcast = lambda tensor, *a, async_op=False, **k: ret(async_op)

    def all_gather_into_tensor(out, inp, *a, async_op=False, **k):
        out.copy_(inp.reshape(out.shape))
        return ret(async_op)

    def reduce_scatter_tensor(out, inp, *a, async_op=False, **k):
        out.copy_(inp.reshape(out.shape))
        return ret(async_op)

    def all_gather(tensor_list, tensor, *a, async_op=False, **k):
        tensor_list[0].copy_(tensor)
        return ret(async_op)

    def all_gather_object(obj_list, obj, *a, **k):
        obj_list[0] = obj

    dist.all_gather_into_tensor = all_gather_into_tensor
    dist._all_gather_base = all_gather_into_tensor
    dist.reduce_scatter_tensor = reduce_scatter_tensor
    dist._reduce_scatter_base = reduce_scatter_tensor
    dist.all_gather = all_gather
    dist.all_gather_object = all_gather_object
    dist.broadcast_object_list = lambda *a, **k: None
    dist.new_group = lambda *a, **k: None


def _patch_distributed() -> None:
    real_init = dist.init_process_group

    def init_process_group(*args, **kwargs):
        if STATE["distributed"] is not None:
            return None
        try:
            real_init("gloo", store=dist.HashStore(), rank=0, world_size=1)
            STATE["distributed"] = "gloo"
        except Exception:  # no loopback interface (network namespace): emulate exactly
            _emulate_distributed()
            STATE["distributed"] = "emulated"
        return None

    dist.init_process_group = init_process_group
    torch.nn.parallel.DistributedDataParallel = _DDP
    torch.nn.parallel.distributed.DistributedDataParallel = _DDP


def _hide_stub_triton_from_torch() -> None:
    """torch probes `import triton` for its own compiler; it must see no triton, not the stand-in."""
    try:
        import torch.utils._triton as tt
    except ImportError:
        return
    for name in ("has_triton_package", "has_triton", "has_triton_tma", "has_triton_tma_device"):
        if hasattr(tt, name):
            setattr(tt, name, _const(False))


def _patch_dynamo(mod) -> None:
    """reset() imports inductor, whose triton probe would find the stand-in; nothing was compiled."""
    mod.reset = _const(None)


class _AfterImport:
    """A meta-path finder that patches a module once it is imported (importing torch._dynamo eagerly
    costs seconds and probes triton before the stand-in is hidden)."""

    def __init__(self, name, patch):
        self.name, self.patch = name, patch

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        import importlib.util
        import sys

        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            pass
        if spec is None or spec.loader is None:
            return spec
        real_exec, patch = spec.loader.exec_module, self.patch

        def exec_module(module):
            real_exec(module)
            try:
                patch(module)
            except Exception:  # noqa: BLE001
                pass

        spec.loader.exec_module = exec_module
        return spec


class _StandInHidden:
    """A meta-path finder that runs one torch module's body with the triton stand-in hidden: torch's
    triton probe (`import triton`, then `from triton.compiler import ...`) must see no triton even when
    the script imported the stand-in first (an already imported module skips the stand-in's own check)."""

    def __init__(self, name):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        import importlib.util
        import sys

        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        real_exec = spec.loader.exec_module

        def exec_module(module):
            stand_in = getattr(sys.modules.get("triton"), "__gauntlet_shim__", False)
            saved = {k: sys.modules.pop(k) for k in list(sys.modules)
                     if stand_in and (k == "triton" or k.startswith("triton."))}
            if stand_in:
                sys.modules["triton"] = None  # `import triton` raises ImportError while the body runs
            try:
                real_exec(module)
            finally:
                if stand_in:
                    sys.modules.pop("triton", None)
                    sys.modules.update(saved)

        spec.loader.exec_module = exec_module
        return spec


TORCH_TRITON_PROBES = ("torch._inductor.runtime.triton_compat",)


def _after_import(name, patch) -> None:
    import sys

    if name in sys.modules:
        patch(sys.modules[name])
    else:
        sys.meta_path.insert(0, _AfterImport(name, patch))


_MODE: CudaToCpu | None = None


class InferenceAsNoGrad(torch.inference_mode):
    """`torch.inference_mode` as `no_grad`: the same scores, but tensors made there (a rotary cache first
    filled during evaluation) stay usable by a later autograd pass, as they are once torch.compile has
    traced the model on the GPU; eager CPU mode would stop a test-time-training script there."""

    def __enter__(self) -> None:
        self._prev_grad = torch.is_grad_enabled()
        if self.mode:
            torch._C._set_grad_enabled(False)

    def __exit__(self, *exc) -> None:
        torch._C._set_grad_enabled(self._prev_grad)


def install() -> None:
    global _MODE
    if _MODE is not None:
        return
    _patch_cuda()
    _hide_stub_triton_from_torch()
    torch.compile = _compile
    _after_import("torch._dynamo", _patch_dynamo)
    import sys

    for name in TORCH_TRITON_PROBES:
        if name not in sys.modules:
            sys.meta_path.insert(0, _StandInHidden(name))
    torch.autocast = CpuAutocast
    torch.inference_mode = InferenceAsNoGrad
    # the device mode is per thread: a loader's prefetch thread would still reach the real pin_memory
    torch.Tensor.pin_memory = lambda self, *a, **k: self
    torch.amp.autocast = CpuAutocast
    torch.cuda.amp.autocast = lambda *a, **k: CpuAutocast()
    _patch_distributed()
    _MODE = CudaToCpu()
    _MODE.__enter__()
