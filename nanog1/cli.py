"""The one command-line entry, `nanog1 …`.

Each sub-command imports its heavy modules lazily so that `nanog1 --help` stays fast.
Areas add their commands in their own section below.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
import threading
from pathlib import Path

import typer
from typer.core import TyperCommand, TyperGroup

from nanog1.encoder.prior_shift import ADAPT_PRIORS_HELP  # the Predict page's wording too
from nanog1.errors import DEBUG_ENV, UserError, debug_enabled, describe
from nanog1.genomics.channels import NO_DOUBLET_MIN_SBS, NOT_MEASURED_HELP, SNV_ONLY_MIN_SBS
from nanog1.genomics.skip_policy import (  # one wording for ingest, predict and the dashboard's Predict page
    MAX_SKIP_DEFAULT,
    MAX_SKIP_FLAG,
    MAX_SKIP_HELP,
    ON_ERROR_DEFAULT,
    ON_ERROR_HELP,
)

#: `--tracking-uri` of every training command (nanog1.tracking.default_tracking_uri).
TRACKING_HELP = "MLflow store (default: MLFLOW_TRACKING_URI, else sqlite mlflow.db in OUT's parent folder)"


class _Commands(TyperGroup):
    """The one error wrapper of every command: an ordinary mistake (nanog1.errors) is one line on stderr and
    exit code 2, with no traceback unless --debug or NANOG1_DEBUG asks for it; a bug keeps its traceback."""

    def invoke(self, ctx):
        previous = _exit_on_sigterm()
        try:
            return super().invoke(ctx)
        except typer.BadParameter as err:  # an option's file that does not exist, a value out of range
            if debug_enabled():
                raise
            typer.echo(f"error: {err.format_message()}", err=True)  # one line, not click's usage box
            raise typer.Exit(2) from None
        except Exception as err:
            message = describe(err)
            if isinstance(err, EOFError) and (message is None or debug_enabled()):
                # click would print a bare "Aborted!" for it (its Ctrl-D answer to a prompt): a bug, traced
                raise RuntimeError(f"unexpected end of data: {err}") from err
            if message is None or debug_enabled():
                raise
            typer.echo(f"error: {message}", err=True)
            raise typer.Exit(2) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm():
    """Make SIGTERM (`kill`, a cluster's time limit or scancel) exit like Ctrl-C does, through every `with`
    and `finally`: a killed `predict` removed none of its temporary folder (the cohort it was reading, the
    decompressed copies of gzip VCFs). Returns the handler it replaced, None where none can be set (not the
    main thread)."""
    def stop(signum: int, frame) -> None:
        print("nanog1: stopped by SIGTERM; its temporary files are removed",
              file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, stop)


app = typer.Typer(
    name="nanog1",
    cls=_Commands,
    help="NanoG1: VCF/MAF cohorts to mutational catalogues, signatures and Q-Compass encoders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="show the traceback of any error (or NANOG1_DEBUG=1)"),
    quiet: bool = typer.Option(
        False, "--quiet", help="no progress lines or bars on stderr (or NANOG1_QUIET=1); results and errors"
        " still show. Bars only ever show on a terminal."),
) -> None:
    """NanoG1: VCF/MAF cohorts to mutational catalogues, signatures and Q-Compass encoders."""
    if debug:
        os.environ[DEBUG_ENV] = "1"
    if quiet:
        from nanog1.progress import QUIET_ENV

        os.environ[QUIET_ENV] = "1"


# --- general -------------------------------------------------------------------------------------
@app.command()
def info() -> None:
    """Print versions, the compute device and which fused attention kernels are available."""
    import platform

    import torch

    import nanog1

    typer.echo(f"nanog1 {nanog1.__version__}  python {platform.python_version()}  torch {torch.__version__}")
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else "cpu"
    typer.echo(f"device: {device}  threads: {torch.get_num_threads()}")
    if cuda:
        flags = {
            "flash": torch.backends.cuda.flash_sdp_enabled(),
            "mem_efficient": torch.backends.cuda.mem_efficient_sdp_enabled(),
            "math": torch.backends.cuda.math_sdp_enabled(),
        }
        typer.echo("SDPA backends enabled: " + ", ".join(k for k, v in flags.items() if v))
    typer.echo(f"Triton kernels (rank-r routing, decode, Q-Delta): {_triton_state(cuda)}")


def _triton_state(cuda: bool) -> str:
    """Whether the model core's Triton kernels can run here (CUDA sm80+ and an importable triton)."""
    import torch

    from nanog1.core.kernels.routing import triton_importable

    if not cuda:
        return "off (no CUDA GPU: the PyTorch paths run)"
    major, minor = torch.cuda.get_device_capability(0)
    if major < 8:
        return f"off (compute capability {major}.{minor}; they need 8.0 or newer)"
    if not triton_importable():
        return "off (triton is not installed: pip install 'nanog1[gpu]')"
    return "on"


@app.command()
def demo(
    cores: int = typer.Option(2, "--cores", help="CPU cores Snakemake may use"),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="show the jobs that would run; run nothing"),
) -> None:
    """Run the main job on the embedded demo data (the shipped `demo` config) through Snakemake, here."""
    from nanog1.pipeline.config import PIPELINES_DIR
    from nanog1.pipeline.runner import run_pipeline

    code = run_pipeline(PIPELINES_DIR / "demo.yaml", cores=cores, dry_run=dry_run)
    if dry_run:
        raise typer.Exit(code)
    if code != 0:
        typer.echo("The demo stopped; run `nanog1 demo` (or `make demo`) again to finish it (done steps are"
                   " kept).", err=True)
        raise typer.Exit(code)
    typer.echo(
        "\nDemo outputs in results/demo/: cohort.h5ad (catalogues, exposures, predictions, embeddings),"
        " report/report.md (+ PNG plots), run/ (model), mlflow.db + mlartifacts/ (MLflow store),"
        " benchmarks/ (time and memory per job).\n"
        "Open the dashboard with `nanog1 app` (in a checkout: `make app`); MLflow UI: "
        "`mlflow ui --backend-store-uri sqlite:///results/demo/mlflow.db`."
    )


# --- genomics: ingest --------------------------------------------------------------------------
# (section owned by the genomics: ingest area; add commands here)
def _not_computable_why(status: dict[str, str], missing: list[str], no_reference: bool) -> list:
    """The not-computable sets grouped by why: a context set (SBS96, ID83) whose folded set (SBS6, ID12)
    was measured lacks only the reference; any other is not in the inputs (a catalogue matrix holds one
    set, a Strelka2/VarScan2 file one kind of call), which a reference would not change."""
    from nanog1.genomics.channels import DERIVED_FROM

    source_of = {source: derived for derived, source in DERIVED_FROM.items()}
    by_ref = [s for s in missing if no_reference and s in source_of
              and status.get(source_of[s]) != "not_computable"]
    other = [s for s in missing if s not in by_ref]
    groups = (("no reference given", by_ref), ("not in the inputs", other))
    return [(why, sets) for why, sets in groups if sets]


