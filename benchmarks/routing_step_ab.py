"""The SAVO block's whole training step per attention and exponential mode, beside MHA (issue 30).

GPU only. Run from the repo root (or with PYTHONPATH at another checkout to time its ``nanog1``):
    PYTHONUNBUFFERED=1 PYTHONPATH=. python3 benchmarks/routing_step_ab.py --lengths 2048 \
        --attention cudnn,kernel --exp fp32,bf16x2 --peers --errors
Rows: the SAVO mixer (H = 512, 8 heads, r = 64, bf16 autocast, 32k tokens per batch) as the encoders train
it — forward, backward and fused AdamW replayed from one CUDA graph (``routing_block.training_step_times``)
— with the one-node block's attention pinned by ``--attention``: ``cudnn`` (SDPA's cuDNN at the narrow
widths up to 4096, the unfused SDPA path beyond) or ``kernel`` (the rank-r Triton kernel at every L), and
the exponentials by ``--exp``: the backward's mode (``fp32``; ``bf16x2`` on sm_90's packed unit; ``poly`` /
``poly2``: one element of four / two by a polynomial on the FMA pipes; ``polyall``), with ``+f`` the
forward's P in the same polynomial mode too (``poly+f``). ``--peers``
adds MHA on SDPA's default (cuDNN) and flash backends.
``--tiles-json`` (a ``benchmarks/routing_tiles.py`` result) makes the autotuners choose among the
``--tiles-top`` fastest tiles of each kernel there instead of the shipped candidates (ranked by their
geometric mean over the swept (L, direction) pairs, each relative to the fastest tile of that pair; for
dK/dV only rows of the dQ form the default path takes).
``--errors`` measures each exponential mode's error against float64 on the op (per-head values, as in the
block): relative Frobenius error of the output and of dQ, dK, dV.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os

import torch
import triton
from routing_block import HEADS, HIDDEN, RANK, TOKENS, training_step_times
from torch.nn.attention import SDPBackend, sdpa_kernel

import nanog1.core.kernels.routing_triton as rt
import nanog1.core.route_dispatch as rd
from nanog1.core import build_mixer

EXP_MODES = [*rt.EXP_MODES, *(f"{m}+f" for m in rt.EXP_MODES if m.startswith("poly"))]


@contextlib.contextmanager
def block_attention(kind: str):
    """Pin the dispatch table's unmasked narrow entries to the kernel at every L, or to SDPA."""
    keys = [k for k in rd.DISPATCH if k[1] and k[3] == "none"]
    old = {k: rd.DISPATCH[k] for k in keys}
    for k in keys:
        rd.DISPATCH[k] = ((rd._INF, "kernel"),) if kind == "kernel" else ((rd._INF, "sdpa"),)
    try:
        yield
    finally:
        rd.DISPATCH.update(old)


def set_exp(mode: str) -> None:
    """The exponential modes (``NANOG1_ROUTING_EXP`` / ``_FWD_EXP``, set per row)."""
    if mode not in EXP_MODES:
        raise SystemExit(f"--exp {mode!r}: expected one of {', '.join(EXP_MODES)}")
    rt.EXP = rt.EXP_MODES[mode.removesuffix("+f")]
    rt.FWD_EXP = rt.EXP if mode.endswith("+f") else rt.EXP_MODES["fp32"]


def ranked_tiles(rows: list[dict], kernel: str) -> list[tuple[int, int, int, int]]:
    """Tiles of one kernel from a routing_tiles.py result, fastest first: geometric mean over the swept
    (L, causal) pairs of ms ÷ that pair's best; a tile missing from a pair counts 2× there."""
    pairs: dict[tuple, dict[tuple, float]] = {}
    for r in rows:
        if r["kernel"] != kernel or (kernel == "dkdv" and r["atomic"] != rt._atomic_dq(r["L"], r["causal"])):
            continue
        pairs.setdefault((r["L"], r["causal"]), {})[tuple(r["cfg"])] = r["ms"]
    tiles = {t for p in pairs.values() for t in p}
    score = {t: math.prod((p.get(t, 2 * min(p.values())) / min(p.values())) for p in pairs.values())
             ** (1 / len(pairs)) for t in tiles}
    return sorted(tiles, key=score.__getitem__)


def install_tiles(path: str, top: int) -> dict[str, list]:
    """Replace each autotuner's candidates by the ``top`` fastest tiles in ``path``; returns them."""
    with open(path) as fh:
        rows = json.load(fh)
    chosen = {}
    for kernel, fn in (("fwd", rt._fwd_kernel), ("dq", rt._dq_kernel), ("dkdv", rt._bwd_kernel)):
        tiles = ranked_tiles(rows, kernel)[:top]
        if tiles:
            fn.configs = [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
                          for bm, bn, w, s in tiles]
            fn.cache.clear()
        chosen[kernel] = tiles
    for launch in (rt._FWD, rt._DQ, rt._BWD):
        launch.cache.clear()
    return chosen


