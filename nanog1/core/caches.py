"""Decoding caches: the per-token keys and values a causal mixer needs to extend a sequence by one token.

What each mixer stores per token (numbers per sample):

- MHA: key and value, 2·d_attn (2H full-rank).
- Q-Compass: action (r) and the raw input x (H).
- SAVO: action (r) and the Q-value state ⊙ action (r): 2r, i.e. 0.125× MHA's 2H at r = H/8.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class RoutingCache:
    """Growing key/value buffers [B, h_k, capacity, d]; only the first ``length`` tokens are valid.

    ``values`` may have a single head (SAVO's Q-value is shared by every head). Buffers double when
    full, so appending one token at a time costs amortised O(1) copies.

    ``token_major`` stores the buffers' memory as [B, capacity, h_k, d] (still seen as [B, h_k, capacity, d]):
    one token's keys for every head are one contiguous row. SAVO's CUDA cache uses it: the decode kernel
    then reads a 128-byte row per token (8 heads × 8 numbers) instead of 8 scattered 16-byte pieces, 1.27×
    faster at batch 64 and 32k context (BENCHMARKS.md, issue 30). Matmul paths (CPU, MHA) keep head-major
    buffers, which they read without a copy.
    """

    keys: Tensor
    values: Tensor
    length: int = 0
    token_major: bool = False

    @classmethod
    def empty(cls, batch_size: int, key_shape: tuple[int, int], value_shape: tuple[int, int],
              device: torch.device | str | None = None, dtype: torch.dtype | None = None,
              capacity: int = 64, token_major: bool = False) -> RoutingCache:
        """An empty cache; ``key_shape``/``value_shape`` are (heads, width) per token."""
        keys = _zeros(batch_size, *key_shape, capacity, token_major, device, dtype)
        values = _zeros(batch_size, *value_shape, capacity, token_major, device, dtype)
        return cls(keys, values, 0, token_major)

    def append(self, keys: Tensor, values: Tensor) -> None:
        """Append new tokens ([B, h_k, n, d] each), growing the buffers when needed."""
        n = keys.shape[2]
        if self.length + n > self.keys.shape[2]:
            capacity = max(2 * self.keys.shape[2], self.length + n)
            self.keys = self._grown(self.keys, capacity)
            self.values = self._grown(self.values, capacity)
        self.keys[:, :, self.length:self.length + n] = keys.to(self.keys.dtype)
        self.values[:, :, self.length:self.length + n] = values.to(self.values.dtype)
        self.length += n

    def _grown(self, buffer: Tensor, capacity: int) -> Tensor:
        grown = _zeros(buffer.shape[0], buffer.shape[1], buffer.shape[3], capacity, self.token_major,
                       buffer.device, buffer.dtype)
        grown[:, :, :self.length] = buffer[:, :, :self.length]
        return grown

    def valid(self) -> tuple[Tensor, Tensor]:
        """The cached keys and values of the tokens seen so far."""
        return self.keys[:, :, :self.length], self.values[:, :, :self.length]

    def bytes_per_token(self) -> int:
        """Bytes one token of one sequence occupies (keys plus values)."""
        k, v = self.keys, self.values
        return k.shape[1] * k.shape[3] * k.element_size() + v.shape[1] * v.shape[3] * v.element_size()


def _zeros(batch: int, heads: int, width: int, capacity: int, token_major: bool, device, dtype) -> Tensor:
    """Zeros [B, h, capacity, d]; with ``token_major`` its memory is [B, capacity, h, d]."""
    if token_major:
        return torch.zeros(batch, capacity, heads, width, device=device, dtype=dtype).transpose(1, 2)
    return torch.zeros(batch, heads, capacity, width, device=device, dtype=dtype)
