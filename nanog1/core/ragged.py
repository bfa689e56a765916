"""Ragged (variable-length) batches: sequences packed back to back with offsets, and a length-bucketing
sampler.

A batch of n sequences of lengths l_i is one packed [1, T, H] tensor (T = Σ l_i) plus :class:`Ragged`:
``cu_seqlens`` = [0, l_0, l_0 + l_1, …] (int32, on the tokens' device, what the routing kernel reads)
and the lengths on the host (``max_len`` sizes the kernel's launch grid without a device sync).
Padded to the longest, a skewed batch (exomes: 10–10,000 mutations per tumour) spends most of its
work on padding; packed it spends none. :class:`LengthBucketSampler` groups indices of similar
length into batches under a token budget, so padded batches waste less too.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import Sampler


@dataclass(frozen=True)
class Ragged:
    """Offsets of a packed batch: ``cu_seqlens`` int32 [n + 1] on the device, ``lengths`` on the host."""

    cu_seqlens: Tensor
    lengths: tuple[int, ...]

    @property
    def max_len(self) -> int:
        """The longest sequence (0 for an empty batch)."""
        return max(self.lengths, default=0)

    @property
    def total(self) -> int:
        """T: the packed length."""
        return sum(self.lengths)

    @classmethod
    def from_lengths(cls, lengths: Sequence[int], device: torch.device | str | None = None) -> Ragged:
        """Offsets for sequences of these lengths (each ≥ 0), packed in this order."""
        if any(n < 0 for n in lengths):
            raise ValueError(f"sequence lengths must be >= 0, got {list(lengths)}")
        cu = torch.zeros(len(lengths) + 1, dtype=torch.int32)
        cu[1:] = torch.tensor(list(lengths), dtype=torch.int64).cumsum(0).to(torch.int32)
        return cls(cu.to(device) if device is not None else cu, tuple(int(n) for n in lengths))


def right_padded_lengths(padding_mask: Tensor) -> list[int] | None:
    """Each row's length if every row is right-padded (real tokens first), else None (host syncs)."""
    lengths = (~padding_mask).sum(1)
    expected = torch.arange(padding_mask.shape[1], device=padding_mask.device)[None] >= lengths[:, None]
    return lengths.tolist() if bool((expected == padding_mask).all()) else None


def pack(x: Tensor, padding_mask: Tensor | None) -> tuple[Tensor, Ragged]:
    """[B, L, H] with right padding (bool [B, L], True = pad) -> packed [1, T, H] and its offsets.

    Reads the lengths on the host (one sync); real tokens must come first in every row.
    """
    b, length = x.shape[:2]
    if padding_mask is None:
        return x.reshape(1, b * length, *x.shape[2:]), Ragged.from_lengths([length] * b, x.device)
    lengths = right_padded_lengths(padding_mask)
    if lengths is None:
        raise ValueError("pack() needs right padding: every row's real tokens first")
    return x[~padding_mask][None], Ragged.from_lengths(lengths, x.device)


def unpack(packed: Tensor, ragged: Ragged) -> tuple[Tensor, Tensor]:
    """Packed [1, T, …] -> right-padded [n, max_len, …] (zeros at padding) and its bool padding mask."""
    lengths = torch.tensor(ragged.lengths, device=packed.device)
    mask = torch.arange(ragged.max_len, device=packed.device)[None] >= lengths[:, None]
    out = packed.new_zeros(len(ragged.lengths), ragged.max_len, *packed.shape[2:])
    out[~mask] = packed[0]
    return out, mask


def repack(padded: Tensor, padding_mask: Tensor) -> Tensor:
    """Inverse of :func:`unpack`: the real rows of [n, L, …] packed into [1, T, …]."""
    return padded[~padding_mask][None]


class LengthBucketSampler(Sampler[list[int]]):
    """Batches of indices of similar length under a token budget (CPU; for a DataLoader's batch_sampler).

    Indices are sorted by length (ties in random order), cut into batches whose cost stays ≤
    ``max_tokens``, and the batches come in random order each epoch. Cost is Σ lengths for packed
    batches (``padded=False``) or n · max length for padded ones. A sequence longer than the budget
    forms a batch alone. ``bucket=False`` skips the sort: batches of random composition under the
    same budget (the plain loader, a baseline for what bucketing buys). ``max_batch`` also caps the
    number of sequences in a batch (short sequences would otherwise make a few huge batches).
    """

    def __init__(self, lengths: Sequence[int], max_tokens: int, *, padded: bool = False,
                 shuffle: bool = True, seed: int = 0, bucket: bool = True, max_batch: int | None = None):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        if max_batch is not None and max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.lengths = [int(n) for n in lengths]
        self.max_tokens, self.padded, self.shuffle = max_tokens, padded, shuffle
        self.seed, self.epoch, self.bucket, self.max_batch = seed, 0, bucket, max_batch

    def set_epoch(self, epoch: int) -> None:
        """Reseed the order (as DistributedSampler does)."""
        self.epoch = epoch

    def _order(self, rng: random.Random) -> list[int]:
        tie = [rng.random() if self.shuffle else 0.0 for _ in self.lengths]
        if not self.bucket:
            return sorted(range(len(self.lengths)), key=lambda i: tie[i])
        return sorted(range(len(self.lengths)), key=lambda i: (self.lengths[i], tie[i]))

    def batches(self) -> list[list[int]]:
        """This epoch's batches (deterministic given seed and epoch)."""
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        out, batch, cost_len, total = [], [], 0, 0
        for i in self._order(rng):
            n = self.lengths[i]
            longest = max(cost_len, n)
            cost = longest * (len(batch) + 1) if self.padded else total + n
            if batch and (cost > self.max_tokens or len(batch) == (self.max_batch or -1)):
                out.append(batch)
                batch, cost_len, total = [], 0, 0
                longest = n
            batch.append(i)
            cost_len, total = longest, total + n
        if batch:
            out.append(batch)
        if self.shuffle:
            rng.shuffle(out)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())
