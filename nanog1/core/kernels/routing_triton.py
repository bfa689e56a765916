"""Triton flash-attention with narrow query/key width and wide value width (rank-r routing), fwd + bwd.

Q-Compass and SAVO route with r/h-wide queries and keys (8 at r = 64, h = 8) over 64-wide values.
Padding q/k to the value width (what SDPA needs) spends QKᵀ work on zeros; here q/k are read at
their own width (masked up to Triton's minimum dot width of 16), so QKᵀ costs 16/64 of MHA's.
Forward: online softmax per query block, causal blocks split into an unmasked stage and a masked
diagonal stage; the log-sum-exp (base 2) is saved. Backward: one program per key block recomputes
P once and accumulates dK and dV in registers; its loop issues dP = V·dOᵀ before the exponentials, so
the tensor cores work while the exponential unit does (6–21 % off the pass on an H100), on one
warpgroup's tiles. dQ either comes from a query-block pass before it that
also computes δ = rowsum(O·dO) (no atomics, no fp32 buffer to clear and convert: fewer launches and
host work, which rule short L), or from fp32 atomics in the key-block pass (one exponential per score
fewer, which rules long L); the default picks by length and direction (:func:`_atomic_dq`). The backward's
exponentials on sm_90's packed bf16x2 unit are faster at long L (32k: 7.44 against 8.54 ms) but triple
the gradient error (6–11e-3 against 2–3e-3), so they are opt-in (NANOG1_ROUTING_EXP=bf16x2).
One exponential of every four or two by a polynomial on the FMA pipes (NANOG1_ROUTING_EXP=poly|poly2, and
NANOG1_ROUTING_FWD_EXP for the forward; :mod:`nanog1.core.kernels.exp2_poly`) is slower on an H100 (2.5–10 %,
BENCHMARKS.md, issue 30, round 11: the exponential unit does not bound the loops), so it is opt-in too.
Interior blocks load without row masks: only the diagonal and the last block can reach past L. On sm_90+
the loops load their tiles through TMA descriptors (:data:`TMA`).
Launches after the first per shape skip Triton's Python dispatch
(:mod:`nanog1.core.kernels.launch`). Key padding is a [B, L] bias of 0 / -inf; a query row with no
visible key outputs zeros (lse = +inf, zero grads).
Import only where CUDA and Triton are present: CPU paths never load it.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from nanog1.core.kernels import exp2_poly
from nanog1.core.kernels.launch import CachedLaunch, cdiv, next_pow2
from nanog1.core.kernels.routing import _capability

LOG2E = 1.4426950408889634
# dQ: "pass2" computes it in its own query-block pass, which also computes δ and writes dQ in the input
# dtype; "atomic" adds it in the key-block pass with fp32 atomics (one exponential fewer per score, but a
# δ launch, an fp32 buffer to clear and a convert); "auto" (default, ATOMIC_DQ None) takes atomics from
# ATOMIC_DQ_MIN_LEN on (causal) or ATOMIC_DQ_MIN_LEN_BIDIR (bidirectional). Device time per pass on an H100
# (BENCHMARKS.md, issue 30, round 5, call F1; SAVO, 32k tokens), atomic dK/dV pass against dK/dV + dQ
# passes: causal 2k 445 vs 314 + 162 µs, 8k 1525 vs 1004 + 553, 32k 5830 vs 3743 + 2134 (level);
# bidirectional 2k 698 vs 555 + 302, 8k 2546 vs 2012 + 1118, 32k 9849 vs 7820 + 4349 (atomics win).
ATOMIC_DQ: bool | None = {"atomic": True, "pass2": False}.get(os.environ.get("NANOG1_ROUTING_DQ", "auto"))
ATOMIC_DQ_MIN_LEN = 8192
ATOMIC_DQ_MIN_LEN_BIDIR = 2048
# The exponentials of the backward (NANOG1_ROUTING_EXP) and of the forward's P (NANOG1_ROUTING_FWD_EXP):
# "fp32" the exponential unit (ex2.approx.f32, the default); "bf16x2" sm_90's packed bf16x2 unit (backward
# only); "poly" / "poly2" one element of every four / two by a polynomial on the FMA pipes, the rest on the
# exponential unit (:mod:`nanog1.core.kernels.exp2_poly`); "polyall" every element by the polynomial in plain
# Triton (what Triton's CPU interpreter, which runs no PTX, tests).
EXP_MODES = {"fp32": 0, "bf16x2": 1, "poly": 2, "poly2": 3, "polyall": 4}


def _exp_mode(variable: str, allowed: tuple[str, ...] = tuple(EXP_MODES)) -> int:
    """The exponential mode an environment variable names (fp32 if unset); a clear error for a wrong one."""
    name = os.environ.get(variable, "fp32")
    if name not in allowed:
        raise ValueError(f"{variable}={name!r}: expected one of {', '.join(allowed)}")
    return EXP_MODES[name]


EXP = _exp_mode("NANOG1_ROUTING_EXP")
FWD_EXP = _exp_mode("NANOG1_ROUTING_FWD_EXP", ("fp32", "poly", "poly2", "polyall"))
_POLY4, _POLY4_IO = tl.constexpr(exp2_poly.ptx(4)), tl.constexpr(exp2_poly.constraints(4))
_POLY2, _POLY2_IO = tl.constexpr(exp2_poly.ptx(2)), tl.constexpr(exp2_poly.constraints(2))
_C0, _C1, _C2, _C3 = (tl.constexpr(c) for c in exp2_poly.COEFFS)
_MAGIC, _FLOOR = tl.constexpr(exp2_poly.MAGIC), tl.constexpr(exp2_poly.FLOOR)
# WS (a constexpr of the forward and dK/dV kernels; NANOG1_ROUTING_WS=1 turns it on where the loop loads
# through TMA, else off) asks Triton to warp-specialise their unmasked interior loops. Triton 3.6 on an H100
# fails the pass on every dK/dV tile and on the 4-warp forward tiles, over pointer and TMA loads alike, and
# the 8-warp forward tiles it compiles are within 1 % (BENCHMARKS.md, issue 30, rounds 7 and 12).

# TMA: the kernels' k/v (forward, dQ pass) and q/dO (dK/dV pass) tiles through on-device tensor descriptors,
# Hopper's copy engine, instead of pointer arithmetic: asynchronous, and it reads the block's narrow q/k rows
# (16 bytes at a 256-byte stride) without wasted sectors. On an H100 the SAVO block's graphed training step is
# 13–19 % faster with it from 2k to 32k; eager, it is faster from 8k but costs host time at 2k, where the step
# is host-bound: 7–11 µs more a launch (Triton's per-launch scratch allocation for the descriptors,
# `_tma_ok`'s stride checks, the allocator's ContextVar; BENCHMARKS.md, issue 30, rounds 12–13).
# NANOG1_ROUTING_TMA: "auto" (default) on sm_90+ with a Triton that has tensor descriptors, for sequences of
# TMA_MIN_LEN rows or more, eager or graphed alike (a graph's capture then launches what its eager warm-up
# compiled); "1" wherever the tiles are TMA-legal (:func:`_tma_ok`; the CPU interpreter's tests); "0" never.
TMA: bool | None = {"1": True, "0": False}.get(os.environ.get("NANOG1_ROUTING_TMA", "auto"))
WS = os.environ.get("NANOG1_ROUTING_WS", "0") == "1"
TMA_MIN_LEN = 8192
_HAS_DESCRIPTORS = hasattr(tl, "make_tensor_descriptor") and hasattr(triton, "set_allocator")


def _tma_ok(*tensors: Tensor) -> bool:
    """True if TMA may read every tensor: 16-byte aligned base and batch/head/row strides, unit last one."""
    for t in tensors:
        size = t.element_size()
        if t.stride(-1) != 1 or t.data_ptr() % 16 or any(s * size % 16 for s in t.stride()[:-1]):
            return False
    return True


def _scratch(size: int, alignment: int, stream: int | None) -> Tensor:
    """Global memory for on-device tensor descriptors (Triton asks its allocator for it per launch)."""
    return torch.empty(size, dtype=torch.int8, device="cuda")


def _tma(rows: int, *tensors: Tensor) -> bool:
    """Whether this launch (sequences of up to ``rows`` rows) loads through TMA (see :data:`TMA`); sets
    Triton's allocator if so."""
    if TMA is False or not _HAS_DESCRIPTORS:
        return False
    if TMA is None and not (rows >= TMA_MIN_LEN and tensors[0].is_cuda
                            and _capability(tensors[0].device.index) >= (9, 0)):
        return False
    if not _tma_ok(*tensors):
        return False
    triton.set_allocator(_scratch)
    return True


