"""Ingestion orchestration: input files -> classified events -> one cohort .h5ad, with a report.

Before any record is read, the inputs are planned (`plan_inputs`): a file named twice, an empty
file, a VCF whose tumour column cannot be told, a sample sheet that disagrees with the inputs, and
a sample given by two files are errors naming the files. Each input (VCF/BCF, MAF, SigProfiler text,
or a ready catalogue matrix) is then processed on its own, in worker processes with `jobs > 1`
(their errors reach the user as in one process); results are merged by sample name. Nothing is
dropped silently: every call is counted or skipped by reason, and a file that loses more than
`max_skip_fraction` of its calls (FILTER and somatic-status choices aside) is an error.

The accounting table is the one record of what became of every call: `uns['nanog1']['accounting']`,
also `IngestReport.accounting`, printed per file and per sample by the summary. One row per (file,
sample): `file` is the row of `uns['nanog1']['inputs']`; sample '' holds the calls of a multi-sample
file that belong to no sample (no carrier, a malformed line). Columns `read`, `counted`, `skipped`
and one per skip reason (`variants.SKIP_REASONS` order), with `read = counted + skipped` and
`skipped = sum of the reasons` on every row; per-file and per-sample totals are its group sums and
`uns['nanog1']['skips']` its column sums. Catalogue matrices carry counts, not calls: no rows.

One reason counts files, not calls: `unreadable_file`, a file skipped whole under `on_error='skip'` (a
truncated .vcf.gz, an empty or binary file). No call of it was read, so its row has read = counted =
skipped = 0 and unreadable_file = 1, and `skipped` sums the other reasons: the summary table, predict's
closing line and predictions.json's `calls` all count calls in read/skipped and such files apart.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

import nanog1
from nanog1.errors import UserError
from nanog1.genomics.channels import (
    CHANNEL_SETS,
    DERIVED_FROM,
    N_CHANNELS,
    NO_DOUBLET_MIN_SBS,
    SNV_ONLY_MIN_SBS,
    WITHOUT_CONTEXT_TOLERANCE,
)
from nanog1.genomics.events import Events
from nanog1.genomics.partial_reference import WITHOUT_CONTEXT
from nanog1.genomics.skip_policy import (
    MAX_SKIP_DEFAULT,
    MAX_SKIP_FLAG,
    ON_ERROR_CHOICES,
    ON_ERROR_DEFAULT,
    spell_filter_rule,
)
from nanog1.genomics.variants import SKIP_REASONS, InputError, filter_breakdown, top_filter_values
from nanog1.io import check_not_an_input, file_sha256


@dataclass(frozen=True)
class IngestOptions:
    """What to keep and how: FILTER policy, error policy, SigProfiler compatibility, parallelism."""

    filter: str = "PASS"
    on_error: str = ON_ERROR_DEFAULT
    sigprofiler_compatible: bool = False
    jobs: int = 1
    bin_size: int = 1_000_000
    progress: bool = False
    genes: str | None = None
    tumor_sample: str | None = None
    normal_sample: str | None = None
    duplicates: str = "error"
    sheet_policy: str = "strict"
    max_skip_fraction: float = MAX_SKIP_DEFAULT
    #: how the caller's user sets `max_skip_fraction`, named by the too-many-calls-lost errors: the flag on
    #: the command line; the dashboard's Predict page names its own control (it has no flags)
    skip_limit_name: str = MAX_SKIP_FLAG
    #: the command asking (ingest / predict): its errors name only options that command has (predict has
    #: no --duplicates: a sample given by several files asks for a --samples sheet there; both have
    #: --on-error and --max-skip-fraction)
    command: str = "ingest"
    #: channel sets the calls did not measure, declared by the user (`--not-measured`: names or groups,
    #: schema.parse_not_measured): unmeasured for every tumour of the run (`declare_not_measured`)
    not_measured: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        from nanog1.schema import parse_not_measured

        object.__setattr__(self, "not_measured", parse_not_measured(self.not_measured))
        from nanog1.genomics.duplicates import DUPLICATE_POLICIES
        from nanog1.genomics.samplesheet import SHEET_POLICIES

        object.__setattr__(self, "filter", spell_filter_rule(self.filter))  # `--filter pass` means PASS
        if self.on_error not in ON_ERROR_CHOICES:
            raise UserError(f"--on-error {self.on_error}: choose {' or '.join(ON_ERROR_CHOICES)}")
        if self.duplicates not in DUPLICATE_POLICIES:
            raise UserError(f"duplicates must be one of {DUPLICATE_POLICIES}, not {self.duplicates!r}")
        if self.sheet_policy not in SHEET_POLICIES:
            raise UserError(f"sheet policy must be one of {SHEET_POLICIES}, not {self.sheet_policy!r}")
        if not 0 <= self.max_skip_fraction <= 1:
            raise UserError(f"{self.skip_limit_name} must be between 0 and 1, not {self.max_skip_fraction:g}")


#: Skip reasons that signal a wrong reference, wrong sample columns or a broken file: the share of
#: a file's calls lost to them is bounded by `max_skip_fraction`. The others are choices (FILTER,
#: somatic status) or what the SBS96/DBS78/ID83 classes cannot hold (structural alleles, runs of 3+
#: substitutions, complex indels, repeated records); they are counted and reported, never refused.
LOSS_REASONS = (
    "malformed_line",
    "unreadable_file",
    "no_carrier",
    "unsupported_allele",
    "ref_equals_alt",
    "unknown_contig",
    "ref_mismatch",
    "out_of_range",
)


@dataclass(frozen=True)
class FilePlan:
    """One input as planned before reading: its kind, the samples it gives (if known) and VCF routing."""

    path: Path
    kind: str
    samples: tuple[str, ...] | None = None
    vcf: dict = field(default_factory=dict)


VARIANT_SETS = ("SBS96", "DBS78", "ID83")
#: What a file can measure, by what its caller's header says it holds (vcf.split_content): every set, the
#: substitution sets (adjacent SNVs merge into DBS78 doublets, as SigProfilerMatrixGenerator does), or the
#: indel sets. A file measures a set it does not cover for no sample: it is unmeasured, never zero.
COVERS = {
    None: ("SBS96", "DBS78", "ID83", "SBS6", "ID12"),
    "snv": ("SBS96", "DBS78", "SBS6"),
    "indel": ("ID83", "ID12"),
}
#: The accounting table's count columns, before the skip reasons; `counted_without_context` (part of
#: `counted`: calls classified from their alleles alone because the FASTA lacks their contig) is
#: written only when some call was.
ACCOUNTING_TOTALS = ("read", "counted", "counted_without_context", "skipped")


@dataclass
class FileResult:
    """What one input gave: its samples' counts, events (for tokens) and skip counts."""

    path: str
    kind: str
    records: int
    samples: list[str]
    counts: np.ndarray
    events: Events | None = None
    channel_sets: tuple[str, ...] = VARIANT_SETS
    cancer_types: pd.Series | None = None
    skips: Counter = field(default_factory=Counter)
    status: str = "ok"
    accounting: pd.DataFrame | None = None
    #: samples x N_CHANNELS of the calls classified without context (their contig is not in the FASTA).
    without_context: np.ndarray | None = None
    #: Calls on contigs absent from the FASTA, by contig.
    missing_contigs: Counter = field(default_factory=Counter)
    #: What the file's header says it holds ('' = every kind of call; else vcf.SPLIT_CONTENT's words).
    content: str = ""
    #: Where the first malformed line skipped under on_error='skip' is and what is wrong with it ('line 345:
    #: malformed VCF record (...)'; `_locate_malformed`); '' for none.
    malformed: str = ""
    #: Per skip reason, the file line of the first call skipped for it (`Events.first_lines`): the loss
    #: limit's error names the first lost one.
    first_lines: dict[str, int] = field(default_factory=dict)
    #: The FILTER values behind the file's `non_pass` calls (--filter PASS), by value
    #: (`variants.filter_breakdown`); empty under --filter all and for formats without FILTER.
    filter_values: Counter = field(default_factory=Counter)

    def sample_sets(self, i: int) -> tuple[str, ...]:
        """The sets this file measured for its i-th sample: its `channel_sets`, and on the reference path
        every set it covers: whether calls without context cost the sample SBS96/ID83 is decided over all
        its files (`measured_per_sample`, `context_totals`)."""
        if self.without_context is None or self.kind == "matrix":
            return self.channel_sets
        covers = _covers(self)
        return tuple(s for s in CHANNEL_SETS if s in covers)


def _covers(result: FileResult) -> tuple[str, ...]:
    from nanog1.genomics.vcf import SPLIT_KIND

    return COVERS[SPLIT_KIND.get(result.content)]


@dataclass
class IngestReport:
    """Summary of an ingest run: per-file reads and skips by reason, the accounting table (see the
    module docstring) and the cohort written."""

    out: Path
    files: list[dict]
    skips: Counter
    n_samples: int
    n_events: int
    no_mutation_samples: list[str]
    channel_sets_present: list[str]
    channel_sets: dict[str, str] = field(default_factory=dict)
    accounting: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    #: Calls on contigs absent from the FASTA (classified without context), by contig.
    missing_contigs: Counter = field(default_factory=Counter)
    #: Samples by the genome build their calls are on ('unknown' where nothing states it).
    genome_builds: Counter = field(default_factory=Counter)

    @property
    def records(self) -> int:
        """Records read over all files."""
        return sum(f["records"] for f in self.files)


