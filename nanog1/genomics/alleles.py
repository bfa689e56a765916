"""Classification from the alleles alone, for inputs with no reference sequence (e.g. TCGA MAFs).

What needs no reference is computed exactly: SBS6 (pyrimidine-folded substitution class), DBS78
(two adjacent substitutions of one tumour, or a 2-bp MAF `DNP`), ID12 (indel type x length; the C/T
class of a 1-bp indel comes from its allele) and, when the MAF carries a sequence-context column
(`CONTEXT`, `ref_context`) for every single substitution, SBS96 and the 5-mer motif too. ID83 needs
repeat context and is not computable here.

Every record is accounted for: it is either counted (it contributes to an event) or skipped for one
reason, per record, so `read = counted + skipped` holds per file and per sample (`RecordTally`).
Multi-base substitutions of 3+ bases (`TNP`, `ONP`) and SNVs in runs of 3+ adjacent bases are counted
as `mnv`, as the reference path counts them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nanog1.genomics.channels import ID12, SET_OFFSETS
from nanog1.genomics.classify import SUB_TABLE, classify_dbs, find_doublets
from nanog1.genomics.events import EVENT_ANNOTATIONS, Events
from nanog1.genomics.reference import CODE_TABLE, contig_key, encode
from nanog1.genomics.variants import SKIP_REASONS, VariantTable, first_lines, is_symbolic

SBS6_OFFSET = SET_OFFSETS["SBS6"]
ID12_OFFSET = SET_OFFSETS["ID12"]
DBS_OFFSET = SET_OFFSETS["DBS78"]
_ID12_INDEX = {label: i for i, label in enumerate(ID12)}
#: Reason codes of the per-record fate array; -1 = counted.
REASONS = SKIP_REASONS
_COUNTED = -1


@dataclass
class RecordTally:
    """Records read, counted and skipped by reason, per sample (rows) — the accounting table."""

    table: pd.DataFrame
    filter_dropped: Counter

    @property
    def balanced(self) -> bool:
        """read == counted + every skip reason, on every row."""
        skipped = self.table.drop(columns=["read", "counted"]).sum(axis=1)
        return bool((self.table["read"] == self.table["counted"] + skipped).all())


def contig_order(names: list[str]) -> list[str]:
    """Canonical contig order: 1..22, X, Y, MT, then the rest sorted."""
    rank = {str(i): i for i in range(1, 23)} | {"X": 23, "Y": 24, "MT": 25}
    return sorted(set(names), key=lambda c: (rank.get(c, 26), c))


_PLAIN = frozenset("ACGT")


def _per_allele(alleles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length (int32) and plain-ness of each allele, computed once per distinct allele: True where it
    is A/C/G/T letters only, or a lone '-' (MAF/text indel notation)."""
    codes, uniques = pd.factorize(alleles)
    lengths = np.array([len(u) for u in uniques] + [0], dtype=np.int32)
    plain = np.array([u == "-" or (bool(u) and set(u) <= _PLAIN) for u in uniques] + [False], dtype=bool)
    return lengths[codes], plain[codes]


def _mask(n: int, rows: np.ndarray) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[rows] = True
    return out


class _Fate:
    """The per-record outcome: -1 counted, else an index into REASONS."""

    def __init__(self, n: int) -> None:
        self.code = np.full(n, _COUNTED, dtype=np.int16)
        self.alive = np.ones(n, dtype=bool)

    def skip(self, mask: np.ndarray, reason: str) -> None:
        hit = mask & self.alive
        self.code[hit] = REASONS.index(reason)
        self.alive &= ~hit


def _first_lines(fate: _Fate, line: np.ndarray) -> dict[str, int]:
    """Per skip reason, the earliest file line (`line`: each record's) of the records skipped for it."""
    skipped = fate.code >= 0
    codes, lines = fate.code[skipped], line[skipped]
    return {REASONS[c]: int(lines[codes == c].min()) for c in np.unique(codes)}