def _loads(rows: int, *tensors: Tensor) -> dict[str, bool]:
    """The TMA and WS constexprs of one launch: warp specialisation only over TMA loads."""
    tma = _tma(rows, *tensors)
    return {"TMA": tma, "WS": tma and WS}


# The causal diagonal stage walks one block of the other side in whole sub-blocks: forward and dQ
# (query block BLOCK_M over key blocks BLOCK_N) need BLOCK_M % BLOCK_N == 0, the dK/dV pass
# (key block BLOCK_N over query blocks BLOCK_M) BLOCK_N % BLOCK_M == 0; the kernels assert it.
# The candidates are the fastest of a sweep on an H100 (benchmarks/routing_tiles.py: 10 forward/dQ and
# 20 dK/dV tiles, each alone, at L = 2k/8k/32k, causal and not, both dQ forms; round 5, call F1): the
# dK/dV pass runs best on one warpgroup (4 warps; every 8-warp tile was slower, up to 2×).
# The first of each list is what NANOG1_ROUTING_AUTOTUNE=0 runs (quick GPU tests).
FWD_CANDIDATES = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
    for bm, bn, w, s in [(128, 64, 8, 4), (64, 64, 4, 3), (128, 64, 8, 3), (128, 128, 4, 2), (128, 64, 4, 3)]
]
DQ_CANDIDATES = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
    for bm, bn, w, s in [(64, 64, 4, 3), (128, 64, 8, 3), (128, 32, 4, 4), (128, 64, 8, 4)]
]
BWD_CANDIDATES = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s)
    for bm, bn, w, s in [(64, 128, 4, 2), (64, 128, 4, 3), (64, 64, 4, 2), (32, 128, 4, 2), (64, 64, 4, 3),
                         (32, 128, 4, 4)]
]
_FWD_CONFIGS, _DQ_CONFIGS, _BWD_CONFIGS = FWD_CANDIDATES, DQ_CANDIDATES, BWD_CANDIDATES
if os.environ.get("NANOG1_ROUTING_AUTOTUNE", "1") == "0":  # quick GPU test runs: one config each
    _FWD_CONFIGS, _DQ_CONFIGS, _BWD_CONFIGS = _FWD_CONFIGS[:1], _DQ_CONFIGS[:1], _BWD_CONFIGS[:1]
if os.environ.get("NANOG1_ROUTING_CONFIGS"):  # the first n candidates only (quicker tuning)
    _n = int(os.environ["NANOG1_ROUTING_CONFIGS"])
    _FWD_CONFIGS, _DQ_CONFIGS, _BWD_CONFIGS = _FWD_CONFIGS[:_n], _DQ_CONFIGS[:_n], _BWD_CONFIGS[:_n]
if os.environ.get("TRITON_INTERPRET") == "1":  # CPU interpreter (tests): one small config, no autotuning
    _FWD_CONFIGS = _DQ_CONFIGS = [triton.Config({"BLOCK_M": 32, "BLOCK_N": 16})]
    _BWD_CONFIGS = [triton.Config({"BLOCK_M": 16, "BLOCK_N": 32})]


@triton.jit
def _exp2_poly(x):
    """2^x by :mod:`nanog1.core.kernels.exp2_poly`'s polynomial in plain Triton (float32; 0 below -126)."""
    j = x + _MAGIC
    f = x - (j - _MAGIC)
    r = ((f * _C3 + _C2) * f + _C1) * f + _C0
    bits = r.to(tl.int32, bitcast=True) + (j.to(tl.int32, bitcast=True) << 23)
    return tl.where(x < _FLOOR, 0.0, bits.to(tl.float32, bitcast=True))


