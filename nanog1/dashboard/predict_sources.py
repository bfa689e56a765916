"""What the Predict page offers and checks: models (packaged and MLflow runs) and input files on the server
(one file, or a folder of them typed as one batch, as `nanog1 predict folder/*` types it).

The page only reads. Inputs are ingested into a temporary folder, a reference FASTA is read through a
link in one (so its index and contig cache land there), and an MLflow run's model is copied into a
scratch folder; nothing is written beside the inputs, into results/ or into the store.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import pandas as pd

from nanog1.errors import UserError
from nanog1.genomics.skip_policy import MAX_SKIP_DEFAULT, ON_ERROR_DEFAULT

#: Input kinds by file-name ending (longest first wins), as `nanog1 predict` reads them.
INPUT_KINDS = {
    ".vcf": "VCF", ".vcf.gz": "VCF", ".vcf.bgz": "VCF", ".bcf": "BCF",
    ".maf": "MAF", ".maf.gz": "MAF",
    ".tsv": "catalogue matrix", ".txt": "catalogue matrix", ".csv": "catalogue matrix",
    ".h5ad": "cohort",
}
FASTA_SUFFIXES = (".fa", ".fasta", ".fna")
#: Folders never searched for inputs: MLflow artifacts, caches, logs and hidden folders.
SKIP_DIRS = ("mlartifacts", "mlruns", "logs", "benchmarks", "__pycache__")
#: Files listed at most (a results tree can hold thousands of inputs).
MAX_FOUND = 400
#: MLflow runs checked for a model, newest first.
MAX_RUNS = 50
#: The page's control for `nanog1 predict --max-skip-fraction`, as its errors name it (the page has no flags).
SKIP_LIMIT_CONTROL = "Largest share of calls a file may lose"
SKIP_LIMIT_NAME = f"the page's “{SKIP_LIMIT_CONTROL}”"
#: Kinds of input read call by call (FILTER, bad lines); the others carry counts or a cohort.
CALL_KINDS = ("VCF", "BCF", "MAF")


def input_kind(path: Path, sniff: bool = True) -> str | None:
    """'VCF', 'BCF', 'MAF', 'catalogue matrix' or 'cohort' by the file name, None for anything else; with
    `sniff`, a file whose name says nothing is a cohort if it is HDF5 (`ingest -o cohort` writes one without
    the suffix), as `nanog1 predict` reads it (genomics.cohort.is_cohort_file). The folder search does not
    sniff: it would open every file of a results tree."""
    from nanog1.genomics.cohort import is_cohort_file

    name = path.name.lower()
    for suffix in sorted(INPUT_KINDS, key=len, reverse=True):
        if name.endswith(suffix):
            return INPUT_KINDS[suffix]
    return "cohort" if sniff and path.is_file() and is_cohort_file(path) else None


def _find(roots: list[Path], wanted, limit: int) -> list[Path]:
    """Files under `roots` whose name `wanted` accepts (recursively; not caches, logs or artifacts)."""
    found: set[Path] = set()
    for root in roots:
        if not root.is_dir():
            continue
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS
                             and not d.endswith(".nanog1"))
            found.update(Path(folder) / f for f in files if wanted(f.lower()))
            if len(found) >= limit:
                break
    return sorted(found)[:limit]


def find_inputs(roots: list[Path], limit: int = MAX_FOUND) -> list[Path]:
    """Input files under `roots`, sorted, at most `limit`."""
    return _find(roots, lambda name: input_kind(Path(name), sniff=False) is not None, limit)


def find_references(roots: list[Path], limit: int = MAX_FOUND) -> list[Path]:
    """FASTA files (.fa, .fasta, .fna, plain or gzipped) under `roots`, sorted."""
    return _find(roots, lambda name: name.removesuffix(".gz").endswith(FASTA_SUFFIXES), limit)


def check_input(text: str) -> Path:
    """The input file named in the page's text box; UserError saying what is wrong with it."""
    if not text.strip():
        raise UserError("give the path of an input file on the server (VCF/BCF, MAF, catalogue or .h5ad)")
    path = Path(text.strip()).expanduser()
    if not path.exists():
        raise UserError(f"{path}: no such file on the server")
    if path.is_dir():
        raise UserError(f"{path}: a folder; choose one file in it")
    if input_kind(path) is None:
        raise UserError(f"{path}: not an input NanoG1 reads (expected {', '.join(sorted(INPUT_KINDS))})")
    if not os.access(path, os.R_OK):
        raise UserError(f"{path}: not readable by the dashboard's user")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty file")
    return path


def check_inputs(text: str) -> list[Path]:
    """The inputs named in the page's text box: one file (`check_input`), or a folder's input files (those
    directly in it, sorted: a lab's batch, as `nanog1 predict folder/*` reads it); UserError for a folder
    with none, or with a cohort .h5ad beside other inputs (a cohort is typed alone)."""
    path = Path(text.strip()).expanduser()
    if not text.strip() or not path.is_dir():
        return [check_input(text)]
    found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and input_kind(p))
    if not found:
        raise UserError(f"{path}: a folder with no input file NanoG1 reads directly in it (expected "
                        f"{', '.join(sorted(INPUT_KINDS))}); choose a file, or a folder of them")
    cohorts = [p.name for p in found if input_kind(p) == "cohort"]
    if cohorts and len(found) > 1:
        raise UserError(f"{path}: a folder with a cohort .h5ad ({', '.join(cohorts)}) beside other inputs: a "
                        "cohort is typed alone; choose it, or a folder without one")
    return found


