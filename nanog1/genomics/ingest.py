"""Ingestion orchestration: input files -> classified events -> one cohort .h5ad, with a report.

Each input (VCF/BCF, MAF, SigProfiler text, or a ready catalogue matrix) is processed on its own,
in worker processes with `jobs > 1`; results are merged by sample name. Nothing is dropped silently:
every skipped record is counted by reason, per file and in total, and written into the cohort.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

import nanog1
from nanog1.genomics.channels import N_CHANNELS
from nanog1.genomics.events import Events, classify_table
from nanog1.genomics.variants import SKIP_REASONS, InputError


@dataclass(frozen=True)
class IngestOptions:
    """What to keep and how: FILTER policy, error policy, SigProfiler compatibility, parallelism."""

    filter: str = "PASS"
    on_error: str = "stop"
    sigprofiler_compatible: bool = False
    jobs: int = 1
    bin_size: int = 1_000_000
    progress: bool = False
    genes: str | None = None

    def __post_init__(self) -> None:
        if self.filter not in ("PASS", "all"):
            raise ValueError(f"filter must be 'PASS' or 'all', not {self.filter!r}")
        if self.on_error not in ("stop", "skip"):
            raise ValueError(f"on_error must be 'stop' or 'skip', not {self.on_error!r}")


@dataclass
class FileResult:
    """What one input gave: its samples' counts, events (for tokens) and skip counts."""

    path: str
    kind: str
    records: int
    samples: list[str]
    counts: np.ndarray
    events: Events | None = None
    channel_sets: tuple[str, ...] = ("SBS96", "DBS78", "ID83")
    cancer_types: pd.Series | None = None
    skips: Counter = field(default_factory=Counter)
    status: str = "ok"


@dataclass
class IngestReport:
    """Summary of an ingest run: per-file reads and skips by reason, and the cohort written."""

    out: Path
    files: list[dict]
    skips: Counter
    n_samples: int
    n_events: int
    no_mutation_samples: list[str]
    channel_sets_present: list[str]
    channel_sets: dict[str, str] = field(default_factory=dict)

    @property
    def records(self) -> int:
        """Records read over all files."""
        return sum(f["records"] for f in self.files)


def detect_kind(path: Path) -> str:
    """Input kind from name and content: 'vcf', 'maf', 'text' or 'matrix'."""
    from nanog1.genomics.maf import MAF_SUFFIXES, looks_like_maf
    from nanog1.genomics.textformat import looks_like_text_format
    from nanog1.genomics.vcf import VCF_SUFFIXES

    name = path.name.lower()
    if name.endswith(VCF_SUFFIXES):
        return "vcf"
    if name.endswith(MAF_SUFFIXES) or (path.stat().st_size and looks_like_maf(path)):
        return "maf"
    if path.stat().st_size and looks_like_text_format(path):
        return "text"
    return "matrix"


def _read_variants(path: Path, kind: str, options: IngestOptions):
    compat, on_error = options.sigprofiler_compatible, options.on_error
    if kind == "vcf":
        from nanog1.genomics.vcf import read_vcf, sample_from_filename

        if path.stat().st_size == 0:
            from nanog1.genomics.variants import table_from_lists

            return table_from_lists([], [], [], [], [], [], [], declared=[sample_from_filename(path, compat)])
        return read_vcf(path, compat=compat, on_error=on_error)
    if kind == "maf":
        from nanog1.genomics.maf import read_maf

        return read_maf(path, compat=compat, on_error=on_error)
    from nanog1.genomics.textformat import read_text

    return read_text(path, compat=compat, on_error=on_error)


def process_file(path: Path, reference: Path | None, options: IngestOptions) -> FileResult:
    """Read and classify one input (the unit of parallel work)."""
    path = Path(path)
    kind = detect_kind(path)
    if kind == "matrix":
        from nanog1.genomics.matrix import read_catalogue_matrix

        mat = read_catalogue_matrix(path)
        full = _matrix_counts(mat)
        return FileResult(
            str(path),
            kind,
            int(mat.counts.shape[0]),
            list(mat.counts.columns),
            full,
            channel_sets=(mat.channel_set,),
            cancer_types=mat.cancer_types,
        )
    table = _read_variants(path, kind, options)
    if reference is None:
        return _without_reference(path, kind, table, options)
    from nanog1.genomics.reference import open_reference

    events = classify_table(
        table,
        open_reference(reference),
        compat=options.sigprofiler_compatible,
        pass_only=options.filter == "PASS",
    )
    records = len(table) + sum(table.skips.values())
    status = "empty" if records == 0 else "ok"
    return FileResult(
        str(path), kind, records, events.samples, events.counts(), events, skips=events.skips, status=status
    )


