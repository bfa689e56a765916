"""What `nanog1 ingest --check-only` checks of the reference FASTA (`--reference`), before any call is read.

The checks ingest itself makes against the reference, told at check time without reading a whole file:

- the FASTA exists, is one htslib can index (not plain gzip) and has an index (.fai) that matches it
  (`fasta_index.index_state`, read only: nothing is written). A missing or stale index is a note where
  ingest will build it (its folder is writable) and an error, saying how to make one (`samtools faidx`),
  where it cannot. Without a usable index the contig names and lengths the checks below need are read
  from the FASTA itself (`header_lengths`: its '>' lines found in large blocks, the bases between them
  counted, nothing written), so a first run with a fresh FASTA is checked as fully as a later one;
- where VCF headers (`##contig` lines, as Mutect2 and GATK write them) and the index both give a contig's
  length, they agree (`build_checks.check_reference_lengths`: a GRCh37 VCF against a GRCh38 FASTA is named as
  such), and a MAF's NCBI_Build and a SigProfiler file's genome column name the FASTA's build
  (`build_checks.check_maf_builds`, `build_checks.check_stated_genomes`);
- the contigs a VCF's header and first records (`vcf.first_contigs`), or a MAF's first records' Chromosome
  values (`maf.first_records`: Firehose's 23 and 24 read as X and Y, as ingest reads them), name are the
  reference's, matched as ingest matches them (`reference.resolve_contig`: `chr1` is `1`, `M` is `MT`). A file
  that shares no contig with the FASTA would have every call read without context and be refused by ingest's
  limit on calls on contigs the reference lacks: an error naming how each names its contigs. Contigs the FASTA
  lacks beside others it has, and names matched only by adding or removing their `chr` prefix, are notes;
- the first records (`vcf.first_records`; a MAF's Chromosome, Start_Position and Reference_Allele,
  `maf.first_records`) lie within their contig and, where the FASTA is plain text with a usable index, their
  REF alleles are its bases there (`record_notes`; an insertion's '-' names none): a VCF with no ##contig
  lengths (a headerless SigProfiler file), or a MAF, called on another FASTA or build passed the checks above
  and was refused by ingest on its first line. Most of them not matching is an error (ingest would refuse the
  file), a few a note.

Errors are InputErrors naming the file; notes are returned as lines naming the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from nanog1.genomics.build import GRCH37
from nanog1.genomics.contigs import canonical_chrom_name
from nanog1.genomics.variants import InputError

#: Files named in one note, at most (a cohort's 1,000 VCFs share one header: one note, not 1,000).
FILES_NAMED = 3
#: Contigs named in one note or error, at most.
CONTIGS_NAMED = 5
#: Chromosome names whose spelling tells a naming style (canonical: 1-22, X, Y, MT).
_PRIMARY = frozenset(GRCH37) | {"MT"}
#: Bytes read at a time by `header_lengths` (the '>' lines are found by bytes.find within each block).
SCAN_CHUNK = 16 << 20


def check_reference(reference: Path, plans: list, max_skip_fraction: float,
                    skip_limit_name: str) -> list[str]:
    """Check `reference` against the planned inputs (`ingest.FilePlan`s) as ingest would, reading FASTA
    index and VCF headers and first records only; return notes. InputError for what ingest would refuse:
    a missing FASTA, an index it cannot build, contig lengths of another build, a VCF or MAF sharing no
    contig with the FASTA (unless `max_skip_fraction` is 1: ingest then reads its calls without context),
    a VCF or MAF whose first records mostly lie past their contig's end or name REF alleles that are not
    its bases."""
    from nanog1.genomics.build_checks import check_maf_builds, check_reference_lengths, check_stated_genomes

    lengths, notes = index_lengths(Path(reference))
    check_reference_lengths([p.path for p in plans if p.kind == "vcf"], reference, lengths)
    check_maf_builds([p.path for p in plans if p.kind == "maf"], reference, lengths)
    stated = [(p.path, p.kind) for p in plans if p.kind in ("headerless", "text")]
    check_stated_genomes(stated, reference, lengths)
    calls = [p for p in plans if p.kind in ("vcf", "headerless", "maf")]
    index = _plain_index(Path(reference), notes)  # None where a note says the index is missing or stale
    notes += contig_notes(calls, reference, lengths, max_skip_fraction, skip_limit_name)
    return notes + record_notes(calls, Path(reference), lengths, index, max_skip_fraction, skip_limit_name)


def index_lengths(fasta: Path) -> tuple[dict[str, int], list[str]]:
    """(contig lengths from the FASTA's index, notes); where there is no usable index yet, the lengths
    are read from the FASTA itself (`header_lengths`) and a note says ingest will build the index. Errors
    for a missing FASTA, one htslib cannot index, and an index missing or stale in a folder ingest cannot
    write to."""
    from nanog1.genomics.fasta_index import can_write, index_state, read_fai, unindexable, unwritable_index

    if not fasta.exists():
        raise InputError(str(fasta), None, "reference FASTA not found")
    if not fasta.is_file():
        raise InputError(str(fasta), None, "a directory, not a reference FASTA")
    why = unindexable(fasta)
    if why is not None:
        raise InputError(str(fasta), None, f"cannot index the reference FASTA: {why}")
    fai, problem = index_state(fasta)
    if problem is None:
        return {e.name: e.length for e in read_fai(fai)}, []
    if not can_write(fai.parent):
        raise unwritable_index(fasta, fai, problem)
    what = ("has no index" if problem == "it is missing"
            else f"has an index that does not match it ({problem})")
    return header_lengths(fasta), [f"{fasta}: {what}; ingest will build {fai.name} (or make it now with "
                                   f"`samtools faidx {fasta}`); the inputs' contigs were checked against the "
                                   "FASTA's own '>' lines"]


def header_lengths(fasta: Path, chunk: int = SCAN_CHUNK) -> dict[str, int]:
    """{contig: length} read from the FASTA itself, in file order, for the checks made before its index
    exists: names as samtools faidx takes them (the '>' line up to its first space), lengths as the bytes
    between one '>' line and the next less their line ends. The file is read in `chunk`-byte blocks in
    which `bytes.find` and `bytes.count` find the '>' lines and line ends: no sequence line is looked at in
    Python. Measured on a 3.1 Gb GRCh38-sized FASTA (195 contigs) from the page cache: 1.7 s (0.5 s of it
    reading and finding the '>' lines, the rest counting line ends for the lengths); bgzipped, 11 s
    through gzip (htslib's BGZF reader: 9.4 s, but it tells a damaged file in log lines). A name given
    twice keeps its first length, as htslib does; spaces inside sequence lines (which samtools does not
    count) would be counted. InputError for a file that cannot be read to its end (a truncated or
    damaged bgzip)."""
    import gzip
    import zlib

    from nanog1.genomics.fasta_index import is_bgzipped

    scan = _HeaderScan()
    try:
        with (gzip.open(fasta, "rb") if is_bgzipped(fasta) else open(fasta, "rb")) as f:
            _feed_blocks(f, scan, chunk)
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
        raise InputError(str(fasta), None, f"cannot read the reference FASTA ({err})") from None
    return scan.lengths


def _feed_blocks(f: BinaryIO, scan: _HeaderScan, chunk: int) -> None:
    """Give `scan` the file block by block; a '>' line cut by a block's end is carried into the next."""
    carry = b""
    while True:
        data = f.read(chunk)
        block = carry + data if carry else data
        if not block:
            return
        carry = scan.feed(block, final=not data)
        if not data:
            return


class _HeaderScan:
    """The state of `header_lengths` between blocks: the contigs so far, the one whose bases are being
    counted and whether the next block starts a line."""

    def __init__(self) -> None:
        self.lengths: dict[str, int] = {}
        self.current: str | None = None  # None before the first '>' line and for a repeated name
        self.line_start = True
        self.crlf = False

    def feed(self, block: bytes, final: bool) -> bytes:
        """Count `block`'s bases and take its '>' lines; return the unfinished '>' line at its end (b'')."""
        pos = 0
        at = block.find(b">")
        while at != -1:
            if (at == 0 and not self.line_start) or (at > 0 and block[at - 1] != 0x0A):
                at = block.find(b">", at + 1)  # a '>' inside a line: not a header
                continue
            end = block.find(b"\n", at)
            if end == -1 and not final:
                self._count(block, pos, at)
                self.line_start = True
                return block[at:]
            self._count(block, pos, at)
            self._start(block[at + 1:end if end != -1 else len(block)])
            pos = len(block) if end == -1 else end + 1
            at = block.find(b">", pos)
        self._count(block, pos, len(block))
        self.line_start = block.endswith(b"\n")
        return b""

    def _start(self, header: bytes) -> None:
        """A '>' line: its name (up to the first space) starts a contig, unless given before."""
        self.crlf = self.crlf or header.endswith(b"\r")
        words = header.split(maxsplit=1)
        name = words[0].decode("utf-8", "replace") if words else ""
        self.current = None if name in self.lengths else name
        if self.current is not None:
            self.lengths[name] = 0

    def _count(self, block: bytes, start: int, end: int) -> None:
        """Add the bases of block[start:end] (its bytes less line ends) to the current contig."""
        if self.current is None or end <= start:
            return
        ends = block.count(b"\n", start, end) + (block.count(b"\r", start, end) if self.crlf else 0)
        self.lengths[self.current] += end - start - ends


def naming(names: list[str]) -> str:
    """How a list of contig names spells chromosomes: 'with a chr prefix (chr1, chr2, ...)', 'without a
    chr prefix (1, 2, ...)', both, or, where no name is a chromosome 1-22/X/Y/MT, the names themselves
    (RefSeq accessions, another organism's)."""
    primary = [n for n in names if canonical_chrom_name(n) in _PRIMARY]
    prefixed = [n for n in primary if n.lower().startswith("chr")]
    bare = [n for n in primary if not n.lower().startswith("chr")]
    if prefixed and bare:
        return f"both with and without a chr prefix ({prefixed[0]}, {bare[0]})"
    if primary:
        return f"{'with' if prefixed else 'without'} a chr prefix ({_few(primary, 2)})"
    return f"as {_few(names, 2)} (no chromosome 1-22, X, Y or MT among them)"


def _named_contigs(plan) -> tuple[list[str], list[str]]:
    """(contigs a planned file's header names, distinct contigs of its first records): a VCF's `##contig`
    lines and `vcf.first_contigs`; a MAF has no header contigs, its records' Chromosome values as ingest
    reads them (`maf.first_records`: Firehose's 23 is X), so both kinds are checked by one path."""
    from nanog1.genomics import maf
    from nanog1.genomics.build import vcf_header_facts
    from nanog1.genomics.vcf import first_contigs

    if plan.kind == "maf":
        return [], list(dict.fromkeys(chrom for chrom, _, _ in maf.first_records(Path(plan.path))))
    header = list(vcf_header_facts(Path(plan.path))[0]) if plan.kind == "vcf" else []
    return header, first_contigs(Path(plan.path))


def contig_notes(plans: list, reference: Path, lengths: dict[str, int], max_skip_fraction: float,
                 skip_limit_name: str) -> list[str]:
    """Notes on the contigs the VCFs (header `##contig` lines and first records) and MAFs (first records'
    Chromosome) name against the FASTA's, matched as ingest matches them (`resolve_contig`, which ingest's
    classification and `partial_reference` use for both); an InputError for a file that shares none with
    it."""
    from nanog1.genomics.reference import contig_keys, resolve_contig

    keys = contig_keys(list(lengths))
    fasta_names = list(lengths)
    said: dict[str, list[str]] = {}
    for plan in plans:
        path = Path(plan.path)
        header, records = _named_contigs(plan)
        named = list(dict.fromkeys(header + records))
        if not named:
            continue
        resolved = {n: resolve_contig(n, lengths, keys) for n in named}
        missing = [n for n in named if resolved[n] is None]
        if len(missing) == len(named):
            kind = "MAF" if plan.kind == "maf" else "VCF"
            refusal = (f"none of the contigs it names ({_few(named)}) is in the reference {reference}: the "
                       f"{kind} names them {naming(named)}, the reference {naming(fasta_names)}; is it the "
                       "FASTA the calls were made on?")
            if max_skip_fraction < 1:
                raise InputError(str(path), None, refusal + " Ingest would read every call without context "
                                 f"and refuse the file (more than {skip_limit_name} {max_skip_fraction:g} "
                                 "of its calls on contigs the reference lacks)")
            said.setdefault(refusal + " Its calls will be read without context (SBS6, DBS78, ID12)",
                            []).append(path.name)
            continue
        if missing:
            where = "first records" if set(missing) & set(records) else "header"
            text = (f"its {where} name{'s' if where == 'header' else ''} {len(missing)} contig(s) the "
                    f"reference {reference.name} lacks ({_few(missing)}): calls there are read without "
                    "context (SBS6, DBS78, ID12)")
            said.setdefault(text, []).append(path.name)
        renamed = [n for n in named if resolved[n] is not None and resolved[n] != n]
        if renamed:
            text = (f"names contigs {naming(named)}, the reference {reference.name} {naming(fasta_names)}: "
                    f"ingest matches them by name, as it reads them ({renamed[0]} is {resolved[renamed[0]]})")
            said.setdefault(text, []).append(path.name)
    return [f"{_files(names)}: {text}" for text, names in said.items()]


#: Calls on the reference's contigs among a VCF's first records that `record_notes` needs to refuse it.
MIN_CHECKED = 10
#: Share of those calls that must not match the FASTA for --check-only to refuse the file (and more than
#: --max-skip-fraction): the first records only sample a file, and a few mismatches do not tell its share.
REFUSE_SHARE = 0.5


def _plain_index(fasta: Path, notes: list[str]) -> dict | None:
    """{contig: FaiEntry} of a plain-text FASTA whose index matches it (no note said otherwise), for reading
    a few bases by offset; None for a bgzipped FASTA or one without a usable index (REF is then unchecked)."""
    from nanog1.genomics.fasta_index import index_state, is_bgzipped, read_fai

    if notes or is_bgzipped(fasta):
        return None
    return {e.name: e for e in read_fai(index_state(fasta)[0])}


def _bases(f: BinaryIO, entry, pos: int, n: int) -> str:
    """`n` bases of a contig from 1-based `pos`, upper case, read at their offset through its .fai entry."""
    start = entry.offset + (pos - 1) // entry.line_bases * entry.line_bytes + (pos - 1) % entry.line_bases
    f.seek(start)
    chunk = f.read(n + (n // entry.line_bases + 2) * (entry.line_bytes - entry.line_bases))
    return chunk.replace(b"\n", b"").replace(b"\r", b"")[:n].decode("ascii", "replace").upper()


def record_notes(plans: list, reference: Path, lengths: dict[str, int], index: dict | None,
                 max_skip_fraction: float, skip_limit_name: str) -> list[str]:
    """Notes on the VCFs' and MAFs' first records against the FASTA: positions past the end of their
    contig, and, with `index` (`_plain_index`), REF alleles that are not the FASTA's bases there. An
    InputError where more than REFUSE_SHARE (and --max-skip-fraction) of at least MIN_CHECKED such calls do
    not match: ingest counts every one as lost (out_of_range, ref_mismatch) and would refuse the file."""
    notes = []
    with open(reference, "rb") as f:
        for plan in plans:
            checked, mismatched, past, first = _first_record_misfits(_first_records(plan), f, lengths, index)
            if not mismatched + past:
                continue
            parts = [f"{mismatched:,} REF not the reference's base"] if mismatched else []
            parts += [f"{past:,} past the end of their contig"] if past else []
            text = (f"{mismatched + past:,} of its first {checked:,} calls on the reference's contigs do not "
                    f"match {reference.name} ({', '.join(parts)}; first: {first}): is it the FASTA the calls "
                    "were made on?")
            share = (mismatched + past) / checked
            if max_skip_fraction < 1 and checked >= MIN_CHECKED and share > max(REFUSE_SHARE,
                                                                                 max_skip_fraction):
                raise InputError(str(plan.path), None, f"{text} Ingest would refuse the file (more than "
                                 f"{skip_limit_name} {max_skip_fraction:g} of its calls lost)")
            notes.append(f"{Path(plan.path).name}: {text}")
    return notes


def _first_records(plan) -> list[tuple[str, int, str]]:
    """(contig, position, REF) of a planned file's first records: a MAF's Chromosome, Start_Position and
    Reference_Allele (`maf.first_records`), a VCF's CHROM, POS and REF (`vcf.first_records`)."""
    from nanog1.genomics import maf, vcf

    return (maf.first_records if plan.kind == "maf" else vcf.first_records)(Path(plan.path))


def _first_record_misfits(records: list[tuple[str, int, str]], fasta: BinaryIO, lengths: dict[str, int],
                          index: dict | None) -> tuple[int, int, int, str]:
    """(calls of a file's first `records` on the FASTA's contigs, REF alleles not its bases there, positions
    past the end of the contig, the first of either as 'chr1:1,234 REF G, the reference A')."""
    from nanog1.genomics.reference import contig_keys, resolve_contig

    keys = contig_keys(list(lengths))
    checked, mismatched, past, first = 0, 0, 0, ""
    for chrom, pos, ref in records:
        contig = resolve_contig(chrom, lengths, keys)
        if contig is None:
            continue
        checked += 1
        if pos + max(len(ref), 1) - 1 > lengths[contig]:
            past += 1
            first = first or f"{chrom}:{pos:,} past the {lengths[contig]:,} bases of {contig}"
            continue
        if index is None or contig not in index or not ref or set(ref.upper()) - set("ACGT"):
            continue  # REF unchecked: no plain indexed FASTA, or not bases (a MAF-style '-', a symbol)
        base = _bases(fasta, index[contig], pos, len(ref))
        if "N" not in base and base != ref.upper():
            mismatched += 1
            first = first or f"{chrom}:{pos:,} REF {ref}, the reference {base}"
    return checked, mismatched, past, first


def _few(names: list[str], n: int = CONTIGS_NAMED) -> str:
    """'a, b, c' or 'a, b, ... (12 in all)'."""
    shown = ", ".join(names[:n])
    return shown if len(names) <= n else f"{shown}, ... ({len(names)} in all)"


def _files(names: list[str]) -> str:
    """The files a note is about: 'a.vcf', or 'a.vcf, b.vcf, c.vcf and 997 more'."""
    shown = ", ".join(names[:FILES_NAMED])
    return shown if len(names) <= FILES_NAMED else f"{shown} and {len(names) - FILES_NAMED:,} more"
