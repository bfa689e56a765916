"""Exposure uncertainty by bootstrap: multinomial resampling of each catalogue, refitted in batches.

Each sample's catalogue (N mutations over the channels) is redrawn `draws` times as
Multinomial(N, catalogue / N) and every redraw is fitted with the same method and settings as the
point fit (sparse selection is redone per draw, so signature presence varies too). All samples ×
draws of a chunk go through the batched fitter as one stack of rows. Per sample and signature we keep
the percentile interval, the fraction of draws in which the signature has a non-zero exposure
(presence), and per sample the median cosine between draw and point exposures (stability). A
sample is flagged low-burden when it has fewer than `min_burden` mutations or its stability is
below `min_stability`: its exposures then move with sampling noise alone. For speed, a sample's
redraws may choose only among a candidate pool (`candidates`; None = all signatures): its point-fit
signatures plus those most similar to its catalogue and to its point-fit residual.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.fitting.fit import FitConfig, cosine_rows, solve_exposures
from nanog1.progress import bar


@dataclass(frozen=True)
class BootstrapConfig:
    """Draws per sample, interval level, seed, low-burden thresholds and rows per batched fit."""

    draws: int = 100
    level: float = 0.95
    seed: int = 0
    min_burden: int = 50
    min_stability: float = 0.9
    candidates: int | None = 12
    chunk_rows: int = 40_000

    def settings(self) -> dict:
        """Plain-dict form for provenance records."""
        return asdict(self)


@dataclass
class BootstrapResult:
    """Interval bounds and presence (samples × signatures), stability and the low-burden flag."""

    lo: pd.DataFrame
    hi: pd.DataFrame
    presence: pd.DataFrame
    stability: pd.Series
    low_burden: pd.Series
    config: BootstrapConfig


def resample(counts: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial redraws (draws × samples × channels) keeping each row's total; zero rows stay zero."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum(1)
    p = np.divide(
        counts, total[:, None], out=np.full_like(counts, 1.0 / counts.shape[1]), where=total[:, None] > 0
    )
    n = np.rint(total).astype(np.int64)
    return rng.multinomial(n, p, size=(draws, len(n))).astype(np.float64)


def candidate_pool(
    signatures: pd.DataFrame, V: np.ndarray, point: np.ndarray, top: int | None
) -> np.ndarray | None:
    """Signatures each sample's redraws may use (samples × signatures bool), or None for all.

    The point fit's support, plus the `top` signatures most similar to the catalogue and the `top`
    most aligned with the point fit's residual (those a redraw could plausibly add).
    """
    k = signatures.shape[1]
    if top is None or top >= k:
        return None
    S = signatures.to_numpy(np.float64)
    unit = S / np.linalg.norm(S, axis=0, keepdims=True)
    pool = point > 0
    for score in (V @ unit, (V - point @ S.T) @ unit):
        best = np.argpartition(-score, top - 1, axis=1)[:, :top]
        np.put_along_axis(pool, best, True, axis=1)
    return pool


def _chunk_stats(
    signatures: pd.DataFrame, V: np.ndarray, point: np.ndarray, fit: FitConfig, cfg: BootstrapConfig, rng
):
    """Bootstrap one block of samples: (lo, hi, presence, stability) arrays for those samples."""
    draws = resample(V, cfg.draws, rng)
    m, c = V.shape
    pool = candidate_pool(signatures, V, point, cfg.candidates)
    allowed = None if pool is None else np.tile(pool, (cfg.draws, 1))
    X = solve_exposures(signatures, draws.reshape(-1, c), fit, allowed).reshape(cfg.draws, m, -1)
    tail = (1.0 - cfg.level) / 2
    lo, hi = np.quantile(X, [tail, 1.0 - tail], axis=0)
    presence = (X > 0).mean(0)
    cos = cosine_rows(X.reshape(-1, X.shape[-1]), np.tile(point, (cfg.draws, 1))).reshape(cfg.draws, m)
    return lo, hi, presence, np.median(cos, axis=0)


def bootstrap_exposures(
    catalogue: pd.DataFrame,
    signatures: pd.DataFrame,
    point: pd.DataFrame,
    fit: FitConfig | None = None,
    config: BootstrapConfig | None = None,
) -> BootstrapResult:
    """Bootstrap intervals of `point` exposures (samples × signatures) fitted to `catalogue` with `fit`."""
    fit = fit or FitConfig()
    cfg = config or BootstrapConfig()
    if cfg.draws < 1 or not 0 < cfg.level < 1 or (cfg.candidates is not None and cfg.candidates < 1):
        raise UserError(f"bootstrap needs draws >= 1, 0 < level < 1 and candidates >= 1 or None: {cfg}")
    V = catalogue[list(signatures.index)].to_numpy(np.float64)
    P = point[list(signatures.columns)].to_numpy(np.float64)
    rng = np.random.default_rng(cfg.seed)
    per_chunk = max(1, cfg.chunk_rows // cfg.draws)
    starts = range(0, len(V), per_chunk)
    parts = [
        _chunk_stats(signatures, V[s : s + per_chunk], P[s : s + per_chunk], fit, cfg, rng)
        for s in bar(starts, f"bootstrap ({cfg.draws} draws, {per_chunk} samples a block)", unit="block")
    ]
    lo, hi, presence, stability = (np.concatenate([p[i] for p in parts]) for i in range(4))
    idx, cols = catalogue.index, signatures.columns
    stab = pd.Series(stability, index=idx, name="stability")
    low = (V.sum(1) < cfg.min_burden) | (stability < cfg.min_stability)
    return BootstrapResult(
        lo=pd.DataFrame(lo, index=idx, columns=cols),
        hi=pd.DataFrame(hi, index=idx, columns=cols),
        presence=pd.DataFrame(presence, index=idx, columns=cols),
        stability=stab,
        low_burden=pd.Series(low, index=idx, name="low_burden"),
        config=cfg,
    )