#: Kinds read as VCFs (sample from the header, the sheet's `file` column or the file name).
VCF_KINDS = ("vcf", "headerless")


def detect_kind(path: Path) -> str:
    """Input kind from name and content: 'vcf', 'headerless' (a VCF with no header, as in the SigProfiler
    examples), 'maf', 'text' or 'matrix'."""
    from nanog1.genomics.maf import MAF_SUFFIXES, looks_like_maf
    from nanog1.genomics.textformat import looks_like_headerless_vcf, looks_like_text_format
    from nanog1.genomics.vcf import VCF_SUFFIXES, looks_like_vcf

    name = path.name.lower()
    if name.endswith(VCF_SUFFIXES):
        text = name.endswith((".vcf", ".vcf.gz", ".vcf.bgz"))  # not a BCF
        return "headerless" if text and looks_like_headerless_vcf(path) else "vcf"
    if looks_like_vcf(path):  # a VCF saved as .txt or .tsv: its first line says so
        return "vcf"
    if name.endswith(MAF_SUFFIXES) or (path.stat().st_size and looks_like_maf(path)):
        return "maf"
    if path.stat().st_size and looks_like_text_format(path):
        return "text"
    return "matrix"


def _read_variants(path: Path, kind: str, options: IngestOptions, vcf: dict):
    compat, on_error = options.sigprofiler_compatible, options.on_error
    if kind == "vcf":
        from nanog1.genomics.vcf import read_vcf

        return read_vcf(path, compat=compat, on_error=on_error, **vcf)
    if kind == "maf":
        from nanog1.genomics.maf import read_maf

        return read_maf(path, compat=compat, on_error=on_error)
    if kind == "headerless":
        from nanog1.genomics.textformat import read_headerless_vcf
        from nanog1.genomics.vcf import sample_from_filename

        name = vcf.get("name") or sample_from_filename(path, compat)
        return read_headerless_vcf(path, name, on_error=on_error)
    from nanog1.genomics.textformat import read_text

    return read_text(path, compat=compat, on_error=on_error)


def process_file(
    path: Path, reference: Path | None, options: IngestOptions, vcf: dict | None = None
) -> FileResult:
    """Read and classify one input (the unit of parallel work); `vcf`: tumour/normal/name routing."""
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
    table = _read_variants(path, kind, options, vcf or {})
    values = filter_breakdown(table) if options.filter == "PASS" else Counter()
    if reference is None:
        return replace(_without_reference(path, kind, table, options), filter_values=values)
    from nanog1.genomics.partial_reference import classify_with_reference
    from nanog1.genomics.reference import open_reference

    got = classify_with_reference(
        table,
        open_reference(reference),
        compat=options.sigprofiler_compatible,
        pass_only=options.filter == "PASS",
    )
    events = got.events
    records = len(table) + sum(table.skips.values())
    status = "empty" if records == 0 else "ok"
    covers, content = _split_file(path, kind, table)
    accounting = _file_accounting(events.accounting, table.skips, events.samples)
    if got.free_accounting is not None:
        accounting = _with_free_part(accounting, _tally_accounting(got.free_accounting))
    return FileResult(
        str(path),
        kind,
        records,
        events.samples,
        got.counts,
        events,
        channel_sets=tuple(s for s in _context_sets(got.counts, got.without_context) if s in covers),
        skips=events.skips,
        status=status,
        accounting=accounting,
        without_context=got.without_context,
        missing_contigs=got.missing_contigs,
        content=content,
        first_lines=events.first_lines,
        filter_values=values,
    )


def _split_file(path: Path, kind: str, table) -> tuple[tuple[str, ...], str]:
    """(sets the file can measure, what it holds) from its caller's convention (vcf.file_split: a Strelka2
    header, a VarScan2 header and file name), where its
    records agree: a Strelka2 SNV file (no indel record) measures SBS96, DBS78 and SBS6, not the indel
    sets; a Strelka2 indel file (no substitution record) the indel sets only. Every set otherwise."""
    if kind != "vcf":
        return COVERS[None], ""
    from nanog1.genomics.vcf import file_split

    found = file_split(path)
    if found is None:
        return COVERS[None], ""
    split, words = found
    ref_len = np.fromiter(map(len, table.ref), dtype=np.int64, count=len(table))
    alt_len = np.fromiter(map(len, table.alt), dtype=np.int64, count=len(table))
    same = ref_len == alt_len
    if (split == "snv" and same.all()) or (split == "indel" and not same.any()):
        return COVERS[split], words
    return COVERS[None], ""


def _context_sets(counts: np.ndarray, without_context: np.ndarray) -> tuple[str, ...]:
    """The sets a reference-path file measured for every sample: all five, less SBS96 (ID83) when, for
    some sample, more than WITHOUT_CONTEXT_TOLERANCE of its substitutions (indels) fell back to SBS6 (ID12)
    for lack of their contig in the FASTA (partial_reference.context_tolerated)."""
    from nanog1.genomics.partial_reference import context_tolerated, left_out_of_context

    shares = left_out_of_context(counts, without_context)
    lost = {src for src, (left, total) in shares.items() if not context_tolerated(left, total).all()}
    return tuple(s for s in CHANNEL_SETS if s not in lost)


def _with_free_part(accounting: pd.DataFrame, free: pd.DataFrame) -> pd.DataFrame:
    """One file's accounting: the calls classified in context plus those classified from their alleles
    alone (contig absent from the FASTA), the latter also as `counted_without_context`."""
    total = accounting.add(free, fill_value=0).fillna(0)
    total["counted_without_context"] = free["counted"].reindex(total.index, fill_value=0)
    reasons = sorted((c for c in total.columns if c not in ACCOUNTING_TOTALS), key=_reason_order)
    total = total[[*ACCOUNTING_TOTALS, *reasons]].astype(np.int64)
    total.index.name = "sample"
    return total


def _without_reference(path: Path, kind: str, table, options: IngestOptions) -> FileResult:
    """Classify from the alleles alone: SBS6 (SBS96 with a context column), DBS78, ID12, tokens."""
    from nanog1.genomics.alleles import classify_without_reference
    from nanog1.genomics.channels import NO_REFERENCE_SETS

    events, sbs96 = classify_without_reference(table, pass_only=options.filter == "PASS")
    records = len(table) + sum(table.skips.values())
    covers, content = _split_file(path, kind, table)
    types = None
    if "cohort" in table.annotations:
        types = pd.Series(np.asarray(table.annotations["cohort"], dtype=object), index=table.sample)
        types = types[~types.index.duplicated()].replace("", None)
    return FileResult(
        str(path),
        kind,
        records,
        events.samples,
        events.counts(),
        events,
        channel_sets=tuple(s for s in (("SBS96",) if sbs96 else ()) + NO_REFERENCE_SETS if s in covers),
        cancer_types=types,
        skips=events.skips,
        status="empty" if records == 0 else "ok",
        accounting=_tally_accounting(events.tally.table) if events.tally is not None else None,
        content=content,
        first_lines=events.first_lines,
    )


def measured_per_sample(results: list[FileResult], order: dict[str, int]) -> np.ndarray:
    """Bool [samples, sets] (`schema.SET_NAMES` columns): the sets each sample measured exactly, the one
    rule per sample (issue 31). A sample's sets are the union of those its files measured (a Strelka2 SNV
    file and its indel file, a PCAWG sample's SBS, DBS and ID matrices), less any set a file lost: one
    holding the folded set (SBS6, ID12) without its source (no reference) leaves the sample's SBS96/ID83
    incomplete, and so do calls on contigs the FASTA lacks when, over all the sample's files, they are more
    than WITHOUT_CONTEXT_TOLERANCE of its substitutions (indels): fewer are left out of SBS96/ID83 and the
    set stays exact (`context_totals`)."""
    from nanog1.genomics.partial_reference import context_tolerated
    from nanog1.schema import SET_NAMES, with_derived_sets

    names = np.asarray(SET_NAMES)
    got = np.zeros((len(order), len(SET_NAMES)), dtype=bool)
    lost = np.zeros_like(got)
    for r in results:
        for i, sample in enumerate(r.samples):
            sets = with_derived_sets(list(r.sample_sets(i)))
            row = order[sample]
            got[row] |= np.isin(names, sets)
            folded = [src for d, src in DERIVED_FROM.items() if d in sets and src not in sets]
            lost[row] |= np.isin(names, folded)
    for source, (left, total) in context_totals(results, order).items():
        lost[:, SET_NAMES.index(source)] |= ~context_tolerated(left, total)
    return got & ~lost


