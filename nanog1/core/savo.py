"""SAVO: Q-Compass routing over the Q-value content (state ⊙ action)·W_c.

out = W_o(concat_h(weights_h·content_h)), content = (state ⊙ action)·W_c (r→H), content_h its H/h
slice. SAVO is linear in its content: weights_h·(qval·W_c)[:, h] = (weights_h·qval)·W_c[:, h], so it
can route the rank-r Q-value and project once. Per head that routes r numbers (the full Q-value:
W_c mixes all r of them into every head's slice) instead of H/h, so the forward takes that route
when h·r < H and routes the H-wide content otherwise (h·r = H costs the same either way; at r = H the
Q-value route would do h× the routing work). Decoding always caches action and Q-value: 2r per token.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nanog1.core.caches import RoutingCache
from nanog1.core.fused_block import fused_dtype, fused_forward
from nanog1.core.qcompass import StateActionMixer
from nanog1.core.ragged import Ragged
from nanog1.core.routing import merge_heads, route, route_explicit, route_step, split_heads


class SAVO(StateActionMixer):
    """Four projections: W_s, W_a, W_c (no bias) and W_o (bias). Step cache: action and Q-value (2r)."""

    def __init__(self, hidden_size: int, rank: int, heads: int, causal: bool, query: str = "linear"):
        super().__init__(hidden_size, rank, heads, causal, query)
        self.content_proj = nn.Linear(rank, hidden_size, bias=False)
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        self.route_qvalue = heads * rank < hidden_size

    def _project_routed_qvalue(self, routed: Tensor) -> Tensor:
        """[B, h, L, r] routed Q-values -> [B, L, H]: head h's slice of W_c applied to head h's route."""
        h = self.heads
        w_c = self.content_proj.weight.view(h, self.hidden_size // h, self.rank)
        out = torch.einsum("bhlr,hdr->blhd", routed, w_c)
        return out.reshape(out.shape[0], out.shape[1], self.hidden_size)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None, return_weights: bool = False,
                ragged: Ragged | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """[B, L, H] -> [B, L, H]; with ``return_weights`` also the [B, h, L, L] routing weights.

        ``ragged``: x is a packed [1, T, H] batch of sequences (see :mod:`nanog1.core.ragged`).
        """
        dtype = fused_dtype(self, x, padding_mask, ragged, return_weights)
        if dtype is not None and (y := fused_forward(self, x, dtype)) is not None:
            return y
        s, a, state, action, kwargs = self._routing_inputs(x, padding_mask, return_weights, ragged)
        qvalue = s * a
        if return_weights:
            content = split_heads(self.content_proj(qvalue), self.heads)
            routed, weights = route_explicit(state, action, content, **kwargs)
            return self.out_proj(merge_heads(routed)), weights
        if self.route_qvalue:
            routed = route(state, action, qvalue.unsqueeze(1), ragged=ragged, **kwargs)
            return self.out_proj(self._project_routed_qvalue(routed))
        content = split_heads(self.content_proj(qvalue), self.heads)
        return self.out_proj(merge_heads(route(state, action, content, ragged=ragged, **kwargs)))

    def init_cache(self, batch_size: int, device=None, dtype=None, capacity: int = 64) -> RoutingCache:
        """Empty decoding cache: action [B, h, T, r/h] as keys, Q-value [B, 1, T, r] as values; token-major
        on CUDA, where the decode kernel reads every head's keys of a token as one row."""
        h = self.heads
        cuda = device is not None and torch.device(device).type == "cuda"
        return RoutingCache.empty(batch_size, (h, self.rank // h), (1, self.rank), device, dtype, capacity,
                                  token_major=cuda)

    def step(self, x_t: Tensor, cache: RoutingCache) -> tuple[Tensor, RoutingCache]:
        """Decode one token: x_t [B, 1, H] -> y_t [B, 1, H], equal to the causal forward's last row."""
        self._check_causal()
        s, a = self.state_proj(x_t), self.action_proj(x_t)
        cache.append(split_heads(a, self.heads), (s * a).unsqueeze(1))
        action, qvalue = cache.valid()
        state = split_heads(s, self.heads)
        routed = route_step(state, action.to(s.dtype), qvalue.to(s.dtype), scale=self.scale)
        return self.out_proj(self._project_routed_qvalue(routed)), cache
