"""VCF/BCF reader (pysam.VariantFile): records into a VariantTable, multi-allelic records split.

Which column is the sample (`vcf_layout`, read from the header alone, so it can be checked before
any record is read):

- sites-only files and the SigProfiler-compatible mode: every record belongs to the sample named
  after the file;
- tumour/normal files: the tumour column is named by `--tumor-sample` (or the sample sheet), by
  the caller's `##tumor_sample=`/`##normal_sample=` header lines (Mutect2 and others), or by a
  column literally named TUMOR/TUMOUR (Strelka2, VarScan2, MuSE). Only the tumour becomes a sample;
  a column named TUMOR takes the cohort name given by the sheet or the file name. A record counts
  when the tumour carries its ALT: by GT, or, in Strelka2 files (no GT), by the tumour's tier-1
  count of the ALT (AU/CU/GU/TU for SNVs, TIR for indels). VarScan2 records count only with its
  somatic status SS=2 (others: `not_somatic`);
- one sample column: every record belongs to it;
- several columns with GT: each ALT goes to the samples whose genotype carries it. Several columns
  without GT and no tumour/normal convention are an error naming the file.

A VCF compressed with plain gzip (`gzip calls.vcf`; htslib reads BGZF only) is decompressed on a thread into
a pipe that htslib reads in order (`_readable`, `gzip_stream.GzipStream`; nothing copied to disk, only a
header read alone is), so it meets the same checks as the plain file.

A sites-only text VCF (plain, gzipped or bgzipped, as the PCAWG consensus files are) is parsed by pyarrow
(`vcf_sites.collect_sites`), pysam reading it where a line is not plain. A cut-off or damaged bgzip file is
one error naming it, on either path (`gzip_stream.bgzf_damage`). Both readers fill a
`vcf_records.RawRecords`, split here into a VariantTable's rows.

Unparseable records stop the read with the file and line, or are counted as `malformed_line` when
`on_error="skip"`. Empty (zero-byte) and header-less files are errors.
"""

from __future__ import annotations

import gzip
import re
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pysam

from nanog1.genomics import vcf_sites  # called as vcf_sites.collect_sites: a test can route a file past it
from nanog1.genomics.fasta_index import is_bgzf_head
from nanog1.genomics.gzip_stream import GzipStream, bgzf_damage, gunzip, is_gzip, is_plain_gzip
from nanog1.genomics.variants import InputError, VariantTable, concat_tables, is_symbolic, table_from_lists
from nanog1.genomics.vcf_records import RawRecords

VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")
TUMOR_NAMES = ("TUMOR", "TUMOUR")
NORMAL_NAMES = ("NORMAL",)


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
    opener = gzip.open if is_gzip(path) else open
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


@dataclass(frozen=True)
class Layout:
    """How a VCF's columns map to cohort samples (decided from the header alone).

    mode: 'file' (every record to `name`), 'single' (every record to the one column), 'genotypes'
    (each ALT to the columns whose GT carries it) or 'tumor' (the `tumor` column only, carriers by
    GT or Strelka2 counts). `source` says how the tumour was found.
    """

    mode: str
    samples: tuple[str, ...]
    tumor: str | None = None
    normal: str | None = None
    carrier: str = "gt"
    somatic_info: bool = False
    source: str = ""


@contextmanager
def _readable(path: Path, header_only: bool = False) -> Iterator[Path | GzipStream]:
    """What htslib reads for `path`: `path` itself, or for a plain-gzip VCF a `GzipStream` of its text
    (read in order; nothing written to disk), or with `header_only` its header lines decompressed into a
    private temporary folder removed on exit (callers that read nothing else: vcf_layout, file_split,
    build's header facts). Line numbers are those of `path`, so every check and message reads as for the
    file itself; a damaged gzip stream is an InputError naming `path`, raised over any error the reader met
    in the text it cut short."""
    if not is_plain_gzip(path):
        yield path
        return
    if header_only:
        with tempfile.TemporaryDirectory(prefix="nanog1-vcf-") as folder:
            copy = Path(folder) / (path.name[: -len(".gz")] if path.name.endswith(".gz") else path.name)
            gunzip(path, copy, header_only)
            yield copy
        return
    stream = GzipStream(path)
    try:
        yield stream
    except Exception:
        stream.finish(check_rest=True)  # the stream's error first: a garbled line is the damage's doing
        raise
    except BaseException:
        stream.abandon()
        raise
    stream.finish()