def context_totals(
    results: list[FileResult], order: dict[str, int]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per context set (SBS96, ID83): per sample (`order` rows) its calls classified without context
    (contig absent from the FASTA) and all its calls of that kind, summed over its reference-path files
    (partial_reference.left_out_of_context), so a chrM-only VCF beside the sample's main VCF is weighed
    against all of the sample's calls."""
    from nanog1.genomics.partial_reference import left_out_of_context

    out = {src: (np.zeros(len(order), dtype=np.int64), np.zeros(len(order), dtype=np.int64))
           for src in DERIVED_FROM.values()}
    for r in results:
        if r.without_context is None or r.kind == "matrix":
            continue
        rows = np.array([order[s] for s in r.samples], dtype=np.int64)
        for src, (left, total) in left_out_of_context(r.counts, r.without_context).items():
            np.add.at(out[src][0], rows, left)
            np.add.at(out[src][1], rows, total)
    return out


def _measured_sets(measured: np.ndarray) -> list[str]:
    """Sets measured for every sample (the cohort-wide record, `uns['nanog1']['channel_sets']`); none
    for a cohort without samples."""
    from nanog1.schema import SET_NAMES

    return [s for j, s in enumerate(SET_NAMES) if len(measured) and measured[:, j].all()]


def _file_accounting(per_sample: pd.DataFrame, reader_skips: Counter, samples: list[str]) -> pd.DataFrame:
    """Per sample of one file: read = counted + skipped by reason.

    The reader's skips (records dropped before a call existed: malformed lines, no carrier, ...)
    belong to the file's sample when it has one, else to a row with sample '' (the file itself).
    Built with numpy (one DataFrame at the end): this runs once per file.
    """
    owner = samples[0] if len(samples) == 1 else ""
    index = list(per_sample.index)
    if owner not in index and sum(reader_skips.values()):
        index.append(owner)
    reasons = sorted(
        set(per_sample.columns[2:]) | {r for r, k in reader_skips.items() if k}, key=_reason_order
    )
    data = {name: np.zeros(len(index), dtype=np.int64) for name in ("read", "counted", *reasons)}
    base = len(per_sample)
    data["read"][:base] = per_sample["calls"].to_numpy()
    data["counted"][:base] = per_sample["counted"].to_numpy()
    for reason in per_sample.columns[2:]:
        data[reason][:base] = per_sample[reason].to_numpy()
    if sum(reader_skips.values()):
        row = index.index(owner)
        for reason, n in reader_skips.items():
            if n:
                data[reason][row] += n
                data["read"][row] += n
    skipped = sum((data[r] for r in reasons), np.zeros(len(index), dtype=np.int64))
    columns = {"read": data["read"], "counted": data["counted"], "skipped": skipped}
    columns.update({r: data[r] for r in reasons})
    return pd.DataFrame(columns, index=pd.Index(index, dtype=object, name="sample"))


def _tally_accounting(table: pd.DataFrame) -> pd.DataFrame:
    """The reference-free path's per-sample table (alleles.RecordTally) laid out as `_file_accounting`'s."""
    table = table.copy()
    reasons = [c for c in table.columns if c not in ("read", "counted")]
    table.insert(2, "skipped", table[reasons].sum(axis=1))
    table.index.name = "sample"
    return table.astype(np.int64)


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


def _run_all(plans: list[FilePlan], reference: Path | None, options: IngestOptions) -> list[FileResult]:
    """Process every input, in parallel when asked, with an optional progress bar; input order kept.

    A worker's InputError is re-raised here unchanged (file and line), exactly as in one process.
    """
    from tqdm import tqdm

    bar = tqdm(total=len(plans), unit="file", desc="ingest", disable=not options.progress)
    results: dict[int, FileResult] = {}
    try:
        if options.jobs > 1 and len(plans) > 1:
            with ProcessPoolExecutor(max_workers=options.jobs) as pool:
                futures = {
                    pool.submit(_guarded, p.path, reference, options, p.vcf): i for i, p in enumerate(plans)
                }
                try:
                    for fut in as_completed(futures):
                        results[futures[fut]] = fut.result()
                        bar.update()
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
        else:
            for i, p in enumerate(plans):
                results[i] = _guarded(p.path, reference, options, p.vcf)
                bar.update()
    finally:
        bar.close()
    return [results[i] for i in range(len(plans))]


#: Files whose first skipped malformed line is located, at most (each is read a second time).
MALFORMED_LOCATED = 20


def _locate_malformed(results: list[FileResult], plans: list[FilePlan], reference: Path | None,
                      options: IngestOptions) -> None:
    """Under on_error='skip', set each damaged file's `malformed` to where its first skipped malformed line
    is and what is wrong with it, by reading it again under 'stop', whose error names both: a count alone
    does not tell a lab which line of which of its thousand files to mend. Only files that skipped such
    lines are read again (rare), at most MALFORMED_LOCATED of them."""
    damaged = [(r, p) for r, p in zip(results, plans, strict=True) if r.skips.get("malformed_line")]
    for result, plan in damaged[:MALFORMED_LOCATED]:
        found = _first_malformed(plan, reference, options)
        if found is not None:
            line, why = found
            result.malformed = f"line {line}: {why}" if line is not None else why


def _first_malformed(plan: FilePlan, reference: Path | None,
                     options: IngestOptions) -> tuple[int | None, str] | None:
    """(line, what is wrong) of the first malformed line of a file that skipped some under on_error='skip',
    found by reading it again under 'stop', whose error names both; None when the second read fails
    otherwise (it was read once already: that says nothing new) or not at all."""
    stop = replace(options, on_error="stop", jobs=1, progress=False)
    try:
        process_file(Path(plan.path), reference, stop, plan.vcf)
    except InputError as err:
        return err.line, err.why
    except (OSError, UserError):
        return None
    return None


def _malformed_notes(results: list[FileResult]) -> list[str]:
    """'BADLINE.vcf: 2 malformed line(s) skipped (--on-error skip), the first at line 345: ...' per file."""
    notes = []
    for r in results:
        n = int(r.skips.get("malformed_line", 0))
        if n:
            where = f", the first at {r.malformed}" if r.malformed else ""
            notes.append(f"{Path(r.path).name}: {n:,} malformed line(s) skipped (--on-error skip){where}")
    return notes


def _guarded(path: Path, reference: Path | None, options: IngestOptions, vcf: dict) -> FileResult:
    """process_file, turning an unreadable file into a counted failure under on_error='skip'."""
    try:
        return process_file(path, reference, options, vcf)
    except (InputError, OSError) as err:
        if options.on_error != "skip":
            if isinstance(err, InputError):
                raise
            raise InputError(str(path), None, f"could not be read ({err})") from err
        empty = np.zeros((0, N_CHANNELS), dtype=np.int64)
        accounting = pd.DataFrame(
            {"read": [0], "counted": [0], "skipped": [0], "unreadable_file": [1]},  # a file, not a call
            index=pd.Index([""], name="sample"),
        )
        return FileResult(
            str(path),
            "unknown",
            0,
            [],
            empty,
            skips=Counter(unreadable_file=1),
            status=str(err),
            accounting=accounting,
        )


#: Endings of index files (tabix, CSI), which sit beside the calls they index and hold none.
INDEX_SUFFIXES = (".tbi", ".csi")


def drop_index_files(inputs: list[Path]) -> list[Path]:
    """The inputs less the index of any input also given: `calls/*` matches calls/T1.vcf.gz and its
    calls/T1.vcf.gz.tbi, and the index, read as an input, was refused as 'not a text file', stopping the
    whole batch. An index given without its file stays, to be refused by name."""
    given = {str(p) for p in inputs}
    return [p for p in inputs
            if not (p.name.endswith(INDEX_SUFFIXES) and str(p)[: -len(".tbi")] in given)]


#: Input file endings, longest first, for the glob a directory given as an input is answered with.
_INPUT_SUFFIXES = (
    ".vcf.gz", ".vcf.bgz", ".maf.gz", ".maf.txt", ".bcf", ".vcf", ".maf", ".tsv", ".csv", ".txt",
)


#: VCF endings a folder may mix (bgzipped, plain, BCF): the glob suggested for it names each one present.
_VCF_SUFFIXES = (".vcf.gz", ".vcf.bgz", ".bcf", ".vcf")


def _folder_globs(folder: Path) -> str:
    """The globs to suggest for a folder given as an input: its commonest input ending's, and for VCFs
    every other VCF ending present ('calls/*.vcf.gz calls/*.vcf': a lab's folder mixes bgzipped and plain
    VCFs, and the commonest alone left the others untyped)."""
    endings = _input_suffixes(folder)
    endings = [e for e in endings if e in _VCF_SUFFIXES] if endings[0] in _VCF_SUFFIXES else endings[:1]
    return " ".join(str(folder / f"*{ending}") for ending in endings)


def _input_suffixes(folder: Path) -> list[str]:
    """The input endings a folder's files have, the commonest first (the glob to suggest: `*.vcf` where
    the folder holds .vcf files, not a `*.vcf.gz` that matches none of them); [.vcf.gz] when it holds none."""
    from collections import Counter

    found = Counter()
    try:
        children = list(folder.iterdir())
    except OSError:  # an unreadable folder: the usual ending
        children = []
    for child in children:
        ending = next((e for e in _INPUT_SUFFIXES if child.name.lower().endswith(e)), None)
        if ending and child.is_file():
            found[ending] += 1
    return [ending for ending, _ in found.most_common()] or [".vcf.gz"]


def plan_inputs(
    inputs: list[Path], sheet, options: IngestOptions, skip_unreadable: bool = False
) -> tuple[list[FilePlan], list[str]]:
    """Check the inputs before any record is read; return one plan per input and notes. With
    `skip_unreadable` (ingest under on_error='skip'), a file whose header or sample column cannot be read,
    or an empty one, is planned as 'unreadable' (counted once read) instead of stopping the run.

    Errors (InputError/ValueError/UserError, naming the files): a missing or empty file, the same file
    twice, Strelka2's SNV and indel files of one folder without a sheet saying they are one tumour
    (they would read as two tumours, each with half its calls), a VCF whose tumour column cannot be
    told, disagreement with the sample sheet (see `samplesheet.check_sheet`), and, under
    duplicates='error', a sample given by two files.
    """
    from nanog1.genomics.duplicates import check_same_file
    from nanog1.genomics.samplesheet import check_sheet

    for p in inputs:
        if not p.exists():
            raise InputError(str(p), None, "input file not found")
        if p.is_dir():
            raise InputError(str(p), None, f"a directory, not an input file: give its files with a glob,"
                             f" e.g. {_folder_globs(p)}")
        if p.stat().st_size == 0 and not skip_unreadable:  # under skip: counted as an unreadable_file
            raise InputError(str(p), None, "empty file (zero bytes)")
    check_same_file(inputs)
    if sheet is None and options.tumor_sample is None:  # a sheet (or a named tumour) says who is who
        from nanog1.genomics.vcf import refuse_split_call_files

        refuse_split_call_files(inputs)
    plans = [_plan_or_skip(p, sheet, options, skip_unreadable) for p in inputs]
    notes: list[str] = [sheet.notice] if sheet is not None and sheet.notice else []
    if sheet is not None:
        known = {str(p.path): list(p.samples) for p in plans if p.samples is not None}
        complete = all(p.samples is not None for p in plans)
        routed = {str(p.path) for p in plans if p.kind in VCF_KINDS}
        notes += check_sheet(sheet, inputs, known, options.sheet_policy, complete, routed)
    _check_owners([(str(p.path), list(p.samples), VARIANT_SETS) for p in plans if p.samples], sheet, options)
    return plans, notes


def _unreadable_owners(unreadable: list[Path], sheet) -> tuple[dict[str, list[str]], bool]:
    """For the sheet check after reading: the samples the sheet's file rows give the files skipped as
    unreadable (on_error='skip'), and whether every sample's file is then known. Such a file names no
    sample itself, so its sheet sample is not one 'without an input file' (it was given one, unreadable,
    and the closing line names it); a sheet without file rows cannot tell whose it was: not complete."""
    if not unreadable:
        return {}, True
    if sheet.files is None:
        return {}, False
    return {str(p): sheet.rows_for(p)["sample"].astype(str).tolist() for p in unreadable}, True


def _plan_or_skip(path: Path, sheet, options: IngestOptions, skip_unreadable: bool) -> FilePlan:
    """`_plan_one`, or (skip_unreadable: ingest under on_error='skip') for a file whose header or sample
    column cannot be read, or that is empty (zero bytes: an interrupted copy), a plan of kind 'unreadable'
    with no samples: reading it fails again and `_guarded` counts it as an unreadable_file, as it does a
    file that fails once planned."""
    if skip_unreadable and path.stat().st_size == 0:
        return FilePlan(path, "unreadable")
    try:
        return _plan_one(path, sheet, options)
    except InputError:
        if not skip_unreadable:
            raise
        return FilePlan(path, "unreadable")


def _plan_one(path: Path, sheet, options: IngestOptions) -> FilePlan:
    """Kind, the sample names, and for VCFs the tumour/normal routing (option, sheet row, or header).

    MAF and text files name their samples inside: only that column is read here (pyarrow, cheap), so
    that the sheet and the duplicate policy are checked before any record is. Catalogue matrices are
    checked once read (their samples are columns of a small table)."""
    kind = detect_kind(path)
    if kind == "maf":
        from nanog1.genomics.maf import maf_samples

        return FilePlan(path, kind, maf_samples(path, options.on_error))
    if kind == "text":
        from nanog1.genomics.textformat import text_samples

        return FilePlan(path, kind, text_samples(path))
    if kind not in VCF_KINDS:
        return FilePlan(path, kind)
    from nanog1.genomics.vcf import sample_from_filename, vcf_layout

    route: dict = {"tumor": options.tumor_sample, "normal": options.normal_sample, "name": None}
    rows = sheet.rows_for(path) if sheet is not None else None
    if rows is not None and len(rows) == 1:
        row = rows.iloc[0]
        route["name"] = row["sample"]
        for key in ("tumor", "normal"):
            value = row.get(f"{key}_sample")
            if isinstance(value, str) and value:
                route[key] = value
    route = {k: v for k, v in route.items() if v is not None}
    if kind == "headerless":  # one sample: the sheet row's, or the file's name
        name = route.get("name") or sample_from_filename(path, options.sigprofiler_compatible)
        return FilePlan(path, kind, (name,), {"name": name})
    layout = vcf_layout(path, compat=options.sigprofiler_compatible, **route)
    return FilePlan(path, kind, layout.samples, route)


def _check_owners(given: list[tuple[str, list[str], tuple[str, ...]]], sheet, options: IngestOptions) -> None:
    """Apply the duplicate policy to samples given by several files, per channel set (a cohort's SBS,
    DBS and ID matrices complete each other). (path, samples, channel sets) per file; sheet rows that
    name one sample for several files declare that sum and are allowed."""
    from nanog1.genomics.channels import CHANNEL_SETS
    from nanog1.genomics.duplicates import check_duplicates

    declared = set()
    if sheet is not None and sheet.files is not None:
        declared = set(sheet.files["sample"][sheet.files["sample"].duplicated(keep=False)])
    for channel_set in CHANNEL_SETS:
        owners: dict[str, list[str]] = {}
        for path, names, sets in given:
            if channel_set in sets:
                for name in names:
                    if name not in declared:
                        owners.setdefault(name, []).append(path)
        hint = "--duplicates sum" if options.command == "ingest" else None
        check_duplicates(owners, options.duplicates, hint)


def _no_carrier_hint(samples: list[str], command: str) -> str:
    """Why most calls of a file have no carrier: the column read as the tumour (a swapped ##tumor_sample /
    ##normal_sample header, a sheet naming the normal) holds the normal, whose genotypes are 0/0."""
    how = "a sample sheet's tumor_sample column" + (" or --tumor-sample" if command == "ingest" else "")
    read = ", ".join(samples[:3]) + (", ..." if len(samples) > 3 else "")
    return (f": the column read as the tumour ({read}) carries no ALT allele on most calls; is it the "
            f"normal? Name the tumour column with {how}")


def _first_bad_line(result: FileResult, lost: dict[str, int], plan: FilePlan | None, reference: Path | None,
                    options: IngestOptions) -> str:
    """'. First bad line: calls.vcf:57 (ref_mismatch: REF differs from the reference)' for a file refused
    by the loss limit: its earliest line lost to a reason that counted (`FileResult.first_lines`) or, where it
    skipped malformed lines under on_error='skip', its first malformed line if earlier (`_first_malformed`,
    the re-read that locates them for the notes), so a lab can look at the line at once; '' when no line
    is known (a catalogue matrix)."""
    from nanog1.genomics.variants import REASON_TEXT

    found = [(line, f"{reason}: {REASON_TEXT.get(reason, reason)}")
             for reason, line in result.first_lines.items() if reason in lost]
    if plan is not None and result.skips.get("malformed_line"):
        located = _first_malformed(plan, reference, options)
        if located is not None and located[0] is not None:
            found.append((located[0], f"malformed_line: {located[1]}"))
    if not found:
        return ""
    line, why = min(found, key=lambda item: item[0])
    return f". First bad line: {result.path}:{line} ({why})"


def _first_free_line(result: FileResult) -> str:
    """'. First call there: calls.vcf:12' for a file refused for its calls on contigs the FASTA lacks (the
    first such call's line, `partial_reference.WITHOUT_CONTEXT` in `first_lines`); '' when unknown."""
    line = result.first_lines.get(WITHOUT_CONTEXT)
    return f". First call there: {result.path}:{line}" if line is not None else ""


def _check_losses(results: list[FileResult], options: IngestOptions, plans: list[FilePlan] | None = None,
                  reference: Path | None = None) -> None:
    """A file that lost more than `max_skip_fraction` of what it read to LOSS_REASONS is an error, naming
    its first bad line and why (`_first_bad_line`; `plans` and `reference` locate a malformed one).

    Under `on_error='skip'` malformed lines and unreadable files were asked for: they do not count.
    Calls on contigs the FASTA lacks are not lost (they are counted without context), but more than
    the same share of them signals a wrong reference: an error of its own, allowed the same way.
    """
    limit = options.max_skip_fraction
    # the limit as the caller's user sets it: --max-skip-fraction (ingest, predict) or the dashboard's control
    over, allow = f"more than {options.skip_limit_name} {limit:g}", "raise the limit"
    skipped_on_request = ("malformed_line", "unreadable_file") if options.on_error == "skip" else ()
    for i, r in enumerate(results):
        lost = {k: v for k, v in r.skips.items() if k in LOSS_REASONS and k not in skipped_on_request}
        read = r.records
        n_lost = sum(lost.values())
        if read > 0 and n_lost > limit * read:
            reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(lost.items(), key=lambda kv: -kv[1]))
            build = lost.get("ref_mismatch", 0) > n_lost / 2
            hint = (": REF disagrees with the FASTA, so the FASTA is probably another genome build than "
                    "the calls' (GRCh37 vs GRCh38?); give the one they were called on") if build else ""
            if lost.get("no_carrier", 0) > n_lost / 2:
                hint = _no_carrier_hint(r.samples, options.command)
            first = _first_bad_line(r, lost, plans[i] if plans is not None else None, reference, options)
            raise InputError(
                r.path,
                None,
                f"{n_lost:,} of {read:,} calls lost ({n_lost / read:.0%}: {reasons}), {over}{hint};"
                f" check the reference and the file, or {allow}{first}",
            )
        n_free = sum(r.missing_contigs.values())
        if read > 0 and n_free > limit * read:
            contigs = ", ".join(f"{k} {v:,}" for k, v in r.missing_contigs.most_common(5))
            raise InputError(
                r.path,
                None,
                f"{n_free:,} of {read:,} calls ({n_free / read:.0%}) are on contigs the reference lacks"
                f" ({contigs}), {over}: is it the right reference? They are not lost ({allow} to count them"
                f" without context: SBS6, DBS78, ID12){_first_free_line(r)}",
            )


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
            "sha256": [file_sha256(Path(p)) for p in inputs],
            "records": [r.records for r in results],
            "status": [r.status for r in results],
            "content": [r.content for r in results],
            "malformed": [r.malformed for r in results],
        }
    )
    ref_info = {}
    if reference is not None:
        from nanog1.genomics.build import build_from_lengths
        from nanog1.genomics.reference import open_reference

        ref = open_reference(reference)
        build, evidence = build_from_lengths(ref.lengths)
        ref_info = {"path": str(reference), "fai_sha256": ref.fai_sha256(), "genome_build": build or "",
                    "genome_build_evidence": evidence}
    return {
        "version": nanog1.__version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": files,
        "reference": ref_info,
        "options": {k: str(v) for k, v in asdict(options).items()},
        "skips": {k: int(skips[k]) for k in sorted(skips, key=_reason_order)},
        "channel_sets_present": list(present),
        **_filter_values(results),
    }


