"""Rank-r routing kernel vs MHA-flash vs the padded SDPA form (fwd+bwd), and SAVO decode vs MHA decode.

GPU only (torch + triton + nanog1.core). Run from the repo root:
    PYTHONUNBUFFERED=1 PYTHONPATH=. python3 benchmarks/routing_kernel.py [--out results.json]
Training shapes: 32k tokens per batch (B = 32768 / L), h = 8, H = 512 (MHA head width 64),
r = 64 (q/k width r/h = 8), bf16, causal. Decode: batch 64 at 32k context. Each line is one run,
all peers side by side in the same process; times are do_bench medians in ms. `kernel_savo` is the
default (dQ by fp32 atomics from L = 8k, in a second query-block pass below); `_pass2` forces the
second pass at L ≥ 8k; `_tritondispatch` turns off the cached launches (NANOG1_TRITON_FAST_LAUNCH=0);
`_bf16exp` runs the backward's exponentials on the packed bf16x2 unit (NANOG1_ROUTING_EXP=bf16x2);
`graph_*` replays the fwd+bwd step from a CUDA graph (device time, no host time). `--skip` drops parts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from triton.testing import do_bench

import nanog1.core.kernels.decode_triton as decode_kernel
import nanog1.core.kernels.routing_triton as rt
from nanog1.core.kernels import (
    decode_reference,
    kernel_available,
    reference_attention,
    routing_attention,
    routing_decode,
)
from nanog1.core.routing import route, route_step

HEADS, WIDTH, RANK, TOKENS = 8, 512, 64, 32768
MATMUL_TFLOPS, EXP_TPS, BYTES_PER_S = 790e12, 3.9e12, 3.0e12  # H100 ceilings (KINDS.md, datasheet SFU)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def check_correctness(cases: list[tuple]) -> list[str]:
    """Kernel vs float64 reference: fwd and grads, causal/bidirectional, padding, shared or per-head v."""
    lines, dev = [], "cuda"
    for causal, pad, vh in cases:
        b, length, dqk, dv = 2, 1000, RANK // HEADS, WIDTH // HEADS
        q, k = (torch.randn(b, HEADS, length, dqk, device=dev, dtype=torch.bfloat16) for _ in range(2))
        v = torch.randn(b, vh, length, dv, device=dev, dtype=torch.bfloat16)
        mask = None
        if pad == "rand":
            mask = torch.rand(b, length, device=dev) < 0.3
        elif pad in ("right", "left"):
            pos = torch.arange(length, device=dev)[None]
            mask = pos >= torch.tensor([[length], [length - 77]], device=dev)
            mask = mask.flip(1) if pad == "left" else mask
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        out = routing_attention(*leaves, causal=causal, key_padding_mask=mask, scale=dqk ** -0.5)
        g = torch.randn_like(out)
        grads = torch.autograd.grad(out, leaves, g)
        ref_leaves = [t.double().requires_grad_() for t in (q, k, v)]
        ref = reference_attention(*ref_leaves, causal=causal, key_padding_mask=mask, scale=dqk ** -0.5)
        ref_grads = torch.autograd.grad(ref, ref_leaves, g.double())
        errs = [rel(out, ref)] + [rel(a, r) for a, r in zip(grads, ref_grads, strict=True)]
        finite = all(bool(t.isfinite().all()) for t in (out, *grads))
        variant = "atomic" if rt._atomic_dq(length, causal) else "pass2"
        lines.append(f"check dq={variant} causal={causal!s:5} pad={pad!s:5} v_heads={vh}: out/dq/dk/dv err "
                     + " ".join(f"{e:.1e}" for e in errs) + f" finite={finite} "
                     + ("OK" if finite and max(errs) < 2e-2 else "FAIL"))
    return lines


def fwd_bwd(fn, inputs: list[torch.Tensor]):
    """A closure running fn's forward and backward on leaf inputs (grads reset each call by do_bench)."""
    out = fn(*inputs)
    g = torch.randn_like(out)

    def step():
        fn(*inputs).backward(g)
    return step