def _open_at(source: Path | GzipStream, path: Path) -> pysam.VariantFile:
    """pysam.VariantFile of `source` (`path`, its decompressed header, or the stream of its text from
    `_readable`) with htslib's messages silenced; empty and unreadable files are InputErrors naming
    `path`."""
    if path.stat().st_size == 0:
        raise InputError(str(path), None, "empty file (zero bytes): not a VCF")
    previous = pysam.set_verbosity(0)
    try:
        return pysam.VariantFile(source.reader if isinstance(source, GzipStream) else str(source))
    except NotImplementedError as err:  # htslib reads BGZF only; plain gzip fails on its first seek
        why = "compressed with gzip, not bgzip (htslib reads BGZF only): decompress or recompress with bgzip"
        raise InputError(str(path), None, why) from err
    except (OSError, ValueError) as err:
        with (gzip.open if isinstance(source, GzipStream) else open)(_path_of(source), "rb") as raw:
            if raw.read(3) == b"\xef\xbb\xbf":
                why = "starts with a UTF-8 byte-order mark (saved by a spreadsheet or editor?)"
                raise InputError(str(path), 1, why + ": save it without one") from err
        said = str(err).replace(str(_path_of(source)), str(path))
        if "EOF marker" in said:  # htslib refuses a bgzip file cut short (a download or copy interrupted)
            raise InputError(str(path), None, f"truncated or damaged gzip file ({said})") from err
        if (damage := bgzf_damage(_path_of(source))) is not None:  # a damaged first block: no header read
            raise InputError(str(path), None, f"truncated or damaged gzip file ({damage})") from err
        raise InputError(str(path), None, f"not a readable VCF/BCF, or no #CHROM header ({said})") from err
    finally:
        pysam.set_verbosity(previous)


def _path_of(source: Path | GzipStream) -> Path:
    """The file behind what `_readable` gave: the path read, or a stream's gzip file."""
    return source.path if isinstance(source, GzipStream) else Path(source)


@contextmanager
def _open(path: Path, header_only: bool = False) -> Iterator[pysam.VariantFile]:
    """Open a VCF/BCF (plain, bgzipped, plain-gzipped or BCF), closed on exit; `header_only` for callers
    that read the header alone (a plain-gzip file then has only its header decompressed)."""
    path = Path(path)
    with _readable(path, header_only) as source:
        vf = _open_at(source, path)
        try:
            yield vf
        except BaseException:
            _close_after_error(vf)
            raise
        vf.close()


def _close_after_error(vf: pysam.VariantFile) -> None:
    """Close `vf` while an error is on its way out: htslib's "Closing failed" after a read error (a damaged
    BGZF block) would replace that error, the one that names the file and says what is wrong."""
    try:
        vf.close()
    except OSError:
        pass


def _header_value(header: pysam.VariantHeader, key: str) -> str | None:
    """Value of a `##key=value` header line (quotes stripped), or None."""
    for rec in header.records:
        if rec.key == key and rec.value is not None:
            return rec.value.strip('"')
    return None


def _pick_column(samples: list[str], names: tuple[str, ...]) -> str | None:
    return next((s for s in samples if s.upper() in names), None)


