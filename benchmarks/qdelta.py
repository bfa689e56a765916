"""Q-Delta on one GPU: correctness against the float64 recurrence, then fwd+bwd and decode timings.

Compares, in one process and at equal shapes (8 heads × 64, bf16 inputs, fwd+bwd per 32k tokens):
Q-Delta on its fused Triton kernels (`qdelta_fused`, the mixer's GPU path), Q-Delta chunked
(PyTorch chunk-parallel products + Triton state pass), SAVO's routing op on our kernel,
flash-linear-attention's chunk_delta_rule and chunk_gated_delta_rule, and causal MHA on SDPA's flash
backend. Needs only
torch, triton, numpy, nanog1.core and (optionally) fla. Run from the repo root:

    PYTHONPATH=. python3 benchmarks/qdelta.py --out results.json
"""

from __future__ import annotations

import argparse
import json
import traceback
from collections.abc import Callable

import torch
import torch.nn.functional as F
import triton

from nanog1.core.qdelta_chunk import pick_scan, qdelta_chunked, torch_scan
from nanog1.core.qdelta_fused import qdelta_fused
from nanog1.core.qdelta_reference import qdelta_recurrent, qdelta_step

HEADS, DIM = 8, 64
_COMPILED: list = []


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ in float64."""
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


def _streams(b: int, h: int, length: int, dk: int, dv: int, dtype, heads_first: bool = True):
    """Random q, k (unit), v, β, λ, g (log-decay) on the GPU; layout [B, h, L, d] or fla's [B, L, h, d]."""
    shape = (b, h, length) if heads_first else (b, length, h)
    q = F.normalize(torch.randn(*shape, dk, device="cuda"), dim=-1).to(dtype)
    k = F.normalize(torch.randn(*shape, dk, device="cuda"), dim=-1).to(dtype)
    v = torch.randn(*shape, dv, device="cuda").to(dtype)
    beta = torch.rand(*shape, device="cuda").to(dtype)
    lam = torch.rand(*shape, device="cuda").to(dtype)
    g = F.logsigmoid(torch.randn(*shape, device="cuda") + 4.0)
    return q, k, v, beta, lam, g


def check_correctness(rows: list) -> list[tuple[str, float]]:
    """Relative errors of the GPU paths against the float64 recurrence (and fla at λ = 0), into rows."""
    ins = [x.float() for x in _streams(2, 4, 1000, DIM, DIM, torch.float32)]
    h0 = torch.randn(2, 4, DIM, DIM, device="cuda")
    ref_in = [x.double().requires_grad_() for x in (*ins, h0)]
    gpu_in = [x.clone().requires_grad_() for x in (*ins, h0)]
    o_ref, s_ref = qdelta_recurrent(*ref_in[:6], initial_state=ref_in[6])
    o, s = qdelta_chunked(*gpu_in[:6], initial_state=gpu_in[6], scan=pick_scan(gpu_in[0]))
    rows += [("fp32 chunked+Triton vs fp64 recurrence: o", _rel(o, o_ref)),
             ("fp32 chunked+Triton vs fp64 recurrence: final state", _rel(s, s_ref))]
    w_o, w_s = torch.randn_like(o), torch.randn_like(s)
    g_ref = torch.autograd.grad((o_ref * w_o.double()).sum() + (s_ref * w_s.double()).sum(), ref_in)
    g_gpu = torch.autograd.grad((o * w_o).sum() + (s * w_s).sum(), gpu_in)
    for name, a, b in zip("q k v beta lam g h0".split(), g_gpu, g_ref, strict=True):
        rows.append((f"fp32 chunked+Triton vs fp64 recurrence: d{name}", _rel(a, b)))
    _check_fused(gpu_in, o_ref, s_ref, w_o, w_s, g_ref, rows)
    o_t, _ = qdelta_chunked(*gpu_in[:6], initial_state=gpu_in[6], scan=torch_scan)
    rows.append(("Triton state pass vs PyTorch loop (fp32): o", _rel(o, o_t)))
    bf = [x.detach().bfloat16() for x in ins]
    o_bf, _ = qdelta_chunked(*bf, scan=pick_scan(bf[0]))
    o_ref0, _ = qdelta_recurrent(*[x.double() for x in ins])
    rows.append(("bf16 inputs, chunked+Triton vs fp64 recurrence: o", _rel(o_bf, o_ref0)))
    rows.append(("bf16 inputs, fused vs fp64 recurrence: o", _rel(qdelta_fused(*bf)[0], o_ref0)))
    _check_against_fla(ins, rows)
    return rows


