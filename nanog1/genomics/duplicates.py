"""One duplicate-sample policy for `ingest` (across input files) and `cohort merge` (across parts).

A sample given by two inputs is an error by default, naming both files; `sum` adds its counts and
joins its events (e.g. SNVs and indels of one tumour in separate files). The same file given twice
is always an error: summing it would double every count.
"""

from __future__ import annotations

import os
from pathlib import Path

from nanog1.errors import UserError

DUPLICATE_POLICIES = ("error", "sum")


def check_same_file(paths: list[Path]) -> None:
    """Raise ValueError when one file is given twice (by the same or another path, or a link)."""
    seen: dict[tuple[int, int], Path] = {}
    for path in paths:
        stat = os.stat(path)
        key = (stat.st_dev, stat.st_ino)
        if key in seen:
            raise UserError(
                f"{path}: the same file is given twice (also as {seen[key]}); it would double every count"
            )
        seen[key] = Path(path)


def duplicated_samples(owners: dict[str, list[str]]) -> dict[str, list[str]]:
    """{sample: files} for samples given by more than one file."""
    return {s: files for s, files in owners.items() if len(files) > 1}


def check_duplicates(
    owners: dict[str, list[str]], policy: str, hint: str | None = "--duplicates sum"
) -> dict[str, list[str]]:
    """Apply the policy to {sample: [files giving it]}; returns the duplicated ones (policy 'sum').
    `hint`: the asking command's option that sums them, None for a command without one (predict: its
    errors then ask for a sample sheet only)."""
    if policy not in DUPLICATE_POLICIES:
        raise UserError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {policy!r}")
    dups = duplicated_samples(owners)
    for sample, files in dups.items():
        copies = _copies(files)
        if copies:
            raise UserError(
                f"sample {sample!r} is given by {', '.join(copies)}: copies of one call file (plain, "
                "bgzipped or BCF), not parts of a tumour; give one of them (adding their counts would double "
                "every count)"
            )
    if dups and policy == "error":
        sample, files = next(iter(dups.items()))
        more = f"; {len(dups) - 1} more samples are duplicated" if len(dups) > 1 else ""
        paths = [Path(f) for f in files]
        sheet = "--samples SHEET (columns sample and file)"
        if len({p.name for p in paths}) == 1 and len({p.resolve().parent for p in paths}) == len(paths):
            raise UserError(  # Strelka2's somatic.snvs.vcf.gz of each tumour's folder, named after the file
                f"sample {sample!r} is given by {len(files)} files ({', '.join(files)}){more}: files of one "
                f"name in different folders, each likely another tumour named after its file; name each "
                f"tumour with {sheet}; for parts of one tumour give the sheet one sample for them"
                + (f", or pass {hint}" if hint else "")
            )
        if hint is None:  # a command without a sum option (predict): a sheet says which files are one
            raise UserError(
                f"sample {sample!r} is given by {len(files)} files ({', '.join(files)}){more}; for parts of "
                f"one tumour (e.g. separate SNV and indel files) give {sheet} naming that one sample for "
                "each of them; for different tumours, give each its own sample name"
            )
        raise UserError(
            f"sample {sample!r} is given by {len(files)} files ({', '.join(files)}){more}; pass {hint}"
            " to add their counts (e.g. separate SNV and indel files of one tumour)"
        )
    return dups


def _copies(files: list[str]) -> list[str]:
    """The files of one folder whose names differ only by a VCF/BCF suffix (x.vcf, x.vcf.gz, x.bcf): the
    same calls written twice, which `--duplicates sum` would count twice."""
    from nanog1.genomics.vcf import VCF_SUFFIXES

    stems: dict[tuple[Path, str], list[str]] = {}
    for file in files:
        path = Path(file)
        name = path.name.lower()
        suffix = next((x for x in sorted(VCF_SUFFIXES, key=len, reverse=True) if name.endswith(x)), None)
        if suffix is not None:
            stems.setdefault((path.resolve().parent, name[: -len(suffix)]), []).append(file)
    return next((group for group in stems.values() if len(group) > 1), [])