def vcf_layout(
    path: Path,
    header: pysam.VariantHeader | None = None,
    *,
    compat: bool = False,
    tumor: str | None = None,
    normal: str | None = None,
    name: str | None = None,
) -> Layout:
    """Which column(s) of a VCF become cohort samples, and under which names (see module docstring).

    `tumor`/`normal` name the columns explicitly (option or sample sheet); `name` is the cohort name
    the sheet gives this file. Raises InputError (naming the file) when the columns are ambiguous.
    """
    path = Path(path)
    if header is None:
        with _open(path, header_only=True) as vf:
            return vcf_layout(path, vf.header, compat=compat, tumor=tumor, normal=normal, name=name)
    samples = list(header.samples)
    if compat or not samples:
        return Layout("file", (name or sample_from_filename(path, compat),), source="file name")
    source = "option"
    if tumor is None:
        tumor, normal_h = _header_value(header, "tumor_sample"), _header_value(header, "normal_sample")
        normal = normal or normal_h
        source = "##tumor_sample header"
        if tumor is None and normal_h is not None and len(samples) == 2 and normal_h in samples:
            tumor, source = next(s for s in samples if s != normal_h), "##normal_sample header"
    if tumor is None and len(samples) > 1:
        tumor, source = _pick_column(samples, TUMOR_NAMES), "TUMOR column"
        normal = normal or _pick_column(samples, NORMAL_NAMES)
    from_header = {"tumour": source == "##tumor_sample header",
                   "normal": normal is not None and normal == _header_value(header, "normal_sample")}
    for role, column in (("tumour", tumor), ("normal", normal)):
        if column is not None and column not in samples:
            why = f"{role} sample {column!r} is not a column (columns: {samples})"
            if from_header[role]:  # e.g. `bcftools reheader` renamed the columns after Mutect2 wrote them
                key = "tumor_sample" if role == "tumour" else "normal_sample"
                why += (f": the ##{key} header names it (columns renamed after calling?); name the columns"
                        " with a sample sheet's tumor_sample and normal_sample columns (ingest: or"
                        " --tumor-sample and --normal-sample)")
            raise InputError(str(path), None, why)
    formats = set(header.formats)
    if tumor is None:
        if len(samples) == 1:
            return Layout("single", (name or samples[0],), source="one sample column")
        if "GT" not in formats:
            raise InputError(
                str(path),
                None,
                f"{len(samples)} sample columns, no GT field and no tumour/normal convention: name the "
                "tumour with --tumor-sample (or the sheet's tumor_sample column)",
            )
        return Layout("genotypes", tuple(samples), source="genotypes")
    strelka = "GT" not in formats and ("TIR" in formats or {"AU", "CU", "GU", "TU"} <= formats)
    carrier = "gt" if "GT" in formats else ("strelka" if strelka else "all")
    cohort = name or (sample_from_filename(path, False) if tumor.upper() in TUMOR_NAMES else tumor)
    varscan = "SS" in header.info and (_header_value(header, "source") or "").lower().startswith("varscan")
    return Layout("tumor", (cohort,), tumor, normal, carrier, varscan, source)


#: What a caller's header says a file holds, when it writes one tumour's calls to several files by type:
#: (kind, description); kind 'snv' (single and adjacent substitutions only) or 'indel' (indels only).
SPLIT_CONTENT = {"snv": "Strelka2 SNV file", "indel": "Strelka2 indel file"}
#: VarScan2 (`somatic --output-vcf 1`) writes one tumour's calls to PREFIX.snp.vcf and PREFIX.indel.vcf
#: (processSomatic: PREFIX.snp.Somatic.hc.vcf, ...) under one header (`##source=VarScan2`) that does not
#: say which: the file name does.
VARSCAN_SPLIT_CONTENT = {"snv": "VarScan2 SNP file", "indel": "VarScan2 indel file"}
#: Every caller's words (the cohort's inputs['content']) -> kind ('snv' or 'indel').
SPLIT_KIND = {words: kind for table in (SPLIT_CONTENT, VARSCAN_SPLIT_CONTENT)
              for kind, words in table.items()}
_VARSCAN_PART = re.compile(r"(?:^|[._-])(snps?|indels?)(?:[._-]|$)", re.IGNORECASE)


def split_content(header: pysam.VariantHeader) -> str | None:
    """'snv' or 'indel' when the header says the file holds one kind of call only, else None.

    Strelka2 writes somatic.snvs.vcf.gz and somatic.indels.vcf.gz: `##content=strelka somatic snv calls`
    (or `... indel calls`), or, in headers without that line, `##source=strelka` with the SNV file's
    tier counts (AU/CU/GU/TU) or the indel file's (TIR) and not the other's. Only the header is evidence
    here (never the file name); `ingest` also requires the records to agree (no indel in an SNV file).
    """
    content = (_header_value(header, "content") or "").lower()
    if content.startswith("strelka"):
        if "snv" in content:
            return "snv"
        if "indel" in content:
            return "indel"
    if not (_header_value(header, "source") or "").lower().startswith("strelka"):
        return None
    formats = set(header.formats)
    snv, indel = {"AU", "CU", "GU", "TU"} <= formats, "TIR" in formats
    return "snv" if snv and not indel else "indel" if indel and not snv else None


