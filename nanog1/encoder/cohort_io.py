"""Reading and writing cohort .h5ad files through the ingestion area's helpers (atomic writes)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
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
        atomic_write(Path(path), lambda tmp: adata.write_h5ad(tmp))
        return
    write_cohort(adata, path)


def atomic_write(path: Path, writer: Callable[[Path], object]) -> None:
    """Call writer(temp path in the same folder), then os.replace it onto `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
