"""Chunkwise-parallel Q-Delta (UT transform), derived from the recurrence in `qdelta_reference`.

Within a chunk of C steps starting from state h₀ (= S₀ᵀ), with G_t = Σ_{s≤t} g_s, γ_t = e^{G_t}
and r_t = k_t + λ_t q_t, unrolling h_t = α_t (I − β_t k_t r_tᵀ) h_{t−1} + β_t k_t v_tᵀ gives
h_t = γ_t h₀ + Σ_{i≤t} e^{G_t−G_i} k_i u_iᵀ with pseudo-values u_t = β_t (v_t − α_t h_{t−1}ᵀ r_t):

    (I + A) U = diag(β) V − diag(βγ) R h₀,   A_{ti} = β_t e^{G_t−G_i} (r_t · k_i)  for i < t,
    W = T diag(βγ) R,  U′ = T diag(β) V,  T = (I + A)^{-1}   ⇒  U = U′ − W h₀,
    O = diag(γ) Q h₀ + (QKᵀ ⊙ e^{G_t−G_i})_{i≤t} U,          h_C = γ_C h₀ + K̃ᵀ U,  K̃_i = e^{G_C−G_i} k_i.

This is the UT-transform structure of the paper's chunkwise form (arXiv 2606.08804, App. D) and of
fla's Gated DeltaNet, with the query term on the *later* index of the key–key product (r_t·k_i, not
k_t·r_i as the authors' kernel has it): the pairing the recurrence forces, tested against it in float64.
Only the chunk-to-chunk state pass h_{n+1} = γ_C h_n + K̃ᵀ(U′ − W h_n) is sequential; `scan` selects
its backend (a PyTorch loop here, a Triton kernel in `qdelta_triton`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from nanog1.core.qdelta_reference import mask_gates, zero_padded


@dataclass
class ChunkTerms:
    """Per-chunk tensors of the UT transform, shaped [B, h, N, C, ·] (N chunks of C steps)."""

    q: Tensor
    k: Tensor
    w: Tensor
    u: Tensor
    k_tilde: Tensor
    decay_in: Tensor  # e^{G_t − G_i} for i ≤ t, 0 above the diagonal: [B, h, N, C, C]
    gamma: Tensor  # γ_t = e^{G_t}: [B, h, N, C]
    gamma_last: Tensor  # γ_C per chunk: [B, h, N]


ScanFn = Callable[[Tensor, Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def _split_chunks(x: Tensor, chunk: int) -> Tensor:
    """[B, h, L, ...] -> [B, h, L/C, C, ...], zero-padding L up to a multiple of C."""
    pad = (-x.shape[2]) % chunk
    if pad:
        widths = [0, 0] * (x.dim() - 3) + [0, pad]
        x = F.pad(x, widths)
    return x.reshape(*x.shape[:2], -1, chunk, *x.shape[3:])


def chunk_terms(
    q: Tensor, k: Tensor, v: Tensor, beta: Tensor, lam: Tensor, g: Tensor, chunk: int
) -> ChunkTerms:
    """Chunk-parallel part: A, T = (I + A)^{-1}, W, U′, K̃ and the decays for every chunk at once."""
    qc, kc, vc = (_split_chunks(x, chunk) for x in (q, k, v))
    bc, lc, gc = (_split_chunks(x, chunk) for x in (beta, lam, g))
    cum = gc.cumsum(-1)
    causal = torch.ones(chunk, chunk, dtype=torch.bool, device=q.device).tril()
    diff = cum[..., :, None] - cum[..., None, :]
    decay_in = torch.where(causal, diff, float("-inf")).exp()
    r = kc + lc[..., None] * qc
    a = (bc[..., None] * decay_in * (r @ kc.transpose(-1, -2))).tril(-1)
    eye = torch.eye(chunk, dtype=q.dtype, device=q.device)
    gamma = cum.exp()
    rhs = torch.cat([(bc * gamma)[..., None] * r, bc[..., None] * vc], dim=-1)
    sol = torch.linalg.solve_triangular(eye + a, rhs, upper=False, unitriangular=True)
    dk = q.shape[-1]
    k_tilde = (cum[..., -1:] - cum).exp()[..., None] * kc
    return ChunkTerms(qc, kc, sol[..., :dk], sol[..., dk:], k_tilde, decay_in, gamma, gamma[..., -1])


def torch_scan(
    w: Tensor, u: Tensor, k_tilde: Tensor, gamma_last: Tensor, h0: Tensor
) -> tuple[Tensor, Tensor]:
    """Sequential state pass h_{n+1} = γ_C h_n + K̃ᵀ(U′ − W h_n) in PyTorch.

    Returns (states at each chunk start [B, h, N, d_k, d_v], final state [B, h, d_k, d_v]).
    """
    h = h0
    states = []
    for n in range(w.shape[2]):
        states.append(h)
        new = u[:, :, n] - w[:, :, n] @ h
        h = gamma_last[:, :, n, None, None] * h + k_tilde[:, :, n].transpose(-1, -2) @ new
    return torch.stack(states, dim=2), h


def chunk_outputs(terms: ChunkTerms, states: Tensor) -> Tensor:
    """Chunk-parallel outputs O = diag(γ) Q h_n + (QKᵀ ⊙ decay) (U′ − W h_n): [B, h, N, C, d_v]."""
    new = terms.u - terms.w @ states
    scores = (terms.q @ terms.k.transpose(-1, -2)) * terms.decay_in
    return terms.gamma[..., None] * (terms.q @ states) + scores @ new


def qdelta_chunked(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    beta: Tensor,
    lam: Tensor,
    g: Tensor,
    initial_state: Tensor | None = None,
    pad_mask: Tensor | None = None,
    chunk_size: int = 64,
    scan: ScanFn = torch_scan,
) -> tuple[Tensor, Tensor]:
    """Q-Delta over a whole sequence in O(L·C·d + L·d²) work; same contract as `qdelta_recurrent`.

    Half-precision inputs are computed in float32 (the triangular solve needs it) and cast back.
    Returns (o [B, h, L, d_v], final state [B, h, d_k, d_v]).
    """
    b, nh, length, dk = q.shape
    out_dtype = q.dtype
    work = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype
    q, k, v, beta, lam, g = (x.to(work) for x in (q, k, v, beta, lam, g))
    beta, g = mask_gates(beta, g, pad_mask)
    h0 = q.new_zeros(b, nh, dk, v.shape[-1]) if initial_state is None else initial_state.to(work)
    terms = chunk_terms(q, k, v, beta, lam, g, chunk_size)
    states, final = scan(terms.w, terms.u, terms.k_tilde, terms.gamma_last, h0)
    o = chunk_outputs(terms, states.to(work)).reshape(b, nh, -1, v.shape[-1])[:, :, :length]
    return zero_padded(o, pad_mask).to(out_dtype), final.to(work)


def pick_scan(t: Tensor) -> ScanFn:
    """The Triton state pass for float32/half CUDA tensors when Triton imports, else the PyTorch loop."""
    if t.is_cuda and t.dtype in (torch.float32, torch.float16, torch.bfloat16):
        try:
            from nanog1.core.qdelta_triton import triton_scan
        except ImportError:
            return torch_scan
        return triton_scan
    return torch_scan
