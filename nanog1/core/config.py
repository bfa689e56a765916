"""StackConfig: the one configuration of an encoder/decoder stack, shared by every modality."""

from __future__ import annotations

from dataclasses import dataclass

from nanog1.core.mixers import MIXER_KINDS
from nanog1.core.queries import QUERY_KINDS

NORM_KINDS = ("layernorm", "rmsnorm")


@dataclass
class StackConfig:
    """Width, depth and mixer of a stack of pre-norm residual blocks.

    ``causal=True`` gives a decoder (text LM), ``False`` an encoder (vision, mutation profiles).
    ``checkpointing`` recomputes each block in the backward pass to save activation memory.
    """

    hidden_size: int
    layers: int
    rank: int
    heads: int
    mixer: str = "savo"
    causal: bool = False
    ffn_mult: int = 4
    dropout: float = 0.0
    query: str = "linear"
    norm: str = "layernorm"
    checkpointing: bool = False

    def __post_init__(self) -> None:
        if self.mixer not in MIXER_KINDS:
            raise ValueError(f"StackConfig.mixer must be one of {MIXER_KINDS}, got {self.mixer!r}")
        if self.query not in QUERY_KINDS:
            raise ValueError(f"StackConfig.query must be one of {QUERY_KINDS}, got {self.query!r}")
        if self.norm not in NORM_KINDS:
            raise ValueError(f"StackConfig.norm must be one of {NORM_KINDS}, got {self.norm!r}")
        if min(self.hidden_size, self.layers, self.rank, self.heads, self.ffn_mult) < 1:
            raise ValueError("StackConfig sizes (hidden_size, layers, rank, heads, ffn_mult) must be ≥ 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"StackConfig.dropout must be in [0, 1), got {self.dropout}")
