"""Modality-agnostic model core: sequence mixers, blocks, stacks and decoding caches (no genomics, no I/O).

Public API: :func:`build_mixer` (Q-Compass, SAVO, MHA, rank-matched MHA, Q-Delta), :class:`StackConfig`,
:class:`Block`, :class:`Stack` and :class:`RoutingCache`. Every mixer maps [B, L, H] -> [B, L, H] with an
optional bool padding mask [B, L] (True = padding) and decodes causally with ``init_cache``/``step``
(x_t [B, 1, H]).
"""

from nanog1.core.block import Block, FeedForward
from nanog1.core.caches import RoutingCache
from nanog1.core.config import StackConfig
from nanog1.core.mha import MHA
from nanog1.core.mixers import MIXER_KINDS, build_mixer
from nanog1.core.qcompass import QCompass
from nanog1.core.queries import NonlinearQuery, query_projection
from nanog1.core.savo import SAVO
from nanog1.core.stack import Stack

__all__ = [
    "MHA",
    "MIXER_KINDS",
    "SAVO",
    "Block",
    "FeedForward",
    "NonlinearQuery",
    "QCompass",
    "RoutingCache",
    "Stack",
    "StackConfig",
    "build_mixer",
    "query_projection",
]