def _check_fused(gpu_in, o_ref, s_ref, w_o, w_s, g_ref, rows: list) -> None:
    """The fused kernels (fp32 inputs) against the float64 recurrence: outputs, state, every gradient."""
    o, s = qdelta_fused(*gpu_in[:6], initial_state=gpu_in[6])
    rows += [("fp32 fused vs fp64 recurrence: o", _rel(o, o_ref)),
             ("fp32 fused vs fp64 recurrence: final state", _rel(s, s_ref))]
    grads = torch.autograd.grad((o * w_o).sum() + (s * w_s).sum(), gpu_in)
    for name, a, b in zip("q k v beta lam g h0".split(), grads, g_ref, strict=True):
        rows.append((f"fp32 fused vs fp64 recurrence: d{name}", _rel(a, b)))


def _check_against_fla(ins, rows: list) -> None:
    """λ = 0 must reproduce fla's Gated DeltaNet (and DeltaNet with α = 1) forward, on bf16 inputs."""
    from fla.ops.delta_rule import chunk_delta_rule
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule

    q, k, v, beta = (x.detach().bfloat16() for x in ins[:4])
    g = ins[5].detach()
    zero = torch.zeros_like(g)
    t = [x.transpose(1, 2).contiguous() for x in (q, k, v, g, beta)]
    ours_g, _ = qdelta_chunked(*(x.float() for x in (q, k, v, beta)), zero, g, scan=pick_scan(g))
    fla_g, _ = chunk_gated_delta_rule(t[0], t[1], t[2], t[3], t[4], scale=1.0)
    rows.append(("λ=0 vs fla chunk_gated_delta_rule (bf16 in): o", _rel(fla_g.transpose(1, 2), ours_g)))
    fused_g, _ = qdelta_fused(q, k, v, beta, zero, g)
    rows.append(("λ=0 fused vs fla chunk_gated_delta_rule (bf16 in): o",
                 _rel(fla_g.transpose(1, 2), fused_g)))
    ours_d, _ = qdelta_chunked(*(x.float() for x in (q, k, v, beta)), zero, zero, scan=pick_scan(g))
    fla_d, _ = chunk_delta_rule(t[0], t[1], t[2], t[4], scale=1.0)
    rows.append(("λ=0, α=1 vs fla chunk_delta_rule (bf16 in): o", _rel(fla_d.transpose(1, 2), ours_d)))


def _train_fns(b: int, length: int) -> dict[str, Callable[[], None]]:
    """fwd+bwd closures for each method at batch b and length L, bf16 inputs."""
    fns = {}
    ours = [x.requires_grad_() for x in _streams(b, HEADS, length, DIM, DIM, torch.bfloat16)]
    do = torch.randn(b, HEADS, length, DIM, device="cuda", dtype=torch.bfloat16)


    def qdelta(precision: str, fn=qdelta_chunked) -> None:
        torch.set_float32_matmul_precision(precision)
        try:
            torch.autograd.grad(fn(*ours, scan=pick_scan(ours[0]))[0], ours, do)
        finally:
            torch.set_float32_matmul_precision("highest")

    fns["Q-Delta fused (ours)"] = lambda: torch.autograd.grad(qdelta_fused(*ours)[0], ours, do)
    fns["Q-Delta (ours, fp32)"] = lambda: qdelta("highest")
    fns["Q-Delta (ours, tf32)"] = lambda: qdelta("high")
    fns["Q-Delta (tf32, compiled)"] = lambda: qdelta("high", _compiled_chunked)
    mha = [torch.randn(b, HEADS, length, DIM, device="cuda", dtype=torch.bfloat16, requires_grad=True)
           for _ in range(3)]

    def sdpa():
        with torch.nn.attention.sdpa_kernel(torch.nn.attention.SDPBackend.FLASH_ATTENTION):
            out = F.scaled_dot_product_attention(*mha, is_causal=True)
        torch.autograd.grad(out, mha, do)

    fns["MHA (SDPA flash)"] = sdpa
    fns["SAVO (routing kernel)"] = _savo_fn(b, length, do)
    try:
        import fla.ops.common.chunk_o as chunk_o
        from fla.ops.delta_rule import chunk_delta_rule
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule

        chunk_o.TRITON_ABOVE_3_7_1 = True  # timing only: fla refuses GDN bwd on Hopper + Triton < 3.7.1
    except ImportError:
        return fns
    q, k, v, beta, _, g = _streams(b, HEADS, length, DIM, DIM, torch.bfloat16, heads_first=False)
    leaves = [x.requires_grad_() for x in (q, k, v, beta)]
    g = g.requires_grad_()
    do_t = do.transpose(1, 2).contiguous()
    fns["fla DeltaNet"] = lambda: torch.autograd.grad(chunk_delta_rule(q, k, v, beta)[0], leaves, do_t)
    fns["fla Gated DeltaNet"] = lambda: torch.autograd.grad(
        chunk_gated_delta_rule(q, k, v, g, beta)[0], [*leaves, g], do_t)
    return fns


