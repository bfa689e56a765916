"""From a VariantTable and a reference to classified mutation events (SBS96, DBS78, ID83).

Records are checked (FILTER, contig, alleles, duplicates), split into SNVs and indels, then
classified one contig at a time with that contig's sequence loaded once. Two policies:
the default (PASS only, full REF checked, doublets are exactly two adjacent SNVs and are not also
counted as SBS, longer runs counted as `mnv`) and `compat`, which reproduces
SigProfilerMatrixGenerator's matrices (see `classify.find_doublets` and `indels`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from nanog1.genomics.channels import N_CHANNELS, SET_OFFSETS
from nanog1.genomics.classify import SNV_WINDOW, classify_dbs, find_doublets, sbs_from_window
from nanog1.genomics.indels import REASONS as INDEL_REASONS
from nanog1.genomics.indels import IndelBatch
from nanog1.genomics.reference import CODE_TABLE, Reference, encode
from nanog1.genomics.variants import VariantTable, first_lines, is_symbolic

#: Input columns carried onto each event for the token table.
EVENT_ANNOTATIONS = ("gene", "consequence", "protein", "t_ref_count", "t_alt_count", "t_depth", "t_vaf")
DBS_OFFSET = SET_OFFSETS["DBS78"]
ID_OFFSET = SET_OFFSETS["ID83"]


@dataclass
class Events:
    """Classified events of one input: parallel arrays plus the samples they index."""

    samples: list[str]
    sample: np.ndarray
    channel: np.ndarray
    motif: np.ndarray
    contig: np.ndarray
    pos: np.ndarray
    skips: Counter = field(default_factory=Counter)
    #: Contig names the `contig` ids index when there is no reference (else the reference's contigs).
    contigs: list[str] | None = None
    #: Per-event columns carried from the input (EVENT_ANNOTATIONS: gene, consequence, protein change,
    #: read counts).
    annotations: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per-sample record accounting (alleles.RecordTally) where the classifier keeps one.
    tally: object | None = None
    #: Per-sample call accounting of the reference path (calls, counted, skipped by reason; `Tally`).
    accounting: pd.DataFrame | None = None
    #: Per skip reason, the file line of its first skipped call (the reader's and the classifier's): the
    #: loss limit's error names it (`ingest._check_losses`).
    first_lines: dict[str, int] = field(default_factory=dict)

    def counts(self) -> np.ndarray:
        """Samples x N_CHANNELS counts (int64) in `all_channels()` order."""
        flat = np.bincount(
            self.sample.astype(np.int64) * N_CHANNELS + self.channel, minlength=len(self.samples) * N_CHANNELS
        )
        return flat.reshape(len(self.samples), N_CHANNELS)


class Tally:
    """What became of each row (call) of a VariantTable: counted, or skipped for its first reason.

    A row is counted when it gave at least one event (a doublet's two rows, or both bases of a 2-bp
    record, count once each); otherwise it is skipped, under the first reason recorded for it. Rows
    are identified by `VariantTable.line` renumbered 0..n-1 (see `classify_table`).
    """

    def __init__(self, n: int) -> None:
        self.reasons: list[str] = []
        self.outcome = np.full(n, -1, dtype=np.int64)
        self.counted = np.zeros(n, dtype=bool)

    def skip(self, reason: str, rows: np.ndarray) -> None:
        """Record `reason` for rows that have none yet."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return
        if reason not in self.reasons:
            self.reasons.append(reason)
        fresh = rows[self.outcome[rows] < 0]
        self.outcome[fresh] = self.reasons.index(reason)

    def count(self, rows: np.ndarray) -> None:
        """Mark rows that gave an event."""
        self.counted[np.asarray(rows, dtype=np.int64)] = True

    def result(self, sample: np.ndarray, samples: list[str]) -> tuple[Counter, pd.DataFrame]:
        """Skips by reason, and per sample: calls = counted + skipped by reason (a DataFrame)."""
        skipped = ~self.counted
        if (self.outcome[skipped] < 0).any():
            raise AssertionError("a call was neither counted nor skipped (classification bug)")
        codes = self.outcome[skipped]
        skips = Counter({r: int((codes == i).sum()) for i, r in enumerate(self.reasons)})
        table = pd.DataFrame(0, index=pd.Index(samples, dtype=object), columns=["calls", "counted"])
        table["calls"] = np.bincount(sample, minlength=len(samples))
        table["counted"] = np.bincount(sample[self.counted], minlength=len(samples))
        for i, r in enumerate(self.reasons):
            table[r] = np.bincount(sample[skipped][codes == i], minlength=len(samples))
        return +skips, table

    def first_lines(self, line: np.ndarray) -> dict[str, int]:
        """Per skip reason, the earliest file line (`line`: each row's line in the file) of its skipped
        rows."""
        skipped = np.flatnonzero(~self.counted)
        return {r: int(line[skipped[self.outcome[skipped] == i]].min())
                for i, r in enumerate(self.reasons) if (self.outcome[skipped] == i).any()}


