"""Block: the pre-norm residual block (mixer, then GELU feed-forward) every stack is built from."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from nanog1.core.config import StackConfig
from nanog1.core.mixers import build_mixer
from nanog1.core.ragged import Ragged


def make_norm(kind: str, hidden_size: int) -> nn.Module:
    """LayerNorm or RMSNorm over the last axis."""
    return nn.RMSNorm(hidden_size, eps=1e-5) if kind == "rmsnorm" else nn.LayerNorm(hidden_size, eps=1e-5)


class FeedForward(nn.Sequential):
    """H -> ffn_mult·H -> GELU -> H."""

    def __init__(self, hidden_size: int, ffn_mult: int, dropout: float = 0.0):
        inner = ffn_mult * hidden_size
        super().__init__(nn.Linear(hidden_size, inner), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(inner, hidden_size))


class Block(nn.Module):
    """x + mixer(norm(x)), then + ffn(norm(x)); dropout on both residual branches."""

    def __init__(self, config: StackConfig):
        super().__init__()
        self.norm_mix = make_norm(config.norm, config.hidden_size)
        self.mixer = build_mixer(config.mixer, config.hidden_size, config.rank, config.heads,
                                 config.causal, config.query)
        self.norm_ffn = make_norm(config.norm, config.hidden_size)
        self.ffn = FeedForward(config.hidden_size, config.ffn_mult, config.dropout)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None,
                return_weights: bool = False, ragged: Ragged | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """[B, L, H] -> [B, L, H]; with ``return_weights`` also the mixer's [B, h, L, L] weights.

        ``ragged``: x is a packed [1, T, H] batch of sequences (see :mod:`nanog1.core.ragged`).
        """
        extra = {} if ragged is None else {"ragged": ragged}
        mixed = self.mixer(self.norm_mix(x), padding_mask, return_weights=True) if return_weights \
            else self.mixer(self.norm_mix(x), padding_mask, **extra)
        weights = None
        if return_weights:
            mixed, weights = mixed
        x = x + self.dropout(mixed)
        x = x + self.dropout(self.ffn(self.norm_ffn(x)))
        return (x, weights) if return_weights else x

    def init_cache(self, batch_size: int, device=None, dtype=None) -> Any:
        """The mixer's decoding cache."""
        return self.mixer.init_cache(batch_size, device=device, dtype=dtype)

    def step(self, x_t: Tensor, cache: Any) -> tuple[Tensor, Any]:
        """Decode one token x_t [B, 1, H] -> ([B, 1, H], cache)."""
        mixed, cache = self.mixer.step(self.norm_mix(x_t), cache)
        x_t = x_t + self.dropout(mixed)
        return x_t + self.dropout(self.ffn(self.norm_ffn(x_t))), cache