def input_kinds(paths: list[Path]) -> set[str]:
    """The kinds of the inputs ('VCF', 'MAF', ...; `input_kind`)."""
    return {str(input_kind(p)) for p in paths}


def check_reference(text: str, kinds: Collection[str] | str) -> Path | None:
    """The optional reference FASTA (only VCF/BCF/MAF read one: a MAF's calls get their SBS96/ID83
    contexts from it, as `nanog1 predict tumour.maf -r` reads them), or None; UserError when given but
    unusable (`kinds`: of the inputs, one or several)."""
    if not text.strip():
        return None
    path = Path(text.strip()).expanduser()
    kinds = {kinds} if isinstance(kinds, str) else set(kinds)
    if not kinds & set(CALL_KINDS):
        given = " or ".join(sorted(kinds))
        raise UserError(f"a reference FASTA is read only with VCF/BCF/MAF inputs, not a {given}: clear the "
                        "field")
    if not path.is_file():
        raise UserError(f"{path}: reference FASTA not found")
    return path


@dataclass(frozen=True)
class ModelChoice:
    """One model the page offers: a packaged name, or an MLflow run that logged `model/model.pt`.

    `name` is how messages call it; `label` adds the card summary or the run's start for the chooser.
    """

    name: str
    label: str
    packaged: str | None = None
    run_id: str | None = None


def packaged_models() -> list[ModelChoice]:
    """The models shipped in the package (`nanog1 models list`), with their card's summary."""
    from nanog1.encoder import pretrained

    choices = []
    for name in pretrained.available():
        summary = pretrained.card(name).get("summary", "")
        label = f"{name} (packaged){': ' + summary if summary else ''}"
        choices.append(ModelChoice(f"{name} (packaged)", label, packaged=name))
    return choices


def run_models(client, limit: int = MAX_RUNS) -> list[ModelChoice]:
    """Finished runs of the store, newest first, that logged a model (`model/model.pt`)."""
    names = {e.experiment_id: e.name for e in client.search_experiments()}
    if not names:
        return []
    choices = []
    for run in client.search_runs(list(names), filter_string="attributes.status = 'FINISHED'",
                                  order_by=["attributes.start_time DESC"], max_results=limit):
        files = {a.path for a in client.list_artifacts(run.info.run_id, "model")}
        if "model/model.pt" not in files:
            continue
        start = pd.to_datetime(run.info.start_time, unit="ms", utc=True).strftime("%Y-%m-%d %H:%M")
        name = (f"{names.get(run.info.experiment_id, '?')} / {run.info.run_name or run.info.run_id[:8]} "
                f"(MLflow run {run.info.run_id[:8]})")
        choices.append(ModelChoice(name, f"{name[:-1]}, {start})", run_id=run.info.run_id))
    return choices


def fetch_run_model(client, tracking_uri: str, run_id: str, folder: Path) -> Path:
    """Copy a run's `model/model.pt` (and calibration.json, when logged) into `folder`/model; return it."""
    from nanog1.dashboard.runs import fetch_artifact

    model_dir = fetch_artifact(tracking_uri, run_id, "model", folder)
    if any(a.path == "calibration.json" for a in client.list_artifacts(run_id)):
        fetch_artifact(tracking_uri, run_id, "calibration.json", model_dir)
    # runs trained before calibration existed have none: temperature 1, no abstention rule
    return model_dir


def predict_inputs(model, paths: list[Path], reference: Path | None, reference_folder: Path | None = None,
                   options=None, on_error: str = ON_ERROR_DEFAULT,
                   max_skip_fraction: float = MAX_SKIP_DEFAULT) -> ad.AnnData:
    """Ingest the inputs (one file, or a folder's batch) into a temporary AnnData and predict with `model`
    (a `load_predictor` result).

    A reference FASTA is read through a link in `reference_folder` (a scratch folder the caller may keep
    between calls, so its index and contig cache are built once); nothing is written beside the inputs
    or the FASTA. VCF/MAF calls are read with the model's FILTER rule (nanog1.encoder.input_filter) unless
    `options.filter` names one; `options.not_measured` declares channel sets unmeasured for every tumour, as
    `nanog1 predict --not-measured` does; `on_error` and `max_skip_fraction` are `nanog1 predict`'s
    (skip: a bad line or an unreadable file is counted by reason and the rest typed), and a file losing more
    calls is refused naming the page's control (SKIP_LIMIT_CONTROL), not a flag. The mismatch warnings are
    not raised: the page shows them from uns['nanog1_predict'] (nanog1.encoder.predict_notes). UserError
    for a file that cannot be read or does not fit the model.
    """
    from nanog1.encoder.predict_notes import mismatch_warnings_stated
    from nanog1.encoder.predictor import PredictOptions, predict, read_inputs
    from nanog1.genomics.fasta_index import linked_reference

    options = options or PredictOptions()
    with tempfile.TemporaryDirectory(prefix="nanog1-app-predict-") as tmp:
        ref = linked_reference(reference, reference_folder or Path(tmp)) if reference is not None else None
        rule = model.filter_choice(options.filter).rule
        adata = read_inputs(paths, ref, rule, not_measured=options.not_measured, on_error=on_error,
                            max_skip_fraction=max_skip_fraction, skip_limit_name=SKIP_LIMIT_NAME)
    if adata.n_obs == 0:
        raise UserError(f"{', '.join(map(str, paths))}: no tumours with mutations to predict")
    with mismatch_warnings_stated():
        predict(adata, model, options)
    return adata
