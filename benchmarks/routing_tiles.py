"""Device time of each routing kernel (forward, dQ pass, dK/dV pass) per tile configuration, one at a time.

GPU only. `PYTHONUNBUFFERED=1 PYTHONPATH=. NANOG1_ROUTING_AUTOTUNE=0 python3 benchmarks/routing_tiles.py
[--lengths 2048,8192,32768]` (with the autotuners off, the reference launch takes each first candidate).
Shapes as benchmarks/routing_kernel.py (32k tokens per batch, h = 8, r = 64, SAVO's shared v, bf16). One
fwd+bwd through the default path records every launch's arguments; each kernel is then launched
again with every candidate configuration (``FWD``, ``BWD``) pinned, timed as a CUDA-graph replay (device
time, no host time), and its output compared with the default's (relative difference; dQ by atomics is
summed over the timing repeats, so only dK/dV are compared there). Configurations are compiled first in
parallel worker processes (Triton's disk cache), since one compile costs seconds. Prints a table per
(L, causal, kernel) fastest first and writes $OUT/routing_tiles.json. ``--layout block`` passes q/k/v as the
SAVO block does (strided views of its projections: TMA reads them differently), ``--dq default`` sweeps only
the dQ form the default path takes at each L; ``NANOG1_ROUTING_TMA=1|0`` picks the loads.
``benchmarks/routing_step_ab.py --tiles-json`` then times the block's step with the fastest tiles installed.
"""

from __future__ import annotations

import argparse
import json
import os
from concurrent.futures import ProcessPoolExecutor

import torch
import triton
from triton.testing import do_bench_cudagraph

import nanog1.core.kernels.routing_triton as rt

HEADS, RANK, D_V, TOKENS = 8, 64, 64, 32768
# (BLOCK_M, BLOCK_N, num_warps, num_stages)
FWD = [(128, 64, 4, 3), (128, 128, 8, 3), (128, 64, 8, 4), (64, 64, 4, 3), (128, 128, 4, 2), (128, 32, 4, 4),
       (256, 64, 8, 3), (128, 64, 4, 4), (128, 128, 8, 2), (128, 64, 8, 3), (64, 64, 4, 4), (64, 64, 4, 2),
       (64, 32, 4, 3), (128, 128, 8, 4)]
BWD = [(64, 128, 8, 2), (32, 128, 4, 2), (64, 64, 4, 2), (32, 64, 4, 3), (64, 128, 4, 3), (128, 128, 8, 2),
       (32, 128, 8, 3), (64, 256, 8, 2), (16, 128, 4, 3), (32, 256, 8, 2), (32, 128, 4, 3), (32, 128, 4, 4),
       (64, 128, 4, 2), (64, 128, 8, 3), (64, 128, 8, 4), (128, 128, 8, 3), (64, 256, 8, 3), (32, 256, 8, 3),
       (64, 64, 4, 3), (128, 128, 4, 2), (64, 128, 4, 4), (64, 64, 4, 4), (32, 64, 4, 2)]
KERNELS = {"fwd": ("_fwd_kernel", "_FWD"), "dq": ("_dq_kernel", "_DQ"), "dkdv": ("_bwd_kernel", "_BWD")}


class Recorder:
    """Stands in for a CachedLaunch: launches through it, keeps (grid, args, constexprs) of the last call."""

    def __init__(self, launch):
        self.launch, self.last = launch, None

    def __call__(self, grid, *args, **constexprs):
        self.launch(grid, *args, **constexprs)
        self.last = (grid, args, constexprs)


# "contiguous" or "block" (q/k/v as the SAVO block passes them); --layout sets it, through the environment
# so that the compile workers specialise on the same strides
LAYOUT = os.environ.get("ROUTING_TILES_LAYOUT", "contiguous")


