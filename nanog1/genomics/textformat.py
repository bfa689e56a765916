"""The simple text formats of the SigProfiler examples.

- Text: a header line, then whitespace-separated
  `Project Sample ID Genome mut_type chrom pos_start pos_end ref alt Type` rows. Indels may be written
  with '-' alleles; `pos_start` is then the base before the event, as SigProfilerMatrixGenerator reads it.
- Headerless VCF: `.vcf` files (or `.vcf.gz`, gzip or bgzip) with no header at all, tab-separated
  `CHROM POS ID REF ALT [...]` rows (the example VCFs SigProfilerAssignment and SigProfilerMatrixGenerator
  ship). As SigProfilerMatrixGenerator reads them, the sample is the file's name and columns after ALT are
  ignored (FILTER included: their sixth-to-eighth columns are free text there).

Both name the genome build the calls are on: the text format in its Genome column,
SigProfilerMatrixGenerator's headerless examples in the eighth (`X 126136897 PD11326a T A . Simulations mm10
TTC +1`); other species' genomes too (mm9, mm10, rn6, ...). One value per file (`GenomeColumn`: a second is
an error naming the line), read as build evidence (`stated_genome`, `build_checks.genome_builds`): the
reference FASTA is checked against it and a human model abstains on another species' calls.
"""

from __future__ import annotations

import gzip
import zlib
from collections import Counter
from pathlib import Path

from nanog1.genomics.gzip_stream import is_gzip
from nanog1.genomics.variants import InputError, VariantTable, table_from_lists

TEXT_SUFFIXES = (".txt", ".tsv")
#: Where the genome sits (0-based): the headerless VCF's eighth column, the text format's fourth (Genome).
GENOME_FIELD = {"headerless": 7, "text": 3}


class GenomeColumn:
    """The one genome a file's rows state (`build.genome_name` of their genome column; rows whose column
    names no genome state nothing): one FASTA and one model read a file on one genome, so a row stating
    another than the rows above is an InputError naming the file, that line and the first line's."""

    def __init__(self, path: Path, kind: str) -> None:
        self.path, self.at = path, GENOME_FIELD[kind]
        self.first: tuple[str, str, int] | None = None  # (genome, as written, line)

    def see(self, fields: list[str], number: int) -> None:
        """Note the genome of one row (its fields, its line number); raise where it differs."""
        from nanog1.genomics.build import genome_name

        if len(fields) <= self.at:
            return
        written = fields[self.at].strip()
        genome = genome_name(written)
        if genome is None:
            return
        if self.first is None:
            self.first = (genome, written, number)
        elif genome != self.first[0]:
            build, value, line = self.first
            raise InputError(
                str(self.path), number,
                f"genome {written} ({genome}) where the lines above state {value} ({build}, from line "
                f"{line}): one file of two genome builds; split it by genome, each part with its own FASTA",
            )

    def stated(self) -> tuple[str | None, str]:
        """(genome or None, evidence '<source>: <detail>') as build_checks.genome_builds records it."""
        if self.first is None:
            return None, "genome column: states no genome"
        return self.first[0], f"genome column: {self.first[1]} (line {self.first[2]})"


def stated_genome(path: Path, kind: str) -> tuple[str | None, str]:
    """(genome, evidence) a headerless VCF or text file states in its genome column (`GenomeColumn`; the
    error where two differ): read before any record is classified, and again for the cohort's record."""
    path = Path(path)
    column = GenomeColumn(path, kind)
    split = str.split if kind == "text" else (lambda line: line.split("\t"))
    try:
        with (gzip.open if is_gzip(path) else open)(path, "rt", errors="replace") as f:
            for number, raw in enumerate(f, start=1):
                if kind == "text" and number == 1:
                    continue
                column.see(split(raw.rstrip("\r\n")), number)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise InputError(str(path), None, f"truncated or damaged gzip file ({err})") from err
    return column.stated()


def looks_like_text_format(path: Path) -> bool:
    """True when the first line is the SigProfiler simple-text header (Project, Sample, ...)."""
    with open(path, errors="replace") as f:
        fields = f.readline().split()
    return len(fields) >= 10 and fields[0].lower() == "project" and fields[1].lower().startswith("sample")


def looks_like_headerless_vcf(path: Path) -> bool:
    """True for a text file (plain, gzip or bgzip: `gzip *.vcf` is how such folders get shipped) whose first
    line is a VCF record with no header before it (`CHROM POS ID REF ALT`, tab-separated, an integer POS)."""
    try:
        with (gzip.open if is_gzip(path) else open)(path, "rb") as f:
            first = f.readline(4096)
    except (OSError, EOFError, zlib.error):  # a damaged gzip stream: left to the VCF reader to name
        return False
    fields = first.decode("utf-8", errors="replace").rstrip("\r\n").split("\t")
    return len(fields) >= 5 and not fields[0].startswith("#") and fields[1].isdigit() and fields[3] != ""


def read_headerless_vcf(path: Path, sample: str, on_error: str = "stop") -> VariantTable:
    """Read a headerless VCF (see the module docstring) into a VariantTable for `sample`; every record
    counts as PASS and each ALT of a multi-allelic record is its own row, as in a VCF with a header."""
    path = Path(path)
    skips: Counter = Counter()
    cols: tuple[list, ...] = ([], [], [], [], [], [], [])
    genome = GenomeColumn(path, "headerless")
    try:
        with (gzip.open if is_gzip(path) else open)(path, "rt", errors="replace") as f:
            for number, raw in enumerate(f, start=1):
                fields = raw.rstrip("\r\n").split("\t")
                if fields == [""] or fields[0].startswith("#"):
                    continue
                if len(fields) < 5 or not fields[1].isdigit():
                    if on_error != "skip":
                        why = "expected CHROM POS ID REF ALT (tab-separated, no header)"
                        raise InputError(str(path), number, why)
                    skips["malformed_line"] += 1
                    continue
                genome.see(fields, number)
                for alt in fields[4].upper().split(","):
                    row = (sample, fields[0], int(fields[1]), fields[3].upper(), alt, True, number)
                    for col, value in zip(cols, row, strict=True):
                        col.append(value)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:  # a cut-off download
        raise InputError(str(path), None, f"truncated or damaged gzip file ({err})") from err
    return table_from_lists(*cols, skips=skips, declared=[sample])


def read_text(path: Path, compat: bool = False, on_error: str = "stop") -> VariantTable:
    """Read a SigProfiler simple-text file into a VariantTable (all records count as PASS)."""
    path = Path(path)
    skips: Counter = Counter()
    cols: tuple[list, ...] = ([], [], [], [], [], [], [])
    genome = GenomeColumn(path, "text")
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
            genome.see(fields, number)
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
