"""A FASTA index (.fai) that matches its FASTA, or a clear refusal: never a stale index used silently.

htslib trusts the .fai blindly: an index left over from an earlier version of the FASTA makes it
read bases from the wrong offsets (records then fail their REF check or, worse, get the wrong
context). `checked_index` compares the index with the file before it is used:

- plain FASTA: for every contig, the header line just before its offset must be `>name`, the first,
  middle and last lines must end where the index's line layout says, and each contig's sequence must
  end exactly where the next header (or the end of the file) begins, so the index covers the whole
  file with nothing added, removed, resized or re-wrapped;
- bgzipped FASTA (offsets are into the uncompressed stream): the .fai and .gzi must not be older
  than the FASTA, and the offsets must be increasing and leave room for each contig.

A missing or non-matching index is rebuilt (`pysam.faidx`, into a temporary file renamed into place)
when its folder is writable; otherwise the error names both files and how to fix it.
"""

from __future__ import annotations

import logging
import mmap
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pysam

from nanog1.genomics.variants import InputError
from nanog1.io import publish

log = logging.getLogger(__name__)

#: Longest header line looked at when checking where a contig's header starts.
MAX_HEADER = 1 << 16


@dataclass(frozen=True)
class FaiEntry:
    """One .fai line: contig name, length, byte offset of its first base, bases and bytes per line."""

    name: str
    length: int
    offset: int
    line_bases: int
    line_bytes: int

    @property
    def span(self) -> int:
        """Bytes from the first base to just after the last base (line ends included, last one not)."""
        if self.line_bases <= 0:
            return 0
        full, rest = divmod(self.length, self.line_bases)
        if rest:
            return full * self.line_bytes + rest
        return max(full * self.line_bytes - (self.line_bytes - self.line_bases), 0)


def read_fai(fai: Path) -> list[FaiEntry]:
    """Entries of a .fai; ValueError if a line is not five or six tab-separated fields."""
    entries = []
    for n, line in enumerate(Path(fai).read_text().splitlines(), start=1):
        fields = line.split("\t")
        if len(fields) not in (5, 6):
            raise ValueError(f"line {n} has {len(fields)} fields, not 5")
        entries.append(FaiEntry(fields[0], *(int(x) for x in fields[1:5])))
    return entries


def is_bgzipped(path: Path) -> bool:
    """True if the file starts with the gzip magic bytes (bgzip is gzip with block headers)."""
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def is_bgzf_head(head: bytes) -> bool:
    """True when a file's first bytes (14 or more) open a BGZF block: gzip with a 'BC' extra field. htslib
    reads and seeks BGZF only; a plain gzip file (`gzip x.vcf`) starts with the same magic bytes."""
    return len(head) >= 14 and head[:2] == b"\x1f\x8b" and bool(head[3] & 4) and head[12:14] == b"BC"


def _layout_problem(entries: list[FaiEntry]) -> str | None:
    """Contradictions inside the index itself."""
    previous_end = 0
    for e in entries:
        if e.length < 0 or e.offset < previous_end:
            return f"contig {e.name} overlaps the one before it"
        if e.length and (e.line_bases <= 0 or e.line_bytes - e.line_bases not in (1, 2)):
            return f"contig {e.name} has an impossible line layout ({e.line_bases}/{e.line_bytes})"
        previous_end = e.offset + e.span
    return None


def _header_start(data: mmap.mmap, e: FaiEntry) -> int | str:
    """Byte offset where the header line of `e` starts, or why the bytes before its offset are no header."""
    if e.offset > len(data):
        return f"contig {e.name} starts past the end of the file"
    size = len(e.name) + 256  # most headers fit; a long description is read in a second, wider look
    while True:
        chunk = data[max(0, e.offset - size) : e.offset]
        start = chunk.rfind(b"\n", 0, len(chunk) - 1) + 1
        if start > 0 or len(chunk) < size or size >= MAX_HEADER:
            break
        size = MAX_HEADER
    if not chunk.endswith(b"\n"):
        return f"no line break before the sequence of contig {e.name}"
    line = chunk[start:].rstrip(b"\r\n")
    if not line.startswith(b">") or line[1:].split(maxsplit=1)[:1] != [e.name.encode()]:
        return f"the line before contig {e.name}'s offset is not its header"
    return e.offset - (len(chunk) - start)