def graphed_ms(fn, inputs: list[torch.Tensor]) -> float:
    """Median ms of one fwd+bwd step captured in a CUDA graph and replayed (the device-bound time).

    PyTorch's whole-network capture recipe: warm up (and autotune) on a side stream, then capture.
    """
    g = torch.randn_like(fn(*inputs))
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn(*inputs).backward(g)
            for t in inputs:
                t.grad = None
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn(*inputs).backward(g)
    ms = do_bench(graph.replay, warmup=25, rep=200, return_mode="median")
    for t in inputs:
        t.grad = None
    return ms


def training_row(length: int, variants: bool = True) -> dict:
    """Times (ms) of each peer at one L, fwd+bwd and fwd only; `variants` adds the opt-in kernel paths."""
    b, dev, dt = TOKENS // length, "cuda", torch.bfloat16
    d, dqk, s = WIDTH // HEADS, RANK // HEADS, (RANK // HEADS) ** -0.5

    def leaf(*shape):
        return torch.randn(*shape, device=dev, dtype=dt).requires_grad_()
    mq, mk, mv = (leaf(b, HEADS, length, d) for _ in range(3))
    q, k = leaf(b, HEADS, length, dqk), leaf(b, HEADS, length, dqk)
    v_shared, v_heads = leaf(b, 1, length, RANK), leaf(b, HEADS, length, d)

    def flash(q_, k_, v_):
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(q_, k_, v_, is_causal=True)

    def default_sdpa(q_, k_, v_):
        return F.scaled_dot_product_attention(q_, k_, v_, is_causal=True)

    def padded(q_, k_, v_):
        return route(q_, k_, v_, scale=s, causal=True)

    def ours(q_, k_, v_):
        return routing_attention(q_, k_, v_, causal=True, key_padding_mask=None, scale=s)
    assert kernel_available(q, k, v_shared)
    peers = {"mha_flash": (flash, [mq, mk, mv]), "mha_default": (default_sdpa, [mq, mk, mv]),
             "padded_sdpa_savo": (padded, [q, k, v_shared]), "kernel_savo": (ours, [q, k, v_shared]),
             "kernel_qcompass": (ours, [q, k, v_heads])}
    row = {"L": length, "B": b}
    for name, (fn, inputs) in peers.items():
        row[name] = do_bench(fwd_bwd(fn, inputs), warmup=50, rep=300, grad_to_none=inputs,
                             return_mode="median")
    for name in ("mha_flash", "kernel_savo"):  # the same steps replayed from a CUDA graph: no host time
        try:
            row[f"graph_{name}"] = graphed_ms(*peers[name])
        except RuntimeError as err:  # a capture failure is reported, not fatal to the table
            print(f"CUDA graph capture of {name} at L = {length} failed: {err}")
            row[f"graph_{name}"] = float("nan")
    nan = float("nan")
    row.update(kernel_savo_tritondispatch=nan, kernel_savo_pass2=nan, kernel_savo_bf16exp=nan)
    if variants:
        row.update(variant_rows(ours, [q, k, v_shared], length))
    with torch.no_grad():
        row["fwd_mha_flash"] = do_bench(lambda: flash(mq, mk, mv), warmup=25, rep=150, return_mode="median")
        row["fwd_kernel_savo"] = do_bench(lambda: ours(q, k, v_shared), warmup=25, rep=150,
                                          return_mode="median")
    return row


def variant_rows(ours, inputs: list[torch.Tensor], length: int) -> dict:
    """The SAVO step through Triton's dispatch, with dQ by its own pass (L ≥ 8k, where the default is
    atomics), with bf16x2 exponentials."""
    q, k, v_shared = inputs
    row = {}
    os.environ["NANOG1_TRITON_FAST_LAUNCH"] = "0"  # Triton's own dispatch on every launch
    row["kernel_savo_tritondispatch"] = do_bench(fwd_bwd(ours, [q, k, v_shared]), warmup=50, rep=300,
                                                 grad_to_none=[q, k, v_shared], return_mode="median")
    os.environ["NANOG1_TRITON_FAST_LAUNCH"] = "1"
    rt.ATOMIC_DQ = False  # dQ in its own query-block pass, the default below ATOMIC_DQ_MIN_LEN
    row["kernel_savo_pass2"] = float("nan") if length < rt.ATOMIC_DQ_MIN_LEN else do_bench(
        fwd_bwd(ours, [q, k, v_shared]), warmup=50, rep=300, grad_to_none=[q, k, v_shared],
        return_mode="median")
    rt.ATOMIC_DQ = None
    rt.EXP = rt.EXP_MODES["bf16x2"]  # the backward's exponentials on the packed bf16x2 unit
    row["kernel_savo_bf16exp"] = do_bench(fwd_bwd(ours, [q, k, v_shared]), warmup=50, rep=300,
                                          grad_to_none=[q, k, v_shared], return_mode="median")
    rt.EXP = rt.EXP_MODES["fp32"]
    return row


