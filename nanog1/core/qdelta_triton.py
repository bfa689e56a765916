"""Triton kernel for the sequential part of chunked Q-Delta: the chunk-to-chunk state pass.

`qdelta_chunk` splits Q-Delta (arXiv 2606.08804, App. D) into chunk-parallel matrix products and
one sequential recurrence over chunks, h_{n+1} = γ_n h_n + K̃_nᵀ (U′_n − W_n h_n). This module runs
that recurrence on the GPU, one program per (batch·head, block of value columns), the state held
in registers in float32; its backward is the same kernel run in reverse on the adjoint,
λ_n = ∂h_n + γ_n λ_{n+1} − W_nᵀ K̃_n λ_{n+1}, after which every parameter gradient is again a
chunk-parallel product. Import only where CUDA and Triton are present: CPU paths never load it.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _chunk_scan_kernel(
    m_ptr, p_ptr, b_ptr, e_ptr, gl_ptr, x0_ptr, states_ptr, xn_ptr,
    N, DK, DV,
    C: tl.constexpr, BK: tl.constexpr, BV: tl.constexpr,
    REVERSE: tl.constexpr, HAS_B: tl.constexpr, HAS_E: tl.constexpr, EXACT: tl.constexpr,
):
    """x_{next} = γ_n x + P_nᵀ (B_n − M_n x) + E_n over chunks n, storing x before each update."""
    i_v = tl.program_id(0)
    i_bh = tl.program_id(1).to(tl.int64)
    rc = tl.arange(0, C)
    rk = tl.arange(0, BK)
    rv = i_v * BV + tl.arange(0, BV)
    mk = rk < DK
    mv = rv < DV
    x_off = rk[:, None] * DV + rv[None, :]
    x_mask = mk[:, None] & mv[None, :]
    x = tl.load(x0_ptr + i_bh * DK * DV + x_off, mask=x_mask, other=0.0).to(tl.float32)
    for step in range(N):
        if REVERSE:
            n = N - 1 - step
        else:
            n = step
        chunk = i_bh * N + n
        ck_off = chunk * C * DK + rc[:, None] * DK + rk[None, :]
        m_tile = tl.load(m_ptr + ck_off, mask=mk[None, :], other=0.0)
        p_tile = tl.load(p_ptr + ck_off, mask=mk[None, :], other=0.0)
        tl.store(states_ptr + chunk * DK * DV + x_off, x, mask=x_mask)
        if EXACT:
            t = -tl.dot(m_tile, x.to(m_tile.dtype), input_precision="tf32x3")
        else:
            t = -tl.dot(m_tile, x.to(m_tile.dtype))
        if HAS_B:
            b_off = chunk * C * DV + rc[:, None] * DV + rv[None, :]
            t += tl.load(b_ptr + b_off, mask=mv[None, :], other=0.0).to(tl.float32)
        decay = tl.load(gl_ptr + chunk).to(tl.float32)
        if EXACT:
            x = decay * x + tl.dot(tl.trans(p_tile), t.to(p_tile.dtype), input_precision="tf32x3")
        else:
            x = decay * x + tl.dot(tl.trans(p_tile), t.to(p_tile.dtype))
        if HAS_E:
            x += tl.load(e_ptr + chunk * DK * DV + x_off, mask=x_mask, other=0.0).to(tl.float32)
    tl.store(xn_ptr + i_bh * DK * DV + x_off, x, mask=x_mask)


def _launch(
    m: Tensor, p: Tensor, b: Tensor | None, e: Tensor | None, gamma_last: Tensor, x0: Tensor, reverse: bool
) -> tuple[Tensor, Tensor]:
    """Run the scan kernel; returns (x before each chunk [B, h, N, d_k, d_v], final x), both float32."""
    batch, heads, n_chunks, chunk, dk = m.shape
    dv = x0.shape[-1]
    m, p, gamma_last, x0 = m.contiguous(), p.contiguous(), gamma_last.contiguous(), x0.contiguous()
    b = b.contiguous() if b is not None else None
    e = e.contiguous() if e is not None else None
    states = torch.empty(batch, heads, n_chunks, dk, dv, device=m.device, dtype=torch.float32)
    final = torch.empty(batch, heads, dk, dv, device=m.device, dtype=torch.float32)
    block_k = max(16, triton.next_power_of_2(dk))
    block_v = min(32, max(16, triton.next_power_of_2(dv)))
    grid = (triton.cdiv(dv, block_v), batch * heads)
    _chunk_scan_kernel[grid](
        m, p, b if b is not None else m, e if e is not None else states, gamma_last, x0, states, final,
        n_chunks, dk, dv,
        C=chunk, BK=block_k, BV=block_v,
        REVERSE=reverse, HAS_B=b is not None, HAS_E=e is not None,
        EXACT=m.dtype == torch.float32 and torch.get_float32_matmul_precision() == "highest",
    )
    return states, final


class _TritonScan(torch.autograd.Function):
    """Autograd wrapper: forward scan, reverse adjoint scan, then chunk-parallel parameter gradients."""

    @staticmethod
    def forward(ctx, w: Tensor, u: Tensor, k_tilde: Tensor, gamma_last: Tensor, h0: Tensor):
        states, final = _launch(w, k_tilde, u, None, gamma_last, h0, reverse=False)
        ctx.save_for_backward(w, u, k_tilde, gamma_last, states)
        ctx.h0_dtype = h0.dtype
        return states, final

    @staticmethod
    def backward(ctx, d_states: Tensor | None, d_final: Tensor | None):
        w, u, k_tilde, gamma_last, states = ctx.saved_tensors
        if d_final is None:
            d_final = states.new_zeros(states[:, :, 0].shape)
        adj, d_h0 = _launch(k_tilde, w, None, d_states, gamma_last, d_final, reverse=True)
        new = u.float() - w.float() @ states
        d_u = k_tilde.float() @ adj
        d_w = -d_u @ states.transpose(-1, -2)
        d_k_tilde = new @ adj.transpose(-1, -2)
        d_gamma = (states * adj).sum((-1, -2))
        return (d_w.to(w.dtype), d_u.to(u.dtype), d_k_tilde.to(k_tilde.dtype),
                d_gamma.to(gamma_last.dtype), d_h0.to(ctx.h0_dtype))


def triton_scan(
    w: Tensor, u: Tensor, k_tilde: Tensor, gamma_last: Tensor, h0: Tensor
) -> tuple[Tensor, Tensor]:
    """Drop-in for `qdelta_chunk.torch_scan` on CUDA tensors (states returned in float32).

    float32 products run as 3×TF32 (about float32 accuracy, on tensor cores) at PyTorch's default
    float32 matmul precision ('highest'), and as TF32 under `torch.set_float32_matmul_precision('high')`.
    """
    return _TritonScan.apply(w, u, k_tilde, gamma_last, h0)