def _line_ends_problem(data: mmap.mmap, e: FaiEntry) -> str | None:
    """The first, middle and last lines of a contig must end where the index's layout says."""
    full, rest = divmod(e.length, e.line_bases)
    lines = sorted({0, full // 2, full - 1} - {-1}) if full else []
    for k in lines:
        start = e.offset + k * e.line_bytes
        row = data[start : start + e.line_bytes]
        at_eof = len(row) == e.line_bases and start + e.line_bases == len(data)
        bad_end = len(row) < e.line_bytes or not row.endswith(b"\n")
        if (bad_end and not at_eof) or b"\n" in row[: e.line_bases]:
            return f"line {k + 1} of contig {e.name} is not {e.line_bases} bases long"
    if rest:
        start = e.offset + full * e.line_bytes
        row = data[start : start + rest + 1]
        if b"\n" in row[:rest] or b">" in row[:rest] or row[rest:] not in (b"", b"\n", b"\r"):
            return f"the last line of contig {e.name} is not {rest} bases long"
    return None


def _plain_problem(fasta: Path, entries: list[FaiEntry]) -> str | None:
    """Header, line layout and contiguity checks of a plain FASTA against its index."""
    with open(fasta, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return "the FASTA is empty" if entries else None
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        covered = 0
        for e in entries:
            start = _header_start(data, e)
            if isinstance(start, str):
                return start
            if data[covered:start].strip():
                return f"the FASTA has sequence the index does not list before contig {e.name}"
            problem = _line_ends_problem(data, e) if e.length else None
            if problem:
                return problem
            covered = e.offset + e.span
        if data[covered:].strip():
            return "the FASTA continues after the last contig the index lists"
    finally:
        data.close()
    return None


def _bgzip_problem(fasta: Path, fai: Path) -> str | None:
    """A bgzipped FASTA's index (and .gzi) must be at least as new as the FASTA."""
    born = fasta.stat().st_mtime_ns
    for index in (fai, Path(str(fasta) + ".gzi")):
        if not index.exists():
            return f"{index.name} is missing"
        if index.stat().st_mtime_ns < born:
            return f"{index.name} is older than the FASTA"
    return None


def index_problem(fasta: Path, fai: Path) -> str | None:
    """Why the .fai does not describe the FASTA, or None when it does."""
    try:
        entries = read_fai(fai)
    except (ValueError, UnicodeDecodeError) as err:
        return f"the index is unreadable ({err})"
    problem = _layout_problem(entries)
    if problem:
        return problem
    if is_bgzipped(fasta):
        return _bgzip_problem(fasta, fai)
    return _plain_problem(fasta, entries)


def can_write(folder: Path) -> bool:
    """True if a file can be created in `folder` (tried, since permission bits do not bind root)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".nanog1-write-test-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(tmp)
    return True


def unindexable(fasta: Path) -> str | None:
    """Why samtools could not index `fasta`, told before it tries (its own words are an htslib log line):
    a plain gzip file (a downloaded hg19.fa.gz; htslib reads BGZF only), or a file that is no FASTA."""
    with open(fasta, "rb") as f:
        head = f.read(18)
    if head[:2] == b"\x1f\x8b":
        return None if is_bgzf_head(head) else ("compressed with gzip, not bgzip (htslib indexes BGZF only): "
                                                "decompress it with gunzip, or recompress it with bgzip")
    if head.lstrip()[:1] != b">":
        return "not a FASTA: it does not start with a '>name' line"
    return None


def _rebuild(fasta: Path, fai: Path) -> None:
    """Index `fasta` into temporary files, then rename them over the .fai (and .gzi)."""
    why = unindexable(fasta)
    if why is not None:
        raise InputError(str(fasta), None, f"cannot index the reference FASTA: {why}")
    gzi = Path(str(fasta) + ".gzi") if is_bgzipped(fasta) else None
    tag = f".nanog1-{os.getpid()}.tmp"
    tmp_fai = fai.with_name(fai.name + tag)
    args = [str(fasta), "--fai-idx", str(tmp_fai)]
    if gzi is not None:
        args += ["--gzi-idx", str(gzi) + tag]
    try:
        pysam.faidx(*args)
        if gzi is not None:
            publish(Path(str(gzi) + tag), gzi)
        publish(tmp_fai, fai)
    except pysam.utils.SamtoolsError as err:
        raise InputError(str(fasta), None, f"cannot index the FASTA: {str(err).strip()}") from None
    finally:
        for leftover in (tmp_fai, Path(str(gzi) + tag) if gzi else None):
            if leftover is not None:
                leftover.unlink(missing_ok=True)


def index_state(fasta: Path) -> tuple[Path, str | None]:
    """(the .fai path of `fasta`, why it does not describe the FASTA: 'it is missing', a stale index's
    problem, or None when it matches); nothing is written (`checked_index` and `nanog1 ingest --check-only`
    both ask)."""
    fai = Path(str(fasta) + ".fai")
    return fai, index_problem(fasta, fai) if fai.exists() else "it is missing"


def unwritable_index(fasta: Path, fai: Path, problem: str) -> InputError:
    """The error for an index that is missing or stale where it cannot be (re)built: its folder is not
    writable. Says how to make one."""
    return InputError(
        str(fai),
        None,
        f"this index does not match its FASTA {fasta} ({problem}) and its folder is not writable: "
        f"rebuild it with `samtools faidx {fasta}`, or copy the FASTA somewhere writable",
    )


def checked_index(fasta: Path | str) -> Path:
    """The .fai of `fasta`, checked against it; built or rebuilt when missing or stale, if writable.

    Raises InputError naming both files when the index does not match and cannot be rewritten.
    """
    fasta = Path(fasta)
    fai, problem = index_state(fasta)
    if problem is None:
        return fai
    if not can_write(fai.parent):
        raise unwritable_index(fasta, fai, problem)
    if fai.exists():
        log.warning("%s does not match %s (%s): rebuilding it", fai, fasta, problem)
    _rebuild(fasta, fai)
    problem = index_problem(fasta, fai)
    if problem is not None:
        raise InputError(str(fasta), None, f"its freshly built index {fai} still does not match ({problem})")
    return fai


def linked_reference(fasta: Path | str, folder: Path | str) -> Path:
    """A symbolic link to `fasta` in `folder`, beside links to its .fai/.gzi when they match it.

    Reading through the link keeps every file NanoG1 would add (a rebuilt index, the contig cache)
    in `folder`: nothing is written beside the FASTA itself (the dashboard reads, never writes).
    """
    fasta, folder = Path(fasta).resolve(), Path(folder)
    if not fasta.is_file():
        raise InputError(str(fasta), None, "reference FASTA not found")
    link = folder / fasta.name
    if not link.is_symlink():
        link.symlink_to(fasta)
    fai = Path(str(fasta) + ".fai")
    if fai.is_file() and index_problem(fasta, fai) is None:
        for index in (fai, Path(str(fasta) + ".gzi")):
            target = folder / index.name
            if index.is_file() and not target.is_symlink() and not target.exists():
                target.symlink_to(index)
    return link
