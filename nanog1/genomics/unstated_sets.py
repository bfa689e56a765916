"""Tumours whose calls probably lack a kind of call (indels, doublets) that their files do not say they lack.

A caller run in SNV mode writes a VCF that reads as zero indels, and nothing in it says so (a Strelka2
SNV file does: `measured_sets.COVERS`). The rules here find it by its counts, per tumour
(`unstated_snv_only`: many substitutions and no indel, or no doublet), per file of several tumours
(`unstated_indel_free_files`) and per run of files (`unstated_indel_free_run`); the thresholds are
`channels`'. Notes only, never a guess: the tumours are read as the files say, and each note tells how to
declare the set with `--not-measured`. Ingest, predict and cohort merge state them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nanog1.genomics.channels import NO_DOUBLET_MIN_SBS, SNV_ONLY_MIN_SBS


def unstated_snv_only(adata) -> list[tuple[str, str, str]]:
    """(tumour, 'indels' | 'doublets', note) for each tumour read from VCF/MAF calls (its rows in the
    accounting table; catalogue matrices state their sets) that measured indels (doublets) by its record,
    with no indel but at least `SNV_ONLY_MIN_SBS` substitutions (no doublet, `NO_DOUBLET_MIN_SBS`): rare in
    real genomes and exomes, so its caller may not have called them. Not a guess: the tumour is read as
    the file says (zero indels), and the note tells how to declare them unmeasured. Tumours whose files say
    so (a Strelka2 SNV file) or declared with --not-measured have those sets unmeasured and get no note."""
    from nanog1.genomics.channels import set_slice
    from nanog1.schema import measured_sets_per_sample

    acc = (adata.uns.get("nanog1") or {}).get("accounting")
    if not isinstance(acc, pd.DataFrame) or "sample" not in acc or not adata.n_obs:
        return []
    from_calls = np.isin(np.asarray(adata.obs_names, dtype=str), acc["sample"].astype(str).to_numpy())
    counts = np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X)
    measured = measured_sets_per_sample(adata)
    sbs = counts[:, set_slice("SBS6")].sum(axis=1)
    found = []
    for kind, folded, minimum, words, flag in (
            ("indels", "ID12", SNV_ONLY_MIN_SBS, "no indel", "indels"),
            ("doublets", "DBS78", NO_DOUBLET_MIN_SBS, "no doublet (adjacent substitution pair)", "DBS78")):
        hit = (from_calls & measured[folded].to_numpy(dtype=bool) & (sbs >= minimum)
               & (counts[:, set_slice(folded)].sum(axis=1) == 0))
        for i in np.flatnonzero(hit):
            found.append((str(adata.obs_names[i]), kind,
                          f"{int(sbs[i]):,} substitutions and {words}: if its caller did not call {kind}, "
                          f"rerun with --not-measured {flag} (read now as zero {kind})"))
    return found


def _indel_free_tables(adata):
    """What the indel-free file and run rules read, from the provenance's `inputs` and accounting tables (a
    merged pipeline cohort keeps both): (input paths, accounting, tumour -> row, substitutions and indels
    per tumour (SBS6, ID12 totals of all its files), whether each tumour measured indels by its record);
    None without those tables or tumours."""
    from nanog1.genomics.channels import set_slice
    from nanog1.schema import measured_sets_per_sample

    meta = adata.uns.get("nanog1") or {}
    inputs, acc = meta.get("inputs"), meta.get("accounting")
    if (not isinstance(inputs, pd.DataFrame) or "path" not in inputs or not isinstance(acc, pd.DataFrame)
            or "sample" not in acc or not adata.n_obs):
        return None
    counts = np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X)
    return (inputs["path"].astype(str).to_numpy(), acc, {str(t): i for i, t in enumerate(adata.obs_names)},
            counts[:, set_slice("SBS6")].sum(axis=1), counts[:, set_slice("ID12")].sum(axis=1),
            measured_sets_per_sample(adata)["ID12"].to_numpy(dtype=bool))


def unstated_indel_free_files(adata) -> list[tuple[str, int, int, str]]:
    """(file, tumours, substitutions, note) for each VCF/MAF input that holds the calls of at least two
    tumours which measured indels by their record, together with at least `FILE_SNV_ONLY_MIN_SBS`
    substitutions, and not one indel among them: a whole file without an indel is almost certainly from a
    caller that did not call indels, even where each tumour alone is too small for `unstated_snv_only`'s
    rule (exomes: most carry fewer than 200 substitutions). The tumours' counts are their own (all their
    files), so a tumour whose indels come from another file of the run clears the file. Not a guess: the
    tumours are read as the file says (zero indels), and the note tells how to declare them unmeasured.
    From the provenance's `inputs` and accounting tables (a merged pipeline cohort keeps both); [] without."""
    from nanog1.genomics.channels import FILE_SNV_ONLY_MIN_SBS

    tables = _indel_free_tables(adata)
    if tables is None:
        return []
    paths, acc, row, sbs, indels, measured = tables
    found = []
    for file, samples in acc.groupby(acc["file"].astype(int), sort=True)["sample"]:
        rows = sorted({row[s] for s in samples.astype(str) if s in row and measured[row[s]]})
        total = int(sbs[rows].sum()) if rows else 0
        if len(rows) < 2 or total < FILE_SNV_ONLY_MIN_SBS or indels[rows].sum() > 0 or file >= len(paths):
            continue
        found.append((paths[file], len(rows), total,
                      f"{len(rows)} tumours with {total:,} substitutions together and not one indel in the "
                      "whole file: if its caller did not call indels, rerun with --not-measured indels (read "
                      "now as zero indels)"))
    return found