def varscan_split(header: pysam.VariantHeader, path: Path) -> str | None:
    """'snv' or 'indel' for a VarScan2 VCF (`##source=VarScan2`) named as VarScan2 names its two outputs
    (PREFIX.snp.vcf, PREFIX.indel.vcf, PREFIX.snp.Somatic.hc.vcf.gz, ...), else None."""
    if not (_header_value(header, "source") or "").lower().startswith("varscan"):
        return None
    stem = sample_from_filename(path, False)
    kinds = {m.group(1).lower().rstrip("s") for m in _VARSCAN_PART.finditer(stem)}
    return {"snp": "snv", "indel": "indel"}.get(kinds.pop()) if len(kinds) == 1 else None


def file_split(path: Path) -> tuple[str, str] | None:
    """(kind, words) when a VCF/BCF holds one kind of call only by its caller's convention: a Strelka2 file
    (`split_content`, its header) or a VarScan2 one (`varscan_split`, its header and name); else None."""
    path = Path(path)
    with _open(path, header_only=True) as vf:
        kind = split_content(vf.header)
        if kind is not None:
            return kind, SPLIT_CONTENT[kind]
        kind = varscan_split(vf.header, path)
    return (kind, VARSCAN_SPLIT_CONTENT[kind]) if kind is not None else None


def _vcf_layouts(paths: list[Path]):
    """(path, header layout) of each input that is a readable VCF file, header lines only: a folder is
    ingest's to name, and an unreadable file is not one of a pair (its own reading names or counts it)."""
    from nanog1.genomics.ingest import detect_kind

    for path in map(Path, paths):
        try:
            if not path.is_file() or detect_kind(path) != "vcf":
                continue
            layout = vcf_layout(path)
        except InputError:
            continue
        yield path, layout


def split_call_files_named(paths: list[Path]) -> list[list[Path]]:
    """Groups (per folder) of one tumour's split call files whose tumour would be named after the file:
    Strelka2 writes one tumour's SNVs and indels to two files of one folder (somatic.snvs.vcf.gz,
    somatic.indels.vcf.gz) with a TUMOR column, VarScan2 to PREFIX.snp.vcf and PREFIX.indel.vcf, so
    without a sample sheet they read as two tumours, each with half its mutations. Header lines only are
    read."""
    by_folder: dict[Path, list[Path]] = {}
    varscan: dict[Path, list[tuple[Path, str]]] = {}
    for path, layout in _vcf_layouts(paths):
        if layout.source != "TUMOR column":
            continue
        if layout.carrier == "strelka":
            by_folder.setdefault(path.resolve().parent, []).append(path)
        elif (split := file_split(path)) is not None and split[1] in VARSCAN_SPLIT_CONTENT.values():
            varscan.setdefault(path.resolve().parent, []).append((path, split[0]))
    groups = [files for files in by_folder.values() if len(files) > 1]
    # VarScan2 folders often hold many tumours' files: refuse where an SNP and an indel file meet
    return groups + [[f for f, _ in held] for held in varscan.values()
                     if {k for _, k in held} == {"snv", "indel"}]


def refuse_split_call_files(paths: list[Path], reads_as: str = "read") -> None:
    """UserError naming the files when `split_call_files_named` finds a group: without a sample sheet they
    would be `reads_as` ('read', 'typed') two tumours, each with half its mutations (issue 31)."""
    from nanog1.errors import UserError

    for files in split_call_files_named(paths):
        names = ", ".join(f"{f} ({vcf_layout(f).samples[0]!r})" for f in files)
        caller = "VarScan2" if (file_split(files[0]) or ("", ""))[1].startswith("VarScan2") else "Strelka2"
        raise UserError(
            f"{names}: {caller} VCFs of one folder, each with a TUMOR column, would be {reads_as} as "
            f"{len(files)} tumours named after their files, each with part of the mutations ({caller} "
            "writes one tumour's SNVs and indels to two files): name the tumour with --samples SHEET "
            "(columns sample and file, one row per file, the same sample on both)"
        )


