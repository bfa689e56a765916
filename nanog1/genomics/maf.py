"""MAF reader for the files GDC, MC3, Firehose (Oncotator) and cBioPortal write, read in chunks with pandas.

What differs between producers, and how it is read:
- header comment lines (`#version 2.4`, `#version gdc-1.0.0`) are skipped; column names are matched
  without regard to case (Oncotator writes `Start_position`);
- chromosomes `chr1`/`1`, `23`/`24` (Firehose for X/Y) and `M` are spelled `1`, `X`, `Y`, `MT`;
- the alternate allele is `Tumor_Seq_Allele2` unless it equals the reference, then `Tumor_Seq_Allele1`
  (as GDC documents: Allele1 may be the reference for heterozygous calls);
- indels use `-` alleles; the position moves to the anchor base used by the text format (GDC deletions
  start at the first deleted base, so their anchor is Start_Position - 1; insertions start at the base
  before). SigProfilerMatrixGenerator takes Start_Position - 1 for both, which the compatible mode copies;
- `FILTER` (MC3, GDC) sets `passed` (PASS or empty); the values themselves are kept so that what a
  PASS-only ingest drops is counted by value;
- every tumour is its own sample (`Tumor_Sample_Barcode`); several tumours of one patient stay apart;
- `Mutation_Status` Germline, LOH or Post-transcriptional modification (cBioPortal files keep some) is
  not a somatic call: skipped and counted as `not_somatic`.

Per-record columns kept for tokens and checks (VariantTable.annotations): gene (`Hugo_Symbol`),
consequence (`Variant_Classification`), FILTER, sequence context (`CONTEXT` or
`ref_context`, reference base at the centre), protein change (`HGVSp_Short` of MC3/GDC/VEP,
`Protein_Change` of Firehose/Oncotator, or `HGVSp`; as written, parsed into codon keys by
nanog1.genomics.protein when the tokens are built), read counts (`t_ref_count`, `t_alt_count`, `t_depth`,
`t_vaf`, NaN where absent) and a cancer-type column (`Cohort`, `cancer_type`) where present.
"""

from __future__ import annotations

import csv
import ctypes
import gzip
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from nanog1.genomics.contigs import canonical_chrom_name
from nanog1.genomics.variants import InputError, VariantTable, concat_tables
from nanog1.io import first_non_utf8
from nanog1.progress import read_to
from nanog1.schema import CANCER_TYPE

#: Columns every MAF must have (matched case-insensitively); the alternate allele needs one of ALT_COLUMNS.
MAF_COLUMNS = ("Tumor_Sample_Barcode", "Chromosome", "Start_Position", "Reference_Allele")
ALT_COLUMNS = ("Tumor_Seq_Allele2", "Tumor_Seq_Allele1")
#: Optional columns: annotation key -> accepted column names, first found wins.
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "gene": ("Hugo_Symbol",),
    "consequence": ("Variant_Classification",),
    "filter": ("FILTER",),
    "context": ("CONTEXT", "ref_context"),
    "cohort": ("Cohort", CANCER_TYPE),
    "protein": ("HGVSp_Short", "Protein_Change", "HGVSp"),
    "t_ref_count": ("t_ref_count",),
    "t_alt_count": ("t_alt_count",),
    "t_depth": ("t_depth",),
    "t_vaf": ("t_vaf",),
}
NUMERIC = ("t_ref_count", "t_alt_count", "t_depth", "t_vaf")
#: Mutation_Status values (lower-cased) that are not somatic calls: skipped as 'not_somatic'.
NOT_SOMATIC = ("germline", "loh", "post-transcriptional modification")
MAF_SUFFIXES = (".maf", ".maf.gz", ".maf.txt", ".maf.tsv")


def _opener(path: Path):
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    return gzip.open if gzipped else open