def _by_contig(cid: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices grouped by contig id (stable), and where the group of each id 0..n-1 starts (n + 1)."""
    rows = np.argsort(cid, kind="stable")
    return rows, np.searchsorted(cid[rows], np.arange(n + 1))


def _row_samples(table: VariantTable, samples: list[str]) -> np.ndarray:
    """Sample index of every row."""
    codes, names = pd.factorize(table.sample)
    index = {name: i for i, name in enumerate(samples)}
    return (
        np.array([index[name] for name in names], dtype=np.int64)[codes]
        if len(names)
        else codes.astype(np.int64)
    )


@dataclass
class _Parts:
    """Event arrays collected contig by contig, marking the rows they came from as counted."""

    tally: Tally
    cols: tuple[list, ...] = field(default_factory=lambda: ([], [], [], [], [], []))

    def add(self, sample, channel, motif, contig, pos, rows) -> None:
        """Append a batch of events of one contig id or of one id each (`rows`: the calls they came from)."""
        n = len(sample)
        values = (sample, channel, motif, np.broadcast_to(contig, n), pos, rows)
        for col, value in zip(self.cols, values, strict=True):
            col.append(np.asarray(value, dtype=np.int64))
        self.tally.count(rows)

    def arrays(self) -> list[np.ndarray]:
        """sample, channel, motif, contig, pos and source row as int64 arrays."""
        return [np.concatenate(c) if c else np.zeros(0, dtype=np.int64) for c in self.cols]


def _drop(table: VariantTable, bad: np.ndarray, reason: str, skips: Tally) -> VariantTable:
    """Rows not flagged `bad`; the flagged ones are counted under `reason`."""
    if bad.any():
        skips.skip(reason, table.line[bad])
        return table.take(~bad)
    return table


def _plain_alleles(alleles: np.ndarray) -> np.ndarray:
    """True where an allele is A/C/G/T letters only, or a lone '-' (MAF/text indel notation)."""
    if len(alleles) == 0:
        return np.zeros(0, dtype=bool)
    lengths = np.fromiter(map(len, alleles), dtype=np.int64, count=len(alleles))
    bad = (encode("".join(alleles)) == 4).astype(np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    n_bad = np.add.reduceat(np.append(bad, 0), np.minimum(starts, len(bad)))
    return ((n_bad == 0) & (lengths > 0)) | (alleles == "-")


def _contig_ids(chrom: np.ndarray, reference: Reference) -> np.ndarray:
    """Reference contig index of every row's contig name (-1 where the reference lacks it)."""
    codes, names = pd.factorize(chrom)
    index = {name: i for i, name in enumerate(reference.contigs)}
    ids = np.array([index.get(reference.resolve(c) or "", -1) for c in names], dtype=np.int64)
    return ids[codes] if len(ids) else np.full(len(chrom), -1, dtype=np.int64)


def _checked(
    table: VariantTable, reference: Reference, compat: bool, pass_only: bool, skips: Tally, row_sample
) -> tuple[VariantTable, np.ndarray, np.ndarray]:
    """Apply FILTER, allele, contig and duplicate checks; returns the table sorted by (sample, contig,
    position, row), each row's reference contig index and its sample index."""
    if pass_only:
        table = _drop(table, ~table.passed, "non_pass", skips)
    ok_allele = _plain_alleles(table.ref) & _plain_alleles(table.alt)
    symbolic = ~ok_allele
    symbolic[symbolic] = [is_symbolic(a) for a in table.alt[symbolic]]
    table = _drop(table, symbolic, "symbolic_allele", skips)
    ok_allele = ok_allele[~symbolic]
    table = _drop(table, ~ok_allele, "unsupported_allele", skips)
    table = _drop(table, table.ref == table.alt, "ref_equals_alt", skips)
    contig = _contig_ids(table.chrom, reference)
    table = _drop(table, contig < 0, "unknown_contig", skips)
    contig = contig[contig >= 0]
    sid = row_sample[table.line]
    order = np.lexsort((table.line, table.pos, contig, sid))
    table, contig, sid = table.take(order), contig[order], sid[order]
    dup = np.zeros(len(table), dtype=bool)
    if len(table) > 1:
        dup[1:] = (
            (sid[1:] == sid[:-1])
            & (contig[1:] == contig[:-1])
            & (table.pos[1:] == table.pos[:-1])
            & (table.ref[1:] == table.ref[:-1])
            & (table.alt[1:] == table.alt[:-1])
        )
    if compat:
        # SigProfilerMatrixGenerator de-duplicates substitutions in file order (done by the reader)
        # and indels after sorting, as here.
        lr = np.fromiter(map(len, table.ref), dtype=np.int64, count=len(table))
        la = np.fromiter(map(len, table.alt), dtype=np.int64, count=len(table))
        dup &= ~((lr == la) & (lr <= 2) & (table.ref != "-") & (table.alt != "-"))
    return _drop(table, dup, "duplicate", skips), contig[~dup], sid[~dup]


def _letters(alleles: np.ndarray) -> np.ndarray:
    """[n, 2] ASCII codes of 2-bp alleles."""
    return np.frombuffer("".join(alleles).encode("ascii"), np.uint8).reshape(-1, 2)


def _skip_multi(table: VariantTable, multi: np.ndarray, lr: np.ndarray, both: np.ndarray, skips: Tally):
    """Compatible mode: multi-base records SigProfiler drops (3+ bp: complex; 2 bp with a base unchanged),
    skipped in the order their reasons first occur (the order of the accounting's columns)."""
    why = np.where(lr[multi] > 2, 1, 0)
    why[lr[multi] == 2] = np.where(both, 0, 2)
    _, first = np.unique(why, return_index=True)
    for code in why[np.sort(first)]:
        if code:
            skips.skip(("", "complex_indel", "ref_equals_alt")[code], table.line[multi[why == code]])


def _split_substitutions(table: VariantTable, compat: bool, skips: Tally) -> tuple[np.ndarray, ...]:
    """SNV rows (record index, pos, ref code, alt code) including bases of equal-length substitutions."""
    lr = np.fromiter(map(len, table.ref), dtype=np.int64, count=len(table))
    la = np.fromiter(map(len, table.alt), dtype=np.int64, count=len(table))
    dash = (table.ref == "-") | (table.alt == "-")
    single = (lr == 1) & (la == 1) & ~dash
    rec, pos, rc, ac = [np.flatnonzero(single)], [table.pos[single]], [], []
    rc.append(encode("".join(table.ref[single])))
    ac.append(encode("".join(table.alt[single])))
    multi = np.flatnonzero((lr == la) & (lr > 1))
    two, longer = multi[lr[multi] == 2], multi[lr[multi] > 2]
    ref2, alt2 = (_letters(x[two]) for x in (table.ref, table.alt))
    differ = ref2 != alt2
    if compat:
        _skip_multi(table, multi, lr, differ.all(axis=1), skips)
        differ &= differ.all(axis=1, keepdims=True)
        longer = longer[:0]
    i, k = np.nonzero(differ)
    rec.append(two[i])
    pos.append(table.pos[two[i]] + k)
    rc.append(CODE_TABLE[ref2[i, k]])
    ac.append(CODE_TABLE[alt2[i, k]])
    for i in longer:
        r, a = table.ref[i], table.alt[i]
        k = np.array([j for j in range(len(r)) if r[j] != a[j]], dtype=np.int64)
        rec.append(np.full(len(k), i))
        pos.append(table.pos[i] + k)
        rc.append(encode("".join(r[j] for j in k)))
        ac.append(encode("".join(a[j] for j in k)))
    indel = np.flatnonzero(~single & ~((lr == la) & (lr > 1)))
    return (*(np.concatenate(x).astype(np.int64) for x in (rec, pos, rc, ac)), indel)


def _substitutions(
    bases: np.ndarray,
    length: np.ndarray,
    snv: tuple[np.ndarray, ...],
    compat: bool,
    parts: _Parts,
    skips: Tally,
) -> None:
    """Classify SNVs (sample, contig, pos, ref code, alt code, row) into DBS78 and SBS96 events, all
    contigs at once: `bases` holds, per SNV, the base codes at pos-3..pos+1 (0-based; `SNV_WINDOW`) of
    its contig, `length` that contig's length.

    Ties in position keep record order, as SigProfilerMatrixGenerator's stable sort does.
    """
    order = np.lexsort((snv[5], snv[2], snv[1], snv[0]))
    sid, cid, pos, rc, ac, row = (x[order] for x in snv)
    bases, length = bases[:, order], length[order]
    inside = (pos >= 1) & (pos <= length)
    mism = inside & (bases[2] != rc)
    if not compat:
        skips.skip("out_of_range", row[~inside])
        skips.skip("ref_mismatch", row[mism])
        keep = inside & ~mism
        sid, cid, pos, rc, ac, row, bases = (
            sid[keep],
            cid[keep],
            pos[keep],
            rc[keep],
            ac[keep],
            row[keep],
            bases[:, keep],
        )
    # Doublets are adjacent SNVs of one sample on one contig.
    starts, runs = find_doublets(sid * (int(cid.max(initial=0)) + 1) + cid, pos, compat)
    if compat:
        ok = (bases[1, starts] < 4) & (bases[3, starts + 1] < 4) & (pos[starts] >= 2)
        skips.skip("out_of_range", np.concatenate([row[starts[~ok]], row[starts[~ok] + 1]]))
        starts = starts[ok]
    dbs = classify_dbs(rc[starts], rc[starts + 1], ac[starts], ac[starts + 1])
    parts.add(sid[starts], DBS_OFFSET + dbs, np.full(len(starts), -1), cid[starts], pos[starts], row[starts])
    parts.tally.count(row[starts + 1])
    single = np.ones(len(pos), dtype=bool)
    if not compat:
        single[starts] = single[starts + 1] = False
        single &= ~runs
        skips.skip("mnv", row[runs])
    channel, motif = sbs_from_window(bases[:, single], rc[single], ac[single], flank=2 if compat else 1)
    ok = channel >= 0
    srow = row[single]
    if compat:
        bad_ref = mism[single]
        ok &= ~bad_ref & (pos[single] >= 3)
        skips.skip("ref_mismatch", srow[bad_ref & inside[single]])
        skips.skip("out_of_range", srow[~ok & ~bad_ref])
        skips.skip("out_of_range", srow[bad_ref & ~inside[single]])
    else:
        skips.skip("out_of_range", srow[~ok])
    parts.add(sid[single][ok], channel[ok], motif[ok], cid[single][ok], pos[single][ok], srow[ok])


def _indels(
    batch: IndelBatch,
    table: VariantTable,
    rows: np.ndarray,
    sid: np.ndarray,
    parts: _Parts,
    reference: Reference,
) -> None:
    """Classify the table's indels (`rows`, their windows gathered into `batch`) into ID83 events;
    skip reasons are recorded in the order they first occur."""
    index, reason = batch.classify(lambda c: reference.raw(reference.contigs[c]))
    skipped = np.flatnonzero(reason)
    codes, first = np.unique(reason[skipped], return_index=True)
    for code in codes[np.argsort(first)]:
        parts.tally.skip(INDEL_REASONS[code], table.line[rows[skipped[reason[skipped] == code]]])
    keep = reason == 0
    kept = rows[keep]
    n = len(kept)
    parts.add(
        sid[kept],
        ID_OFFSET + index[keep],
        np.full(n, -1),
        batch.contig[keep],
        table.pos[kept],
        table.line[kept],
    )


def classify_table(
    table: VariantTable, reference: Reference, compat: bool = False, pass_only: bool = True
) -> Events:
    """Classify every usable call (table row) of a table; skipped calls are counted by reason.

    `Events.skips` holds the table's own (reader) skips plus one reason per call that gave no event;
    `Events.accounting` has, per sample, calls = counted + skipped by reason.
    """
    samples = sorted(set(table.declared) | set(table.sample.tolist()))
    reader_skips = Counter(table.skips)
    # Rows are renumbered 0..n-1 in `line` (file order kept) so that every skip and event names its call.
    file_line, reader_lines = table.line, table.skip_lines
    table = replace(table, line=np.arange(len(table)))
    notes = table.annotations  # gene, consequence, read counts: carried onto each event by its row
    row_sample = _row_samples(table, samples)
    skips = Tally(len(table))
    table, cid, sid = _checked(table, reference, compat, pass_only and not compat, skips, row_sample)
    rec, spos, rc, ac, indel = _split_substitutions(table, compat, skips)
    scid = cid[rec]
    bases = np.full((len(SNV_WINDOW), len(rec)), 4, dtype=np.int64)
    length = np.zeros(len(rec), dtype=np.int64)
    batch = IndelBatch(table.pos[indel], table.ref[indel], table.alt[indel], compat)
    # One pass over the contigs: read the bases every SNV and indel needs (one small read each).
    snv_rows, snv_at = _by_contig(scid, len(reference.contigs))
    indel_rows, indel_at = _by_contig(cid[indel], len(reference.contigs))
    width = len(SNV_WINDOW)
    for c in np.unique(cid):
        name = reference.contigs[c]
        size = reference.lengths[name]

        def read(starts, lengths, name=name):
            return reference.spans(name, starts, lengths)

        rows = snv_rows[snv_at[c] : snv_at[c + 1]]
        if len(rows):
            text = read(spos[rows] - 1 + SNV_WINDOW[0], np.full(len(rows), width))
            bases[:, rows] = CODE_TABLE[text.reshape(-1, width)].T
        length[rows] = size
        rows = indel_rows[indel_at[c] : indel_at[c + 1]]
        if len(rows):
            batch.gather(read, size, rows, int(c))
    parts = _Parts(skips)
    snv = (sid[rec], scid, spos, rc, ac, table.line[rec])
    _substitutions(bases, length, snv, compat, parts, skips)
    _indels(batch, table, indel, sid, parts, reference)
    s, ch, mo, co, po, source = parts.arrays()
    call_skips, accounting = skips.result(row_sample, samples)
    order = np.lexsort((po, co, s))
    source = source[order]
    # Compact dtypes: a cohort's events are held until the tokens are built (about 20 bytes each).
    return Events(
        samples,
        s[order].astype(np.int32),
        ch[order].astype(np.int16),
        mo[order].astype(np.int16),
        co[order].astype(np.int32),
        po[order],
        +(reader_skips + call_skips),
        annotations={k: v[source] for k, v in notes.items() if k in EVENT_ANNOTATIONS},
        accounting=accounting,
        first_lines=first_lines(reader_lines, skips.first_lines(file_line)),
    )
