"""Sample sheets (CSV/TSV): a sample id column, a cancer type column, optional routing columns, any others.

Routing columns tie rows to input files: `file` (the input's path or file name; one row per file, so
a sample split over several files, e.g. Strelka2's SNV and indel VCFs, has one row per file), and
`tumor_sample`/`normal_sample` (the tumour and normal column names inside that file). They are
checked against the inputs before any record is read (`check_sheet`); the other columns annotate
the cohort's samples.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.genomics.variants import InputError
from nanog1.io import first_non_utf8
from nanog1.schema import CANCER_TYPE

ID_COLUMNS = ("sample", "sample_id", "sample_name", "samples", "tumor_sample_barcode", "aliquot_id", "id")
TYPE_COLUMNS = (
    CANCER_TYPE,
    "cancer type",
    "cancer_types",
    "cancer types",
    "tumour_type",
    "tumor_type",
    "histology",
    "project",
    "dcc_project_code",
    "cohort",  # TCGA's study code (LUAD, BRCA ...), as in GDC/TCGAmutations tables and MAFs
)
FILE_COLUMNS = ("file", "path", "filename", "file_name", "vcf", "input")
TUMOR_COLUMNS = ("tumor_sample", "tumour_sample")
NORMAL_COLUMNS = ("normal_sample",)
#: Words that mark a column meant as the cancer type, but not spelled as one of TYPE_COLUMNS.
TYPE_HINTS = ("cancer", "tumor_type", "tumour_type", "histolog", "diagnosis", "disease")
#: How sheet and inputs must agree: strict (every row has an input, every input a row), subset
#: (rows may belong to other jobs' inputs, as in the pipeline's per-part ingest), lenient (reported).
SHEET_POLICIES = ("strict", "subset", "lenient")


@dataclass
class SampleSheet:
    """A parsed sheet: per-sample annotations, and per-file routing rows when the sheet has them."""

    path: Path
    samples: pd.DataFrame
    files: pd.DataFrame | None
    #: How a sheet that is not UTF-8 was decoded (`_check_text`), for the user; None for UTF-8.
    notice: str | None = None
    #: The file rows by bare file name and by resolved path (`_file_index`), built on first use.
    _index: tuple[dict, dict] | None = field(default=None, repr=False, compare=False)

    def rows_for(self, path: Path) -> pd.DataFrame:
        """The routing rows naming this input (by path, or by file name when the row gives no folder), in
        sheet order. One lookup in rows indexed once, not a scan of every row per input: that made a
        cohort's check files x rows (52 s for 1,000 VCFs and their 1,000 rows, 0.65 s for 100)."""
        if self.files is None:
            return self.files
        by_name, by_path = self._file_index()
        path = Path(path)
        hits = set(by_name.get(path.name, ()))
        if by_path and path.exists():
            hits.update(by_path.get(path.resolve(), ()))
        return self.files.iloc[sorted(hits)]

    def _file_index(self) -> tuple[dict, dict]:
        """Row positions by file name (a row's file without a folder matches any input of that name) and
        by resolved path (a row's file with a folder, as given or beside the sheet, where it exists)."""
        if self._index is None:
            by_name: dict[str, list[int]] = {}
            by_path: dict[Path, list[int]] = {}
            for i, entry in enumerate(self.files["file"]):
                entry_path = Path(entry)
                if entry_path.parent == Path("."):
                    by_name.setdefault(entry_path.name, []).append(i)
                    continue
                for candidate in (entry_path, self.path.parent / entry_path):
                    if candidate.exists():
                        by_path.setdefault(candidate.resolve(), []).append(i)
            self._index = (by_name, by_path)
        return self._index


def _pick(columns: list[str], wanted: tuple[str, ...]) -> str | None:
    lower = {c.lower().strip(): c for c in columns}
    return next((lower[w] for w in wanted if w in lower), None)


#: First-line signs of a file that is an input, not a sheet (--samples given the FASTA or a VCF): its lines
#: would be read as sample names ('sample 'SIM0001' has no row in the sample sheet genome.fa (and 50003
#: more ...)').
_NOT_A_SHEET = ((">", "a FASTA (a '>name' line): it goes to --reference"),
                ("##fileformat=VCF", "a VCF: give it as an input file"),
                ("#CHROM", "a VCF: give it as an input file"))


#: Leading bytes of binary files given as the sheet, and what they are.
_BINARY_SHEETS = ((b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip file: save the sheet as CSV or "
                   "TSV (in Excel: Save As, CSV UTF-8)"),
                  (b"\xd0\xcf\x11\xe0", "an Excel 97-2003 workbook (.xls): save the sheet as CSV or TSV"),
                  (b"\x1f\x8b", "gzip-compressed: decompress it (gunzip)"),
                  (b"\xff\xfe", "UTF-16 text (Excel's 'Unicode Text'): save it as CSV UTF-8, or convert it: "
                   "iconv -f utf-16 -t utf-8"),
                  (b"\xfe\xff", "UTF-16 text: convert it to UTF-8 (iconv -f utf-16 -t utf-8)"),
                  (b"\x89HDF", "an HDF5 file (a cohort .h5ad?)"))


