"""Type new tumours with a trained or packaged model: `nanog1 predict` and `nanog1.encoder.predict`.

In: a cohort AnnData (or, through `read_inputs`, VCF/BCF, MAF, SigProfiler-style catalogue matrices
and .h5ad cohorts). Out, written into the AnnData (scanpy style; `copy=True` returns a new one):
obsm['proba_type'] (temperature-calibrated), obs['predicted_type'] ("uncertain" when abstaining),
obs['predicted_type_raw'], obs['type_confidence'], obs['abstain'] with obs['abstain_reason'],
obsm['X_nanog1'], obs['neighbours'] (nearest reference tumours by embedding cosine), and signature
exposures with bootstrap intervals (obsm['exposures_<set>'], '_lo', '_hi'; nanog1.fitting) for
each set with COSMIC signatures, per tumour over the sets it measured (NaN rows, "not measured", for a
tumour that did not measure the set; `fit_exposures`). A packaged ensemble (several members,
test-time views) is scored as one model: mean log-probabilities over members x views, then its one temperature
(nanog1.encoder.ensemble.member_views_proba); embeddings and neighbours come from member 0.
Sets a tumour did not measure are masked as unmeasured (key-padded, per tumour: a Strelka2 SNV file
alone measured no indels, while a Mutect2 tumour of the same cohort keeps its own; the record is
nanog1.schema.measured_sets_per_sample), for the type head and for the out-of-distribution test alike
(issue 31); uns['nanog1_predict']['channel_sets_masked'] names those the model reads that are masked for
every tumour, obs['channel_sets_masked'] each tumour's own, uns['nanog1_predict']
['channel_sets_masked_per_tumour'] those of the tumours masked beyond the former, with the reason in
['unmeasured_why'] where the input files tell it or the user declared them (`PredictOptions.not_measured`,
`--not-measured`: every tumour's, the same record; nanog1.encoder.predict_notes says it). A VCF/MAF tumour
with many substitutions and no indel (no doublet) is read as zero indels and listed in
['unstated_snv_only'] (nanog1.genomics.unstated_sets.unstated_snv_only), never guessed; so are a whole file of
several tumours (['unstated_snv_only_files']) and a whole run of many files (['unstated_snv_only_run'])
without one indel among many substitutions. An event-view
model hides them from its CLS catalogue summary and leaves out the tumour's calls of a kind of call it did
not measure (indels declared `--not-measured` in a file that holds some: tokens, gene bag, hotspots and
consequence shares alike, as the input without those calls would give; nanog1.encoder.data.for_model;
how many per tumour: obs['events_not_read'], uns['nanog1_predict']['events_not_read']); it has no
"unmeasured" token, so such a tumour reads as one without those mutations, which
uns['nanog1_predict']['event_view_masking'] states.

A tumour whose mutation count (over the sets it measured) lies below the 1st percentile of the model's
reference tumours over the same sets (each tumour its own: `tumour_burden_ranges`), or above 10x their
maximum, abstains with reason "burden N below the range the model was trained on (≥ M)": a few
mutations (an exome, a tiny VCF) are typed with confidence by a whole-genome model all the same. The
range comes from `burden_<set>` arrays of the model's reference.npz, so packaged models have it; run
folders of `nanog1 train` (MLflow runs) keep no training burdens and get no burden check.

A model whose card states its assay never types the other one: each tumour's assay is stated
(`PredictOptions.assay` 'genome' / 'exome') or detected ('auto', the rules of `nanog1.genomics.assay`:
mostly protein-coding consequences, or mostly inside exome capture targets). An exome given to a
whole-genome model (`"assay": "genome"`, pcawg-catalogue) abstains with reason "exome input: model trained
on whole genomes (evidence)"; a whole genome given to an exome model (`"assay": "exome"`, tcga-exome)
abstains with reason "genome input: model trained on exomes (evidence)".

Genes: an event model that reads each mutation's gene (tcga-exome) makes a tumour with no gene on any of
its calls (a plain VCF, a MAF without Hugo_Symbol) abstain with reason "no gene annotation: ..."
(`gene_mismatch`): typed from class and position alone it was confidently wrong. A VCF gets genes
through `nanog1 ingest --genes` (BED/GTF/GFF3) and is then predicted as that cohort.

Protein changes: a model whose hotspot bag reads protein codons (tcga-exome: sites + codons) states, per
tumour, whether its calls carry a protein change (obs['protein_change']; a plain VCF or a MAF without
HGVSp_Short / Protein_Change has none, so its codon columns read "absent"), and uns['nanog1_predict']
(JSON, report, table line) and a ProteinChangeMismatchWarning state the mismatch
(nanog1.encoder.protein_input).

Training overlap: input tumours that the model's reference.npz lists as trained or validated on (PCAWG
genomes given to pcawg-catalogue) are counted in uns['nanog1_predict']['tumours_in_training'] and
stated ('training_overlap', a TrainingOverlapWarning, the CLI's warnings): their calls are not held out.

FILTER: a model that records the rule it was trained with (`input_filter`, nanog1.encoder.input_filter;
tcga-exome: every call) has its VCF/MAF inputs ingested with that rule unless the user names another
(`PredictOptions.filter`, `--filter`); uns['nanog1_predict'] (and so the JSON and the reports) states
both rules and any mismatch, and a mismatch also raises a FilterMismatchWarning.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.schema import CANCER_TYPE, TOKEN_COUNT

if TYPE_CHECKING:
    import torch

DEFAULT_MODEL = "pcawg-catalogue"
#: Input tumours ranked against the reference at once for their neighbours (`PredictOptions.neighbour_chunk`):
#: 256 x 13,054 tcga-exome reference tumours hold about 80 MB (cosines, negated copy, ranking).
NEIGHBOUR_CHUNK = 256


@dataclass
class PredictOptions:
    """How much to compute beside the type: neighbours, exposure fitting and its bootstrap draws."""

    top: int = 3
    neighbours: int = 5
    exposures: bool = True
    draws: int = 50
    seed: int = 0
    assay: str = "auto"  # genome | exome | auto (nanog1.genomics.assay); checked against the model's
    filter: str | None = None  # PASS | all: the user's FILTER rule; None = the model's own (input_filter)
    operating_point: str = "in-study"  # in-study | new-study: which threshold (abstention.operating_point)
    #: channel sets the calls did not measure (`--not-measured`: names or groups, e.g. 'indels'), declared
    #: unmeasured for every tumour (nanog1.genomics.measured_sets.declare_not_measured) before it is scored
    not_measured: tuple[str, ...] | str = ()
    #: input tumours ranked against the reference at once for `neighbours` (`nearest_reference`): bounds the
    #: memory of that step (chunk x reference tumours, three float64-sized arrays), not its results
    neighbour_chunk: int = NEIGHBOUR_CHUNK
    #: `--adapt-priors`: re-estimate the batch's type mix from its own probabilities and adapt them to it
    #: (nanog1.encoder.prior_shift; needs the model's prior-adaptation record and a large enough batch)
    adapt_priors: bool = False


def read_inputs(paths: list[Path] | Path | str, reference: Path | None = None, filter: str = "PASS",
                samples: Path | None = None, not_measured: tuple[str, ...] | str = (), *,
                on_error: str = "stop", max_skip_fraction: float | None = None,
                skip_limit_name: str | None = None, progress: bool = False,
                log_every: float = 0.0) -> ad.AnnData:
    """One cohort from input files (a list of paths, or one path): an .h5ad as is (read with whatever
    FILTER rule made it), anything else through `nanog1 ingest` (same rules: tumour column, skips; FILTER
    rule `filter`, PASS or all; sample sheet `samples`, e.g. one tumour's SNV and indel files as one
    sample), into a temporary file that is read back. Strelka2's SNV and indel files of one folder without
    a sheet are refused: they would be typed as two tumours, each with half its mutations. `not_measured`
    (channel sets or groups, e.g. 'indels'): declared unmeasured for every tumour (`--not-measured`;
    nanog1.genomics.measured_sets.declare_not_measured), for a cohort .h5ad as for files.

    `on_error` and `max_skip_fraction` are ingest's (`IngestOptions`; None: its default limit): 'skip' reads
    a batch past a malformed line or a file that cannot be read at all (counted as malformed_line /
    unreadable_file in uns['nanog1'], so in predict's closing line and predictions.json) instead of
    stopping at the first one. `skip_limit_name`: how the caller's user sets that limit, for the error of a
    file that loses more (None: `--max-skip-fraction`; the dashboard names its own control). `progress`: a
    bar over the files on stderr (`nanog1 predict` on a terminal: a cohort's files take minutes); `log_every`:
    seconds between plain 'predict: read 37/1,000 files' lines where no bar shows (a log; 0: none)."""
    from nanog1.genomics.cohort import conform_cohort, is_cohort_file, read_cohort
    from nanog1.genomics.ingest import IngestOptions, drop_index_files, ingest
    from nanog1.genomics.measured_sets import declare_not_measured
    from nanog1.schema import parse_not_measured

    not_measured = parse_not_measured(not_measured)  # a wrong name is told before any file is read
    limit = {} if max_skip_fraction is None else {"max_skip_fraction": max_skip_fraction}
    if skip_limit_name is not None:
        limit["skip_limit_name"] = skip_limit_name
    options = IngestOptions(filter=filter, command="predict", not_measured=not_measured, on_error=on_error,
                            progress=progress, log_every=log_every, **limit)  # a wrong on_error: told now
    paths = drop_index_files(check_input_paths(paths, on_error))  # `calls/*` with its .tbi files
    cohorts = [p for p in paths if is_cohort_file(p)]
    if cohorts:
        if len(paths) > 1:
            raise UserError(f"{cohorts[0]}: give a cohort .h5ad alone, not beside other inputs")
        if samples is not None:
            raise UserError(f"{samples}: a sample sheet names the samples of VCF/MAF inputs, not of a cohort")
        try:
            adata = conform_cohort(read_cohort(cohorts[0]))
        except UserError:
            raise  # read_cohort names the file and what is wrong with it
        except (OSError, ValueError) as err:
            raise UserError(f"{cohorts[0]}: not a readable NanoG1 cohort ({err})") from None
        _refuse_reference_for_cohort(adata, cohorts[0], reference)
        declare_not_measured(adata, not_measured)
        return adata
    if samples is None:
        _refuse_split_call_files(paths)
    with tempfile.TemporaryDirectory(prefix="nanog1-predict-") as tmp:
        out = Path(tmp) / "cohort.h5ad"
        ingest(paths, reference, samples, out, options)
        adata = read_cohort(out)
    if not adata.n_obs:
        names = ", ".join(map(str, paths))
        skips = dict(adata.uns.get("nanog1", {}).get("skips") or {})
        if skips.get("unreadable_file"):  # --on-error skip left none: say what became of the files
            raise UserError(f"{names}: no tumour to type: {skips['unreadable_file']} of {len(paths)} file(s) "
                            "could not be read (skipped as unreadable_file), and the rest name none; "
                            "--on-error stop names what is wrong with each")
        raise UserError(f"{names}: no tumour to type (no call records, and no sample columns naming one)")
    return adata


def _refuse_reference_for_cohort(adata: ad.AnnData, path: Path, reference: Path | None) -> None:
    """A UserError for a --reference given with a cohort .h5ad ingested without one: its sets were read
    at ingest, so the FASTA would be silently unused and SBS96/ID83 stay unmeasured while the outputs say
    'without a reference FASTA'. A cohort ingested with a reference is read as it is."""
    if reference is None or (adata.uns.get("nanog1") or {}).get("reference"):
        return
    raise UserError(f"{path}: --reference {reference} cannot be applied to a cohort .h5ad: its channel sets "
                    "were read when it was ingested, without a reference FASTA; give its VCF/MAF files with "
                    "--reference instead, or re-ingest them with it (`nanog1 ingest ... -r`)")


def check_input_paths(paths: list[Path | str] | Path | str, on_error: str = "stop") -> list[Path]:
    """The inputs (a list, or one path) as paths; a UserError for none, a missing one or (unless
    `on_error` is 'skip', under which ingest counts it as an unreadable_file, as it does a file cut short)
    an empty one (cheap: `nanog1 predict` says so before loading the model)."""
    from nanog1.io import missing_input

    paths = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    if not paths:
        raise UserError("predict: give at least one input file")
    for p in paths:
        if not p.exists():
            raise UserError(f"{p}: {missing_input(p)}")
        if p.is_file() and p.stat().st_size == 0 and on_error != "skip":
            raise UserError(f"{p}: empty file")
    return paths


def _refuse_split_call_files(paths: list[Path]) -> None:
    from nanog1.genomics.vcf import refuse_split_call_files, refuse_unnamed_pairs

    refuse_split_call_files(paths, "typed")
    refuse_unnamed_pairs(paths, "typed")


@dataclass(frozen=True)
class LoadedModel:
    """A model read once and kept in memory (the dashboard caches it): weights, calibration, reference."""

    name: str
    folder: Path
    network: torch.nn.Module  # the MutationEncoder, in eval mode
    saved: dict
    calibration: dict
    reference: dict[str, np.ndarray] | None
    assay: str | None = None  # what the model was trained on (its card's "assay"), None when unstated
    members: tuple = ()  # further ensemble members (MutationEncoders) of a packaged model
    views: tuple[str, ...] = ("full",)  # test-time views averaged (nanog1.encoder.ensemble.VIEWS)
    input_filter: str | None = None  # FILTER rule it was trained with (PASS / all), None when unstated
    genome_build: str | None = None  # build of the positions it reads (its card's "genome_build")

    def filter_choice(self, asked: str | None = None):
        """The FILTER rule to ingest inputs with: `asked` (the user's) when given, else the model's, else
        PASS (nanog1.encoder.input_filter.choose)."""
        from nanog1.encoder.input_filter import choose

        return choose(self.input_filter, asked)


def load_predictor(model: str | Path = DEFAULT_MODEL) -> LoadedModel:
    """Read a packaged model (by name) or a run folder (holding model.pt) for repeated `predict` calls."""
    from nanog1.encoder import pretrained
    from nanog1.encoder.calibration import load_calibration
    from nanog1.encoder.ensemble import packaged_members
    from nanog1.encoder.input_filter import model_rule
    from nanog1.encoder.loop import MODEL
    from nanog1.encoder.loop import load_model as load_network

    folder = pretrained.resolve(model)
    network, saved = load_network(folder / MODEL)
    members, views = packaged_members(saved)
    calib = load_calibration(folder) or {}
    card = pretrained.card(folder)
    return LoadedModel(str(model), folder, network, saved, calib, pretrained.reference(folder),
                       card.get("assay"), tuple(members), tuple(views), model_rule(saved, card),
                       card.get("genome_build"))


def predict(
    adata: ad.AnnData,
    model: str | Path | LoadedModel = DEFAULT_MODEL,
    options: PredictOptions | None = None,
    copy: bool = False,
) -> ad.AnnData | None:
    """Score `adata` with `model` (a packaged name, a run folder, or a `load_predictor` result); results go
    into the AnnData.

    Returns the annotated copy when `copy`, else None (the input is annotated in place).
    """
    from dataclasses import replace

    from nanog1.encoder.abstention import (
        AbstentionRule,
        confidence_entropy,
        labelled_types,
        operating_point,
    )
    from nanog1.encoder.calibration import apply_temperature
    from nanog1.encoder.ensemble import member_views_proba
    from nanog1.genomics.measured_sets import declare_not_measured
    from nanog1.schema import parse_not_measured, require_anndata

    require_anndata(adata, "predict")
    if not adata.n_obs:
        raise UserError("predict: the AnnData holds no tumour to type (0 observations)")
    options = options or PredictOptions()
    declared = parse_not_measured(options.not_measured)  # a wrong name is told before any work
    loaded = model if isinstance(model, LoadedModel) else load_predictor(model)
    point = operating_point(loaded.calibration, options.operating_point, loaded.name)  # before any work
    adata = adata.copy() if copy else adata
    declare_not_measured(adata, declared)
    folder, saved = loaded.folder, loaded.saved
    networks = [loaded.network, *loaded.members]
    _check_tokens(adata, loaded)
    record = prior_record(loaded, adata.n_obs) if options.adapt_priors else None  # told before any pass
    pred, averaged = member_views_proba(adata, loaded.name, networks, saved, list(loaded.views))
    if averaged is None:
        raise UserError(
            f"{loaded.name}: this model has no cancer-type head (task {saved['train_config']['task']})"
        )
    classes = list(saved["classes"])
    calib = loaded.calibration
    proba = apply_temperature(averaged, float(calib.get("temperature", 1.0)))
    adapted = None
    if record is not None:
        from nanog1.encoder.prior_shift import adapt_batch, adapted_point

        proba, adapted = adapt_batch(proba, record, classes)
        point, refitted = adapted_point(point, record)
        adapted |= {"threshold_refitted": refitted, "confidence_threshold": float(point["threshold"]),
                    "operating_point": str(point["name"]),
                    "refitted_point_available": bool((record.get("operating_points") or {}).get("new_study"))}
    rule = AbstentionRule.from_dict(calib["abstention"]) if calib.get("abstention") else AbstentionRule()
    rule = replace(rule, confidence_threshold=point["threshold"])
    mismatch = _either(_either(assay_mismatch(adata, loaded, options.assay), gene_mismatch(adata, loaded)),
                       build_mismatch(adata, loaded))
    thresholds, used = tumour_thresholds(adata, saved, calib, rule.confidence_threshold)
    if adapted is not None:  # the closing line names every threshold that applied to the adapted batch
        adapted["thresholds_raised"] = raised_table(pattern_record(adata, used, calib)["pattern_thresholds"])
    reasons = abstain_reasons(adata, proba, rule, tumour_burden_ranges(adata, loaded.reference), mismatch,
                              thresholds)
    uncertain = reasons != ""
    shown, raw = labelled_types(proba, classes, uncertain)
    adata.obsm["proba_type"] = pd.DataFrame(proba, index=adata.obs_names, columns=classes)
    adata.obs["predicted_type"], adata.obs["predicted_type_raw"] = shown, raw
    adata.obs["type_confidence"] = confidence_entropy(proba)[0].astype(np.float32)
    adata.obs["abstain"] = uncertain
    adata.obs["abstain_reason"] = reasons
    adata.obs["confidence_threshold"] = thresholds.astype(np.float32)
    adata.obsm["X_nanog1"] = pred.embedding.astype(np.float32)
    if loaded.reference is not None and options.neighbours > 0:
        adata.obs["neighbours"] = nearest_reference(pred.embedding, loaded.reference, options.neighbours,
                                                   options.neighbour_chunk)
    if options.exposures:
        fit_exposures(adata, options)
    adata.uns["nanog1_predict"] = {
        "model": loaded.name,
        "model_dir": str(folder),
        "classes": classes,
        "temperature": float(calib.get("temperature", 1.0)),
        "confidence_threshold": float(rule.confidence_threshold),
        "operating_point": point["name"],
        "operating_point_fitted_on": point["fitted_on"],
        "operating_point_transfer": point["transfer"],
        "channel_sets_scored": _scored_sets(adata),
        **training_not_read_record(saved),
        **pattern_record(adata, used, calib),
        **not_raised_record(adata, saved, calib, used),
        **masked_record(adata, saved, loaded.name),
        **unstated_snv_only_record(adata),
        "ensemble_members": len(networks),
        "views": list(loaded.views),
        "model_assay": loaded.assay or "unstated",
        "assay_mode": options.assay,
        "abstained_by_reason": reason_counts(reasons),
        **filter_record(adata, loaded, options.filter),
        **protein_record(adata, loaded),
        **consequence_record(adata, loaded),
        **build_record(adata, loaded),
        **overlap_record(adata, loaded),
        "assay_note": assay_note(adata, loaded, options.assay),
        "prior_adaptation": adapted or {"applied": False},
    }
    return adata if copy else None


def prior_record(loaded: LoadedModel, n_tumours: int) -> dict:
    """The model's prior-adaptation record for `--adapt-priors`, a batch of `n_tumours` checked against its
    minimum (UserErrors: a model without a record, too small a batch), before any tumour is scored."""
    from nanog1.encoder.prior_shift import check_batch, load_record

    record = load_record(loaded.name, loaded.folder, loaded.calibration, list(loaded.saved["classes"]))
    check_batch(n_tumours, record)
    return record


def assay_note(adata: ad.AnnData, loaded: LoadedModel, mode: str) -> str:
    """'' unless the model states its assay, --assay is auto and tumours were given as catalogue counts
    (no positions or consequences: `assay_mismatch` cannot tell a whole genome from an exome, and types
    them as before): then the warning that their assay was not checked, and how to state it. A tumour
    read from calls but with too few mutations to tell is not warned of."""
    if loaded.assay not in MISMATCH_REASONS or mode != "auto" or "assay" not in adata.obs:
        return ""
    unknown = (adata.obs["assay"].astype(str) == "unknown").to_numpy()
    n = int((unknown & counts_only(adata)).sum())
    if not n:
        return ""
    genome = loaded.assay == "genome"
    trained, other = ("whole genomes", "an exome") if genome else ("exomes", "a whole genome")
    return (f"assay not checked for {n} of {adata.n_obs} tumour(s): catalogue counts carry no positions or "
            f"consequences to tell a whole genome from an exome; {loaded.name} was trained on {trained} and "
            f"abstains on {other}: say --assay genome or --assay exome")


def counts_only(adata: ad.AnnData) -> np.ndarray:
    """Per tumour, whether it was given as catalogue counts: mutations but no call tokens (a catalogue
    matrix row, or a cohort ingested without tokens). Per tumour, not per cohort: catalogue matrices given
    beside a VCF are still counts only, and their assay still unchecked."""
    tokens = adata.uns.get("tokens")
    if not tokens or "pos" not in tokens or not len(tokens["pos"]):
        return np.ones(adata.n_obs, dtype=bool)
    if TOKEN_COUNT in adata.obs:
        n_tokens = adata.obs[TOKEN_COUNT].to_numpy(dtype=np.int64)
    else:
        n_tokens = np.diff(np.asarray(tokens["offsets"], dtype=np.int64))
    return (n_tokens == 0) & (mutation_totals(adata) > 0)


def overlap_record(adata: ad.AnnData, loaded: LoadedModel) -> dict:
    """How many input tumours the model's reference.npz lists as trained or validated on (a packaged
    model's own training tumours, e.g. PCAWG genomes given to pcawg-catalogue): their calls are not
    held-out calls. uns['nanog1_predict'] 'tumours_in_training' and the sentence 'training_overlap'
    ('' = none; also raised as nanog1.encoder.evaluate.TrainingOverlapWarning)."""
    import warnings

    from nanog1.encoder.evaluate import TrainingOverlapWarning

    if loaded.reference is None or "sample" not in loaded.reference:
        return {"tumours_in_training": -1, "training_overlap": ""}
    seen = adata.obs_names.isin([str(x) for x in loaded.reference["sample"]])
    n = int(seen.sum())
    note = ""
    if n:
        shown = ", ".join(map(str, adata.obs_names[seen][:3])) + (", ..." if n > 3 else "")
        note = (f"training overlap: {n} of {adata.n_obs} tumour(s) ({shown}) are among those {loaded.name} "
                "was trained or validated on (its reference.npz): their calls are not held-out calls")
        warnings.warn(note, TrainingOverlapWarning, stacklevel=3)
    return {"tumours_in_training": n, "training_overlap": note}


def protein_record(adata: ad.AnnData, loaded: LoadedModel) -> dict:
    """What uns['nanog1_predict'] says about protein changes (nanog1.encoder.protein_input): how many of
    the model's hotspots are protein codons, how many tumours carry no protein change, and the mismatch
    sentence ('' = none; also raised as a ProteinChangeMismatchWarning). Sets obs['protein_change']
    (whether any of the tumour's calls carries one) when the model reads codons."""
    from nanog1.encoder.protein_input import ProteinChangeMismatchWarning, codon_hotspots, mismatch

    codons = codon_hotspots(loaded.saved["encoder_config"])
    if not codons:
        return {"codon_hotspots": 0, "protein_change_mismatch": ""}
    lacking, note = _annotation_stated(adata, loaded, "codon", "protein_change", len(codons), mismatch,
                                       ProteinChangeMismatchWarning)
    return {"codon_hotspots": len(codons), "tumours_without_protein_change": lacking,
            "protein_change_mismatch": note}


def consequence_record(adata: ad.AnnData, loaded: LoadedModel) -> dict:
    """What uns['nanog1_predict'] says about consequences, as `protein_record` does about protein changes:
    for an event model whose tokens carry them, obs['consequence'] (whether any of the tumour's calls has
    one), the tumours without, and the mismatch sentence ('' = none; also a ConsequenceMismatchWarning)."""
    from nanog1.encoder.protein_input import (
        ConsequenceMismatchWarning,
        consequence_mismatch,
        consequence_values,
    )

    n_values = consequence_values(loaded.saved["encoder_config"])
    if not n_values:
        return {"consequence_mismatch": ""}
    lacking, note = _annotation_stated(adata, loaded, "consequence", "consequence", n_values,
                                       consequence_mismatch, ConsequenceMismatchWarning)
    return {"tumours_without_consequence": lacking, "consequence_mismatch": note}


def _annotation_stated(adata: ad.AnnData, loaded: LoadedModel, field: str, column: str, n: int, sentence,
                       warning: type[Warning]) -> tuple[int, str]:
    """Shared by the records above: obs[column] = whether any of the tumour's calls carries token `field`,
    the mismatch `sentence(n, has, has_calls)` raised as `warning` when not '', and (tumours without it,
    the sentence)."""
    import warnings

    from nanog1.encoder.protein_input import annotated

    has = annotated(adata, field)
    adata.obs[column] = has
    note = sentence(n, has, mutation_totals(adata) > 0)
    if note:
        warnings.warn(f"{loaded.name}: {note}", warning, stacklevel=4)  # predict's caller
    return int((~has).sum()), note


def filter_record(adata: ad.AnnData, loaded: LoadedModel, asked: str | None) -> dict:
    """What uns['nanog1_predict'] says about FILTER: the rule the input was read with (its provenance;
    'n/a' for catalogue counts), the model's, where the applied rule came from ('user', 'model',
    'default', or 'input': a cohort ingested beforehand with its own rule), and the mismatch sentence
    ('' = none; also raised as a FilterMismatchWarning). A rule `asked` for that the cohort was not read
    with is a UserError (an ingested cohort cannot be re-filtered)."""
    import warnings

    from nanog1.encoder.input_filter import FilterMismatchWarning, cohort_rule, dropped_calls, mismatch

    applied, choice = cohort_rule(adata), loaded.filter_choice(asked)
    if asked and applied and asked != applied:
        raise UserError(f"the cohort was ingested with --filter {applied}, so --filter {asked} cannot be "
                        "applied to it: give the VCF/MAF files, or re-ingest with that rule")
    note = mismatch(loaded.input_filter, applied, dropped_calls(adata))
    if note:
        warnings.warn(f"{loaded.name}: {note}", FilterMismatchWarning, stacklevel=3)
    source = choice.source if applied == choice.rule else "input"
    return {"input_filter": applied or "n/a", "model_input_filter": loaded.input_filter or "unstated",
            "filter_source": source, "filter_mismatch": note}


def _check_tokens(adata: ad.AnnData, loaded: LoadedModel) -> None:
    """An event-view model (one token per mutation) cannot read tumours whose mutations are only counted
    (catalogue matrices, cohorts without uns['tokens']): they would be read as having no mutations."""
    from nanog1.schema import TOKENS, token_spans

    if loaded.saved["encoder_config"].get("view") != "events":
        return
    lengths = token_spans(adata)[1] if adata.uns.get(TOKENS) else np.zeros(adata.n_obs, dtype=np.int64)
    bare = (np.asarray(lengths) == 0) & (_dense(adata.X).sum(1) > 0)
    if bare.any():
        raise UserError(
            f"{loaded.name}: this model reads one token per mutation (class, gene, consequence, position), "
            f"and {int(bare.sum())} of {adata.n_obs} tumour(s) have catalogue counts only (e.g. "
            f"{adata.obs_names[np.flatnonzero(bare)[0]]}): give MAF or VCF files (catalogue matrices and "
            "cohorts without uns['tokens'] cannot be scored by it)"
        )


def assay_mismatch(adata: ad.AnnData, loaded: LoadedModel, mode: str) -> np.ndarray | None:
    """Per tumour, why its assay is not the model's ('' = it is, or cannot be told), when the model states
    its assay (whole genome or exome); None otherwise. Sets obs['assay'] (genome / exome / unknown)."""
    from nanog1.genomics.assay import detect_assay

    if loaded.assay not in MISMATCH_REASONS:
        return None
    call = detect_assay(adata, mode)
    adata.obs["assay"] = pd.Categorical(call.assay.astype(str), categories=["genome", "exome", "unknown"])
    other = "exome" if loaded.assay == "genome" else "genome"
    reason = MISMATCH_REASONS[loaded.assay]
    return np.array([f"{reason} ({e})" if a == other else "" for a, e in zip(call.assay, call.evidence,
                                                                              strict=True)], dtype=object)


GENE_REASON = ("no gene annotation: the model reads each mutation's gene (give a MAF with Hugo_Symbol, or "
               "`nanog1 ingest` the VCF with --genes and predict on that cohort)")


def gene_mismatch(adata: ad.AnnData, loaded: LoadedModel) -> np.ndarray | None:
    """Per tumour with mutations but no gene on any of them, GENE_REASON ('' = it has genes), when the
    model is an event model that reads genes; None otherwise. Such a tumour (a plain VCF, a MAF without
    Hugo_Symbol) would be typed from its class and position tokens alone, confidently and wrongly (40 MC3
    LIHC exomes without genes: 0 of 40 typed LIHC, 6 accepted, against 34 of 40 with them)."""
    from nanog1.encoder.protein_input import annotated

    config = loaded.saved["encoder_config"]
    if config.get("view") != "events" or not (config.get("event_vocab") or {}).get("gene"):
        return None
    bare = ~annotated(adata, "gene") & (mutation_totals(adata) > 0)
    return np.where(bare, GENE_REASON, "").astype(object)


class GenomeBuildWarning(UserWarning):
    """Tumours on another genome build than the model reads, or whose build is unknown or not recorded."""


def recorded_builds(adata: ad.AnnData) -> pd.DataFrame | None:
    """Per tumour (index: obs_names) the genome build its calls are on ('' = not known) and the evidence,
    from the ingest provenance uns['nanog1']['genome_build'] (nanog1.genomics.build_checks.genome_builds);
    None for a cohort ingested before NanoG1 recorded it. A tumour a merged cohort holds twice keeps the
    build its parts state (two different ones read 'mixed')."""
    table = (adata.uns.get("nanog1") or {}).get("genome_build")
    if not isinstance(table, pd.DataFrame) or "sample" not in table:
        return None
    table = table.astype({"sample": str, "genome_build": str, "evidence": str})
    names = pd.Index(adata.obs_names.astype(str))
    if not table["sample"].is_unique:  # a merged cohort's sample held by several parts
        table = table.assign(unknown=table["genome_build"] == "")
        table = table.sort_values(["sample", "unknown"], kind="stable")  # a known build's evidence first
        builds = table[~table["unknown"]].groupby("sample")["genome_build"].agg(
            lambda b: b.iloc[0] if b.nunique() == 1 else "mixed")
        table = table.drop_duplicates("sample").set_index("sample")
        table["genome_build"] = builds.reindex(table.index, fill_value="")
        table = table.reset_index()
    table = table.set_index("sample").reindex(names, fill_value="")
    return pd.DataFrame({"genome_build": table["genome_build"].to_numpy(),
                         "evidence": table["evidence"].to_numpy()}, index=adata.obs_names)


def _source(evidence: str) -> str:
    """'NCBI_Build' of 'x.maf: NCBI_Build: GRCh38' (the evidence's source, between its file and detail)."""
    parts = evidence.split(": ")
    return parts[1] if len(parts) > 2 else parts[0]


#: Why a tumour on another species' genome abstains, whatever build the model reads (every NanoG1 model is
#: trained on human tumours: PCAWG, TCGA, or cohorts simulated from COSMIC's human signatures).
OTHER_SPECIES_WHY = "not a human genome, and the model was trained on human tumours"


def _build_reason(build: str, evidence: str, model: str | None) -> str:
    """One tumour's genome-build abstention reason ('' = none): another species' genome (build.other_species:
    mm10, rn6, ... as a SigProfiler file's genome column or a MAF's NCBI_Build names them) for any model;
    another human build than the one a model reading positions states."""
    from nanog1.genomics.build import other_species

    if other_species(build):
        return f"genome build {build} ({_source(evidence)}): {OTHER_SPECIES_WHY}"
    if build and model is not None and build != model:
        return f"genome build {build} ({_source(evidence)}): model trained on {model} positions"
    return ""


def build_mismatch(adata: ad.AnnData, loaded: LoadedModel) -> np.ndarray | None:
    """Per tumour whose calls are on another genome build than the model's card states ("genome_build"),
    or on another species' genome (any model: all are trained on human tumours), the reason naming the
    build and its source ('' = same or not known); None when the model states no build (it reads no
    positions: pcawg-catalogue) and no tumour is on another species' genome. The build comes from the ingest
    provenance (`recorded_builds`: a VCF header's contig lengths or names, a MAF's NCBI_Build, a SigProfiler
    file's genome column, the reference FASTA); obs['genome_build'] is set (the build, 'unknown', or 'not
    recorded' for an older cohort) whenever reasons are returned. An event model reads positions (1 Mb
    bins, hotspot sites): GRCh38 positions (GDC's MAFs, most new VCFs) given to a GRCh37 model miss its
    hotspots and shift its bins; a mouse tumour's catalogue is typed as a human cancer type by any model."""
    table = recorded_builds(adata)
    if table is None:
        if loaded.genome_build is None:
            return None
        adata.obs["genome_build"] = pd.Categorical(["not recorded"] * adata.n_obs)
        return np.full(adata.n_obs, "", dtype=object)
    reasons = np.array([_build_reason(b, e, loaded.genome_build) for b, e in table.itertuples(index=False)],
                       dtype=object)
    if loaded.genome_build is None and not reasons.astype(bool).any():
        return None
    adata.obs["genome_build"] = pd.Categorical(table["genome_build"].replace("", "unknown"))
    return reasons


def _examples(table: pd.DataFrame, samples: pd.Index, k: int = 3) -> str:
    """'T1: t1.vcf: ##contig lengths: ...; T2: ...' for the first `k` samples, with their evidence."""
    shown = "; ".join(f"{s}: {table.loc[s, 'evidence'] or 'no build stated'}" for s in samples[:k])
    return shown + ("; …" if len(samples) > k else "")


def build_record(adata: ad.AnnData, loaded: LoadedModel) -> dict:
    """What uns['nanog1_predict'] says about genome builds, for a model that states one (it reads
    positions) or tumours on another species' genome: its build, the tumours by build, and the note ('' =
    every tumour on the model's build; also raised as a GenomeBuildWarning): tumours on a non-human genome
    (they abstain under any model), tumours on another build (they abstain), tumours whose build
    is unknown (a VCF header without ##contig lengths, ##reference or ##assembly, as VarScan2 writes),
    or a cohort that does not record it (ingested before NanoG1 did): those are not checked."""
    import warnings

    from nanog1.genomics.build import other_species

    model = loaded.genome_build
    table = recorded_builds(adata)
    if model is None and (table is None or not any(map(other_species, table["genome_build"]))):
        return {"model_genome_build": "unstated", "genome_build_note": ""}  # build_mismatch set no obs
    stated = adata.obs["genome_build"].astype(str)
    counts = {str(k): int(v) for k, v in stated.value_counts().items()}
    species = stated[[other_species(b) is not None for b in stated]]
    if table is None:
        note = (f"genome build not recorded: the cohort was ingested before NanoG1 recorded it, so its "
                f"tumours are not checked against the model's {model} positions; re-ingest the VCF/MAF files "
                "to check them")
    else:
        checked = stated if model is not None else stated[[]]  # a catalogue model: other species only
        other = checked[(checked != model) & (checked != "unknown") & ~checked.index.isin(species.index)]
        unknown = checked[checked == "unknown"]
        parts = []
        if len(species):
            genomes = "/".join(sorted(set(species)))
            parts.append(f"non-human genome: {len(species)} of {adata.n_obs} tumour(s) on {genomes}; the "
                         "model was trained on human tumours, so they abstain "
                         f"({_examples(table, species.index)})")
        if len(other):
            builds = "/".join(sorted(set(other)))
            parts.append(f"genome build mismatch: {len(other)} of {adata.n_obs} tumour(s) on {builds}, "
                         f"the model reads {model} positions, so they abstain "
                         f"({_examples(table, other.index)})")
        if len(unknown):
            parts.append(f"genome build unknown for {len(unknown)} of {adata.n_obs} tumour(s), not "
                         f"checked against the model's {model} positions ({_examples(table, unknown.index)})"
                         f": make sure they are on {model} (a VCF header with ##contig lengths, or a MAF "
                         "with NCBI_Build, states it)")
        note = ". ".join(parts)
    if note:
        warnings.warn(f"{loaded.name}: {note}", GenomeBuildWarning, stacklevel=3)
    return {"model_genome_build": model or "unstated", "genome_builds": counts, "genome_build_note": note}


def _either(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """Per-tumour reasons of two checks joined ('; '), None when neither applies."""
    if a is None or b is None:
        return b if a is None else a
    return np.array([_join(x, y) for x, y in zip(a, b, strict=True)], dtype=object)


#: Abstention reasons by kind, in the order the summary lists them (prefix of the reason text).
REASON_KINDS = {k: k for k in ("exome input", "genome input", "no gene annotation", "genome build",
                                "no mutations", "burden", "measured sets not validated", "low confidence",
                                "out of distribution")}


def reason_counts(reasons: np.ndarray) -> dict[str, int]:
    """Abstaining tumours by kind of reason (a tumour with several reasons counts under each)."""
    parts = [r.split("; ") for r in np.asarray(reasons, dtype=str) if r]
    return {kind: n for kind, n in
            ((k, sum(any(p.startswith(k) for p in ps) for ps in parts)) for k in REASON_KINDS) if n}


def masked_record(adata: ad.AnnData, saved: dict, name: str = "the model") -> dict:
    """What uns['nanog1_predict'] says about unmeasured sets, per tumour (issue 31), and obs
    ['channel_sets_scored'] / obs['channel_sets_masked'] ('+'-joined sets each tumour was read with / had
    key-padded of those the model reads): `channel_sets_masked` (masked for every tumour),
    `channel_sets_masked_per_tumour` (parallel lists 'tumour', 'sets' ('+'-joined): the tumours masked
    beyond those, with all their masked sets), `tumours_masked` (how many have any set masked) and
    `unmeasured_why` (parallel lists 'tumour', 'sets', 'why': the masked sets a tumour's input files do not
    cover, and which files those are, e.g. 'ID83+ID12', 'Strelka2 SNV file only'). Lists, not dicts keyed
    by tumour, so that any sample name (one with a '/') writes to .h5ad. An event-view model (one token per
    mutation: tcga-exome) hides a tumour's masked sets from its catalogue summary only, which it reads as
    none of those mutations; `event_view_masking` says so, and whether its accuracy with masked sets was
    ever measured ('' when no tumour has a set masked or the model reads catalogues)."""
    names, measured, reads, masked = _sets_masked(adata, saved)
    everyone = [str(n) for n in names[masked.all(axis=0) & reads]] if len(masked) else []
    samples = [str(s) for s in adata.obs_names]
    adata.obs["channel_sets_scored"] = ["+".join(names[row]) for row in measured]
    adata.obs["channel_sets_masked"] = ["+".join(names[row]) for row in masked]
    per = {s: [str(n) for n in names[row]] for s, row in zip(samples, masked, strict=True)}
    beyond = {s: m for s, m in per.items() if set(m) - set(everyone)}
    told = _unmeasured_reasons(adata, per)
    left_out = _events_left_out(adata, saved)
    return {"channel_sets_masked": everyone,
            "channel_sets_masked_per_tumour": {"tumour": list(beyond),
                                               "sets": ["+".join(m) for m in beyond.values()]},
            "tumours_masked": int(masked.any(axis=1).sum()),
            "unmeasured_why": {"tumour": list(told), "sets": ["+".join(t[0]) for t in told.values()],
                               "why": [t[1] for t in told.values()]},
            "events_not_read": int(left_out.sum()),
            "event_view_masking": _event_view_note(saved, name, names[masked.any(axis=0)], left_out)}


def _sets_masked(adata: ad.AnnData, saved: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(set names, measured [tumours x sets], sets the model reads, masked = read by the model and not
    measured by the tumour). A model that keeps no padding record reads none (nothing stated masked)."""
    from nanog1.schema import SET_NAMES, SET_SIZES, measured_sets_per_sample

    measured = measured_sets_per_sample(adata).to_numpy(dtype=bool)
    reads = np.zeros(len(SET_NAMES), dtype=bool)
    if saved.get("channel_padding") is not None:
        padding, ends = np.asarray(saved["channel_padding"], dtype=bool), np.cumsum(SET_SIZES)
        reads = np.array([not padding[end - n : end].any() for end, n in zip(ends, SET_SIZES, strict=True)])
    return np.asarray(SET_NAMES), measured, reads, ~measured & reads


def tumour_thresholds(
    adata: ad.AnnData, saved: dict, calib: dict, base: float
) -> tuple[np.ndarray, list[str]]:
    """Per tumour: (confidence threshold, the measured pattern it was fitted for, '' = the operating point's).

    A tumour that measured fewer of the sets the model reads gets the threshold fitted on validation tumours
    with the same sets masked (calibration.json `pattern_thresholds`; abstention.pattern_threshold), never
    below `base`. A calibration without pattern thresholds (run folders, models packaged before) gives
    `base` for every tumour."""
    from nanog1.encoder.abstention import pattern_threshold

    patterns = list(calib.get("pattern_thresholds") or [])
    thresholds = np.full(adata.n_obs, float(base))
    if not patterns or not adata.n_obs:
        return thresholds, [""] * adata.n_obs
    names, _, _, masked = _sets_masked(adata, saved)
    used = []
    for i, row in enumerate(masked):
        thresholds[i], name = pattern_threshold(patterns, frozenset(str(n) for n in names[row]), float(base))
        used.append(name)
    return thresholds, used


def pattern_record(adata: ad.AnnData, used: list[str], calib: dict) -> dict:
    """uns['nanog1_predict']['pattern_thresholds']: per measured pattern whose threshold replaced the
    operating point's, the tumours it applied to, its threshold and what it gave on the validation tumours."""
    from nanog1.encoder.abstention import UNVALIDATED

    fitted = {str(p["name"]): p for p in calib.get("pattern_thresholds") or []}
    counts = pd.Series([u for u in used if u], dtype=object).value_counts()
    out = {}
    for name, n in counts.items():
        if name == UNVALIDATED:  # no threshold: these tumours are not typed (abstain_reasons says why)
            out[name] = {"tumours": int(n)}
            continue
        pattern = fitted[name]
        out[name] = {"tumours": int(n), "threshold": float(pattern["threshold"]),
                     "masked": [str(m) for m in pattern["masked"]],
                     **{k: float(pattern[k]) for k in ("top1", "coverage", "top1_accepted") if k in pattern}}
    return {"pattern_thresholds": out}


def not_raised_record(adata: ad.AnnData, saved: dict, calib: dict, used: list[str]) -> dict:
    """uns['nanog1_predict']['pattern_thresholds_not_raised']: per measured pattern whose threshold is at or
    below the operating point's (new-study 0.859 over the no-reference pattern's 0.799), the tumours that
    measured it and kept the point's threshold, the pattern's threshold and what it gave on validation
    tumours: the point's stated rates were measured on complete catalogues, not on theirs."""
    from nanog1.encoder.abstention import UNVALIDATED, pattern_threshold

    patterns = list(calib.get("pattern_thresholds") or [])
    if not patterns or not adata.n_obs:
        return {"pattern_thresholds_not_raised": {}}
    fitted = {str(p["name"]): p for p in patterns}
    names, _, _, masked = _sets_masked(adata, saved)
    kept: dict[str, int] = {}
    for row, raised in zip(masked, used, strict=True):
        _, name = pattern_threshold(patterns, frozenset(str(n) for n in names[row]), float("-inf"))
        if not raised and name not in ("", UNVALIDATED):  # its pattern's threshold is not above the point's
            kept[name] = kept.get(name, 0) + 1
    out = {name: {"tumours": n, "threshold": float(fitted[name]["threshold"]),
                  "masked": [str(m) for m in fitted[name]["masked"]],
                  **({"top1": float(fitted[name]["top1"])} if "top1" in fitted[name] else {})}
           for name, n in kept.items()}
    return {"pattern_thresholds_not_raised": out}


def raised_table(patterns: dict) -> dict:
    """{'threshold': [...], 'tumours': [...]}: the per-pattern thresholds of `pattern_record` that replaced
    the operating point's, and how many tumours each applied to (a table: it survives an .h5ad round trip);
    tumours no pattern covers (not typed) left out."""
    rows = [(float(p["threshold"]), int(p["tumours"])) for p in patterns.values() if "threshold" in p]
    return {"threshold": [t for t, _ in rows], "tumours": [n for _, n in rows]}


def _events_left_out(adata: ad.AnnData, saved: dict) -> np.ndarray:
    """Per tumour, how many of its calls an event-view model left out as of a kind of call that tumour did
    not measure (declared `--not-measured`, or its files hold none: nanog1.encoder.data.without_unmeasured),
    written to obs['events_not_read'] for an event model; zeros (and no column) for a catalogue model."""
    from nanog1.encoder.data import unmeasured_event_counts

    if saved["encoder_config"].get("view") != "events":
        if "events_not_read" in adata.obs:  # an event model's count, from an earlier predict of this cohort
            del adata.obs["events_not_read"]
        return np.zeros(adata.n_obs, dtype=np.int64)
    counts = unmeasured_event_counts(adata)
    adata.obs["events_not_read"] = counts
    return counts


def _unmeasured_reasons(adata: ad.AnnData, per: dict[str, list[str]]) -> dict[str, tuple[list[str], str]]:
    """Per tumour with masked sets `per` that its inputs explain: (those sets, why): its files hold one kind
    of call ('Strelka2 SNV file only', measured_sets.split_file_reasons), the user declared them not measured
    (obs['not_measured'], schema.DECLARED_WHY) and/or some of its calls lie on contigs the reference lacks
    (measured_sets.without_context_reasons); the reasons joined where several apply."""
    from nanog1.genomics.measured_sets import split_file_reasons, without_context_reasons
    from nanog1.schema import DECLARED_UNMEASURED, DECLARED_WHY

    files = split_file_reasons(adata)
    declared = {}
    if DECLARED_UNMEASURED in adata.obs:
        declared = {str(t): set(str(v).split("+")) for t, v in adata.obs[DECLARED_UNMEASURED].items()
                    if isinstance(v, str) and v}
    contigs = without_context_reasons(adata)
    told = {}
    for sample, masked in per.items():
        reasons = [(set(files[sample][0]), files[sample][1])] if sample in files else []
        reasons += [(declared[sample], DECLARED_WHY)] if sample in declared else []
        reasons += [(set(contigs[sample][0]), contigs[sample][1])] if sample in contigs else []
        sets = [m for m in masked if any(m in covered for covered, _ in reasons)]
        why = [w for covered, w in reasons if any(m in covered for m in masked)]
        if sets:
            told[sample] = (sets, " and ".join(why))
    return told


def unstated_snv_only_record(adata: ad.AnnData) -> dict:
    """uns['nanog1_predict']['unstated_snv_only']: parallel lists 'tumour', 'kind' ('indels' / 'doublets'),
    'note' of the VCF/MAF tumours with many substitutions and no indel (no doublet) whose record says they
    were measured (nanog1.genomics.unstated_sets.unstated_snv_only; predict_notes states them); and
    ['unstated_snv_only_files']: parallel lists 'file', 'tumours', 'substitutions', 'note' of the VCF/MAF
    inputs of several tumours without one indel among many substitutions (unstated_indel_free_files); and
    ['unstated_snv_only_run']: 'files', 'tumours', 'substitutions', 'note' of a run of many VCF/MAF files
    without one indel among many substitutions (unstated_indel_free_run; {} for none)."""
    from nanog1.genomics.unstated_sets import (
        unstated_indel_free_files,
        unstated_indel_free_run,
        unstated_snv_only,
    )

    found = unstated_snv_only(adata)
    files = unstated_indel_free_files(adata)
    run = unstated_indel_free_run(adata, files)
    keys = ("files", "tumours", "substitutions", "note")
    return {"unstated_snv_only": {"tumour": [f[0] for f in found], "kind": [f[1] for f in found],
                                  "note": [f[2] for f in found]},
            "unstated_snv_only_files": {"file": [f[0] for f in files], "tumours": [f[1] for f in files],
                                        "substitutions": [f[2] for f in files],
                                        "note": [f[3] for f in files]},
            "unstated_snv_only_run": dict(zip(keys, run, strict=True)) if run else {}}


def training_not_read_record(saved: dict) -> dict:
    """uns['nanog1_predict']['training_events_not_read'] (so predictions.json's model block): what the
    model's training left out as of a kind of call the tumour did not measure, as its model.pt records it
    (nanog1.encoder.data.events_not_read_record: 'events_not_read', 'tumours_events_not_read',
    'events_not_read_<kind>'); {} for a model.pt without that record (a catalogue model, one saved before
    it was kept), so nothing is said that the file does not state."""
    from nanog1.encoder.loop import TRAINING_NOT_READ

    record = saved.get(TRAINING_NOT_READ)
    return {TRAINING_NOT_READ: {str(k): int(v) for k, v in record.items()}} if record else {}


def training_left_out_note(saved: dict) -> str:
    """'its training left out N call(s) of T tumour(s) ... (indels N)' from the model.pt record
    (`training_not_read_record`); '' when it records none left out, or no record at all."""
    from nanog1.schema import SET_GROUPS

    record = training_not_read_record(saved).get("training_events_not_read", {})
    n = record.get("events_not_read", 0)
    if not n:
        return ""
    kinds = ", ".join(f"{kind} {record[f'events_not_read_{kind}']:,}" for kind in SET_GROUPS
                      if record.get(f"events_not_read_{kind}"))
    return (f"its training left out {n:,} call(s) of {record.get('tumours_events_not_read', 0)} tumour(s) as "
            f"of a kind of call the tumour did not measure ({kinds}; model.pt's training_events_not_read)")


def _event_view_note(saved: dict, name: str, masked: np.ndarray, left_out: np.ndarray | None = None) -> str:
    """The caveat of an event-view model scoring tumours with sets masked ('' for none, or a catalogue
    model, which key-pads them: nanog1.encoder.model), with how many calls of those sets it left out
    (`left_out`, per tumour: `_events_left_out`) and, where its model.pt records it, how many its training
    left out (`training_left_out_note`): then it was not trained with every set measured for every tumour."""
    from nanog1.schema import describe_sets

    config = saved.get("train_config") or {}
    if not len(masked) or config.get("view", saved["encoder_config"].get("view")) != "events":
        return ""
    trained = _trained_clause(saved)
    left_out = np.zeros(0, dtype=np.int64) if left_out is None else np.asarray(left_out)
    n, tumours = int(left_out.sum()), int((left_out > 0).sum())
    dropped = f"; here {n:,} call(s) of {tumours} tumour(s), obs['events_not_read']" if n else ""
    tokens = (f"{name} reads one token per mutation: a tumour whose {describe_sets(masked)} were not "
              "measured has no such tokens (the calls its input holds of a kind of call it did not "
              f"measure, e.g. indels declared --not-measured, are left out, as an input without them would "
              f"give{dropped}), and those sets are hidden from its catalogue summary")
    if saved["encoder_config"].get("unmeasured_indicator"):
        return f"{tokens}; the model reads that they were not measured (not as zero mutations); {trained}"
    return (f"{tokens}, so the model reads it as a tumour without those mutations (it has no sign for 'not "
            f"measured'); {trained}")


def _trained_clause(saved: dict) -> str:
    """How an event model was trained, for `_event_view_note`: with set or indel dropout, or without (its
    accuracy on tumours with masked sets then not measured), and what its training left out where its
    model.pt records it (`training_left_out_note`: then not every tumour measured every set)."""
    config = saved.get("train_config") or {}
    indel, sets = float(config.get("indel_dropout", 0.0)), float(config.get("set_dropout", 0.0))
    training = training_left_out_note(saved)
    every = ("without set dropout" if training else
             "with every set it reads measured for every tumour (no set dropout)")
    trained = (f"it was trained {every}, so its accuracy on tumours with masked sets is not measured"
               if not sets and not indel else
               f"it was trained with indel dropout {indel:g} (tumours read as SNV-only inputs in that share "
               "of training draws)" if indel else
               f"it was trained with set dropout {sets:g}")
    return f"{trained}; {training}" if training else trained


def _scored_sets(adata: ad.AnnData) -> list[str]:
    from nanog1.schema import recorded_channel_sets as measured_sets

    return measured_sets(adata) or []


def tumour_burden_ranges(adata: ad.AnnData,
                         reference: dict | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each tumour's burden and the model's training range, both over the sets THAT tumour measured
    (abstention.burden_ranges; issue 31: a complete tumour beside a Strelka2 SNV-only one is held to the
    range over SNVs, doublets and indels, the SNV-only one to the range over SNVs and doublets)."""
    from nanog1.encoder.abstention import burden_ranges
    from nanog1.schema import measured_sets_per_sample

    return burden_ranges(reference, measured_sets_per_sample(adata).to_numpy(dtype=bool), _dense(adata.X))


def abstain_reasons(
    adata: ad.AnnData, proba: np.ndarray, rule, burden: tuple | None = None,
    mismatch: np.ndarray | None = None, thresholds: np.ndarray | None = None,
) -> np.ndarray:
    """Why each tumour is not given a type ('' = accepted): no mutations, an assay other than the model's
    (`mismatch`: per tumour the reason with its evidence, '' = none; `assay_mismatch`), low confidence, a
    mutational profile unlike every training type (over the sets that tumour measured), or a burden
    outside the range the model was trained on: `burden` is (total, floor, ceiling) per tumour, each over
    the sets that tumour measured (`tumour_burden_ranges`; NaN = no range). `thresholds`: per tumour
    confidence threshold (`tumour_thresholds`), else the rule's for all."""
    from nanog1.encoder.abstention import profile_features
    from nanog1.schema import channel_padding_per_sample, measured_sets_per_sample

    counts = _dense(adata.X)
    reasons = np.full(adata.n_obs, "", dtype=object)
    conf = proba.max(1)
    base = float(rule.confidence_threshold)
    thresholds = np.full(adata.n_obs, base) if thresholds is None else np.asarray(thresholds, np.float64)
    unvalidated = np.isinf(thresholds)
    low = (conf < thresholds) & ~unvalidated
    reasons[low] = [f"low confidence ({_below(c, t)}{_raised(t, base)})"
                    for c, t in zip(conf[low], thresholds[low], strict=True)]
    if unvalidated.any():
        measured = measured_sets_per_sample(adata)
        reasons[unvalidated] = [
            f"measured sets not validated ({', '.join(measured.columns[row])} only): the model was never "
            "measured on tumours with only these sets" for row in measured.to_numpy(bool)[unvalidated]]
    if rule.ood is not None:  # over each tumour's own measured sets (tumours that measured the same together)
        dist, cut = rule.ood.per_row_distance(profile_features(counts), ~channel_padding_per_sample(adata))
        far = dist > cut
        reasons[far] = [
            _join(r, f"out of distribution (profile distance {d:.1f} > {c:.1f})")
            for r, d, c in zip(reasons[far], dist[far], cut[far], strict=True)
        ]
    if burden is not None:
        total, floor, ceiling = (np.asarray(b, np.float64) for b in burden)
        total = np.rint(total).astype(np.int64)
        with np.errstate(invalid="ignore"):
            below, above = total < floor, total > ceiling  # NaN (no range) compares False
        for i in np.flatnonzero(below):
            reasons[i] = _join(reasons[i], f"burden {total[i]} below the range the model was trained on "
                                           f"(≥ {floor[i]:.0f})")
        for i in np.flatnonzero(above):
            reasons[i] = _join(reasons[i], f"burden {total[i]} above the range the model was trained on "
                                           f"(≤ {ceiling[i]:.0f})")
    if mismatch is not None:
        for i in np.flatnonzero(mismatch != ""):
            reasons[i] = _join(mismatch[i], reasons[i])
    empty = counts.sum(1) == 0
    reasons[empty] = "no mutations"
    return reasons.astype(str)


EXOME_REASON = "exome input: model trained on whole genomes"
GENOME_REASON = "genome input: model trained on exomes"
#: The abstention reason of an input of the other assay, by the model's assay (its card's "assay").
MISMATCH_REASONS = {"genome": EXOME_REASON, "exome": GENOME_REASON}


def _below(confidence: float, threshold: float) -> str:
    """'0.34 < 0.85', with more decimals where two would print them equal ('0.9855 < 0.9887')."""
    digits = 2
    while digits < 6 and f"{confidence:.{digits}f}" == f"{threshold:.{digits}f}":
        digits += 1
    return f"{confidence:.{digits}f} < {threshold:.{digits}f}"


def _raised(threshold: float, base: float) -> str:
    """', the threshold for the sets this tumour measured' where a measured pattern raised it."""
    return ", the threshold for the sets this tumour measured" if threshold > base else ""


def _join(a: str, b: str) -> str:
    """'a; b', or whichever is not empty (a check that found nothing gives '')."""
    return "; ".join(part for part in (a, b) if part)


def nearest_reference(embedding: np.ndarray, ref: dict[str, np.ndarray], k: int,
                      chunk: int = NEIGHBOUR_CHUNK) -> list[str]:
    """'sample (type, project, cosine); ...' for the k reference tumours nearest by embedding cosine.

    Scored `chunk` input tumours at a time: the cosines of a whole cohort against the reference at once
    (6,011 MC3 exomes x 13,054 tcga-exome reference tumours, float64) held 1.9 GB with their ranking, the
    peak of a whole-cohort `predict`; a chunk holds chunk x reference rows."""
    if chunk < 1:
        raise UserError(f"neighbour chunk {chunk}: give at least 1 tumour per chunk")
    a = np.asarray(embedding, np.float64)
    b = np.asarray(ref["embedding"], np.float64)
    a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=1, keepdims=True).clip(1e-12)
    out: list[str] = []
    for start in range(0, len(a), chunk):
        out += _neighbour_lines(a[start : start + chunk] @ b.T, ref, k)
    return out


def _neighbour_lines(sim: np.ndarray, ref: dict[str, np.ndarray], k: int) -> list[str]:
    """One neighbour line per row of `sim` (cosines of some input tumours against every reference one)."""
    top = np.argsort(-sim, axis=1)[:, :k]
    return [
        "; ".join(
            f"{ref['sample'][j]} ({ref[CANCER_TYPE][j]}, {ref['project'][j]}, {sim[i, j]:.3f})" for j in row
        )
        for i, row in enumerate(top)
    ]


def fit_exposures(adata: ad.AnnData, options: PredictOptions) -> None:
    """COSMIC v3.4 exposures with bootstrap intervals, per tumour over the sets THAT tumour measured
    (issue 31; nanog1.schema.measured_sets_per_sample): a set's exposures depend on that set's counts only,
    so each set is fitted once, over the tumours that measured it (one batched fit and one bootstrap,
    whatever their other sets), and is NaN for the tumours that did not measure it: absent ("not
    measured"), never zero exposures. obsm['exposures_<set>'] / '_lo' / '_hi' exist for every set with
    signatures that some tumour measured; uns['nanog1_predict_exposures'] lists them ('sets') with the
    tumours each could not be fitted for ('not_measured': parallel lists 'set', 'tumours' ('+'-joined))."""
    from nanog1.fitting.bootstrap import BootstrapConfig, bootstrap_exposures
    from nanog1.fitting.fit import fit_signatures
    from nanog1.genomics.channels import SIGNATURE_SETS, set_slice
    from nanog1.genomics.signatures import ReferenceSpec, load_reference
    from nanog1.schema import measured_sets_per_sample

    measured = measured_sets_per_sample(adata)
    counts = _dense(adata.X)
    done, absent = [], {}
    for name in SIGNATURE_SETS:
        rows = measured[name].to_numpy(dtype=bool)
        if not rows.any():
            continue
        sigs = load_reference(ReferenceSpec(channel_set=name))
        block = pd.DataFrame(counts[rows][:, set_slice(name)], index=adata.obs_names[rows],
                             columns=adata.var_names[set_slice(name)])
        catalogue = block[list(sigs.index)]
        point = fit_signatures(catalogue, sigs).exposures
        boot = bootstrap_exposures(
            catalogue, sigs, point, config=BootstrapConfig(draws=options.draws, seed=options.seed)
        )
        for suffix, frame in (("", point), ("_lo", boot.lo), ("_hi", boot.hi)):  # NaN: not measured
            adata.obsm[f"exposures_{name}{suffix}"] = frame.reindex(adata.obs_names)
        done.append(name)
        if not rows.all():
            absent[name] = [str(t) for t in adata.obs_names[~rows]]
    adata.uns["nanog1_predict_exposures"] = {
        "sets": done, "cosmic": "v3.4 GRCh37", "draws": options.draws,
        "not_measured": {"set": list(absent), "tumours": ["+".join(t) for t in absent.values()]},
    }


def exposures_measured(adata: ad.AnnData, name: str) -> np.ndarray:
    """Bool per tumour: whether set `name`'s exposures were fitted for it (False: not measured, NaN rows)."""
    key = f"exposures_{name}"
    if key not in adata.obsm:
        return np.zeros(adata.n_obs, dtype=bool)
    return ~np.isnan(np.asarray(adata.obsm[key], dtype=np.float64)).all(axis=1)


def prediction_table(adata: ad.AnnData, top: int = 3) -> pd.DataFrame:
    """One row per tumour: top-k types with probabilities, abstention, neighbours and main exposures, and,
    for an event model, `events_not_read` (the tumour's calls of a kind of call it did not measure, left
    out: obs['events_not_read'], so a count the table shows is never silently read or dropped)."""
    proba = adata.obsm["proba_type"]
    classes = np.asarray(proba.columns, dtype=str)
    values = proba.to_numpy()
    order = np.argsort(-values, axis=1)[:, :top]
    table = pd.DataFrame(index=pd.Index(adata.obs_names, name="sample"))
    table["predicted_type"] = adata.obs["predicted_type"].astype(str).to_numpy()
    for r in range(order.shape[1]):
        table[f"type_{r + 1}"] = classes[order[:, r]]
        table[f"p_{r + 1}"] = np.round(values[np.arange(len(values)), order[:, r]], 4)
    table["abstain"] = adata.obs["abstain"].to_numpy()
    table["abstain_reason"] = adata.obs["abstain_reason"].astype(str).to_numpy()
    if "confidence_threshold" in adata.obs:  # per tumour: its measured pattern's where one raised it
        table["confidence_threshold"] = np.round(adata.obs["confidence_threshold"].to_numpy(np.float64), 4)
    table["mutations"] = mutation_totals(adata)
    if "channel_sets_scored" in adata.obs:  # each tumour's own measured sets (issue 31)
        table["channel_sets"] = adata.obs["channel_sets_scored"].astype(str).to_numpy()
    else:
        table["channel_sets"] = "+".join(adata.uns.get("nanog1_predict", {}).get("channel_sets_scored", []))
    if "events_not_read" in adata.obs:  # event models only (_events_left_out)
        table["events_not_read"] = adata.obs["events_not_read"].to_numpy(dtype=np.int64)
    for name in adata.uns.get("nanog1_predict_exposures", {}).get("sets", []):
        table[f"top_signatures_{name}"] = _top_signatures(adata, name)
    if "neighbours" in adata.obs:
        table["nearest_reference"] = adata.obs["neighbours"].astype(str).to_numpy()
    return table


def mutation_totals(adata: ad.AnnData) -> np.ndarray:
    """Mutations per tumour: SBS6 + DBS78 + ID12 (the derived sets hold SBS96/ID83 folded, so every
    measured mutation counts once, with or without a reference)."""
    from nanog1.genomics.channels import set_slice

    x = _dense(adata.X)
    return sum(x[:, set_slice(s)].sum(1) for s in ("SBS6", "DBS78", "ID12")).astype(np.int64)


#: What the table, JSON and report say for a set a tumour did not measure (its exposures are NaN, not 0).
NOT_MEASURED = "not measured"


def _top_signatures(adata: ad.AnnData, name: str, k: int = 3) -> list[str]:
    point, lo, hi = (adata.obsm[f"exposures_{name}{s}"] for s in ("", "_lo", "_hi"))
    fitted = exposures_measured(adata, name)
    out = []
    for i in range(adata.n_obs):
        if not fitted[i]:
            out.append(NOT_MEASURED)
            continue
        row = point.iloc[i]
        best = row[row > 0].sort_values(ascending=False).index[:k]
        out.append("; ".join(f"{s} {row[s]:.0f} [{lo.iloc[i][s]:.0f}-{hi.iloc[i][s]:.0f}]" for s in best))
    return out


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
