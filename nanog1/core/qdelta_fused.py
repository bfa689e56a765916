"""Fused Triton kernels for chunked Q-Delta, forward and backward (the GPU path of the mixer).

Same algebra as `qdelta_chunk` (arXiv 2606.08804, App. D; notation of that module's docstring), with
every chunk-parallel step in one kernel instead of a dozen PyTorch ops. Per chunk of C = 64 steps:

    forward   _prep:  G = cumsum g, R = K + diag(λ)Q, M = strict_lower(diag(β)(RKᵀ ⊙ e^{G_t−G_i})),
                      T = (I + M)⁻¹ by forward substitution, W = T diag(βγ)R, U′ = T diag(β)V
              _state: (sequential over chunks) V̂ = U′ − W h, h ← γ_C h + K̃ᵀ V̂
              _out:   O = diag(γ) Q h + (QKᵀ ⊙ e^{G_t−G_i})_{i≤t} V̂
    backward  _dv_local: Pᵀ dO;  _bwd_state (reverse): dV̂ = Pᵀ dO + K̃ dh′, dh = γ_C dh′ + (γQ)ᵀdO − WᵀdV̂
              _grads: dQ, dK, dV, dβ, dλ, dg of one chunk from T, h, dh′, V̂, dV̂, dO.

The layout follows flash-linear-attention's Gated DeltaNet kernels (which this learns from and is
measured against), written for head-first [B, h, L, d] tensors. Transposes of tensor-core results are
never taken in registers (Triton 3.4–3.7.0 miscompiles `tl.trans` of a dot result on Hopper,
fla-org/flash-linear-attention#640): such products are recomputed transposed or round-tripped through
a scratch tile. Import only where CUDA (or the interpreter) and Triton are present.
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch import Tensor

from nanog1.core.kernels.launch import cdiv, next_pow2
from nanog1.core.qdelta_reference import mask_gates, zero_padded

CHUNK = 64
MAX_DIM = 128  # widest d_k the one-tile kernels take (bf16/fp16 past 64); d_v: any, in VALUE_BLOCK columns
VALUE_BLOCK = 64  # widest d_v one launch holds; wider values run as column blocks (`_value_blocks`)
WIDE_OPTS = dict(num_warps=8, num_stages=1)  # launch options of the chunk kernels when d_k > 64
_INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

STATE_BV = 16  # value columns per program of the sequential pass (16 beat 32 and 64 at 8k–64k, run 15)
# Fixed launch configs (4 warps, 3 stages): under Triton 3.6's autotuner these kernels hit illegal memory
# accesses on the H100 while every candidate config alone matched the float64 recurrence (run 14).


@triton.jit
def _mm(a, b, DT: tl.constexpr, PREC: tl.constexpr):
    """a @ b on tensor cores with operands in DT ("fp32", "bf16" or "fp16"), fp32 accumulation."""
    if DT == "bf16":
        return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16))
    elif DT == "fp16":
        return tl.dot(a.to(tl.float16), b.to(tl.float16))
    else:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision=PREC)


@triton.jit
def _rows(ptr, t, tm, cols, width):
    """Load rows t (masked by tm) and columns cols (< width) of a row-major [*, width] tensor as fp32."""
    return tl.load(ptr + t[:, None] * width + cols[None, :],
                   mask=tm[:, None] & (cols[None, :] < width), other=0.0).to(tl.float32)


@triton.jit
def _decay(G, INCL: tl.constexpr, C: tl.constexpr):
    """e^{G_t − G_i} on (t ≥ i if INCL else t > i), 0 elsewhere: [C, C]."""
    rc = tl.arange(0, C)
    if INCL:
        keep = rc[:, None] >= rc[None, :]
    else:
        keep = rc[:, None] > rc[None, :]
    return tl.exp(tl.where(keep, G[:, None] - G[None, :], float("-inf")))


@triton.jit
def _chunk(q, k, L, K, C: tl.constexpr, BK: tl.constexpr):
    """This program's chunk n, batch·head bh, rows t (valid where tm) and its q, k tiles in fp32."""
    n = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    t = n * C + tl.arange(0, C)
    tm = t < L
    rk = tl.arange(0, BK)
    return n, bh, t, tm, _rows(q + bh * L * K, t, tm, rk, K), _rows(k + bh * L * K, t, tm, rk, K)


