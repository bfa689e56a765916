"""Reference mutational-signature tables in COSMIC format (SBS96, DBS78, ID83).

The default tables are the COSMIC v3.x reference signatures shipped inside the installed
SigProfilerAssignment package (`data/Reference_Signatures/<build>/COSMIC_v<ver>_<set>_<build>.txt`,
BSD-2-Clause package; the signatures are COSMIC's, Alexandrov et al. 2020, Nature 578:94-101, used
under COSMIC's terms for non-commercial research). Tables are located at run time, never copied.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.genomics.channels import CHANNEL_SETS, canonical_dbs

#: File-name fragment of each channel set in the COSMIC tables.
_SET_FILE = {"SBS96": "SBS", "DBS78": "DBS", "ID83": "ID"}


@dataclass(frozen=True)
class ReferenceSpec:
    """Which COSMIC table to use: channel set, COSMIC version, genome build and exome flag."""

    channel_set: str = "SBS96"
    cosmic_version: str = "3.4"
    genome_build: str = "GRCh37"
    exome: bool = False


def reference_dir() -> Path:
    """The `Reference_Signatures` folder of the installed SigProfilerAssignment package."""
    root = importlib.resources.files("SigProfilerAssignment") / "data" / "Reference_Signatures"
    return Path(str(root))


def reference_path(spec: ReferenceSpec) -> Path:
    """Path of the COSMIC table that `spec` names; FileNotFoundError lists what is available."""
    if spec.channel_set not in _SET_FILE:
        raise UserError(f"unknown channel set {spec.channel_set!r}; expected one of {list(_SET_FILE)}")
    suffix = "_exome" if spec.exome else ""
    name = f"COSMIC_v{spec.cosmic_version}_{_SET_FILE[spec.channel_set]}_{spec.genome_build}{suffix}.txt"
    path = reference_dir() / spec.genome_build / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; available: {', '.join(list_references())}")
    return path


def list_references() -> list[str]:
    """File names of every COSMIC SBS/DBS/ID table the installed package ships."""
    base = reference_dir()
    names = sorted(p.name for p in base.glob("*/COSMIC_v*_*.txt"))
    return [n for n in names if any(f"_{s}_" in n for s in _SET_FILE.values())]


def _row_label(label: str, channel_set: str) -> str:
    """Normalise one row label of a COSMIC table to the project's label of that channel."""
    label = label.strip()
    if channel_set == "DBS78" and ">" in label:
        ref, alt = label.split(">")
        return canonical_dbs(ref, alt)
    return label


def read_signatures(path: str | Path, channel_set: str | None = None) -> pd.DataFrame:
    """Read a COSMIC-format table (channels × signatures, tab- or comma-separated).

    Rows are reordered to the project's channel order; columns are renormalised to sum to 1.
    The channel set is inferred from the row count when not given.
    """
    path = Path(path)
    sep = "," if path.suffix == ".csv" else "\t"
    raw = pd.read_csv(path, sep=sep, header=None, dtype=str)
    table = pd.DataFrame(
        raw.iloc[1:, 1:].to_numpy(), index=raw.iloc[1:, 0].to_numpy(), columns=raw.iloc[0, 1:].to_numpy()
    )
    if channel_set is None:
        by_len = {len(v): k for k, v in CHANNEL_SETS.items()}
        if len(table) not in by_len:
            raise UserError(f"{path}: {len(table)} rows match no channel set (96, 78 or 83)")
        channel_set = by_len[len(table)]
    labels = CHANNEL_SETS[channel_set]
    table.index = [_row_label(str(i), channel_set) for i in table.index]
    missing = sorted(set(labels) - set(table.index))
    if missing:
        raise UserError(f"{path}: {len(missing)} {channel_set} channels missing, e.g. {missing[:3]}")
    table = table.loc[list(labels)].astype(np.float64)
    table.columns = [str(c).strip() for c in table.columns]
    sums = table.sum(axis=0)
    bad = sums[~(sums > 0)]
    if len(bad):
        raise UserError(f"{path}: signatures with no mass: {list(bad.index)}")
    table.index.name = "Type"
    return table / sums


def load_reference(spec: ReferenceSpec | None = None, **kwargs: object) -> pd.DataFrame:
    """The COSMIC reference table for `spec` (or for keyword fields of ReferenceSpec)."""
    spec = spec or ReferenceSpec(**kwargs)  # type: ignore[arg-type]
    return read_signatures(reference_path(spec), spec.channel_set)