def floor_ms(length: int, dqk: int, dv: int) -> float:
    """Causal fwd+bwd floor (ms): per score element max(matmul, exp) in fwd and in bwd, summed."""
    elements = TOKENS * length / 2 * HEADS
    fwd = max(2 * (dqk + dv) * elements / MATMUL_TFLOPS, elements / EXP_TPS)
    bwd = max(2 * (3 * dqk + 2 * dv) * elements / MATMUL_TFLOPS, elements / EXP_TPS)
    return 1e3 * (fwd + bwd)


def decode_row(batch: int = 64, context: int = 32768) -> dict:
    """One decode step at full context: SAVO cache (action 8/head + shared Q-value 64) vs MHA cache."""
    dev, dt = "cuda", torch.bfloat16
    d, dqk, s = WIDTH // HEADS, RANK // HEADS, (RANK // HEADS) ** -0.5
    q_t = torch.randn(batch, HEADS, dqk, device=dev, dtype=dt)
    # token-major, as SAVO's CUDA cache stores it (nanog1.core.caches.RoutingCache)
    k_cache = torch.randn(batch, context, HEADS, dqk, device=dev, dtype=dt).transpose(1, 2)
    v_cache = torch.randn(batch, 1, context, RANK, device=dev, dtype=dt)
    lengths = torch.full((batch,), context, device=dev)
    mq = torch.randn(batch, HEADS, 1, d, device=dev, dtype=dt)
    mk, mv = (torch.randn(batch, HEADS, context, d, device=dev, dtype=dt) for _ in range(2))

    def mha_flash():
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            return F.scaled_dot_product_attention(mq, mk, mv)
    ours_ms = do_bench(lambda: routing_decode(q_t, k_cache, v_cache, lengths, s), warmup=25, rep=200,
                       return_mode="median")
    torch_ms = do_bench(lambda: decode_reference(q_t, k_cache, v_cache, lengths, s), warmup=25, rep=200,
                        return_mode="median")
    lengths_r = torch.randint(0, context + 1, (batch,), device=dev)
    err = rel(routing_decode(q_t, k_cache, v_cache, lengths_r, s),
              decode_reference(q_t.double(), k_cache.double(), v_cache.double(), lengths_r, s))
    mha_ms = do_bench(mha_flash, warmup=25, rep=200, return_mode="median")
    mha_default_ms = do_bench(lambda: F.scaled_dot_product_attention(mq, mk, mv), warmup=25, rep=200,
                              return_mode="median")
    matmul_ms = do_bench(lambda: route_step(mq, mk, mv, scale=d ** -0.5), warmup=25, rep=200,
                         return_mode="median")
    ours_bytes = (k_cache.numel() + v_cache.numel()) * 2
    mha_bytes = (mk.numel() + mv.numel()) * 2
    return {"batch": batch, "context": context, "savo_ms": ours_ms, "savo_torch_ms": torch_ms, "err": err,
            "mha_flash_ms": mha_ms, "mha_default_ms": mha_default_ms, "mha_matmul_ms": matmul_ms,
            "tuned": str(decode_kernel._TUNED),
            "savo_tok_s": batch / ours_ms * 1e3, "mha_tok_s": batch / mha_ms * 1e3,
            "cache_ratio": ours_bytes / mha_bytes, "savo_floor_ms": 1e3 * ours_bytes / BYTES_PER_S,
            "mha_floor_ms": 1e3 * mha_bytes / BYTES_PER_S}