def _check(table: VariantTable, pass_only: bool, fate: _Fate) -> Counter:
    """FILTER, allele and duplicate checks; returns the FILTER values dropped (counted by value)."""
    dropped: Counter = Counter()
    if pass_only:
        bad = ~table.passed
        if "filter" in table.annotations and bad.any():
            counts = pd.Series(table.annotations["filter"][bad]).value_counts()
            dropped.update({str(k): int(v) for k, v in counts[counts > 0].items()})
        fate.skip(bad, "non_pass")
    ok = _per_allele(table.ref)[1] & _per_allele(table.alt)[1]
    symbolic = ~ok
    symbolic[symbolic] = [is_symbolic(a) for a in table.alt[symbolic]]
    fate.skip(symbolic, "symbolic_allele")
    fate.skip(~ok, "unsupported_allele")
    fate.skip(table.ref == table.alt, "ref_equals_alt")
    fate.skip(_duplicated(table, fate.alive), "duplicate")
    return dropped


def _duplicated(table: VariantTable, alive: np.ndarray) -> np.ndarray:
    """Later copies of a (sample, contig, pos, REF, ALT) among the alive rows, on integer codes (a frame
    of the object columns would cost several times the table's memory at 10 M records)."""
    rows = np.flatnonzero(alive)
    columns = (table.alt, table.ref, table.chrom, table.sample)
    keys = [table.pos[rows]] + [pd.factorize(col[rows])[0].astype(np.int32) for col in columns]
    order = np.lexsort(keys)
    same = np.ones(len(rows) - 1, dtype=bool) if len(rows) > 1 else np.zeros(0, dtype=bool)
    for key in keys:
        same &= key[order][1:] == key[order][:-1]
    dup = np.zeros(len(table), dtype=bool)
    dup[rows[order[1:][same]]] = True
    return dup


def _context_codes(context: np.ndarray) -> np.ndarray:
    """[5, n] base codes at centre-2..centre+2 of each context string (4 = unknown or too short)."""
    out = np.full((5, len(context)), 4, dtype=np.int64)
    ctx = pd.Series(context, dtype=object).fillna("").astype(str).str.upper()
    length = ctx.str.len().to_numpy()
    for size in np.unique(length):
        if size < 3 or size % 2 == 0:
            continue
        rows = np.flatnonzero(length == size)
        text = np.frombuffer("".join(ctx.iloc[rows]).encode("ascii", "replace"), dtype=np.uint8)
        grid = CODE_TABLE[text.reshape(len(rows), size)]
        centre = size // 2
        for k in range(-2, 3):
            if 0 <= centre + k < size:
                out[k + 2, rows] = grid[:, centre + k]
    return out


def _sbs(ref: np.ndarray, alt: np.ndarray, context: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, bool]:
    """Channel and motif of single substitutions: SBS96 (+5-mer) when every one has a context whose
    centre is its REF, else SBS6; the flag says which."""
    purine = (ref == 0) | (ref == 2)
    r = np.where(purine, 3 - ref, ref)
    a = np.where(purine, 3 - alt, alt)
    sub = SUB_TABLE[r, a]
    motif = np.full(len(ref), -1, dtype=np.int64)
    if context is not None and len(ref):
        w = _context_codes(context)
        oriented = np.where(purine, 3 - w[::-1], w)
        oriented[oriented < 0] = 4
        if (w[2] == ref).all() and (oriented[1] < 4).all() and (oriented[3] < 4).all():
            motif = np.zeros(len(ref), dtype=np.int64)
            for row in range(5):
                motif = motif * 4 + np.minimum(oriented[row], 3)
            motif = np.where((oriented < 4).all(axis=0), motif, -1)
            return oriented[1] * 24 + sub * 4 + oriented[3], motif, True
    return SBS6_OFFSET + sub, motif, False