def _header(path: Path) -> tuple[int, list[str]]:
    """Number of '#' comment lines before the header line, and the header's column names."""
    count = 0
    # utf-8-sig: a spreadsheet's byte-order mark would otherwise glue itself to the first column's name
    with _opener(path)(path, "rt", encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            if not line.startswith("#"):
                return count, line.rstrip("\r\n").split("\t")
            count += 1
    return count, []


def looks_like_maf(path: Path) -> bool:
    """True when the first non-comment line is a MAF header (e.g. cBioPortal's data_mutations.txt)."""
    try:
        _, names = _header(path)
    except (OSError, UnicodeDecodeError, EOFError):
        return False
    lower = {n.lower() for n in names}
    return all(c.lower() in lower for c in MAF_COLUMNS) or _misformatted_header(names) is not None


def _misformatted_header(names: list[str]) -> str | None:
    """Why a header that holds the MAF columns was not read as a MAF: names in quotes (R's write.table
    writes them so by default) or commas between them (a CSV export); None when neither explains it."""
    def has_columns(fields: list[str]) -> bool:
        lower = {f.strip().strip('"').lower() for f in fields}
        return all(c.lower() in lower for c in MAF_COLUMNS)

    if len(names) == 1 and has_columns(next(csv.reader(names))):
        return ("comma-separated: a MAF is tab-separated, one tab between fields (e.g. R "
                "write.table(maf, sep='\\t', quote=FALSE, row.names=FALSE))")
    if any(n.startswith('"') for n in names) and has_columns(names):
        return ("the column names are in quotes (\"Hugo_Symbol\"), as R's write.table writes them by "
                "default: a MAF has no quotes; write it with quote=FALSE (and row.names=FALSE)")
    return None


def _per_unique(values: pd.Series, fn) -> np.ndarray:
    """fn applied to each distinct value only (MAF columns repeat few values), as an object array.

    Results are interned, so one gene or tumour name is one string object across all blocks of a file
    (10 M records would otherwise hold a copy per block)."""
    codes, uniques = _codes(values)
    cleaned = np.array([sys.intern(fn(u)) for u in uniques] + [fn(None)], dtype=object)
    return cleaned[codes]


def _codes(values: pd.Series) -> tuple[np.ndarray, list]:
    """Integer codes (-1 = missing) and distinct values of a column (read dictionary-encoded)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), list(values.cat.categories)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return codes, list(uniques)


def _categorical(values: pd.Series, fn) -> pd.Categorical:
    """fn applied per distinct value, kept as a Categorical (a few bytes per record, not a pointer)."""
    codes, uniques = _codes(values)
    cleaned = pd.Categorical([fn(u) for u in uniques] + [fn(None)])
    return pd.Categorical.from_codes(cleaned.codes[codes], cleaned.categories)


def _numeric(values: pd.Series, dtype=np.float32) -> np.ndarray:
    """Numbers per record (float32 for read counts; float64 keeps positions exact); NaN where missing."""
    if pd.api.types.is_float_dtype(values.dtype):
        return values.to_numpy(dtype=dtype, na_value=np.nan)
    codes, uniques = _codes(values)
    numbers = pd.to_numeric(pd.Series(uniques + [None], dtype=object), errors="coerce").to_numpy(np.float64)
    return numbers[codes].astype(dtype)


def _allele(value: str | None) -> str:
    return (value or "").strip().upper()


def _text(value: str | None) -> str:
    return (value or "").strip()


def _columns(path: Path, line: int, names: list[str]) -> dict[str, str]:
    """Canonical name -> the file's spelling, for the required and optional columns found."""
    by_lower = {n.lower(): n for n in names}
    missing = [c for c in MAF_COLUMNS if c.lower() not in by_lower]
    if missing or not any(c.lower() in by_lower for c in ALT_COLUMNS):
        missing += [] if any(c.lower() in by_lower for c in ALT_COLUMNS) else [" or ".join(ALT_COLUMNS)]
        why = _misformatted_header(names) or f"MAF header lacks columns {missing}"
        raise InputError(str(path), line, why)
    out = {c: by_lower[c.lower()] for c in (*MAF_COLUMNS, *ALT_COLUMNS) if c.lower() in by_lower}
    if "mutation_status" in by_lower:
        out["status"] = by_lower["mutation_status"]
    for key, options in OPTIONAL_COLUMNS.items():
        found = next((by_lower[o.lower()] for o in options if o.lower() in by_lower), None)
        if found is not None:
            out[key] = found
    return out


def _alleles(chunk: pd.DataFrame, cols: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Upper-case REF and ALT; ALT is Allele2, or Allele1 where Allele2 is missing or equals REF."""
    ref = _per_unique(chunk[cols["Reference_Allele"]], _allele)
    two, one = (_per_unique(chunk[cols[c]], _allele) if c in cols else None for c in ALT_COLUMNS)
    if two is None:
        return ref, one
    if one is None:
        return ref, two
    return ref, np.where((two != ref) & (two != ""), two, one)


def _annotations(chunk: pd.DataFrame, cols: dict[str, str], keep: np.ndarray) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key in OPTIONAL_COLUMNS:
        if key not in cols:
            continue
        values = chunk[cols[key]]
        if key in NUMERIC:
            out[key] = _numeric(values)[keep]
        else:
            out[key] = _categorical(values, _text)[keep]
    return out


def _unusable_field(chunk: pd.DataFrame, cols: dict[str, str], i: int, start: np.ndarray, chrom: np.ndarray,
                    sample: np.ndarray) -> str:
    """Why record `i` of a chunk cannot be placed, naming the field and its value as written ('Start_Position
    '12,345' is not a whole number'), not the three candidates at once."""
    def written(key: str) -> str:
        value = chunk[cols[key]].iloc[i]
        return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip()

    if np.isnan(start[i]):
        value = written("Start_Position")
        return (f"{cols['Start_Position']} {value!r} is not a whole number" if value
                else f"{cols['Start_Position']} is empty (or NA)")
    if chrom[i] == "":
        return f"{cols['Chromosome']} is empty"
    return f"{cols['Tumor_Sample_Barcode']} is empty: every record needs its tumour"


def _chunk_table(
    chunk: pd.DataFrame, cols: dict[str, str], first_line: int, compat: bool, path: Path, on_error: str
) -> VariantTable:
    """Convert one MAF chunk into a VariantTable, moving indel positions to their anchor base."""
    skips: Counter = Counter()
    lines = first_line + np.arange(len(chunk), dtype=np.int64)
    start = _numeric(chunk[cols["Start_Position"]], np.float64)
    sample = _per_unique(chunk[cols["Tumor_Sample_Barcode"]], _text)
    chrom = _per_unique(chunk[cols["Chromosome"]], canonical_chrom_name)
    bad = np.isnan(start) | (chrom == "") | (sample == "")
    if bad.any():
        if on_error != "skip":
            i = int(np.flatnonzero(bad)[0])
            raise InputError(str(path), int(lines[i]), _unusable_field(chunk, cols, i, start, chrom, sample))
        skips["malformed_line"] += int(bad.sum())
    keep = ~bad
    if "status" in cols:  # Mutation_Status: germline / LOH rows (cBioPortal keeps some) are not somatic
        status = _per_unique(chunk[cols["status"]], lambda v: (v or "").strip().lower())
        germline = keep & np.isin(status, NOT_SOMATIC)
        skips["not_somatic"] += int(germline.sum())
        keep &= ~germline
    ref, alt = _alleles(chunk, cols)
    ref, alt = ref[keep], alt[keep]
    pos = start[keep].astype(np.int64)
    is_del = alt == "-"
    is_ins = ref == "-"
    pos = pos - ((is_del | is_ins) if compat else is_del).astype(np.int64)
    notes = _annotations(chunk, cols, keep)
    passed = np.ones(len(pos), dtype=bool)
    if "filter" in notes:
        passed = np.isin(notes["filter"], ("PASS", ".", ""))
    return VariantTable(
        sample[keep],
        chrom[keep],
        pos,
        ref,
        alt,
        passed,
        lines[keep],
        skips,
        annotations=notes,
    )


def read_maf(
    path: Path, compat: bool = False, on_error: str = "stop", block_size: int = 1 << 22
) -> VariantTable:
    """Read a MAF into a VariantTable (one row per record, sample = Tumor_Sample_Barcode), in blocks of
    `block_size` bytes (memory stays bounded by one block's strings plus the compact table)."""
    path = Path(path)
    try:
        offset, names = _header(path)
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise InputError(str(path), None, f"not a readable MAF ({err})") from err
    cols = _columns(path, offset + 1, names)
    _map_large_allocations()
    numbers = [cols[c] for c in ("Start_Position", *NUMERIC) if c in cols]
    try:
        table = _read_blocks(path, offset, names, cols, compat, on_error, block_size, numbers)
    except pa.ArrowInvalid:
        # A value that is not a number: read those columns as text, so the line can be named.
        table = _read_blocks(path, offset, names, cols, compat, on_error, block_size, [])
    _check_allele_one_only(path, offset + 1, cols, table)
    return table


def _check_allele_one_only(path: Path, line: int, cols: dict[str, str], table: VariantTable) -> None:
    """A MAF with Tumor_Seq_Allele1 but no Tumor_Seq_Allele2 whose Allele1 is mostly the reference (as GDC
    writes it for heterozygous calls) has lost its alternate allele: say so at the header, rather than let
    ingest refuse it later for 'ref_equals_alt' losses."""
    if "Tumor_Seq_Allele2" in cols or not len(table.ref):
        return
    same = int((table.ref == table.alt).sum())
    if same > len(table.ref) / 2:
        raise InputError(str(path), line, f"no Tumor_Seq_Allele2 column, and Tumor_Seq_Allele1 equals "
                                          f"Reference_Allele on {same:,} of {len(table.ref):,} calls: the "
                                          "alternate allele (Tumor_Seq_Allele2) is missing from this MAF")


def _read_blocks(path, offset, names, cols, compat, on_error, block_size, numeric) -> VariantTable:
    tables = []
    first_line = offset + 2
    usecols = sorted(set(cols.values()))
    invalid: list[int] = []  # under on_error='skip', lines whose field count differs from the header's
    handler = (lambda row: invalid.append(1) or "skip") if on_error == "skip" else None
    try:
        for i, chunk in enumerate(_batches(path, offset, names, usecols, block_size, numeric, handler)):
            tables.append(_chunk_table(chunk, cols, first_line, compat, path, on_error))
            first_line += len(chunk)
            if i % 16 == 15:
                _release_freed_memory()
    except (OSError, EOFError) as err:
        raise InputError(str(path), None, f"malformed MAF ({err})") from err
    except pa.ArrowInvalid as err:
        if numeric:
            raise
        raise _malformed(path, offset, names, err) from err
    table = concat_tables(tables)
    _release_freed_memory()
    if invalid:
        _skip_malformed_lines(table, path, offset, len(names))
    return table


def _skip_malformed_lines(table: VariantTable, path: Path, offset: int, n_columns: int) -> None:
    """Count the lines whose field count differs from the header's (skipped by the reader under
    on_error='skip') as `malformed_line`, and move the line numbers of the records after each one to
    where they are in the file. A plain scan, on this path only."""
    bad = []
    with _opener(path)(path, "rt", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if number > offset + 1 and line.strip("\r\n") and line.count("\t") + 1 != n_columns:
                bad.append(number)
    table.skips["malformed_line"] += len(bad)
    # record i of the data lines (line offset + 2 + i if none were skipped) follows every bad line
    # whose index among the data lines, less the bad lines before it, is <= i
    first = offset + 2
    inserted = np.asarray(bad, dtype=np.int64) - first - np.arange(len(bad), dtype=np.int64)
    index = table.line - first
    table.line = table.line + np.searchsorted(inserted, index, side="right")


def _pool() -> pa.MemoryPool:
    """jemalloc where pyarrow has it: it returns freed block buffers to the system, where the default
    mimalloc pool kept about 1.3x the table's size resident on 2 M records."""
    try:
        return pa.jemalloc_memory_pool()
    except (NotImplementedError, pa.ArrowNotImplementedError):
        return pa.default_memory_pool()


def _map_large_allocations() -> None:
    """Serve every allocation over 128 KiB with its own mapping, returned to the system when freed.

    glibc raises this threshold each time such a block is freed, after which the blocks' arrays come
    from the heap and stay resident between blocks (≈ 180 MB more peak at 10 M MAF records)."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


def _release_freed_memory() -> None:
    """Hand the blocks' freed heap back to the system (glibc keeps it otherwise: ~2x the table)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _batches(
    path: Path,
    offset: int,
    names: list[str],
    usecols: list[str],
    block_size: int,
    numeric: list[str],
    on_invalid=None,
):
    """The MAF's data lines as pandas chunks (pyarrow's streaming CSV reader: several times faster than
    pandas' parser on 2 cores): string columns dictionary-encoded (no Python string per record),
    `numeric` columns parsed as numbers ('', 'NA' and '.' are missing). A line whose field count differs
    from the header's raises pyarrow.ArrowInvalid, or is passed to `on_invalid` (which returns 'skip')."""
    gzipped = _opener(path) is gzip.open
    raw = pa.OSFile(str(path))  # what pa.input_stream opens; its position is how far the reader is
    stream = _Counted(pa.CompressedInputStream(raw, "gzip")) if gzipped else raw
    reader = pacsv.open_csv(
        stream,
        memory_pool=_pool(),
        read_options=pacsv.ReadOptions(skip_rows=offset + 1, column_names=names, block_size=block_size),
        parse_options=_parse_options(on_invalid),
        convert_options=pacsv.ConvertOptions(
            include_columns=usecols,
            column_types={
                c: pa.float64() if c in numeric else pa.dictionary(pa.int32(), pa.string()) for c in usecols
            },
            strings_can_be_null=True,
            null_values=["", "NA", "."],
        ),
    )
    taken = 0  # text the batches so far hold: a block of `block_size` bytes each
    for batch in reader:
        taken += block_size
        read_to(_file_bytes_taken(raw, stream, taken))
        yield batch.to_pandas()


class _Counted:
    """A gzipped MAF's decompressed text for pyarrow's reader, counting the bytes it has taken: the reader
    reads ahead of the batches it hands on (all of a small file at once), so the file's position alone says
    it is read long before it is (`_file_bytes_taken`). One call a block of megabytes."""

    def __init__(self, stream: pa.NativeFile) -> None:
        self.stream, self.count, self.closed = stream, 0, False

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(None if size < 0 else size)
        self.count += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True
        self.stream.close()


def _file_bytes_taken(raw: pa.NativeFile, stream, taken: int) -> int:
    """How far into the file (its compressed bytes, if gzipped) the batches handed on so far reach, for the
    progress within one file (nanog1.progress.read_to): a plain file's `taken` bytes, a gzipped file's
    position scaled by the share of the text decompressed so far that `taken` is."""
    if not isinstance(stream, _Counted):
        return min(taken, raw.size())
    return int(raw.tell() * min(1.0, taken / stream.count)) if stream.count > 0 else 0


def _parse_options(on_invalid=None) -> pacsv.ParseOptions:
    return pacsv.ParseOptions(
        delimiter="\t", quote_char=False, newlines_in_values=False, invalid_row_handler=on_invalid
    )


def _skip_row(row) -> str:
    return "skip"


def maf_samples(path: Path, on_error: str = "stop") -> tuple[str, ...]:
    """The tumour ids of a MAF (distinct `Tumor_Sample_Barcode` values, sorted), reading that column
    only: what the sample sheet is checked against before any record is read. A line with the wrong
    field count is an error, or (on_error='skip') left out, as `read_maf` leaves it out."""
    import pyarrow.compute as pc

    path = Path(path)
    try:
        offset, names = _header(path)
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise InputError(str(path), None, f"not a readable MAF ({err})") from err
    column = _columns(path, offset + 1, names)["Tumor_Sample_Barcode"]
    found: set[str] = set()
    try:
        for chunk in _column_batches(path, offset, names, column, skip_invalid=on_error == "skip"):
            values = pc.utf8_trim_whitespace(pc.unique(chunk.column(0)).cast(pa.string()))
            found.update(v for v in values.to_pylist() if v)
    except (OSError, EOFError) as err:
        raise InputError(str(path), None, f"malformed MAF ({err})") from err
    except pa.ArrowInvalid as err:
        raise _malformed(path, offset, names, err) from err
    return tuple(sorted(found))


def maf_builds(path: Path) -> dict[str, str]:
    """Tumour id -> genome build its calls are on (`NCBI_Build`, spelled GRCh37 / GRCh38 where known, else
    as written: the spellings of `nanog1.genomics.build`); empty when the MAF has no NCBI_Build column.
    Reads those two columns only."""
    from nanog1.genomics.build import canonical_build

    path = Path(path)
    offset, names = _header(path)
    cols = _columns(path, offset + 1, names)
    build = next((n for n in names if n.lower() == "ncbi_build"), None)
    if build is None:
        return {}
    found: dict[str, str] = {}
    for chunk in _column_batches(path, offset, names, cols["Tumor_Sample_Barcode"], build):
        pairs = chunk.to_pandas().astype(str).drop_duplicates()
        for sample, value in pairs.itertuples(index=False):
            value = value.strip()
            if value not in ("", "None", "nan"):
                found.setdefault(sample.strip(), canonical_build(value))
    return found


def first_records(path: Path, records: int = 1000) -> list[tuple[str, int, str]]:
    """(Chromosome, Start_Position, Reference_Allele) of a MAF's first `records` records, in file order, the
    chromosome as written unless ingest reads it as another (`_contig_as_read`: Firehose's 23 is X): what
    `--check-only --reference` reads against the FASTA, as `vcf.first_records` gives a VCF's. SNVs and
    deletions start at their first reference base; an insertion's '-' names none. A missing column, a line
    with too few fields or a Start_Position that is not a whole number ends the list: ingest names those."""
    path = Path(path)
    found: list[tuple[str, int, str]] = []
    try:
        offset, names = _header(path)
        cols = _columns(path, offset + 1, names)
        at = [names.index(cols[c]) for c in ("Chromosome", "Start_Position", "Reference_Allele")]
        with _opener(path)(path, "rt", encoding="utf-8-sig", errors="replace") as f:
            for number, line in enumerate(f, start=1):
                if number <= offset + 1 or not line.strip():
                    continue
                fields = line.rstrip("\r\n").split("\t")
                if len(fields) <= max(at) or not fields[at[1]].strip().isdigit():
                    break
                chrom, start, ref = (fields[i].strip() for i in at)
                found.append((_contig_as_read(chrom), int(start), _allele(ref)))
                if len(found) >= records:
                    break
    except (OSError, EOFError, UnicodeDecodeError, InputError):
        pass
    return found


def _contig_as_read(chrom: str) -> str:
    """A MAF's Chromosome as written ('chr1', 'M'), or its canonical name where ingest reads it as another
    contig than the name says without its 'chr' prefix (Firehose's 23 and 24 are X and Y)."""
    bare = chrom[3:] if chrom.lower().startswith("chr") else chrom
    canonical = canonical_chrom_name(chrom)
    return chrom if canonical in (bare, "MT") else canonical


#: NCBI_Build values that state no build (as the column reader's null values, plus pandas' spellings).
_NO_BUILD = ("", "na", ".", "none", "nan")


def maf_build_change(path: Path) -> tuple[str | None, tuple[int, str, str, int] | None]:
    """The genome build a MAF's records state (`NCBI_Build`, spelled as `maf_builds` spells it; None when it
    has no such column or no record states one) and, when a later record states another, where:
    (its line number in the file, its build, its value as written, the line of the first record stating a
    build). The column alone is read; the lines are found by a plain scan only when two builds occur."""
    import pyarrow.compute as pc

    from nanog1.genomics.build import canonical_build

    path = Path(path)
    offset, names = _header(path)
    _columns(path, offset + 1, names)
    column = next((n for n in names if n.lower() == "ncbi_build"), None)
    if column is None:
        return None, None
    seen: set[str] = set()
    for chunk in _column_batches(path, offset, names, column):
        values = pc.utf8_trim_whitespace(pc.unique(chunk.column(0)).cast(pa.string()))
        seen.update(canonical_build(v) for v in values.to_pylist() if v and v.lower() not in _NO_BUILD)
    if len(seen) <= 1:
        return (seen.pop() if seen else None), None
    at = names.index(column)
    first: tuple[int, str] | None = None
    with _opener(path)(path, "rt", encoding="utf-8-sig", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if number <= offset + 1 or not line.strip("\r\n"):
                continue
            fields = line.rstrip("\r\n").split("\t")
            value = fields[at].strip() if at < len(fields) else ""
            if value.lower() in _NO_BUILD:
                continue
            build = canonical_build(value)
            if first is None:
                first = (number, build)
            elif build != first[1]:
                return first[1], (number, build, value, first[0])
    return (first[1] if first else None), None


def _malformed(path: Path, offset: int, names: list[str], err: Exception) -> InputError:
    """The error for a MAF pyarrow could not split or decode, naming the first line whose field count
    differs from the header's, else the first line that is not UTF-8 text (pyarrow's messages quote neither
    line number nor column); found by a plain scan, on this error path only."""
    n_columns = len(names)
    with _opener(path)(path, "rt", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if number > offset + 1 and line.strip("\r\n") and line.count("\t") + 1 != n_columns:
                got = line.count("\t") + 1
                why = f"malformed MAF: {got} fields where the header has {n_columns}"
                return InputError(str(path), number, why)
    return _not_utf8(path, names) or InputError(str(path), None, f"malformed MAF ({err})")


def _not_utf8(path: Path, names: list[str]) -> InputError | None:
    """The first line that is not UTF-8 (a MAF saved as Latin-1 or Windows-1252 by a spreadsheet, say),
    named by line, column and byte, with how to convert it; None when every line decodes."""
    with _opener(path)(path, "rb") as f:
        found = first_non_utf8(f)
    if found is None:
        return None
    number, raw, at = found
    column = raw[:at].count(b"\t")
    name = names[column] if column < len(names) else f"field {column + 1}"
    value = raw.split(b"\t")[column].decode("utf-8", "replace").strip()
    why = (f"not UTF-8 text: byte 0x{raw[at]:02x} in {name} ({value!r}); save the file as "
           "UTF-8, e.g. iconv -f latin1 -t utf-8")
    return InputError(str(path), number, why)


def _column_batches(path: Path, offset: int, names: list[str], *columns: str, skip_invalid: bool = True):
    """Text columns of a MAF as pyarrow record batches (the other columns are not converted). Lines with
    the wrong field count are left out (the record reader names or counts them), unless not
    `skip_invalid` (pyarrow.ArrowInvalid then)."""
    gzipped = _opener(path) is gzip.open
    stream = pa.input_stream(str(path), compression="gzip" if gzipped else None)
    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(skip_rows=offset + 1, column_names=names, block_size=1 << 24),
        parse_options=_parse_options(_skip_row if skip_invalid else None),
        convert_options=pacsv.ConvertOptions(
            include_columns=list(columns),
            column_types={c: pa.dictionary(pa.int32(), pa.string()) for c in columns},
            strings_can_be_null=True,
            null_values=["", "NA", "."],
        ),
    )
