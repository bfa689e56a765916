"""Mixer speed side by side: our Q-Compass/SAVO on SDPA against MHA on SDPA and quatrix 0.2.1's QCompass.

bf16 forward+backward of the mixing block alone (H=512, h=8, r=64 and r=H, L ∈ {512, 2k, 8k, 32k},
32k tokens per batch): median time, tokens/s, peak extra memory and achieved TFLOP/s (useful flops:
unpadded head widths, causal attention counted at half). Decode at L=8k: one token per sequence
through ``step`` on a filled cache, tokens/s and cache bytes per token; quatrix has no cache, so its
decode row is one full causal forward over the 8k context per new token.

Every kind, the MHA peer included, runs on the SDPA backend torch picks by default (the table
names it; cuDNN on an H100 with torch 2.11); ``--sdpa flash`` excludes cuDNN so flash runs. On CUDA a
second peer row, "MHA on SDPA flash", pins MHA to the flash backend (the issues' MHA-flash bar), and
the table gives every row's speed-up over it. ``--no-quatrix`` drops the quatrix rows, ``--skip-checks``
the correctness checks.
It first checks on the device that our mixers equal quatrix's (same weights, fp32) and that bf16
stays near fp32. Run from the repo root on a CUDA machine:

    PYTHONPATH=.:.device_carry/quatrix/quatrix-0.2.1-py3-none-any.whl python3 benchmarks/mixers.py

Imports only torch and nanog1.core (the device image lacks the rest of our venv). Fetch the peer
with `pip download quatrix==0.2.1 --no-deps -d .device_carry/quatrix` (a pure-Python wheel, imported
from the zip; it needs only torch at import).
``--device cpu --lengths 64 128 --tokens 256`` gives a quick CPU smoke run (no quatrix needed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from nanog1.core import build_mixer

HIDDEN, HEADS = 512, 8
BACKENDS = [("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
            ("cudnn", SDPBackend.CUDNN_ATTENTION), ("math", SDPBackend.MATH)]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def median_ms(fn, device: str, warmup: int = 3, reps: int = 10, budget_s: float = 3.0) -> float:
    """Median wall time of ``fn`` in ms (device-synchronised), stopping early past ``budget_s``."""
    for _ in range(warmup):
        fn()
    sync(device)
    times, start = [], time.perf_counter()
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
        if time.perf_counter() - start > budget_s and len(times) >= 3:
            break
    return statistics.median(times)


def quatrix_mixer(kind: str, rank: int, causal: bool):
    """quatrix 0.2.1's multi-head QCompass (q_value_content=True is its SAVO), or None if absent."""
    try:
        from quatrix.model import QCompass as QuatrixQCompass
    except ImportError:
        return None
    return QuatrixQCompass(HIDDEN, rank, num_heads=HEADS, q_value_content=(kind == "savo"), dropout=0.0)


def quatrix_forward(m, causal: bool):
    return lambda x: m(x, causal=causal)


def head_widths(kind: str, rank: int) -> tuple[int, int]:
    """(q/k width, routed width) per head, unpadded."""
    if kind == "mha":
        return HIDDEN // HEADS, HIDDEN // HEADS
    if kind == "mha_rank":
        return rank // HEADS, rank // HEADS
    return rank // HEADS, HIDDEN // HEADS


def train_flops(module, kind: str, rank: int, batch: int, length: int, causal: bool) -> float:
    """Useful fwd+bwd flops: 3 × (projection GEMMs + QKᵀ + PV), causal attention at half."""
    weights = sum(p.numel() for p in module.parameters() if p.dim() >= 2)
    dk, dv = head_widths(kind, rank)
    attention = 2.0 * batch * HEADS * length * length * (dk + dv) * (0.5 if causal else 1.0)
    return 3.0 * (2.0 * batch * length * weights + attention)


def sdpa_backend(fn, x) -> str:
    """The backend(s) torch's default dispatch picks for the SDPA calls in ``fn`` (_fused_sdp_choice)."""
    names = {}
    for name, backend in BACKENDS:
        names[int(backend)] = name
    seen, original = [], torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, **kwargs):
        choice = torch._fused_sdp_choice(q, k, v, attn_mask, dropout_p, is_causal, scale=scale)
        seen.append(names.get(int(choice), str(choice)))
        return original(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, scale=scale,
                        **kwargs)

    torch.nn.functional.scaled_dot_product_attention = spy
    try:
        fn(x[:1, :256])
    finally:
        torch.nn.functional.scaled_dot_product_attention = original
    return "+".join(sorted(set(seen))) or "none"


def backend_scope(args):
    """``--sdpa flash`` takes cuDNN out of SDPA's choice (flash first); ``auto`` keeps torch's default."""
    if args.sdpa == "flash":
        return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])
    return contextlib.nullcontext()


def train_row(name: str, kind: str, rank: int, length: int, causal: bool, args, fwd=None, module=None,
              flash_only: bool = False):
    """Time bf16 forward+backward of one mixer at one length; memory is the peak above the inputs.

    ``flash_only`` pins SDPA to its flash backend: the MHA-flash peer the issues' targets name.
    """
    scope = sdpa_kernel([SDPBackend.FLASH_ATTENTION]) if flash_only else backend_scope(args)
    with scope:
        return _train_row(name, kind, rank, length, causal, args, fwd, module)


