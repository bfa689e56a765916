"""Batched decode step over a compressed routing cache (SAVO: action keys, shared Q-value values).

One new query per sequence reads its first ``lengths[b]`` cached tokens. With a single value head
(SAVO's rank-r Q-value is shared by all heads) the weighted sum is one batched matrix product
[B, h, T]·[B, T, d_v], so the value cache is read once, not once per head; the caller applies W_c
after routing. On CUDA with Triton and one value head, :mod:`decode_triton`'s split-context kernel
runs (one pass over the cache); elsewhere :func:`decode_reference`, two matmuls and a softmax.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nanog1.core.kernels.routing import triton_importable


def routing_decode(q_t: Tensor, k_cache: Tensor, v_cache: Tensor, lengths: Tensor | None,
                   scale: float) -> Tensor:
    """q_t [B, h, d_qk], k_cache [B, h, T, d_qk], v_cache [B, h|1, T, d_v], lengths [B] -> [B, h, d_v].

    Tokens at positions ≥ lengths[b] are ignored (``None``: all T are valid); a row with length 0
    returns zeros. Uses the Triton kernel where it applies, else :func:`decode_reference`.
    """
    if q_t.is_cuda and triton_importable():
        from nanog1.core.kernels.decode_triton import decode_available, routing_decode_triton

        if decode_available(q_t, k_cache, v_cache):
            if lengths is None:
                lengths = torch.full((k_cache.shape[0],), k_cache.shape[2], device=k_cache.device)
            return routing_decode_triton(q_t, k_cache, v_cache, lengths, scale)
    return decode_reference(q_t, k_cache, v_cache, lengths, scale)


def decode_reference(q_t: Tensor, k_cache: Tensor, v_cache: Tensor, lengths: Tensor | None,
                     scale: float) -> Tensor:
    """Pure PyTorch form of :func:`routing_decode` (same arguments); float32 softmax, v_cache's dtype out."""
    cap = k_cache.shape[2]
    logits = torch.matmul(k_cache, q_t.unsqueeze(-1).to(k_cache.dtype)).squeeze(-1).float() * scale
    if lengths is not None:
        past = torch.arange(cap, device=k_cache.device)[None, None, :] >= lengths[:, None, None]
        logits = logits.masked_fill(past, float("-inf"))
    weights = torch.softmax(logits, dim=-1).nan_to_num(0.0).to(v_cache.dtype)
    if v_cache.shape[1] == 1:
        return torch.bmm(weights, v_cache[:, 0])
    return torch.matmul(weights.unsqueeze(-2), v_cache).squeeze(-2)
