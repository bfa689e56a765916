"""The normalised variant table every reader produces: one row per (record, ALT allele).

Readers (VCF/BCF, MAF, SigProfiler text) differ only in how they fill this table; everything after
it (filtering, reference checks, classification, tokens) is shared array code. Skipped records are
counted by reason in a `collections.Counter`, never dropped silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from nanog1.errors import UserError

#: Skip reasons, in the order the summary table lists them.
SKIP_REASONS = (
    "unreadable_file",
    "malformed_line",
    "non_pass",
    "symbolic_allele",
    "multiallelic",
    "no_carrier",
    "not_somatic",
    "unsupported_allele",
    "ref_equals_alt",
    "duplicate",
    "unknown_contig",
    "ref_mismatch",
    "out_of_range",
    "complex_indel",
    "mnv",
)


#: What each skip reason means, as the ingest summary and the loss limit's error say it.
REASON_TEXT = {
    "malformed_line": "line could not be parsed",
    "unreadable_file": "file could not be read (counts files, not calls: none of its calls was read)",
    "non_pass": "FILTER not PASS",
    "symbolic_allele": "symbolic/structural ALT (<DEL>, breakend, *)",
    "multiallelic": "multi-allelic record (SigProfiler-compatible mode)",
    "no_carrier": "ALT carried by no sample (GT, or Strelka2 tumour counts)",
    "not_somatic": "caller's somatic status not somatic (VarScan2 SS != 2; MAF Mutation_Status Germline/LOH)",
    "unsupported_allele": "allele with non-ACGT letters",
    "ref_equals_alt": "REF equals ALT",
    "duplicate": "same variant repeated",
    "unknown_contig": "contig not in the reference",
    "ref_mismatch": "REF differs from the reference",
    "out_of_range": "context runs off the contig or into N",
    "complex_indel": "complex indel/MNV, not an ID83 class",
    "mnv": "SNV in a run of 3+ adjacent bases",
}


class InputError(UserError):
    """A malformed input line; the message names the file and line."""

    def __init__(self, path: str, line: int | None, why: str) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {why}")
        self.path, self.line, self.why = path, line, why

    def __reduce__(self):
        """Rebuild from (path, line, why): the error crosses process boundaries (`ingest -j N`) intact."""
        return (type(self), (self.path, self.line, self.why))


@dataclass
class VariantTable:
    """Variants as parallel arrays; `pos` is 1-based, alleles are upper-case strings."""

    sample: np.ndarray
    chrom: np.ndarray
    pos: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    passed: np.ndarray
    line: np.ndarray
    skips: Counter = field(default_factory=Counter)
    declared: list[str] = field(default_factory=list)
    #: Optional per-record columns a reader keeps (MAF: gene, consequence, read counts, context, FILTER);
    #: numpy arrays or pandas Categoricals (string columns of large files).
    annotations: dict[str, np.ndarray] = field(default_factory=dict)
    #: The file line of the first record the reader skipped for each reason (`first_lines`): the loss
    #: limit's error names it, so a lab can look at the line at once.
    skip_lines: dict[str, int] = field(default_factory=dict)
    #: The FILTER values of the rows that do not pass, counted per row (call) as read, where the reader
    #: knows them (VCF/BCF): what a PASS-only ingest drops as `non_pass`, by value ('LowQual', 'germline;
    #: weak_evidence'); MAF readers keep FILTER in `annotations['filter']` instead (`filter_breakdown`).
    filter_values: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.pos)

    def take(self, index: np.ndarray) -> VariantTable:
        """The rows selected by a boolean mask or an index array (skip counts are kept)."""
        return VariantTable(
            self.sample[index],
            self.chrom[index],
            self.pos[index],
            self.ref[index],
            self.alt[index],
            self.passed[index],
            self.line[index],
            self.skips,
            self.declared,
            {k: v[index] for k, v in self.annotations.items()},
            self.skip_lines,
            self.filter_values,
        )


def table_from_lists(
    sample: list,
    chrom: list,
    pos: list,
    ref: list,
    alt: list,
    passed: list,
    line: list,
    skips: Counter | None = None,
    declared: list[str] | None = None,
) -> VariantTable:
    """Build a VariantTable from Python lists (readers collect rows in lists, then convert once)."""
    return VariantTable(
        np.asarray(sample, dtype=object),
        np.asarray(chrom, dtype=object),
        np.asarray(pos, dtype=np.int64),
        np.asarray(ref, dtype=object),
        np.asarray(alt, dtype=object),
        np.asarray(passed, dtype=bool),
        np.asarray(line, dtype=np.int64),
        skips if skips is not None else Counter(),
        declared or [],
    )


def concat_tables(tables: list[VariantTable]) -> VariantTable:
    """Concatenate tables (e.g. MAF chunks), summing their skip counts; the parts are emptied."""
    skips: Counter = Counter()
    values: Counter = Counter()
    declared: list[str] = []
    lines: dict[str, int] = {}
    for t in tables:
        skips.update(t.skips)
        values.update(t.filter_values)
        lines = first_lines(lines, t.skip_lines)
        declared += [s for s in t.declared if s not in declared]
    if not tables:
        empty = table_from_lists([], [], [], [], [], [], [], skips, declared)
        empty.filter_values = values
        return empty
    cols = ("sample", "chrom", "pos", "ref", "alt", "passed", "line")
    keys = [k for k in tables[0].annotations if all(k in t.annotations for t in tables)]
    # Column by column, releasing each part's column once copied: the peak is one table plus one
    # column, not two tables (10 M MAF records).
    arrays = []
    for c in cols:
        arrays.append(np.concatenate([getattr(t, c) for t in tables]))
        for t in tables:
            setattr(t, c, None)
    notes = {}
    for k in keys:
        parts = [t.annotations.pop(k) for t in tables]
        if isinstance(parts[0], pd.Categorical):
            notes[k] = union_categoricals(parts)
        else:
            notes[k] = np.concatenate(parts)
    return VariantTable(*arrays, skips=skips, declared=declared, annotations=notes, skip_lines=lines,
                        filter_values=values)


def filter_breakdown(table: VariantTable) -> Counter:
    """The FILTER values behind the rows that do not pass (what `non_pass` counts under --filter PASS), by
    value: the reader's own count (VCF/BCF), else from a FILTER column it kept (MAF), else none (readers of
    formats without FILTER). Counted on arrays, once per file: a lab sees whether e.g. Mutect2's
    `germline` or Strelka2's `LowEVS` dominate what was dropped."""
    if table.filter_values:
        return Counter(table.filter_values)
    bad = ~np.asarray(table.passed, dtype=bool)
    if "filter" not in table.annotations or not bad.any():
        return Counter()
    counts = pd.Series(np.asarray(table.annotations["filter"], dtype=object)[bad]).value_counts()
    return Counter({str(k): int(v) for k, v in counts.items() if v > 0})


