"""Readers for the PCAWG catalogue and published-attribution tables (Alexandrov et al. 2020).

The catalogues are channels × genomes CSVs with `CancerType::SampleID` column names; these readers
return samples × channels DataFrames in the project's channel order, so tests and benchmarks can
compare against the published SigProfiler attributions sample by sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nanog1.genomics.channels import CHANNEL_SETS, canonical_dbs
from nanog1.schema import CANCER_TYPE

_CATALOGUE_FILES = {
    "SBS96": "WGS_PCAWG.96.csv",
    "DBS78": "WGS_PCAWG.dinucs.csv",
    "ID83": "WGS_PCAWG.indels.csv",
}
_ATTRIBUTION_FILES = {
    "SBS96": "PCAWG_sigProfiler_SBS_signatures_in_samples.csv",
    "DBS78": "PCAWG_sigProfiler_DBS_signatures_in_samples.csv",
    "ID83": "PCAWG_SigProfiler_ID_signatures_in_samples.csv",
}
_ID_KIND = {"DEL": "Del", "INS": "Ins"}
_ID_SUB = {"C": "C", "T": "T", "repeats": "R", "MH": "M"}


def _sbs_label(row: pd.Series) -> str:
    sub, tri = row.iloc[0], row.iloc[1]
    return f"{tri[0]}[{sub}]{tri[2]}"


def _dbs_label(row: pd.Series) -> str:
    return canonical_dbs(row.iloc[0], row.iloc[1])


def _id_label(row: pd.Series) -> str:
    kind, sub, size, n = (
        row.iloc[0],
        row.iloc[1],
        int(str(row.iloc[2]).rstrip("+")),
        int(str(row.iloc[3]).rstrip("+")),
    )
    return f"{size}:{_ID_KIND[kind]}:{_ID_SUB[sub]}:{n}"


def read_pcawg_catalogue(pcawg_dir: str | Path, channel_set: str = "SBS96") -> pd.DataFrame:
    """Samples × channels counts of one PCAWG catalogue; index = sample id, plus `cancer_type` attrs."""
    path = Path(pcawg_dir) / _CATALOGUE_FILES[channel_set]
    raw = pd.read_csv(path)
    n_label = {"SBS96": 2, "DBS78": 2, "ID83": 4}[channel_set]
    labeller = {"SBS96": _sbs_label, "DBS78": _dbs_label, "ID83": _id_label}[channel_set]
    labels = raw.iloc[:, :n_label].apply(labeller, axis=1)
    counts = raw.iloc[:, n_label:]
    counts.index = labels.to_numpy()
    counts = counts.loc[list(CHANNEL_SETS[channel_set])].T
    types = [c.split("::")[0] for c in counts.index]
    counts.index = [c.split("::")[1] for c in counts.index]
    counts.index.name = "sample"
    counts.attrs[CANCER_TYPE] = pd.Series(types, index=counts.index, name=CANCER_TYPE)
    return counts.astype("float64")


def read_pcawg_attributions(pcawg_dir: str | Path, channel_set: str = "SBS96") -> pd.DataFrame:
    """Published SigProfiler attributions: index = sample id; columns cancer_type, accuracy, signatures."""
    path = Path(pcawg_dir) / _ATTRIBUTION_FILES[channel_set]
    table = pd.read_csv(path, skipinitialspace=True)
    table.columns = [c.strip() for c in table.columns]
    table = table.rename(
        columns={"Cancer Types": CANCER_TYPE, "Sample Names": "sample", "Accuracy": "accuracy"}
    )
    return table.set_index("sample")


_SIGNATURE_FILES = {
    "SBS96": "sigProfiler_SBS_signatures_2019_05_22.csv",
    "DBS78": "sigProfiler_DBS_signatures.csv",
    "ID83": "sigProfiler_ID_signatures.csv",
}


def read_pcawg_signatures(pcawg_dir: str | Path, channel_set: str = "SBS96") -> pd.DataFrame:
    """The PCAWG (COSMIC v3.0) reference signatures, channels × signatures in project order."""
    raw = pd.read_csv(Path(pcawg_dir) / _SIGNATURE_FILES[channel_set])
    if channel_set == "ID83":
        parts = raw.iloc[:, 0].str.split("_", expand=True)
        labels = parts.apply(_id_label, axis=1)
        table = raw.iloc[:, 1:]
    else:
        labels = raw.iloc[:, :2].apply(_sbs_label if channel_set == "SBS96" else _dbs_label, axis=1)
        table = raw.iloc[:, 2:]
    table.index = labels.to_numpy()
    table = table.loc[list(CHANNEL_SETS[channel_set])].astype("float64")
    return table / table.sum(axis=0)


def pcawg_typing_features(pcawg_dir: str | Path, min_genomes: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """SBS96 shares + log10(burden + 1) of every PCAWG genome whose cancer type has ≥ `min_genomes`
    genomes, and each genome's type id (types in sorted order).

    The calibration benchmark and test type tumours from these with an out-of-fold logistic regression.
    """
    counts = read_pcawg_catalogue(pcawg_dir, "SBS96")
    types = counts.attrs[CANCER_TYPE].to_numpy()
    common = pd.Series(types).value_counts()
    keep = np.isin(types, common[common >= min_genomes].index)
    x = counts.to_numpy()[keep]
    burden = x.sum(1, keepdims=True)
    features = np.hstack([x / burden.clip(1), np.log10(burden + 1)])
    return features, np.unique(types[keep], return_inverse=True)[1]