def refuse_unnamed_pairs(paths: list[Path], reads_as: str = "typed") -> None:
    """UserError naming a VCF of exactly two sample columns of which neither is named the tumour (no
    ##tumor_sample/##normal_sample header, no TUMOR/NORMAL column; a Mutect2 file with its header lines
    stripped, VarDict's paired output): most likely a tumour and its normal, and the normal would be
    `reads_as` a second tumour. Header lines only are read."""
    from nanog1.errors import UserError

    for path, layout in _vcf_layouts(paths):
        if layout.mode == "genotypes" and len(layout.samples) == 2:
            first, second = layout.samples
            raise UserError(
                f"{path}: 2 sample columns ({first}, {second}) and neither is named as the tumour (no "
                "##tumor_sample header, no TUMOR/NORMAL column): a tumour and its normal would be "
                f"{reads_as} as 2 tumours; name the tumour with --samples SHEET (columns sample, file, "
                "tumor_sample, normal_sample), or, for two tumours, `nanog1 ingest` the file and predict "
                "that cohort"
            )


def read_vcf(
    path: Path,
    compat: bool = False,
    on_error: str = "stop",
    *,
    tumor: str | None = None,
    normal: str | None = None,
    name: str | None = None,
) -> VariantTable:
    """Read one VCF/BCF into a VariantTable; FILTER is recorded in `passed` ('PASS' or '.' pass).

    The samples are those of `vcf_layout` (a normal column never becomes a sample).
    """
    path = Path(path)
    with _readable(path) as source:
        raw, layout = _read_records(path, source, compat, on_error, tumor=tumor, normal=normal, name=name)
    if compat:
        _drop_file_order_duplicates(raw)
    fixed = layout.samples[0] if layout.mode != "genotypes" else None
    table = _split(raw, fixed, list(layout.samples), compat)
    table.declared = list(layout.samples)
    return table


def _read_records(
    path: Path, source: Path, compat: bool, on_error: str, **route
) -> tuple[RawRecords, Layout]:
    """Every record of `source` (`path` or its decompressed copy: see `_readable`) and the file's layout;
    messages name `path`. A sites-only text file goes through the fast reader (`vcf_sites.collect_sites`)."""
    vf = _open_at(source, path)
    previous = pysam.set_verbosity(0)
    try:
        layout = vcf_layout(path, vf.header, compat=compat, **route)
        offset = _header_lines(_path_of(source))  # gzip-aware: a stream's file, its header alone
        raw = None
        if layout.mode == "file" and not len(vf.header.samples) and offset is not None:
            raw = vcf_sites.collect_sites(_path_of(source), offset)
        if raw is None:
            raw = _collect(vf, str(path), offset, on_error, _carrier_getter(layout))
    except BaseException:
        _close_after_error(vf)
        raise
    else:
        vf.close()
    finally:
        pysam.set_verbosity(previous)
    return raw, layout


def _carrier_getter(layout: Layout):
    """Per-record function giving, per cohort sample, the ALT numbers it carries (None: no check).

    Kept to one field access per record; 'not_somatic' marks a VarScan2 record without SS=2.
    """
    if layout.mode in ("file", "single") or (layout.mode == "tumor" and layout.carrier == "all"):
        get = None
    elif layout.mode == "genotypes":

        def get(rec):
            return [s.get("GT") for s in rec.samples.values()]
    elif layout.carrier == "gt":
        tumor = layout.tumor

        def get(rec):
            return [rec.samples[tumor].get("GT")]
    else:
        get = _strelka_getter(layout.tumor)
    if layout.somatic_info and get is not None:
        inner = get

        def get(rec):
            return inner(rec) if rec.info.get("SS") in ("2", 2) else "not_somatic"
    elif layout.somatic_info:

        def get(rec):
            return None if rec.info.get("SS") in ("2", 2) else "not_somatic"

    return get