def _substitution_bases(table: VariantTable, rows: np.ndarray) -> tuple[np.ndarray, ...]:
    """(record, pos, ref code, alt code) of every differing base of equal-length substitutions <= 2 bp."""
    ref, alt = pd.Series(table.ref[rows], dtype=object), pd.Series(table.alt[rows], dtype=object)
    parts = []
    for k in range(2):
        r, a = ref.str[k].fillna(""), alt.str[k].fillna("")
        hit = ((r != a) & (r != "")).to_numpy()
        parts.append((rows[hit], table.pos[rows[hit]] + k, encode("".join(r[hit])), encode("".join(a[hit]))))
    return tuple(np.concatenate([p[i] for p in parts]).astype(np.int64) for i in range(4))


def _indel_channels(ref: np.ndarray, alt: np.ndarray) -> np.ndarray:
    """ID12 index of each indel ('-' alleles or VCF anchored); -1 for complex ones."""
    out = np.full(len(ref), -1, dtype=np.int64)
    for i, (r, a) in enumerate(zip(ref, alt, strict=True)):
        if r == "-":
            kind, unit = "Ins", a
        elif a == "-":
            kind, unit = "Del", r
        elif r[0] == a[0] and (len(r) == 1 or len(a) == 1):
            kind, unit = ("Ins", a[1:]) if len(r) == 1 else ("Del", r[1:])
        else:
            continue
        if len(unit) == 1:
            out[i] = _ID12_INDEX[f"1:{kind}:{'C' if unit in 'CG' else 'T'}"]
        elif unit:
            out[i] = _ID12_INDEX[f"{min(len(unit), 5)}:{kind}"]
    return out


def classify_without_reference(table: VariantTable, pass_only: bool = True) -> tuple[Events, bool]:
    """Classify every usable record from its alleles; every record is counted or skipped by reason.

    Returns the events (with contig names, per-event annotations and the per-sample tally) and whether
    SBS96 was computed exactly (from a context column); otherwise single substitutions are SBS6.
    """
    samples = sorted(set(table.declared) | set(table.sample.tolist()))
    fate = _Fate(len(table))
    dropped = _check(table, pass_only, fate)
    codes, names = pd.factorize(table.chrom)
    keys = np.array([contig_key(str(c)) for c in names], dtype=object)
    contigs = contig_order(list(keys[np.unique(codes[fate.alive])]) if len(codes) else [])
    index = {c: i for i, c in enumerate(contigs)}
    cid = np.array([index.get(k, -1) for k in keys] + [-1], dtype=np.int32)[codes]
    sample_codes, sample_names = pd.factorize(table.sample)
    rank = np.searchsorted(np.asarray(samples, dtype=object), np.asarray(sample_names, dtype=object))
    sid = np.append(rank, -1).astype(np.int32)[sample_codes]
    lr, la = _per_allele(table.ref)[0], _per_allele(table.alt)[0]
    dash = (table.ref == "-") | (table.alt == "-")
    single = fate.alive & (lr == 1) & (la == 1) & ~dash
    multi = fate.alive & (lr == la) & (lr > 1) & ~dash
    fate.skip(multi & (lr > 2), "mnv")
    del lr, la, dash
    indel = np.flatnonzero(fate.alive & ~single & ~multi)
    subs, sbs96 = _substitution_events(table, fate, single, multi, sid, cid, len(contigs))
    del single, multi
    ids = _indel_channels(table.ref[indel], table.alt[indel])
    fate.skip(_mask(len(table), indel[ids < 0]), "complex_indel")
    indel, ids = indel[ids >= 0], ids[ids >= 0]
    ev_rec = np.concatenate([subs[0], indel])
    ev_channel = np.concatenate([subs[1], (ID12_OFFSET + ids).astype(np.int16)])
    ev_motif = np.concatenate([subs[2], np.full(len(ids), -1, dtype=np.int16)])
    ev_pos = np.concatenate([subs[3], table.pos[indel]])
    del subs, indel, ids
    order = np.lexsort((ev_pos, cid[ev_rec], sid[ev_rec]))
    tally = _tally(samples, sid, fate, table.skips, dropped)
    codes, n = np.unique(fate.code[fate.code >= 0], return_counts=True)
    skips = Counter(table.skips) + Counter({REASONS[c]: int(k) for c, k in zip(codes, n, strict=True)})
    ev_rec = ev_rec[order]
    events = Events(
        samples,
        sid[ev_rec].astype(np.int32),
        ev_channel[order],
        ev_motif[order],
        cid[ev_rec].astype(np.int32),
        ev_pos[order],
        skips,
        contigs=contigs,
        annotations={k: v[ev_rec] for k, v in table.annotations.items() if k in EVENT_ANNOTATIONS},
        tally=tally,
        first_lines=first_lines(table.skip_lines, _first_lines(fate, table.line)),
    )
    return events, sbs96


