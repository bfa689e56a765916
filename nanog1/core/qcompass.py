"""Q-Compass (SAO): routes the raw input x by softmax(state·actionᵀ); no value projection.

state = x·W_s (H→r), action = x·W_a (H→r); per head, weights = softmax(state_h·action_hᵀ/√(r/h)) and
out = W_o(concat_h(weights_h·x_h)), x_h the head's H/h slice of x. With ``causal=False`` this is
QCompassBi (images, mutation profiles). Parameter names follow the quatrix 0.2.1 package
(state_proj, action_proj, out_proj) so weights can be compared side by side.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nanog1.core.caches import RoutingCache
from nanog1.core.fused_block import fused_dtype, fused_forward
from nanog1.core.queries import query_projection
from nanog1.core.ragged import Ragged
from nanog1.core.routing import merge_heads, route, route_explicit, route_step, split_heads


def check_heads(hidden_size: int, rank: int, heads: int) -> None:
    """Raise ValueError unless both widths split evenly over the heads."""
    if heads < 1 or hidden_size % heads or rank % heads:
        raise ValueError(f"hidden_size {hidden_size} and rank {rank} must both divide by heads {heads}")


def state_action(state_proj: nn.Module, action_proj: nn.Linear, x: Tensor) -> tuple[Tensor, Tensor]:
    """x·W_s and x·W_a; one GEMM over the stacked weights when the state projection is linear."""
    if isinstance(state_proj, nn.Linear):
        both = F.linear(x, torch.cat([state_proj.weight, action_proj.weight]))
        return both.split(state_proj.out_features, dim=-1)
    return state_proj(x), action_proj(x)


class StateActionMixer(nn.Module):
    """What Q-Compass and SAVO share: W_s and W_a (no bias), the head check and the routing scale.

    Subclasses add their own projections after these two, so a seed draws the same initial weights.
    """

    def __init__(self, hidden_size: int, rank: int, heads: int, causal: bool, query: str = "linear"):
        super().__init__()
        check_heads(hidden_size, rank, heads)
        self.hidden_size, self.rank, self.heads, self.causal = hidden_size, rank, heads, causal
        self.scale = (rank / heads) ** -0.5
        self.state_proj = query_projection(hidden_size, rank, query)
        self.action_proj = nn.Linear(hidden_size, rank, bias=False)

    def _routing_inputs(self, x: Tensor, padding_mask: Tensor | None, return_weights: bool,
                        ragged: Ragged | None) -> tuple[Tensor, Tensor, Tensor, Tensor, dict]:
        """x·W_s and x·W_a [B, L, r], their heads [B, h, L, r/h] and the keyword arguments of a route."""
        if return_weights and ragged is not None:
            raise ValueError("return_weights needs a padded batch, not a ragged one")
        s, a = state_action(self.state_proj, self.action_proj, x)
        kwargs = dict(scale=self.scale, causal=self.causal, padding_mask=padding_mask)
        return s, a, split_heads(s, self.heads), split_heads(a, self.heads), kwargs

    def _check_causal(self) -> None:
        if not self.causal:
            raise ValueError("step() decodes causally; this mixer was built with causal=False")


class QCompass(StateActionMixer):
    """Three projections: W_s, W_a (no bias) and W_o (bias). Step cache: action (r) and x (H) per token."""

    def __init__(self, hidden_size: int, rank: int, heads: int, causal: bool, query: str = "linear"):
        super().__init__(hidden_size, rank, heads, causal, query)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None, return_weights: bool = False,
                ragged: Ragged | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """[B, L, H] -> [B, L, H]; with ``return_weights`` also the [B, h, L, L] routing weights.

        ``ragged``: x is a packed [1, T, H] batch of sequences (see :mod:`nanog1.core.ragged`).
        """
        dtype = fused_dtype(self, x, padding_mask, ragged, return_weights)
        if dtype is not None and (y := fused_forward(self, x, dtype)) is not None:
            return y
        s, _, state, action, kwargs = self._routing_inputs(x, padding_mask, return_weights, ragged)
        content = split_heads(x.to(s.dtype), self.heads)  # under autocast x may be fp32, s bf16
        if return_weights:
            routed, weights = route_explicit(state, action, content, **kwargs)
            return self.out_proj(merge_heads(routed)), weights
        return self.out_proj(merge_heads(route(state, action, content, ragged=ragged, **kwargs)))

    def init_cache(self, batch_size: int, device=None, dtype=None, capacity: int = 64) -> RoutingCache:
        """Empty decoding cache: action [B, h, T, r/h] as keys, x [B, h, T, H/h] as values."""
        h = self.heads
        return RoutingCache.empty(batch_size, (h, self.rank // h), (h, self.hidden_size // h),
                                  device, dtype, capacity)

    def step(self, x_t: Tensor, cache: RoutingCache) -> tuple[Tensor, RoutingCache]:
        """Decode one token: x_t [B, 1, H] -> y_t [B, 1, H], equal to the causal forward's last row."""
        self._check_causal()
        cache.append(split_heads(self.action_proj(x_t), self.heads), split_heads(x_t, self.heads))
        action, content = cache.valid()
        state = split_heads(self.state_proj(x_t), self.heads)
        routed = route_step(state, action.to(state.dtype), content.to(state.dtype), scale=self.scale)
        return self.out_proj(merge_heads(routed)), cache
