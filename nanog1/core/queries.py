"""Query (Q-Compass/SAVO: state) projections, linear or nonlinear.

Nonlinear queries follow M. Karbevski, "Beyond Linearity in Attention Projections: The Case for
Nonlinear Queries", arXiv:2603.13381 (ICLR 2026 GRaM workshop). The paper replaces W_Q ∈ R^{d×d} by
the nonlinear residual Q(X) = X + f_θ(X), f_θ a bottleneck MLP with d² + O(d) parameters; the
identity anchors the nonlinearity to a known-good prior.

What was verified and what was not: the abstract (arXiv HTML v1) gives Q(X) = X + f_θ(X) with
d² + O(d) parameters. The exact f_θ is taken from the authors' public code
(github.com/MarkoKarbevski/beyond_query_linearity, model.py, query_mode "residual_gelu"):
f_θ(X) = LayerNorm(W_2·GELU(W_1·RMSNorm(X))), W_1: d → d/2, W_2: d/2 → d, no biases, and no
W_Q at all. We did not read the paper's method section itself. For a full-width query
(out width = d: MHA) this module is exactly that form. For a rank-r query or state
(Q-Compass/SAVO's state, rank-matched MHA) the identity cannot be the anchor (r ≠ d); there the
anchor is the learned linear projection, Q(X) = X·W_s + LayerNorm(W_2·GELU(W_1·RMSNorm(X))) with
W_2: d/2 → r. That rank-r variant is our extension, not in the paper.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

QUERY_KINDS = ("linear", "nonlinear")


class NonlinearQuery(nn.Module):
    """Q(X) = anchor(X) + LayerNorm(W_2·GELU(W_1·RMSNorm(X))); anchor = identity when widths match."""

    def __init__(self, hidden_size: int, out_size: int):
        super().__init__()
        bottleneck = max(1, hidden_size // 2)
        self.anchor = None if out_size == hidden_size else nn.Linear(hidden_size, out_size, bias=False)
        self.norm_in = nn.RMSNorm(hidden_size, eps=1e-5)
        self.down = nn.Linear(hidden_size, bottleneck, bias=False)
        self.up = nn.Linear(bottleneck, out_size, bias=False)
        self.norm_out = nn.LayerNorm(out_size, eps=1e-5, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        base = x if self.anchor is None else self.anchor(x)
        return base + self.norm_out(self.up(F.gelu(self.down(self.norm_in(x)))))


def query_projection(hidden_size: int, out_size: int, query: str = "linear") -> nn.Module:
    """The query/state projection H -> out_size: a bias-free Linear, or :class:`NonlinearQuery`."""
    if query == "linear":
        return nn.Linear(hidden_size, out_size, bias=False)
    if query == "nonlinear":
        return NonlinearQuery(hidden_size, out_size)
    raise ValueError(f"query must be one of {QUERY_KINDS}, got {query!r}")
