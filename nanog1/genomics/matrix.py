"""Readers for ready catalogue matrices (SigProfiler or ICAMS/PCAWG layout, CSV or TSV).

Rows are channels, columns samples. Channel labels come either as one SigProfiler column
(`A[C>A]A`, `AC>CA`, `1:Del:C:0`) or as ICAMS/PCAWG label columns (`Mutation type`+`Trinucleotide`;
`Ref`+`Var`; `Type`+`Subtype`+`Indel_size`+`Repeat_MH_size`), or COSMIC's SBS96 `Type`+`SubType`
(`C>A`+`ACA`, told by the values, whatever the columns are named). Columns named `CancerType::SampleID`
give each sample's cancer type.
"""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from nanog1.genomics.channels import CHANNEL_SETS, canonical_dbs
from nanog1.genomics.variants import InputError

MATRIX_SUFFIXES = (".csv", ".tsv", ".txt", ".all")


@dataclass
class CatalogueMatrix:
    """One channel set's counts (channels x samples, our label order) and cancer types where named."""

    channel_set: str
    counts: pd.DataFrame
    cancer_types: pd.Series


def _id_label(kind: str, subtype: str, size: str, count: str) -> str:
    sub = {"repeats": "R", "MH": "M"}.get(subtype, subtype)
    return f"{size.rstrip('+')}:{kind.title()}:{sub}:{count.rstrip('+')}"


def _labels(frame: pd.DataFrame) -> tuple[list[str], int]:
    """Channel labels from the leading label columns, and how many columns they take."""
    cols = [str(c).strip() for c in frame.columns]
    as_str = lambda i: frame.iloc[:, i].astype(str).str.strip()  # noqa: E731
    if cols[:2] == ["Mutation type", "Trinucleotide"]:
        return [f"{t[0]}[{m}]{t[2]}" for m, t in zip(as_str(0), as_str(1), strict=True)], 2
    if cols[:2] == ["Ref", "Var"]:
        return [canonical_dbs(r, v) for r, v in zip(as_str(0), as_str(1), strict=True)], 2
    if cols[:4] == ["Type", "Subtype", "Indel_size", "Repeat_MH_size"]:
        parts = zip(as_str(0), as_str(1), as_str(2), as_str(3), strict=True)
        return [_id_label(*p) for p in parts], 4
    if frame.shape[1] > 2 and _substitution_and_context(as_str(0), as_str(1)):
        # COSMIC's and sigfit's Type / SubType layout ('C>A', 'ACA'), whatever the two columns are named
        return [f"{t[0]}[{m}]{t[2]}" for m, t in zip(as_str(0), as_str(1), strict=True)], 2
    return list(as_str(0)), 1


def _substitution_and_context(kinds: pd.Series, contexts: pd.Series) -> bool:
    """Whether two label columns are an SBS96 channel split in two: the substitution ('C>A', pyrimidine
    reference) and its trinucleotide ('ACA', the reference base in the middle)."""
    kinds, contexts = kinds.str.upper(), contexts.str.upper()
    return bool(len(kinds)) and bool(kinds.str.fullmatch(r"[CT]>[ACGT]").all()
                                     and contexts.str.fullmatch(r"[ACGT][CT][ACGT]").all()
                                     and (kinds.str[0] == contexts.str[1]).all())


