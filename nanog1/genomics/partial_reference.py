"""Calls on contigs the FASTA lacks: classified from their alleles alone, beside the rest in full context.

A reference that lacks some contigs the variants use (a primary-assembly FASTA and calls on chrM or
decoys, say) does not lose those calls: they get what needs no reference (SBS6, DBS78, ID12, tokens;
SBS96 where a MAF's context column covers them, as `alleles` does), while the calls on the FASTA's
contigs get full context. The file's counts are then SBS96/DBS78/ID83 folded into SBS6/ID12 plus the
reference-free events, so SBS6, DBS78 and ID12 stay exact for every sample, and SBS96/ID83 are exact
only for the samples none of whose calls fell back to SBS6/ID12, or whose calls that fell back are at most
`channels.WITHOUT_CONTEXT_TOLERANCE` of their SBS6 (ID12) calls: those few are left out of SBS96 (ID83)
and counted in SBS6 (ID12) only (`context_tolerated`). `ingest` marks the sets of the other samples
`partial` and lists the samples they are exact for. SigProfiler-compatible mode skips such calls as
`unknown_contig`, as SigProfilerMatrixGenerator does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from nanog1.genomics.channels import DERIVED_FROM, N_CHANNELS, WITHOUT_CONTEXT_TOLERANCE, set_slice
from nanog1.genomics.events import Events, classify_table
from nanog1.genomics.reference import Reference
from nanog1.genomics.variants import VariantTable, first_lines

#: Why a call was classified without sequence context (the accounting's `counted_without_context`).
WITHOUT_CONTEXT = "contig_not_in_reference"


@dataclass
class Classified:
    """One file's events and counts with a reference, and what fell back to the alleles alone.

    `events.accounting` is the per-sample table of the calls classified in context (`events.Tally`)."""

    events: Events
    #: samples x N_CHANNELS, derived sets (SBS6, ID12) filled for every call.
    counts: np.ndarray
    #: samples x N_CHANNELS of the calls classified without context (zeros when there were none).
    without_context: np.ndarray
    #: Calls on contigs absent from the reference, by contig (as the input spells it).
    missing_contigs: Counter
    #: Per sample of the reference-free part: read, counted and skips by reason (None when empty).
    free_accounting: pd.DataFrame | None


def fold_derived(counts: np.ndarray) -> np.ndarray:
    """SBS96 -> SBS6 and ID83 -> ID12 added to whatever the derived blocks already hold."""
    from nanog1.genomics.channels import fold_labels

    out = counts.copy()
    for derived, source in DERIVED_FROM.items():
        fold = np.asarray(fold_labels(derived))
        block = out[:, set_slice(derived)]
        np.add.at(block.T, fold, counts[:, set_slice(source)].T)
        out[:, set_slice(derived)] = block
    return out


def left_out_of_context(counts: np.ndarray, without: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per context set (SBS96, ID83): per sample (its calls classified without context, all its calls of
    that kind), read from the derived set (SBS6, ID12), which counts both; `counts` and `without` are
    samples x N_CHANNELS (counts holds every call, without the part classified without context)."""
    return {source: (without[:, set_slice(derived)].sum(axis=1), counts[:, set_slice(derived)].sum(axis=1))
            for derived, source in DERIVED_FROM.items()}


def context_tolerated(left_out: np.ndarray, total: np.ndarray) -> np.ndarray:
    """True per sample whose context set stays exact: none of its calls of that kind fell back, or at most
    WITHOUT_CONTEXT_TOLERANCE of them did (a few calls on chrM or decoys; see the constant for why)."""
    left_out, total = np.asarray(left_out), np.asarray(total)
    return left_out <= WITHOUT_CONTEXT_TOLERANCE * total + 1e-9  # 1 of 100 is within 1 %


def classify_with_reference(
    table: VariantTable, reference: Reference, compat: bool = False, pass_only: bool = True
) -> Classified:
    """Classify a table against a reference; calls on contigs it lacks are classified reference-free."""
    missing = _missing_rows(table, reference) if not compat else np.zeros(len(table), dtype=bool)
    if not missing.any():
        events = classify_table(table, reference, compat=compat, pass_only=pass_only)
        counts = fold_derived(events.counts())
        return Classified(events, counts, np.zeros_like(counts), Counter(), None)
    from nanog1.genomics.alleles import classify_without_reference

    free_table = replace(table.take(missing), skips=Counter(), declared=[], skip_lines={})
    events = classify_table(table.take(~missing), reference, compat=compat, pass_only=pass_only)
    free, _ = classify_without_reference(free_table, pass_only=pass_only)
    combined, rows = _combine(events, reference.contigs, free)
    combined.accounting = events.accounting
    combined.first_lines[WITHOUT_CONTEXT] = int(free_table.line.min())  # named by the missing-contigs limit
    counts = np.zeros((len(combined.samples), N_CHANNELS), dtype=np.int64)
    counts[rows[0]] += fold_derived(events.counts())
    without = np.zeros_like(counts)
    without[rows[1]] += free.counts()
    by_contig = Counter({str(k): int(v) for k, v in pd.Series(free_table.chrom).value_counts().items()})
    return Classified(combined, counts + without, without, by_contig, free.tally.table)


def _missing_rows(table: VariantTable, reference: Reference) -> np.ndarray:
    """True for calls whose contig the reference does not have (resolved once per distinct name)."""
    codes, names = pd.factorize(table.chrom)
    known = np.array([reference.resolve(str(n)) is not None for n in names] + [True], dtype=bool)
    return ~known[codes]


def _combine(
    events: Events, contigs: list[str], free: Events
) -> tuple[Events, tuple[np.ndarray, np.ndarray]]:
    """One Events of both parts (samples united and sorted; contigs named: the reference's, then the
    others), and each part's sample rows in it."""
    samples = sorted(set(events.samples) | set(free.samples))
    rank = {s: i for i, s in enumerate(samples)}
    rows = tuple(np.array([rank[s] for s in ev.samples], dtype=np.int64) for ev in (events, free))
    names = list(contigs) + [c for c in (free.contigs or []) if c not in set(contigs)]
    where = {c: i for i, c in enumerate(names)}
    free_contig = np.array([where[c] for c in free.contigs or []], dtype=np.int64)
    parts = (events, free)
    sample = np.concatenate(
        [r[ev.sample] if len(ev.sample) else ev.sample for r, ev in zip(rows, parts, strict=True)]
    )
    contig = np.concatenate([events.contig, free_contig[free.contig] if len(free.contig) else free.contig])
    keys = [k for k in events.annotations if k in free.annotations]
    notes = {k: _concat([events.annotations[k], free.annotations[k]]) for k in keys}
    combined = Events(
        samples,
        sample.astype(np.int32),
        np.concatenate([events.channel, free.channel]).astype(np.int16),
        np.concatenate([events.motif, free.motif]).astype(np.int16),
        contig.astype(np.int32),
        np.concatenate([events.pos, free.pos]),
        events.skips + free.skips,
        contigs=names,
        annotations=notes,
        first_lines=first_lines(events.first_lines, free.first_lines),
    )
    return combined, rows


def _concat(values: list) -> np.ndarray | pd.Categorical:
    """Two parts of one per-event column (Categoricals united, arrays concatenated)."""
    if all(isinstance(v, pd.Categorical) for v in values):
        return union_categoricals(values)
    return np.concatenate(
        [np.asarray(v, dtype=object if isinstance(v, pd.Categorical) else None) for v in values]
    )