@triton.jit
def _prep_kernel(q, k, v, beta, lam, g, G_out, T_out, W_out, U_out, L, K, V, N,
                 C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                 DT: tl.constexpr, PREC: tl.constexpr):
    """Per chunk: cumulative gates G, T = (I + M)⁻¹ (fp32), W = T diag(βγ)R and U′ = T diag(β)V."""
    n, bh, t, tm, q_c, k_c = _chunk(q, k, L, K, C, BK)
    rc = tl.arange(0, C)
    rk = tl.arange(0, BK)
    rv = tl.arange(0, BV)
    v_c = _rows(v + bh * L * V, t, tm, rv, V)
    b = tl.load(beta + bh * L + t, mask=tm, other=0.0).to(tl.float32)
    lm = tl.load(lam + bh * L + t, mask=tm, other=0.0).to(tl.float32)
    G = tl.cumsum(tl.load(g + bh * L + t, mask=tm, other=0.0).to(tl.float32), 0)
    r = k_c + lm[:, None] * q_c
    m = b[:, None] * _decay(G, False, C) * _mm(r, tl.trans(k_c), DT, PREC)
    t_base = T_out + (bh * N + n) * C * C
    cc = rc[:, None] * C + rc[None, :]
    tl.store(t_base + cc, m)
    tl.debug_barrier()
    # Forward substitution, one row at a time: T_i = e_i − Σ_{j<i} M_ij T_j (rows j < i are final).
    t_inv = tl.where(rc[:, None] == rc[None, :], 1.0, 0.0)
    for i in range(1, C):
        a = -tl.load(t_base + i * C + rc)
        row = tl.sum(a[:, None] * t_inv, 0) + tl.where(rc == i, 1.0, 0.0)
        t_inv = tl.where(rc[:, None] == i, row[None, :], t_inv)
    tl.debug_barrier()
    tl.store(t_base + cc, t_inv)
    w = _mm(t_inv, (b * tl.exp(G))[:, None] * r, DT, PREC)
    u = _mm(t_inv, b[:, None] * v_c, DT, PREC)
    tl.store(G_out + bh * N * C + t, G)
    tl.store(W_out + (bh * N * C + t[:, None]) * K + rk[None, :], w, mask=rk[None, :] < K)
    tl.store(U_out + (bh * N * C + t[:, None]) * V + rv[None, :], u, mask=rv[None, :] < V)


@triton.jit
def _state_kernel(k, q, G, W, X, Y, x0, H_out, Z_out, final, L, K, V, N,
                  C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                  REVERSE: tl.constexpr, HAS_X0: tl.constexpr, DT: tl.constexpr, PREC: tl.constexpr):
    """The sequential pass over chunks, one program per (value block, batch·head).

    Forward (X = U′): store h_n, Z = V̂ = U′ − W h_n, h ← γ_C h + K̃ᵀ V̂.
    Reverse (X = Pᵀ dO, Y = dO): store dh′_n, Z = dV̂ = X + K̃ dh′, dh′ ← γ_C dh′ + (γQ)ᵀ Y − Wᵀ dV̂.
    """
    iv = tl.program_id(0)
    bh = tl.program_id(1).to(tl.int64)
    rc = tl.arange(0, C)
    rk = tl.arange(0, BK)
    rv = iv * BV + tl.arange(0, BV)
    mk, mv = rk < K, rv < V
    kv_off = rk[:, None] * V + rv[None, :]
    kv_mask = mk[:, None] & mv[None, :]
    if HAS_X0:
        h = tl.load(x0 + bh * K * V + kv_off, mask=kv_mask, other=0.0).to(tl.float32)
    else:
        h = tl.zeros([BK, BV], dtype=tl.float32)
    for step in range(N):
        if REVERSE:
            n = N - 1 - step
        else:
            n = step
        t = n * C + rc
        tm = t < L
        tl.store(H_out + (bh * N + n) * K * V + kv_off, h.to(H_out.dtype.element_ty), mask=kv_mask)
        G_c = tl.load(G + bh * N * C + t)
        G_l = tl.load(G + bh * N * C + n * C + C - 1)
        k_t = _rows(k + bh * L * K, t, tm, rk, K) * tl.exp(G_l - G_c)[:, None]
        w = tl.load(W + (bh * N * C + t[:, None]) * K + rk[None, :], mask=mk[None, :], other=0.0)
        zv_off = (bh * N * C + t[:, None]) * V + rv[None, :]
        x = tl.load(X + zv_off, mask=mv[None, :], other=0.0).to(tl.float32)
        if REVERSE:
            z = x + _mm(k_t, h, DT, PREC)
            tl.store(Z_out + zv_off, z.to(Z_out.dtype.element_ty), mask=mv[None, :])
            q_g = _rows(q + bh * L * K, t, tm, rk, K) * tl.exp(G_c)[:, None]
            dy = _rows(Y + bh * L * V, t, tm, rv, V)
            h = tl.exp(G_l) * h + _mm(tl.trans(q_g), dy, DT, PREC) - _mm(tl.trans(w), z, DT, PREC)
        else:
            z = x - _mm(w, h, DT, PREC)
            tl.store(Z_out + zv_off, z.to(Z_out.dtype.element_ty), mask=mv[None, :])
            h = tl.exp(G_l) * h + _mm(tl.trans(k_t), z, DT, PREC)
    tl.store(final + bh * K * V + kv_off, h, mask=kv_mask)