def _train_row(name: str, kind: str, rank: int, length: int, causal: bool, args, fwd, module):
    device = args.device
    batch = max(1, args.tokens // length)
    module = module.to(device, torch.bfloat16)
    fwd = fwd or (lambda x: module(x))
    x = torch.randn(batch, length, HIDDEN, device=device, dtype=torch.bfloat16, requires_grad=True)
    grad = torch.randn_like(x)
    row = dict(name=name, kind=kind, rank=rank, L=length, B=batch, causal=causal)
    try:
        row["backend"] = sdpa_backend(fwd, x) if device == "cuda" and name.startswith("ours") else "-"

        def step():
            fwd(x).backward(grad)
            x.grad = None

        if device == "cuda":
            step()
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            step()
            torch.cuda.synchronize()
            row["peak_GiB"] = (torch.cuda.max_memory_allocated() - base) / 2**30
        ms = median_ms(step, device)
        row.update(ms=ms, tok_per_s=batch * length / ms * 1e3,
                   tflops=train_flops(module, kind, rank, batch, length, causal) / ms / 1e9)
    except torch.OutOfMemoryError:
        row["error"] = "OOM"
    except RuntimeError as err:
        row["error"] = str(err).splitlines()[0][:80]
    finally:
        module.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.empty_cache()
    return row


def decode_row(kind: str, rank: int, args) -> dict:
    """Tokens/s of ``step`` on caches already holding ``args.decode_len`` tokens (batch args.decode_batch)."""
    device, batch, length, n = args.device, args.decode_batch, args.decode_len, 32
    torch.manual_seed(0)
    m = build_mixer(kind, HIDDEN, rank, HEADS, True).to(device, torch.bfloat16).eval()
    cache = m.init_cache(batch, device=device, dtype=torch.bfloat16, capacity=length + 2 * n + 8)
    k, v = cache.keys, cache.values
    cache.append(torch.randn(batch, k.shape[1], length, k.shape[3], device=device, dtype=k.dtype),
                 torch.randn(batch, v.shape[1], length, v.shape[3], device=device, dtype=v.dtype))
    x_t = torch.randn(batch, 1, HIDDEN, device=device, dtype=torch.bfloat16)
    with torch.no_grad():
        for _ in range(n):
            m.step(x_t, cache)
        sync(device)
        t0 = time.perf_counter()
        for _ in range(n):
            m.step(x_t, cache)
        sync(device)
    ms = (time.perf_counter() - t0) * 1e3 / n
    return dict(name=f"ours {kind}", rank=rank, L=length, B=batch, step_ms=ms, tok_per_s=batch / ms * 1e3,
                cache_bytes_per_token=cache.bytes_per_token())


def quatrix_decode_row(kind: str, rank: int, args) -> dict:
    """quatrix has no cache: each new token reruns the causal forward over the whole context."""
    device, batch, length = args.device, args.decode_batch, args.decode_len
    m = quatrix_mixer(kind, rank, True)
    if m is None:
        return dict(name=f"quatrix {kind}", rank=rank, error="quatrix not installed")
    m = m.to(device, torch.bfloat16).eval()
    x = torch.randn(batch, length, HIDDEN, device=device, dtype=torch.bfloat16)
    try:
        with torch.no_grad():
            ms = median_ms(lambda: m(x, causal=True), device, warmup=1, reps=3)
    except torch.OutOfMemoryError:
        return dict(name=f"quatrix {kind}", rank=rank, L=length, B=batch, error="OOM")
    finally:
        if device == "cuda":
            torch.cuda.empty_cache()
    return dict(name=f"quatrix {kind} (no cache)", rank=rank, L=length, B=batch, step_ms=ms,
                tok_per_s=batch / ms * 1e3, cache_bytes_per_token=0)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def check_correctness(args) -> list[str]:
    """Ours vs quatrix (same weights, fp32), bf16 vs fp32, step vs forward: relative errors."""
    device, lines = args.device, []
    x = torch.randn(2, 256, HIDDEN, device=device)
    for kind in ("qcompass", "savo"):
        for rank in (64, HIDDEN):
            torch.manual_seed(0)
            ours = build_mixer(kind, HIDDEN, rank, HEADS, True).to(device)
            peer = quatrix_mixer(kind, rank, True)
            with torch.no_grad():
                y = ours(x)
                if peer is not None:
                    peer.load_state_dict(ours.state_dict())
                    err = rel_err(y, peer.to(device)(x))
                    lines.append(f"{kind} r={rank} ours vs quatrix fp32: {err:.2e}")
                y16 = ours.to(torch.bfloat16)(x.to(torch.bfloat16))
                lines.append(f"{kind} r={rank} bf16 vs fp32: {rel_err(y16, y):.2e}")
    for kind in ("qcompass", "savo", "mha", "mha_rank"):
        torch.manual_seed(0)
        m = build_mixer(kind, HIDDEN, 64, HEADS, True).to(device)
        with torch.no_grad():
            full, cache = m(x[:, :64]), m.init_cache(2, device=device)
            steps = [m.step(x[:, t:t + 1], cache)[0] for t in range(64)]
        lines.append(f"{kind} step vs forward fp32: {rel_err(torch.cat(steps, 1), full):.2e}")
    return lines


def train_rows(args) -> list[dict]:
    rows = []
    for length in args.lengths:
        for causal in (True, False) if length in args.bidirectional_lengths else (True,):
            torch.manual_seed(0)
            rows.append(train_row("ours mha (peer)", "mha", HIDDEN, length, causal, args,
                                  module=build_mixer("mha", HIDDEN, HIDDEN, HEADS, causal)))
            if args.device == "cuda":
                torch.manual_seed(0)
                rows.append(train_row("MHA on SDPA flash (peer)", "mha_flash", HIDDEN, length, causal, args,
                                      module=build_mixer("mha", HIDDEN, HIDDEN, HEADS, causal),
                                      flash_only=True))
            for rank in args.ranks:
                for kind in ("qcompass", "savo", "mha_rank"):
                    if kind == "mha_rank" and rank == HIDDEN:
                        continue
                    torch.manual_seed(0)
                    m = build_mixer(kind, HIDDEN, rank, HEADS, causal)
                    rows.append(train_row(f"ours {kind}", kind, rank, length, causal, args, module=m))
                for kind in ("qcompass", "savo") if args.quatrix else ():
                    peer = quatrix_mixer(kind, rank, causal) if causal else None
                    if peer is not None:
                        peer = peer.to(args.device, torch.bfloat16)
                        rows.append(train_row(f"quatrix {kind}", kind, rank, length, causal, args,
                                              fwd=quatrix_forward(peer, causal), module=peer))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def print_tables(rows: list[dict], decode: list[dict]) -> None:
    print("\n| mixer | r | L | B | causal | backend | ms | tok/s | peak GiB | TFLOP/s | time ÷ MHA "
          "| MHA-flash time ÷ this |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    mha = {(r["L"], r["causal"]): r.get("ms") for r in rows if r["kind"] == "mha" and "ms" in r}
    flash = {(r["L"], r["causal"]): r.get("ms") for r in rows if r["kind"] == "mha_flash" and "ms" in r}
    for r in rows:
        if "error" in r:
            print(f"| {r['name']} | {r['rank']} | {r['L']} | {r['B']} | {r['causal']} | - | {r['error']} "
                  "| | | | |")
            continue
        ref, fl = mha.get((r["L"], r["causal"])), flash.get((r["L"], r["causal"]))
        ratio = f"{r['ms'] / ref:.2f}" if ref else "-"
        speedup = f"{fl / r['ms']:.2f}" if fl else "-"
        print(f"| {r['name']} | {r['rank']} | {r['L']} | {r['B']} | {r['causal']} | {r.get('backend', '-')} "
              f"| {r['ms']:.2f} | {r['tok_per_s']:.3g} | {r.get('peak_GiB', float('nan')):.2f} "
              f"| {r['tflops']:.1f} | {ratio} | {speedup} |")
    print("\n| decode | r | L | B | ms/step | tok/s | cache bytes/token |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for d in decode:
        if "error" in d:
            print(f"| {d['name']} | {d['rank']} | - | - | {d['error']} | | |")
            continue
        print(f"| {d['name']} | {d['rank']} | {d['L']} | {d['B']} | {d['step_ms']:.3f} "
              f"| {d['tok_per_s']:.3g} | {d['cache_bytes_per_token']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 2048, 8192, 32768])
    parser.add_argument("--bidirectional-lengths", type=int, nargs="*", default=[2048, 8192])
    parser.add_argument("--ranks", type=int, nargs="+", default=[64, HIDDEN])
    parser.add_argument("--tokens", type=int, default=32768)
    parser.add_argument("--decode-len", type=int, default=8192)
    parser.add_argument("--decode-batch", type=int, default=8)
    parser.add_argument("--sdpa", choices=["auto", "flash"], default="auto",
                        help="auto: torch's default dispatch (cuDNN on H100, torch 2.11); flash: no cuDNN")
    parser.add_argument("--no-quatrix", dest="quatrix", action="store_false",
                        help="skip the quatrix 0.2.1 peer rows (when its wheel is not on the path)")
    parser.add_argument("--skip-checks", action="store_true", help="skip the correctness checks")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    args = parser.parse_args()
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    print(f"torch {torch.__version__}, device {name}", flush=True)
    for line in [] if args.skip_checks else check_correctness(args):
        print(line, flush=True)
    rows = train_rows(args)
    decode = [decode_row(kind, 64, args) for kind in ("qcompass", "savo", "mha", "mha_rank")]
    decode += [quatrix_decode_row(kind, 64, args) for kind in ("qcompass", "savo") if args.quatrix]
    with open(os.path.join(args.out, "mixers.json"), "w") as f:
        json.dump(dict(train=rows, decode=decode), f, indent=1)
    print_tables(rows, decode)


if __name__ == "__main__":
    main()
