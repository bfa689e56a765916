"""Q-Delta recurrence, step by step: the definition every faster form is tested against.

Q-Delta (Park, Kim, Park, "Q-Delta: Beyond Key–Value Associative State Evolution", ICML 2026,
arXiv 2606.08804, Sec. 3) is a gated delta rule whose prediction error mixes the key's and the
query's read-out of the state ("mixed key–query prediction errors"; the authors' code forms the same
probe k + λ q). With S_t ∈ R^{d_v×d_k}, mixed probe r_t = k_t + λ_t q_t,

    S_t = α_t S_{t−1} + β_t (v_t − α_t S_{t−1} r_t) k_tᵀ,        o_t = S_t q_t,

i.e. S_t = α_t S_{t−1} (I − β_t r_t k_tᵀ) + β_t v_t k_tᵀ. λ_t = 0 gives Gated DeltaNet, and
λ_t = 0, α_t = 1 DeltaNet. Tensors here hold the transpose h_t = S_tᵀ ∈ R^{d_k×d_v} (the layout
of flash-linear-attention), so o_t = h_tᵀ q_t. Layout: q, k [B, h, L, d_k]; v [B, h, L, d_v];
beta, lam, g [B, h, L] with g = log α_t ≤ 0.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mask_gates(beta: Tensor, g: Tensor, pad_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    """Make padded steps the identity (β = 0: no write, g = 0: no decay) so pads never touch the state.

    pad_mask is bool [B, L], True = padding; a padded batch then matches its samples run one by one.
    """
    if pad_mask is None:
        return beta, g
    pad = pad_mask[:, None, :].to(beta.device)
    return beta.masked_fill(pad, 0.0), g.masked_fill(pad, 0.0)


def zero_padded(o: Tensor, pad_mask: Tensor | None) -> Tensor:
    """Zero the outputs [B, h, L, d] at padded steps (their value is meaningless)."""
    if pad_mask is None:
        return o
    return o.masked_fill(pad_mask[:, None, :, None].to(o.device), 0.0)


def qdelta_step(
    h: Tensor, q: Tensor, k: Tensor, v: Tensor, beta: Tensor, lam: Tensor, g: Tensor
) -> tuple[Tensor, Tensor]:
    """One Q-Delta step: h [B, h, d_k, d_v], q/k [B, h, d_k], v [B, h, d_v], beta/lam/g [B, h].

    Returns (o_t [B, h, d_v], h_t). The state stays O(1) in the sequence length.
    """
    h = g.exp()[..., None, None] * h
    r = k + lam[..., None] * q
    err = v - torch.einsum("bhk,bhkv->bhv", r, h)
    h = h + beta[..., None, None] * k[..., :, None] * err[..., None, :]
    return torch.einsum("bhk,bhkv->bhv", q, h), h


def qdelta_recurrent(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    beta: Tensor,
    lam: Tensor,
    g: Tensor,
    initial_state: Tensor | None = None,
    pad_mask: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Run the recurrence token by token (O(L) Python steps; for tests and decode only).

    Returns (o [B, h, L, d_v], final state h_L [B, h, d_k, d_v]).
    """
    b, nh, length, dk = q.shape
    beta, g = mask_gates(beta, g, pad_mask)
    h = initial_state
    if h is None:
        h = q.new_zeros(b, nh, dk, v.shape[-1])
    outs = []
    for t in range(length):
        o_t, h = qdelta_step(h, q[:, :, t], k[:, :, t], v[:, :, t], beta[:, :, t], lam[:, :, t], g[:, :, t])
        outs.append(o_t)
    return zero_padded(torch.stack(outs, dim=2), pad_mask), h