@app.command("ingest")
def ingest_command(
    inputs: list[Path] = typer.Argument(
        ..., help="VCF/BCF (plain, bgzipped or gzipped), headerless .vcf (tab-separated CHROM POS ID REF ALT"
        " rows, as SigProfilerAssignment/MatrixGenerator ship: sample from the sheet or the file name, later"
        " columns ignored, every row PASS), MAF,"
        " SigProfiler text, or catalogue matrices. Files, not directories: use a glob"
        " (dir/*.vcf.gz, dir/*.maf)."
    ),
    reference: Path | None = typer.Option(
        None, "--reference", "-r",
        help="Reference FASTA. Without it: SBS6, DBS78, ID12 and tokens from the alleles alone "
        "(SBS96 too where a MAF has a CONTEXT/ref_context column); SBS96/ID83 not computable. "
        "Its .fai is checked first (rebuilt if stale, or refused if not writable); contigs are cached as "
        ".npy beside it or in ~/.cache/nanog1 (NANOG1_REFERENCE_CACHE=DIR|off). Calls on contigs it lacks "
        "are classified without context (SBS6/DBS78/ID12; SBS96/ID83 then 'partial').",
    ),
    samples: Path | None = typer.Option(
        None, "--samples", exists=True, dir_okay=False,
        help="Sample sheet (CSV/TSV): sample id and cancer type; optional file,"
        " tumor_sample and normal_sample columns tie rows to inputs (one row per file: Strelka2's SNV and"
        " indel files as one sample; the tumour column of a VCF). UTF-8, or Windows-1252/Latin-1 (read as"
        " such, with a note naming its first non-UTF-8 line)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Cohort .h5ad to write (atomically); required unless --check-only."
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Files processed in parallel."),
    filter_: str = typer.Option(
        "PASS", "--filter",
        help="PASS: keep PASS/'.' records (and a MAF's empty FILTER, as MC3's BRCA and BLCA rows have); "
        "all: any FILTER.",
    ),
    on_error: str = typer.Option(ON_ERROR_DEFAULT, "--on-error", help=ON_ERROR_HELP + "."),
    sigprofiler_compatible: bool = typer.Option(
        False, "--sigprofiler-compatible", help="Reproduce SigProfilerMatrixGenerator's matrices exactly."
    ),
    bin_size: int = typer.Option(1_000_000, "--bin-size", help="Genome bin size of the position tokens."),
    genes: Path | None = typer.Option(
        None, "--genes", exists=True, dir_okay=False,
        help="Gene annotation (BED, GTF or GFF3): names the gene of each token by interval overlap where "
        "the input has no gene column (VCFs); consequence stays unknown.",
    ),
    tumor_sample: str | None = typer.Option(
        None, "--tumor-sample", help="Tumour column of the VCFs (default: ##tumor_sample header, or TUMOR)."
    ),
    normal_sample: str | None = typer.Option(
        None, "--normal-sample", help="Normal column of the VCFs (never a cohort sample)."
    ),
    duplicates: str = typer.Option(
        "error", "--duplicates", help="A sample given by two files: error, or sum (e.g. SNV + indel files)."
    ),
    sheet_policy: str = typer.Option(
        "strict",
        "--sheet-policy",
        help="strict: every sheet row needs an input and every input a row; subset: rows may lack an"
        " input; lenient: mismatches only reported.",
    ),
    max_skip_fraction: float = typer.Option(MAX_SKIP_DEFAULT, MAX_SKIP_FLAG, help=MAX_SKIP_HELP + "."),
    not_measured: str | None = typer.Option(
        None, "--not-measured", metavar="SETS",
        help=NOT_MEASURED_HELP + ".",
    ),
    check_only: bool = typer.Option(
        False,
        "--check-only",
        help="Check inputs and sheet only (VCF headers, MAF/text sample columns, catalogue matrices' sample"
        " names against the sheet and the call files, as ingest checks them; no call record read). With"
        " --reference also the FASTA: it exists and is indexed (.fai: `samtools faidx`), the contigs VCF"
        " headers and first records and MAF first records' Chromosome name are in it (chr1 vs 1 named; a file"
        " sharing none refused), ##contig lengths agree with it"
        " (another genome build named), and the first records (VCF or MAF) lie within their contigs with REF"
        " alleles that are its bases (a plain FASTA's index read by offset; calls made on another FASTA are"
        " refused, as ingest refuses them); MAF NCBI_Build and a SigProfiler file's genome column (mm10,"
        " GRCh38 ...) as ingest checks them. A FASTA with no index yet is"
        " checked from its own '>' lines (GRCh38: about 2 s, 11 s bgzipped).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary table."),
) -> None:
    """Turn VCF/BCF/MAF/text files or catalogue matrices into a cohort .h5ad (channel sets, tokens).

    Tumour/normal VCFs give their tumour only. Errors (exit 2) name the file and line; nothing is
    written then. The summary counts every call: read = counted + skipped by reason, per file and
    per sample (also in the cohort's uns['nanog1']['accounting']).
    """
    from rich.console import Console
    from rich.markup import escape

    from nanog1.genomics.ingest import IngestOptions, check_inputs, ingest
    from nanog1.genomics.summary import summary_table
    from nanog1.progress import LOG_EVERY, shows_bars

    console = Console(stderr=True)
    options = IngestOptions(
        filter=filter_, on_error=on_error, sigprofiler_compatible=sigprofiler_compatible,
        jobs=jobs, bin_size=bin_size, progress=not quiet and shows_bars(),
        log_every=0.0 if quiet or shows_bars() else LOG_EVERY,
        genes=str(genes) if genes else None,
        tumor_sample=tumor_sample,
        normal_sample=normal_sample, duplicates=duplicates, sheet_policy=sheet_policy,
        max_skip_fraction=max_skip_fraction, not_measured=not_measured,
    )
    if check_only:
        plans, notes = check_inputs(inputs, samples, options, reference)  # the FASTA too, given one
    elif out is None:
        raise UserError("--out is required (or --check-only)")
    else:
        from nanog1.io import check_writable

        check_writable(out)  # told now, not after every input was read
        report = ingest(inputs, reference, samples, out, options)
    if check_only:
        for note in notes:  # each led by what it concerns ('sample sheet: ', 'reference: ')
            topic, _, text = note.partition(": ")
            console.print(f"[yellow]{escape(topic)}:[/yellow] {escape(text)}", soft_wrap=True)
        named = len({s for p in plans if p.samples for s in p.samples})  # a sheet joins split files
        bad = [p.path.name for p in plans if p.kind == "unreadable"]  # --on-error skip: named, not fatal
        skipped = f"; {len(bad)} unreadable, to be skipped: {', '.join(bad)}" if bad else ""
        typer.echo(f"checked {len(plans)} inputs ({named} sample(s) named before reading): no errors"
                   f"{skipped}")
        return
    if not quiet:
        Console().print(summary_table(report))
    status = report.channel_sets
    exact = [s for s, v in status.items() if v == "exact"]
    missing = [s for s, v in status.items() if v == "not_computable"]
    partial = [s for s, v in status.items() if v == "partial"]
    console.print(f"channel sets exact: {', '.join(exact) or 'none'}")
    if missing:
        for why, sets in _not_computable_why(status, missing, reference is None):
            console.print(f"channel sets not computable ({why}): {', '.join(sets)}")
        if reference is None and sigprofiler_compatible:
            console.print(
                "[yellow]--sigprofiler-compatible changes nothing without a reference: SigProfiler"
                "MatrixGenerator needs one (its SBS96, collapsed to SBS6, would also count both bases of each"
                " doublet)[/yellow]"
            )
    if report.missing_contigs:
        n = sum(report.missing_contigs.values())
        top = ", ".join(f"{k} {v:,}" for k, v in report.missing_contigs.most_common(5))
        console.print(
            f"[yellow]{n:,} call(s) on contigs the reference lacks ({top}) were classified without context"
            " (SBS6, DBS78, ID12; accounting column counted_without_context)[/yellow]"
        )
    if partial:
        console.print(
            f"channel sets partial (exact only for the samples in uns['nanog1']['exact_for'] and"
            f" obsm['measured_sets']; not fitted as a whole; the models mask them for the other samples):"
            f" {', '.join(partial)}"
        )
    if report.genome_builds:  # per sample in uns['nanog1']['genome_build'], with the evidence
        builds = ", ".join(f"{b} {n:,}" for b, n in report.genome_builds.most_common())
        console.print(f"genome build (samples): {builds}")
    for note in report.notes:  # sheet problems (each names the sheet) and the protein-change count
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    if report.no_mutation_samples:
        flagged = report.no_mutation_samples
        console.print(
            f"[yellow]{len(flagged)} sample(s) without mutations kept, flagged in obs['no_mutations']: "
            + ", ".join(flagged[:5])
        )


cohort_app = typer.Typer(help="Cohort files: merge ingested parts.", no_args_is_help=True)
app.add_typer(cohort_app, name="cohort")


@cohort_app.command("merge")
def cohort_merge(
    parts: list[Path] = typer.Argument(..., exists=True, dir_okay=False, help="cohort parts (.h5ad)"),
    out: Path = typer.Option(..., "--out", "-o", help="merged cohort .h5ad (written atomically)"),
    samples: Path = typer.Option(None, "--samples", exists=True, dir_okay=False, help="sample sheet CSV/TSV"),
    duplicates: str = typer.Option("error", "--duplicates", help="a sample in two parts: error | sum"),
    sheet_policy: str = typer.Option(
        "strict",
        "--sheet-policy",
        help="strict: a sheet sample in no part, or a part's sample not in the sheet, is an error;"
        " lenient: reported only (never added as a zero-mutation sample)",
    ),
) -> None:
    """The gather step: merge ingested parts (one per input file) into one AnnData cohort."""
    from nanog1.genomics.merge import MergeOptions, merge_cohort

    options = MergeOptions(duplicates=duplicates, sheet_policy=sheet_policy)
    rep = merge_cohort(parts, out, samples, options)
    typer.echo(
        f"wrote {out}: {rep.samples} samples from {rep.parts} parts; summed {rep.samples_summed},"
        f" sheet rows without a part {rep.sheet_only}, not in sheet {rep.not_in_sheet}; tokens {rep.tokens}"
    )
    for note in rep.notes:
        typer.echo(f"note: {note}")


# --- signatures and simulate -------------------------------------------------------------------
# (section owned by the signatures and simulate area; add commands here)
signatures_app = typer.Typer(help="COSMIC reference signatures and batched fitting.", no_args_is_help=True)
app.add_typer(signatures_app, name="signatures")


@signatures_app.command("list")
def signatures_list() -> None:
    """List the COSMIC reference tables shipped by the installed SigProfilerAssignment package."""
    from nanog1.genomics.signatures import list_references, reference_dir

    typer.echo(f"# from {reference_dir()}")
    for name in list_references():
        typer.echo(name)


@signatures_app.command("fit")
def signatures_fit(
    cohort: Path = typer.Argument(..., exists=True, dir_okay=False, help="cohort .h5ad"),
    out: Path = typer.Option(None, "--out", "-o", help="fitted cohort .h5ad (default: overwrite input)"),
    method: str = typer.Option("sparse", "--method", help="sparse (forward/backward) | nnls (all)"),
    cosmic_version: str = typer.Option("3.4", "--cosmic-version"),
    genome_build: str = typer.Option("GRCh37", "--genome-build"),
    exome: bool = typer.Option(False, "--exome", help="use the exome-normalised tables"),
    channel_sets: list[str] = typer.Option(None, "--set", help="SBS96/DBS78/ID83 (default: those measured)"),
    add_penalty: float = typer.Option(0.05, "--add-penalty"),
    remove_penalty: float = typer.Option(0.01, "--remove-penalty"),
    device: str = typer.Option("cpu", "--device", help="torch device, e.g. cuda"),
    signatures: str = typer.Option(None, "--signatures", help="fit only these, e.g. SBS1,SBS5,SBS13"),
    tables: list[Path] = typer.Option(
        None, "--signature-table", exists=True, dir_okay=False, help="own COSMIC-format table (repeatable)"
    ),
    bootstrap: int = typer.Option(0, "--bootstrap", help="redraws per sample for intervals (0 = off)"),
    level: float = typer.Option(0.95, "--level", help="bootstrap interval level"),
    min_burden: int = typer.Option(50, "--min-burden", help="flag samples with fewer mutations"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
    opportunity: str = typer.Option("genome", "--opportunity", help="genome | exome | panel"),
    bed: Path = typer.Option(None, "--bed", exists=True, dir_okay=False, help="captured regions"),
    reference: Path = typer.Option(None, "--reference", exists=True, dir_okay=False, help="FASTA for --bed"),
    per_mutation: bool = typer.Option(
        False, "--per-mutation/--no-per-mutation", help="write uns['tokens']['sig_prob_<set>']"
    ),
    mlflow_uri: str = typer.Option(None, "--mlflow", help="also record the fit in this MLflow store"),
) -> None:
    """Attribute signatures to every sample; writes obsm['exposures_<set>'], fit cosines and, on request,
    bootstrap intervals, opportunity-rescaled exposures and per-mutation probabilities."""
    from nanog1.fitting.bootstrap import BootstrapConfig
    from nanog1.fitting.cohort import CohortFitOptions, Opportunity, fit_cohort, own_tables
    from nanog1.fitting.fit import FitConfig
    from nanog1.genomics.cohort import read_cohort, write_cohort

    adata = read_cohort(cohort)
    config = FitConfig(method=method, add_penalty=add_penalty, remove_penalty=remove_penalty, device=device)
    options = CohortFitOptions(
        subset=tuple(s.strip() for s in signatures.split(",") if s.strip()) if signatures else (),
        tables=own_tables(tables or []),
        bootstrap=BootstrapConfig(bootstrap, level, seed, min_burden) if bootstrap > 0 else None,
        opportunity=Opportunity(
            opportunity, str(reference) if reference else None, str(bed) if bed else None
        ),
        per_mutation=per_mutation,
    )
    sets = channel_sets or None
    results = fit_cohort(
        adata, config, sets, cosmic_version, genome_build, exome, options, name=str(cohort)
    )
    write_cohort(adata, out or cohort)
    for cs, res in results.items():
        low = adata.obs.get(f"fit_low_burden_{cs}")
        flagged = f", {int(low.sum())} low-burden (unstable) samples" if low is not None else ""
        typer.echo(
            f"{cs}: {len(res.cosine)} samples, median cosine {res.cosine.median():.3f}, "
            f"{res.signatures_per_sample().mean():.1f} signatures/sample{flagged}"
        )
    if mlflow_uri:
        from nanog1.fitting.record import log_fit

        typer.echo(f"MLflow run {log_fit(adata, out or cohort, mlflow_uri)}")


@signatures_app.command("per-mutation")
def signatures_per_mutation(
    cohort: Path = typer.Argument(..., exists=True, dir_okay=False, help="fitted cohort .h5ad with tokens"),
    out: Path = typer.Option(..., "--out", "-o", help="TSV: one row per event, one column per signature"),
    channel_set: str = typer.Option("SBS96", "--set"),
) -> None:
    """Export per-mutation signature probabilities (uns['tokens']['sig_prob_<set>']) beside the tokens."""
    from nanog1.fitting.per_mutation import export_table
    from nanog1.genomics.cohort import read_cohort

    n = export_table(read_cohort(cohort), channel_set, out)
    typer.echo(f"wrote {n} {channel_set} events to {out}")


@app.command("simulate")
def simulate_command(
    outdir: Path = typer.Argument(..., help="folder for genome.fa, vcf/, cohort.maf, samples.csv"),
    n_samples: int = typer.Option(100, "--n-samples", "-n"),
    types: list[str] = typer.Option(None, "--type", help="cancer types to draw (default: all in priors)"),
    priors: Path = typer.Option(None, "--priors", exists=True, dir_okay=False, help="exposure-prior CSV"),
    seed: int = typer.Option(0, "--seed"),
    burden_scale: float = typer.Option(0.1, "--burden-scale", help="1.0 = whole-genome burdens"),
    maf_fraction: float = typer.Option(0.25, "--maf-fraction", help="share of samples written to the MAF"),
    catalogues: Path = typer.Option(None, "--catalogues", help="also write the drawn catalogues (.h5ad)"),
    files: bool = typer.Option(True, "--files/--no-files", help="write genome, VCFs and MAF"),
) -> None:
    """Draw a cohort from cancer-type exposure priors; write files that ingest back to its catalogues."""
    from nanog1.genomics.simulate import SimulationConfig, simulate_cohort, simulated_anndata

    config = SimulationConfig(n_samples, tuple(types) if types else None, seed, burden_scale)
    sim = simulate_cohort(config=config, priors=priors)
    outdir.mkdir(parents=True, exist_ok=True)
    if files:
        from nanog1.genomics.simulate_files import FileOptions, write_simulated_files

        written = write_simulated_files(sim, outdir, FileOptions(maf_fraction=maf_fraction, seed=seed))
        typer.echo(
            f"wrote {written.fasta}, {len(written.vcfs)} VCFs, MAF {written.maf}, {written.n_records} records"
        )
    if catalogues:
        from nanog1.genomics.cohort import write_cohort

        write_cohort(simulated_anndata(sim), catalogues)
        typer.echo(f"wrote {catalogues}")
    if not files:
        from nanog1.io import atomic_write_text

        atomic_write_text(outdir / "samples.csv", sim.sample_sheet.to_csv(index=False))


# --- training: train, evaluate, embed ----------------------------------------------------------
@app.command()
def train(
    cohort: Path = typer.Argument(..., exists=True, dir_okay=False, help="cohort .h5ad"),
    out: Path = typer.Option(..., "--out", "-o", help="run folder (checkpoint.pt, model.pt, metrics.json)"),
    task: str = typer.Option(
        None, help="cancer_type | exposures | pretrain | multitask (default cancer_type)"),
    mixer: str = typer.Option(None, help="savo | qcompass | mha_rank | mha (default savo)"),
    view: str = typer.Option(
        None, help="catalogue (one token per channel) | events (one token per mutation from "
        "uns['tokens']: class, gene, consequence, position, VAF; vocabularies built from this cohort, "
        "saved with the model; length-bucketed batches of <= batch_tokens padded tokens) "
        "(default catalogue)"),
    gene_bag: int = typer.Option(
        None, "--gene-bag", help="event view: the CLS token also reads a 0/1 bag of the K genes mutated in "
        "most training-split tumours, over all of each tumour's mutations (default 300; 0 = none)"),
    hotspots: int = typer.Option(
        None, "--hotspots", help="event view: the CLS bag also reads 0/1 over the sites (contig:position) "
        "mutated in >= N training-split tumours, e.g. IDH1 R132H (default 5; 0 = none)"),
    hotspot_key: str = typer.Option(
        None, "--hotspot-key", help="event view: what a hotspot is: site (contig:position, default) | codon "
        "(gene + residue + position from the MAF's protein change, allele-agnostic: KRAS:p.G12) | both "
        "(default site)"),
    consequence_shares: bool = typer.Option(
        None, "--consequence-shares/--no-consequence-shares", help="event view: the CLS bag also reads each "
        "tumour's share of mutations per consequence (missense, silent, nonsense...) over all of them, "
        "scaled by the training split's sd (default on)"),
    max_events: int = typer.Option(
        None, "--max-events", help="event view: mutation tokens per tumour in the sequence (training: a "
        "random N of the thinned tumour each epoch; evaluate/predict: N evenly spaced in genomic order, the "
        "same on every call); the CLS summary and bags still read every mutation (default 2048)"),
    epochs: int = typer.Option(None, help="maximum epochs; early stopping on validation (default 30)"),
    hidden: int = typer.Option(None, help="model width (default 32)"),
    layers: int = typer.Option(None, help="mixer blocks (default 2)"),
    rank: int = typer.Option(None, help="routing rank r (default 8)"),
    heads: int = typer.Option(None, help="routing heads (default 2)"),
    batch_size: int = typer.Option(None, "--batch-size", help="tumours per batch (default 64)"),
    lr: float = typer.Option(None, help="peak AdamW learning rate (default 0.002)"),
    folds: int = typer.Option(None, help="k-fold CV when > 1 (out-of-fold metrics) (default 1)"),
    thin: float = typer.Option(
        None, help="augment: thin each training sample to a U(1-THIN, 1) share of its mutations "
        "(catalogue counts; events in the event view) (default 0 = off)"),
    set_dropout: float = typer.Option(
        None, "--set-dropout", help="augment: mask DBS78, the indels (ID83+ID12) each with this probability "
        "per draw (ID83 alone with half, SBS96 alone with a third), so cohorts missing a set score alike "
        "(default 0 = off)"),
    indel_dropout: float = typer.Option(
        None, "--indel-dropout", help="event view, augment: read each training tumour with this "
        "probability per draw as an SNV-only file gives it (indel events dropped, ID83/ID12 masked as "
        "unmeasured, bag and consequence shares without them), and let the model read which sets were not "
        "measured, so 'indels not measured' differs from 'no indels' (default 0 = off)"),
    logit_adjust: float = typer.Option(
        None, "--logit-adjust", help="cancer-type loss: add TAU x log(training class share) to the logits in "
        "training only (logit adjustment, Menon et al. 2021: balanced predictions; default 0 = off)"),
    class_weighting: bool = typer.Option(
        None, "--class-weighting/--no-class-weighting", help="cancer-type loss: inverse-frequency class "
        "weights (default on; the logit-adjustment paper turns them off)"),
    seed: int = typer.Option(None, help="seed of the split, initialisation and batches (default 0)"),
    experiment: str = typer.Option(None, help="MLflow experiment (default: <cohort>/<task>)"),
    tracking_uri: str = typer.Option(
        None, "--tracking-uri", help=TRACKING_HELP
    ),
    config: Path = typer.Option(None, "--config", exists=True, dir_okay=False, help="training YAML"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="continue from OUT/checkpoint.pt"),
    stop_after_epochs: int = typer.Option(None, "--stop-after-epochs", hidden=True),
) -> None:
    """Train the mutation encoder on a cohort; logs an MLflow run and prints its id."""
    from nanog1.encoder.config import load_config
    from nanog1.encoder.run import train_cohort

    overrides = dict(task=task, mixer=mixer, view=view, epochs=epochs, hidden=hidden, layers=layers,
                     rank=rank, heads=heads, batch_size=batch_size, lr=lr, folds=folds, seed=seed,
                     experiment=experiment, thin=thin, set_dropout=set_dropout, indel_dropout=indel_dropout,
                     gene_bag=gene_bag,
                     hotspots=hotspots, hotspot_key=hotspot_key, logit_adjust=logit_adjust,
                     class_weighting=class_weighting, max_events=max_events,
                     consequence_shares=consequence_shares)
    cfg = load_config(config, overrides)
    outcome = train_cohort(cohort, out, cfg, tracking_uri, resume, stop_after_epochs)
    if outcome.run_id:
        shown = {k: round(v, 4) for k, v in outcome.metrics.items() if isinstance(v, float)}
        typer.echo(f"metrics: {shown}")
        typer.echo(f"mlflow run: {outcome.run_id}")


def _run_folder(run: str) -> Path:
    """`--run`: a run folder, or a packaged model given by name (pretrained.run_folder)."""
    from nanog1.encoder import pretrained

    return pretrained.run_folder(run)


@app.command()
def evaluate(
    cohort: Path = typer.Argument(..., exists=True, dir_okay=False),
    run: list[str] = typer.Option(
        ..., "--run", metavar="RUN_DIR|MODEL",
        help="run folder with model.pt, or a packaged model name (nanog1 models list); repeat it to average"
        " a seed ensemble (embedding from the first)",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="output .h5ad with predictions, probabilities, embeddings"
    ),
) -> None:
    """Predict types/exposures and embed a cohort with a trained run (or an ensemble); reports beside OUT."""
    import warnings

    from nanog1.encoder.evaluate import TrainingOverlapWarning, evaluate_cohort

    folders = [_run_folder(r) for r in run]
    with warnings.catch_warnings():  # the overlap is said in the 'scored:' line below, once, in words
        warnings.simplefilter("ignore", TrainingOverlapWarning)
        metrics = evaluate_cohort(cohort, folders, out)
    shown = {k: round(v, 4) for k, v in metrics.items()}
    typer.echo(f"wrote {out}" + (f"  scored: {metrics.scored}  {shown}" if metrics
                                 else "  (no labelled held-out sample: nothing scored)"))


@app.command()
def embed(
    cohort: Path = typer.Argument(..., exists=True, dir_okay=False),
    run: str = typer.Option(
        ..., "--run", metavar="RUN_DIR|MODEL",
        help="run folder with model.pt, or a packaged model name (nanog1 models list)",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="output .h5ad with obsm['X_nanog1']"),
) -> None:
    """Write the run's pooled embeddings of every sample to obsm['X_nanog1']."""
    from nanog1.encoder.embedding import embed_cohort

    adata = embed_cohort(cohort, _run_folder(run), out)
    typer.echo(f"wrote {out}  X_nanog1 {adata.obsm['X_nanog1'].shape}")


@app.command()
def pretrain(
    cohort: Path = typer.Argument(..., exists=True, dir_okay=False, help="cohort .h5ad (labels unused)"),
    out: Path = typer.Option(
        ..., "--out", "-o", help="run folder (its model.pt: `nanog1 finetune --from` it)"
    ),
    view: str = typer.Option(
        "events", help="events: one token per mutation (default objective contrastive) | catalogue: one "
        "token per channel (default objective masked: masked channel counts)"),
    epochs: int = typer.Option(None, help="maximum epochs (default 30)"),
    hidden: int = typer.Option(None, help="model width (default 32)"),
    layers: int = typer.Option(None, help="mixer blocks (default 2)"),
    lr: float = typer.Option(None, help="peak AdamW learning rate (default 0.002)"),
    batch_size: int = typer.Option(None, "--batch-size", help="tumours per batch (default 64)"),
    gene_top_k: int = typer.Option(
        None, "--gene-top-k", help="masked-gene head: the K commonest genes + 'other' (default 256)"),
    seed: int = typer.Option(None, help="seed of the split, initialisation and batches (default 0)"),
    objective: str = typer.Option(
        None, "--objective", help="contrastive (event-view default): two thinned views of each tumour, "
        "bag entries dropped, should embed alike (InfoNCE over the batch) | masked (catalogue-view default): "
        "predict hidden mutations. A training YAML's `objective` is used when this is not given"),
    temperature: float = typer.Option(
        None, "--temperature", help="contrastive: InfoNCE temperature (default 0.1)"),
    view_drop: float = typer.Option(
        None, "--view-drop", help="contrastive: each view keeps U(1 - D, 1) of the events and drops each "
        "present gene/hotspot bag entry with probability D (default 0.4)"),
    view_noise: float = typer.Option(
        None, "--view-noise", help="contrastive: Gaussian noise (sd, in sd units) on each view's consequence "
        "shares, which are jittered, never dropped (default 0.5)"),
    config: Path = typer.Option(None, "--config", exists=True, dir_okay=False, help="training YAML"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help=TRACKING_HELP),
) -> None:
    """Self-supervised pretraining of the encoder (labels unused): masked or contrastive objective.

    masked: hide 15 % of each tumour's mutations and predict each one's class, consequence and gene (the K
    commonest or 'other', class-weighted) from the rest; reports each head's masked accuracy beside the
    majority-class baseline. contrastive: the CLS embeddings of two random views of a tumour must pick each
    other out of the batch; reports that view accuracy beside chance (1 / batch size). The model keeps its
    gene bag for `nanog1 finetune --from`. Contrastive is the event view's default: on TCGA it beat masked
    pretraining and scratch on validation and test at 10 / 25 / 100 % labels (BENCHMARKS.md, issue 28)."""
    from nanog1.encoder.config import load_config
    from nanog1.encoder.run import train_cohort
    from nanog1.io import read_yaml_mapping

    in_yaml = config is not None and "objective" in read_yaml_mapping(config, "a mapping of training options")
    if objective is None and not in_yaml:
        objective = "contrastive" if view == "events" else "masked"

    overrides = dict(task="pretrain", view=view, epochs=epochs, hidden=hidden, layers=layers, lr=lr,
                     batch_size=batch_size, gene_top_k=gene_top_k, seed=seed, objective=objective,
                     temperature=temperature, view_drop=view_drop,
                     view_noise=view_noise)  # fmt: skip
    outcome = train_cohort(cohort, out, load_config(config, overrides), tracking_uri)
    if "val_view_acc" in outcome.metrics:
        typer.echo(f"view accuracy: {outcome.metrics['val_view_acc']:.3f} (chance "
                   f"{outcome.metrics['val_view_chance']:.3f})")  # fmt: skip
    for name, value in sorted(outcome.metrics.items()):
        if name.startswith("val_masked_acc_"):
            head = name.removeprefix("val_masked_acc_")
            base = outcome.metrics.get(f"val_masked_majority_{head}", float("nan"))
            typer.echo(f"masked {head}: accuracy {value:.3f} (majority class {base:.3f})")
    typer.echo(f"mlflow run: {outcome.run_id}")


#: Tumours `nanog1 predict` shows on the terminal (first rows); every tumour is in predictions.tsv.
PREDICT_ROWS_SHOWN = 20


@app.command("predict")
def predict_command(
    inputs: list[Path] = typer.Argument(
        ..., help="VCF/BCF, MAF, catalogue matrices (SigProfiler-style TSV/CSV) or one cohort .h5ad. Files, "
        "not directories: use a glob (dir/*.vcf.gz, dir/*.maf)"
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", file_okay=False, help="folder for predictions.tsv, predictions.json and reports"
    ),
    model: str = typer.Option(
        "pcawg-catalogue", "--model", help="packaged model name (nanog1 models list: pcawg-catalogue for "
        "whole genomes or catalogues, tcga-exome for exome MAFs) or a run folder"
    ),
    reference: Path = typer.Option(
        None, "--reference", "-r", exists=True, dir_okay=False,
        help="FASTA for VCF/MAF inputs (SBS96/ID83); without it SBS6/DBS78/ID12 are scored. A cohort .h5ad "
        "keeps the sets it was ingested with: one ingested without a FASTA is refused with -r (re-ingest it)",
    ),
    samples: Path = typer.Option(
        None, "--samples", exists=True, dir_okay=False,
        help="sample sheet CSV/TSV, as for `nanog1 ingest` (sample, file, tumor_sample...): e.g. one "
        "tumour's Strelka2 SNV and indel files as one sample",
    ),
    neighbours: int = typer.Option(5, min=0, help="nearest reference tumours to list (0: none)"),
    exposures: bool = typer.Option(
        True, "--exposures/--no-exposures", help="COSMIC exposures with intervals"
    ),
    draws: int = typer.Option(50, min=1, help="bootstrap draws for the exposure intervals"),
    reports: bool = typer.Option(
        None, "--reports/--no-reports", help="one-page report per tumour (default: batches of <= 50)"
    ),
    assay: str = typer.Option(
        "auto", "--assay",
        help="genome | exome | auto: what the inputs are. A whole-genome model (pcawg-catalogue) abstains on "
        "exomes, an exome model (tcga-exome) on whole genomes; auto calls a tumour an exome when >= 25 % of "
        ">= 10 mutations are protein-coding/splice (MAF) or inside exome capture targets (GRCh37/38), else a "
        "genome; catalogue matrices cannot be told (a warning says so): say --assay",
    ),
    filter: str = typer.Option(
        None, "--filter",
        help="PASS | all: which VCF/MAF calls to read. Default: the rule the model was trained with "
        "(tcga-exome: all, PASS and non-PASS; a model that states none, such as pcawg-catalogue: PASS); "
        "another rule is applied and the mismatch stated in the outputs",
    ),
    not_measured: str | None = typer.Option(
        None, "--not-measured", metavar="SETS",
        help=NOT_MEASURED_HELP + ". The outputs state, per "
        "tumour, why its sets are masked. A VCF/MAF tumour with >= "
        f"{SNV_ONLY_MIN_SBS} substitutions and no indel (>= {NO_DOUBLET_MIN_SBS:,} and no doublet) is noted: "
        "it is read as zero indels unless declared",
    ),
    operating_point: str = typer.Option(
        "in-study", "--operating-point",
        help="in-study | new-study: which abstention threshold. in-study (default): fitted for 0.90 "
        "accuracy on the model's own validation tumours; on other studies it accepts more at lower accuracy "
        "(pcawg-catalogue: about 0.80 on leave-one-study-out). new-study: fitted on tumours of studies the "
        "model was not trained on (packaged models that store it: pcawg-catalogue); fewer tumours accepted, "
        "about 0.90 accuracy on other "
        "studies. The outputs state the point used and what it gave on other studies",
    ),
    on_error: str = typer.Option(
        ON_ERROR_DEFAULT, "--on-error",
        help=ON_ERROR_HELP + ", as `nanog1 ingest` does: a folder of VCF/MAF files with one corrupt file is "
        "typed without it. The closing line and predictions.json count what was skipped, by reason",
    ),
    max_skip_fraction: float = typer.Option(
        MAX_SKIP_DEFAULT, MAX_SKIP_FLAG, help=MAX_SKIP_HELP + "; as for `nanog1 ingest`",
    ),
    adapt_priors: bool = typer.Option(
        False, "--adapt-priors",
        help=ADAPT_PRIORS_HELP + ". The estimated mix and how many top types changed are written to "
        "predictions.json and the reports",
    ),
) -> None:
    """Type tumours with a packaged or trained model: calibrated top-3 types, abstention, exposures.

    Calibrated top-3 types, abstention with its reason, exposures with intervals, nearest reference tumours;
    research use, not a diagnosis. The closing line counts the calls read, counted and skipped by reason
    (--on-error skip: with the files that could not be read, by name). A
    FILTER rule other than the model's, (for a model with protein-codon hotspots) tumours whose calls carry
    no protein change (a VCF, a MAF without HGVSp_Short / Protein_Change), (for an event model) tumours whose
    calls carry no consequence (a MAF without Variant_Classification), and channel sets the model reads but
    the input did not measure (masked as unmeasured) are stated as warnings in the outputs. An event model
    (tcga-exome) abstains on tumours with no gene on any call (a plain VCF: `nanog1 ingest --genes` it first,
    then predict that cohort). A model that reads positions (tcga-exome: GRCh37) abstains on tumours on
    another genome build (a VCF header's ##contig lengths or ##reference/##assembly, a MAF's NCBI_Build, a
    SigProfiler file's genome column, a cohort's ingest record) and warns of tumours whose build is unknown;
    any model abstains on tumours on another species' genome (mm10, rn6, ...: all are trained on human
    tumours). A VCF whose ##contig lengths differ from --reference's, a MAF whose NCBI_Build or a SigProfiler
    file whose genome column names another build than --reference's lengths (or two builds), and catalogue
    matrices of different sets sharing no sample name, are refused."""
    from nanog1.encoder.abstention import operating_point as check_point
    from nanog1.encoder.input_filter import check_rule
    from nanog1.encoder.predict_notes import (
        input_warnings,
        mismatch_warnings_stated,
        operating_point_line,
        summary_line,
    )
    from nanog1.encoder.predict_report import reports_note, write_outputs, written_line
    from nanog1.encoder.predictor import (
        PredictOptions,
        check_input_paths,
        load_predictor,
        predict,
        prediction_table,
        prior_record,
        read_inputs,
    )
    from nanog1.genomics.ingest import IngestOptions, drop_index_files
    from nanog1.io import check_writable
    from nanog1.progress import LOG_EVERY, shows_bars, step
    from nanog1.schema import parse_not_measured

    if assay not in ("auto", "genome", "exome"):
        raise UserError(f"--assay {assay}: choose genome, exome or auto")
    filter = check_rule(filter)  # `--filter pass` is PASS
    # a wrong --on-error or --max-skip-fraction is told before the model is loaded, by ingest's own checks
    reading = IngestOptions(on_error=on_error, max_skip_fraction=max_skip_fraction)
    declared = parse_not_measured(not_measured)  # a wrong set name is told before anything is read
    # a mistyped path is told before the model is loaded; `calls/*` gave the VCFs' .tbi indexes too
    inputs = drop_index_files(check_input_paths(inputs, reading.on_error))
    check_writable(out, folder=True)  # told now, not after every input was read and scored
    loaded = load_predictor(model)  # an unknown model is told before any input is read
    check_point(loaded.calibration, operating_point, loaded.name)  # so is an operating point it lacks
    if adapt_priors:
        prior_record(loaded, 10**9)  # a model without a prior-adaptation record is told before reading
    with step(f"predict: read {len(inputs):,} input(s)") as shown:  # a cohort's files take minutes
        adata = read_inputs(inputs, reference, loaded.filter_choice(filter).rule, samples, declared,
                            on_error=reading.on_error, max_skip_fraction=reading.max_skip_fraction,
                            progress=shows_bars(),
                            log_every=0.0 if shows_bars() else LOG_EVERY)
        shown["tumours"] = f"{adata.n_obs:,}"
    options = PredictOptions(neighbours=neighbours, exposures=exposures, draws=draws, assay=assay,
                             filter=filter, operating_point=operating_point, not_measured=declared,
                             adapt_priors=adapt_priors)
    what = " and exposures" if exposures else ""
    with step(f"predict: typed {adata.n_obs:,} tumour(s) with {loaded.name}{what}"), \
            mismatch_warnings_stated():  # echoed below and written into the outputs
        predict(adata, loaded, options)
    table = prediction_table(adata)
    with step(f"predict: wrote {out}"):
        written = write_outputs(adata, table, out, reports)
    shown = table[["predicted_type", "type_1", "p_1", "abstain_reason"]].head(PREDICT_ROWS_SHOWN)
    typer.echo(shown.to_string())
    if len(table) > PREDICT_ROWS_SHOWN:  # a tumour past the cut is not missing: say where it is
        typer.echo(f"(the first {PREDICT_ROWS_SHOWN} of {len(table):,} tumours shown; all in "
                   f"{out}/predictions.tsv)")
    left_out = reports_note(adata.n_obs, reports)  # reports left out by default: say so
    left_out = f"; {left_out}" if left_out else ""
    typer.echo(f"{summary_line(adata, table)}; {written_line(out, written)}{left_out}")
    typer.echo(operating_point_line(adata))
    if adapt_priors:
        from nanog1.encoder.prior_shift import mix_line

        typer.echo(mix_line(adata.uns["nanog1_predict"]["prior_adaptation"]))
    for notice in input_warnings(adata):
        typer.echo(f"warning: {notice.text}", err=True)


models_app = typer.Typer(help="Models that ship with the package (model cards).", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list() -> None:
    """Name, cancer types and headline metrics of each packaged model."""
    from nanog1.encoder import pretrained

    for name in pretrained.available():
        card = pretrained.card(name)
        typer.echo(f"{name}\t{len(card.get('classes', []))} types\t{card.get('summary', '')}")


@models_app.command("show")
def models_show(name: str = typer.Argument(..., help="packaged model name (or a run folder holding model.pt)")
                ) -> None:  # fmt: skip
    """Print a model's card (JSON): data and licence, recipe, metrics, calibration, intended use (a run
    folder without card.json: its types, settings and metrics.json); and the calls its training left out
    for being of a kind their tumour did not measure, where its model.pt records it."""
    import json

    from nanog1.encoder import pretrained
    from nanog1.encoder.api import run_folder_card

    card = pretrained.card(name) or run_folder_card(name)
    typer.echo(json.dumps(card | _model_file_record(name), indent=1))


def _model_file_record(name: str) -> dict:
    """What a model's model.pt states that its card may not: 'training_events_not_read' (the calls its
    training left out, nanog1.encoder.predictor.training_not_read_record); {} for a file without it, such
    as the packaged models saved before it was kept."""
    from nanog1.checkpoint import load
    from nanog1.encoder import pretrained
    from nanog1.encoder.loop import MODEL
    from nanog1.encoder.predictor import training_not_read_record

    return training_not_read_record(load(pretrained.resolve(name) / MODEL))


@app.command()
def baselines(
    cohort: Path = typer.Argument(..., exists=True, dir_okay=False),
    folds: int = typer.Option(5, help="stratified folds (same splits as `train --folds`)"),
    seed: int = typer.Option(0),
    experiment: str = typer.Option(None, help="MLflow experiment (default: <cohort>/cancer_type)"),
    tracking_uri: str = typer.Option(
        None, "--tracking-uri",
        help="MLflow store (default: MLFLOW_TRACKING_URI, else runs/mlflow.db beside the cohort)"),
    out: Path = typer.Option(None, "--out", "-o", help="CSV of the metrics table"),
    models: str = typer.Option("logreg,random_forest,gradient_boosting", help="comma-separated subset"),
) -> None:
    """Logistic regression, random forest and gradient boosting on catalogues and exposures, k-fold CV."""
    from nanog1.encoder.baselines import run_baselines

    table = run_baselines(cohort, folds=folds, seed=seed, experiment=experiment, tracking_uri=tracking_uri,
                          out=out, models=models.split(","))
    typer.echo(table.round(4).to_string())


# --- training: finetune ------------------------------------------------------------------------
@app.command()
def finetune(
    cohort: Path = typer.Argument(..., exists=True, dir_okay=False, help="the new cohort .h5ad"),
    from_run: Path = typer.Option(..., "--from", exists=True, file_okay=False, help="trained run folder"),
    out: Path = typer.Option(..., "--out", "-o", help="new run folder (model.pt, metrics.json, calibration)"),
    epochs: int = typer.Option(10, help="budget for the fine-tuned and the scratch model alike"),
    freeze_encoder: bool = typer.Option(False, "--freeze-encoder", help="train the new type head only"),
    test_fraction: float = typer.Option(0.3, "--test-fraction", help="held-out share of the new cohort"),
    train_fraction: float = typer.Option(1.0, "--train-fraction", help="share of the rest used to train"),
    lr: float = typer.Option(None, help="learning rate (default: the trained run's)"),
    seed: int = typer.Option(0),
    experiment: str = typer.Option(None, help="MLflow experiment (default: <cohort>/finetune)"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help=TRACKING_HELP),
) -> None:
    """Fine-tune a trained encoder on a new cohort (new type head) and report the gain over scratch."""
    from nanog1.encoder.finetune import FinetuneConfig, finetune_cohort

    fcfg = FinetuneConfig(epochs=epochs, freeze_encoder=freeze_encoder, test_fraction=test_fraction,
                          train_fraction=train_fraction, lr=lr, seed=seed, experiment=experiment)
    outcome = finetune_cohort(cohort, from_run, out, fcfg, tracking_uri)
    for name, scores in (("fine-tuned", outcome.finetuned), ("scratch", outcome.scratch),
                         ("gain", outcome.gain)):
        typer.echo(f"{name}: {({k: round(v, 4) for k, v in scores.items()})}")
    typer.echo(f"mlflow run: {outcome.run_id}")


# --- lm and vision -----------------------------------------------------------------------------
lm_app = typer.Typer(help="QuatrixLM: train a causal LM on text and generate from it.", no_args_is_help=True)
app.add_typer(lm_app, name="lm")
vision_app = typer.Typer(help="QCompassBi vision encoder: train an image classifier, predict.",
                         no_args_is_help=True)
app.add_typer(vision_app, name="vision")


@lm_app.command("train")
def lm_train(
    out: Path = typer.Option(
        ..., "--out", "-o", help="run folder (model.pt with config, tokenizer and weights)"
    ),
    corpus: Path = typer.Option(None, exists=True, dir_okay=False,
                                help="UTF-8 text file (default: Python's embedded language reference)"),
    tokenizer: str = typer.Option("byte", help="byte | bpe (trained locally on the training text)"),
    bpe_vocab: int = typer.Option(2048, "--bpe-vocab"),
    mixer: str = typer.Option("savo", help="savo | qcompass | mha_rank | mha | qdelta"),
    hidden: int = typer.Option(128), layers: int = typer.Option(4), rank: int = typer.Option(32),
    heads: int = typer.Option(4),
    steps: int = typer.Option(800), batch_size: int = typer.Option(16, "--batch-size"),
    seq_len: int = typer.Option(128, "--seq-len"), lr: float = typer.Option(3e-3),
    checkpointing: bool = typer.Option(False, "--checkpointing", help="recompute blocks in backward"),
    seed: int = typer.Option(0), experiment: str = typer.Option("lm/text"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help=TRACKING_HELP),
) -> None:
    """Train QuatrixLM; prints validation loss against the unigram baseline and the MLflow run id."""
    from nanog1.zoo.text import TextConfig
    from nanog1.zoo.train_text import LMTrainConfig, train_lm

    model = TextConfig(hidden_size=hidden, layers=layers, rank=rank, heads=heads, mixer=mixer,
                       checkpointing=checkpointing)
    cfg = LMTrainConfig(corpus=str(corpus) if corpus else None, tokenizer=tokenizer, bpe_vocab=bpe_vocab,
                        steps=steps, batch_size=batch_size, seq_len=seq_len, lr=lr, seed=seed,
                        experiment=experiment, model=model)
    r = train_lm(cfg, out, tracking_uri)
    typer.echo(f"val loss {r.val_loss:.4f} nats/token (unigram baseline {r.unigram_loss:.4f}), "
               f"train {r.tokens_per_s:,.0f} tokens/s\nwrote {r.checkpoint}\nmlflow run: {r.run_id}")


@lm_app.command("generate")
def lm_generate(
    model: Path = typer.Option(..., "--model", exists=True, dir_okay=False, help="model.pt from `lm train`"),
    prompt: str = typer.Option("The ", help="text to continue"),
    max_new_tokens: int = typer.Option(200, "--max-new-tokens"),
    temperature: float = typer.Option(0.8, help="0 = greedy"),
    top_k: int = typer.Option(None, "--top-k"), top_p: float = typer.Option(None, "--top-p"),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="decode with the mixers' caches"),
    seed: int = typer.Option(0),
) -> None:
    """Continue a prompt with a trained QuatrixLM."""
    import torch

    from nanog1.zoo.text import complete, load_checkpoint

    torch.manual_seed(seed)
    text = complete(load_checkpoint(model), prompt, max_new_tokens, temperature=temperature, top_k=top_k,
                    top_p=top_p, use_cache=cache)
    typer.echo(prompt + text)


@vision_app.command("train")
def vision_train(
    out: Path = typer.Option(
        ..., "--out", "-o", help="run folder (model.pt with config, class names, weights)"
    ),
    data: Path = typer.Option(None, exists=True, file_okay=False,
                              help="folder of <class>/<image> files (default: scikit-learn digits)"),
    image_size: int = typer.Option(8, "--image-size"), channels: int = typer.Option(1),
    patch_size: int = typer.Option(2, "--patch-size"),
    mixer: str = typer.Option("qcompass", help="qcompass (QCompassBi) | savo | mha_rank | mha"),
    hidden: int = typer.Option(96), layers: int = typer.Option(3), rank: int = typer.Option(24),
    heads: int = typer.Option(4), epochs: int = typer.Option(25), lr: float = typer.Option(5e-3),
    seed: int = typer.Option(0), experiment: str = typer.Option("vision/images"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help=TRACKING_HELP),
) -> None:
    """Train the vision classifier; prints held-out accuracy and the MLflow run id."""
    from nanog1.zoo.train_vision import VisionTrainConfig, train_vision
    from nanog1.zoo.vision import VisionConfig

    model = VisionConfig(image_size=image_size, channels=channels, patch_size=patch_size, hidden_size=hidden,
                         layers=layers, rank=rank, heads=heads, mixer=mixer)
    cfg = VisionTrainConfig(data=str(data) if data else None, epochs=epochs, lr=lr, seed=seed,
                            experiment=experiment, model=model)
    r = train_vision(cfg, out, tracking_uri)
    typer.echo(f"test accuracy {r.test_accuracy:.4f}, train {r.items_per_s:,.0f} images/s\n"
               f"wrote {r.checkpoint}\nmlflow run: {r.run_id}")


@vision_app.command("predict")
def vision_predict(
    model: Path = typer.Option(..., "--model", exists=True, dir_okay=False,
                               help="model.pt from `vision train`"),
    images: list[Path] = typer.Argument(None, help="image files (default: scikit-learn's sample photos)"),
) -> None:
    """Print the predicted class and its probability for each image."""
    from nanog1.zoo.train_vision import predict_files

    for name, label, prob in predict_files(model, images or []):
        typer.echo(f"{name}\t{label}\t{prob:.3f}")


# --- audio and world ---------------------------------------------------------------------------
audio_app = typer.Typer(help="QCompassBi audio encoder: train a log-mel clip classifier, predict.",
                        no_args_is_help=True)
app.add_typer(audio_app, name="audio")
world_app = typer.Typer(help="World model: learn a simulated grid world, report rollout error.",
                        no_args_is_help=True)
app.add_typer(world_app, name="world")


@audio_app.command("train")
def audio_train(
    out: Path = typer.Option(
        ..., "--out", "-o", help="run folder (model.pt with config, class names, weights)"
    ),
    data: Path = typer.Option(None, exists=True, file_okay=False,
                              help="folder of <class>/<clip>.wav files (default: synthetic clips)"),
    per_class: int = typer.Option(200, "--per-class", help="synthetic clips per class"),
    mixer: str = typer.Option("qcompass", help="qcompass (QCompassBi) | savo | mha_rank | mha"),
    hidden: int = typer.Option(96), layers: int = typer.Option(3), rank: int = typer.Option(24),
    heads: int = typer.Option(4), epochs: int = typer.Option(20), lr: float = typer.Option(3e-3),
    seed: int = typer.Option(0), experiment: str = typer.Option("audio/synthetic"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help=TRACKING_HELP),
) -> None:
    """Train the audio classifier; prints held-out accuracy against chance and the MLflow run id."""
    from nanog1.zoo.audio import AudioConfig
    from nanog1.zoo.train_audio import AudioTrainConfig, train_audio

    model = AudioConfig(hidden_size=hidden, layers=layers, rank=rank, heads=heads, mixer=mixer)
    cfg = AudioTrainConfig(data=str(data) if data else None, per_class=per_class, epochs=epochs, lr=lr,
                           seed=seed, experiment=experiment, model=model)
    r = train_audio(cfg, out, tracking_uri)
    typer.echo(f"test accuracy {r.test_accuracy:.4f} (chance {r.chance_accuracy:.4f}), "
               f"train {r.items_per_s:,.0f} clips/s\nwrote {r.checkpoint}\nmlflow run: {r.run_id}")


@audio_app.command("predict")
def audio_predict(
    model: Path = typer.Option(..., "--model", exists=True, dir_okay=False,
                               help="model.pt from `audio train`"),
    clips: list[Path] = typer.Argument(None, help="WAV files (default: one fresh synthetic clip per class)"),
) -> None:
    """Print the predicted class and its probability for each clip."""
    from nanog1.zoo.train_audio import predict_files

    for name, label, prob in predict_files(model, clips or []):
        typer.echo(f"{name}\t{label}\t{prob:.3f}")


@world_app.command("train")
def world_train(
    out: Path = typer.Option(
        ..., "--out", "-o", help="run folder (model.pt with config, weights, rollout errors)"
    ),
    grid: int = typer.Option(8, help="grid cells per side"), walls: int = typer.Option(2),
    episodes: int = typer.Option(2000, help="training episodes"),
    steps: int = typer.Option(3000, help="optimiser steps (about 5 min on one CPU core)"),
    horizon: int = typer.Option(4, help="imagined steps per training window"),
    eval_horizon: int = typer.Option(8, "--eval-horizon", help="rollout steps compared with copy-last"),
    mixer: str = typer.Option("qcompass", help="qcompass (QCompassBi) | savo | mha_rank | mha"),
    hidden: int = typer.Option(64), layers: int = typer.Option(3), rank: int = typer.Option(16),
    heads: int = typer.Option(4), lr: float = typer.Option(3e-3),
    seed: int = typer.Option(0), experiment: str = typer.Option("world/gridworld"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help=TRACKING_HELP),
) -> None:
    """Train the world model; prints its open-loop rollout error against copying the last frame."""
    from nanog1.zoo.gridworld import GridWorldConfig
    from nanog1.zoo.train_world import WorldTrainConfig, train_world
    from nanog1.zoo.world import WorldConfig

    model = WorldConfig(hidden_size=hidden, layers=layers, rank=rank, heads=heads, mixer=mixer)
    cfg = WorldTrainConfig(env=GridWorldConfig(grid=grid, walls=walls), train_episodes=episodes, steps=steps,
                           horizon=horizon, eval_horizon=eval_horizon, lr=lr, seed=seed,
                           experiment=experiment, model=model)
    r = train_world(cfg, out, tracking_uri)
    roll = r.rollout
    typer.echo(f"rollout MSE over {len(roll.model_mse)} steps {roll.model_mean:.5f} "
               f"vs copy-last {roll.copy_last_mean:.5f} "
               f"(ratio {roll.ratio:.3f}); reward accuracy {r.reward_accuracy:.3f}, "
               f"action accuracy {r.action_accuracy:.3f}\nwrote {r.checkpoint}\nmlflow run: {r.run_id}")


# --- pipeline ----------------------------------------------------------------------------------
pipeline_app = typer.Typer(help="Batch pipelines on Snakemake (shipped configs: demo, pcawg).",
                           no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")


@pipeline_app.command(
    "run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def pipeline_run(
    ctx: typer.Context,
    config: str = typer.Argument(..., help="pipeline YAML file, or the name of a shipped one (demo, pcawg)"),
    cores: int = typer.Option(2, "--cores", "-c", help="CPU cores Snakemake may use"),
    dry_run: bool = typer.Option(False, "--dry-run", "-n", help="show the jobs that would run; run nothing"),
    until: str = typer.Option(None, "--until", help="run up to this rule (e.g. merge, train)"),
    overrides: list[str] = typer.Option([], "--set", help="override a config value: --set train.epochs=3"),
    directory: Path = typer.Option(None, "--directory", "-d", help="working directory (default: here)"),
    unlock: bool = typer.Option(
        False, "--unlock", help="only remove the lock a killed run left in the working directory (make sure"
        " no other run uses it), then stop"),
    profile: str = typer.Option(
        None, "--profile", help="Snakemake profile: a folder, or a shipped one by name (slurm)"),
) -> None:
    """Run a pipeline config through Snakemake; other options are passed to Snakemake unchanged.

    Snakemake locks the working directory while it runs; a run that finds it locked stops with an error
    saying so. After a killed run, clear its lock with --unlock, then run the same command again.
    """
    from nanog1.pipeline.config import find_config, find_profile
    from nanog1.pipeline.runner import run_pipeline

    path = find_config(config)
    extra = [*ctx.args, *(["--profile", str(find_profile(profile))] if profile else [])]
    code = run_pipeline(path, cores, dry_run, until, extra, overrides, directory, unlock=unlock)
    raise typer.Exit(code)


@pipeline_app.command("config")
def pipeline_config(
    name: str = typer.Argument(..., help="shipped config to copy (demo, pcawg)"),
    out: Path = typer.Option(None, "--out", "-o", dir_okay=False,
                             help="file to write (default: ./NAME.yaml)"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing file"),
) -> None:
    """Write a copy of a shipped pipeline config, to edit (input files, reference, sample sheet) and then
    run with `nanog1 pipeline run FILE`."""
    from nanog1.pipeline.config import write_shipped_config

    path = write_shipped_config(name, out, force)
    typer.echo(f"wrote {path}; edit it, then: nanog1 pipeline run {path}")


@pipeline_app.command("record-run", hidden=True)
def pipeline_record_run(
    run_dir: Path = typer.Argument(..., exists=True, file_okay=False),
    tracking_uri: str = typer.Option(..., "--tracking-uri"),
    rule: str = typer.Option(..., "--rule"),
    jobid: str = typer.Option(..., "--jobid"),
    config_json: str = typer.Option(None, "--config-json", help="the resolved pipeline config as JSON"),
) -> None:
    """Tag the run's MLflow run with a Snakemake job id (and log the pipeline config); used by the rules."""
    import json

    from nanog1.pipeline.record import record_run

    run_id = record_run(run_dir, tracking_uri, rule, jobid, json.loads(config_json) if config_json else None)
    typer.echo(f"recorded {rule} job {jobid} on MLflow run {run_id}")


def _report_run_folder(run: str) -> Path:
    """`report --run`: what evaluate's --run takes (`_run_folder`); a folder that is not there is the
    resolver's own error (naming the packaged models), since the report reads no model.pt to name it."""
    from nanog1.encoder import pretrained

    folder = _run_folder(run)
    if not folder.is_dir():
        pretrained.resolve(run)  # raises the UserError `evaluate --run` gives for the same mistake
    return folder


def cohort_option_as_argument(args: list[str]) -> list[str]:
    """`nanog1 report`'s arguments with the old `--cohort X` (or `--cohort=X`) turned into the positional
    cohort that every other command takes, and a one-line deprecation notice on stderr; scripts written
    for the old spelling keep running while --help shows only the positional form."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--cohort" or arg.startswith("--cohort="):
            if arg == "--cohort" and i + 1 >= len(args):
                raise UserError("report: --cohort needs a value (better: give the cohort first: "
                                "nanog1 report COHORT.h5ad --run RUN -o OUT)")
            value = arg.partition("=")[2] if "=" in arg else args[i + 1]
            rest = args[:i] + args[i + (1 if "=" in arg else 2):]
            typer.echo("note: `nanog1 report --cohort X` is deprecated; give the cohort first: "
                       "nanog1 report X --run RUN -o OUT", err=True)
            return [value, *cohort_option_as_argument(rest)]
    return args


class _ReportCommand(TyperCommand):
    """`nanog1 report`, reading the deprecated `--cohort X` as its positional cohort."""

    def parse_args(self, ctx, args):
        return super().parse_args(ctx, cohort_option_as_argument(list(args)))


@app.command(cls=_ReportCommand)
def report(
    cohort: Path = typer.Argument(..., exists=True, dir_okay=False,
                                  help="evaluated cohort .h5ad (nanog1 evaluate's --out)"),
    run: str = typer.Option(
        ..., "--run", metavar="RUN_DIR|MODEL",
        help="training run folder, or a packaged model name (nanog1 models list), as evaluate's --run",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="report folder (report.md + PNGs)"),
) -> None:
    """Write the Markdown + PNG report of an evaluated cohort (confusion matrix, embeddings, exposures)."""
    from nanog1.report import write_report

    result = write_report(cohort, _report_run_folder(run), out)
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {result.markdown} with {len(result.figures)} figure(s)")


# --- app ---------------------------------------------------------------------------------------
@app.command("app")
def app_command(
    cohort: Path | None = typer.Option(None, help="Cohort .h5ad (default: results/demo/cohort.h5ad)."),
    mlflow: str | None = typer.Option(None, "--mlflow", help="MLflow tracking URI or .db file; relative "
                                      "paths are resolved from here (default: demo store)."),
    port: int = typer.Option(8501, help="Port to serve on."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; the default keeps the app local."),
    headless: bool = typer.Option(False, help="Do not open a browser (for servers and tests)."),
) -> None:
    """Start the Streamlit dashboard on the chosen cohort and MLflow store."""
    import os

    from nanog1.dashboard.launch import launch_warnings, streamlit_command, streamlit_env

    if cohort is not None and cohort.expanduser().is_file():  # a missing one: warned below, chosen in the app
        from nanog1.genomics.cohort import check_hdf5

        check_hdf5(cohort.expanduser())
    command = streamlit_command(port=port, host=host, headless=headless)
    env = streamlit_env(os.environ, cohort=cohort, tracking_uri=mlflow)
    for line in launch_warnings(cohort, mlflow):
        typer.echo(line, err=True)
    typer.echo(f"NanoG1 dashboard on http://{host}:{port}  (Ctrl-C stops it)")
    os.execve(command[0], command, env)  # streamlit takes over this process (and its signals)


def reflowed(text: str) -> str:
    """A help text with each paragraph on one line (paragraphs split by blank lines; lines that start
    with a space, e.g. an example command, kept as they are). Rich help keeps a docstring's line breaks,
    which wrap raggedly in any terminal narrower than the source; one line per paragraph wraps clean."""
    paragraphs = []
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if any(line.startswith(" ") for line in lines):
            paragraphs.append(block)
        else:
            paragraphs.append(" ".join(" ".join(lines).split()))
    return "\n\n".join(paragraphs)


def _reflow_help(typer_app: typer.Typer) -> None:
    """Reflow every command's help text (its docstring unless given), in `typer_app` and its groups."""
    for info in typer_app.registered_commands:
        text = info.help or inspect.getdoc(info.callback) or ""
        info.help = reflowed(text) if text else info.help
    for group in typer_app.registered_groups:
        _reflow_help(group.typer_instance)


_reflow_help(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