def _strelka_getter(tumor: str):
    """Strelka2 somatic files have no GT: the tumour carries an ALT with a tier-1 read count > 0."""

    def get(rec):
        fields = rec.samples[tumor]
        if "TIR" in fields:
            tir = fields.get("TIR")
            return [(1,) if tir and (tir[0] or 0) > 0 else ()]
        carried = []
        for number, alt in enumerate(rec.alts or (), start=1):
            count = fields.get(f"{alt}U") if len(alt) == 1 and alt in "ACGT" else None
            if count and (count[0] or 0) > 0:
                carried.append(number)
        return [tuple(carried)]

    return get


def _collect(vf: pysam.VariantFile, path: str, offset: int | None, on_error: str, carriers) -> RawRecords:
    """Read every record's contig, position, alleles, FILTER (and, via `carriers`, who carries it).

    The loop body is kept minimal (it runs once per record); a malformed record breaks out of the
    `for`, is reported or counted, and reading resumes with the next record. Its carriers are read first:
    a record cut short before its sample columns (a tumour/normal VCF copied in part) raises IndexError
    there, and leaves nothing half-appended.
    """
    raw = RawRecords()
    chrom, pos, alleles, passed = raw.chrom, raw.pos, raw.alleles, raw.filters
    failed: dict[int, str] = {}  # record index -> FILTER text, for the records that do not pass
    bad: list[int] = []
    records = iter(vf)
    while True:
        try:
            for rec in records:
                if carriers is not None:
                    carried = carriers(rec)
                chrom.append(rec.chrom)
                pos.append(rec.pos)
                alleles.append(rec.alleles)
                filt = rec.filter
                ok = "PASS" in filt or not len(filt)
                passed.append(ok)
                if not ok:
                    failed[len(pos) - 1] = ";".join(filt.keys())
                if carriers is not None:
                    raw.genotypes.append(carried)
            break
        except (OSError, ValueError, IndexError) as err:
            if not bad and (damage := bgzf_damage(Path(path))) is not None:
                raise InputError(path, None, f"truncated or damaged gzip file ({damage})") from err
            bad.append(len(pos) + len(bad) + 1)
            if on_error != "skip":
                where = offset + bad[-1] if offset is not None else bad[-1]
                why = _what_is_wrong(Path(path), where) if offset is not None else None
                raise InputError(path, where, f"malformed VCF record ({why or err})") from err
            raw.skips["malformed_line"] = len(bad)
    index = np.delete(
        np.arange(1, len(pos) + len(bad) + 1, dtype=np.int64), np.asarray(bad, dtype=np.int64) - 1
    )
    raw.line = index + (offset or 0)
    if failed:
        raw.failed_line = raw.line[np.fromiter(failed, dtype=np.int64, count=len(failed))]
        raw.failed_text = np.asarray(list(failed.values()), dtype=object)
    return raw


def _what_is_wrong(path: Path, line: int) -> str | None:
    """What is wrong with text line `line` of a VCF, where it can be told plainly (htslib says "truncated
    file" for a record with too few columns, an empty line or a POS that is not a number); None otherwise."""
    opener = gzip.open if is_gzip(path) else open
    header: list[str] = []
    with opener(path, "rt", errors="replace") as f:
        for number, text in enumerate(f, 1):
            if text.startswith("#CHROM"):
                header = text.rstrip("\r\n").split("\t")
            if number == line:
                fields = text.rstrip("\r\n").split("\t")
                break
        else:
            return None
    if not text.strip():  # a blank line left at the end by an editor or a `cat` of files
        return "an empty line (a VCF has none among or after its records): delete it"
    if header and len(fields) != len(header):
        return f"{len(fields)} tab-separated columns where the #CHROM header has {len(header)}"
    if len(fields) > 1 and not fields[1].isdigit():
        return f"POS {fields[1]!r} is not a whole number"
    return None


#: Records whose contigs `first_contigs` reads (the start of a file, never the whole of it).
FIRST_RECORDS = 1000


