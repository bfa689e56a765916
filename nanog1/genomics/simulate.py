"""Cohort simulator: cancer-type exposure priors → signature burdens → SBS96/DBS78/ID83 catalogues.

Each genome gets a cancer type; each prior row (or group of rows) of that type is switched on with
its prevalence; an active signature's burden is negative-binomial; its mutations are spread over
channels by a multinomial draw from the COSMIC profile. Everything is deterministic under `seed`.
The drawn burdens are the true exposures, so fitting can be checked against them.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.genomics.channels import CHANNEL_SETS, SIGNATURE_SETS
from nanog1.genomics.signatures import ReferenceSpec, load_reference
from nanog1.schema import CANCER_TYPE

PRIOR_COLUMNS = (
    CANCER_TYPE,
    "channel_set",
    "signature",
    "group",
    "prevalence",
    "mean_burden",
    "dispersion",
)


def default_priors_path() -> Path:
    """The packaged default exposure-prior table (sources in exposure_priors.md beside it)."""
    return Path(str(importlib.resources.files("nanog1.genomics") / "data" / "exposure_priors.csv"))


def read_priors(path: str | Path | None = None) -> pd.DataFrame:
    """Read and check an exposure-prior CSV; errors name the file and line."""
    path = Path(path) if path is not None else default_priors_path()
    table = pd.read_csv(path, dtype={"group": str}, keep_default_na=False)
    missing = [c for c in PRIOR_COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"{path}: missing columns {missing}")
    for i, row in table.iterrows():
        line = int(i) + 2
        if row["channel_set"] not in SIGNATURE_SETS:
            raise UserError(f"{path}:{line}: unknown channel_set {row['channel_set']!r}")
        if not 0 <= float(row["prevalence"]) <= 1:
            raise UserError(f"{path}:{line}: prevalence must lie in [0, 1]")
        if float(row["mean_burden"]) < 0 or float(row["dispersion"]) <= 0:
            raise UserError(f"{path}:{line}: mean_burden must be >= 0 and dispersion > 0")
    return table


@dataclass(frozen=True)
class SimulationConfig:
    """Cohort size, types, burden scale (1.0 = whole-genome burdens), COSMIC reference and seed."""

    n_samples: int = 100
    types: tuple[str, ...] | None = None
    seed: int = 0
    burden_scale: float = 0.1
    cosmic_version: str = "3.4"
    genome_build: str = "GRCh37"
    sample_prefix: str = "SIM"


@dataclass
class SimulatedCohort:
    """Drawn catalogues (samples × 257 channels), true exposures per channel set, and sample sheet."""

    catalogues: pd.DataFrame
    exposures: dict[str, pd.DataFrame]
    sample_sheet: pd.DataFrame
    config: SimulationConfig = field(default_factory=SimulationConfig)

    def channel_set(self, name: str) -> pd.DataFrame:
        """The samples × channels counts of one set (SBS96, DBS78 or ID83)."""
        return self.catalogues[list(CHANNEL_SETS[name])]


def _type_rows(priors: pd.DataFrame, cancer_type: str) -> pd.DataFrame:
    return priors[(priors[CANCER_TYPE] == cancer_type) | (priors[CANCER_TYPE] == "*")]


def _plan(table: pd.DataFrame, cancer_type: str, refs: dict[str, pd.DataFrame], version: str):
    """A type's prior rows and, per row, (channel set, signature column, profile) to draw from."""
    rows = _type_rows(table, cancer_type)
    draws = [
        (str(r.group), float(r.prevalence), float(r.mean_burden), float(r.dispersion))
        for r in rows.itertuples(index=False)
    ]
    targets = []
    for row in rows.itertuples(index=False):
        ref = refs[row.channel_set]
        if row.signature not in ref.columns:
            raise UserError(f"signature {row.signature} is not in COSMIC v{version} {row.channel_set}")
        targets.append((row.channel_set, ref.columns.get_loc(row.signature), ref[row.signature].to_numpy()))
    return draws, targets


