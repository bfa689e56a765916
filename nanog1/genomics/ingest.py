"""Ingestion orchestration: input files -> classified events -> one cohort .h5ad, with a report.

Before any record is read, the inputs are planned (`plan_inputs`): a file named twice, an empty
file, a VCF whose tumour column cannot be told, a sample sheet that disagrees with the inputs, and
a sample given by two files are errors naming the files. Each input (VCF/BCF, MAF, SigProfiler text,
or a ready catalogue matrix) is then processed on its own, in worker processes with `jobs > 1`
(their errors reach the user as in one process); results are merged by sample name. Nothing is
dropped silently: every call is counted or skipped by reason, and a file that loses more than
`max_skip_fraction` of its calls (FILTER and somatic-status choices aside) is an error.

Every call's fate is in one accounting table (read = counted + skipped by reason, per file and sample;
`accounting.py` says what its rows and columns hold). Kept in modules of their own, for ingest, predict and
cohort merge alike: which channel sets each sample measured (`measured_sets.py`), the notes on tumours whose
files may lack indels or doublets without saying so (`unstated_sets.py`), and the genome-build checks
against the FASTA (`build_checks.py`). This module plans the inputs, runs the files and assembles the cohort.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

import nanog1
from nanog1.errors import UserError
from nanog1.genomics.accounting import (
    accounting_table,
    file_accounting,
    file_row,
    reason_order,
    tally_accounting,
    with_free_part,
)
from nanog1.genomics.build_checks import (
    check_maf_builds,
    check_reference_lengths,
    check_stated_genomes,
    genome_builds,
)
from nanog1.genomics.channels import CHANNEL_SETS, N_CHANNELS
from nanog1.genomics.events import Events
from nanog1.genomics.measured_sets import (
    COVERS,
    all_missing_contigs,
    declare_not_measured,
    left_out_of_context_notes,
    mark_measured,
    mark_partial,
    measured_per_sample,
    sets_measured_for_all,
    unmeasured_notes,
)
from nanog1.genomics.partial_reference import WITHOUT_CONTEXT
from nanog1.genomics.skip_policy import (
    MAX_SKIP_DEFAULT,
    MAX_SKIP_FLAG,
    ON_ERROR_CHOICES,
    ON_ERROR_DEFAULT,
    spell_filter_rule,
)
from nanog1.genomics.unstated_sets import (
    unstated_indel_free_files,
    unstated_indel_free_run,
    unstated_snv_only,
)
from nanog1.genomics.variants import InputError, filter_breakdown, top_filter_values
from nanog1.io import check_not_an_input, file_sha256
from nanog1.progress import read_all


@dataclass(frozen=True)
class IngestOptions:
    """What to keep and how: FILTER policy, error policy, SigProfiler compatibility, parallelism."""

    filter: str = "PASS"
    on_error: str = ON_ERROR_DEFAULT
    sigprofiler_compatible: bool = False
    jobs: int = 1
    bin_size: int = 1_000_000
    progress: bool = False
    #: seconds between plain progress lines in a log (no bar: not a terminal); 0: none (a bar shows, or -q)
    log_every: float = 0.0
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
        its files (`measured_sets.measured_per_sample`, `measured_sets.context_totals`)."""
        if self.without_context is None or self.kind == "matrix":
            return self.channel_sets
        covers = _covers(self)
        return tuple(s for s in CHANNEL_SETS if s in covers)


def _covers(result: FileResult) -> tuple[str, ...]:
    from nanog1.genomics.vcf import SPLIT_KIND

    return COVERS[SPLIT_KIND.get(result.content)]


@dataclass
class IngestReport:
    """Summary of an ingest run: per-file reads and skips by reason, the accounting table (see
    `nanog1.genomics.accounting`) and the cohort written."""

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
    read_all(len(table) + sum(table.skips.values()))  # progress: a large file's classification follows
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
    accounting = file_accounting(events.accounting, table.skips, events.samples)
    if got.free_accounting is not None:
        accounting = with_free_part(accounting, tally_accounting(got.free_accounting))
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
        accounting=tally_accounting(events.tally.table) if events.tally is not None else None,
        content=content,
        first_lines=events.first_lines,
    )


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

    from nanog1.progress import Ticker

    bar = tqdm(total=len(plans), unit="file", desc="ingest", disable=not options.progress)
    every = 0.0 if options.progress else options.log_every  # a bar, or lines in a log
    ticker = Ticker(f"{options.command}: read", len(plans), "files", every)
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
                        ticker.tick()
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
        else:
            for i, p in enumerate(plans):
                results[i] = _guarded(p.path, reference, options, p.vcf, bar if options.progress else None)
                bar.update()
                ticker.tick()
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


#: Seconds between a terminal bar's updates of how far into its file the reader is (`_watched`).
BAR_EVERY = 0.5


def _watched(path: Path, options: IngestOptions, bar=None):
    """How far the reader is into `path`, for `progress.reading`: the bar's postfix (`bar`, in the one
    process that draws it), or a line every `log_every` seconds in a log (a worker's too); None when neither
    is asked (-q, or a bar drawn in another process, which counts the files)."""
    from nanog1.progress import FileTicker

    if bar is not None:
        return FileTicker(options.command + ":", str(path), BAR_EVERY, bar)
    if options.log_every > 0 and not options.progress:
        return FileTicker(options.command + ":", str(path), options.log_every)
    return None


def _guarded(path: Path, reference: Path | None, options: IngestOptions, vcf: dict, bar=None) -> FileResult:
    """process_file, turning an unreadable file into a counted failure under on_error='skip'; how far its
    reader is shows as `_watched` says (`bar`: the terminal's, when this process draws it)."""
    from nanog1.progress import reading

    try:
        with reading(_watched(path, options, bar)):
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
    from nanog1.io import missing_input

    for p in inputs:
        if not p.exists():
            raise InputError(str(p), None, missing_input(p))
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
        "skips": {k: int(skips[k]) for k in sorted(skips, key=reason_order)},
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
        check_stated_genomes([(p.path, p.kind) for p in plans if p.kind in ("headerless", "text")], reference)
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
    present = sets_measured_for_all(measured)
    skips: Counter = Counter()
    for r in results:
        skips.update(r.skips)
    types = [r.cancer_types for r in results if r.cancer_types is not None]
    cancer_types = pd.concat(types).groupby(level=0).first() if types else None
    tokens = _merge_tokens(results, order, reference, options.bin_size, options.genes)
    accounting = accounting_table(results)
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
    mark_partial(adata, results)
    notes += declare_not_measured(adata, options.not_measured)
    notes += left_out_of_context_notes(adata, results)
    notes += _malformed_notes(results)
    notes += _filter_notes(results)
    notes += unmeasured_notes(adata)
    notes += [f"{t}: {text}" for t, _, text in unstated_snv_only(adata)]
    noted_files = unstated_indel_free_files(adata)
    notes += [f"{Path(f).name}: {text}" for f, _, _, text in noted_files]
    run = unstated_indel_free_run(adata, noted_files)
    notes += [run[-1]] if run else []
    write_cohort(adata, out)
    files = [file_row(r) for r in results]
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
        all_missing_contigs(results),
        Counter(b or "unknown" for b in meta["genome_build"]["genome_build"]),
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