@triton.jit
def _out_kernel(q, k, G, H, VN, Y, out, L, K, V, N,
                C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                DV_LOCAL: tl.constexpr, DT: tl.constexpr, PREC: tl.constexpr):
    """Forward outputs O = diag(γ) Q h + (QKᵀ ⊙ decay) V̂, or (DV_LOCAL) the local value adjoint Pᵀ dO."""
    n, bh, t, tm, q_c, k_c = _chunk(q, k, L, K, C, BK)
    rc = tl.arange(0, C)
    rk = tl.arange(0, BK)
    rv = tl.arange(0, BV)
    mv = rv < V
    G_c = tl.load(G + bh * N * C + t)
    if DV_LOCAL:
        # Pᵀ computed as K Qᵀ ⊙ decayᵀ (no register transpose of a dot result).
        keep = rc[None, :] >= rc[:, None]
        decay_t = tl.exp(tl.where(keep, G_c[None, :] - G_c[:, None], float("-inf")))
        p_t = _mm(k_c, tl.trans(q_c), DT, PREC) * decay_t
        dy = _rows(Y + bh * L * V, t, tm, rv, V)
        res = _mm(p_t, dy, DT, PREC)
        tl.store(out + (bh * N * C + t[:, None]) * V + rv[None, :], res, mask=mv[None, :])
    else:
        h = tl.load(H + (bh * N + n) * K * V + rk[:, None] * V + rv[None, :],
                    mask=(rk[:, None] < K) & mv[None, :], other=0.0)
        vn = tl.load(VN + (bh * N * C + t[:, None]) * V + rv[None, :], mask=mv[None, :], other=0.0)
        p = _mm(q_c, tl.trans(k_c), DT, PREC) * _decay(G_c, True, C)
        res = tl.exp(G_c)[:, None] * _mm(q_c, h, DT, PREC) + _mm(p, vn, DT, PREC)
        tl.store(out + (bh * L + t[:, None]) * V + rv[None, :], res, mask=tm[:, None] & mv[None, :])


