"""A whole training step (forward, backward, optimiser step) replayed from CUDA graphs, one per batch shape.

Why: at the encoders' short sequences the eager step is bound by host time, not by the GPU (BENCHMARKS.md,
issue 30: the SAVO block replayed from a graph ran 1.28-1.33× MHA's fastest backend at L = 257 / 512, and
0.88-0.99× eager). A CUDA graph records the step's kernels once and replays them with one launch, so the
host's per-op cost disappears. Static shapes make that possible: the catalogue view always has the same
tokens, so a training run sees one batch shape (two with a short last batch).

:class:`GraphedStep` wraps ``step_fn(batch) -> dict[str, Tensor]`` (the caller's forward, loss, backward,
clipping and ``optimizer.step()``; it returns detached scalars such as the loss). Per batch shape (the
tensors' shapes and dtypes, the batch's nesting and its non-tensor values) it:

1. runs the first ``warmup`` batches eagerly on a side stream (real training steps; they also warm
   Triton's autotuner, cuBLAS and the optimiser's state), watching for host synchronisations with
   ``torch.cuda.set_sync_debug_mode``: a step that reads device values on the host (``.item()``, a
   boolean mask, data-dependent shapes) cannot be captured, so that shape stays eager;
2. then captures the step into a graph (input batch copied into static buffers first; the graphs
   share one memory pool) and replays it for this and every later batch of the same shape;
3. falls back to eager for a shape whose capture fails, for shapes past ``max_graphs``, and everywhere
   when disabled, on CPU, or when the optimiser is not capturable.

The optimiser must be capturable (``torch.optim.AdamW(..., capturable=True)``; :func:`capturable_kwargs`).
A float learning rate is baked into a graph as a constant, so during capture each param group's float
``lr`` is swapped for a one-element device tensor, and before every replay that tensor is refilled from
the group's current float (what an ``LRScheduler`` set): schedules keep working unchanged.
Random numbers (dropout, token masks) come from the default CUDA generator, which graphs advance per
replay, so each replay draws fresh numbers as an eager step would.

Switch: ``NANOG1_STEP_GRAPH`` = ``0`` | ``1`` overrides the ``enabled`` argument (the training config's
``step_graph`` field, on by default, meaning "on CUDA"). Outputs of a replay live in the graph's memory
and are overwritten by the next step: they are returned as clones.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils._pytree import tree_flatten, tree_unflatten

ENV = "NANOG1_STEP_GRAPH"
# What torch's sync debug mode warns on each synchronising call (c10/cuda/CUDAFunctions.cpp); its one-off
# notice that the mode "does not yet detect all synchronizing operations" is not one.
_SYNC_WARNING = "called a synchronizing CUDA operation"


def graphs_wanted(enabled: bool, device: torch.device | str) -> bool:
    """Whether steps on ``device`` should be graphed: ``NANOG1_STEP_GRAPH`` (0/1) overrides ``enabled``;
    only CUDA devices graph."""
    env = os.environ.get(ENV, "").strip().lower()
    if env not in ("", "0", "1", "false", "true", "off", "on"):
        raise ValueError(f"{ENV} must be 0 or 1, got {env!r}")
    if env:
        enabled = env in ("1", "true", "on")
    return enabled and torch.device(device).type == "cuda"


def capturable_kwargs(graphed: bool) -> dict:
    """AdamW options for a graphed step: capturable (step counters on the device) and fused (one kernel)."""
    return {"capturable": True, "fused": True} if graphed else {}


def batch_key(batch) -> tuple[Hashable, ...]:
    """What selects a graph: the batch's nesting, each tensor's shape, dtype and device, other values."""
    leaves, spec = tree_flatten(batch)
    parts = tuple((tuple(x.shape), x.dtype, x.device.type) if torch.is_tensor(x) else ("value", x)
                  for x in leaves)
    return (repr(spec), *parts)


@dataclass
class StepStats:
    """Counts of how steps ran: eager (warm-up or fallback), captured graphs, replays, failed captures."""

    eager: int = 0
    replays: int = 0
    captured: int = 0
    failed: int = 0
    reasons: dict[str, str] = field(default_factory=dict)  # shape key (short) -> why it stays eager


@dataclass
class _Entry:
    seen: int = 0
    eager_only: bool = False
    graph: torch.cuda.CUDAGraph | None = None
    static_leaves: list = field(default_factory=list)
    spec: object = None
    outputs: dict[str, Tensor] = field(default_factory=dict)
    lrs: list[tuple[dict, Tensor]] = field(default_factory=list)  # (param group, its device lr tensor)


class GraphedStep:
    """Run ``step_fn(batch)`` eagerly or replayed from a per-shape CUDA graph (see the module docstring).

    ``optimizer`` is zeroed (``set_to_none``) before each eager step and each capture; ``step_fn`` must
    do everything else (forward, backward, clipping, ``optimizer.step()``) and return a dict of tensors.
    Batches may arrive on the CPU: they are copied to ``device``.
    """

    def __init__(self, step_fn: Callable[[object], dict[str, Tensor]], optimizer: torch.optim.Optimizer,
                 device: torch.device | str, *, enabled: bool = True, warmup: int = 2, max_graphs: int = 8):
        self.step_fn, self.optimizer, self.device = step_fn, optimizer, torch.device(device)
        self.warmup, self.max_graphs = max(1, warmup), max_graphs
        self.enabled = graphs_wanted(enabled, self.device) and _capturable(optimizer)
        self.stats = StepStats()
        self._entries: dict[tuple, _Entry] = {}
        self._pool = None

    def __call__(self, batch) -> dict[str, Tensor]:
        """One training step on ``batch``; returns ``step_fn``'s outputs (clones when replayed)."""
        if not self.enabled:
            return self._eager(_to(batch, self.device))
        key = batch_key(batch)
        entry = self._entries.setdefault(key, _Entry())
        if entry.graph is not None:
            return self._replay(entry, batch)
        dev_batch = _to(batch, self.device)
        if entry.eager_only:
            return self._eager(dev_batch)
        entry.seen += 1
        if entry.seen <= self.warmup:
            return self._warm(entry, key, dev_batch)
        if sum(e.graph is not None for e in self._entries.values()) >= self.max_graphs:
            return self._give_up(entry, key, f"more than {self.max_graphs} batch shapes", dev_batch)
        try:
            self._capture(entry, dev_batch)
        except Exception as err:  # noqa: BLE001 — any capture failure leaves the shape eager
            self.stats.failed += 1
            entry.graph = None
            torch.cuda.synchronize(self.device)
            return self._give_up(entry, key, f"capture failed: {str(err).splitlines()[0][:200]}", dev_batch)
        return self._replay(entry, batch)

    def _eager(self, batch) -> dict[str, Tensor]:
        self.stats.eager += 1
        self.optimizer.zero_grad(set_to_none=True)
        return self.step_fn(batch)

    def _give_up(self, entry: _Entry, key: tuple, reason: str, batch) -> dict[str, Tensor]:
        entry.eager_only = True
        self.stats.reasons[str(key)[:120]] = reason
        return self._eager(batch)

    def _warm(self, entry: _Entry, key: tuple, batch) -> dict[str, Tensor]:
        """An eager step on a side stream (as graph capture needs), noting any host synchronisation."""
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        old_mode = torch.cuda.get_sync_debug_mode()
        with warnings.catch_warnings(record=True) as caught, torch.cuda.stream(side):
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                out = self._eager(batch)
            finally:
                torch.cuda.set_sync_debug_mode(old_mode)
        torch.cuda.current_stream(self.device).wait_stream(side)
        syncs = [str(w.message) for w in caught if _SYNC_WARNING in str(w.message)]
        if syncs:
            entry.eager_only = True
            self.stats.reasons[str(key)[:120]] = f"the step synchronises with the host: {syncs[0][:160]}"
        return out

    def _capture(self, entry: _Entry, batch) -> None:
        leaves, entry.spec = tree_flatten(batch)
        entry.static_leaves = [x.clone() if torch.is_tensor(x) else x for x in leaves]
        static_batch = tree_unflatten(entry.static_leaves, entry.spec)
        entry.lrs = [(g, torch.tensor(float(g["lr"]), device=self.device))
                     for g in self.optimizer.param_groups if not torch.is_tensor(g["lr"])]
        floats = [g["lr"] for g, _ in entry.lrs]
        for g, t in entry.lrs:
            g["lr"] = t
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        try:
            with torch.cuda.graph(graph, pool=self._pool):
                entry.outputs = self.step_fn(static_batch)
        finally:
            for (g, _), lr in zip(entry.lrs, floats, strict=True):
                g["lr"] = lr
        entry.graph = graph
        self.stats.captured += 1

    def _replay(self, entry: _Entry, batch) -> dict[str, Tensor]:
        for static, x in zip(entry.static_leaves, tree_flatten(batch)[0], strict=True):
            if torch.is_tensor(x):
                static.copy_(x, non_blocking=True)
        for g, t in entry.lrs:
            t.fill_(float(g["lr"]))
        entry.graph.replay()
        self.stats.replays += 1
        return {k: v.clone() for k, v in entry.outputs.items()}


def _capturable(optimizer: torch.optim.Optimizer) -> bool:
    return all(g.get("capturable", False) for g in optimizer.param_groups)


def _to(batch, device: torch.device):
    leaves, spec = tree_flatten(batch)
    return tree_unflatten([x.to(device) if torch.is_tensor(x) else x for x in leaves], spec)