def _filter_values(results: list[FileResult]) -> dict:
    """FILTER values a PASS-only ingest dropped, counted by value over the files (`FileResult.filter_values`,
    with and without a reference; their calls are the accounting's `non_pass` column): `filter_dropped`
    for the cohort (`filter_counts_table`), `filter_dropped_by_file` per file (`filter_table`); tables, as
    HDF5 keys lose FILTER values with '/' or '.'. {} when no call was dropped."""
    from nanog1.genomics.variants import filter_counts_table

    dropped: Counter = Counter()
    for r in results:
        dropped.update(r.filter_values)
    if not dropped:
        return {}
    return {"filter_dropped": filter_counts_table(dropped),
            "filter_dropped_by_file": filter_table(results)}


def filter_table(results: list[FileResult]) -> pd.DataFrame:
    """Per file, the FILTER values its `non_pass` calls had: one row per (file, value) with `file` the
    index into `uns['nanog1']['inputs']` as the accounting names it, `filter` and `calls`, most frequent
    first within a file. A table, not a dict keyed by path and value: HDF5 splits keys at '/' and drops a
    '.', so a path (or an odd FILTER value) as a key would not survive the .h5ad."""
    rows = [(str(i), str(value), int(n)) for i, r in enumerate(results)
            for value, n in Counter(r.filter_values).most_common()]
    table = pd.DataFrame(rows, columns=["file", "filter", "calls"]).astype({"calls": np.int64})
    table.index = table.index.astype(str)
    return table