@triton.jit
def _grads_kernel(q, k, v, beta, lam, G, T, H, DH, VN, DVN, DO, SCR,
                  dq, dk, dv, dbeta, dlam, dg, L, K, V, N,
                  C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
                  DT: tl.constexpr, PREC: tl.constexpr):
    """All parameter gradients of one chunk (see the module docstring for the forward they invert)."""
    n, bh, t, tm, q_c, k_c = _chunk(q, k, L, K, C, BK)
    rc = tl.arange(0, C)
    rk = tl.arange(0, BK)
    rv = tl.arange(0, BV)
    kv_off = (bh * N + n) * K * V + rk[:, None] * V + rv[None, :]
    kv_mask = (rk[:, None] < K) & (rv[None, :] < V)
    cv_off = (bh * N * C + t[:, None]) * V + rv[None, :]
    cv_mask = rv[None, :] < V
    v_c = _rows(v + bh * L * V, t, tm, rv, V)
    do = _rows(DO + bh * L * V, t, tm, rv, V)
    b = tl.load(beta + bh * L + t, mask=tm, other=0.0).to(tl.float32)
    lm = tl.load(lam + bh * L + t, mask=tm, other=0.0).to(tl.float32)
    G_c = tl.load(G + bh * N * C + t)
    G_l = tl.load(G + bh * N * C + n * C + C - 1)
    h = tl.load(H + kv_off, mask=kv_mask, other=0.0).to(tl.float32)
    dh = tl.load(DH + kv_off, mask=kv_mask, other=0.0).to(tl.float32)
    vn = tl.load(VN + cv_off, mask=cv_mask, other=0.0).to(tl.float32)
    dvn = tl.load(DVN + cv_off, mask=cv_mask, other=0.0).to(tl.float32)
    t_base = T + (bh * N + n) * C * C
    t_inv_t = tl.load(t_base + rc[None, :] * C + rc[:, None])
    gamma = tl.exp(G_c)
    r = k_c + lm[:, None] * q_c

    # Outputs O = diag(γ) Q h + (QKᵀ ⊙ D) V̂.
    d_s = _mm(do, tl.trans(vn), DT, PREC) * _decay(G_c, True, C)
    z = d_s * _mm(q_c, tl.trans(k_c), DT, PREC)
    do_h = _mm(do, tl.trans(h), DT, PREC)
    d_q = gamma[:, None] * do_h + _mm(d_s, k_c, DT, PREC)
    d_G = gamma * tl.sum(q_c * do_h, 1) + tl.sum(z, 1) - tl.sum(z, 0)
    # State update h′ = γ_C h + K̃ᵀ V̂, K̃ = diag(e^{G_C − G_i}) K.
    scale = tl.exp(G_l - G_c)
    d_kt = _mm(vn, tl.trans(dh), DT, PREC)
    d_k = scale[:, None] * d_kt
    z_t = scale * tl.sum(k_c * d_kt, 1)
    d_G -= z_t
    d_G_last = tl.sum(z_t, 0) + tl.exp(G_l) * tl.sum(tl.sum(h * dh, 1), 0)
    # V̂ = U′ − W h with W = T diag(βγ) R, U′ = T diag(β) V, T = (I + M)⁻¹.
    b_r = (b * gamma)[:, None] * r
    d_w = -_mm(dvn, tl.trans(h), DT, PREC)
    d_t = _mm(d_w, tl.trans(b_r), DT, PREC) + _mm(dvn, tl.trans(b[:, None] * v_c), DT, PREC)
    d_br = _mm(t_inv_t, d_w, DT, PREC)
    d_bv = _mm(t_inv_t, dvn, DT, PREC)
    decay = _decay(G_c, False, C)
    d_m = -_mm(_mm(t_inv_t, d_t, DT, PREC), t_inv_t, DT, PREC) * decay  # zero on and above the diagonal
    rk_t = _mm(r, tl.trans(k_c), DT, PREC)
    d_rk = b[:, None] * d_m
    z_m = d_rk * rk_t
    d_G += tl.sum(z_m, 1) - tl.sum(z_m, 0) + tl.sum(d_br * b_r, 1)
    d_b = tl.sum(d_m * rk_t, 1) + gamma * tl.sum(d_br * r, 1) + tl.sum(d_bv * v_c, 1)
    d_r = _mm(d_rk, k_c, DT, PREC) + (b * gamma)[:, None] * d_br
    # Transposed products through a scratch tile (see the module docstring).
    s_base = SCR + (bh * N + n) * 2 * C * C
    cc = rc[:, None] * C + rc[None, :]
    tl.store(s_base + cc, d_s)
    tl.store(s_base + C * C + cc, d_rk)
    tl.debug_barrier()
    d_s_t = tl.load(s_base + rc[None, :] * C + rc[:, None])
    d_rk_t = tl.load(s_base + C * C + rc[None, :] * C + rc[:, None])
    d_k += _mm(d_s_t, q_c, DT, PREC) + _mm(d_rk_t, r, DT, PREC) + d_r
    d_q += lm[:, None] * d_r
    d_l = tl.sum(d_r * q_c, 1)
    d_G += tl.where(rc == C - 1, d_G_last, 0.0)
    d_g = tl.sum(d_G, 0) - tl.cumsum(d_G, 0) + d_G  # G = cumsum g ⇒ dg = reverse cumsum of dG
    ck_mask = tm[:, None] & (rk[None, :] < K)
    tl.store(dq + (bh * L + t[:, None]) * K + rk[None, :], d_q, mask=ck_mask)
    tl.store(dk + (bh * L + t[:, None]) * K + rk[None, :], d_k, mask=ck_mask)
    tl.store(dv + (bh * L + t[:, None]) * V + rv[None, :], b[:, None] * d_bv, mask=tm[:, None] & cv_mask)
    tl.store(dbeta + bh * L + t, d_b, mask=tm)
    tl.store(dlam + bh * L + t, d_l, mask=tm)
    tl.store(dg + bh * L + t, d_g, mask=tm)