#: What a sheet that is not UTF-8 is read as, in order: Windows-1252 (Excel's 'CSV' on Windows; Latin-1 but
#: for the 0x80-0x9f bytes), else Latin-1 (every byte a character).
FALLBACK_ENCODINGS = (("cp1252", "Windows-1252"), ("latin-1", "Latin-1"))
#: Bytes no text sheet holds in any of those encodings (NUL and control characters but tab, CR, LF).
_CONTROL = bytes([*range(0, 9), 11, 12, *range(14, 32)])


def _check_text(path: Path) -> tuple[str, str | None]:
    """(encoding, notice) of a sheet: ('utf-8', None) for UTF-8 text. A workbook, a compressed or HDF5 file
    (by its first bytes) or any binary file is one InputError naming it. A sheet that is not UTF-8 (a
    Latin-1/Windows-1252 export: 'Müller' as one byte 0xfc) is read in the first FALLBACK_ENCODINGS that
    decodes it rather than refused, with a one-line notice naming the sheet, its first such line and how
    that line reads, so the user can tell whether the names came out right (they are then used as decoded:
    matched against VCF columns and file names, written to the cohort)."""
    data = path.read_bytes()
    looks = next((what for magic, what in _BINARY_SHEETS if data.startswith(magic)), None)
    if looks:
        raise InputError(str(path), None, f"not a sample sheet: {looks}")
    found = first_non_utf8(io.BytesIO(data))
    if found is None:
        return "utf-8", None
    number, raw, at = found
    if any(byte in _CONTROL for byte in data):
        raise InputError(str(path), number, f"not a text sample sheet (byte 0x{raw[at]:02x} is not UTF-8, "
                         "and the file holds control bytes): save the sheet as CSV or TSV")
    encoding, name = next((e, n) for e, n in FALLBACK_ENCODINGS if _decodes(data, e))
    line = raw.decode(encoding).strip()
    shown = line if len(line) <= 60 else line[:57] + "..."
    notice = (f"{path}:{number}: not UTF-8 (byte 0x{raw[at]:02x}); read as {name}, its names used as decoded "
              f"(this line reads {shown!r}); save the sheet as UTF-8 to be sure, e.g. iconv -f "
              f"{encoding} -t utf-8")
    return encoding, notice


def _decodes(data: bytes, encoding: str) -> bool:
    """True when `data` is text in `encoding` (cp1252 leaves five bytes undefined; Latin-1 none)."""
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _read_table(path: Path) -> tuple[pd.DataFrame, str | None]:
    """The sheet as strings (cells and headers stripped, blanks empty) and the decoding notice, if any."""
    encoding, notice = _check_text(path)
    with open(path, encoding=encoding, errors="replace") as f:
        first = f.readline()
    looks = next((what for sign, what in _NOT_A_SHEET if first.lstrip("\ufeff").startswith(sign)), None)
    if looks:
        raise InputError(str(path), 1, f"not a sample sheet: it looks like {looks}; the sheet is a CSV/TSV "
                         f"with a sample column ({', '.join(ID_COLUMNS[:3])}, ...)")
    sep = "\t" if "\t" in first else ","
    try:
        sheet = pd.read_csv(path, sep=sep, dtype=str, comment=None, encoding=encoding)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(str(path), None, f"not a readable sample sheet ({err})") from err
    if sheet.empty and not len(sheet.columns):
        raise InputError(str(path), 1, "empty sample sheet")
    # Spreadsheet exports pad cells and headers with spaces: ' S1 ' is the sample S1, a blank cell empty.
    sheet.columns = [str(c).strip() for c in sheet.columns]
    return sheet.apply(lambda col: col.str.strip().replace("", np.nan)), notice


def _first_duplicate(frame: pd.DataFrame, columns: list[str], path: Path, what: str) -> None:
    """An InputError at the sheet line (the frame's index: row 0 is line 2) of the first repeated row."""
    dup = frame.duplicated(subset=columns)
    if dup.any():
        line = int(frame.index[dup.to_numpy()][0]) + 2
        raise InputError(str(path), line, f"duplicate {what} {tuple(frame.loc[dup, columns].iloc[0])!r}")


def _first_file_twice(named: pd.DataFrame, file_col: str, path: Path) -> None:
    """A file named on two rows is an error saying why: a row with a file routes that file to one tumour
    (Strelka2's two files of one tumour are two rows of one sample, never one file of two), and the
    tumours of a file holding several (a MAF, by its Tumor_Sample_Barcode) are rows with no file."""
    dup = named.duplicated(subset=[file_col])
    if dup.any():
        line = int(named.index[dup.to_numpy()][0]) + 2
        entry = named.loc[dup, file_col].iloc[0]
        first = int(named.index[(named[file_col] == entry).to_numpy()][0]) + 2
        why = (f"file {entry!r} is named again (first on line {first}): a row's file is routed to that row's "
               "one tumour; the tumours of a file that names several (a MAF's Tumor_Sample_Barcode) take "
               "rows with the file cell left blank")
        raise InputError(str(path), line, why)