@triton.jit
def _exp2(x, MODE: tl.constexpr):
    """2^x in float32 by the exponential mode MODE (:data:`EXP_MODES`)."""
    if MODE == 1:  # sm_90's packed bf16x2 instruction: twice the rate, bf16 precision
        y = tl.inline_asm_elementwise("ex2.approx.ftz.bf16x2 $0, $1;", "=r,r", [x.to(tl.bfloat16)],
                                      dtype=tl.bfloat16, is_pure=True, pack=2).to(tl.float32)
    elif MODE == 2:  # one of four on the FMA pipes
        y = tl.inline_asm_elementwise(_POLY4, _POLY4_IO, [x], dtype=tl.float32, is_pure=True, pack=4)
    elif MODE == 3:  # one of two on the FMA pipes
        y = tl.inline_asm_elementwise(_POLY2, _POLY2_IO, [x], dtype=tl.float32, is_pure=True, pack=2)
    elif MODE == 4:
        y = _exp2_poly(x)
    else:
        y = tl.math.exp2(x)
    return y


@triton.jit
def _load_rows(ptrs, row_ok, offs_d, D: tl.constexpr, MASK_ROWS: tl.constexpr):
    """Load a [rows, BLOCK_D] tile: rows past the end (if MASK_ROWS) and columns ≥ D read as zero.

    Interior blocks skip the row mask: it costs a predicate per element in every loop iteration.
    """
    if MASK_ROWS:
        tile = tl.load(ptrs, mask=row_ok[:, None] & (offs_d[None, :] < D), other=0.0)
    elif offs_d.shape[0] == D:
        tile = tl.load(ptrs)
    else:
        tile = tl.load(ptrs, mask=offs_d[None, :] < D, other=0.0)
    return tile


@triton.jit
def _sequence(CU, b, bh, heads, length, VARLEN: tl.constexpr):
    """(first row, row count, lse/δ row base) of this program's sequence.

    Padded batches: sequence b is row b of a [B, h, L, d] tensor (first row 0, L rows, lse rows
    bh·L). Ragged (VARLEN): every tensor is one packed [1, h, T, d] batch, sequence b holds rows
    CU[b]..CU[b+1] of it, and its lse/δ rows start at h·T + CU[b].
    """
    if VARLEN:
        start = tl.load(CU + b).to(tl.int64)
        rows = (tl.load(CU + b + 1) - start).to(tl.int32)
        row_base = (bh % heads).to(tl.int64) * length + start
    else:
        start = b * 0
        rows = length
        row_base = bh.to(tl.int64) * length
    return start, rows, row_base


@triton.jit
def _upto(active, x, otherwise, VARLEN: tl.constexpr):
    """x, or (ragged batches, where this program lies past its sequence's end) ``otherwise``."""
    if VARLEN:
        x = tl.where(active, x, otherwise)
    return x


@triton.jit
def _fwd_stage(acc, l_i, m_i, q, k_base, v_base, bias_base, stride_kn, stride_vn,
               lo, hi, seq_len, qk_scale, offs_m, offs_n, offs_dk, offs_dv,
               D_QK: tl.constexpr, BLOCK_DQK: tl.constexpr, BLOCK_N: tl.constexpr,
               CAUSAL_MASK: tl.constexpr, BOUNDS: tl.constexpr, HAS_BIAS: tl.constexpr,
               FWD_EXP: tl.constexpr, WS: tl.constexpr = False, TMA: tl.constexpr = False):
    """Online-softmax update of (acc, l, m) over key blocks [lo, hi) for one query block.

    Only a BOUNDS or CAUSAL_MASK stage may reach past seq_len; the others load without row masks.
    TMA: k and v tiles come through on-device tensor descriptors (the copy engine, asynchronously).
    The row maximum is taken over unscaled scores (scale > 0), so the scale costs one fused
    multiply-add per score inside the exponential instead of a multiply more.
    """
    if TMA:
        rows = tl.maximum(seq_len, 1)  # rows past the end read as zeros
        k_desc = tl.make_tensor_descriptor(k_base, [rows, D_QK], [stride_kn, 1], [BLOCK_N, BLOCK_DQK])
        v_desc = tl.make_tensor_descriptor(v_base, [rows, offs_dv.shape[0]], [stride_vn, 1],
                                           [BLOCK_N, offs_dv.shape[0]])
    for start_n in tl.range(lo, hi, BLOCK_N, warp_specialize=WS):
        cols = start_n + offs_n
        row_ok = cols < seq_len
        if TMA:
            k = k_desc.load([start_n, 0])
            v = v_desc.load([start_n, 0])
        else:
            k = _load_rows(k_base + cols[:, None] * stride_kn + offs_dk[None, :], row_ok, offs_dk,
                           D_QK, BOUNDS or CAUSAL_MASK)
            v = _load_rows(v_base + cols[:, None] * stride_vn + offs_dv[None, :], row_ok, offs_dv,
                           offs_dv.shape[0], BOUNDS or CAUSAL_MASK)
        qk = tl.dot(q, tl.trans(k))
        if HAS_BIAS:
            qk += tl.load(bias_base + cols, mask=row_ok, other=float("-inf"))[None, :]
        if CAUSAL_MASK:
            qk = tl.where(offs_m[:, None] >= cols[None, :], qk, float("-inf"))
        if BOUNDS:
            qk = tl.where(row_ok[None, :], qk, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1) * qk_scale)
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = _exp2(qk * qk_scale - m_use[:, None], FWD_EXP)
        alpha = tl.math.exp2(m_i - m_use)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    return acc, l_i, m_i


@triton.autotune(configs=_FWD_CONFIGS,
                 key=["tune_len", "D_QK", "D_V", "CAUSAL", "HAS_BIAS", "VARLEN", "FWD_EXP", "TMA"])