def top_filter_values(values: dict, shown: int = 3) -> str:
    """'LowQual 300, weak_evidence 200, +3 more' (the `shown` most frequent FILTER values, then how many
    other values); '' for none."""
    ranked = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{v} {n:,}" for v, n in ranked[:shown])
    return text + (f", +{len(ranked) - shown} more" if len(ranked) > shown else "")


def filter_counts_table(counts: Mapping[str, int]) -> pd.DataFrame:
    """`uns['nanog1']['filter_dropped']`: the FILTER values behind `non_pass`, one row per value with
    `filter` and `calls`, most calls first (ties by value). A table, not a dict keyed by value: the .h5ad
    (HDF5) splits a key at '/' (`LowQual/strand` came back as {'LowQual': {'strand': n}}) and cannot write
    a '.' key, while a column of values round-trips exactly (as `filter_dropped_by_file` does)."""
    ranked = sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    table = pd.DataFrame(ranked, columns=["filter", "calls"]).astype({"filter": object, "calls": np.int64})
    table.index = table.index.astype(str)
    return table


def filter_counts(record: object) -> dict[str, int]:
    """{FILTER value: calls}, most calls first, from `uns['nanog1']['filter_dropped']` in either form: the
    table (`filter_counts_table`) or the dict of cohorts ingested before it, whose values with a '/' the
    .h5ad gives back as nested dicts (joined again here). {} for none or a record of neither form."""
    counts: Counter = Counter()
    if isinstance(record, pd.DataFrame) and {"filter", "calls"} <= set(record.columns):
        for value, n in zip(record["filter"], record["calls"], strict=True):
            counts[str(value)] += int(n)
    elif isinstance(record, Mapping):
        counts.update(_flatten_counts(record))
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _flatten_counts(record: Mapping, prefix: str = "") -> dict[str, int]:
    """An old-form `filter_dropped` dict with the groups HDF5 made of '/' joined back: {'LowQual':
    {'strand': 3}} -> {'LowQual/strand': 3}."""
    out: dict[str, int] = {}
    for key, value in record.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(_flatten_counts(value, name))
        else:
            out[name] = out.get(name, 0) + int(value)
    return out


def first_lines(*parts: dict[str, int]) -> dict[str, int]:
    """Per skip reason, the earliest file line over `parts` (reason -> line dicts of one file's parts:
    its reader's skips and its classifier's, or the calls read in context and those read without)."""
    out: dict[str, int] = {}
    for part in parts:
        for reason, line in part.items():
            out[reason] = min(out.get(reason, line), int(line))
    return out


def is_symbolic(allele: str) -> bool:
    """True for symbolic/structural ALT alleles: <DEL>, breakends, '*' and missing '.'."""
    return allele.startswith("<") or "[" in allele or "]" in allele or allele in ("*", ".", "")
