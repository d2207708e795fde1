"""CPU stand-in for `triton`: kernels can be *defined* (so a script whose kernels sit behind a CUDA
check still imports), but launching one raises NeedsGPU, which the gauntlet reports as `needs GPU`."""

import os as _os
import sys as _sys

from gauntlet_needs_gpu import NeedsGPU


def _imported_by_torch() -> bool:
    f = _sys._getframe(1)
    while f is not None:
        name = f.f_code.co_filename
        if not name.startswith("<frozen") and "importlib" not in name:
            return (_os.sep + "torch" + _os.sep) in name
        f = f.f_back
    return False


if _imported_by_torch():  # torch's own compiler probes: it must see no triton, not this stand-in
    raise ModuleNotFoundError("No module named 'triton'", name="triton")

from . import language  # noqa: E402,F401

__gauntlet_shim__ = True

try:  # tell the auditor this stand-in was used (reported in the gauntlet's notes)
    import _gauntlet_hooks

    _gauntlet_hooks.emit({"event": "shim", "name": "triton"})
except ImportError:
    pass
__version__ = "0.0.0+auditor-cpu-shim"


class _Kernel:
    def __init__(self, fn=None, **kwargs):
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "kernel")
        self.__doc__ = getattr(fn, "__doc__", None)

    def __getitem__(self, grid):
        return self

    def __call__(self, *args, **kwargs):
        raise NeedsGPU(f"triton kernel {self.__name__} needs a GPU")


def _decorator(fn=None, **kwargs):
    if fn is None:
        return lambda f: _Kernel(f)
    return _Kernel(fn)


jit = _decorator


def autotune(*args, **kwargs):
    return lambda f: f if isinstance(f, _Kernel) else _Kernel(f)


heuristics = autotune


class Config:
    def __init__(self, *args, **kwargs):
        self.kwargs = kwargs


def cdiv(a, b):
    return -(-a // b)


def next_power_of_2(n):
    n = int(n)
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Kernel(None)