def load_sample_sheet(path: Path) -> SampleSheet:
    """Parse a sheet (UTF-8, or Windows-1252/Latin-1 with a `notice`); duplicate ids (or id+file pairs),
    conflicting annotations of one id and a cancer-type column under an unrecognised name are errors that
    name the sheet and line."""
    path = Path(path)
    sheet, notice = _read_table(path)
    columns = list(sheet.columns)
    id_col = _pick(columns, ID_COLUMNS) or columns[0]
    file_col = _pick(columns, FILE_COLUMNS)
    tumor_col, normal_col = _pick(columns, TUMOR_COLUMNS), _pick(columns, NORMAL_COLUMNS)
    type_col = _pick(columns, TYPE_COLUMNS)
    if type_col is None:
        hinted = [c for c in columns if any(h in c.lower() for h in TYPE_HINTS)]
        if hinted:
            raise InputError(
                str(path),
                1,
                f"column {hinted[0]!r} is not a recognised cancer-type column; name it one of {TYPE_COLUMNS}",
            )
    sheet[id_col] = sheet[id_col].astype(str)
    routing = [c for c in (file_col, tumor_col, normal_col) if c is not None]
    files = None
    if file_col is not None:
        named = sheet[sheet[file_col].notna()]  # a row with a blank file annotates its sample, routes nothing
        _first_duplicate(named, [id_col, file_col], path, "sample id and file")
        _first_file_twice(named, file_col, path)
        names = {id_col: "sample", file_col: "file", tumor_col: "tumor_sample", normal_col: "normal_sample"}
        files = named[[id_col, *routing]].rename(columns={k: v for k, v in names.items() if k})
        files["line"] = named.index + 2
    else:
        _first_duplicate(sheet, [id_col], path, "sample id")
        if tumor_col is not None or normal_col is not None:
            raise InputError(
                str(path), 1, "tumor_sample/normal_sample columns need a file column saying which file"
            )
    samples = sheet.drop(columns=routing).drop_duplicates()
    _first_duplicate(samples, [id_col], path, "sample id with different annotations:")
    samples = samples.set_index(id_col)
    samples.index.name = None
    if type_col and type_col != CANCER_TYPE:
        samples = samples.rename(columns={type_col: CANCER_TYPE})
    return SampleSheet(path, samples, files, notice)


def read_sample_sheet(path: Path) -> pd.DataFrame:
    """Sheet annotations indexed by sample id (strings), the cancer-type column renamed `cancer_type`."""
    return load_sample_sheet(path).samples


def check_sheet(
    sheet: SampleSheet,
    inputs: list[Path],
    samples_of: dict[str, list[str]],
    policy: str,
    complete: bool = True,
    routed: set[str] | None = None,
) -> list[str]:
    """Check the sheet against the inputs; return notes (lenient policy) or raise InputError.

    `samples_of` maps input paths to the cohort samples they give (before reading: what the VCF
    headers say); `complete` says whether every input's samples are known, so that sheet rows without
    any input can be told apart. With a `file` column, every input in `routed` (the VCFs; default: all
    inputs) needs a row naming it, and under strict every such row an input. Samples without a row are
    errors under strict and subset; sheet samples without data under strict.
    """
    if policy not in SHEET_POLICIES:
        raise UserError(f"sheet policy must be one of {SHEET_POLICIES}, not {policy!r}")
    problems: list[str] = []
    if sheet.files is not None:
        problems += _file_rows(sheet, inputs, {str(p) for p in inputs} if routed is None else routed, policy)
    ids = set(sheet.samples.index)
    found = set()
    for path in inputs:
        names = samples_of.get(str(path), [])
        found.update(names)
        problems += [
            f"{path}: sample {n!r} has no row in the sample sheet {sheet.path}" for n in names if n not in ids
        ]
    if complete and policy == "strict":
        problems += [f"{sheet.path}: sample {name!r} has no input file" for name in sorted(ids - found)]
    if problems and policy != "lenient":
        more = f" (and {len(problems) - 1} more sheet/input mismatches)" if len(problems) > 1 else ""
        path, _, why = problems[0].partition(": ")
        raise InputError(path, None, why + more)
    return problems


def _file_rows(sheet: SampleSheet, inputs: list[Path], routed: set[str], policy: str) -> list[str]:
    """Routed inputs without a row naming them; under strict, rows naming no input."""
    problems, used = [], set()
    for path in inputs:
        rows = sheet.rows_for(path)
        if str(path) in routed and not len(rows):
            problems.append(f"{path}: no row of the sample sheet {sheet.path} names this file")
        used.update(rows.index)
    if policy == "strict":
        for _, row in sheet.files.drop(index=list(used)).iterrows():
            problems.append(f"{sheet.path}:{row['line']}: file {row['file']!r} is not among the inputs")
    return problems