def _filter_notes(results: list[FileResult]) -> list[str]:
    """'T1.vcf: non_pass 626 (FILTER LowQual 300, weak_evidence 200, +3 more)' per file that dropped calls
    for FILTER with values known: the count alone does not tell germline from artefact filters."""
    notes = []
    for r in results:
        n = int(r.skips.get("non_pass", 0))
        if n and r.filter_values:
            notes.append(f"{Path(r.path).name}: non_pass {n:,} (FILTER {top_filter_values(r.filter_values)})")
    return notes


def _reason_order(reason: str) -> int:
    return SKIP_REASONS.index(reason) if reason in SKIP_REASONS else len(SKIP_REASONS)


#: What each of `check_inputs`' notes concerns, leading it.
SHEET_NOTE, REFERENCE_NOTE = "sample sheet: ", "reference: "


def check_inputs(
    inputs: list[Path], sample_sheet: Path | None, options: IngestOptions = IngestOptions(),
    reference: Path | None = None,
) -> tuple[list[FilePlan], list[str]]:
    """The checks `ingest` makes before reading any record, alone (`nanog1 ingest --check-only`, the
    pipeline's first step): VCF headers, the sample column of MAF/text files and the sample sheet. Under
    on_error='skip' a file whose header cannot be read (or an empty one) is planned as 'unreadable', as
    ingest plans it, instead of failing the check that the run itself would pass. Catalogue matrices
    (small tables) are read too, and ingest's checks of the samples known once they are
    (`check_read_samples`: matrices sharing no name, a sample shared by a matrix and a call file, sheet rows
    naming samples no input holds, matrix samples without a row) are made now, in its words. With a
    `reference`, the calls are planned as read in context, and the FASTA is checked against the inputs as
    ingest would check it (`reference_check.check_reference`: index, contig names, ##contig lengths of
    another build, a MAF's NCBI_Build), so that every caller of the check (`--check-only`, the pipeline's
    check_inputs rule through it, Python) gets the same refusals. Returns the plans and the notes, each led
    by what it concerns ('sample sheet: ', 'reference: '), as `--check-only` prints them."""
    from nanog1.genomics.samplesheet import load_sample_sheet

    inputs = drop_index_files([Path(p) for p in inputs])
    sheet = load_sample_sheet(sample_sheet) if sample_sheet is not None else None
    plans, notes = plan_inputs(inputs, sheet, options, skip_unreadable=options.on_error == "skip")
    if any(p.samples is None for p in plans):  # as ingest, once the matrices are read
        given = [(str(p.path), list(p.samples), _planned_sets(p, reference)) for p in plans if p.samples]
        matrices = [_guarded(p.path, None, options, {}) for p in plans if p.kind == "matrix"]
        given += [(r.path, list(r.samples), r.channel_sets) for r in matrices]
        unreadable = [p.path for p in plans if p.kind == "unreadable"]
        unreadable += [Path(r.path) for r in matrices if r.skips.get("unreadable_file")]
        more = check_read_samples(inputs, plans, given, matrices, unreadable, sheet, options)
        notes = list(dict.fromkeys(notes + more))
    notes = [f"{SHEET_NOTE}{note}" for note in notes]
    if reference is not None:
        from nanog1.genomics.reference_check import check_reference

        found = check_reference(reference, plans, options.max_skip_fraction, options.skip_limit_name)
        notes += [f"{REFERENCE_NOTE}{note}" for note in found]
    return plans, notes


def check_read_samples(inputs: list[Path], plans: list[FilePlan],
                       given: list[tuple[str, list[str], tuple[str, ...]]], results: list[FileResult],
                       unreadable: list[Path], sheet, options: IngestOptions) -> list[str]:
    """The checks ingest makes once every input's samples are known, that is once catalogue matrices (which
    name theirs in a header read with the file) are read; `ingest` and `check_inputs` (--check-only) both
    call it, so both refuse with the same words. Matrices of different sets sharing no sample name
    (`check_matrix_names`), the duplicate policy over all inputs (`_check_owners`; `given`: path, samples,
    channel sets per input), and the sheet against every input's samples (`check_sheet`, now complete:
    sheet samples that no input holds, input samples without a row; the `unreadable` files skipped under
    on_error='skip' are owned by their sheet rows). `results`: the files read (the matrices among them).
    Returns the sheet's notes (lenient policy)."""
    check_matrix_names(results)
    _check_owners(given, sheet, options)
    if sheet is None:
        return []
    from nanog1.genomics.samplesheet import check_sheet

    routed = {str(p.path) for p in plans if p.kind in VCF_KINDS}
    expected, complete = _unreadable_owners(unreadable, sheet)
    owners = {path: samples for path, samples, _ in given} | expected
    return check_sheet(sheet, inputs, owners, options.sheet_policy, complete, routed)


def _planned_sets(plan: FilePlan, reference: Path | None) -> tuple[str, ...]:
    """The channel sets a call file will give before its records are read, as `process_file` sets them
    (all five with a reference, the allele-only ones without; a Strelka2 SNV or indel file's own share), so
    that --check-only refuses no pair that ingest accepts, save one known only once read: calls on contigs
    the FASTA lacks drop SBS96/ID83 from their file's sets there."""
    from nanog1.genomics.channels import CHANNEL_SETS, NO_REFERENCE_SETS

    covers = COVERS[None]
    if plan.kind == "vcf":
        from nanog1.genomics.vcf import file_split

        found = file_split(plan.path)
        covers = COVERS[found[0]] if found is not None else covers
    return tuple(s for s in (CHANNEL_SETS if reference is not None else NO_REFERENCE_SETS) if s in covers)


