"""Reading and writing cohort .h5ad files through the ingestion area's helpers (atomic writes)."""

from __future__ import annotations

import os
from pathlib import Path

import anndata as ad

from nanog1.errors import UserError


def read(path: Path) -> ad.AnnData:
    """Read a cohort with `nanog1.genomics.cohort.read_cohort` (plain anndata when it is absent)."""
    try:
        from nanog1.genomics.cohort import read_cohort
    except ImportError:
        return ad.read_h5ad(path)
    return read_cohort(path)


def write(adata: ad.AnnData, path: Path) -> None:
    """Write a cohort atomically with `nanog1.genomics.cohort.write_cohort` (or an anndata fallback)."""
    try:
        from nanog1.genomics.cohort import write_cohort
    except ImportError:
        from nanog1.io import atomic_write_with

        atomic_write_with(path, adata.write_h5ad)
        return
    write_cohort(adata, path)


def require_anndata(adata, who: str) -> None:
    """Refuse anything but an AnnData in one line naming what was given: a path (read it first with
    `nanog1.encoder.read_inputs` or `anndata.read_h5ad`) or another object such as a DataFrame."""
    if isinstance(adata, ad.AnnData):
        return
    if isinstance(adata, (str, os.PathLike)):
        raise UserError(f"{who}: give an AnnData cohort, not the path {str(adata)!r} (read it first: "
                        "nanog1.encoder.read_inputs(path) or anndata.read_h5ad(path))")
    raise UserError(f"{who}: give an AnnData cohort, not a {type(adata).__name__}")
