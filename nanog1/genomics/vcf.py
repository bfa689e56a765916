"""VCF/BCF reader (pysam.VariantFile): records into a VariantTable, multi-allelic records split.

Sample assignment: a sites-only or SigProfiler-compatible read gives every record to the sample
named after the file; a single-sample VCF gives it to that sample; a multi-sample VCF gives each
ALT allele to the samples whose genotype carries it. Unparseable records stop the read with the
file and line, or are counted as `malformed_line` when `on_error="skip"`.
"""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import numpy as np
import pysam

from nanog1.genomics.variants import InputError, VariantTable, is_symbolic, table_from_lists

VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")


def sample_from_filename(path: Path, compat: bool) -> str:
    """Sample name of a sites-only file: up to the first dot (SigProfiler's rule) or minus the suffix."""
    if compat:
        return path.name.split(".")[0]
    name = path.name
    for suffix in sorted(VCF_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _header_lines(path: Path) -> int | None:
    """Number of header lines of a text VCF (plain or gzipped); None for BCF."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
    opener = gzip.open if magic == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        if f.read(3) == b"BCF":
            return None
        f.seek(0)
        count = 0
        for line in f:
            if not line.startswith(b"#"):
                break
            count += 1
    return count


def read_vcf(path: Path, compat: bool = False, on_error: str = "stop") -> VariantTable:
    """Read one VCF/BCF into a VariantTable; FILTER is recorded in `passed` ('PASS' or '.' pass)."""
    path = Path(path)
    offset = _header_lines(path)
    previous = pysam.set_verbosity(0)
    try:
        vf = pysam.VariantFile(str(path))
    except (OSError, ValueError) as err:
        pysam.set_verbosity(previous)
        raise InputError(str(path), None, f"not a readable VCF/BCF ({err})") from err
    samples = list(vf.header.samples)
    fixed = sample_from_filename(path, compat) if compat or not samples else None
    if fixed is None and len(samples) == 1:
        fixed = samples[0]
    try:
        raw = _collect(vf, str(path), offset, on_error, fixed is None)
    finally:
        vf.close()
        pysam.set_verbosity(previous)
    if compat:
        _drop_file_order_duplicates(raw)
    table = _split(raw, fixed, samples, compat)
    table.declared = [fixed] if fixed is not None else samples
    return table


class _Raw:
    """Per-record fields as read (alleles not yet split), and skip counts."""

    def __init__(self) -> None:
        self.chrom: list[str] = []
        self.pos: list[int] = []
        self.alleles: list[tuple | None] = []
        self.filters: list[bool] = []
        self.genotypes: list[list] = []
        self.line: np.ndarray = np.zeros(0, dtype=np.int64)
        self.skips: Counter = Counter()


def _collect(
    vf: pysam.VariantFile, path: str, offset: int | None, on_error: str, genotypes: bool
) -> _Raw:
    """Read every record's contig, position, alleles, FILTER (and genotypes for multi-sample files).

    The loop body is kept minimal (it runs once per record); a malformed record breaks out of the
    `for`, is reported or counted, and reading resumes with the next record.
    """
    raw = _Raw()
    chrom, pos, alleles, passed = raw.chrom, raw.pos, raw.alleles, raw.filters
    bad: list[int] = []
    records = iter(vf)
    while True:
        try:
            for rec in records:
                chrom.append(rec.chrom)
                pos.append(rec.pos)
                alleles.append(rec.alleles)
                passed.append("PASS" in rec.filter or not len(rec.filter))
                if genotypes:
                    raw.genotypes.append([s.get("GT") for s in rec.samples.values()])
            break
        except (OSError, ValueError) as err:
            bad.append(len(pos) + len(bad) + 1)
            if on_error != "skip":
                where = offset + bad[-1] if offset is not None else bad[-1]
                raise InputError(path, where, f"malformed VCF record ({err})") from err
            raw.skips["malformed_line"] = len(bad)
    index = np.delete(
        np.arange(1, len(pos) + len(bad) + 1, dtype=np.int64), np.asarray(bad, dtype=np.int64) - 1
    )
    raw.line = index + (offset or 0)
    return raw


def _substitution_kept(alleles: tuple | None) -> bool | None:
    """SigProfilerMatrixGenerator's view of a 1- or 2-bp substitution record: True if kept, False if it
    skips it (bad letters, REF base equal to ALT base), None if the record is not a substitution."""
    if alleles is None or len(alleles) != 2:
        return None
    ref, alt = alleles
    if len(ref) != len(alt) or len(ref) > 2 or "-" in ref + alt:
        return None
    return all(r in "ACGT" and a in "ACGT" and r != a for r, a in zip(ref, alt, strict=True))


def _drop_file_order_duplicates(raw: _Raw) -> None:
    """Compatible mode: drop a substitution record identical to the previous record it kept, in file
    order (SigProfilerMatrixGenerator compares each whole line with the last line it did not skip; here
    contig, position, alleles and PASS status are compared)."""
    prev = None
    keep = []
    for i, alleles in enumerate(raw.alleles):
        key = (raw.chrom[i], raw.pos[i], alleles, raw.filters[i])
        kept = _substitution_kept(alleles)
        if kept is not None and key == prev:
            raw.skips["duplicate"] += 1
            continue
        keep.append(i)
        if kept is not False:
            prev = key
    if len(keep) < len(raw.alleles):
        raw.chrom = [raw.chrom[i] for i in keep]
        raw.pos = [raw.pos[i] for i in keep]
        raw.alleles = [raw.alleles[i] for i in keep]
        raw.filters = [raw.filters[i] for i in keep] if raw.filters else raw.filters
        raw.genotypes = [raw.genotypes[i] for i in keep] if raw.genotypes else raw.genotypes
        raw.line = raw.line[np.asarray(keep, dtype=np.int64)]


def _split(raw: _Raw, fixed: str | None, samples: list[str], compat: bool) -> VariantTable:
    """One row per (record, usable ALT allele, carrying sample); skips counted by reason."""
    skips = raw.skips
    n = len(raw.pos)
    passed = raw.filters if raw.filters else [True] * n
    cols: tuple[list, ...] = ([], [], [], [], [], [], [])
    if fixed is not None and _all_biallelic(raw.alleles):
        ref = [a[0] for a in raw.alleles]
        alt = [a[1] for a in raw.alleles]
        cols = ([fixed] * n, raw.chrom, raw.pos, ref, alt, passed, raw.line)
    else:
        for i in range(n):
            _split_one(raw, i, fixed, samples, compat, passed[i], cols, skips)
    table = table_from_lists(*cols, skips=skips)
    table.ref = _upper(table.ref)
    table.alt = _upper(table.alt)
    return table


def _all_biallelic(alleles: list) -> bool:
    """True when every record has exactly one ALT (the common case, handled without a per-row loop)."""
    return all(a is not None and len(a) == 2 for a in alleles)


def _split_one(
    raw: _Raw,
    i: int,
    fixed: str | None,
    samples: list[str],
    compat: bool,
    passed: bool,
    cols: tuple[list, ...],
    skips: Counter,
) -> None:
    """Append record i's usable ALT alleles, counting symbolic, multi-allelic and carrier-less ones."""
    alleles = raw.alleles[i]
    if alleles is None or len(alleles) < 2:
        skips["symbolic_allele"] += 1
        return
    if compat and len(alleles) > 2:
        skips["multiallelic"] += 1
        return
    for number, alt in enumerate(alleles[1:], start=1):
        if is_symbolic(alt):
            skips["symbolic_allele"] += 1
            continue
        if fixed is not None:
            owners = [fixed]
        else:
            owners = [s for s, gt in zip(samples, raw.genotypes[i], strict=True) if gt and number in gt]
        if not owners:
            skips["no_carrier"] += 1
        for sample in owners:
            for col, value in zip(
                cols, (sample, raw.chrom[i], raw.pos[i], alleles[0], alt, passed, raw.line[i]), strict=True
            ):
                col.append(value)


def _upper(alleles: np.ndarray) -> np.ndarray:
    """Upper-case alleles (only rows holding lower-case letters are touched; most files have none)."""
    if len(alleles) == 0:
        return alleles
    lengths = np.fromiter(map(len, alleles), dtype=np.int64, count=len(alleles))
    raw = np.frombuffer("".join(alleles).encode("ascii", "replace"), dtype=np.uint8)
    lower = (raw >= ord("a")) & (raw <= ord("z"))
    if not lower.any():
        return alleles
    row = np.repeat(np.arange(len(alleles)), lengths)[lower]
    alleles = alleles.copy()
    for i in np.unique(row):
        alleles[i] = alleles[i].upper()
    return alleles
