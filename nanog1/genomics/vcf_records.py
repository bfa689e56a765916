"""The records of one VCF as read, before their alleles are split into a VariantTable's rows.

Both VCF readers fill a `RawRecords`: pysam's per-record loop (`vcf._collect`) with lists, the sites-only
fast path (`vcf_sites.collect_sites`) with arrays; `vcf` then drops duplicates and splits alleles from it.
Kept in a module of its own so that both readers import it without importing each other.
"""

from __future__ import annotations

from collections import Counter

import numpy as np


class Alleles:
    """Records' allele tuples (REF, ALT1, ...) as pysam gives them, built from REF/ALT arrays on access."""

    def __init__(self, ref: np.ndarray, alt: np.ndarray) -> None:
        self.ref, self.alt = ref, alt

    def __len__(self) -> int:
        return len(self.ref)

    def __getitem__(self, i: int) -> tuple:
        return (self.ref[i], *self.alt[i].split(","))


class RawRecords:
    """Per-record fields as read (alleles not yet split), and skip counts."""

    def __init__(self) -> None:
        #: lists as `vcf._collect` appends to them; arrays (object, int64, bool) from
        #: `vcf_sites.collect_sites`, whose millions of records would cost 36 bytes a POS as Python ints
        self.chrom: list[str] | np.ndarray = []
        self.pos: list[int] | np.ndarray = []
        self.alleles: list[tuple | None] | Alleles = []
        self.filters: list[bool] | np.ndarray = []
        self.genotypes: list[list] = []
        self.line: np.ndarray = np.zeros(0, dtype=np.int64)
        self.skips: Counter = Counter()
        #: the file line of the first record skipped for each reason (VariantTable.skip_lines)
        self.skip_lines: dict[str, int] = {}
        #: REF and ALT (comma-separated) of every record as arrays, where the reader has them (sites-only
        #: text files); `vcf._split` then takes single-ALT records from them without a per-record loop.
        self.ref: np.ndarray | None = None
        self.alt: np.ndarray | None = None
        self.multi: np.ndarray | None = None
        #: the records that do not pass FILTER: their file lines (ascending) and FILTER text ('LowQual',
        #: 'germline;weak_evidence'), kept for these records alone (`vcf._filter_values` counts them per row)
        self.failed_line: np.ndarray = np.zeros(0, dtype=np.int64)
        self.failed_text: np.ndarray = np.zeros(0, dtype=object)
