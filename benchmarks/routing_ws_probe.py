"""Do TMA loads and warp specialisation (``tl.range(..., warp_specialize=True)``) speed up the kernels?

GPU only (sm_90+). `PYTHONUNBUFFERED=1 PYTHONPATH=. NANOG1_ROUTING_AUTOTUNE=0 python3
benchmarks/routing_ws_probe.py [--lengths 8192,32768] [--variants plain,tma,tma+ws]`. Records one default
fwd+bwd per (L, direction) as benchmarks/routing_tiles.py does, then launches the forward and the dK/dV
kernels with each of their first tile candidates, the interior (unmasked) loop in each variant — ``plain``
(pointer loads), ``ws`` (pointer loads, warp-specialised), ``tma`` (tiles through on-device TMA descriptors),
``tma+ws`` — timed as CUDA-graph replays, and compares every variant's outputs with the plain ones. A
variant that fails to compile is reported, not fatal. Prints one line per (kernel, tile, variant) and writes
$OUT/routing_ws_probe.json.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import triton
from routing_tiles import KERNELS, outputs, record, rel
from triton.testing import do_bench_cudagraph

import nanog1.core.kernels.routing_triton as rt

VARIANTS = {"plain": (False, False), "ws": (False, True), "tma": (True, False), "tma+ws": (True, True)}


def launch(name: str, rec: tuple, cfg, variant: str) -> None:
    grid, args, constexprs = rec
    tma, ws = VARIANTS[variant]
    meta = {**constexprs, **cfg.kwargs, "WS": ws, "TMA": tma}
    getattr(rt, KERNELS[name][0]).fn[grid(meta)](*args, **meta, num_warps=cfg.num_warps,
                                                  num_stages=cfg.num_stages)


def probe(length: int, causal: bool, tiles: int, variants: list[str]) -> list[dict]:
    atomic = rt._atomic_dq(length, causal)
    recs = record(length, causal, atomic)
    rows = []
    for name, cands in (("fwd", rt.FWD_CANDIDATES), ("dkdv", rt.BWD_CANDIDATES)):
        for cfg in cands[:tiles]:
            tile = [cfg.kwargs["BLOCK_M"], cfg.kwargs["BLOCK_N"], cfg.num_warps, cfg.num_stages]
            launch(name, recs[name], cfg, "plain")
            plain = [t.clone() for t in outputs(name, recs[name])]
            for variant in variants:
                row = {"L": length, "causal": causal, "atomic": atomic, "kernel": name, "cfg": tile,
                       "variant": variant}
                try:
                    row["ms"] = do_bench_cudagraph(lambda n=name, c=cfg, v=variant: launch(n, recs[n], c, v),
                                                   rep=20)
                    launch(name, recs[name], cfg, variant)
                    got = outputs(name, recs[name])
                    row["diff"] = max(rel(g, p) for g, p in zip(got, plain, strict=True))
                except Exception as err:  # noqa: BLE001 - a failed compile is a result here
                    row["error"] = f"{type(err).__name__}: {str(err)[:300]}"
                print(f"L={length} causal={causal} {name} {tuple(tile)} {variant}: "
                      f"{row.get('ms', float('nan')) * 1e3:.1f} µs diff {row.get('diff', float('nan')):.1e} "
                      f"{row.get('error', '')}", flush=True)
                rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="8192,32768")
    ap.add_argument("--tiles", type=int, default=3, help="the first n candidates of each kernel")
    ap.add_argument("--variants", default="plain,tma,tma+ws", help="comma list of " + ", ".join(VARIANTS))
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "routing_ws_probe.json"))
    args = ap.parse_args()
    print(torch.cuda.get_device_name(), torch.__version__, triton.__version__, flush=True)
    triton.set_allocator(rt._scratch)  # on-device TMA descriptors need global scratch
    variants = args.variants.split(",")
    rows = [r for n in args.lengths.split(",") for c in (True, False)
            for r in probe(int(n), c, args.tiles, variants)]
    with open(args.out, "w") as fh:
        json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
