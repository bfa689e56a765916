"""Dispatch for rank-r routing attention: the Triton kernel on CUDA, a plain PyTorch reference elsewhere.

Semantics (shared by kernel and reference): out = softmax(q·kᵀ·scale + mask)·v per head, where the
mask hides future keys when ``causal`` and padded keys (``key_padding_mask`` [B, L], True = pad).
A query row with no visible key (e.g. a left-padded position under the causal mask) outputs zeros.
"""

from __future__ import annotations

import functools
import importlib.util

import torch
from torch import Tensor

_DTYPES = (torch.float16, torch.bfloat16)


@functools.cache
def triton_importable() -> bool:
    """True where the triton package can be imported (CUDA machines; never imported here)."""
    return importlib.util.find_spec("triton") is not None


def kernel_available(q: Tensor, k: Tensor, v: Tensor) -> bool:
    """True when the Triton kernel takes these inputs: CUDA (sm80+), Triton, fp16/bf16, supported widths.

    Shapes: q, k [B, h, L, d_qk] with d_qk ≤ 64; v [B, h or 1, L, d_v] with d_v a power of two in
    16..128; one dtype; unit stride on the last axis.
    """
    if not (q.is_cuda and k.is_cuda and v.is_cuda) or q.dtype not in _DTYPES:
        return False
    if k.dtype != q.dtype or v.dtype != q.dtype or q.dim() != 4 or k.shape != q.shape:
        return False
    d_v = v.shape[-1]
    if v.shape[0] != q.shape[0] or v.shape[2] != q.shape[2] or v.shape[1] not in (1, q.shape[1]):
        return False
    if q.stride(-1) != 1 or k.stride(-1) != 1 or v.stride(-1) != 1:
        return False
    return kernel_supports(q.shape[-1], d_v, q.device)


def kernel_supports(d_qk: int, d_v: int, device: torch.device) -> bool:
    """The widths and device half of :func:`kernel_available` (no tensors needed): d_qk ≤ 64, d_v a power of
    two in 16..128, CUDA sm80+ with Triton importable."""
    if device.type != "cuda" or d_qk > 64 or d_v < 16 or d_v > 128 or d_v & (d_v - 1):
        return False
    return _capability(device.index)[0] >= 8 and triton_importable()


@functools.cache
def _capability(index: int | None) -> tuple[int, int]:
    """The CUDA device's compute capability, asked once per device (the call costs host time per step)."""
    return torch.cuda.get_device_capability(index)


def visible_keys(key_padding_mask: Tensor | None, length: int, causal: bool, device: torch.device) -> Tensor:
    """Bool [B or 1, 1, L, L]: True where query i may read key j."""
    allowed = torch.ones(1, 1, length, length, dtype=torch.bool, device=device)
    if causal:
        allowed = allowed.tril()
    if key_padding_mask is not None:
        allowed = allowed & ~key_padding_mask[:, None, None, :]
    return allowed


def reference_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, key_padding_mask: Tensor | None,
                        scale: float) -> Tensor:
    """Plain PyTorch form of the kernel's function (materialises L×L; reference and small-L fallback)."""
    logits = torch.matmul(q, k.transpose(-2, -1))
    logits = (logits.float() if logits.dtype in _DTYPES else logits) * scale
    allowed = visible_keys(key_padding_mask, q.shape[2], causal, q.device)
    logits = logits.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(logits, dim=-1).nan_to_num(0.0)
    if v.shape[1] != q.shape[1]:
        v = v.expand(-1, q.shape[1], -1, -1)
    return torch.matmul(weights.to(v.dtype), v)


def ragged_reference_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, cu_seqlens: Tensor,
                               scale: float) -> Tensor:
    """Ragged batch one sequence at a time: q, k [1, h, T, d_qk], v [1, h|1, T, d_v], packed by cu_seqlens.

    Sequence i holds rows cu_seqlens[i]..cu_seqlens[i+1] and attends only inside itself; the plain
    PyTorch form of the ragged kernel (reads the offsets on the host: a reference, not a fast path).
    """
    bounds = cu_seqlens.tolist()
    parts = [reference_attention(q[:, :, a:b], k[:, :, a:b], v[:, :, a:b], causal=causal,
                                 key_padding_mask=None, scale=scale)
             for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    return torch.cat(parts, dim=2) if parts else q.new_zeros(*q.shape[:3], v.shape[-1])


def routing_attention(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, key_padding_mask: Tensor | None,
                      scale: float, cu_seqlens: Tensor | None = None, max_len: int = 0) -> Tensor:
    """softmax(q·kᵀ·scale, masked)·v: q, k [B, h, L, d_qk], v [B, h|1, L, d_v] -> [B, h, L, d_v].

    Ragged batches: ``cu_seqlens`` int32 [n + 1] offsets of n sequences packed along L of a B = 1
    batch (no padding, no ``key_padding_mask``), ``max_len`` ≥ the longest of them (a host int: the
    launch grid needs it without a device sync). Runs the Triton kernel when :func:`kernel_available`,
    else the PyTorch reference. Differentiable in q, k and v either way.
    """
    if cu_seqlens is not None and (key_padding_mask is not None or q.shape[0] != 1):
        raise ValueError("a ragged batch (cu_seqlens) is one packed row: B = 1 and no key_padding_mask")
    if kernel_available(q, k, v):
        from nanog1.core.kernels.routing_triton import routing_attention_triton

        return routing_attention_triton(q, k, v, causal, key_padding_mask, scale, cu_seqlens, max_len)
    if cu_seqlens is not None:
        return ragged_reference_attention(q, k, v, causal=causal, cu_seqlens=cu_seqlens, scale=scale)
    return reference_attention(q, k, v, causal=causal, key_padding_mask=key_padding_mask, scale=scale)
