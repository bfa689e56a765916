"""Reading and writing cohort .h5ad files through the ingestion area's helpers (atomic writes)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad


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