def ingest(
    inputs: list[Path],
    reference: Path | None,
    sample_sheet: Path | None,
    out: Path,
    options: IngestOptions = IngestOptions(),
) -> IngestReport:
    """Ingest variant files and/or catalogue matrices into one cohort .h5ad (written atomically).

    Nothing is written when a check fails: the plan (before reading), a file's read, the loss limit,
    or the post-read checks of samples known only after reading (catalogue matrices).
    """
    from nanog1.genomics.cohort import assemble_cohort, write_cohort
    from nanog1.genomics.samplesheet import load_sample_sheet

    inputs = drop_index_files([Path(p) for p in inputs])
    check_not_an_input(out, [*inputs, reference, sample_sheet, options.genes])
    sheet = load_sample_sheet(sample_sheet) if sample_sheet is not None else None
    plans, notes = plan_inputs(inputs, sheet, options, skip_unreadable=options.on_error == "skip")
    if reference is not None:
        check_reference_lengths([p.path for p in plans if p.kind == "vcf"], reference)
        check_maf_builds([p.path for p in plans if p.kind == "maf"], reference)
    results = _run_all(plans, reference, options)
    _check_losses(results, options, plans, reference)
    _locate_malformed(results, plans, reference, options)
    if any(p.samples is None for p in plans):  # matrices (or unreadable files): samples known only now
        given = [(r.path, list(r.samples), r.channel_sets) for r in results]
        unreadable = [Path(r.path) for r in results if r.skips.get("unreadable_file")]
        more = check_read_samples(inputs, plans, given, results, unreadable, sheet, options)
        notes = list(dict.fromkeys(notes + more))
    samples, counts, order = _merge_counts(results)
    measured = measured_per_sample(results, order)
    present = _measured_sets(measured)
    skips: Counter = Counter()
    for r in results:
        skips.update(r.skips)
    types = [r.cancer_types for r in results if r.cancer_types is not None]
    cancer_types = pd.concat(types).groupby(level=0).first() if types else None
    tokens = _merge_tokens(results, order, reference, options.bin_size, options.genes)
    accounting = _accounting(results)
    provenance = _provenance(inputs, results, reference, options, present, skips)
    provenance["accounting"] = accounting
    provenance["genome_build"] = genome_builds(plans, results, samples, reference)
    notes += _protein_note(results, provenance)
    if sheet is not None:
        provenance["sample_sheet"] = {"path": str(sheet.path), "sha256": file_sha256(sheet.path),
                                      **({"notice": sheet.notice} if sheet.notice else {})}
    adata = assemble_cohort(
        counts,
        samples,
        provenance,
        sheet=sheet.samples if sheet is not None else None,
        cancer_types=cancer_types,
        tokens=tokens,
    )
    mark_measured(adata, measured)
    _mark_partial(adata, results)
    notes += declare_not_measured(adata, options.not_measured)
    notes += left_out_of_context_notes(adata, results)
    notes += _malformed_notes(results)
    notes += _filter_notes(results)
    notes += _unmeasured_notes(adata)
    notes += [f"{t}: {text}" for t, _, text in unstated_snv_only(adata)]
    noted_files = unstated_indel_free_files(adata)
    notes += [f"{Path(f).name}: {text}" for f, _, _, text in noted_files]
    run = unstated_indel_free_run(adata, noted_files)
    notes += [run[-1]] if run else []
    write_cohort(adata, out)
    files = [_file_row(r) for r in results]
    empty = [s for s, flag in zip(samples, adata.obs["no_mutations"], strict=True) if flag]
    n_events = int(len(tokens["channel"]))
    meta = adata.uns["nanog1"]
    return IngestReport(
        Path(out),
        files,
        skips,
        len(samples),
        n_events,
        empty,
        list(meta["channel_sets_present"]),
        dict(meta["channel_sets"]),
        accounting,
        notes,
        _missing_contigs(results),
        Counter(b or "unknown" for b in meta["genome_build"]["genome_build"]),
    )


#: Why a file of another genome build than the FASTA is refused (VCF contig lengths, a MAF's NCBI_Build).
OTHER_BUILD = ("the calls were made on another genome build than this FASTA, so their trinucleotide contexts "
               "would be read at the wrong places; give the FASTA they were called on")


def check_reference_lengths(vcfs: list[Path], reference: Path, lengths: dict[str, int] | None = None) -> None:
    """Refuse a VCF whose header gives a contig another length than the FASTA does (build.length_conflict):
    its calls were made on another genome build, and classifying them against this FASTA would read the
    wrong bases as their context. Header lines only are read, before any record. `lengths`: the FASTA's
    contig lengths where the caller has them (--check-only reads its .fai), else from the opened reference."""
    from nanog1.genomics.build import build_from_lengths, length_conflict, vcf_header_facts

    if not vcfs:
        return
    if lengths is None:
        from nanog1.genomics.reference import open_reference

        lengths = open_reference(reference).lengths
    for path in vcfs:
        contigs = vcf_header_facts(path)[0]
        conflict = length_conflict(contigs, lengths)
        if conflict is None:
            continue
        name, theirs, ours = conflict
        builds = [build_from_lengths(sizes)[0] for sizes in (contigs, lengths)]
        vcf_says, fasta_says = (f" ({b})" if b else "" for b in builds)
        raise InputError(
            str(path), None,
            f"contig {name} is {theirs:,} bp in the VCF header{vcf_says} but {ours:,} bp in the reference "
            f"{reference}{fasta_says}: {OTHER_BUILD}",
        )


def check_maf_builds(mafs: list[Path], reference: Path, lengths: dict[str, int] | None = None) -> None:
    """Refuse a MAF whose NCBI_Build names another build than the FASTA's contig lengths do
    (build.build_from_lengths), as `check_reference_lengths` refuses a VCF; and a MAF whose records state two
    builds (one FASTA is one build), naming the line of the first record that differs. A MAF stating no
    build, or a FASTA whose lengths tell none (a toy genome), passes: nothing to compare. Only the
    NCBI_Build column is read, before any record is classified. `lengths`: as `check_reference_lengths`."""
    from nanog1.genomics.build import KNOWN_BUILDS, build_from_lengths
    from nanog1.genomics.maf import maf_build_change

    if not mafs:
        return
    if lengths is None:
        from nanog1.genomics.reference import open_reference

        lengths = open_reference(reference).lengths
    fasta, evidence = build_from_lengths(lengths)
    fasta_says = f"{fasta}, {evidence}" if fasta else evidence
    for path in mafs:
        stated, change = maf_build_change(path)
        if change is not None:
            line, build, value, first_line = change
            raise InputError(
                str(path), line,
                f"NCBI_Build {value} ({build}) where the records above state {stated} (from line "
                f"{first_line}): one MAF of two genome builds, against one reference {reference} "
                f"({fasta_says}); split the MAF by NCBI_Build and give each part the FASTA it was called on",
            )
        if fasta is not None and stated in KNOWN_BUILDS and stated != fasta:
            raise InputError(
                str(path), None,
                f"NCBI_Build is {stated} but the reference {reference} is {fasta} ({evidence}): "
                f"{OTHER_BUILD}",
            )


def check_matrix_names(results: list[FileResult]) -> None:
    """Refuse catalogue matrices of different channel sets that share no sample name (an SBS96 matrix
    of A, B and an ID83 matrix of A_id, B_id): merged by name they give separate tumours, each recorded
    as measuring both sets, so each would read the other matrix's set as zero mutations (not as
    unmeasured). Matrices of one set, or sharing some names, are merged as before."""
    matrices = [r for r in results if r.kind == "matrix" and r.samples]
    for i, a in enumerate(matrices):
        for b in matrices[i + 1:]:
            if set(a.channel_sets) == set(b.channel_sets) or set(a.samples) & set(b.samples):
                continue
            sa, sb = "+".join(a.channel_sets), "+".join(b.channel_sets)
            raise UserError(
                f"{a.path} ({sa} matrix, {len(a.samples)} sample(s): {_few(a.samples)}) and {b.path} ({sb} "
                f"matrix, {len(b.samples)}: {_few(b.samples)}) share no sample names: they would be typed as "
                f"{len(a.samples)} + {len(b.samples)} separate tumours, each reading the other matrix's set "
                "as zero mutations; rename the columns to join them (one name per tumour in both), or give "
                "each matrix on its own"
            )


def _few(names: list[str], k: int = 3) -> str:
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


def genome_builds(plans: list[FilePlan], results: list[FileResult], samples: list[str],
                  reference: Path | None) -> pd.DataFrame:
    """uns['nanog1']['genome_build']: per sample (cohort order) the genome build its calls are on
    ('' = not known) and the evidence ('<file>: <source>: <detail>'): the file's own statement (a VCF
    header's contig lengths or names, nanog1.genomics.build; a MAF's NCBI_Build), else the reference
    FASTA's contig lengths (the calls were classified against it). Catalogue matrices state none. A
    sample whose files state different builds is an error naming them."""
    from nanog1.genomics.build import build_from_lengths, vcf_build
    from nanog1.genomics.maf import maf_builds

    fasta: tuple[str | None, str] = (None, "")
    if reference is not None:
        from nanog1.genomics.reference import open_reference

        fasta = build_from_lengths(open_reference(reference).lengths)
    found: dict[str, list[tuple[str, str, str]]] = {}  # sample -> (build, evidence, file)
    for plan, result in zip(plans, results, strict=True):
        if result.kind == "matrix" or not result.samples:
            continue
        name = plan.path.name
        per_sample: dict[str, tuple[str | None, str]] = {}
        if result.kind == "vcf":
            build, why = vcf_build(plan.path)
            per_sample = dict.fromkeys(result.samples, (build, f"{name}: {why}"))
        elif result.kind == "maf":
            stated = maf_builds(plan.path)
            per_sample = {s: (stated[s], f"{name}: NCBI_Build: {stated[s]}") if s in stated
                          else (None, f"{name}: no NCBI_Build") for s in result.samples}
        else:
            per_sample = dict.fromkeys(result.samples, (None, f"{name}: states no build"))
        for sample, (build, why) in per_sample.items():
            if build is None and fasta[0] is not None:
                build, why = fasta[0], f"{name}: reference FASTA {fasta[1]}"
            found.setdefault(sample, []).append((build or "", why, str(plan.path)))
    rows = []
    for sample in samples:
        stated = found.get(sample, [])
        builds = {b for b, _, _ in stated if b}
        if len(builds) > 1:
            files = ", ".join(f"{f} {b}" for b, _, f in stated if b)
            raise UserError(f"sample {sample!r} has calls on different genome builds ({files}): give "
                            "files of one build per sample")
        build = builds.pop() if builds else ""
        why = next((w for b, w, _ in stated if b == build), "") if stated else ""
        rows.append((sample, build, why))
    table = pd.DataFrame(rows, columns=["sample", "genome_build", "evidence"], dtype=object)
    table.index = table.index.astype(str)
    return table


