"""MAF reader (GDC/TCGA columns), plain or gzipped, read in chunks with pandas.

Indels keep MAF's '-' alleles and are moved to the anchor convention used by the text format:
`pos` is the base before the event (GDC deletions start at the first deleted base, so their anchor
is Start_Position - 1; insertions start at the base before). SigProfilerMatrixGenerator takes
Start_Position - 1 for both, which the compatible mode copies.
"""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from nanog1.genomics.variants import InputError, VariantTable, concat_tables

MAF_COLUMNS = (
    "Tumor_Sample_Barcode",
    "Chromosome",
    "Start_Position",
    "Reference_Allele",
    "Tumor_Seq_Allele2",
)
MAF_SUFFIXES = (".maf", ".maf.gz", ".maf.txt", ".maf.tsv")


def _header_offset(path: Path) -> int:
    """Number of '#' comment lines before the MAF header line."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    count = 0
    with opener(path, "rt") as f:
        for line in f:
            if not line.startswith("#"):
                break
            count += 1
    return count


def _chunk_table(
    chunk: pd.DataFrame, first_line: int, compat: bool, path: Path, on_error: str
) -> VariantTable:
    """Convert one MAF chunk into a VariantTable, moving indel positions to their anchor base."""
    skips: Counter = Counter()
    lines = first_line + np.arange(len(chunk), dtype=np.int64)
    start = pd.to_numeric(chunk["Start_Position"], errors="coerce")
    bad = start.isna().to_numpy() | chunk["Chromosome"].isna().to_numpy()
    if bad.any():
        if on_error != "skip":
            raise InputError(str(path), int(lines[bad][0]), "Start_Position/Chromosome is not usable")
        skips["malformed_line"] += int(bad.sum())
    keep = ~bad
    ref = chunk["Reference_Allele"].fillna("").astype(str).str.upper().to_numpy()[keep]
    alt = chunk["Tumor_Seq_Allele2"].fillna("").astype(str).str.upper().to_numpy()[keep]
    pos = start.to_numpy()[keep].astype(np.int64)
    is_del = alt == "-"
    is_ins = ref == "-"
    pos = pos - ((is_del | is_ins) if compat else is_del).astype(np.int64)
    passed = np.ones(len(pos), dtype=bool)
    if "FILTER" in chunk.columns:
        flt = chunk["FILTER"].fillna(".").astype(str).to_numpy()[keep]
        passed = (flt == "PASS") | (flt == ".")
    return VariantTable(
        chunk["Tumor_Sample_Barcode"].astype(str).to_numpy()[keep].astype(object),
        chunk["Chromosome"].astype(str).to_numpy()[keep].astype(object),
        pos,
        ref.astype(object),
        alt.astype(object),
        passed,
        lines[keep],
        skips,
    )


def read_maf(
    path: Path, compat: bool = False, on_error: str = "stop", chunksize: int = 500_000
) -> VariantTable:
    """Read a MAF into a VariantTable (one row per record, sample = Tumor_Sample_Barcode)."""
    path = Path(path)
    offset = _header_offset(path)
    try:
        header = pd.read_csv(path, sep="\t", comment="#", nrows=0).columns
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(str(path), offset + 1, f"not a readable MAF ({err})") from err
    missing = [c for c in MAF_COLUMNS if c not in header]
    if missing:
        raise InputError(str(path), offset + 1, f"MAF header lacks columns {missing}")
    usecols = list(MAF_COLUMNS) + (["FILTER"] if "FILTER" in header else [])
    tables = []
    first_line = offset + 2
    try:
        reader = pd.read_csv(path, sep="\t", comment="#", usecols=usecols, dtype=str, chunksize=chunksize)
        for chunk in reader:
            tables.append(_chunk_table(chunk, first_line, compat, path, on_error))
            first_line += len(chunk)
    except pd.errors.ParserError as err:
        raise InputError(str(path), None, f"malformed MAF ({err})") from err
    return concat_tables(tables)
