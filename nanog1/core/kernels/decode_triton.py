"""Triton split-context decode over a SAVO cache: one query per sequence, all heads in one program.

The cache holds narrow keys k [B, h, T, d_qk] (the action) and one shared value v [B, 1, T, d_v]
(the Q-value). A program takes one sequence and one slice of its context and serves every head, so
each cached value row is read once for all heads. Scores for all heads come from one small matrix
product, K_slice [T_blk, h·d_qk] · blockdiag(q) [h·d_qk, h]; the weighted sum is Pᵀ · V_slice.
Each slice writes its (max, sum, unnormalised output) per head; a second small kernel merges the
slices (one program per sequence). A decode step is short enough for host time to matter, so both
launches go through :class:`~nanog1.core.kernels.launch.CachedLaunch` and nothing else is launched.
Keys are read through their strides; SAVO's CUDA cache stores them token-major (one 128-byte row of all
heads' keys per token, :class:`~nanog1.core.caches.RoutingCache`), which took the step at batch 64 and
32k context from 0.277 to 0.219 ms on an H100 (the best launch of each layout; BENCHMARKS.md, issue 30).
Interior context blocks load without predicates; only a slice's last block is masked.
Import only where CUDA and Triton are present: CPU paths never load it.
"""

from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from nanog1.core.kernels.launch import CachedLaunch, cdiv, next_pow2

LOG2E = 1.4426950408889634
_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
# (context block, programs per multiprocessor, warps, pipeline stages) tried on a shape class's first call.
# Six of the seven fastest of a 90-config sweep over SAVO's token-major cache (batch 64, 32k context, H100,
# 0.219-0.249 ms; BENCHMARKS.md, issue 30, decode) and the old default (128, 4, 4, 3).
_CANDIDATES = [(128, 2, 4, 2), (128, 8, 4, 2), (128, 16, 4, 2), (128, 2, 4, 4), (64, 8, 4, 4), (64, 8, 4, 2),
               (128, 4, 4, 3)]
_TUNED: dict[tuple, tuple[int, int, int, int]] = {}


@triton.jit
def _decode_block(K, V, k_base, v_base, k_col, offs_dv, q_diag, qk_scale, t0, end, skt, svt, m_i, l_i, acc,
                  BLOCK_T: tl.constexpr, MASKED: tl.constexpr):
    """One context block's online-softmax update for every head; ``MASKED`` only for the block that
    reaches past the slice's end (interior blocks load without predicates: wide, vectorised loads)."""
    offs_t = t0 + tl.arange(0, BLOCK_T)
    if MASKED:
        t_ok = offs_t < end
        k = tl.load(K + k_base + offs_t[:, None] * skt + k_col[None, :], mask=t_ok[:, None], other=0.0)
        v = tl.load(V + v_base + offs_t[:, None] * svt + offs_dv[None, :], mask=t_ok[:, None], other=0.0)
        s = tl.dot(k, q_diag) * qk_scale
        s = tl.where(t_ok[:, None], s, float("-inf"))
    else:
        k = tl.load(K + k_base + offs_t[:, None] * skt + k_col[None, :])
        v = tl.load(V + v_base + offs_t[:, None] * svt + offs_dv[None, :])
        s = tl.dot(k, q_diag) * qk_scale
    m_new = tl.maximum(m_i, tl.max(s, 0))
    m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
    p = tl.math.exp2(s - m_use[None, :])
    alpha = tl.math.exp2(m_i - m_use)
    l_i = l_i * alpha + tl.sum(p, 0)
    acc = acc * alpha[:, None] + tl.dot(tl.trans(p.to(v.dtype)), v)
    return m_new, l_i, acc