def _protein_note(results: list[FileResult], provenance: dict) -> list[str]:
    """Where an input had a protein-change column: how many events got a codon key and how many none,
    by reason (nanog1.genomics.protein), in the provenance (`protein_change`) and as a report note."""
    from nanog1.genomics.protein import MISSING_REASONS, tally

    events = [r.events for r in results if r.events is not None]
    if not any("protein" in ev.annotations for ev in events):
        return []
    counts = tally([ev.annotations.get("protein", np.full(len(ev.sample), "", object)) for ev in events])
    provenance["protein_change"] = {k: int(counts[k]) for k in ("codon", *MISSING_REASONS)}
    total = sum(counts.values())
    missing = ", ".join(f"{counts[k]:,} {k}" for k in MISSING_REASONS)
    return [f"protein change: {counts['codon']:,} of {total:,} events have a codon key ({missing})"]


def _missing_contigs(results: list[FileResult]) -> Counter:
    total: Counter = Counter()
    for r in results:
        total.update(r.missing_contigs)
    return total


def mark_measured(adata, measured: np.ndarray) -> None:
    """Record the sets each sample measured (`measured_per_sample`): `obsm['measured_sets']` (bool,
    samples x sets), and in `uns['nanog1']['channel_sets']` a set measured for some samples but not all
    as 'partial', exact for the samples `uns['nanog1']['exact_for']` lists (the sets measured for every
    sample stay 'exact', so a reader of the cohort as a whole never reads an unmeasured set as zeros)."""
    from nanog1.genomics.channels import PARTIAL
    from nanog1.schema import MEASURED_SETS, SET_NAMES

    adata.obsm[MEASURED_SETS] = pd.DataFrame(measured, index=adata.obs_names.copy(), columns=list(SET_NAMES))
    meta = adata.uns["nanog1"]
    status = dict(meta["channel_sets"])
    exact_for = dict(meta.get("exact_for") or {})
    for j, name in enumerate(SET_NAMES):
        column = measured[:, j]
        if column.any() and not column.all():
            status[name] = PARTIAL
            exact_for[name] = np.asarray(adata.obs_names[column], dtype=object)
    meta["channel_sets"] = status
    if exact_for:
        meta["exact_for"] = exact_for


def _refuse_nothing_left(was: np.ndarray, measured: np.ndarray, sets: tuple[str, ...], names) -> None:
    """A UserError when `--not-measured sets` leaves tumours that measured something with no measured set
    (an SBS96 matrix declared `--not-measured substitutions`, alone or beside VCFs): ingest wrote a cohort
    of nothing, and predict typed such tumours from no data at all (each the same type, held back only by
    a near-1 threshold). The per-name check (schema.parse_not_measured) cannot see it: what is left depends
    on what each tumour's inputs measured."""
    from nanog1.schema import SET_NAMES, describe_sets

    stranded = np.flatnonzero(was.any(axis=1) & ~measured.any(axis=1))
    if not len(stranded):
        return
    had = [n for n, any_ in zip(SET_NAMES, was[stranded].any(axis=0), strict=True) if any_]
    shown = ", ".join(str(names[i]) for i in stranded[:3]) + (", ..." if len(stranded) > 3 else "")
    raise UserError(f"--not-measured {'+'.join(sets)}: the inputs of {len(stranded)} of {len(was)} tumour(s) "
                    f"({shown}) measured only {describe_sets(had)}, so nothing would be left to read for "
                    "them; name only the sets the calls lack (or give those inputs in a run of their own)")


def declare_not_measured(adata, sets) -> list[str]:
    """Record the channel sets `sets` (names or groups, schema.parse_not_measured) as unmeasured for every
    tumour of `adata`, as the user declared them (`--not-measured`: a substitution-only VCF that does not
    say so in its header, a caller run in SNV mode): the same per-sample record a Strelka2 SNV file alone
    gives (`obsm['measured_sets']`, `mark_measured`; the models key-pad them, never read zeros), the sets
    'not_computable' (or 'partial') in `uns['nanog1']['channel_sets']`, and obs['not_measured'] (the sets
    declared, '+'-joined; predict states the reason, schema.DECLARED_WHY). Returns the notes: what was
    declared, and the tumours that hold counts in a declared set all the same (kept in X, masked)."""
    from nanog1.genomics.channels import NOT_COMPUTABLE, set_slice
    from nanog1.genomics.cohort import channel_set_status
    from nanog1.schema import (
        DECLARED_UNMEASURED,
        SET_NAMES,
        channel_sets_present,
        describe_sets,
        measured_sets_per_sample,
        parse_not_measured,
    )

    sets = parse_not_measured(sets)
    if not sets or not adata.n_obs:
        return []
    was = measured_sets_per_sample(adata).to_numpy(dtype=bool)
    measured = was.copy()
    measured[:, [SET_NAMES.index(s) for s in sets]] = False
    _refuse_nothing_left(was, measured, sets, adata.obs_names)
    meta = adata.uns.setdefault("nanog1", {})
    if not meta.get("channel_sets"):
        meta["channel_sets"] = channel_set_status(channel_sets_present(adata))
    meta["channel_sets"] = {**dict(meta["channel_sets"]), **dict.fromkeys(sets, NOT_COMPUTABLE)}
    meta["channel_sets_present"] = [s for s in meta.get("channel_sets_present", SET_NAMES) if s not in sets]
    if meta.get("exact_for"):
        meta["exact_for"] = {k: v for k, v in dict(meta["exact_for"]).items() if k not in sets}
    mark_measured(adata, measured)
    # object first: a categorical column (a cohort of several tumours) cannot take "" as a fill value
    before = (adata.obs[DECLARED_UNMEASURED].astype(object).fillna("").astype(str)
              if DECLARED_UNMEASURED in adata.obs else pd.Series("", index=adata.obs_names))
    adata.obs[DECLARED_UNMEASURED] = ["+".join(s for s in SET_NAMES if s in set(b.split("+")) | set(sets))
                                      for b in before]
    notes = [f"{describe_sets(sets)} declared not measured (--not-measured) for all {adata.n_obs} tumour(s): "
             "recorded as unmeasured (obsm['measured_sets']), never as zero mutations"]
    counts = np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X)
    for s in sets:
        held = counts[:, set_slice(s)].sum(axis=1)
        if (held > 0).any() and s not in DERIVED_FROM:  # a folded set repeats its source
            who = ", ".join(f"{t} {int(n)}" for t, n in zip(adata.obs_names[held > 0], held[held > 0],
                                                              strict=True))
            notes.append(f"{s} declared not measured but counted in the input ({who}): kept in X and masked "
                         "as unmeasured all the same")
    return notes


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


def _mark_partial(adata, results: list[FileResult]) -> None:
    """Record the calls on contigs absent from the FASTA (see `partial_reference`) by contig in
    `uns['nanog1']['without_context']` ({'contig_not_in_reference': {contig: calls}}); the sets they
    left inexact for their samples are in the per-sample record (`mark_measured`: SBS96/ID83 'partial',
    exact for the samples in `uns['nanog1']['exact_for']`, not used as a whole by fitting and the models),
    and 'partial' (exact for no sample) where every sample's calls fell back beyond the tolerance
    (WITHOUT_CONTEXT_TOLERANCE; a sample within it keeps the set exact, `left_out_of_context_notes`)."""
    from nanog1.genomics.channels import NOT_COMPUTABLE, PARTIAL
    from nanog1.genomics.partial_reference import context_tolerated

    missing = _missing_contigs(results)
    if not missing:
        return
    meta = adata.uns["nanog1"]
    status, exact_for = dict(meta["channel_sets"]), dict(meta.get("exact_for") or {})
    order = {str(s): i for i, s in enumerate(adata.obs_names)}
    for source, (left, total) in context_totals(results, order).items():
        fell_back = not context_tolerated(left, total).all()
        if fell_back and status[source] == NOT_COMPUTABLE:
            status[source] = PARTIAL
            exact_for[source] = np.asarray([], dtype=object)
    meta["channel_sets"], meta["exact_for"] = status, exact_for
    meta["without_context"] = {WITHOUT_CONTEXT: {str(k): int(v) for k, v in missing.items()}}


#: uns['nanog1'] key of the calls left out of a context set that stayed exact (left_out_of_context_notes).
LEFT_OUT_OF_CONTEXT = "left_out_of_context"
#: Each context set's kind of call, in the notes.
_CONTEXT_KIND = {"SBS96": "substitutions", "ID83": "indels"}


