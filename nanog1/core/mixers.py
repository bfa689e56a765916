"""build_mixer: the one constructor every model uses to pick its sequence mixer by name."""

from __future__ import annotations

from torch import nn

from nanog1.core.mha import MHA
from nanog1.core.qcompass import QCompass
from nanog1.core.queries import QUERY_KINDS
from nanog1.core.savo import SAVO

MIXER_KINDS = ("qcompass", "savo", "mha", "mha_rank", "qdelta")


def _qdelta(hidden_size: int, rank: int, heads: int, causal: bool, query: str) -> nn.Module:
    """Q-Delta lives in its own module (another area); import it only when asked for."""
    if query != "linear":
        raise ValueError("mixer 'qdelta' has no nonlinear-query option; use query='linear'")
    try:
        from nanog1.core.qdelta import QDelta
    except ImportError as err:
        raise ValueError(f"mixer 'qdelta' is unavailable: nanog1.core.qdelta failed ({err})") from err
    return QDelta(hidden_size, rank, heads, causal)


def build_mixer(kind: str, hidden_size: int, rank: int, heads: int, causal: bool,
                query: str = "linear") -> nn.Module:
    """A sequence mixer [B, L, H] -> [B, L, H] by name.

    kind: "qcompass" (Q-Compass; QCompassBi when causal=False), "savo", "mha" (full rank, ``rank``
    unused), "mha_rank" (every projection at rank r) or "qdelta". query: "linear" or "nonlinear"
    (arXiv:2603.13381; see nanog1.core.queries).
    """
    if query not in QUERY_KINDS:
        raise ValueError(f"query must be one of {QUERY_KINDS}, got {query!r}")
    if kind == "qcompass":
        return QCompass(hidden_size, rank, heads, causal, query)
    if kind == "savo":
        return SAVO(hidden_size, rank, heads, causal, query)
    if kind == "mha":
        return MHA(hidden_size, hidden_size, heads, causal, query)
    if kind == "mha_rank":
        return MHA(hidden_size, rank, heads, causal, query)
    if kind == "qdelta":
        return _qdelta(hidden_size, rank, heads, causal, query)
    raise ValueError(f"unknown mixer kind {kind!r}; expected one of {MIXER_KINDS}")