def _draw_burdens(rng: np.random.Generator, rows: list[tuple], scale: float) -> np.ndarray:
    """Burden of each prior row for one genome (0 where inactive); grouped rows share one switch."""
    on: dict[str, bool] = {}
    out = np.zeros(len(rows), dtype=np.int64)
    for i, (group, prevalence, mean_burden, size) in enumerate(rows):
        key = group or f"row{i}"
        if key not in on:
            on[key] = bool(rng.random() < prevalence)
        mean = mean_burden * scale
        if on[key] and mean > 0:
            out[i] = rng.negative_binomial(size, size / (size + mean))
    return out


def simulate_cohort(
    n_samples: int = 100,
    types: list[str] | tuple[str, ...] | None = None,
    seed: int = 0,
    priors: pd.DataFrame | str | Path | None = None,
    config: SimulationConfig | None = None,
    **kwargs: object,
) -> SimulatedCohort:
    """Draw a cohort of `n_samples` genomes from cancer-type exposure priors (deterministic in `seed`)."""
    config = config or SimulationConfig(
        n_samples=n_samples, types=tuple(types) if types else None, seed=seed, **kwargs
    )  # type: ignore[arg-type]
    table = priors.fillna({"group": ""}) if isinstance(priors, pd.DataFrame) else read_priors(priors)
    known = sorted(set(table[CANCER_TYPE]) - {"*"})
    chosen = list(config.types) if config.types else known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise UserError(f"cancer types not in the prior table: {unknown}; known: {known}")
    rng = np.random.default_rng(config.seed)
    refs = {
        cs: load_reference(ReferenceSpec(cs, config.cosmic_version, config.genome_build))
        for cs in SIGNATURE_SETS
    }
    names = [f"{config.sample_prefix}{i + 1:04d}" for i in range(config.n_samples)]
    sample_types = [chosen[i % len(chosen)] for i in rng.permutation(config.n_samples)]
    exposures = {cs: np.zeros((config.n_samples, refs[cs].shape[1]), dtype=np.int64) for cs in SIGNATURE_SETS}
    counts = {
        cs: np.zeros((config.n_samples, len(CHANNEL_SETS[cs])), dtype=np.int64) for cs in SIGNATURE_SETS
    }
    plans = {t: _plan(table, t, refs, config.cosmic_version) for t in set(sample_types)}
    for s, cancer_type in enumerate(sample_types):
        rows, targets = plans[cancer_type]
        burdens = _draw_burdens(rng, rows, config.burden_scale)
        for (cs, col, profile), burden in zip(targets, burdens, strict=True):
            if burden:
                exposures[cs][s, col] += burden
                counts[cs][s] += rng.multinomial(burden, profile)
    exposures = {cs: pd.DataFrame(v, index=names, columns=refs[cs].columns) for cs, v in exposures.items()}
    catalogue = pd.DataFrame(
        np.hstack([counts[cs] for cs in SIGNATURE_SETS]),
        index=names,
        columns=[lab for cs in SIGNATURE_SETS for lab in CHANNEL_SETS[cs]],
    )
    catalogue.index.name = "sample"
    sheet = pd.DataFrame({"sample": names, CANCER_TYPE: sample_types})
    return SimulatedCohort(catalogue, exposures, sheet, config)


def simulated_anndata(sim: SimulatedCohort):
    """The drawn catalogues as a cohort AnnData (contract keys), true exposures in obsm."""
    import datetime

    import nanog1
    from nanog1.genomics.cohort import assemble_cohort

    provenance = {
        "nanog1_version": nanog1.__version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(),
        "inputs": [],
        "options": {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(sim.config).items() if v is not None
        },
        "source": "nanog1.genomics.simulate (drawn catalogues)",
        "channel_sets_present": list(SIGNATURE_SETS),
    }
    types = sim.sample_sheet.set_index("sample")[CANCER_TYPE]
    adata = assemble_cohort(
        sim.catalogues.to_numpy(), list(sim.catalogues.index), provenance, cancer_types=types
    )
    for cs, table in sim.exposures.items():
        adata.obsm[f"true_exposures_{cs}"] = table.loc[adata.obs_names].astype(np.float64)
    return adata