def left_out_of_context_notes(adata, results: list[FileResult]) -> list[str]:
    """The samples whose calls on contigs the FASTA lacks are within WITHOUT_CONTEXT_TOLERANCE of their
    substitutions (indels), so their SBS96 (ID83) stayed exact with those calls left out of it (counted in
    SBS6/ID12 all the same): recorded in `uns['nanog1']['left_out_of_context']` ({set: {'sample',
    'left_out', 'calls', 'contigs'}}, parallel arrays; 'tolerance'; predict_notes.left_out_phrase reads
    it) and returned as notes naming the calls, contigs and share, so a spectrum that lacks them is never
    silent. Sets the sample does not measure for another reason (a declared `--not-measured`) are not
    claimed exact."""
    from nanog1.genomics.partial_reference import context_tolerated
    from nanog1.schema import measured_sets_per_sample

    if not _missing_contigs(results):
        return []
    samples = [str(s) for s in adata.obs_names]
    measured = measured_sets_per_sample(adata)
    record, notes = {}, []
    for source, (left, total) in context_totals(results, {s: i for i, s in enumerate(samples)}).items():
        kept = (left > 0) & context_tolerated(left, total) & measured[source].to_numpy(dtype=bool)
        rows = np.flatnonzero(kept)
        if not len(rows):
            continue
        derived = next(d for d, src in DERIVED_FROM.items() if src == source)
        where = _contigs_by_sample(results, derived)
        record[source] = {"sample": np.asarray([samples[i] for i in rows], dtype=object),
                          "left_out": left[rows].astype(np.int64), "calls": total[rows].astype(np.int64),
                          "contigs": np.asarray([_named(where[samples[i]]) for i in rows], dtype=object)}
        notes += _left_out_lines(where, samples, rows, left, total, source, derived)
    if record:
        adata.uns["nanog1"][LEFT_OUT_OF_CONTEXT] = {**record, "tolerance": WITHOUT_CONTEXT_TOLERANCE}
    return notes


def _left_out_lines(where: dict[str, Counter], samples, rows, left, total, source: str, derived: str
                    ) -> list[str]:
    """One note per sample (a cohort of more than three: one for all) of the calls left out of `source`;
    `where`: each sample's contigs of those calls (`_contigs_by_sample`)."""
    kind, tol = _CONTEXT_KIND[source], f"{100 * WITHOUT_CONTEXT_TOLERANCE:g} %"
    tail = f"their {derived} class is counted and {source} stays exact"
    if len(rows) <= 3:
        return [f"{samples[i]}: {int(left[i]):,} call(s) on {_named(where[samples[i]])} "
                f"(not in the reference) left out of {source} ({100 * left[i] / total[i]:.2f} % of its "
                f"{int(total[i]):,} {kind}, within the {tol} tolerance); {tail}" for i in rows]
    worst = max(100 * left[i] / total[i] for i in rows)
    names = _named(sum((where[samples[i]] for i in rows), Counter()))
    return [f"{len(rows)} tumours: {int(left[rows].sum()):,} call(s) on {names} (not in the reference) left "
            f"out of {source} (at most {worst:.2f} % of a tumour's {kind}, within the {tol} tolerance; "
            f"uns['nanog1']['{LEFT_OUT_OF_CONTEXT}']); {tail} for them"]


def _contigs_by_sample(results: list[FileResult], derived: str) -> defaultdict[str, Counter]:
    """Per sample, the contigs of its calls classified without context in `derived` (SBS6, ID12) and how
    many: on the reference path those are the events whose channel lies in the derived set itself. One
    pass over the files (a cohort of thousands of tumours each with a chrM call reads each file once)."""
    from nanog1.genomics.channels import set_slice

    block, out = set_slice(derived), defaultdict(Counter)
    for r in results:
        ev = r.events
        if r.without_context is None or ev is None or ev.contigs is None:
            continue
        pick = (ev.channel >= block.start) & (ev.channel < block.stop)
        pairs = zip(ev.sample[pick].tolist(), ev.contig[pick].tolist(), strict=True)
        for (i, c), n in Counter(pairs).items():
            out[r.samples[i]][str(ev.contigs[c])] += n
    return out


def _named(found: Counter) -> str:
    """Up to five contigs, commonest first ('MT, GL000220.1, ...')."""
    names = [c for c, _ in found.most_common(5)]
    return ", ".join(names) + (", ..." if len(found) > 5 else "")


def split_file_reasons(adata) -> dict[str, tuple[list[str], str]]:
    """Per sample whose every input file holds one kind of call only (a Strelka2 SNV file without its
    indel file): the sets none of its files covers and why ({'T1': (['ID83', 'ID12'], 'Strelka2 SNV file
    only')}). From the provenance's `inputs` (column `content`) and accounting tables (which files fed
    which sample); {} without them."""
    from nanog1.genomics.vcf import SPLIT_KIND

    meta = adata.uns.get("nanog1") or {}
    inputs, acc = meta.get("inputs"), meta.get("accounting")
    if not isinstance(inputs, pd.DataFrame) or "content" not in inputs or not isinstance(acc, pd.DataFrame):
        return {}
    content = inputs["content"].fillna("").astype(str).to_numpy()
    files: dict[str, set[str]] = {}
    for file, sample in zip(acc["file"].astype(int), acc["sample"].astype(str), strict=True):
        if sample and 0 <= file < len(content):
            files.setdefault(sample, set()).add(content[file])
    kinds = SPLIT_KIND
    out = {}
    for sample, held in files.items():
        if held and all(c in kinds for c in held):
            covered = {s for c in held for s in COVERS[kinds[c]]}
            out[sample] = ([s for s in COVERS[None] if s not in covered], " + ".join(sorted(held)) + " only")
    return out


def without_context_reasons(adata) -> dict[str, tuple[list[str], str]]:
    """Per sample some of whose calls lie on contigs the reference lacks (counted without context, so its
    SBS96 and ID83 are not exact: partial_reference): (['SBS96', 'ID83'], why), the why saying how many
    calls and on which contigs ('5 calls on contigs the reference lacks (chrM 1, ...)'). From the
    accounting's `counted_without_context` and the provenance's `without_context`; {} without them. A set
    the sample measured all the same (its calls there within WITHOUT_CONTEXT_TOLERANCE, left out of it:
    `left_out_of_context_notes`) is not named; a sample left with none is not listed."""
    from nanog1.schema import measured_sets_per_sample

    meta = adata.uns.get("nanog1") or {}
    acc = meta.get("accounting")
    if not isinstance(acc, pd.DataFrame) or "counted_without_context" not in acc:
        return {}
    per = acc.groupby(acc["sample"].astype(str))["counted_without_context"].sum()
    contigs = Counter({str(k): int(v) for k, v in
                       dict(dict(meta.get("without_context") or {}).get(WITHOUT_CONTEXT, {})).items()})
    shown = ", ".join(f"{c} {n:,}" for c, n in contigs.most_common(3)) + (", ..." if len(contigs) > 3 else "")
    where = f" ({shown})" if shown else ""
    measured = measured_sets_per_sample(adata)
    out = {}
    for sample, n in per.items():
        sets = [s for s in ("SBS96", "ID83") if sample not in measured.index or not measured.at[sample, s]]
        if sample and n > 0 and sets:
            out[sample] = (sets, f"{int(n):,} of its calls on contigs the reference lacks{where}, counted "
                                 "without sequence context")
    return out


def _unmeasured_notes(adata) -> list[str]:
    """One note per kind of split file: which samples lack which sets, recorded as unmeasured."""
    from nanog1.schema import describe_sets, measured_sets_per_sample

    reasons = split_file_reasons(adata)
    if not reasons:
        return []
    measured = measured_sets_per_sample(adata)
    groups: dict[tuple[str, str], list[str]] = {}
    for sample, (uncovered, why) in reasons.items():
        if sample in measured.index:
            row = measured.loc[sample]
            missing = [s for s in uncovered if not row[s]]
            if missing:
                groups.setdefault((describe_sets(missing), why), []).append(sample)
    return [f"{what} not measured for {', '.join(samples[:5])}{' …' if len(samples) > 5 else ''} ({why}): "
            "recorded as unmeasured (obsm['measured_sets']), never as zero mutations; give the tumour's "
            "other file with a sample sheet naming both" for (what, why), samples in groups.items()]


def _file_row(result: FileResult) -> dict:
    """One file's line of the summary: its accounting rows summed (a matrix: its rows, all counted)."""
    acc = result.accounting
    counted = int(acc["counted"].sum()) if acc is not None else result.records
    return {
        "path": result.path,
        "kind": result.kind,
        "records": int(acc["read"].sum()) if acc is not None else result.records,
        "counted": counted,
        "skipped": int(acc["skipped"].sum()) if acc is not None else 0,
        "samples": len(result.samples),
        "status": result.status,
        "skips": dict(result.skips),
        "filter_values": dict(result.filter_values),
    }


def _accounting(results: list[FileResult]) -> pd.DataFrame:
    """Per (file, sample): read = counted + skipped, and skipped by reason (`uns['nanog1']['accounting']`).

    Catalogue matrices carry counts, not calls: they have no rows here.
    """
    frames = []
    for i, r in enumerate(results):
        if r.accounting is None:
            continue
        frame = r.accounting.reset_index()
        frame.insert(0, "file", str(i))
        frames.append(frame)
    if not frames:
        return pd.DataFrame({"file": [], "sample": [], "read": [], "counted": [], "skipped": []})
    table = pd.concat(frames, ignore_index=True)
    totals = [c for c in ACCOUNTING_TOTALS if c in table.columns]
    reasons = sorted([c for c in table.columns if c not in ("file", "sample", *totals)], key=_reason_order)
    table[totals + reasons] = table[totals + reasons].fillna(0)
    table = table[["file", "sample", *totals, *reasons]]
    table = table.astype({c: np.int64 for c in (*totals, *reasons)})
    table["sample"] = table["sample"].astype(str)
    table.index = table.index.astype(str)
    return table
