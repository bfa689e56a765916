"""Q-Delta's short causal depthwise convolution + SiLU as two Triton kernels (forward, backward).

y[b, t, c] = silu(Σ_j w[c, j] · z[b, t − (K − 1) + j, c]) over the token-major [B, L, C] projection
(C = 2r + H), zeros before the start. PyTorch's depthwise ``conv1d`` wants [B, C, L] (two transposes
and their copies), and its backward on CUDA is a slow path for groups = C; here one kernel reads z
once and writes silu(conv) (forward), and one recomputes the pre-activation and writes dz and adds
dw with fp32 atomics (backward). :func:`causal_conv_silu_reference` is the same function in PyTorch.
Import only where Triton is present (CUDA, or the CPU interpreter in tests).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import Tensor

from nanog1.core.kernels.launch import cdiv

BLOCK_T, BLOCK_C = 64, 64


def causal_conv_silu_reference(z: Tensor, w: Tensor) -> Tensor:
    """silu(causal depthwise conv) in PyTorch: z [B, L, C], w [C, K] -> [B, L, C]."""
    taps, length = w.shape[1], z.shape[1]
    zp = F.pad(z, (0, 0, taps - 1, 0))
    return F.silu(sum(zp[:, j:j + length] * w[:, j] for j in range(taps)))


@triton.jit
def _pre(zb, W, rows, cols, cmask, L, C, K: tl.constexpr):
    """The convolution (before SiLU) at these rows and channels, fp32 [rows, cols]."""
    acc = tl.zeros([rows.shape[0], cols.shape[0]], dtype=tl.float32)
    for j in tl.static_range(K):
        src = rows - (K - 1) + j
        ok = (src >= 0) & (src < L)
        z = tl.load(zb + src[:, None] * C + cols[None, :], mask=ok[:, None] & cmask[None, :], other=0.0)
        acc += z.to(tl.float32) * tl.load(W + cols * K + j, mask=cmask, other=0.0).to(tl.float32)[None, :]
    return acc


@triton.jit
def _fwd_kernel(Z, W, Y, L, C, K: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr):
    """One program per (row block, channel block, batch row): Y = silu(conv(Z))."""
    rows = tl.program_id(0) * BT + tl.arange(0, BT)
    cols = tl.program_id(1) * BC + tl.arange(0, BC)
    cmask = cols < C
    base = tl.program_id(2).to(tl.int64) * L * C
    u = _pre(Z + base, W, rows, cols, cmask, L, C, K)
    y = u * tl.sigmoid(u)
    tl.store(Y + base + rows[:, None] * C + cols[None, :], y.to(Y.dtype.element_ty),
             mask=(rows < L)[:, None] & cmask[None, :])


@triton.jit
def _bwd_kernel(Z, W, DY, DZ, DW, L, C, K: tl.constexpr, BT: tl.constexpr, BC: tl.constexpr):
    """dZ[t] = Σ_s w[K−1−s] · du[t+s] with du = dY · silu′(u); dW[c, j] += Σ_t du[t] · z[t−K+1+j]."""
    rows = tl.program_id(0) * BT + tl.arange(0, BT)
    cols = tl.program_id(1) * BC + tl.arange(0, BC)
    cmask = cols < C
    base = tl.program_id(2).to(tl.int64) * L * C
    dz = tl.zeros([BT, BC], dtype=tl.float32)
    for s in tl.static_range(K):
        r = rows + s
        u = _pre(Z + base, W, r, cols, cmask, L, C, K)
        sig = tl.sigmoid(u)
        dy = tl.load(DY + base + r[:, None] * C + cols[None, :], mask=(r < L)[:, None] & cmask[None, :],
                     other=0.0).to(tl.float32)
        du = dy * sig * (1.0 + u * (1.0 - sig))
        dz += du * tl.load(W + cols * K + (K - 1 - s), mask=cmask, other=0.0).to(tl.float32)[None, :]
        if s == 0:
            for j in tl.static_range(K):
                src = rows - (K - 1) + j
                ok = (src >= 0) & (src < L)
                z = tl.load(Z + base + src[:, None] * C + cols[None, :], mask=ok[:, None] & cmask[None, :],
                            other=0.0).to(tl.float32)
                tl.atomic_add(DW + cols * K + j, tl.sum(du * z, 0), mask=cmask, sem="relaxed")
    tl.store(DZ + base + rows[:, None] * C + cols[None, :], dz.to(DZ.dtype.element_ty),
             mask=(rows < L)[:, None] & cmask[None, :])


def _grid(z: Tensor) -> tuple[int, int, int]:
    b, length, c = z.shape
    return cdiv(length, BLOCK_T), cdiv(c, BLOCK_C), b


class _ConvSiLU(torch.autograd.Function):
    """Autograd over the two kernels; w [C, K] keeps its dtype (its gradient is summed in fp32)."""

    @staticmethod
    def forward(ctx, z: Tensor, w: Tensor) -> Tensor:
        z, w = z.contiguous(), w.contiguous()
        y = torch.empty_like(z)
        _fwd_kernel[_grid(z)](z, w, y, z.shape[1], z.shape[2], K=w.shape[1], BT=BLOCK_T, BC=BLOCK_C)
        ctx.save_for_backward(z, w)
        return y

    @staticmethod
    def backward(ctx, dy: Tensor):
        z, w = ctx.saved_tensors
        dy = dy.contiguous()
        dz = torch.empty_like(z)
        dw = torch.zeros(w.shape, dtype=torch.float32, device=w.device)
        _bwd_kernel[_grid(z)](z, w, dy, dz, dw, z.shape[1], z.shape[2], K=w.shape[1], BT=BLOCK_T, BC=BLOCK_C)
        return dz, dw.to(w.dtype)


def causal_conv_silu(z: Tensor, w: Tensor) -> Tensor:
    """silu(causal depthwise conv): z [B, L, C] (token-major), w [C, K] -> [B, L, C] in z's dtype."""
    return _ConvSiLU.apply(z, w)
