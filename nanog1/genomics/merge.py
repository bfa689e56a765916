"""The gather step: merge per-file cohort parts (one ingest job each) into one AnnData cohort.

Parts are concatenated with `anndata.concat`; the sample sheet's columns join the samples; burdens and
flags are recomputed from the merged counts; token sequences (with their genes, consequences and read
counts) and provenance are carried over. A sample
found in two parts is an error unless `duplicates="sum"` (e.g. SNVs and indels in separate files, or
the SBS/DBS/ID matrices of one cohort), which adds its counts and joins its events: the policy of
`nanog1.genomics.duplicates`, shared with `ingest`. The sheet is held to `sheet_policy` as in
`ingest`: a sheet sample with no part, or a part's sample with no sheet row, is an error (strict,
the default) or a note (lenient); a sheet row never becomes a made-up zero-mutation sample. The merged
cohort is the pipeline's whole run: a run of many VCF/MAF files without one indel is noted here, as
`ingest` notes it (`indel_free_run_notes`).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

import nanog1
from nanog1.errors import UserError
from nanog1.genomics.channels import CHANNEL_SETS, all_channels
from nanog1.genomics.cohort import channel_set_status, with_derived_sets
from nanog1.genomics.variants import filter_counts, filter_counts_table
from nanog1.io import file_sha256
from nanog1.schema import (
    CANCER_TYPE,
    MEASURED_SETS,
    TOKEN_COUNT,
    TOKEN_START,
    TOKEN_TABLE,
    TOKENS,
    attach_tokens,
    is_per_token,
    row_tokens,
)

TOKEN_ARRAYS = ("channel", "motif", "chrom", "pos", "bin")


@dataclass
class MergeOptions:
    """`duplicates` 'error' (default) or 'sum'; `sheet_policy` 'strict' (default) or 'lenient'."""

    duplicates: str = "error"
    sheet_policy: str = "strict"

    def __post_init__(self) -> None:
        from nanog1.genomics.duplicates import DUPLICATE_POLICIES

        if self.duplicates not in DUPLICATE_POLICIES:
            raise UserError(f"duplicates must be 'error' or 'sum', got {self.duplicates!r}")
        if self.sheet_policy not in ("strict", "lenient"):
            raise UserError(f"sheet_policy must be 'strict' or 'lenient', got {self.sheet_policy!r}")


@dataclass
class MergeReport:
    """What the merge did, counted (printed by the CLI, stored in uns['nanog1']['merge'])."""

    parts: int = 0
    samples: int = 0
    samples_summed: int = 0
    sheet_only: int = 0
    not_in_sheet: int = 0
    tokens: str = "absent"
    notes: list[str] = field(default_factory=list)


def _check_part(adata: ad.AnnData, path: Path) -> None:
    """A part must carry the cohort layout's channels in contract order."""
    labels = [label for _, label in all_channels()]
    if list(adata.var_names) != labels:
        sets = "+".join(CHANNEL_SETS)
        raise UserError(f"{path}: its channels are not the {len(labels)} {sets} labels in contract order")
    if adata.obs_names.has_duplicates:
        dup = adata.obs_names[adata.obs_names.duplicated()][0]
        raise UserError(f"{path}: sample {dup!r} appears twice in one part")


def read_parts(paths: list[Path]) -> list[ad.AnnData]:
    """Read and check every part (a clear error names the file at fault)."""
    from nanog1.genomics.cohort import read_cohort

    adatas = []
    for path in paths:
        adata = read_cohort(Path(path))
        _check_part(adata, Path(path))
        adatas.append(adata)
    return adatas


def _owners(
    adatas: list[ad.AnnData], paths: list[Path], channel_set: str | None = None
) -> dict[str, list[str]]:
    """{sample: [part files holding it]}, among the parts that carry `channel_set` (None: all parts)."""
    seen: dict[str, list[str]] = {}
    for adata, path in zip(adatas, paths, strict=True):
        present = list(adata.uns.get("nanog1", {}).get("channel_sets_present", CHANNEL_SETS))
        if channel_set is not None and channel_set not in present:
            continue
        for name in adata.obs_names:
            seen.setdefault(str(name), []).append(str(path))
    return seen