def _without_reference(path: Path, kind: str, table, options: IngestOptions) -> FileResult:
    """Classify from the alleles alone: SBS6 (SBS96 with a context column), DBS78, ID12, tokens."""
    from nanog1.genomics.alleles import classify_without_reference
    from nanog1.genomics.channels import NO_REFERENCE_SETS

    events, sbs96 = classify_without_reference(table, pass_only=options.filter == "PASS")
    records = len(table) + sum(table.skips.values())
    types = None
    if "cohort" in table.annotations:
        types = pd.Series(table.annotations["cohort"], index=table.sample).replace("", None)
        types = types[~types.index.duplicated()]
    return FileResult(
        str(path),
        kind,
        records,
        events.samples,
        events.counts(),
        events,
        channel_sets=(("SBS96",) if sbs96 else ()) + NO_REFERENCE_SETS,
        cancer_types=types,
        skips=events.skips,
        status="empty" if records == 0 else "ok",
    )


def _measured_sets(results: list[FileResult]) -> list[str]:
    """Sets measured: any matrix's set, and a variant-file set only where every variant file had it."""
    from nanog1.genomics.channels import CHANNEL_SETS

    matrices = {s for r in results if r.kind == "matrix" and r.samples for s in r.channel_sets}
    variant = [set(r.channel_sets) for r in results if r.kind != "matrix" and r.samples]
    common = set.intersection(*variant) if variant else set()
    return [s for s in CHANNEL_SETS if s in matrices | common]


def _matrix_counts(mat) -> np.ndarray:
    """A single-set matrix placed into the cohort layout."""
    from nanog1.genomics.channels import CHANNEL_SETS

    full = np.zeros((mat.counts.shape[1], N_CHANNELS), dtype=np.int64)
    start = 0
    for name, labels in CHANNEL_SETS.items():
        if name == mat.channel_set:
            full[:, start : start + len(labels)] = mat.counts.to_numpy().T
        start += len(labels)
    return full


def _run_all(inputs: list[Path], reference: Path | None, options: IngestOptions) -> list[FileResult]:
    """Process every input, in parallel when asked, with an optional progress bar; input order kept."""
    from tqdm import tqdm

    bar = tqdm(total=len(inputs), unit="file", desc="ingest", disable=not options.progress)
    results: dict[int, FileResult] = {}
    try:
        if options.jobs > 1 and len(inputs) > 1:
            with ProcessPoolExecutor(max_workers=options.jobs) as pool:
                futures = {pool.submit(_guarded, p, reference, options): i for i, p in enumerate(inputs)}
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar.update()
        else:
            for i, p in enumerate(inputs):
                results[i] = _guarded(p, reference, options)
                bar.update()
    finally:
        bar.close()
    return [results[i] for i in range(len(inputs))]


