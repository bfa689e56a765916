"""Does Triton's warp specialisation (``tl.range(..., warp_specialize=True)``) speed the routing kernels up?

GPU only (sm_90+). `PYTHONUNBUFFERED=1 PYTHONPATH=. NANOG1_ROUTING_AUTOTUNE=0 python3
benchmarks/routing_ws_probe.py [--lengths 8192,32768]`. Records one default fwd+bwd per (L, direction) as
benchmarks/routing_tiles.py does, then launches the forward and the dK/dV kernels with each of their first
tile candidates, the interior (unmasked) loop plain and warp-specialised, timed as CUDA-graph replays, and
compares the warp-specialised outputs with the plain ones. A candidate that fails to compile is reported,
not fatal. Prints one line per (kernel, tile) and writes $OUT/routing_ws_probe.json.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
from routing_tiles import KERNELS, outputs, record, rel
from triton.testing import do_bench_cudagraph

import nanog1.core.kernels.routing_triton as rt


def launch(name: str, rec: tuple, cfg, ws: bool) -> None:
    grid, args, constexprs = rec
    meta = {**constexprs, **cfg.kwargs, "WS": ws}
    getattr(rt, KERNELS[name][0]).fn[grid(meta)](*args, **meta, num_warps=cfg.num_warps,
                                                  num_stages=cfg.num_stages)


def probe(length: int, causal: bool, tiles: int) -> list[dict]:
    atomic = rt._atomic_dq(length, causal)
    recs = record(length, causal, atomic)
    rows = []
    for name, cands in (("fwd", rt.FWD_CANDIDATES), ("dkdv", rt.BWD_CANDIDATES)):
        for cfg in cands[:tiles]:
            row = {"L": length, "causal": causal, "atomic": atomic, "kernel": name,
                   "cfg": [cfg.kwargs["BLOCK_M"], cfg.kwargs["BLOCK_N"], cfg.num_warps, cfg.num_stages]}
            for ws in (False, True):
                try:
                    ms = do_bench_cudagraph(lambda n=name, c=cfg, w=ws: launch(n, recs[n], c, w), rep=20)
                    got = [t.clone() for t in outputs(name, recs[name])]
                except Exception as err:  # noqa: BLE001 - a failed compile is a result here
                    row["ws_error" if ws else "error"] = f"{type(err).__name__}: {str(err)[:300]}"
                    continue
                row["ws_ms" if ws else "ms"] = ms
                if ws and "ms" in row:
                    launch(name, recs[name], cfg, False)
                    plain = outputs(name, recs[name])
                    row["diff"] = max(rel(g, p) for g, p in zip(got, plain, strict=True))
            ratio = f"{row['ms'] / row['ws_ms']:.3f}x" if "ws_ms" in row and "ms" in row else "-"
            t_plain, t_ws = (row.get(key, float("nan")) * 1e3 for key in ("ms", "ws_ms"))
            print(f"L={length} causal={causal} {name} {tuple(row['cfg'])}: "
                  f"plain {t_plain:.1f} µs, ws {t_ws:.1f} µs "
                  f"(plain/ws {ratio}) diff {row.get('diff', float('nan')):.1e} {row.get('ws_error', '')}",
                  flush=True)
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="8192,32768")
    ap.add_argument("--tiles", type=int, default=3, help="the first n candidates of each kernel")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "routing_ws_probe.json"))
    args = ap.parse_args()
    print(torch.cuda.get_device_name(), torch.__version__, flush=True)
    rows = [r for n in args.lengths.split(",") for c in (True, False) for r in probe(int(n), c, args.tiles)]
    with open(args.out, "w") as fh:
        json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