def _read_table(path: Path) -> pd.DataFrame:
    """The matrix as a table (tab- or comma-separated, plain or gzipped whatever its name); a cohort
    .h5ad or another binary file given here is an InputError naming it, not a decoding traceback."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"\x89HDF"):
        raise InputError(
            str(path),
            None,
            "an HDF5 file (a cohort .h5ad?), not a VCF/BCF, MAF or catalogue matrix: "
            "cohorts are ingest's output (`nanog1 cohort merge` joins them)",
        )
    if head.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise InputError(str(path), None, "an Excel workbook (or a zip file), not a text table: save the "
                                          "catalogue matrix as CSV or TSV (channels as rows, samples as "
                                          "columns)")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(str(path), None, "UTF-16 text (Excel's 'Unicode Text'): save the matrix as CSV "
                                          "UTF-8, or convert it: iconv -f utf-16 -t utf-8")
    compression = "gzip" if head[:2] == b"\x1f\x8b" else None
    try:
        with (gzip.open if compression else open)(path, "rt", errors="replace") as f:
            first = f.readline()
        sep = "\t" if "\t" in first else ","
        frame = pd.read_csv(path, sep=sep, compression=compression)
        # the header as written: pandas renames a repeated column name ('S1', 'S1.1'), hiding the repeat
        frame.attrs["header"] = next(csv.reader([first.rstrip("\r\n")], delimiter=sep), [])
        return frame
    except pd.errors.EmptyDataError as err:
        raise InputError(str(path), None, "empty file: no catalogue matrix") from err
    except UnicodeDecodeError as err:
        raise InputError(
            str(path), None, "not a text file: expected a VCF/BCF, MAF, SigProfiler text or catalogue matrix"
        ) from err
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:  # a cut-off download, a damaged gzip stream
        raise InputError(str(path), None, f"truncated or damaged gzip file ({err})") from err
    except pd.errors.ParserError as err:  # "Expected 2 fields in line 6, saw 4"
        line = re.search(r"line (\d+)", str(err))
        raise InputError(str(path), int(line.group(1)) if line else None,
                         f"not a catalogue matrix: rows of unequal length ({str(err).strip()})") from err


def _label_problem(labels: list[str]) -> tuple[int | None, str]:
    """Where and why channel labels (rows from file line 2 on) are not one full channel set: the first
    unknown or repeated label with its line, else the set they come closest to and what it misses."""
    known = set().union(*CHANNEL_SETS.values())
    unknown = [(i, lab) for i, lab in enumerate(labels) if lab not in known]
    if unknown:
        i, lab = unknown[0]
        return i + 2, (f"unknown channel label {lab!r} ({len(unknown)} of {len(labels)} rows unknown; "
                       f"{_other_layout(lab, known)})")
    seen: dict[str, int] = {}
    for i, lab in enumerate(labels):
        if lab in seen:
            return i + 2, f"channel {lab!r} repeated (first on line {seen[lab] + 2})"
        seen[lab] = i
    name, channels = max(CHANNEL_SETS.items(), key=lambda item: len(seen.keys() & set(item[1])))
    other = [i for i, lab in enumerate(labels) if lab not in channels]
    if other:
        return other[0] + 2, (f"{labels[other[0]]!r} is not a {name} channel: rows mix channel sets; "
                              "give one SBS96, DBS78 or ID83 matrix per file")
    missing = [c for c in channels if c not in seen]
    return None, f"{len(seen)} of {len(channels)} {name} channels (missing e.g. {missing[:3]})"


def _check_counts(path: Path, counts: pd.DataFrame) -> None:
    """Every cell a whole, non-negative number of mutations; else an InputError naming the first bad cell
    by line and sample (a matrix of proportions would otherwise read as tumours with no mutations)."""
    values = counts.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    problems = (
        (np.isnan(values), "is not a number"),
        (values < 0, "is negative"),
        (values != np.round(values), "is not a whole number: give mutation counts, not proportions or "
                                     "normalised values"),
    )
    for bad, why in problems:
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise InputError(str(path), int(row) + 2, f"count {_shown(counts.iat[row, col])} of sample "
                                                      f"{counts.columns[col]!r} ({counts.index[row]}) {why}")


def _header_names(frame: pd.DataFrame) -> list[str]:
    """The header as written (frame.attrs['header'], which _read_table keeps), else pandas' column names."""
    header = frame.attrs.get("header", [])
    return header if len(header) == frame.shape[1] else [str(c) for c in frame.columns]


def _without_empty_columns(frame: pd.DataFrame, n_label: int) -> pd.DataFrame:
    """The table less the sample columns with neither a name nor a value: what a separator at the end of
    every line adds (some exporters write one), which pandas names 'Unnamed: 5' and reads as a sample."""
    names = _header_names(frame)
    keep = [i for i, name in enumerate(names)
            if i < n_label or name.strip() or frame.iloc[:, i].notna().any()]
    if len(keep) == frame.shape[1]:
        return frame
    out = frame.iloc[:, keep]
    out.attrs["header"] = [names[i] for i in keep]
    return out


def _check_sample_names(path: Path, frame: pd.DataFrame, n_label: int) -> None:
    """Each sample heads one column; a repeated name (two columns 'S1', or 'Lung::S1' beside 'Skin::S1') is
    an InputError at the header line naming both columns, since pandas would read the second as a new
    sample 'S1.1' and type it as a tumour of its own. Reads the header as written (frame.attrs)."""
    names = _header_names(frame)
    first: dict[str, int] = {}
    for column, name in enumerate(names[n_label:], start=n_label + 1):
        sample = name.strip().split("::", 1)[-1]
        if not sample:
            raise InputError(str(path), 1, f"column {column} holds counts but has no sample name")
        if sample in first:
            raise InputError(str(path), 1, f"sample {sample!r} heads two columns ({first[sample]} and "
                                           f"{column}): give each sample's counts in one column")
        first[sample] = column


