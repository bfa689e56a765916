"""One sample's signature fit, as the Sample page draws it: sample, reconstruction, residual, and flags.

The reconstruction is the fitted exposures times the COSMIC reference profiles they were fitted
with (`uns['signature_fit']` names version and build); its cosine to the observed spectrum says how
much of the sample the fit explains. Samples with few mutations or a poor fit are flagged, since
their exposures should be read loosely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class FitFlagConfig:
    """When a sample's fit is flagged: fewer mutations than `min_mutations`, or cosine below `min_cosine`."""

    min_mutations: int = 50
    min_cosine: float = 0.90


def reconstruction(counts: pd.Series, exposures: pd.Series, reference: pd.DataFrame) -> pd.DataFrame:
    """Per channel: observed count, reconstruction (exposures × reference profiles) and residual.

    `counts` is indexed by channel, `exposures` by signature (mutations attributed), `reference` is
    channels × signatures with columns summing to 1. KeyError names signatures the reference lacks.
    """
    missing = [s for s in exposures.index if s not in reference.columns]
    if missing:
        raise KeyError(f"signatures not in the reference table: {', '.join(map(str, missing[:5]))}")
    profiles = reference.loc[counts.index, list(exposures.index)].to_numpy(dtype=np.float64)
    fitted = profiles @ exposures.to_numpy(dtype=np.float64)
    observed = counts.to_numpy(dtype=np.float64)
    return pd.DataFrame({"channel": counts.index.astype(str), "sample": observed,
                         "reconstruction": fitted, "residual": observed - fitted})


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two spectra (0 when either is empty)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / norm if norm > 0 else 0.0


def fit_flags(total: float, similarity: float | None, config: FitFlagConfig = FitFlagConfig()) -> list[str]:
    """Plain-language reasons to read this sample's exposures loosely (empty when none)."""
    flags = []
    if total < config.min_mutations:
        flags.append(f"low burden: {total:,.0f} mutations (< {config.min_mutations}); "
                     "exposures rest on few events")
    if similarity is not None and similarity < config.min_cosine:
        flags.append(f"poorly fitted: reconstruction cosine {similarity:.3f} (< {config.min_cosine:.2f}); "
                     "the signatures leave much of the spectrum unexplained")
    return flags