def _substitution_events(
    table: VariantTable, fate: _Fate, single: np.ndarray, multi: np.ndarray, sid: np.ndarray, cid: np.ndarray,
    n_contigs: int,
) -> tuple[tuple[np.ndarray, ...], bool]:
    """(record, channel int16, motif int16, pos) of lone SNVs then doublets, and whether SBS96 was exact.

    A function of its own so that its per-base arrays (several int64 columns at 10 M records) are
    released before the events are sorted."""
    rows = np.flatnonzero(single)
    snv = (rows, table.pos[rows], encode("".join(table.ref[rows])), encode("".join(table.alt[rows])))
    extra = _substitution_bases(table, np.flatnonzero(multi & fate.alive))
    rec, pos, rc, ac = (np.concatenate([np.asarray(a, np.int64), b]) for a, b in zip(snv, extra, strict=True))
    del snv, extra, rows
    rc, ac = rc.astype(np.int8), ac.astype(np.int8)
    order = np.lexsort((rec, pos, cid[rec], sid[rec]))
    rec, pos, rc, ac = rec[order], pos[order], rc[order], ac[order]
    del order
    starts, runs = find_doublets(sid[rec].astype(np.int64) * (n_contigs + 1) + cid[rec], pos, compat=False)
    fate.skip(_mask(len(table), rec[runs]), "mnv")
    lone = np.ones(len(rec), dtype=bool)
    lone[starts] = lone[starts + 1] = False
    lone &= ~runs & fate.alive[rec]
    # A 2-bp record whose bases are not both changed is a lone SNV; its context centre is not its base.
    context = table.annotations.get("context")
    use_context = context is not None and bool(single[rec[lone]].all())
    channel, motif, sbs96 = _sbs(rc[lone], ac[lone], context[rec[lone]] if use_context else None)
    base = [np.asarray(c, np.int64) for c in (rc[starts], rc[starts + 1], ac[starts], ac[starts + 1])]
    dbs = DBS_OFFSET + classify_dbs(*base)
    return (
        np.concatenate([rec[lone], rec[starts]]),
        np.concatenate([channel, dbs]).astype(np.int16),
        np.concatenate([motif.astype(np.int16), np.full(len(starts), -1, dtype=np.int16)]),
        np.concatenate([pos[lone], pos[starts]]),
    ), sbs96


def _tally(
    samples: list[str], sid: np.ndarray, fate: _Fate, reader_skips: Counter, dropped: Counter
) -> RecordTally:
    """Per-sample read / counted / skipped-by-reason table (reader skips have no sample: row '')."""
    n = len(samples)
    width = len(REASONS) + 1
    flat = np.bincount(sid * width + (fate.code.astype(np.int64) + 1), minlength=n * width).reshape(n, width)
    table = pd.DataFrame(flat[:, 1:], index=pd.Index(samples, dtype=str), columns=list(REASONS))
    table.insert(0, "counted", flat[:, 0])
    table.insert(0, "read", flat.sum(axis=1))
    if sum(reader_skips.values()):
        row = pd.DataFrame(0, index=pd.Index([""], dtype=str), columns=table.columns)
        for reason, count in reader_skips.items():
            if reason in row.columns:
                row.loc["", reason] = count
        row["read"] = sum(reader_skips.values())
        table = pd.concat([table, row])
    used = [c for c in REASONS if table[c].any()]
    return RecordTally(table[["read", "counted", *used]].astype(np.int64), dropped)