@triton.jit
def _decode_split_kernel(Q, K, V, LENS, M, LSUM, ACC, qk_scale, split_len, heads,
                         sqb, sqh, skb, skh, skt, svb, svt, smb, sms, sab, sas, sah,
                         D_QK: tl.constexpr, D_V: tl.constexpr, BLOCK_C: tl.constexpr,
                         BLOCK_H: tl.constexpr, BLOCK_T: tl.constexpr):
    """Partial softmax-weighted sum of one context slice for every head of one sequence.

    Columns past heads·D_QK (when BLOCK_C is wider) read head 0's keys again: their q_diag rows are
    zero, so they add nothing, and the key loads need no column mask (which would stop vectorising)."""
    b = tl.program_id(0).to(tl.int64)
    split = tl.program_id(1)
    length = tl.load(LENS + b)
    start = split * split_len
    end = tl.minimum(start + split_len, length)
    offs_c = tl.arange(0, BLOCK_C)
    c_ok = offs_c < heads * D_QK
    head_of_c = tl.where(c_ok, offs_c // D_QK, 0)
    offs_h = tl.arange(0, BLOCK_H)
    offs_dv = tl.arange(0, D_V)
    q_flat = tl.load(Q + b * sqb + head_of_c * sqh + offs_c % D_QK, mask=c_ok, other=0.0)
    q_diag = tl.where((head_of_c[:, None] == offs_h[None, :]) & c_ok[:, None], q_flat[:, None],
                      0.0).to(K.dtype.element_ty)
    k_col = head_of_c * skh + offs_c % D_QK
    m_i = tl.full([BLOCK_H], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_H], dtype=tl.float32)
    acc = tl.zeros([BLOCK_H, D_V], dtype=tl.float32)
    k_base = b * skb
    v_base = b * svb
    full_end = start + tl.maximum(end - start, 0) // BLOCK_T * BLOCK_T
    for t0 in range(start, full_end, BLOCK_T):
        m_i, l_i, acc = _decode_block(K, V, k_base, v_base, k_col, offs_dv, q_diag, qk_scale, t0, end, skt,
                                      svt, m_i, l_i, acc, BLOCK_T, False)
    if full_end < end:
        m_i, l_i, acc = _decode_block(K, V, k_base, v_base, k_col, offs_dv, q_diag, qk_scale, full_end, end,
                                      skt, svt, m_i, l_i, acc, BLOCK_T, True)
    tl.store(M + b * smb + split * sms + offs_h, m_i)
    tl.store(LSUM + b * smb + split * sms + offs_h, l_i)
    tl.store(ACC + b * sab + split * sas + offs_h[:, None] * sah + offs_dv[None, :], acc)


@triton.jit
def _decode_merge_kernel(M, LSUM, ACC, OUT, n_split, heads, smb, sms, sab, sas, sah, sob, soh,
                         D_V: tl.constexpr, BLOCK_H: tl.constexpr):
    """Merge one sequence's per-slice (max, sum, output) triples into softmax-weighted outputs per head."""
    b = tl.program_id(0).to(tl.int64)
    offs_h = tl.arange(0, BLOCK_H)
    offs_dv = tl.arange(0, D_V)
    top = tl.full([BLOCK_H], float("-inf"), dtype=tl.float32)
    for s in range(0, n_split):
        top = tl.maximum(top, tl.load(M + b * smb + s * sms + offs_h))
    top = tl.where(top == float("-inf"), 0.0, top)
    total = tl.zeros([BLOCK_H], dtype=tl.float32)
    out = tl.zeros([BLOCK_H, D_V], dtype=tl.float32)
    for s in range(0, n_split):
        w = tl.math.exp2(tl.load(M + b * smb + s * sms + offs_h) - top)
        total += w * tl.load(LSUM + b * smb + s * sms + offs_h)
        out += w[:, None] * tl.load(ACC + b * sab + s * sas + offs_h[:, None] * sah + offs_dv[None, :])
    out = out / tl.where(total == 0.0, 1.0, total)[:, None]
    tl.store(OUT + b * sob + offs_h[:, None] * soh + offs_dv[None, :], out.to(OUT.dtype.element_ty),
             mask=(offs_h < heads)[:, None])


_SPLIT = CachedLaunch(_decode_split_kernel)
_MERGE = CachedLaunch(_decode_merge_kernel)


def decode_available(q_t: Tensor, k_cache: Tensor, v_cache: Tensor) -> bool:
    """Shapes and dtypes the split kernel takes: CUDA, fp16/bf16, one value head, d_v a power of two ≥ 16."""
    d_v = v_cache.shape[-1]
    return (q_t.is_cuda and k_cache.dtype in (torch.float16, torch.bfloat16)
            and v_cache.dtype == k_cache.dtype and v_cache.shape[1] == 1
            and 16 <= d_v <= 256 and d_v & (d_v - 1) == 0
            and k_cache.stride(-1) == 1 and v_cache.stride(-1) == 1 and q_t.stride(-1) == 1)


