"""The MHA baseline: standard four-projection attention, full-rank or rank-matched.

Full-rank ("mha"): W_q, W_k, W_v: H→H, W_o: H→H (4H² weights). Rank-matched ("mha_rank"): every
projection at rank r (W_q, W_k, W_v: H→r, W_o: r→H), the control with Q-Compass's routing rank.
W_q, W_k, W_v carry no bias and W_o does, as in Q-Compass, so parameter counts compare like for like.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nanog1.core.caches import RoutingCache
from nanog1.core.qcompass import check_heads
from nanog1.core.queries import query_projection
from nanog1.core.ragged import Ragged
from nanog1.core.routing import merge_heads, route, route_explicit, route_step, split_heads


class MHA(nn.Module):
    """Multi-head attention with attention width ``width`` (H or r). Step cache: key and value per token."""

    def __init__(self, hidden_size: int, width: int, heads: int, causal: bool, query: str = "linear"):
        super().__init__()
        check_heads(hidden_size, width, heads)
        self.hidden_size, self.width, self.heads, self.causal = hidden_size, width, heads, causal
        self.scale = (width / heads) ** -0.5
        self.q_proj = query_projection(hidden_size, width, query)
        self.k_proj = nn.Linear(hidden_size, width, bias=False)
        self.v_proj = nn.Linear(hidden_size, width, bias=False)
        self.out_proj = nn.Linear(width, hidden_size)

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values [B, h, L, width/h]; one GEMM for all three when the query is linear."""
        if isinstance(self.q_proj, nn.Linear):
            w = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])
            q, k, v = F.linear(x, w).split(self.width, dim=-1)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        return split_heads(q, self.heads), split_heads(k, self.heads), split_heads(v, self.heads)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None, return_weights: bool = False,
                ragged: Ragged | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """[B, L, H] -> [B, L, H]; with ``return_weights`` also the [B, h, L, L] attention weights.

        ``ragged``: x is a packed [1, T, H] batch of sequences (see :mod:`nanog1.core.ragged`).
        """
        q, k, v = self._qkv(x)
        kwargs = dict(scale=self.scale, causal=self.causal, padding_mask=padding_mask)
        if return_weights and ragged is not None:
            raise ValueError("return_weights needs a padded batch, not a ragged one")
        if return_weights:
            routed, weights = route_explicit(q, k, v, **kwargs)
            return self.out_proj(merge_heads(routed)), weights
        return self.out_proj(merge_heads(route(q, k, v, ragged=ragged, **kwargs)))

    def init_cache(self, batch_size: int, device=None, dtype=None, capacity: int = 64) -> RoutingCache:
        """Empty KV cache: keys and values [B, h, T, width/h]."""
        shape = (self.heads, self.width // self.heads)
        return RoutingCache.empty(batch_size, shape, shape, device, dtype, capacity)

    def step(self, x_t: Tensor, cache: RoutingCache) -> tuple[Tensor, RoutingCache]:
        """Decode one token: x_t [B, 1, H] -> y_t [B, 1, H], equal to the causal forward's last row."""
        if not self.causal:
            raise ValueError("step() decodes causally; this mixer was built with causal=False")
        cache.append(split_heads(self.k_proj(x_t), self.heads), split_heads(self.v_proj(x_t), self.heads))
        k, v = cache.valid()
        q = split_heads(self.q_proj(x_t), self.heads)
        routed = route_step(q, k.to(q.dtype), v.to(q.dtype), scale=self.scale)
        return self.out_proj(merge_heads(routed)), cache
