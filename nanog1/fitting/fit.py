"""Fit reference signatures to a cohort's catalogues: exposures, reconstruction, cosine, accuracy.

Exposures are mutation counts attributed to each signature: the least-squares (NNLS) weights rescaled
so that they sum to the sample's mutations in the set, as SigProfilerAssignment does (its
single_sample.fit_signatures: weights / sum(weights) * sum(genome)) and as the PCAWG attribution tables
read. Unrescaled, an L2 fit of counts sums to its fitted mass, which a catalogue the signatures explain
poorly puts well below or above the sample's total (a 25-indel tumour read as 10, or 35). `FitConfig(
conserve_total=False)` keeps the raw weights. `reconstruction` is exposures × signatures (it sums to
the total too; its cosine to the catalogue is the least-squares fit's, rescaling a row leaves it as is);
`accuracy` is the cosine similarity of reconstruction and catalogue, the
quantity the PCAWG SigProfiler attribution tables report in their `Accuracy` column.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from nanog1.errors import UserError
from nanog1.fitting.nnls import nnls
from nanog1.fitting.selection import SelectionConfig, select_signatures


@dataclass(frozen=True)
class FitConfig:
    """How to fit: 'nnls' (all signatures) or 'sparse' (forward/backward selection)."""

    method: str = "sparse"
    add_penalty: float = 0.05
    remove_penalty: float = 0.01
    permanent: tuple[str, ...] = ("SBS1", "SBS5")
    max_signatures: int | None = None
    device: str = "cpu"
    conserve_total: bool = True  # exposures sum to each sample's mutations (SigProfilerAssignment)

    def settings(self) -> dict:
        """Plain-dict form for provenance records."""
        out = asdict(self)
        out["permanent"] = list(self.permanent)
        return out


@dataclass
class FitResult:
    """Per-sample fit of one channel set; all frames are indexed by sample."""

    exposures: pd.DataFrame
    reconstruction: pd.DataFrame
    cosine: pd.Series
    l2_error: pd.Series
    config: FitConfig = field(default_factory=FitConfig)

    @property
    def accuracy(self) -> pd.Series:
        """PCAWG-style accuracy: cosine similarity of the reconstruction to the catalogue."""
        return self.cosine.rename("accuracy")

    def signatures_per_sample(self) -> pd.Series:
        """Number of signatures with a non-zero exposure in each sample."""
        return (self.exposures > 0).sum(axis=1).rename("n_signatures")


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity; 0 where either row is all zero."""
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def to_totals(X: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Each row of exposures X rescaled to sum to its catalogue row's total (rows fitted to nothing stay
    zero), as SigProfilerAssignment rescales its NNLS weights."""
    fitted = X.sum(1, keepdims=True)
    total = np.asarray(V, dtype=np.float64).sum(1, keepdims=True)
    return np.divide(X * total, fitted, out=np.zeros_like(X), where=fitted > 0)


def solve_exposures(
    signatures: pd.DataFrame, V: np.ndarray, config: FitConfig, candidates: np.ndarray | None = None
) -> np.ndarray:
    """Exposures (rows × signatures) of catalogue rows V (rows × channels in `signatures` order), summing
    to each row's total unless `config.conserve_total` is off.

    The array-level core of `fit_signatures`, also used by the bootstrap on stacked resampled rows;
    `candidates` (rows × signatures bool) restricts which signatures each row may use.
    """
    X = _least_squares(signatures, V, config, candidates)
    return to_totals(X, V) if config.conserve_total else X


def _least_squares(
    signatures: pd.DataFrame, V: np.ndarray, config: FitConfig, candidates: np.ndarray | None = None
) -> np.ndarray:
    """The NNLS / sparse-selection weights themselves (their sum: the fitted mass)."""
    W = torch.tensor(signatures.to_numpy(np.float64), device=config.device)
    Vt = torch.tensor(np.asarray(V, dtype=np.float64), device=config.device)
    allowed = (
        None if candidates is None else torch.as_tensor(np.asarray(candidates, dtype=bool), device=W.device)
    )
    if config.method == "nnls":
        X = nnls(W, Vt, allowed=allowed)
    elif config.method == "sparse":
        permanent = tuple(i for i, s in enumerate(signatures.columns) if s in config.permanent)
        sel = SelectionConfig(config.add_penalty, config.remove_penalty, permanent, config.max_signatures)
        X = select_signatures(W, Vt, sel, candidates=allowed)
    else:
        raise UserError(f"unknown fitting method {config.method!r}; expected 'nnls' or 'sparse'")
    return X.cpu().numpy()


def fit_signatures(
    catalogue: pd.DataFrame, signatures: pd.DataFrame, config: FitConfig | None = None
) -> FitResult:
    """Fit `signatures` (channels × signatures) to `catalogue` (samples × the same channels)."""
    config = config or FitConfig()
    missing = [c for c in signatures.index if c not in catalogue.columns]
    if missing:
        raise UserError(f"catalogue lacks {len(missing)} signature channels, e.g. {missing[:3]}")
    V = catalogue[list(signatures.index)].to_numpy(np.float64)
    X_np = solve_exposures(signatures, V, config)
    recon = X_np @ signatures.to_numpy(np.float64).T
    resid = np.linalg.norm(V - recon, axis=1)
    norm = np.linalg.norm(V, axis=1)
    idx = catalogue.index
    return FitResult(
        exposures=pd.DataFrame(X_np, index=idx, columns=signatures.columns),
        reconstruction=pd.DataFrame(recon, index=idx, columns=signatures.index),
        cosine=pd.Series(cosine_rows(V, recon), index=idx, name="cosine"),
        l2_error=pd.Series(np.divide(resid, norm, out=np.zeros_like(resid), where=norm > 0), index=idx),
        config=config,
    )