def _savo_fn(b: int, length: int, do: torch.Tensor) -> Callable[[], None]:
    """SAVO's mixing op at the same H = 512, 8 heads: rank-8-per-head routing of the shared 64-wide
    Q-value on our routing kernel, as `benchmarks/routing_kernel.py`'s kernel_savo column."""
    from nanog1.core.kernels import routing_attention

    q, k = (torch.randn(b, HEADS, length, 8, device="cuda", dtype=torch.bfloat16, requires_grad=True)
            for _ in range(2))
    v = torch.randn(b, 1, length, DIM, device="cuda", dtype=torch.bfloat16, requires_grad=True)

    def run() -> None:
        out = routing_attention(q, k, v, causal=True, key_padding_mask=None, scale=8 ** -0.5)
        torch.autograd.grad(out, (q, k, v), do)
    return run


def _compiled_chunked(*args, **kwargs):
    """qdelta_chunked with its chunk-parallel parts (terms, outputs) under torch.compile."""
    import nanog1.core.qdelta_chunk as qc

    plain = qc.chunk_terms, qc.chunk_outputs
    if not _COMPILED:
        _COMPILED.extend([torch.compile(plain[0]), torch.compile(plain[1])])
    qc.chunk_terms, qc.chunk_outputs = _COMPILED
    try:
        return qc.qdelta_chunked(*args, **kwargs)
    finally:
        qc.chunk_terms, qc.chunk_outputs = plain


def profile_ours(length: int = 8192, b: int = 4) -> None:
    """Print the top CUDA kernels of one fused Q-Delta fwd+bwd: where the time goes."""
    ours = [x.requires_grad_() for x in _streams(b, HEADS, length, DIM, DIM, torch.bfloat16)]
    do = torch.randn(b, HEADS, length, DIM, device="cuda", dtype=torch.bfloat16)
    torch.set_float32_matmul_precision("high")

    def run():
        torch.autograd.grad(qdelta_fused(*ours)[0], ours, do)

    run()
    torch.cuda.synchronize()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(3):
            run()
        torch.cuda.synchronize()
    torch.set_float32_matmul_precision("highest")
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=18, max_name_column_width=60))


def _measure(fn: Callable[[], None]) -> tuple[float, float]:
    """(median ms, peak extra MiB) of one closure."""
    fn()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    fn()
    torch.cuda.synchronize()
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    return triton.testing.do_bench(fn, warmup=50, rep=300, return_mode="median"), peak


