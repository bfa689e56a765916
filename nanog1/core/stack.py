"""Stack: an encoder (causal=False) or decoder (causal=True) of pre-norm blocks plus a final norm."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from nanog1.core.block import Block, make_norm
from nanog1.core.config import StackConfig
from nanog1.core.ragged import Ragged


class Stack(nn.Module):
    """``config.layers`` blocks and a final norm; [B, L, H] -> [B, L, H]. Embeddings live in the models."""

    def __init__(self, config: StackConfig):
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = make_norm(config.norm, config.hidden_size)

    def _run_block(self, block: Block, x: Tensor, padding_mask: Tensor | None,
                   ragged: Ragged | None = None) -> Tensor:
        extra = {} if ragged is None else {"ragged": ragged}
        if self.config.checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(block, x, padding_mask, use_reentrant=False, **extra)
        return block(x, padding_mask, **extra)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None,
                return_weights_layer: int | None = None,
                ragged: Ragged | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Run every block; with ``return_weights_layer`` = i also return block i's [B, h, L, L] weights.

        ``ragged``: x is a packed [1, T, H] batch of sequences (see :mod:`nanog1.core.ragged`).
        """
        if ragged is not None and return_weights_layer is not None:
            raise ValueError("return_weights_layer needs a padded batch, not a ragged one")
        n = len(self.blocks)
        if return_weights_layer is not None and not -n <= return_weights_layer < n:
            raise ValueError(f"return_weights_layer {return_weights_layer} out of range for "
                             f"{len(self.blocks)} layers")
        wanted = None if return_weights_layer is None else return_weights_layer % len(self.blocks)
        weights = None
        for i, block in enumerate(self.blocks):
            if i == wanted:
                x, weights = block(x, padding_mask, return_weights=True)
            else:
                x = self._run_block(block, x, padding_mask, ragged)
        x = self.norm(x)
        return x if wanted is None else (x, weights)

    def init_cache(self, batch_size: int, device=None, dtype=None) -> list[Any]:
        """One decoding cache per block."""
        return [block.init_cache(batch_size, device=device, dtype=dtype) for block in self.blocks]

    def step(self, x_t: Tensor, caches: list[Any]) -> tuple[Tensor, list[Any]]:
        """Decode one token x_t [B, 1, H] through every block -> ([B, 1, H], caches)."""
        caches = list(caches)
        for i, block in enumerate(self.blocks):
            x_t, caches[i] = block.step(x_t, caches[i])
        return self.norm(x_t), caches
