"""Fit exome/panel SBS96 catalogues against signatures rescaled to the target's trinucleotide opportunity.

COSMIC profiles S[c, s] are genome-scale. With r_c = O_target(c) / O_genome(c) (the share of the
genome's opportunity for channel c that the target captures), a process that would put E_s mutations
in the whole genome is expected to put E_s·S[c,s]·r_c of them in channel c of the target. So the
target-scale profile is S'[c,s] = S[c,s]·r_c / m_s with m_s = Σ_c S[c,s]·r_c, and fitting the target's
catalogue against S' gives target-scale exposures e'_s (mutations observed in the target, summing to
its burden). The genome-equivalent exposure, what a whole genome would carry, is E_s = e'_s / m_s.
When only relative frequencies are known (e.g. per-base rates), r may be scaled freely: S' is
unchanged, and E scales by the same constant.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.fitting.fit import FitConfig, FitResult, fit_signatures
from nanog1.genomics.opportunity import channel_opportunity


@dataclass
class OpportunityFit:
    """A target-scale fit (against S'), genome-equivalent exposures, and the rescaling used."""

    fit: FitResult
    genome_equivalent: pd.DataFrame
    ratio: pd.Series
    capture: pd.Series
    signatures: pd.DataFrame


def opportunity_ratio(target: pd.Series, genome: pd.Series) -> pd.Series:
    """Per-SBS96-channel r_c = O_target / O_genome from 32-context counts (0 where the genome has none)."""
    t, g = channel_opportunity(target), channel_opportunity(genome)
    return pd.Series(np.divide(t, g, out=np.zeros(len(t)), where=g.to_numpy() > 0), index=t.index)


def rescale_signatures(signatures: pd.DataFrame, ratio: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """S' (columns renormalised to sum 1) and the capture m_s = Σ_c S[c,s]·r_c of each signature."""
    r = ratio.loc[signatures.index].to_numpy(np.float64)
    scaled = signatures.to_numpy(np.float64) * r[:, None]
    capture = scaled.sum(0)
    if not (capture > 0).all():
        bad = list(signatures.columns[capture <= 0])
        raise UserError(f"signatures with no opportunity in the target: {bad}")
    frame = pd.DataFrame(scaled / capture, index=signatures.index, columns=signatures.columns)
    return frame, pd.Series(capture, index=signatures.columns, name="capture")


def fit_with_opportunity(
    catalogue: pd.DataFrame,
    signatures: pd.DataFrame,
    target: pd.Series,
    genome: pd.Series,
    config: FitConfig | None = None,
) -> OpportunityFit:
    """Fit target catalogues against opportunity-rescaled signatures; exposures in both scales."""
    ratio = opportunity_ratio(target, genome)
    scaled, capture = rescale_signatures(signatures, ratio)
    result = fit_signatures(catalogue, scaled, config)
    genome_eq = result.exposures / capture
    return OpportunityFit(result, genome_eq, ratio, capture, scaled)