def _dtypes(x: Tensor) -> tuple[str, str]:
    """Tensor-core operand dtype and fp32 dot precision for inputs of x's dtype."""
    if x.dtype == torch.bfloat16:
        return "bf16", "tf32"
    if x.dtype == torch.float16:
        return "fp16", "tf32"
    if _INTERPRET:
        return "fp32", "ieee"
    return "fp32", "tf32x3" if torch.get_float32_matmul_precision() == "highest" else "tf32"


def _pow2(n: int) -> int:
    return max(16, next_pow2(n))


def _wide(dk: int) -> dict:
    """Launch options of the chunk kernels: 8 warps and one stage for d_k > 64 (the tiles double)."""
    return WIDE_OPTS if dk > 64 and not _INTERPRET else {}


def _state_grid(dv: int, bh: int) -> tuple[int, int]:
    """Grid of the sequential pass: (value blocks, batch·head)."""
    return cdiv(dv, STATE_BV), bh


def _forward(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, lam: Tensor, g: Tensor, h0: Tensor | None):
    b, nh, length, dk = q.shape
    dv = v.shape[-1]
    bh, n = b * nh, cdiv(length, CHUNK)
    dt, prec = _dtypes(q)
    f32 = dict(device=q.device, dtype=torch.float32)
    G = torch.empty(bh, n * CHUNK, **f32)
    T = torch.empty(bh, n, CHUNK, CHUNK, **f32)
    W = q.new_empty(bh, n * CHUNK, dk)
    U = q.new_empty(bh, n * CHUNK, dv)
    consts = dict(C=CHUNK, BK=_pow2(dk), DT=dt, PREC=prec)
    wide = _wide(dk)
    _prep_kernel[(n, bh)](q, k, v, beta, lam, g, G, T, W, U, length, dk, dv, n, BV=_pow2(dv), **consts,
                          **wide)
    H = q.new_empty(bh, n, dk, dv)
    VN = q.new_empty(bh, n * CHUNK, dv)
    final = torch.empty(bh, dk, dv, **f32)
    _state_kernel[_state_grid(dv, bh)](
        k, q, G, W, U, U, h0 if h0 is not None else final, H, VN, final, length, dk, dv, n,
        BV=STATE_BV, REVERSE=False, HAS_X0=h0 is not None, **consts)
    o = torch.empty_like(v)
    _out_kernel[(n, bh)](q, k, G, H, VN, VN, o, length, dk, dv, n, BV=_pow2(dv), DV_LOCAL=False, **consts,
                         **wide)
    return o, final.view(b, nh, dk, dv), (G, T, W, H, VN)


def _backward(q, k, v, beta, lam, saved, d_o: Tensor, d_final: Tensor | None):
    G, T, W, H, VN = saved
    b, nh, length, dk = q.shape
    dv = v.shape[-1]
    bh, n = b * nh, cdiv(length, CHUNK)
    dt, prec = _dtypes(q)
    consts = dict(C=CHUNK, BK=_pow2(dk), DT=dt, PREC=prec)
    wide = _wide(dk)
    d_o = d_o.contiguous()
    dvl = torch.empty(bh, n * CHUNK, dv, device=q.device, dtype=torch.float32)
    _out_kernel[(n, bh)](q, k, G, H, VN, d_o, dvl, length, dk, dv, n, BV=_pow2(dv), DV_LOCAL=True, **consts,
                         **wide)
    DH = torch.empty_like(H)
    DVN = torch.empty_like(VN)
    d_h0 = torch.empty(bh, dk, dv, device=q.device, dtype=torch.float32)
    has_final = d_final is not None
    _state_kernel[_state_grid(dv, bh)](
        k, q, G, W, dvl, d_o, d_final.contiguous() if has_final else d_h0, DH, DVN, d_h0, length, dk, dv, n,
        BV=STATE_BV, REVERSE=True, HAS_X0=has_final, **consts)
    scratch = torch.empty(bh, n, 2, CHUNK, CHUNK, device=q.device, dtype=torch.float32)
    grads = [torch.empty_like(x) for x in (q, k, v)]
    gates = [torch.empty(bh, length, device=q.device, dtype=torch.float32) for _ in range(3)]
    _grads_kernel[(n, bh)](q, k, v, beta, lam, G, T, H, DH, VN, DVN, d_o, scratch, *grads, *gates,
                           length, dk, dv, n, BV=_pow2(dv), **consts, **wide)
    return grads, gates, d_h0.view(b, nh, dk, dv)


