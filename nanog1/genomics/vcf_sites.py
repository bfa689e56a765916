"""The sites-only fast path: a text VCF of the 8 fixed columns alone (no sample column; the PCAWG consensus
files, plain, gzipped or bgzipped) parsed by pyarrow's CSV reader in C, a piece of whole lines at a time.

`collect_sites` gives the records' CHROM, POS, REF, ALT and FILTER as arrays in a `RawRecords`, as pysam's
loop (`vcf._collect`) would read them, or None where a line is not plain and pysam must read the file.
Kept apart from `vcf.py` because it is a reader of its own (pyarrow, not pysam), with its own checks of
what it accepts; `vcf._read_records` decides when it is tried.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nanog1.genomics.gzip_stream import text_chunks
from nanog1.genomics.vcf_records import Alleles, RawRecords

#: What `collect_sites` accepts: REF and (comma-separated) ALT letters, FILTER values, a plain POS.
_BASES = r"^[ACGTNacgtn]+$"
_ALTS = r"^[ACGTNacgtn]+(,[ACGTNacgtn]+)*$"
_PASS = r"(^|;)PASS(;|$)"
SITES_COLUMNS = 8


#: Bytes of text `collect_sites` parses at a time (whole lines, decompressed): its memory is one piece's
#: text and table beside the compact columns it keeps, not the whole file's text (a 200 MB sites-only VCF
#: held 1.37 GiB at its peak when read whole).
SITES_CHUNK = 1 << 24
_SITES_NAMES = ["chrom", "pos", "id", "ref", "alt", "qual", "filter", "info"]


def _past_lines(chunk: bytes, lines: int) -> tuple[bytes, int]:
    """`chunk` after its first `lines` lines (up to its end), and how many of them it lacked."""
    start = 0
    while lines:
        end = chunk.find(b"\n", start)
        if end < 0:
            return b"", lines
        start, lines = end + 1, lines - 1
    return chunk[start:], 0


def collect_sites(path: Path, offset: int) -> RawRecords | None:
    """A text sites-only VCF's CHROM, POS, REF, ALT and FILTER, parsed by pyarrow's CSV reader in C (a
    pysam record per line costs ≈ 2 µs, most of reading a file), a piece of `SITES_CHUNK` bytes of whole
    lines at a time (`text_chunks`: a plain-gzip or bgzipped file decompressed as read), so that memory
    does not grow with the file's text; each piece's columns are kept in compact arrays and joined at the
    end. `offset`: the header's line count (`vcf._header_lines`; a BCF has none and is pysam's to read).

    Returns None, and the caller reads the file with pysam, unless every line after the header is a
    record pysam reads to the same values without complaint: 8 tab-separated columns, an integer POS,
    A/C/G/T/N letters in REF and ALT (ALT comma-separated), a FILTER value, no blank or '#' lines.
    FILTER passes as in `vcf._collect`: '.' or PASS among its ';'-separated values. QUAL and INFO are not
    read here (htslib reads malformed values there as missing, without an error). A bgzipped file (the
    PCAWG consensus VCFs) is read here too: its compressed bytes were handed to this parser, which refused
    them, so pysam read it, 3.5 times slower; an index beside it (.tbi, .csi) is not read.
    """
    pieces, skip = [], offset
    for chunk in text_chunks(path, SITES_CHUNK):
        if skip:
            chunk, skip = _past_lines(chunk, skip)
            if skip or not chunk:
                continue
        piece = _parse_sites(chunk)
        if piece is None:
            return None
        pieces.append(piece)
    if skip or not pieces:  # fewer lines than the header's, or no record line
        return None
    return _joined_sites(pieces, offset)


def _parse_sites(body: bytes) -> dict[str, np.ndarray] | None:
    """One piece of whole record lines parsed and checked as `collect_sites` says; its columns as arrays
    (chrom, ref, alt: object; pos: int64; filters, multi: bool), or None where pysam must read the file."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv

    n_lines = body.count(b"\n") + (0 if body.endswith(b"\n") else 1)
    if body.find(b"\r") >= 0:
        return None
    types = {
        "chrom": pa.string(),
        "pos": pa.int64(),
        "ref": pa.string(),
        "alt": pa.string(),
        "filter": pa.string(),
    }
    try:
        table = csv.read_csv(
            pa.py_buffer(body),
            read_options=csv.ReadOptions(column_names=_SITES_NAMES, use_threads=False, block_size=1 << 26),
            parse_options=csv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False),
            convert_options=csv.ConvertOptions(
                include_columns=["chrom", "pos", "ref", "alt", "filter"],
                column_types=types,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, ValueError):
        return None
    chrom, pos, ref, alt, filt = (table.column(k) for k in ("chrom", "pos", "ref", "alt", "filter"))
    plain = (
        table.num_rows == n_lines
        and pos.null_count == 0
        and pc.all(pc.greater_equal(pos, 0)).as_py()
        and pc.all(pc.match_substring_regex(ref, _BASES)).as_py()
        and pc.all(pc.match_substring_regex(alt, _ALTS)).as_py()
        and not pc.any(pc.equal(filt, "")).as_py()
        and not pc.any(pc.or_(pc.equal(chrom, ""), pc.starts_with(chrom, "#"))).as_py()
    )
    if not plain:
        return None
    names = chrom.dictionary_encode().combine_chunks()
    passes = pc.or_(pc.equal(filt, "."), pc.match_substring_regex(filt, _PASS))
    return {
        "chrom": np.asarray(names.dictionary.to_pylist(), dtype=object)[names.indices.to_numpy()],
        "pos": pos.to_numpy(),
        "ref": ref.to_numpy(zero_copy_only=False).astype(object),
        "alt": alt.to_numpy(zero_copy_only=False).astype(object),
        "filters": passes.to_numpy(zero_copy_only=False),
        "multi": pc.match_substring(alt, ",").to_numpy(zero_copy_only=False),
        # the records that do not pass: their index in the piece and FILTER text (these alone as strings)
        "failed_at": np.flatnonzero(~passes.to_numpy(zero_copy_only=False)),
        "failed_text": pc.filter(filt, pc.invert(passes)).to_numpy(zero_copy_only=False).astype(object),
    }


def _joined_sites(pieces: list[dict[str, np.ndarray]], offset: int) -> RawRecords:
    """The pieces' columns joined into one `RawRecords` of arrays, in file order (`pieces` is emptied as
    they are joined); record i is on line offset + i + 1."""
    starts = np.cumsum([0] + [len(p["pos"]) for p in pieces[:-1]])
    failed_at = np.concatenate([p.pop("failed_at") + start for p, start in zip(pieces, starts, strict=True)])
    column = {k: np.concatenate([p.pop(k) for p in pieces]) for k in list(pieces[0])}
    raw = RawRecords()
    raw.failed_line = failed_at.astype(np.int64) + offset + 1
    raw.failed_text = column.pop("failed_text")
    raw.chrom, raw.pos, raw.filters = column["chrom"], column["pos"], column["filters"]
    raw.ref, raw.alt, raw.multi = column["ref"], column["alt"], column["multi"]
    raw.alleles = Alleles(raw.ref, raw.alt)
    raw.line = np.arange(1, len(raw.pos) + 1, dtype=np.int64) + offset
    return raw