@triton.jit
def _fwd_kernel(Q, K, V, Bias, O, LSE, CU, qk_scale, seq_len, heads,
                sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sob, soh, son, sbb, tune_len,
                D_QK: tl.constexpr, D_V: tl.constexpr, BLOCK_DQK: tl.constexpr,
                CAUSAL: tl.constexpr, HAS_BIAS: tl.constexpr, VARLEN: tl.constexpr, FWD_EXP: tl.constexpr,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, WS: tl.constexpr = False,
                TMA: tl.constexpr = False):
    """One program per (batch·head, query block): O = softmax(QKᵀ·scale + bias)·V and its base-2 lse.

    Batch·head is the fast grid axis and query blocks run last-first, so the longest causal rows
    (the last blocks) start first on every head and the short ones fill the tail. A ragged batch's
    programs past their own sequence's end do no work.
    """
    tl.static_assert(BLOCK_M % BLOCK_N == 0, "the causal diagonal stage needs BLOCK_M % BLOCK_N == 0")
    start_m = (tl.num_programs(1) - 1 - tl.program_id(1)) * BLOCK_M
    bh = tl.program_id(0)
    b = (bh // heads).to(tl.int64)
    h = (bh % heads).to(tl.int64)
    first, seq_len, row_base = _sequence(CU, b, bh, heads, seq_len, VARLEN)
    active = start_m < seq_len
    seq_len = _upto(active, seq_len, 0, VARLEN)
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_dk = tl.arange(0, BLOCK_DQK)
    offs_dv = tl.arange(0, D_V)
    q_mask = (offs_m < seq_len)[:, None]
    if BLOCK_DQK != D_QK:
        q_mask = q_mask & (offs_dk[None, :] < D_QK)
    q = tl.load(Q + b * sqb + h * sqh + (first + offs_m[:, None]) * sqn + offs_dk[None, :], mask=q_mask,
                other=0.0)
    k_base = K + b * skb + h * skh + first * skn
    v_base = V + b * svb + h * svh + first * svn
    bias_base = Bias + b * sbb
    acc = tl.zeros([BLOCK_M, D_V], dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    if CAUSAL:
        acc, l_i, m_i = _fwd_stage(acc, l_i, m_i, q, k_base, v_base, bias_base, skn, svn,
                                   0, _upto(active, start_m, 0, VARLEN), seq_len, qk_scale,
                                   offs_m, offs_n, offs_dk, offs_dv,
                                   D_QK, BLOCK_DQK, BLOCK_N, False, False, HAS_BIAS, FWD_EXP, WS, TMA)
        diag_end = _upto(active, tl.minimum(start_m + BLOCK_M, seq_len), start_m, VARLEN)
        acc, l_i, m_i = _fwd_stage(acc, l_i, m_i, q, k_base, v_base, bias_base, skn, svn,
                                   start_m, diag_end, seq_len, qk_scale,
                                   offs_m, offs_n, offs_dk, offs_dv,
                                   D_QK, BLOCK_DQK, BLOCK_N, True, False, HAS_BIAS, FWD_EXP, False, TMA)
    else:
        full = (seq_len // BLOCK_N) * BLOCK_N
        acc, l_i, m_i = _fwd_stage(acc, l_i, m_i, q, k_base, v_base, bias_base, skn, svn,
                                   0, full, seq_len, qk_scale, offs_m, offs_n, offs_dk, offs_dv,
                                   D_QK, BLOCK_DQK, BLOCK_N, False, False, HAS_BIAS, FWD_EXP, WS, TMA)
        acc, l_i, m_i = _fwd_stage(acc, l_i, m_i, q, k_base, v_base, bias_base, skn, svn,
                                   full, seq_len, seq_len, qk_scale, offs_m, offs_n, offs_dk, offs_dv,
                                   D_QK, BLOCK_DQK, BLOCK_N, False, True, HAS_BIAS, FWD_EXP, False, TMA)
    empty = l_i == 0.0
    out = acc / tl.where(empty, 1.0, l_i)[:, None]
    lse = tl.where(empty, float("inf"), m_i + tl.math.log2(tl.where(empty, 1.0, l_i)))
    row_ok = offs_m < seq_len
    tl.store(O + b * sob + h * soh + (first + offs_m[:, None]) * son + offs_dv[None, :],
             out.to(O.dtype.element_ty), mask=row_ok[:, None])
    tl.store(LSE + row_base + offs_m, lse, mask=row_ok)


@triton.jit
def _bwd_stage(dk, dv, k, v, keep, Q, DO, LSE, DELTA, DQ, q_base, do_base, row_base,
               sqn, son, lo, hi, seq_len, qk_scale, sm_scale, offs_n, offs_dk, offs_dv,
               D_QK: tl.constexpr, BLOCK_DQK: tl.constexpr, BLOCK_M: tl.constexpr,
               CAUSAL_MASK: tl.constexpr, HAS_BIAS: tl.constexpr, ATOMIC_DQ: tl.constexpr,
               EXP_MODE: tl.constexpr, MASK_ROWS: tl.constexpr, WS: tl.constexpr = False,
               TMA: tl.constexpr = False):
    """Accumulate dK, dV of one key block over query blocks [lo, hi); with ATOMIC_DQ also add dQ.

    Query rows past seq_len only occur where MASK_ROWS (their lse loads as +inf, so P is 0 there).
    TMA: q and dO tiles come through on-device tensor descriptors (the copy engine, asynchronously).
    """
    if TMA:
        rows = tl.maximum(seq_len, 1)  # rows past the end read as zeros
        q_desc = tl.make_tensor_descriptor(q_base, [rows, D_QK], [sqn, 1], [BLOCK_M, BLOCK_DQK])
        do_desc = tl.make_tensor_descriptor(do_base, [rows, offs_dv.shape[0]], [son, 1],
                                            [BLOCK_M, offs_dv.shape[0]])
    for start_m in tl.range(lo, hi, BLOCK_M, warp_specialize=WS):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        row_ok = offs_m < seq_len
        q_mask = row_ok[:, None]
        if BLOCK_DQK != D_QK:
            q_mask = q_mask & (offs_dk[None, :] < D_QK)
        if TMA:
            q = q_desc.load([start_m, 0])
            do = do_desc.load([start_m, 0])
        else:
            q = _load_rows(q_base + offs_m[:, None] * sqn + offs_dk[None, :], row_ok, offs_dk, D_QK,
                           MASK_ROWS)
            do = _load_rows(do_base + offs_m[:, None] * son + offs_dv[None, :], row_ok, offs_dv,
                            offs_dv.shape[0], MASK_ROWS)
        if MASK_ROWS:
            lse = tl.load(LSE + row_base + offs_m, mask=row_ok, other=float("inf"))
            delta = tl.load(DELTA + row_base + offs_m, mask=row_ok, other=0.0)
        else:
            lse = tl.load(LSE + row_base + offs_m)
            delta = tl.load(DELTA + row_base + offs_m)
        dp_t = tl.dot(v, tl.trans(do))  # issued before the exponentials: tensor cores and MUFU overlap
        p_t = _exp2(tl.dot(k, tl.trans(q)) * qk_scale - lse[None, :], EXP_MODE)
        if CAUSAL_MASK:
            visible = offs_m[None, :] >= offs_n[:, None]
            if HAS_BIAS:
                visible = visible & keep[:, None]
            p_t = tl.where(visible, p_t, 0.0)
        elif HAS_BIAS:
            p_t = tl.where(keep[:, None], p_t, 0.0)
        dv += tl.dot(p_t.to(do.dtype), do)
        ds_t = (p_t * (dp_t - delta[None, :])).to(q.dtype)
        dk += tl.dot(ds_t, q)
        if ATOMIC_DQ:
            dq = tl.dot(tl.trans(ds_t), k) * sm_scale
            # the head-major fp32 buffer's row stride as a constant: the compiler can then vectorise the adds
            tl.atomic_add(DQ + (row_base + offs_m)[:, None] * D_QK + offs_dk[None, :], dq,
                          mask=q_mask, sem="relaxed")
    return dk, dv


@triton.autotune(configs=_BWD_CONFIGS,
                 key=["tune_len", "D_QK", "D_V", "CAUSAL", "HAS_BIAS", "ATOMIC_DQ", "EXP_MODE", "VARLEN",
                      "TMA"],
                 reset_to_zero=["DQ"])
@triton.jit
def _bwd_kernel(Q, K, V, Bias, DO, LSE, DELTA, DQ, DK, DV, CU, qk_scale, sm_scale, seq_len, heads,
                sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sob, soh, son, sbb,
                sdkb, sdkh, sdkn, sdvb, sdvh, sdvn, tune_len,
                D_QK: tl.constexpr, D_V: tl.constexpr, BLOCK_DQK: tl.constexpr,
                CAUSAL: tl.constexpr, HAS_BIAS: tl.constexpr, ATOMIC_DQ: tl.constexpr, EXP_MODE: tl.constexpr,
                VARLEN: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, WS: tl.constexpr = False,
                TMA: tl.constexpr = False):
    """One program per (batch·head, key block): dK, dV in registers; dQ (fp32) atomically if ATOMIC_DQ.

    Key block 0 sees the most causal queries, so key blocks run in order with batch·head the fast axis.
    """
    tl.static_assert(BLOCK_N % BLOCK_M == 0, "the causal diagonal stage needs BLOCK_N % BLOCK_M == 0")
    start_n = tl.program_id(1) * BLOCK_N
    bh = tl.program_id(0)
    b = (bh // heads).to(tl.int64)
    h = (bh % heads).to(tl.int64)
    first, seq_len, row_base = _sequence(CU, b, bh, heads, seq_len, VARLEN)
    seq_len = _upto(start_n < seq_len, seq_len, 0, VARLEN)  # ragged: key blocks past the end: no work
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_dk = tl.arange(0, BLOCK_DQK)
    offs_dv = tl.arange(0, D_V)
    key_ok = offs_n < seq_len
    k_mask = key_ok[:, None]
    if BLOCK_DQK != D_QK:
        k_mask = k_mask & (offs_dk[None, :] < D_QK)
    k = tl.load(K + b * skb + h * skh + (first + offs_n[:, None]) * skn + offs_dk[None, :], mask=k_mask,
                other=0.0)
    v = tl.load(V + b * svb + h * svh + (first + offs_n[:, None]) * svn + offs_dv[None, :],
                mask=key_ok[:, None], other=0.0)
    keep = key_ok
    if HAS_BIAS:
        keep = tl.load(Bias + b * sbb + offs_n, mask=key_ok, other=float("-inf")) == 0.0
    dk = tl.zeros([BLOCK_N, BLOCK_DQK], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, D_V], dtype=tl.float32)
    q_base = Q + b * sqb + h * sqh + first * sqn
    do_base = DO + b * sob + h * soh + first * son
    full = (seq_len // BLOCK_M) * BLOCK_M  # query blocks below this need no row mask
    if CAUSAL:
        dk, dv = _bwd_stage(dk, dv, k, v, keep, Q, DO, LSE, DELTA, DQ, q_base, do_base, row_base,
                            sqn, son, start_n, tl.minimum(start_n + BLOCK_N, seq_len), seq_len,
                            qk_scale, sm_scale,
                            offs_n, offs_dk, offs_dv, D_QK, BLOCK_DQK, BLOCK_M, True, HAS_BIAS, ATOMIC_DQ,
                            EXP_MODE, True, False, TMA)
        lo = start_n + BLOCK_N
    else:
        lo = 0
    dk, dv = _bwd_stage(dk, dv, k, v, keep, Q, DO, LSE, DELTA, DQ, q_base, do_base, row_base,
                        sqn, son, lo, full, seq_len, qk_scale, sm_scale,
                        offs_n, offs_dk, offs_dv, D_QK, BLOCK_DQK, BLOCK_M, False, HAS_BIAS, ATOMIC_DQ,
                        EXP_MODE, False, WS, TMA)
    dk, dv = _bwd_stage(dk, dv, k, v, keep, Q, DO, LSE, DELTA, DQ, q_base, do_base, row_base,
                        sqn, son, tl.maximum(lo, full), seq_len, seq_len, qk_scale, sm_scale,
                        offs_n, offs_dk, offs_dv, D_QK, BLOCK_DQK, BLOCK_M, False, HAS_BIAS, ATOMIC_DQ,
                        EXP_MODE, True, False, TMA)
    tl.store(DK + b * sdkb + h * sdkh + (first + offs_n[:, None]) * sdkn + offs_dk[None, :],
             (dk * sm_scale).to(DK.dtype.element_ty), mask=k_mask)
    tl.store(DV + b * sdvb + h * sdvh + (first + offs_n[:, None]) * sdvn + offs_dv[None, :],
             dv.to(DV.dtype.element_ty), mask=key_ok[:, None])


@triton.jit
def _delta_kernel(O, DO, DELTA, seq_len, heads, sob, soh, son, sdb, sdh, sdn,
                  D_V: tl.constexpr, BLOCK_M: tl.constexpr):
    """δ = rowsum(O ⊙ dO) in float32, one program per (row block, batch·head)."""
    bh = tl.program_id(1)
    b = (bh // heads).to(tl.int64)
    h = (bh % heads).to(tl.int64)
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, D_V)
    row_ok = (offs_m < seq_len)[:, None]
    o = tl.load(O + b * sob + h * soh + offs_m[:, None] * son + offs_d[None, :], mask=row_ok, other=0.0)
    do = tl.load(DO + b * sdb + h * sdh + offs_m[:, None] * sdn + offs_d[None, :], mask=row_ok, other=0.0)
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
    tl.store(DELTA + bh.to(tl.int64) * seq_len + offs_m, delta, mask=offs_m < seq_len)


@triton.jit
def _dq_stage(dq, q, do, lse, delta, k_base, v_base, bias_base, skn, svn, lo, hi, seq_len, qk_scale,
              offs_m, offs_n, offs_dk, offs_dv, D_QK: tl.constexpr, BLOCK_DQK: tl.constexpr,
              BLOCK_N: tl.constexpr, CAUSAL_MASK: tl.constexpr, HAS_BIAS: tl.constexpr,
              EXP_MODE: tl.constexpr, MASK_ROWS: tl.constexpr, TMA: tl.constexpr = False):
    """Accumulate dQ of one query block over key blocks [lo, hi) (P recomputed from the lse).

    Keys past seq_len only occur where MASK_ROWS (they load as zeros, so their P·dP terms vanish).
    TMA: k and v tiles come through on-device tensor descriptors.
    """
    if TMA:
        rows = tl.maximum(seq_len, 1)  # rows past the end read as zeros
        k_desc = tl.make_tensor_descriptor(k_base, [rows, D_QK], [skn, 1], [BLOCK_N, BLOCK_DQK])
        v_desc = tl.make_tensor_descriptor(v_base, [rows, offs_dv.shape[0]], [svn, 1],
                                           [BLOCK_N, offs_dv.shape[0]])
    for start_n in range(lo, hi, BLOCK_N):
        cols = start_n + offs_n
        key_ok = cols < seq_len
        if TMA:
            k = k_desc.load([start_n, 0])
            v = v_desc.load([start_n, 0])
        else:
            k = _load_rows(k_base + cols[:, None] * skn + offs_dk[None, :], key_ok, offs_dk, D_QK, MASK_ROWS)
            v = _load_rows(v_base + cols[:, None] * svn + offs_dv[None, :], key_ok, offs_dv,
                           offs_dv.shape[0], MASK_ROWS)
        p = _exp2(tl.dot(q, tl.trans(k)) * qk_scale - lse[:, None], EXP_MODE)
        if CAUSAL_MASK:
            visible = offs_m[:, None] >= cols[None, :]
            if HAS_BIAS:
                keep = tl.load(bias_base + cols, mask=key_ok, other=float("-inf")) == 0.0
                visible = visible & keep[None, :]
            p = tl.where(visible, p, 0.0)
        elif HAS_BIAS:
            keep = tl.load(bias_base + cols, mask=key_ok, other=float("-inf")) == 0.0
            p = tl.where(keep[None, :], p, 0.0)
        dp = tl.dot(do, tl.trans(v))
        ds = (p * (dp - delta[:, None])).to(k.dtype)
        dq += tl.dot(ds, k)
    return dq


@triton.autotune(configs=_DQ_CONFIGS,
                 key=["tune_len", "D_QK", "D_V", "CAUSAL", "HAS_BIAS", "EXP_MODE", "VARLEN", "TMA"])
@triton.jit
def _dq_kernel(Q, K, V, Bias, DO, LSE, DELTA, DQ, CU, qk_scale, sm_scale, seq_len, heads,
               sqb, sqh, sqn, skb, skh, skn, svb, svh, svn, sob, soh, son, sbb, O, sxb, sxh, sxn,
               sdqb, sdqh, sdqn, tune_len,
               D_QK: tl.constexpr, D_V: tl.constexpr, BLOCK_DQK: tl.constexpr,
               CAUSAL: tl.constexpr, HAS_BIAS: tl.constexpr, EXP_MODE: tl.constexpr, VARLEN: tl.constexpr,
               BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, TMA: tl.constexpr = False):
    """One program per (batch·head, query block, last first): dQ = scale·(P ⊙ (dO·Vᵀ − δ))·K, no atomics.

    δ = rowsum(O ⊙ dO) of the block is computed here and stored for the dK/dV pass that follows.
    """
    tl.static_assert(BLOCK_M % BLOCK_N == 0, "the causal diagonal stage needs BLOCK_M % BLOCK_N == 0")
    start_m = (tl.num_programs(1) - 1 - tl.program_id(1)) * BLOCK_M
    bh = tl.program_id(0)
    b = (bh // heads).to(tl.int64)
    h = (bh % heads).to(tl.int64)
    first, seq_len, row_base = _sequence(CU, b, bh, heads, seq_len, VARLEN)
    active = start_m < seq_len
    seq_len = _upto(active, seq_len, 0, VARLEN)
    offs_m = start_m + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_dk = tl.arange(0, BLOCK_DQK)
    offs_dv = tl.arange(0, D_V)
    row_ok = offs_m < seq_len
    q_mask = row_ok[:, None]
    if BLOCK_DQK != D_QK:
        q_mask = q_mask & (offs_dk[None, :] < D_QK)
    rows = first + offs_m[:, None]
    q = tl.load(Q + b * sqb + h * sqh + rows * sqn + offs_dk[None, :], mask=q_mask, other=0.0)
    do = tl.load(DO + b * sob + h * soh + rows * son + offs_dv[None, :], mask=row_ok[:, None], other=0.0)
    lse = tl.load(LSE + row_base + offs_m, mask=row_ok, other=float("inf"))
    o = tl.load(O + b * sxb + h * sxh + rows * sxn + offs_dv[None, :], mask=row_ok[:, None], other=0.0)
    delta = tl.sum(o.to(tl.float32) * do.to(tl.float32), 1)
    tl.store(DELTA + row_base + offs_m, delta, mask=row_ok)
    k_base = K + b * skb + h * skh + first * skn
    v_base = V + b * svb + h * svh + first * svn
    bias_base = Bias + b * sbb
    dq = tl.zeros([BLOCK_M, BLOCK_DQK], dtype=tl.float32)
    if CAUSAL:
        dq = _dq_stage(dq, q, do, lse, delta, k_base, v_base, bias_base, skn, svn, 0,
                       _upto(active, start_m, 0, VARLEN), seq_len,
                       qk_scale, offs_m, offs_n, offs_dk, offs_dv, D_QK, BLOCK_DQK, BLOCK_N, False, HAS_BIAS,
                       EXP_MODE, False, TMA)
        diag_end = _upto(active, tl.minimum(start_m + BLOCK_M, seq_len), start_m, VARLEN)
        dq = _dq_stage(dq, q, do, lse, delta, k_base, v_base, bias_base, skn, svn, start_m,
                       diag_end, seq_len, qk_scale, offs_m, offs_n, offs_dk, offs_dv,
                       D_QK, BLOCK_DQK, BLOCK_N, True, HAS_BIAS, EXP_MODE, True, TMA)
    else:
        full = (seq_len // BLOCK_N) * BLOCK_N
        dq = _dq_stage(dq, q, do, lse, delta, k_base, v_base, bias_base, skn, svn, 0, full, seq_len,
                       qk_scale, offs_m, offs_n, offs_dk, offs_dv, D_QK, BLOCK_DQK, BLOCK_N, False, HAS_BIAS,
                       EXP_MODE, False, TMA)
        dq = _dq_stage(dq, q, do, lse, delta, k_base, v_base, bias_base, skn, svn, full, seq_len, seq_len,
                       qk_scale, offs_m, offs_n, offs_dk, offs_dv, D_QK, BLOCK_DQK, BLOCK_N, False, HAS_BIAS,
                       EXP_MODE, True, TMA)
    tl.store(DQ + b * sdqb + h * sdqh + rows * sdqn + offs_dk[None, :],
             (dq * sm_scale).to(DQ.dtype.element_ty), mask=q_mask)


def _atomic_dq(length: int, causal: bool = True) -> bool:
    """Whether the backward adds dQ with atomics at this L (forced by ATOMIC_DQ, else by length)."""
    if ATOMIC_DQ is not None:
        return ATOMIC_DQ
    return length >= (ATOMIC_DQ_MIN_LEN if causal else ATOMIC_DQ_MIN_LEN_BIDIR)


def _backward_exp(device: int | None) -> int:
    """The backward's exponential mode: :data:`EXP`, with bf16x2 falling back to fp32 before sm_90."""
    if EXP == EXP_MODES["bf16x2"] and _capability(device) < (9, 0):
        return EXP_MODES["fp32"]
    return EXP


def _tune_len(length: int) -> int:
    """L rounded up to a power of two: the autotuners' key (the kernels never read it).

    Batches of varying length are then tuned once per octave, not once per distinct L.
    """
    return next_pow2(max(length, 16))


def _dqk_block(d_qk: int) -> int:
    """Triton's dot needs an inner width of at least 16 (a power of two)."""
    return max(16, next_pow2(d_qk))


_FWD = CachedLaunch(_fwd_kernel)
_BWD = CachedLaunch(_bwd_kernel)
_DQ = CachedLaunch(_dq_kernel)
_DELTA = CachedLaunch(_delta_kernel)


def _bias(key_padding_mask: Tensor | None, q: Tensor) -> tuple[Tensor, int]:
    """[B, L] fp32 additive key bias (0 keep, -inf pad) and its batch stride; q (unread) if none."""
    if key_padding_mask is None:
        return q, 0
    bias = torch.zeros(key_padding_mask.shape, dtype=torch.float32, device=q.device)
    bias.masked_fill_(key_padding_mask, float("-inf"))
    return bias, bias.stride(0)


class _Layout:
    """How the kernels see one call: padded [B, h, L, d] tensors, or one packed [1, h, T, d] ragged batch.

    ``seqs`` sequences of ``rows`` rows each (ragged: ``rows`` is the longest, and ``cu`` [seqs + 1]
    int32 holds each one's first row); ``length`` is the L axis of the tensors. Ragged batches zero
    the batch strides (sequence b starts at row cu[b] of batch 0).
    """

    def __init__(self, q: Tensor, cu: Tensor | None, max_len: int):
        self.batch, self.heads, self.length, self.d_qk = q.shape
        self.cu, self.varlen = cu, cu is not None
        self.seqs = cu.shape[0] - 1 if self.varlen else self.batch
        self.rows = max_len if self.varlen else self.length
        self.cu_arg = cu if self.varlen else q

    def strides(self, *tensors: Tensor) -> tuple[int, ...]:
        """(batch, head, row) strides of each tensor; batch strides 0 for a ragged batch."""
        out: list[int] = []
        for t in tensors:
            sb, sh, sn = t.stride()[:3]
            out += [0 if self.varlen else sb, sh, sn]
        return tuple(out)


def _forward(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, sbb: int, has_bias: bool,
             causal: bool, scale: float, lay: _Layout, out: Tensor) -> Tensor:
    """Run the forward kernel into ``out``; returns the base-2 lse [B, h, L] (fp32)."""
    heads, length, d_qk = lay.heads, lay.length, lay.d_qk
    lse = torch.empty(lay.batch, heads, length, dtype=torch.float32, device=q.device)

    def grid(meta: dict) -> tuple[int, int]:
        return lay.seqs * heads, cdiv(lay.rows, meta["BLOCK_M"])

    _FWD(grid, q, k, v, bias, out, lse, lay.cu_arg, scale * LOG2E, length, heads,
         *lay.strides(q, k, v, out), sbb, _tune_len(lay.rows),
         D_QK=d_qk, D_V=v.shape[-1], BLOCK_DQK=_dqk_block(d_qk), CAUSAL=causal, HAS_BIAS=has_bias,
         VARLEN=lay.varlen, FWD_EXP=FWD_EXP, **_loads(lay.rows, k, v))
    return lse


def _backward(q: Tensor, k: Tensor, v: Tensor, bias: Tensor, sbb: int, has_bias: bool, out: Tensor,
              lse: Tensor, d_out: Tensor, causal: bool, scale: float, lay: _Layout,
              dk: Tensor, dv: Tensor, dq_into: Tensor | None = None) -> Tensor:
    """dK, dV into ``dk``/``dv``; returns dQ [B, h, L, d_qk], written into ``dq_into`` (any strides, unit
    last) if given, else in q's memory layout by the dQ pass and head-major after atomics. dQ and δ first,
    then dK/dV; or (atomic dQ) δ, then dK/dV with dQ added by fp32 atomics (into a head-major buffer,
    converted after)."""
    heads, length, d_qk = lay.heads, lay.length, lay.d_qk
    seqs, rows = lay.seqs, lay.rows
    d_v = v.shape[-1]
    atomic = _atomic_dq(rows, causal)
    d_out = d_out if d_out.stride(-1) == 1 else d_out.contiguous()
    delta = torch.empty(lay.batch, heads, length, dtype=torch.float32, device=q.device)
    strides = (*lay.strides(q, k, v, d_out), sbb)
    meta = dict(D_QK=d_qk, D_V=d_v, BLOCK_DQK=_dqk_block(d_qk), CAUSAL=causal, HAS_BIAS=has_bias,
                EXP_MODE=_backward_exp(q.device.index), VARLEN=lay.varlen)
    if atomic:  # δ is per row: a ragged batch is one sequence of T rows here
        _DELTA(lambda _: (cdiv(length, 64), lay.batch * heads), out, d_out, delta, length, heads,
               *out.stride()[:3], *d_out.stride()[:3], D_V=d_v, BLOCK_M=64)
        # head-major fp32 (a token-major one made the atomics 5 % slower at 32k: issue 30, round 6)
        dq = torch.zeros(lay.batch, heads, length, d_qk, dtype=torch.float32, device=q.device)
    else:
        dq = _like(q, d_qk, q.dtype) if dq_into is None else dq_into
        _DQ(lambda m: (seqs * heads, cdiv(rows, m["BLOCK_M"])), q, k, v, bias, d_out, lse, delta,
            dq, lay.cu_arg, scale * LOG2E, scale, length, heads, *strides, out, *lay.strides(out),
            *lay.strides(dq), _tune_len(rows), TMA=_tma(rows, k, v), **meta)
    # the autotuner zeroes DQ between trials: with pass2 it gets a scratch tensor, not the finished dQ
    dq_arg = dq if atomic else delta.new_empty(0)
    _BWD(lambda m: (seqs * heads, cdiv(rows, m["BLOCK_N"])), q, k, v, bias, d_out, lse, delta,
         dq_arg, dk, dv, lay.cu_arg, scale * LOG2E, scale, length, heads, *strides,
         *lay.strides(dk, dv), _tune_len(rows), ATOMIC_DQ=atomic, **_loads(rows, q, d_out), **meta)
    if atomic:
        return dq.to(q.dtype) if dq_into is None else dq_into.copy_(dq)
    return dq


def attention_forward(q: Tensor, k: Tensor, v: Tensor, causal: bool, scale: float) -> tuple[Tensor, Tensor]:
    """(out, lse) of an unmasked padded-layout batch, for callers that are their own autograd node (the
    one-node mixer block, :mod:`nanog1.core.fused_block`); q, k [B, h, L, d_qk], v [B, h, L, d_v], any
    strides with a unit last one. ``out`` comes in q's memory layout (token-major stays token-major)."""
    out = _like(q, v.shape[-1], v.dtype)
    return out, _forward(q, k, v, q, 0, False, causal, scale, _Layout(q, None, 0), out)


def attention_backward(d_out: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, causal: bool,
                       scale: float, into: tuple[Tensor, Tensor] | None = None
                       ) -> tuple[Tensor, Tensor, Tensor]:
    """(dq, dk, dv) of :func:`attention_forward`'s call, given its (out, lse) and the output's gradient.

    ``into`` = (dq, dk) [B, h, L, d_qk] tensors (any strides, unit last) the kernels write the gradients
    to, e.g. views of the caller's stacked projection gradient; else new ones in q's/k's layout."""
    dq_into, dk = into if into is not None else (None, _like(k, k.shape[-1], k.dtype))
    dv = _like(q, v.shape[-1], v.dtype)
    dq = _backward(q, k, v, q, 0, False, out, lse, d_out, causal, scale, _Layout(q, None, 0), dk, dv, dq_into)
    return dq, dk, dv


class RoutingAttention(torch.autograd.Function):
    """softmax(q·kᵀ·scale, causal / key-padded)·v with q, k [B, h, L, d_qk] and v [B, h or 1, L, d_v].

    A one-head v (SAVO's shared Q-value) is read by every head through a zero head stride, and its
    gradient is the head sum, taken here rather than by an autograd expand node (host time per step).
    With ``cu_seqlens`` the batch is ragged: B = 1, the L axis packs sequences back to back, sequence
    i holding rows cu_seqlens[i]..cu_seqlens[i+1] (int32), none longer than ``max_len``; attention
    stays inside each sequence. Outputs and gradients come in q's/v's memory layout (the packed
    token-major [T, h, d] layout of a projection stays free to merge back to [T, h·d]), except dQ
    after fp32 atomics, which is head-major (a token-major atomic buffer is slower).
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None,
                causal: bool, scale: float, cu_seqlens: Tensor | None = None, max_len: int = 0) -> Tensor:
        bias, sbb = _bias(key_padding_mask, q)
        ctx.shared_v = v.shape[1] != q.shape[1]
        if ctx.shared_v:
            v = v.expand(-1, q.shape[1], -1, -1)
        lay = _Layout(q, cu_seqlens, max_len)
        out = _like(q, v.shape[-1], v.dtype)
        lse = _forward(q, k, v, bias, sbb, key_padding_mask is not None, causal, scale, lay, out)
        ctx.save_for_backward(q, k, v, bias, out, lse, cu_seqlens)
        ctx.meta = (sbb, key_padding_mask is not None, causal, scale, max_len)
        return out

    @staticmethod
    def backward(ctx, d_out: Tensor):
        q, k, v, bias, out, lse, cu_seqlens = ctx.saved_tensors
        sbb, has_bias, causal, scale, max_len = ctx.meta
        lay = _Layout(q, cu_seqlens, max_len)
        dk, dv = _like(k, k.shape[-1], k.dtype), _like(q, v.shape[-1], v.dtype)
        dq = _backward(q, k, v, bias, sbb, has_bias, out, lse, d_out, causal, scale, lay, dk, dv)
        if ctx.shared_v:
            dv = dv.sum(1, keepdim=True)
        return dq, dk, dv, None, None, None, None, None


def _like(t: Tensor, width: int, dtype: torch.dtype) -> Tensor:
    """An empty [B, h, L, width] tensor in t's axis order (token-major stays token-major)."""
    b, h, length, _ = t.shape
    if t.stride(1) < t.stride(2):  # heads inner, rows outer: [B, L, h, d] memory, a packed projection
        return torch.empty(b, length, h, width, dtype=dtype, device=t.device).transpose(1, 2)
    return torch.empty(b, h, length, width, dtype=dtype, device=t.device)


def routing_attention_triton(q: Tensor, k: Tensor, v: Tensor, causal: bool,
                             key_padding_mask: Tensor | None, scale: float,
                             cu_seqlens: Tensor | None = None, max_len: int = 0) -> Tensor:
    """Run :class:`RoutingAttention`; v may have one head (it is broadcast to q's heads by stride)."""
    return RoutingAttention.apply(q, k, v, key_padding_mask, causal, scale, cu_seqlens, max_len)