def _shown(value) -> str:
    if pd.isna(value):
        return "(empty or NA)"
    return f"{value:g}" if isinstance(value, int | float | np.number) else repr(value)


def _other_layout(label: str, known: set[str]) -> str:
    """What a label from another SigProfilerMatrixGenerator matrix is, and which one to give instead."""
    if label[:2] in ("T:", "U:", "B:", "N:", "Q:") and label[2:] in known:
        return ("a strand-resolved matrix (SBS288, DBS186 or ID415, 'T:' / 'U:' prefixes): give the SBS96, "
                "DBS78 or ID83 matrix written beside it")
    if re.fullmatch(r"[ACGT]{2}\[[ACGT]>[ACGT]\][ACGT]{2}", label):
        return "an SBS1536 matrix (pentanucleotide context): give the SBS96 matrix written beside it"
    return "expected SigProfiler labels such as A[C>A]A, AC>CA or 1:Del:C:0"


#: Signature names as column headers: COSMIC (SBS1, DBS2, ID6, SBS7a, SBS288A), SigProfiler's de novo and
#: older names (Signature.1, Signature Subs-01, Signature_5).
_SIGNATURE = re.compile(r"(SBS|DBS|ID|CN|SV|RS)\d+[a-z]?|(SBS|DBS|ID)\d+[A-Z]|Signature[ ._-]?(Subs-)?\d+\w*",
                        re.IGNORECASE)


def _transposed_layout(frame: pd.DataFrame) -> str | None:
    """What a table with samples as rows is, when most column headers are channel labels (a catalogue
    matrix transposed) or signature names (a signature-activity table), and what to give instead."""
    cols = [str(c).strip() for c in frame.columns]
    known = set().union(*CHANNEL_SETS.values())
    channels = [c for c in cols if c in known]
    signatures = [c for c in cols if _SIGNATURE.fullmatch(c)]
    if len(channels) >= 2 and 2 * len(channels) >= len(cols):
        shown = ", ".join(channels[:3])
        return (f"the column headers are channel labels ({shown}, ...) and the rows samples: a catalogue "
                "matrix transposed; give channels as rows and samples as columns (SigProfiler layout: first "
                "column MutationType, one column per sample), e.g. transpose it with pandas `frame.T`")
    if len(signatures) >= 2 and 2 * len(signatures) >= len(cols):
        return (f"the column headers are signature names ({', '.join(signatures[:3])}, ...) and the rows "
                "samples: a signature-activity table (e.g. SigProfilerAssignment's "
                "Assignment_Solution_Activities.txt), not mutation counts; give the catalogue matrix it was "
                "fitted from (channels as rows, samples as columns: SigProfilerMatrixGenerator's SBS96 / "
                "DBS78 / ID83 matrix, e.g. output/SBS/<project>.SBS96.all)")
    return None


def read_catalogue_matrix(path: Path) -> CatalogueMatrix:
    """Read a catalogue matrix; raises InputError naming the file when labels are not one channel set."""
    path = Path(path)
    frame = _read_table(path)
    labels, n_label = _labels(frame)
    channel_set = next((name for name, ch in CHANNEL_SETS.items() if set(labels) == set(ch)), None)
    if channel_set is None or len(labels) != len(CHANNEL_SETS[channel_set]):
        transposed = _transposed_layout(frame)
        if transposed:
            raise InputError(str(path), 1, transposed)
        raise InputError(str(path), *_label_problem(labels))
    frame = _without_empty_columns(frame, n_label)
    _check_sample_names(path, frame, n_label)
    counts = frame.iloc[:, n_label:].set_axis(labels, axis=0)
    _check_counts(path, counts)
    counts = counts.reindex(list(CHANNEL_SETS[channel_set])).apply(pd.to_numeric, errors="coerce")
    names = [str(c) for c in counts.columns]
    samples = [n.split("::", 1)[-1] for n in names]
    types = pd.Series(
        [n.split("::", 1)[0] if "::" in n else None for n in names], index=samples, dtype=object
    )
    counts.columns = samples
    return CatalogueMatrix(channel_set, counts, types)