def inputs(batch: int, length: int) -> list[torch.Tensor]:
    """(q, k, v) leaves: contiguous [B, h, L, d] with SAVO's shared v, or (``LAYOUT == "block"``) the
    one-node block's views — q/k 16-byte rows at a 256-byte stride inside one [B, L, 2r] projection, per-head
    v token-major inside [B, L, H] (TMA reads these differently from contiguous rows)."""
    dqk = RANK // HEADS
    if LAYOUT == "block":
        sa = torch.randn(batch, length, 2, HEADS, dqk, device="cuda", dtype=torch.bfloat16).requires_grad_()
        c = torch.randn(batch, length, HEADS, D_V, device="cuda", dtype=torch.bfloat16).requires_grad_()
        q, k = (t.transpose(1, 2) for t in sa.unbind(2))
        return [q, k, c.transpose(1, 2)]
    q, k = (torch.randn(batch, HEADS, length, dqk, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    v = torch.randn(batch, 1, length, RANK, device="cuda", dtype=torch.bfloat16)
    return [t.requires_grad_() for t in (q, k, v)]


def record(length: int, causal: bool, atomic: bool) -> dict:
    """One default fwd+bwd at L; the recorded launches {name: (grid, args, constexprs)}."""
    b, dqk = TOKENS // length, RANK // HEADS
    recs = {name: Recorder(getattr(rt, attr)) for name, (_, attr) in KERNELS.items()}
    saved = {attr: getattr(rt, attr) for _, attr in KERNELS.values()}
    for name, (_, attr) in KERNELS.items():
        setattr(rt, attr, recs[name])
    rt.ATOMIC_DQ = atomic
    try:
        leaves = inputs(b, length)
        out = rt.routing_attention_triton(*leaves, causal, None, dqk ** -0.5)
        out.backward(torch.randn_like(out))
        torch.cuda.synchronize()
    finally:
        for attr, launch in saved.items():
            setattr(rt, attr, launch)
        rt.ATOMIC_DQ = None
    return {name: rec.last for name, rec in recs.items() if rec.last is not None}


def launch(name: str, rec: tuple, cfg: tuple) -> None:
    """Launch one recorded kernel with one configuration pinned (Triton's JIT path, no autotuner)."""
    grid, args, constexprs = rec
    bm, bn, warps, stages = cfg
    meta = {**constexprs, "BLOCK_M": bm, "BLOCK_N": bn}
    getattr(rt, KERNELS[name][0]).fn[grid(meta)](*args, **meta, num_warps=warps, num_stages=stages)


#: The routing kernels a sweep can time.
KERNEL_NAMES = ("fwd", "dq", "dkdv")


def valid(name: str, cfg: tuple) -> bool:
    bm, bn = cfg[:2]
    return bn % bm == 0 if name == "dkdv" else bm % bn == 0


def outputs(name: str, rec: tuple) -> list[torch.Tensor]:
    """The tensors a kernel writes (by position in its argument list)."""
    args = rec[1]
    return {"fwd": [args[4]], "dq": [args[7]], "dkdv": [args[8], args[9]]}[name]


def _compile_job(job: tuple) -> str:
    """Worker: record at the shortest swept L and launch one configuration once (compiles it into the disk
    cache; every swept L specialises alike, TMA included, since the shortest decides it as the longest)."""
    length, causal, atomic, name, cfg = job
    try:
        rec = record(length, causal, atomic)
        launch(name, rec[name], cfg)
        torch.cuda.synchronize()
        return "ok"
    except Exception as err:  # noqa: BLE001 - reported, the config is then skipped
        return f"{type(err).__name__}: {str(err)[:200]}"


def swept(name: str, atomic: bool, kernels: tuple[str, ...] = KERNEL_NAMES) -> bool:
    """Whether kernel `name` runs in this dQ form and was asked for: with dQ by atomics the dK/dV pass
    writes dQ, so there is no dQ pass; the forward runs in both forms."""
    return name in kernels and not (atomic and name == "dq")


def jobs(length: int, modes: list[tuple[bool, bool]], kernels: tuple[str, ...] = KERNEL_NAMES) -> list[tuple]:
    """(L, causal, atomic, kernel, config) of every variant to compile, for these (causal, atomic) modes."""
    out = []
    for causal, atomic in modes:
        for name, cfgs in (("fwd", FWD), ("dq", FWD), ("dkdv", BWD)):
            if not swept(name, atomic, kernels):
                continue
            for cfg in cfgs:
                if valid(name, cfg):
                    out.append((length, causal, atomic, name, cfg))
    return out


def modes_at(length: int, dq: str) -> list[tuple[bool, bool]]:
    """(causal, atomic dQ) pairs to sweep at L: both dQ forms, or the one the default path takes."""
    if dq == "both":
        return [(c, a) for c in (True, False) for a in (False, True)]
    return [(c, rt._atomic_dq(length, c)) for c in (True, False)]


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm().clamp_min(1e-30)).item()


def sweep(length: int, causal: bool, atomic: bool, failed: set,
          kernels: tuple[str, ...] = KERNEL_NAMES) -> list[dict]:
    recs = record(length, causal, atomic)
    rows = []
    for name, cfgs in (("fwd", FWD), ("dq", FWD), ("dkdv", BWD)):
        if name not in recs or not swept(name, atomic, kernels):
            continue
        want = [t.clone() for t in outputs(name, recs[name])]
        found = []
        for cfg in (c for c in cfgs if valid(name, c)):
            if (causal, atomic, name, cfg) in failed:
                continue
            try:
                ms = do_bench_cudagraph(lambda n=name, c=cfg: launch(n, recs[n], c), rep=20)
            except Exception as err:  # noqa: BLE001
                print(f"  {name} {cfg}: {type(err).__name__} {str(err)[:120]}", flush=True)
                continue
            err = max(rel(g, w) for g, w in zip(outputs(name, recs[name]), want, strict=True))
            found.append({"L": length, "causal": causal, "atomic": atomic, "kernel": name, "cfg": list(cfg),
                          "ms": ms, "diff": err})
        found.sort(key=lambda r: r["ms"])
        rows += found
        tuned = getattr(getattr(rt, KERNELS[name][0]), "best_config", None)
        print(f"\nL={length} causal={causal} dq={'atomic' if atomic else 'pass2'} {name} "
              f"(autotuned default: {tuned}):", flush=True)
        for r in found[:8]:
            print(f"  {r['ms'] * 1e3:8.1f} µs  {tuple(r['cfg'])} diff {r['diff']:.1e}")
        print(f"  worst: {found[-1]['ms'] * 1e3:.1f} µs {tuple(found[-1]['cfg'])}; "
              f"max diff of all {max(r['diff'] for r in found):.1e}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="2048,8192,32768")
    ap.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1))
    ap.add_argument("--layout", choices=("contiguous", "block"), default=LAYOUT,
                    help="q/k/v contiguous with a shared v, or strided as the SAVO block passes them")
    ap.add_argument("--dq", choices=("both", "default"), default="both",
                    help="sweep both dQ forms, or only the one the default path takes at each L")
    ap.add_argument("--kernels", default=",".join(KERNEL_NAMES),
                    help="kernels to sweep (fwd, dq, dkdv; the dQ pass only where dQ is not by atomics)")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "routing_tiles.json"))
    args = ap.parse_args()
    kernels = tuple(args.kernels.split(","))
    globals()["LAYOUT"] = os.environ["ROUTING_TILES_LAYOUT"] = args.layout
    print(torch.cuda.get_device_name(), torch.__version__, triton.__version__, f"TMA={rt.TMA}",
          f"layout={args.layout}", flush=True)
    triton.set_allocator(rt._scratch)  # on-device TMA descriptors need global scratch
    lengths = [int(x) for x in args.lengths.split(",")]
    todo = sorted({j for n in lengths for j in jobs(min(lengths), modes_at(n, args.dq), kernels)}, key=str)
    ctx = torch.multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
        results = list(pool.map(_compile_job, todo))
    failed = {j[1:] for j, r in zip(todo, results, strict=True) if r != "ok"}
    print(f"compiled {len(todo) - len(failed)} of {len(todo)} kernel variants", flush=True)
    for j in sorted(failed, key=str)[:10]:
        print("  failed:", j, flush=True)
    rows = []
    for length in lengths:
        for causal, atomic in modes_at(length, args.dq):
            rows += sweep(length, causal, atomic, failed, kernels)
            for r in rows:
                r["layout"] = args.layout
            with open(args.out, "w") as f:  # after each mode: a call cut short keeps what it measured
                json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