def time_training(lengths: list[int], tokens: int, methods: str = "") -> list[dict]:
    """fwd+bwd median ms and peak memory per method and length, all in this process."""
    rows = []
    for length in lengths:
        b = max(1, tokens // length)
        wanted = [m for m in methods.split(",") if m]
        for name, fn in _train_fns(b, length).items():
            if wanted and not any(m in name for m in wanted):
                continue
            try:
                ms, mib = _measure(fn)
            except Exception as err:  # report and go on: one failing peer must not lose the table
                print(f"{name} L={length}: {type(err).__name__}: {str(err)[:200]}")
                ms, mib = float("nan"), float("nan")
            rows.append({"method": name, "L": length, "B": b, "ms": ms, "peak_MiB": mib})
        torch.cuda.empty_cache()
    return rows


def _graph_time(fn: Callable[[], object]) -> float:
    """Median µs of one replay of fn captured as a CUDA graph."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fn()
    return 1e3 * triton.testing.do_bench(graph.replay, warmup=20, rep=100, return_mode="median")


def time_decode(batch: int = 64, cache_len: int = 32768) -> list[dict]:
    """One decode step at this batch: Q-Delta's O(1) state update (PyTorch ops and the fused Triton step)
    vs fla's fused recurrent steps (DeltaNet, Gated DeltaNet) and an SDPA KV-cache read; CUDA-graph replays.
    The fused step's relative error against the float64 step is in the row's ``err``."""
    from nanog1.core.qdelta_decode import qdelta_step_fused

    rows = []
    q, k, v, beta, lam, g = (x[:, :, 0] for x in _streams(batch, HEADS, 1, DIM, DIM, torch.float32))
    h = torch.randn(batch, HEADS, DIM, DIM, device="cuda")
    o_ref, h_ref = qdelta_step(*(x.double() for x in (h, q, k, v, beta, lam, g)))
    o_f, h_f = qdelta_step_fused(h, q, k, v, beta, lam, g)
    rows.append({"method": "Q-Delta step (ours, PyTorch ops)",
                 "us": _graph_time(lambda: qdelta_step(h, q, k, v, beta, lam, g))})
    rows.append({"method": "Q-Delta step (ours, fused Triton)",
                 "err": max(_rel(o_f, o_ref), _rel(h_f, h_ref)),
                 "us": _graph_time(lambda: qdelta_step_fused(h, q, k, v, beta, lam, g))})
    try:
        from fla.ops.delta_rule import fused_recurrent_delta_rule
        from fla.ops.gated_delta_rule import fused_recurrent_gated_delta_rule

        t = [x[:, None].bfloat16() for x in (q, k, v)]
        h_fla = h.clone()
        gated = lambda: fused_recurrent_gated_delta_rule(  # noqa: E731
            *t, g[:, None], beta[:, None].bfloat16(), initial_state=h_fla, output_final_state=True)
        plain = lambda: fused_recurrent_delta_rule(  # noqa: E731
            *t, beta[:, None].bfloat16(), initial_state=h_fla, output_final_state=True)
        rows.append({"method": "fla Gated DeltaNet fused_recurrent (T=1)", "us": _graph_time(gated)})
        rows.append({"method": "fla DeltaNet fused_recurrent (T=1)", "us": _graph_time(plain)})
    except Exception as err:
        print("fla decode:", type(err).__name__, str(err)[:200])
    qd = torch.randn(batch, HEADS, 1, DIM, device="cuda", dtype=torch.bfloat16)
    kv = [torch.randn(batch, HEADS, cache_len, DIM, device="cuda", dtype=torch.bfloat16) for _ in range(2)]
    rows.append({"method": f"SDPA over a {cache_len} KV cache",
                 "us": _graph_time(lambda: F.scaled_dot_product_attention(qd, *kv))})
    return rows


def main() -> None:
    """Check, time, print a compact table and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lengths", default="2048,8192,32768,65536")
    parser.add_argument("--tokens", type=int, default=32768)
    parser.add_argument("--out", default=None)
    parser.add_argument("--methods", default="", help="comma-separated name parts to time (default all)")
    parser.add_argument("--skip", default="", help="sections to skip: correctness,profile,training,decode")
    args = parser.parse_args()
    print(torch.cuda.get_device_name(), "torch", torch.__version__, "triton", triton.__version__)
    result = {"device": torch.cuda.get_device_name()}
    lengths = [int(x) for x in args.lengths.split(",")]
    result["correctness"] = []
    for key, fn in (("correctness", lambda: check_correctness(result["correctness"])),
                    ("profile", profile_ours),
                    ("training", lambda: time_training(lengths, args.tokens, args.methods)),
                    ("decode", time_decode)):
        if key in args.skip.split(","):
            continue
        try:
            result[key] = fn()
        except Exception:
            traceback.print_exc()
    result.pop("profile", None)

    for name, err in result.get("correctness", []):
        print(f"{name:60s} {err:.2e}")
    rows = result.get("training", [])
    base = {(r["L"]): r["ms"] for r in rows if r["method"] == "fla Gated DeltaNet"}
    for r in rows:
        ratio = r["ms"] / base[r["L"]] if r["L"] in base else float("nan")
        print(f"{r['method']:24s} L={r['L']:6d} B={r['B']:3d} {r['ms']:8.2f} ms  "
              f"{r['peak_MiB']:8.0f} MiB  ×GDN {ratio:5.2f}")
    for r in result.get("decode", []):
        print(f"{r['method']:45s} {r['us']:9.1f} µs" + (f"  err {r['err']:.1e}" if "err" in r else ""))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