def _guarded(path: Path, reference: Path | None, options: IngestOptions) -> FileResult:
    """process_file, turning an unreadable file into a counted failure under on_error='skip'."""
    try:
        return process_file(path, reference, options)
    except (InputError, OSError) as err:
        if options.on_error != "skip":
            raise
        empty = np.zeros((0, N_CHANNELS), dtype=np.int64)
        return FileResult(
            str(path), "unknown", 0, [], empty, skips=Counter(unreadable_file=1), status=str(err)
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _merge_counts(results: list[FileResult]) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """Samples in order of first appearance, their summed counts, and the sample -> row map."""
    order: dict[str, int] = {}
    for res in results:
        for s in res.samples:
            order.setdefault(s, len(order))
    counts = np.zeros((len(order), N_CHANNELS), dtype=np.int64)
    for res in results:
        if res.samples:
            counts[[order[s] for s in res.samples]] += res.counts
    return list(order), counts, order


def _merge_tokens(
    results: list[FileResult], order: dict[str, int], reference: Path | None, bin_size: int, genes=None
) -> dict:
    """Every file's events re-indexed to cohort rows and sorted by (sample, contig, position)."""
    from nanog1.genomics.tokens import merge_events

    chroms: list[str] | None = None
    lengths: list[int] | None = None
    if reference is not None:
        from nanog1.genomics.reference import open_reference

        ref = open_reference(reference)
        chroms, lengths = ref.contigs, [ref.lengths[c] for c in ref.contigs]
    index = None
    if genes is not None:
        from nanog1.genomics.genes import GeneIndex

        index = GeneIndex.from_file(Path(genes))
    return merge_events([r.events for r in results], order, chroms, lengths, bin_size, index)


def _provenance(
    inputs: list[Path],
    results: list[FileResult],
    reference: Path | None,
    options: IngestOptions,
    present: list[str],
    skips: Counter,
) -> dict:
    """The `uns['nanog1']` provenance: versions, inputs with hashes, reference, options, skip counts."""
    files = pd.DataFrame(
        {
            "path": [str(p) for p in inputs],
            "kind": [r.kind for r in results],
            "bytes": [Path(p).stat().st_size for p in inputs],
            "sha256": [_sha256(Path(p)) for p in inputs],
            "records": [r.records for r in results],
            "status": [r.status for r in results],
        }
    )
    reasons = sorted({k for r in results for k in r.skips}, key=_reason_order)
    per_file = pd.DataFrame(
        [[int(r.skips.get(k, 0)) for k in reasons] for r in results],
        columns=reasons,
        index=[str(i) for i in range(len(results))],
        dtype=np.int64,
    )
    ref_info = {}
    if reference is not None:
        from nanog1.genomics.reference import open_reference

        ref_info = {"path": str(reference), "fai_sha256": open_reference(reference).fai_sha256()}
    return {
        "version": nanog1.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": files,
        "reference": ref_info,
        "options": {k: str(v) for k, v in asdict(options).items()},
        "skips": {k: int(skips[k]) for k in reasons},
        "skips_per_file": per_file,
        "channel_sets_present": list(present),
        **_record_tallies(results),
    }


def _record_tallies(results: list[FileResult]) -> dict:
    """Per-sample accounting (read = counted + skipped by reason) and FILTER values dropped, where the
    classifier keeps them (the reference-free path)."""
    tallies = [r.events.tally for r in results if r.events is not None and r.events.tally is not None]
    if not tallies:
        return {}
    table = pd.concat([t.table for t in tallies]).fillna(0).astype(np.int64)
    table = table.groupby(level=0, sort=False).sum()
    table.index = table.index.astype(str)
    dropped: Counter = Counter()
    for t in tallies:
        dropped.update(t.filter_dropped)
    return {"records_per_sample": table, "filter_dropped": {str(k): int(v) for k, v in dropped.items()}}


def _reason_order(reason: str) -> int:
    return SKIP_REASONS.index(reason) if reason in SKIP_REASONS else len(SKIP_REASONS)


def ingest(
    inputs: list[Path],
    reference: Path | None,
    sample_sheet: Path | None,
    out: Path,
    options: IngestOptions = IngestOptions(),
) -> IngestReport:
    """Ingest variant files and/or catalogue matrices into one cohort .h5ad (written atomically)."""
    from nanog1.genomics.cohort import assemble_cohort, write_cohort
    from nanog1.genomics.samplesheet import read_sample_sheet

    inputs = [Path(p) for p in inputs]
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        raise InputError(missing[0], None, "input file not found")
    results = _run_all(inputs, reference, options)
    samples, counts, order = _merge_counts(results)
    present = _measured_sets(results)
    skips: Counter = Counter()
    for r in results:
        skips.update(r.skips)
    types = [r.cancer_types for r in results if r.cancer_types is not None]
    cancer_types = pd.concat(types).groupby(level=0).first() if types else None
    sheet = read_sample_sheet(sample_sheet) if sample_sheet is not None else None
    tokens = _merge_tokens(results, order, reference, options.bin_size, options.genes)
    provenance = _provenance(inputs, results, reference, options, present, skips)
    adata = assemble_cohort(
        counts, samples, provenance, sheet=sheet, cancer_types=cancer_types, tokens=tokens
    )
    write_cohort(adata, out)
    files = [
        {
            "path": r.path,
            "kind": r.kind,
            "records": r.records,
            "samples": len(r.samples),
            "status": r.status,
            "skips": dict(r.skips),
        }
        for r in results
    ]
    empty = [s for s, flag in zip(samples, adata.obs["no_mutations"], strict=True) if flag]
    meta = adata.uns["nanog1"]
    return IngestReport(
        Path(out),
        files,
        skips,
        len(samples),
        int(len(tokens["channel"])),
        empty,
        list(meta["channel_sets_present"]),
        dict(meta["channel_sets"]),
    )