def captured(fn) -> torch.cuda.CUDAGraph:
    """``fn`` captured in a CUDA graph, PyTorch's whole-network way: three warm-up calls on a side stream
    (autotuning included), then one capture."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return graph


def graph_ms(fn) -> float:
    """Median ms of ``fn`` replayed from a CUDA graph (its device time, the host's launch cost taken out)."""
    return do_bench(captured(fn).replay, warmup=25, rep=200, return_mode="median")


def decode_sweep(batch: int = 64, context: int = 32768) -> list[dict]:
    """The split decode kernel over every launch config of a grid, with the action cache head-major
    ([B, h, T, d], the old layout) and token-major ([B, T, h, d] seen as [B, h, T, d]: one 128-byte row per
    token), eager and CUDA-graph replay, beside an MHA step on SDPA's default (eager and graph)."""
    dev, dt = "cuda", torch.bfloat16
    d, dqk = WIDTH // HEADS, RANK // HEADS
    q_t = torch.randn(batch, HEADS, dqk, device=dev, dtype=dt)
    caches = {"head": torch.randn(batch, HEADS, context, dqk, device=dev, dtype=dt),
              "token": torch.randn(batch, context, HEADS, dqk, device=dev, dtype=dt).transpose(1, 2)}
    v_cache = torch.randn(batch, 1, context, RANK, device=dev, dtype=dt)
    mq = torch.randn(batch, HEADS, 1, d, device=dev, dtype=dt)
    mk, mv = (torch.randn(batch, HEADS, context, d, device=dev, dtype=dt) for _ in range(2))

    def mha():
        return F.scaled_dot_product_attention(mq, mk, mv)
    rows = [{"what": "mha_default", "ms": do_bench(mha, warmup=25, rep=200, return_mode="median"),
             "graph_ms": graph_ms(mha)}]
    for layout, k_cache in caches.items():
        rows += _sweep_layout(layout, q_t, k_cache, v_cache)
    for r in rows:
        if "graph_ms" in r:
            print(f"decode sweep {r['what']:28s} {str(r.get('cfg', '')):18s} eager {r['ms']:.4f} ms  graph "
                  f"{r['graph_ms']:.4f} ms  MHA-default ÷ this: eager {rows[0]['ms'] / r['ms']:.2f}×, graph "
                  f"{rows[0]['graph_ms'] / r['graph_ms']:.2f}×  err {r.get('err', float('nan')):.1e}",
                  flush=True)
    return rows


def _sweep_layout(layout: str, q_t, k_cache, v_cache) -> list[dict]:
    """decode_sweep's rows for one cache layout: every config eager, the best again eager and graphed (with
    its error against float64 at random lengths), and the autotuned routing_decode eager and graphed."""
    batch, context, s = k_cache.shape[0], k_cache.shape[2], (RANK // HEADS) ** -0.5
    full = torch.full((batch,), context, device=k_cache.device)
    lengths_r = torch.randint(0, context + 1, (batch,), device=k_cache.device)

    def launch(cfg, lengths=full):
        return decode_kernel._launch(q_t, k_cache, v_cache, lengths, s, *cfg)
    rows = []
    for cfg in itertools.product((64, 128, 256), (2, 4, 8, 16, 32), (4, 8), (2, 3, 4)):
        try:
            rows.append({"what": layout, "cfg": cfg, "ms": do_bench(lambda c=cfg: launch(c), warmup=5, rep=25,
                                                                    return_mode="median")})
        except Exception as err:  # noqa: BLE001 — e.g. out of shared memory: report, go on
            rows.append({"what": layout, "cfg": cfg, "error": str(err).splitlines()[0][:80]})
    best = dict(min((r for r in rows if "ms" in r), key=lambda r: r["ms"]), best=True)
    best["ms"] = do_bench(lambda: launch(best["cfg"]), warmup=25, rep=200, return_mode="median")
    best["graph_ms"] = graph_ms(lambda: launch(best["cfg"]))
    best["err"] = rel(launch(best["cfg"], lengths_r),
                      decode_reference(q_t.double(), k_cache.double(), v_cache.double(), lengths_r, s))

    def tuned():
        return routing_decode(q_t, k_cache, v_cache, full, s)
    return rows + [best, {"what": f"{layout} (routing_decode)", "ms": do_bench(tuned, warmup=25, rep=200,
                                                                               return_mode="median"),
                          "graph_ms": graph_ms(tuned), "tuned": str(decode_kernel._TUNED)}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "routing_kernel.json"))
    parser.add_argument("--lengths", default="512,2048,8192,32768")
    parser.add_argument("--skip", default="", help="comma list of: variants (the opt-in kernel columns), "
                        "opt-in-checks (checks of the opt-in paths), training (the fwd+bwd rows), decode")
    parser.add_argument("--decode-sweep", action="store_true",
                        help="only the decode kernel's launch-config and cache-layout sweep (then exit)")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    if args.decode_sweep:
        print(torch.cuda.get_device_name(), "torch", torch.__version__)
        with open(args.out, "w") as fh:
            json.dump({"decode_sweep": decode_sweep()}, fh, indent=1)
        return
    torch.manual_seed(0)
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    cases = [(True, None, 8), (True, "rand", 1), (False, "right", 8), (False, None, 1), (True, "left", 8)]
    checks = check_correctness(cases)
    if "opt-in-checks" not in skip:
        rt.ATOMIC_DQ = True
        checks += check_correctness(cases[1:3])
        rt.ATOMIC_DQ = None
        rt.EXP = rt.EXP_MODES["bf16x2"]
        checks += [c.replace("check", "check exp=bf16x2") for c in check_correctness(cases[:3])]
        rt.EXP = rt.EXP_MODES["fp32"]
    print("\n".join(checks))
    rows = [] if "training" in skip else [training_row(int(n), "variants" not in skip)
                                          for n in args.lengths.split(",")]
    dec = decode_row() if "decode" not in skip else None
    for kern in (rt._fwd_kernel, rt._bwd_kernel, rt._dq_kernel):
        for key, cfg in kern.cache.items():
            print("tuned", kern.fn.__name__, key[:6], cfg)
    with open(args.out, "w") as fh:
        json.dump({"checks": checks, "training": rows, "decode": dec}, fh, indent=1)
    print("\nfwd+bwd ms (causal, bf16, 32k tokens, h=8, H=512, r=64); speed-up = mha_flash / kernel")
    print(f"{'L':>6} {'B':>3} {'mha_fl':>7} {'mha_def':>7} {'padded':>7} {'k_savo':>7} "
          f"{'k_pass2':>7} "
          f"{'k_qcmp':>7} "
          f"{'x_savo':>6} {'x_qcmp':>6} {'fl_fwd':>6} {'k_fwd':>6} {'floorM':>6} {'floorK':>6} "
          f"{'k_tdisp':>7} {'k_bfexp':>7} {'g_flash':>7} {'g_savo':>7} {'x_graph':>7}")
    for r in rows:
        print(f"{r['L']:>6} {r['B']:>3} {r['mha_flash']:7.3f} {r['mha_default']:7.3f} "
              f"{r['padded_sdpa_savo']:7.3f} {r['kernel_savo']:7.3f} "
              f"{r['kernel_savo_pass2']:7.3f} "
              f"{r['kernel_qcompass']:7.3f} "
              f"{r['mha_flash'] / r['kernel_savo']:6.2f} {r['mha_flash'] / r['kernel_qcompass']:6.2f} "
              f"{r['fwd_mha_flash']:6.3f} {r['fwd_kernel_savo']:6.3f} "
              f"{floor_ms(r['L'], 64, 64):6.3f} {floor_ms(r['L'], 16, 64):6.3f} "
              f"{r['kernel_savo_tritondispatch']:7.3f} {r['kernel_savo_bf16exp']:7.3f} "
              f"{r['graph_mha_flash']:7.3f} {r['graph_kernel_savo']:7.3f} "
              f"{r['graph_mha_flash'] / r['graph_kernel_savo']:7.2f}")
    if dec is None:
        return
    print(f"decode B={dec['batch']} T={dec['context']}: savo {dec['savo_ms']:.3f} ms "
          f"({dec['savo_tok_s']:.0f} tok/s, floor {dec['savo_floor_ms']:.3f}, "
          f"torch path {dec['savo_torch_ms']:.3f},"
          f" err {dec['err']:.1e}) vs mha_flash "
          f"{dec['mha_flash_ms']:.3f} ms ({dec['mha_tok_s']:.0f} tok/s, floor {dec['mha_floor_ms']:.3f}); "
          f"x{dec['savo_tok_s'] / dec['mha_tok_s']:.2f}, cache {dec['cache_ratio']:.3f}x; "
          f"mha via matmuls {dec['mha_matmul_ms']:.3f} ms; mha on SDPA's default "
          f"{dec['mha_default_ms']:.3f} ms (x{dec['mha_default_ms'] / dec['savo_ms']:.2f}); "
          f"decode launch {dec['tuned']}")


if __name__ == "__main__":
    main()
