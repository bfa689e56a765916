"""Cheap repeat launches of Triton kernels: Triton's Python dispatch once per shape, a direct launch after.

An eager fwd+bwd of a short sequence is bound by the host, not the GPU: Triton's autotuner and JIT
dispatch (argument binding, specialisation key, cache lookup) cost tens of µs per launch in Python,
against a few µs for the launch itself. :class:`CachedLaunch` runs the normal path on the first call
for a given *launch key* (every integer argument, each tensor's dtype and 16-byte alignment, the
constexprs, the device), keeps the compiled kernel and the autotuner's chosen config, and
afterwards calls the compiled kernel's launcher directly. The key holds everything Triton specialises
on, so the kernel launched is the one Triton itself would pick.

The direct path needs Triton ≥ 3.4 (its launcher takes every argument, constexprs included); with an
older Triton, the CPU interpreter (``TRITON_INTERPRET=1``), a launch hook set (profilers such as
proton) or ``NANOG1_TRITON_FAST_LAUNCH=0``, every call takes Triton's normal path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import torch
import triton

try:  # Triton >= 3.4
    from triton import knobs as _knobs
except ImportError:  # pragma: no cover - older Triton: always the normal path
    _knobs = None

_MAX_KEYS = 4096  # shapes remembered per kernel before the cache is cleared


def cdiv(a: int, b: int) -> int:
    """ceil(a / b) in plain Python: ``triton.cdiv`` is a constexpr function in Triton 3.6 (µs per call)."""
    return -(-a // b)


def next_pow2(n: int) -> int:
    """The smallest power of two ≥ n (n ≥ 1), without ``triton.next_power_of_2``'s host-call cost."""
    return 1 << (n - 1).bit_length()


def fast_launch_enabled() -> bool:
    """True where the direct launch path may be used (see the module docstring)."""
    return (_knobs is not None and os.environ.get("TRITON_INTERPRET") != "1"
            and os.environ.get("NANOG1_TRITON_FAST_LAUNCH", "1") != "0")


def _arg_key(arg: Any) -> Any:
    """What Triton specialises an argument on: ints by value, tensors by dtype and 16-byte alignment."""
    if isinstance(arg, torch.Tensor):
        return arg.dtype, arg.data_ptr() % 16 == 0
    if isinstance(arg, float):
        return float
    return arg


def _args_key(args: Sequence[Any]) -> tuple:
    """:func:`_arg_key` of every argument; ints (most of them: strides, lengths) first, by exact type.

    Built on every launch, so it is written for speed: ~4 µs for 30 arguments against ~16 µs through
    :func:`_arg_key` alone (measured on a 2-core VM).
    """
    return tuple([a if type(a) is int else _arg_key(a) for a in args])


class CachedLaunch:
    """A Triton kernel (plain or autotuned) whose launches after the first per key skip Triton's dispatch.

    Call as ``launch(grid, *args, **constexprs)``: ``grid`` maps the final meta-parameters (constexprs
    plus the autotuner's config) to a launch grid, ``args`` are the kernel's non-constexpr arguments in
    order and ``constexprs`` its constexpr arguments by name, exactly as for ``kernel[grid](...)``.
    """

    def __init__(self, kernel: Any):
        self.kernel = kernel
        self.arg_names: list[str] = list(kernel.arg_names)  # a JITFunction's or an Autotuner's
        self.cache: dict[tuple, tuple] = {}
        self.hits = 0

    def __call__(self, grid: Callable[[dict], Sequence[int]], *args: Any, **constexprs: Any) -> None:
        if not fast_launch_enabled() or _hooks_set():
            self.kernel[grid](*args, **constexprs)
            return
        device = torch.cuda.current_device()
        key = (device, tuple(constexprs.items()), _args_key(args))  # constexpr order: only splits the cache
        entry = self.cache.get(key)
        if entry is None:
            self._first_launch(key, grid, args, constexprs)
            return
        compiled, meta, tail = entry
        dims = (*grid(meta), 1, 1)  # the grid may depend on more than the key (e.g. the batch size)
        stream = triton.runtime.driver.active.get_current_stream(device)
        compiled.run(dims[0], dims[1], dims[2], stream, compiled.function, compiled.packed_metadata,
                     None, None, None, *args, *tail)
        self.hits += 1

    def _first_launch(self, key: tuple, grid: Callable, args: tuple, constexprs: dict) -> None:
        """Triton's normal path (autotuning included); remember what it launched."""
        compiled = self.kernel[grid](*args, **constexprs)
        config = getattr(self.kernel, "best_config", None)
        meta = {**constexprs, **(config.kwargs if config is not None else {})}
        tail = tuple(meta[name] for name in self.arg_names[len(args):])
        if len(self.cache) >= _MAX_KEYS:
            self.cache.clear()
        if hasattr(compiled, "function") and hasattr(compiled, "packed_metadata"):
            self.cache[key] = (compiled, meta, tail)


def _hooks_set() -> bool:
    """True when a launch hook is installed (a profiler): then Triton's own path must run every launch."""
    hook = _knobs.runtime.launch_enter_hook
    return hook is not None and bool(getattr(hook, "calls", True))  # Triton 3.6: an empty HookChain