def _check_duplicates(adatas: list[ad.AnnData], paths: list[Path], policy: str) -> dict[str, list[str]]:
    """The shared duplicate policy, per channel set (a sample's SBS, DBS and ID parts complete each
    other); returns every sample found in more than one part, to be summed."""
    from nanog1.genomics.duplicates import check_duplicates, duplicated_samples

    for channel_set in CHANNEL_SETS:
        check_duplicates(_owners(adatas, paths, channel_set), policy)
    return duplicated_samples(_owners(adatas, paths))


def _union_chroms(tables: list[dict[str, Any]]) -> tuple[list[str], dict[str, int]]:
    """Contigs of all parts in order of first appearance, with their lengths from each part's vocab."""
    chroms: list[str] = []
    lengths: dict[str, int] = {}
    for t in tables:
        names = [str(c) for c in np.asarray(t["chroms"])]
        sizes = np.asarray(t.get("vocab", {}).get("contig_length", []), dtype=np.int64)
        chroms += [c for c in names if c not in chroms]
        lengths |= {c: int(n) for c, n in zip(names, sizes, strict=False)}
    return chroms, lengths


def concat_tokens(adatas: list[ad.AnnData]) -> dict[str, Any] | None:
    """Concatenate uns['tokens'] of all parts (sample order = concatenation order).

    Parts that list different contigs get their chrom ids remapped onto the union and, when every
    contig length is known, their genome-wide bins recomputed for it (nanog1.genomics.tokens).
    """
    tables = [row_tokens(a) if TOKENS in a.uns else None for a in adatas]
    if any(t is None for t in tables):
        return None
    chroms, lengths = _union_chroms(tables)
    index = {c: i for i, c in enumerate(chroms)}
    pieces: dict[str, list[np.ndarray]] = {k: [] for k in TOKEN_ARRAYS}
    counts = []
    for t in tables:
        counts.append(np.diff(np.asarray(t["offsets"], dtype=np.int64)))
        remap = np.array([index[str(c)] for c in np.asarray(t["chroms"])], dtype=np.int16)
        for key in TOKEN_ARRAYS:
            values = np.asarray(t[key])
            pieces[key].append(remap[values] if key == "chrom" and len(values) else values)
    merged: dict[str, Any] = {k: np.concatenate(v) for k, v in pieces.items()}
    merged["chrom"] = merged["chrom"].astype(np.int16)
    merged["offsets"] = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
    merged["chroms"] = np.array(chroms, dtype=object)
    same = all([str(c) for c in np.asarray(t["chroms"])] == chroms for t in tables)
    vocab = tables[0].get("vocab")
    if not same and vocab is not None and set(lengths) >= set(chroms):
        from nanog1.genomics.tokens import bin_offsets, vocabulary

        size = int(vocab.get("bin_size", 1_000_000))
        sizes = [lengths[c] for c in chroms]
        starts = bin_offsets(sizes, size)
        merged["bin"] = (starts[merged["chrom"]] + (merged["pos"] - 1) // size).astype(np.int32)
        vocab = vocabulary(chroms, sizes, size)
    if vocab is not None:
        merged["vocab"] = dict(vocab)
        _carry_annotations(tables, merged)
    return merged


def _carry_annotations(tables: list[dict[str, Any]], merged: dict[str, Any]) -> None:
    """Gene, consequence and codon ids (remapped onto the union of the parts' string tables, -1 = unknown) and
    read counts (NaN where a part has none) of every token, so the event view keeps what ingest kept."""
    from nanog1.genomics.tokens import READ_FIELDS, TOKEN_FIELDS, VOCAB_FIELDS

    sizes = [len(np.asarray(t["channel"])) for t in tables]
    for key in VOCAB_FIELDS:
        if not any(key in t for t in tables):
            continue
        union: dict[str, int] = {}
        ids = []
        for t, n in zip(tables, sizes, strict=True):
            values = [str(v) for v in np.asarray(t.get("vocab", {}).get(key, []), dtype=object)]
            remap = np.array([union.setdefault(v, len(union)) for v in values] + [-1], dtype=np.int64)
            own = np.asarray(t[key], dtype=np.int64) if key in t else np.full(n, -1, dtype=np.int64)
            ids.append(remap[np.where(own >= 0, own, len(values))])
        merged[key] = np.concatenate(ids).astype(TOKEN_FIELDS[key])
        merged["vocab"][key] = np.array(list(union), dtype=object)
    for key in READ_FIELDS:
        if any(key in t for t in tables):
            merged[key] = np.concatenate([np.asarray(t[key], dtype=np.float32) if key in t
                                          else np.full(n, np.nan, dtype=np.float32)
                                          for t, n in zip(tables, sizes, strict=True)])


def _group_tokens(tokens: dict[str, Any], group: np.ndarray, n_groups: int) -> dict[str, Any]:
    """Regroup concatenated events under summed samples: events of group g, ordered by chrom and pos."""
    lengths = np.diff(tokens["offsets"])
    owner = np.repeat(group, lengths)
    order = np.lexsort((tokens["pos"], tokens["chrom"], owner))
    out = dict(tokens)
    for key in [k for k in tokens if is_per_token(k)]:
        out[key] = np.asarray(tokens[key])[order]
    counts = np.bincount(owner, minlength=n_groups)
    out["offsets"] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return out


def _sum_duplicates(adata: ad.AnnData, tokens: dict[str, Any] | None):
    """Collapse repeated obs_names: counts summed, first non-missing annotation kept, events joined."""
    names = np.asarray(adata.obs_names, dtype=str)
    unique, first, group = np.unique(names, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep the order in which samples first appear
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    group = rank[group]
    n = len(unique)
    indicator = sp.csr_matrix((np.ones(len(names)), (group, np.arange(len(names)))), shape=(n, len(names)))
    X = np.asarray(indicator @ np.asarray(adata.X, dtype=np.float64), dtype=np.float32)
    obs = adata.obs.reset_index(drop=True).groupby(group, sort=True).first()
    obs.index = pd.Index(unique[order], name=adata.obs.index.name)
    merged = ad.AnnData(X=X, obs=obs, var=adata.var.copy())
    return merged, (_group_tokens(tokens, group, n) if tokens is not None else None)


def _check_sheet(names: pd.Index, sheet: pd.DataFrame, path: Path, policy: str, report: MergeReport) -> None:
    """Sheet samples without a part and parts' samples without a row: errors (strict) or notes."""
    missing = sheet.index.difference(names, sort=False)
    unlisted = names[~names.isin(sheet.index)]
    report.sheet_only, report.not_in_sheet = len(missing), len(unlisted)
    problems = [f"sample {s!r} of the sheet is in no part" for s in missing[:3]]
    problems += [f"sample {s!r} has no row in the sheet" for s in unlisted[:3]]
    if problems and policy == "strict":
        total = len(missing) + len(unlisted)
        raise UserError(
            f"{path}: {'; '.join(problems[:2])}"
            + (f" (and {total - 2} more mismatches)" if total > 2 else "")
            + "; fix the sheet or the inputs (--sheet-policy lenient only reports them)"
        )
    report.notes += [f"{path}: {p}" for p in problems]


def _join_sheet(adata: ad.AnnData, sheet: pd.DataFrame) -> ad.AnnData:
    """Add sheet columns to the samples the parts hold (the sheet wins where it has a value)."""
    obs = adata.obs.copy()
    for column in sheet.columns:
        values = sheet[column].reindex(obs.index)
        obs[column] = values.where(values.notna(), obs[column]) if column in obs else values
    adata.obs = obs
    return adata


def _finish_obs(adata: ad.AnnData) -> None:
    """Recompute burdens and the no-mutation flag from X; make cancer_type categorical."""
    X = np.asarray(adata.X)
    sets = adata.var["channel_set"].astype(str).to_numpy()
    for name in CHANNEL_SETS:
        adata.obs[f"burden_{name}"] = X[:, sets == name].sum(axis=1).round().astype(np.int64)
    adata.obs["no_mutations"] = X.sum(axis=1) == 0
    if CANCER_TYPE in adata.obs:
        adata.obs[CANCER_TYPE] = adata.obs[CANCER_TYPE].astype("category")


def _sum_counts(dicts: list[Any]) -> Any:
    """Add nested {reason: count} dicts leaf by leaf (provenance skip counts of the parts)."""
    out: dict[str, Any] = {}
    for d in dicts:
        for key, value in (d or {}).items():
            if isinstance(value, dict):
                out[key] = _sum_counts([out.get(key, {}), value])
            elif isinstance(value, (int, float, np.integer, np.floating)):
                out[key] = out.get(key, 0) + value
    return out


def _concat_frames(frames: list[Any], fill: Any = None) -> pd.DataFrame | None:
    """Stack the parts' provenance tables (inputs, skips per file); missing counts filled with `fill`."""
    present = [f for f in frames if isinstance(f, pd.DataFrame)]
    if not present:
        return None
    table = pd.concat(present, ignore_index=True)
    if fill is not None:
        table = table.fillna(fill).infer_objects()
        table = table.astype({c: np.int64 for c in table.columns if pd.api.types.is_float_dtype(table[c])})
    table.index = table.index.astype(str)
    return table


def _concat_accounting(provs: list[dict[str, Any]], key: str = "accounting") -> pd.DataFrame | None:
    """The parts' per-file tables `key` (the per-(file, sample) accounting, the FILTER values dropped per
    file), file ids renumbered to the merged `inputs` table."""
    frames, offset = [], 0
    for prov in provs:
        table = prov.get(key)
        if isinstance(table, pd.DataFrame):
            table = table.copy()
            table["file"] = (table["file"].astype(int) + offset).astype(str)
            frames.append(table)
        inputs = prov.get("inputs")
        offset += len(inputs) if isinstance(inputs, pd.DataFrame) else 0
    return _concat_frames(frames, 0) if frames else None


def _filter_dropped(provs: list[dict[str, Any]]) -> dict[str, Any]:
    """{'filter_dropped': the parts' FILTER values behind `non_pass`, summed by value}, a table as ingest
    records them for one run (`filter_counts_table`); parts ingested before it, with the old dict, are read
    too (`filter_counts`). {} where no part dropped a call for FILTER."""
    summed: Counter = Counter()
    for prov in provs:
        summed.update(filter_counts(prov.get("filter_dropped")))
    return {"filter_dropped": filter_counts_table(summed)} if summed else {}


def measured_per_sample(adatas: list[ad.AnnData]) -> pd.DataFrame:
    """Bool samples x sets (samples in order of first appearance): the sets each merged sample measured,
    the per-sample rule of `ingest` across parts. A sample's SBS, DBS and ID parts complete each other
    (PCAWG's three matrices, a Strelka2 SNV part and its indel part); a part holding a sample's folded set
    (SBS6, ID12) without its source (ingested without a reference, or calls on contigs the FASTA lacked)
    leaves that sample's SBS96/ID83 inexact. Each part's own record is read with
    `schema.measured_sets_per_sample` (parts written before the per-sample record: their cohort-wide one)."""
    from nanog1.genomics.channels import DERIVED_FROM
    from nanog1.schema import SET_NAMES, measured_sets_per_sample

    got: dict[str, np.ndarray] = {}
    lost: dict[str, np.ndarray] = {}
    for adata in adatas:
        table = measured_sets_per_sample(adata)
        folded = np.zeros(table.shape, dtype=bool)
        for derived, source in DERIVED_FROM.items():
            folded[:, SET_NAMES.index(source)] = table[derived].to_numpy() & ~table[source].to_numpy()
        for name, row, gone in zip(map(str, table.index), table.to_numpy(dtype=bool), folded, strict=True):
            got[name] = got.get(name, np.zeros(len(SET_NAMES), dtype=bool)) | row
            lost[name] = lost.get(name, np.zeros(len(SET_NAMES), dtype=bool)) | gone
    values = np.array([got[n] & ~lost[n] for n in got], dtype=bool).reshape(len(got), len(SET_NAMES))
    return pd.DataFrame(values, index=pd.Index(list(got), dtype=object), columns=list(SET_NAMES))


def _measured_sets(adatas: list[ad.AnnData], table: pd.DataFrame | None = None) -> list[str]:
    """Sets measured for every merged sample (`measured_per_sample`): the merged cohort-wide record."""
    table = measured_per_sample(adatas) if table is None else table
    return [s for s in CHANNEL_SETS if len(table) and bool(table[s].all())]


def _carry_partial(prov: dict[str, Any], table: pd.DataFrame, provs: list[dict[str, Any]]) -> None:
    """A set measured for some merged samples but not all becomes `partial`, exact for the samples
    `measured_per_sample` marks (`exact_for`); the calls classified without context are summed by contig."""
    from nanog1.genomics.channels import PARTIAL
    from nanog1.genomics.partial_reference import WITHOUT_CONTEXT

    status = dict(prov["channel_sets"])
    exact_for = {}
    for name in status:
        column = table[name].to_numpy(dtype=bool)
        if column.any() and not column.all():
            status[name] = PARTIAL
            exact_for[name] = np.asarray(table.index[column], dtype=object)
    if exact_for:
        prov["channel_sets"], prov["exact_for"] = status, exact_for
    contigs: dict[str, int] = {}
    for meta in provs:
        for contig, n in dict(dict(meta.get("without_context") or {}).get(WITHOUT_CONTEXT, {})).items():
            contigs[str(contig)] = contigs.get(str(contig), 0) + int(n)
    if contigs:
        prov["without_context"] = {WITHOUT_CONTEXT: contigs}
    _carry_left_out(prov, table, provs)


def _carry_left_out(prov: dict[str, Any], table: pd.DataFrame, provs: list[dict[str, Any]]) -> None:
    """The parts' `left_out_of_context` records (calls on contigs the FASTA lacked, within the tolerance,
    left out of an SBS96/ID83 that stayed exact: ingest.left_out_of_context_notes), joined for the merged
    samples that still measure that set, so predict on the merged cohort says them as on the part."""
    from nanog1.genomics.measured_sets import LEFT_OUT_OF_CONTEXT

    joined: dict[str, dict[str, list]] = {}
    tolerance = None
    for meta in provs:
        record = dict(meta.get(LEFT_OUT_OF_CONTEXT) or {})
        tolerance = record.pop("tolerance", tolerance)
        for name, rows in record.items():
            rows = dict(rows)
            keep = [i for i, s in enumerate(rows.get("sample", []))
                    if str(s) in table.index and bool(table.at[str(s), name])]
            out = joined.setdefault(str(name), {k: [] for k in rows})
            for k, values in rows.items():
                out.setdefault(k, []).extend(values[i] for i in keep)
    record = {name: {k: np.asarray(v, dtype=object if k in ("sample", "contigs") else np.int64)
                     for k, v in rows.items()} for name, rows in joined.items() if rows.get("sample")}
    if record:
        prov[LEFT_OUT_OF_CONTEXT] = {**record, "tolerance": float(tolerance or 0.0)}


def _provenance(adatas, paths, sample_sheet, options, report, measured=None) -> dict[str, Any]:
    """uns['nanog1'] of the merged cohort: the parts' inputs, references, skip counts and FILTER values
    dropped (`filter_dropped` summed, `filter_dropped_by_file` joined), plus the merge."""
    provs = [dict(a.uns.get("nanog1", {})) for a in adatas]
    measured = measured_per_sample(adatas) if measured is None else measured
    present = _measured_sets(adatas, measured)
    prov: dict[str, Any] = {
        "version": nanog1.__version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "channel_sets": channel_set_status(present),
        "channel_sets_present": with_derived_sets(present),
        "skips": _sum_counts([p.get("skips", {}) for p in provs]),
        **({"protein_change": _sum_counts([p.get("protein_change", {}) for p in provs])}
           if any("protein_change" in p for p in provs) else {}),  # fmt: skip
        "parts": pd.DataFrame({"path": [str(p) for p in paths]}, index=[str(i) for i in range(len(paths))]),
        "merge": {**asdict(options), **{k: v for k, v in asdict(report).items() if k != "notes"}},
    }
    for key, fill in (("inputs", None), ("skips_per_file", 0), ("genome_build", None)):
        table = _concat_frames([p.get(key) for p in provs], fill)
        if table is not None:
            prov[key] = table
    for key in ("accounting", "filter_dropped_by_file"):
        table = _concat_accounting(provs, key)
        if table is not None:
            prov[key] = table
    prov.update(_filter_dropped(provs))
    _carry_partial(prov, measured, provs)
    for name, ids in dict(prov.get("exact_for") or {}).items():
        report.notes.append(
            f"{name} partial: exact for {len(ids)} of the merged samples (uns['nanog1']['exact_for']);"
            " fitting and the models do not use it as a whole"
        )
    if sample_sheet is not None:
        prov["sample_sheet"] = {"path": str(sample_sheet), "sha256": file_sha256(Path(sample_sheet))}
    for key in ("reference", "options"):
        if key in provs[0]:
            prov[key] = provs[0][key]
    shas = {str(p.get("reference", {}).get("fai_sha256")) for p in provs if "reference" in p}
    if len(shas) > 1:
        report.notes.append(f"parts were ingested against {len(shas)} different references")
    return prov


def merge_adatas(adatas, paths, sample_sheet=None, options=None) -> tuple[ad.AnnData, MergeReport]:
    """Merge checked parts in memory; see the module docstring for the rules."""
    options = options or MergeOptions()
    report = MergeReport(parts=len(adatas))
    dups = _check_duplicates(adatas, paths, options.duplicates)
    sheet = None
    if sample_sheet is not None:
        from nanog1.genomics.samplesheet import load_sample_sheet

        loaded = load_sample_sheet(Path(sample_sheet))
        sheet = loaded.samples
        report.notes += [loaded.notice] if loaded.notice else []  # a sheet read as Windows-1252/Latin-1
        names = pd.Index(list(_owners(adatas, paths)))
        _check_sheet(names, sheet, Path(sample_sheet), options.sheet_policy, report)
    tokens = concat_tokens(adatas)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Observation names are not unique")
        merged = ad.concat(adatas, axis=0, join="outer", merge="first", label=None, index_unique=None)
    merged.X = np.asarray(merged.X, dtype=np.float32)
    merged.var = adatas[0].var.copy()
    if dups:
        report.samples_summed = len(dups)
        merged, tokens = _sum_duplicates(merged, tokens)
    if sheet is not None:
        merged = _join_sheet(merged, sheet)
    _finish_obs(merged)
    report.samples = merged.n_obs
    report.tokens = "absent" if tokens is None else "merged"
    if tokens is None and any("tokens" in a.uns for a in adatas):
        report.notes.append("token sequences dropped: some parts (e.g. catalogue matrices) have none")
    measured = measured_per_sample(adatas)
    merged.uns = {"nanog1": _provenance(adatas, paths, sample_sheet, options, report, measured)}
    merged.obsm[MEASURED_SETS] = measured.reindex(merged.obs_names, fill_value=False).astype(bool)
    merged.obs = merged.obs.drop(columns=[TOKEN_START, TOKEN_COUNT, TOKEN_TABLE], errors="ignore")
    if tokens is not None:
        attach_tokens(merged, tokens)
    report.notes += indel_free_run_notes(merged)
    return merged, report


def indel_free_run_notes(merged: ad.AnnData) -> list[str]:
    """The note `ingest` gives a run of many VCF/MAF files with many substitutions together and not one
    indel (unstated_sets.unstated_indel_free_run), for the merged cohort: a pipeline ingests its
    files in parts, each too small for the run rule, so the merge is where the whole run is seen (the
    parts' own per-tumour and per-file notes are in their ingest logs). [] where the rule does not apply."""
    from nanog1.genomics.unstated_sets import unstated_indel_free_run

    run = unstated_indel_free_run(merged)
    return [run[-1]] if run else []


def merge_cohort(
    parts: list[Path], out: Path, sample_sheet: Path | None = None, options: MergeOptions | None = None
) -> MergeReport:
    """Read the parts, merge them and write the cohort atomically to `out`; return what was done."""
    from nanog1.genomics.cohort import write_cohort
    from nanog1.genomics.duplicates import check_same_file

    if not parts:
        raise UserError("no cohort parts to merge")
    check_same_file([Path(p) for p in parts])
    adatas = read_parts([Path(p) for p in parts])
    merged, report = merge_adatas(adatas, [Path(p) for p in parts], sample_sheet, options)
    files = [Path(p) for p in parts]
    table = merged.uns["nanog1"]["parts"]
    table["bytes"] = [p.stat().st_size for p in files]
    table["sha256"] = [file_sha256(p) for p in files]
    write_cohort(merged, Path(out))
    return report