def _leading_fields(path: Path, records: int) -> Iterator[tuple[str, str | None, str | None]]:
    """(CHROM, POS, REF) as text of a VCF's first `records` records, in file order: a text VCF (plain,
    bgzipped or gzipped, with or without a header) read line by line from its start, a BCF through pysam;
    POS and REF None on a line too short to hold them. What cannot be read (a damaged stream, a malformed
    line) ends it quietly: reading the file is ingest's, which names such lines."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(18)
        if head.startswith(b"BCF") or (is_bgzf_head(head) and _is_bcf(path)):
            with _open(path) as vf:
                for _, rec in zip(range(records), vf, strict=False):
                    yield rec.chrom, str(rec.pos), str(rec.ref or "")
            return
        opener = gzip.open if head[:2] == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            seen = 0
            for line in f:
                if line.startswith(b"#") or not line.strip():
                    continue
                fields = [x.decode("utf-8", "replace").strip() for x in line.rstrip(b"\r\n").split(b"\t", 5)]
                yield (fields[0], fields[1], fields[3]) if len(fields) >= 4 else (fields[0], None, None)
                seen += 1
                if seen >= records:
                    break
    except (OSError, EOFError, ValueError, zlib.error, InputError):
        return


def first_contigs(path: Path, records: int = FIRST_RECORDS) -> list[str]:
    """The distinct contigs of a VCF's first `records` records, in file order (`_leading_fields`)."""
    return list(dict.fromkeys(chrom for chrom, _, _ in _leading_fields(Path(path), records)))


def first_records(path: Path, records: int = FIRST_RECORDS) -> list[tuple[str, int, str]]:
    """(CHROM, POS, REF) of a VCF's first `records` records, in file order, read as `first_contigs` reads
    them (`_leading_fields`). A record whose POS is not a whole number ends the list: ingest names it."""
    found: list[tuple[str, int, str]] = []
    for chrom, pos, ref in _leading_fields(Path(path), records):
        if pos is None or not pos.isdigit():
            break
        found.append((chrom, int(pos), ref or ""))
    return found


def _is_bcf(path: Path) -> bool:
    """True for a BCF (its decompressed stream starts 'BCF')."""
    with gzip.open(path, "rb") as f:
        return f.read(3) == b"BCF"


def looks_like_vcf(path: Path) -> bool:
    """True when the file (plain or gzipped text, or BCF) starts as a VCF does, whatever its name."""
    try:
        opener = gzip.open if is_gzip(path) else open
        with opener(path, "rb") as f:
            head = f.read(16)
    except (OSError, EOFError):
        return False
    return head.startswith((b"##fileformat=VCF", b"BCF\x02"))


def _substitution_kept(alleles: tuple | None) -> bool | None:
    """SigProfilerMatrixGenerator's view of a 1- or 2-bp substitution record: True if kept, False if it
    skips it (bad letters, REF base equal to ALT base), None if the record is not a substitution."""
    if alleles is None or len(alleles) != 2:
        return None
    ref, alt = alleles
    if len(ref) != len(alt) or len(ref) > 2 or "-" in ref + alt:
        return None
    return all(r in "ACGT" and a in "ACGT" and r != a for r, a in zip(ref, alt, strict=True))


def _drop_file_order_duplicates(raw: RawRecords) -> None:
    """Compatible mode: drop a substitution record identical to the previous record it kept, in file
    order (SigProfilerMatrixGenerator compares each whole line with the last line it did not skip; here
    contig, position, alleles and PASS status are compared).

    Only records whose position occurs more than once (on any contig) can be dropped, so only those are
    looked at (a per-record loop cost ≈ 2.5 µs a record): record i goes when it is a substitution and
    equals the nearest earlier record that SigProfiler did not skip (a record it skips for its
    letters can never equal a kept one, as the alleles decide both)."""
    n = len(raw.alleles)
    if n < 2:
        return
    pos = np.asarray(raw.pos, dtype=np.int64)
    _, inverse, counts = np.unique(pos, return_inverse=True, return_counts=True)
    dropped = []
    for i in np.flatnonzero(counts[inverse] > 1).tolist():
        if i == 0 or _substitution_kept(raw.alleles[i]) is None:
            continue
        j = i - 1
        while j > 0 and _substitution_kept(raw.alleles[j]) is False:
            j -= 1
        if _file_key(raw, j) == _file_key(raw, i) and _substitution_kept(raw.alleles[j]) is not False:
            dropped.append(i)
    if not dropped:
        return
    raw.skips["duplicate"] += len(dropped)
    keep = np.delete(np.arange(n), dropped).tolist()
    if len(keep) < len(raw.alleles):
        raw.chrom = [raw.chrom[i] for i in keep]
        raw.pos = [raw.pos[i] for i in keep]
        raw.alleles = [raw.alleles[i] for i in keep]
        raw.filters = [raw.filters[i] for i in keep] if len(raw.filters) else raw.filters
        raw.genotypes = [raw.genotypes[i] for i in keep] if raw.genotypes else raw.genotypes
        if raw.ref is not None:
            raw.ref, raw.alt, raw.multi = raw.ref[keep], raw.alt[keep], raw.multi[keep]
        raw.line = raw.line[np.asarray(keep, dtype=np.int64)]