def _splits(batch: int, cap: int, block_t: int, per_sm: int, device: torch.device) -> tuple[int, int]:
    """(number of context slices, slice length): about ``per_sm`` programs per multiprocessor."""
    sms = 4 if _INTERPRET else _multiprocessors(device.index)
    n = max(1, min(cdiv(cap, block_t), cdiv(per_sm * sms, batch)))
    split_len = cdiv(cdiv(cap, n), block_t) * block_t
    return cdiv(cap, split_len), split_len


@functools.cache
def _multiprocessors(index: int | None) -> int:
    """The device's SM count, asked once (the property call costs host time on every decode step)."""
    return torch.cuda.get_device_properties(index).multi_processor_count


def _tuned(q_t: Tensor, k_cache: Tensor, v_cache: Tensor, lengths: Tensor,
           scale: float) -> tuple[int, int, int, int]:
    """The fastest candidate launch for this shape class (batch, capacity rounded up to a power of two)."""
    if _INTERPRET:
        return 64, 4, 4, 3
    batch, heads, cap, d_qk = k_cache.shape
    token_major = k_cache.stride(2) > k_cache.stride(1)  # the layouts tune to different launches
    key = (batch, heads, next_pow2(cap), d_qk, v_cache.shape[-1], k_cache.dtype, k_cache.device, token_major)
    if key not in _TUNED:
        from triton.testing import do_bench

        def run(cfg: tuple[int, int, int, int]) -> float:
            return do_bench(lambda: _launch(q_t, k_cache, v_cache, lengths, scale, *cfg), warmup=10, rep=50,
                            return_mode="median")
        times = {cfg: run(cfg) for cfg in _CANDIDATES}
        _TUNED[key] = min(times, key=times.get)
    return _TUNED[key]


def routing_decode_triton(q_t: Tensor, k_cache: Tensor, v_cache: Tensor, lengths: Tensor,
                          scale: float) -> Tensor:
    """q_t [B, h, d_qk], k_cache [B, h, T, d_qk], v_cache [B, 1, T, d_v], lengths [B] -> [B, h, d_v]."""
    lengths = lengths.contiguous()  # read in its own integer dtype: no cast launch
    return _launch(q_t, k_cache, v_cache, lengths, scale, *_tuned(q_t, k_cache, v_cache, lengths, scale))


def _launch(q_t: Tensor, k_cache: Tensor, v_cache: Tensor, lengths: Tensor, scale: float,
            block_t: int, per_sm: int, warps: int, stages: int = 3) -> Tensor:
    """Split kernel, then the merge kernel over its per-slice (max, sum, output) triples."""
    batch, heads, cap, d_qk = k_cache.shape
    d_v = v_cache.shape[-1]
    block_h = max(16, next_pow2(heads))
    n_split, split_len = _splits(batch, cap, block_t, per_sm, k_cache.device)
    m = torch.empty(batch, n_split, block_h, device=k_cache.device, dtype=torch.float32)
    lsum = torch.empty_like(m)
    acc = torch.empty(batch, n_split, block_h, d_v, device=k_cache.device, dtype=torch.float32)
    q_t = q_t.to(k_cache.dtype)
    _SPLIT(lambda _: (batch, n_split), q_t, k_cache, v_cache, lengths, m, lsum, acc, scale * LOG2E,
           split_len, heads, q_t.stride(0), q_t.stride(1), k_cache.stride(0), k_cache.stride(1),
           k_cache.stride(2), v_cache.stride(0), v_cache.stride(2), m.stride(0), m.stride(1),
           acc.stride(0), acc.stride(1), acc.stride(2),
           D_QK=d_qk, D_V=d_v, BLOCK_C=max(16, next_pow2(heads * d_qk)), BLOCK_H=block_h,
           BLOCK_T=block_t, num_warps=warps, num_stages=stages)
    out = torch.empty(batch, heads, d_v, device=k_cache.device, dtype=v_cache.dtype)
    _MERGE(lambda _: (batch,), m, lsum, acc, out, n_split, heads, m.stride(0), m.stride(1),
           acc.stride(0), acc.stride(1), acc.stride(2), out.stride(0), out.stride(1),
           D_V=d_v, BLOCK_H=block_h, num_warps=4)
    return out