def step_row(kind: str, causal: bool, length: int, repeat: int, scope=contextlib.nullcontext) -> dict:
    torch.manual_seed(0)
    module = build_mixer(kind, HIDDEN, RANK, HEADS, causal).cuda()
    batch = max(1, TOKENS // length)
    with scope():
        row = training_step_times(module, batch, length, None, repeat)
    del module
    torch.cuda.empty_cache()
    return row


def op_errors(mode: str, causal: bool, length: int = 2048) -> dict:
    """Relative error of out, dQ, dK, dV against float64 on random bf16 inputs (q/k 8 wide, v 64, 8 heads)."""
    set_exp(mode)
    gen = torch.Generator(device="cuda").manual_seed(length + causal)
    q, k = (torch.randn(2, HEADS, length, RANK // HEADS, device="cuda", generator=gen) for _ in range(2))
    v = torch.randn(2, HEADS, length, HIDDEN // HEADS, device="cuda", generator=gen)
    g = torch.randn(2, HEADS, length, HIDDEN // HEADS, device="cuda", generator=gen)
    scale = (RANK // HEADS) ** -0.5
    low = [t.bfloat16().requires_grad_() for t in (q, k, v)]
    out = rt.routing_attention_triton(*low, causal, None, scale)
    got = [out, *torch.autograd.grad(out, low, g.bfloat16())]
    ref_in = [t.double().requires_grad_() for t in (q, k, v)]
    logits = ref_in[0] @ ref_in[1].transpose(-1, -2) * scale
    if causal:
        future = torch.ones(length, length, dtype=torch.bool, device="cuda").triu(1)
        logits = logits.masked_fill(future, -1e300)
    ref = torch.softmax(logits, -1) @ ref_in[2]
    want = [ref, *torch.autograd.grad(ref, ref_in, g.double())]
    errs = [float((a.double() - b).norm() / b.norm()) for a, b in zip(got, want, strict=True)]
    return dict(exp=mode, causal=causal, L=length, **dict(zip(("out", "dq", "dk", "dv"), errs, strict=True)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", default="2048,8192,32768")
    ap.add_argument("--causal", default="1,0", help="comma list of 1 (causal) and 0 (bidirectional)")
    ap.add_argument("--attention", default="cudnn,kernel")
    ap.add_argument("--exp", default="fp32", help="comma list of " + ", ".join(EXP_MODES))
    ap.add_argument("--peers", action="store_true", help="also time MHA (cuDNN and flash)")
    ap.add_argument("--errors", action="store_true", help="each exp mode's error against float64")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tag", default="", help="a label for every row (e.g. which checkout)")
    ap.add_argument("--tiles-json", default="",
                    help="a routing_tiles.py result: autotune over its fastest tiles")
    ap.add_argument("--tiles-top", type=int, default=3, help="with --tiles-json: how many tiles per kernel")
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "routing_step_ab.jsonl"))
    args = ap.parse_args()
    exps = args.exp.split(",")
    rows = []
    if args.tiles_json:
        chosen = install_tiles(args.tiles_json, args.tiles_top)
        print(json.dumps({"tiles": chosen}), flush=True)
        args.tag = args.tag or f"tiles top {args.tiles_top}"

    def emit(row: dict) -> None:
        row["tag"] = args.tag
        rows.append(row)
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as fh:
            fh.write(json.dumps(row) + "\n")

    if args.errors:
        for mode in exps:
            for causal in (True, False):
                emit(op_errors(mode, causal))
    for causal in (c == "1" for c in args.causal.split(",")):
        for length in (int(x) for x in args.lengths.split(",")):
            if args.peers:
                for name, scope in (("mha cudnn", contextlib.nullcontext),
                                    ("mha flash", lambda: sdpa_kernel([SDPBackend.FLASH_ATTENTION]))):
                    row = step_row("mha", causal, length, args.repeat, scope)
                    emit(dict(kind=name, L=length, causal=causal) | row)
            for attention in args.attention.split(","):
                for mode in exps if attention == "kernel" else ["fp32"]:
                    set_exp(mode)
                    scope = lambda a=attention: block_attention(a)  # noqa: E731
                    row = step_row("savo", causal, length, args.repeat, scope)
                    emit(dict(kind="savo", attention=attention, exp=mode, L=length, causal=causal) | row)
    set_exp("fp32")
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    """Graphed step ms per row and best MHA ÷ ours, grouped by (L, causal)."""
    print("\n| L | causal | row | step graph ms (min–max) | best MHA ÷ row |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        if "step_graph_ms" not in r:
            continue
        peers = [p["step_graph_ms"] for p in rows if p.get("kind", "").startswith("mha")
                 and (p["L"], p["causal"]) == (r["L"], r["causal"])]
        name = r["kind"] if r["kind"] != "savo" else f"SAVO {r['attention']} {r['exp']} {r['tag']}"
        ratio = f"{min(peers) / r['step_graph_ms']:.3f}×" if peers else "–"
        print(f"| {r['L']} | {r['causal']} | {name} | {r['step_graph_ms']:.3f} "
              f"({r['step_graph_min_ms']:.3f}–{r['step_graph_max_ms']:.3f}) | {ratio} |")


if __name__ == "__main__":
    main()