def _file_key(raw: RawRecords, i: int) -> tuple:
    return raw.chrom[i], raw.pos[i], raw.alleles[i], raw.filters[i] if len(raw.filters) else None


def _split(raw: RawRecords, fixed: str | None, samples: list[str], compat: bool) -> VariantTable:
    """One row per (record, usable ALT allele, carrying sample); skips counted by reason.

    Records of one sample with one ALT (nearly all) become rows without a per-record loop; only the
    others (multi-allelic, genotype-assigned) go through `_split_one`. Rows stay in file order.
    """
    skips = raw.skips
    n = len(raw.pos)
    passed = raw.filters if len(raw.filters) else [True] * n
    simple = np.zeros(n, dtype=bool)
    if fixed is not None and not raw.genotypes and raw.multi is not None:
        simple = ~raw.multi
    elif fixed is not None and not raw.genotypes:
        simple = np.fromiter((a is not None and len(a) == 2 for a in raw.alleles), dtype=bool, count=n)
    rows = np.flatnonzero(simple)
    if raw.ref is not None:
        refs, alts = raw.ref[rows], raw.alt[rows]
    else:
        alleles = [raw.alleles[i] for i in rows]
        refs, alts = [a[0] for a in alleles], [a[1] for a in alleles]
    fast = table_from_lists(
        [fixed] * len(rows),
        np.asarray(raw.chrom, dtype=object)[rows],
        np.asarray(raw.pos, dtype=np.int64)[rows],
        refs,
        alts,
        np.asarray(passed, dtype=bool)[rows],
        raw.line[rows],
    )
    cols: tuple[list, ...] = ([], [], [], [], [], [], [])
    for i in np.flatnonzero(~simple):
        _split_one(raw, int(i), fixed, samples, compat, passed[i], cols, skips)
    table = fast if not len(cols[0]) else concat_tables([fast, table_from_lists(*cols)])
    if len(cols[0]) and len(rows):
        table = table.take(np.argsort(table.line, kind="stable"))
    table.skips = skips
    table.skip_lines = raw.skip_lines
    table.filter_values = _filter_values(raw, table)
    table.ref = _upper(table.ref)
    table.alt = _upper(table.alt)
    return table


def _filter_values(raw: RawRecords, table: VariantTable) -> Counter:
    """The FILTER values of the table's rows that do not pass, counted per row (a record's every ALT and
    carrier, as `non_pass` counts them), looked up by file line among the failing records alone."""
    bad = ~np.asarray(table.passed, dtype=bool)
    if not bad.any() or not len(raw.failed_line):
        return Counter()
    at = np.searchsorted(raw.failed_line, table.line[bad])
    counts = pd.Series(raw.failed_text[at]).value_counts()
    return Counter({str(k): int(v) for k, v in counts.items()})


def _split_one(
    raw: RawRecords,
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
    carried = raw.genotypes[i] if raw.genotypes else None
    for number, alt in enumerate(alleles[1:], start=1):
        if is_symbolic(alt):
            skips["symbolic_allele"] += 1
            continue
        if carried == "not_somatic":
            skips["not_somatic"] += 1
            continue
        if carried is None:
            owners = [fixed] if fixed is not None else samples
        else:
            owners = [s for s, gt in zip(samples, carried, strict=True) if gt and number in gt]
        if not owners:
            skips["no_carrier"] += 1
            raw.skip_lines.setdefault("no_carrier", int(raw.line[i]))
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