def unstated_indel_free_run(adata, noted_files: list[tuple[str, int, int, str]] | None = None
                            ) -> tuple[int, int, int, str] | None:
    """(files, tumours, substitutions, note) for a run whose VCF/MAF inputs (at least `RUN_SNV_ONLY_MIN_FILES`
    files holding tumours which measured indels by their record) carry together at least
    `RUN_SNV_ONLY_MIN_SBS` substitutions and not one indel: a run of single-tumour files (a lab's 40 exome
    VCFs of 60 substitutions each) is under the per-tumour and per-file rules file by file, yet a whole run
    without an indel is almost certainly from a caller that did not call indels. One run: the inputs of one
    ingest (a `predict` of files, or of a cohort: its ingest record; a merged pipeline cohort: all its
    parts'). None below the thresholds, with one indel among those tumours, or where every such file is
    noted already (`unstated_indel_free_files`; pass its result as `noted_files` where it is at hand). Not a
    guess: the tumours are read as the files say (zero indels), and the note tells how to declare them
    unmeasured."""
    from nanog1.genomics.channels import RUN_SNV_ONLY_MIN_FILES, RUN_SNV_ONLY_MIN_SBS

    tables = _indel_free_tables(adata)
    if tables is None or "file" not in tables[1]:
        return None
    paths, acc, row, sbs, indels, measured = tables
    held = acc.loc[np.asarray([s in row and measured[row[s]] for s in acc["sample"].astype(str)], dtype=bool)]
    files = sorted(set(held["file"].astype(int)))
    rows = sorted({row[s] for s in held["sample"].astype(str)})
    if len(files) < RUN_SNV_ONLY_MIN_FILES:
        return None
    total = int(sbs[rows].sum())
    if total < RUN_SNV_ONLY_MIN_SBS or indels[rows].sum() > 0:
        return None
    noted_files = unstated_indel_free_files(adata) if noted_files is None else noted_files
    noted = {f for f, _, _, _ in noted_files}
    if all(f < len(paths) and paths[f] in noted for f in files):
        return None
    return (len(files), len(rows), total,
            f"{len(files)} input files ({len(rows)} tumours) with {total:,} substitutions together and not "
            "one indel in the whole run: if their caller did not call indels, rerun with --not-measured "
            "indels (read now as zero indels)")