class _QDeltaFused(torch.autograd.Function):
    """Autograd wrapper over the fused forward and backward kernels."""

    @staticmethod
    def forward(ctx, q, k, v, beta, lam, g, h0):
        ins = [x.contiguous() for x in (q, k, v, beta, lam, g)]
        o, final, saved = _forward(*ins, h0.contiguous() if h0 is not None else None)
        ctx.save_for_backward(*ins[:5], *saved)
        ctx.dtypes = (beta.dtype, lam.dtype, g.dtype, None if h0 is None else h0.dtype)
        return o, final

    @staticmethod
    def backward(ctx, d_o, d_final):
        q, k, v, beta, lam, *saved = ctx.saved_tensors
        d_o = torch.zeros_like(v) if d_o is None else d_o
        (dq, dk, dv), gates, d_h0 = _backward(q, k, v, beta, lam, saved, d_o, d_final)
        shape = beta.shape
        d_beta, d_lam, d_g = (x.view(shape).to(dt) for x, dt in zip(gates, ctx.dtypes[:3], strict=True))
        d_h0 = None if ctx.dtypes[3] is None else d_h0.to(ctx.dtypes[3])
        return dq, dk, dv, d_beta, d_lam, d_g, d_h0


def fused_supported(q: Tensor, v: Tensor) -> bool:
    """True where the fused kernels apply: CUDA (or the interpreter), any d_v, d_k ≤ 64, or d_k ≤ 128
    with bf16/fp16 inputs (fp32 tiles at d_k = 128 need 295 KB of shared memory, over the H100's 227 KB:
    measured 2026-12-06; those take the chunked path)."""
    dk = q.shape[-1]
    narrow_enough = dk <= 64 or (dk <= MAX_DIM and (q.dtype != torch.float32 or _INTERPRET))
    return (q.is_cuda or _INTERPRET) and narrow_enough and \
        q.dtype in (torch.float32, torch.float16, torch.bfloat16)


def _value_blocks(q: Tensor, k: Tensor, v: Tensor, beta: Tensor, lam: Tensor, g: Tensor,
                  h0: Tensor | None) -> tuple[Tensor, Tensor]:
    """The fused op over d_v > VALUE_BLOCK, one launch set per block of value columns.

    The recurrence is separable in the state's value columns: e = v − (k + λq)ᵀh, h ← e^g h + β k eᵀ
    and o = qᵀh each act on column j of h [d_k, d_v] alone. So blocks of columns run independently
    and are concatenated; autograd sums the shared q, k and gates' gradients over the blocks.
    """
    dv = v.shape[-1]
    n_blocks = cdiv(dv, VALUE_BLOCK)
    width = cdiv(dv, n_blocks)  # equal blocks (d_v = 128: two of 64)
    outs, finals = [], []
    for start in range(0, dv, width):
        cols = slice(start, min(start + width, dv))
        o, final = _QDeltaFused.apply(q, k, v[..., cols], beta, lam, g, None if h0 is None else h0[..., cols])
        outs.append(o)
        finals.append(final)
    return torch.cat(outs, -1), torch.cat(finals, -1)


def qdelta_fused(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, lam: Tensor, g: Tensor,
    initial_state: Tensor | None = None,
    pad_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Chunked Q-Delta on the fused kernels (chunk 64); same contract as `qdelta_chunk.qdelta_chunked`.

    q, k, v keep their dtype: bf16/fp16 products run on tensor cores with fp32 accumulation, while the
    gates, decays, the inverse T and the running state stay in fp32 (as in fla's Gated DeltaNet); fp32
    inputs use 3×TF32 products at PyTorch's default matmul precision, TF32 under 'high'.
    Returns (o [B, h, L, d_v] in v's dtype, final state [B, h, d_k, d_v] in fp32).
    """
    if not fused_supported(q, v):
        raise ValueError(f"fused Q-Delta needs CUDA tensors with d_k <= 64 (<= {MAX_DIM} in bf16/fp16); got "
                         f"{q.device} {tuple(q.shape)} / {tuple(v.shape)}")
    beta, g = mask_gates(beta, g, pad_mask)
    if v.shape[-1] > VALUE_BLOCK:
        o, final = _value_blocks(q, k, v, beta, lam, g, initial_state)
    else:
        o, final = _QDeltaFused.apply(q, k, v, beta, lam, g, initial_state)
    return zero_padded(o, pad_mask), final
