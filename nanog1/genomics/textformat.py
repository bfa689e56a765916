"""The simple text format of the SigProfiler examples: a header line, then whitespace-separated
`Project Sample ID Genome mut_type chrom pos_start pos_end ref alt Type` rows.

Indels may be written with '-' alleles; `pos_start` is then the base before the event, as
SigProfilerMatrixGenerator reads it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from nanog1.genomics.variants import InputError, VariantTable, table_from_lists

TEXT_SUFFIXES = (".txt", ".tsv")


def looks_like_text_format(path: Path) -> bool:
    """True when the first line is the SigProfiler simple-text header (Project, Sample, ...)."""
    with open(path, errors="replace") as f:
        fields = f.readline().split()
    return len(fields) >= 10 and fields[0].lower() == "project" and fields[1].lower().startswith("sample")


def read_text(path: Path, compat: bool = False, on_error: str = "stop") -> VariantTable:
    """Read a SigProfiler simple-text file into a VariantTable (all records count as PASS)."""
    path = Path(path)
    skips: Counter = Counter()
    cols: tuple[list, ...] = ([], [], [], [], [], [], [])
    with open(path) as f:
        next(f, None)
        for number, raw in enumerate(f, start=2):
            fields = raw.split()
            if not fields:
                continue
            try:
                row = (fields[1], fields[5], int(fields[6]), fields[8].upper(), fields[9].upper())
            except (IndexError, ValueError) as err:
                if on_error != "skip":
                    raise InputError(
                        str(path), number, f"expected 11 columns with integer positions ({err})"
                    ) from err
                skips["malformed_line"] += 1
                continue
            for col, value in zip(cols, (*row, True, number), strict=True):
                col.append(value)
    return table_from_lists(*cols, skips=skips)


def text_samples(path: Path) -> tuple[str, ...]:
    """The sample ids of a SigProfiler text file (its second column, sorted), read before the records
    so that the sample sheet can be checked first; malformed lines are left to `read_text`."""
    found: set[str] = set()
    with open(path, errors="replace") as f:
        next(f, None)
        for raw in f:
            fields = raw.split(None, 2)
            if len(fields) >= 2:
                found.add(fields[1])
    return tuple(sorted(found))
