"""Sample sheets (CSV/TSV: a sample id column, a cancer type column, any others) joined onto cohorts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nanog1.genomics.variants import InputError

ID_COLUMNS = ("sample", "sample_id", "sample_name", "samples", "tumor_sample_barcode", "aliquot_id", "id")
TYPE_COLUMNS = (
    "cancer_type",
    "cancer type",
    "cancer_types",
    "cancer types",
    "tumour_type",
    "tumor_type",
    "histology",
    "project",
    "dcc_project_code",
)


def _pick(columns: list[str], wanted: tuple[str, ...]) -> str | None:
    lower = {c.lower().strip(): c for c in columns}
    return next((lower[w] for w in wanted if w in lower), None)


def read_sample_sheet(path: Path) -> pd.DataFrame:
    """Sample sheet indexed by sample id (strings), its cancer-type column renamed `cancer_type`."""
    path = Path(path)
    with open(path, errors="replace") as f:
        first = f.readline()
    sep = "\t" if "\t" in first else ","
    try:
        sheet = pd.read_csv(path, sep=sep, dtype=str, comment=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(str(path), None, f"not a readable sample sheet ({err})") from err
    if sheet.empty and not len(sheet.columns):
        raise InputError(str(path), 1, "empty sample sheet")
    id_col = _pick(list(sheet.columns), ID_COLUMNS) or sheet.columns[0]
    dup = sheet[id_col].duplicated()
    if dup.any():
        line = int(dup.to_numpy().nonzero()[0][0]) + 2
        raise InputError(str(path), line, f"duplicate sample id {sheet[id_col][dup].iloc[0]!r}")
    sheet = sheet.set_index(id_col)
    sheet.index = sheet.index.astype(str)
    sheet.index.name = None
    type_col = _pick(list(sheet.columns), TYPE_COLUMNS)
    if type_col and type_col != "cancer_type":
        sheet = sheet.rename(columns={type_col: "cancer_type"})
    return sheet
