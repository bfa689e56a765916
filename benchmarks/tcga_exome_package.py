# ruff: noqa: E501
"""Package the `final` job of tcga_exome_ship.py as nanog1/encoder/pretrained/tcga-exome, and score every
job for its card (CV, transfer across the TCGA sources, calibration, abstention, gradient boosting).

Calibration is the one `nanog1 train` fits: a temperature and the confidence threshold reaching 0.90
accuracy on the job's validation tumours, plus the profile out-of-distribution rule fitted on its
training tumours. On CV and transfer jobs that rule is fitted on each job alone and applied to its test
tumours, as it would ship.

`patterns` (tcga_exome_ship.py patterns --mc3 MC3.h5ad --firehose FH.h5ad) refits the package's thresholds
per measured pattern (an SNV-only file: indels not measured; benchmarks/pattern_thresholds.py) on the final
job's validation tumours, its roles recomputed from the ingests and checked against what the package states.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from tcga_exome_ship import JOBS, RECIPE, SAME, SOURCES, TEST, TRAIN, VAL, job_roles, patient, read_sources
from tcga_typing import paired_bootstrap

from nanog1.encoder.input_filter import DESCRIBED

DRAWS = 1000


def load_job(folders: list[Path], job: str) -> dict:
    """A job's scored rows (probabilities, labels, roles, barcodes, classes) and its training counts; with
    several seed folders, the probabilities are the members' mean log-probabilities (as shipped)."""
    from nanog1.encoder.calibration import logits_from_proba, softmax

    parts = []
    for folder in folders:
        with np.load(folder / f"{job}.npz", allow_pickle=False) as z:
            parts.append({k: z[k] for k in z.files})
    first = parts[0]
    for other in parts[1:]:
        if not all(np.array_equal(first[k], other[k]) for k in ("barcode", "role", "labels", "classes")):
            raise SystemExit(f"{job}: the seed folders scored different tumours or classes")
    if len(parts) > 1:
        first["proba"] = softmax(np.mean([logits_from_proba(p["proba"]) for p in parts], axis=0))
    return first


def job_calibration(job: dict):
    """(temperature, AbstentionRule, ECE before/after on validation) fitted on the job's VAL rows."""
    from nanog1.encoder.abstention import AbstentionRule
    from nanog1.encoder.calibration import calibrate_run, ood_reference

    val = job["role"] == VAL
    ood = ood_reference(job["train_counts"].astype(np.float64), job["train_labels"], 0.2, 0)
    with tempfile.TemporaryDirectory() as tmp:
        calib, _ = calibrate_run(Path(tmp), job["proba"][val], job["labels"][val], "validation", ood=ood)
    return calib, AbstentionRule(calib["abstain_threshold"], 0.9, ood)


def scored(job: dict, role: int, calib: dict, rule) -> dict:
    """Calibrated probabilities, labels and the abstention mask of one role's rows."""
    from nanog1.encoder.abstention import profile_features
    from nanog1.encoder.calibration import apply_temperature

    rows = job["role"] == role
    proba = apply_temperature(job["proba"][rows], calib["temperature"])
    counts = job["counts"][rows].astype(np.float64)
    return {"proba": proba, "labels": job["labels"][rows], "barcode": job["barcode"][rows],
            "uncertain": rule.uncertain(proba, profile_features(counts))}


def summary(parts: list[dict], classes: list[str]) -> dict:
    """Scores, ECE and abstention of pooled rows."""
    from nanog1.encoder.abstention import covered_accuracy
    from nanog1.encoder.calibration import expected_calibration_error
    from nanog1.encoder.metrics import classification_metrics

    proba = np.concatenate([p["proba"] for p in parts])
    labels = np.concatenate([p["labels"] for p in parts])
    unc = np.concatenate([p["uncertain"] for p in parts])
    return {"n": int(len(labels)), "scores": classification_metrics(proba, labels, classes),
            "ece_calibrated": expected_calibration_error(proba, labels),
            "abstention": covered_accuracy(proba, labels, unc)}


def gb_cv(work: Path, source: str, classes: list[str]) -> pd.DataFrame:
    """tcga_typing.py's out-of-fold GB probabilities of one source, as a frame (barcode x `classes`)."""
    from tcga_typing import read_mutations

    oof = np.load(work / source / "oof_gradient_boosting.npy")
    folds = pd.read_csv(work / source / "folds.tsv", sep="\t", index_col=0)
    maf = read_mutations(Path(__file__).resolve().parents[2] / "shared/data/tcga" / source)
    own = sorted(maf["Cohort"].unique())
    index = maf.groupby("Tumor_Sample_Barcode")["Cohort"].first().sort_index().index
    if len(index) != len(oof) or set(index) != set(folds.index):
        raise SystemExit(f"{work}/{source}: GB predictions do not match the MAF's tumours")
    return pd.DataFrame(oof, index=index, columns=own).reindex(columns=classes, fill_value=0.0)


def versus_gb(part: dict, gb: pd.DataFrame, classes: list[str]) -> dict:
    """GB's scores on the same tumours and the paired bootstrap interval (model - GB)."""
    from nanog1.encoder.metrics import classification_metrics

    ref = gb.reindex(index=part["barcode"], columns=classes, fill_value=0.0).to_numpy()
    ci = paired_bootstrap(part["proba"], ref, part["labels"], DRAWS, seed=0)
    return {"gradient_boosting": classification_metrics(ref, part["labels"], classes),
            "model_minus_gb_95": {k: list(v) for k, v in ci.items()}}


def cv_metrics(results: list[Path], work: Path, source_of: pd.Series) -> dict:
    """Pooled 5-fold CV (all tumours and per source), with GB per source on the same tumours."""
    parts, classes = [], None
    for job in [j for j in JOBS if j.startswith("cv")]:
        data = load_job(results, job)
        classes = [str(c) for c in data["classes"]]
        calib, rule = job_calibration(data)
        parts.append(scored(data, TEST, calib, rule) | {"temperature": calib["temperature"]})
    out = {"all": summary(parts, classes), "temperatures": [p["temperature"] for p in parts]}
    pooled = {k: np.concatenate([p[k] for p in parts]) for k in ("proba", "labels", "barcode", "uncertain")}
    for source in SOURCES:
        rows = source_of.reindex(pooled["barcode"]).to_numpy() == source
        part = {k: v[rows] for k, v in pooled.items()}
        out[source] = summary([part], classes) | versus_gb(part, gb_cv(work, source, classes), classes)
    return out


def transfer_metrics(results: list[Path], job: str) -> dict:
    """Test tumours (patients the training source lacks) and same-patient tumours of a transfer job."""
    data = load_job(results, job)
    classes = [str(c) for c in data["classes"]]
    calib, rule = job_calibration(data)
    test = scored(data, TEST, calib, rule)
    src, dst = job.split("_to_")
    with np.load(results[0] / f"gb_{src}_to_{dst}.npz", allow_pickle=False) as z:
        gb = pd.DataFrame(z["proba"], index=z["barcode"], columns=[str(c) for c in z["classes"]])
    out = {"train_source": src, "test_source": dst, "types": len(classes),
           "temperature": calib["temperature"], "abstain_threshold": calib["abstain_threshold"],
           "test_new_patients": summary([test], classes) | versus_gb(test, gb, classes)}
    if (data["role"] == SAME).any():
        out["test_same_patients"] = summary([scored(data, SAME, calib, rule)], classes)
    return out


def metrics_of(folders: list[Path], work: Path, source_of: pd.Series) -> dict:
    """CV and transfer metrics of the model the seed folders make (one folder: a single model)."""
    return {"cv_5fold": cv_metrics(folders, work, source_of),
            "transfer": {j: transfer_metrics(folders, j) for j in ("mc3_to_firehose", "firehose_to_mc3")}}


def ship_decision(single: dict, ensemble: dict) -> dict:
    """Ship the seed ensemble only if better than seed 0 in CV top-1 and not worse in either transfer's
    top-1 and macro-F1 (new patients), as pcawg-catalogue decides."""
    def top(m: dict, key: str) -> list[float]:
        return [m["transfer"][j]["test_new_patients"]["scores"][key] for j in ("mc3_to_firehose", "firehose_to_mc3")]

    checks = {"cv_top1_better": ensemble["cv_5fold"]["all"]["scores"]["top1"] > single["cv_5fold"]["all"]["scores"]["top1"],
              "transfer_not_worse": all(e >= s for k in ("top1", "macro_f1") for e, s in zip(top(ensemble, k), top(single, k), strict=True))}
    return {**checks, "ship_ensemble": all(checks.values())}


def versus_previous(new: dict, previous: Path, spread: float) -> dict:
    """The rule, fixed before the runs, for replacing the shipped model by this one (the hotspot bag):
    CV top-1 better by more than the seed spread, and neither transfer's top-1 (new patients) worse by
    more than 1 point. `previous`: the shipped model's package_metrics.json."""
    old = json.loads(Path(previous).read_text())

    def top1(m: dict) -> dict:
        return {"cv": m["cv_5fold"]["all"]["scores"]["top1"],
                **{j: m["transfer"][j]["test_new_patients"]["scores"]["top1"] for j in ("mc3_to_firehose", "firehose_to_mc3")}}

    a, b = top1(old), top1(new)
    checks = {"cv_top1_gain_above_seed_spread": b["cv"] - a["cv"] > spread,
              "transfer_top1_drop_at_most_1_point": all(b[j] - a[j] >= -0.01 for j in a if j != "cv")}
    return {"rule": "ship only if CV top-1 improves by more than the seed spread and neither transfer's top-1 "
            "(new patients) falls by more than 1 point", "seed_spread": spread, "previous_top1": a, "top1": b,
            **checks, "ship": all(checks.values())}


def seed_means_rule(candidate: list[Path], previous: list[Path], floor: float) -> dict:
    """The replacement rule written before the runs (BENCHMARKS.md, tcga-exome with #28's recipe): the
    candidate's CV top-1 must beat the shipped recipe's by more than S = max(floor, the candidate's own
    seed spread), on the seed means and on seed 0 against seed 0; neither transfer's mean top-1 (new
    patients) may fall by more than 1 point. Each argument: one recipe's seed folders, seed 0 first."""
    def scores(folders: list[Path]) -> list[dict]:
        return [single_seed_scores(f) for f in folders]

    new, old = scores(candidate), scores(previous)
    keys = ("cv", "mc3_to_firehose", "firehose_to_mc3")
    mean = {name: {k: float(np.mean([s[k]["top1"] for s in runs])) for k in keys}
            for name, runs in (("candidate", new), ("previous", old))}
    own = [s["cv"]["top1"] for s in new]
    spread = max(floor, max(own) - min(own))
    gain = {"means": mean["candidate"]["cv"] - mean["previous"]["cv"], "seed0": new[0]["cv"]["top1"] - old[0]["cv"]["top1"]}
    drop = {k: mean["candidate"][k] - mean["previous"][k] for k in keys[1:]}
    checks = {"cv_top1_gain_above_seed_spread": all(g > spread for g in gain.values()),
              "transfer_mean_top1_drop_at_most_1_point": all(d >= -0.01 for d in drop.values())}
    return {"rule": "ship only if CV top-1 rises by more than S = max(measured CV seed spread of this model "
            "class, the candidate's own) on the seed means and seed 0 vs seed 0, and neither transfer's mean "
            "top-1 (new patients) falls by more than 1 point", "seed_spread": spread, "cv_gain": gain,
            "transfer_change": drop, "means": mean, "candidate": {str(f): s for f, s in zip(candidate, new, strict=True)},
            "previous": {str(f): s for f, s in zip(previous, old, strict=True)}, **checks, "ship": all(checks.values())}


def test_rows(folder: Path, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(barcodes, probabilities, labels) of a seed folder's TEST rows: pooled CV folds (kind 'cv') or one
    transfer job's new patients."""
    jobs = [j for j in JOBS if j.startswith("cv")] if kind == "cv" else [kind]
    parts = [load_job([folder], j) for j in jobs]
    rows = [p["role"] == TEST for p in parts]
    return tuple(np.concatenate([p[k][r] for p, r in zip(parts, rows, strict=True)])
                 for k in ("barcode", "proba", "labels"))


def paired_intervals(candidate: list[Path], previous: list[Path]) -> dict:
    """Paired bootstrap 95 % intervals (candidate - previous) of top-1 and macro-F1 on the same tumours,
    seed i against seed i: pooled CV and each transfer's new patients."""
    out = {}
    for i, (new, old) in enumerate(zip(candidate, previous, strict=False)):
        for kind in ("cv", "mc3_to_firehose", "firehose_to_mc3"):
            b_new, p_new, labels = test_rows(new, kind)
            b_old, p_old, labels_old = test_rows(old, kind)
            order = pd.Index(b_old).get_indexer(b_new)
            if (order < 0).any() or not np.array_equal(labels_old[order], labels):
                raise SystemExit(f"{new} and {old} scored different {kind} tumours")
            ci = paired_bootstrap(p_new, p_old[order], labels, DRAWS, seed=0)
            out[f"seed{i}/{kind}"] = {k: list(v) for k, v in ci.items()}
    return out


def calibrated_rows(folder: Path) -> dict:
    """One seed folder's calibrated rows as the card states them (temperature, threshold and OOD rule per
    job on its validation tumours): ECE, accepted share and accuracy on the accepted, pooled CV and each
    transfer's new patients (no gradient-boosting columns)."""
    out, parts, classes = {}, [], None
    for job in JOBS:
        if job == "final":
            continue
        data = load_job([folder], job)
        classes = [str(c) for c in data["classes"]]
        calib, rule = job_calibration(data)
        rows = scored(data, TEST, calib, rule)
        if job.startswith("cv"):
            parts.append(rows)
        else:
            out[job] = summary([rows], classes)
    return {"cv": summary(parts, classes), **out}


def rule_mode(args) -> None:
    """`rule` mode: the seed-means replacement rule of --results + --seed-results (the candidate) against
    --versus-seeds (the shipped recipe's seed folders); printed and written to <results>/rule.json."""
    candidate = [args.results, *args.seed_results]
    decision = seed_means_rule(candidate, args.versus_seeds, args.seed_spread)
    decision["paired_95"] = paired_intervals(candidate, args.versus_seeds)
    decision["calibrated_seed0"] = {name: calibrated_rows(folder) for name, folder in
                                    (("candidate", candidate[0]), ("previous", args.versus_seeds[0]))}
    (args.results / "rule.json").write_text(json.dumps(decision, indent=1, default=float))
    print(json.dumps(decision, indent=1, default=float))


def without_protein(adata):
    """A copy of an ingested cohort as a MAF without a protein-change column (or a VCF) would give it: no
    `codon` token field and no codon table."""
    out = adata.copy()
    tokens = dict(out.uns["tokens"])
    tokens.pop("codon", None)
    tokens["vocab"] = {k: v for k, v in dict(tokens["vocab"]).items() if k != "codon"}
    out.uns["tokens"] = tokens
    return out


def protein_ablation(args) -> None:
    """`no-protein` mode: the final job's model (--results/final/model.pt) on its validation tumours, read
    with their protein changes and without them (as from a VCF): what a codon-hotspot model loses when the
    input carries no HGVSp_Short / Protein_Change. Top-1 and macro-F1 of both, uncalibrated (argmax)."""
    from nanog1.encoder.ensemble import member_views_proba
    from nanog1.encoder.loop import load_model
    from nanog1.encoder.metrics import classification_metrics

    network, saved = load_model(args.results / "final" / "model.pt")
    final = load_job([args.results], "final")
    val = final["role"] == VAL
    classes = [str(c) for c in final["classes"]]
    out = {}
    for name, read in (("with_protein", lambda a: a), ("without_protein", without_protein)):
        parts = [read(a) for a in read_sources(args.mc3, args.firehose)]
        proba = np.concatenate([member_views_proba(a, "final", [network], saved, ["full"])[1] for a in parts])
        barcodes = np.concatenate([np.asarray(a.obs_names, dtype=str) for a in parts])
        rows = pd.Index(barcodes).get_indexer(final["barcode"][val])
        scores = classification_metrics(proba[rows], final["labels"][val], classes)
        out[name] = {k: scores[k] for k in ("top1", "macro_f1")}
    out["n"] = int(val.sum())
    (args.results / "no_protein.json").write_text(json.dumps(out, indent=1, default=float))
    print(json.dumps(out, indent=1, default=float), f"load {os.getloadavg()}")


def single_seed_scores(folder: Path) -> dict:
    """Top-1 and macro-F1 of one seed's jobs, uncalibrated (a temperature does not move the argmax, so
    these equal the card's calibrated rows): pooled CV test folds and each transfer's new patients; jobs
    not (yet) run are left out."""
    from nanog1.encoder.metrics import classification_metrics

    out, cv = {}, [j for j in JOBS if j.startswith("cv")]
    if all((folder / f"{j}.npz").is_file() for j in cv):
        parts = [load_job([folder], j) for j in cv]
        rows = [p["role"] == TEST for p in parts]
        out["cv"] = classification_metrics(np.concatenate([p["proba"][r] for p, r in zip(parts, rows, strict=True)]),
                                           np.concatenate([p["labels"][r] for p, r in zip(parts, rows, strict=True)]),
                                           [str(c) for c in parts[0]["classes"]])
    for job in ("mc3_to_firehose", "firehose_to_mc3"):
        if (folder / f"{job}.npz").is_file():
            data = load_job([folder], job)
            test = data["role"] == TEST
            out[job] = classification_metrics(data["proba"][test], data["labels"][test], [str(c) for c in data["classes"]])
    return {k: {m: v[m] for m in ("top1", "macro_f1")} for k, v in out.items()}


def seed_spread(args) -> None:
    """`seeds` mode: each folder's scores (--results and --seed-results: one recipe, several seeds) and the
    spread (max - min) of every score the folders share: the noise a recipe comparison must beat."""
    folders = [args.results, *args.seed_results]
    scores = {str(f): single_seed_scores(f) for f in folders}
    shared = set.intersection(*(set(s) for s in scores.values()))
    spread = {k: {m: max(s[k][m] for s in scores.values()) - min(s[k][m] for s in scores.values())
                  for m in ("top1", "macro_f1")} for k in sorted(shared)}
    print(json.dumps({"scores": scores, "spread": spread}, indent=1))


def write_weights(folders: list[Path], out: Path, input_filter: str) -> dict:
    """model.pt: seed 0's model as any single model; the other seeds' state dicts under `ensemble`
    (nanog1.encoder.ensemble.packaged_members), after checking they read the same vocabulary and bag;
    `input_filter` = the FILTER rule of the training calls (`nanog1 predict` applies it by default).
    Returns seed 0's train_config and encoder config (for the card)."""
    import torch

    saved = [torch.load(f / "final" / "model.pt", weights_only=True) for f in folders]
    for other in saved[1:]:
        if other["encoder_config"] != saved[0]["encoder_config"] or other["classes"] != saved[0]["classes"]:
            raise SystemExit("the seeds' final models differ in vocabulary, gene bag or classes")
    payload = saved[0] | {"input_filter": input_filter}
    if len(saved) > 1:
        payload["ensemble"] = {"members": [s["state_dict"] for s in saved[1:]], "views": ["full"],
                               "seeds": [int(s["train_config"]["seed"]) for s in saved]}
    out.mkdir(parents=True, exist_ok=True)
    torch.save(payload, out / "model.pt")
    return {"train_config": payload["train_config"], "encoder_config": payload["encoder_config"]}


def training_filter(parts: list) -> str:
    """The FILTER rule both sources were ingested with (their provenance); they must agree."""
    from nanog1.encoder.input_filter import cohort_rule

    rules = {cohort_rule(a) for a in parts}
    if len(rules) != 1 or None in rules:
        raise SystemExit(f"the sources were ingested with different or unrecorded FILTER rules: {rules}")
    return rules.pop()


def package(args) -> None:
    """Ship the final model: weights, calibration (+ OOD arrays), reference embeddings, card."""
    from nanog1.encoder.calibration import calibrate_run, ood_reference, split_ood_arrays
    from nanog1.encoder.ensemble import member_views_proba
    from nanog1.encoder.predictor import load_predictor
    from nanog1.encoder.pretrained import export_reference
    from nanog1.io import atomic_write_text
    from nanog1.schema import CANCER_TYPE

    out, seeds = args.model_out, [args.results, *args.seed_results]
    parts = read_sources(args.mc3, args.firehose)
    source_of = pd.concat([a.obs["source"].astype(str) for a in parts])
    metrics = {"single": metrics_of(seeds[:1], args.typing_work, source_of)}
    decision = {"ship_ensemble": False}
    if len(seeds) > 1:
        metrics["ensemble"] = metrics_of(seeds, args.typing_work, source_of)
        decision = ship_decision(metrics["single"], metrics["ensemble"])
    shipped = seeds if decision["ship_ensemble"] else seeds[:1]
    rule = training_filter(parts)
    written = write_weights(shipped, out, rule)
    final = load_job(shipped, "final")
    val = final["role"] == VAL
    ood = ood_reference(final["train_counts"].astype(np.float64), final["train_labels"], 0.2, 0)
    with tempfile.TemporaryDirectory() as tmp:
        calib, _ = calibrate_run(Path(tmp), final["proba"][val], final["labels"][val], "validation", ood=ood)
        (out / "calibration.json").write_bytes((Path(tmp) / "calibration.json").read_bytes())
    split_ood_arrays(out)
    loaded = load_predictor(out)
    scored = [member_views_proba(a, str(out), [loaded.network, *loaded.members], loaded.saved, ["full"])
              for a in parts]  # the predictor's own path, source by source
    reference = ad.concat([ad.AnnData(a.X, obs=a.obs[[CANCER_TYPE]].assign(project_code=a.obs["source"]))
                           for a in parts])
    export_reference(np.concatenate([p.embedding for p, _ in scored]), reference, out)
    averaged = np.concatenate([proba for _, proba in scored])
    rows = pd.Index(reference.obs_names).get_indexer(final["barcode"][val])
    shipped_name = "ensemble" if decision["ship_ensemble"] else "single"
    metrics |= {k: v for k, v in metrics[shipped_name].items()}
    versus = versus_previous(metrics[shipped_name], args.versus, args.seed_spread) if args.versus else None
    metrics["shipped_model"] = {
        "kind": shipped_name, "seeds": [int(s.name.rsplit("_s", 1)[-1]) if "_s" in s.name else 0 for s in shipped],
        "decision": decision, "validation_tumours": int(val.sum()), "calibration": calib,
        "train_tumours": int(len(final["train_labels"])),
        "predictor_top1_on_validation": float((averaged[rows].argmax(1) == final["labels"][val]).mean()),
        "job_top1_on_validation": float((final["proba"][val].argmax(1) == final["labels"][val]).mean()),
        "jobs": {f"{s.name}/{j}": json.loads((s / f"{j}.json").read_text()) | {"history": None}
                 for s in seeds for j in JOBS},
    } | ({"versus_previous": versus} if versus else {})
    card = model_card([str(c) for c in final["classes"]], metrics, written, rule)
    atomic_write_text(out / "card.json", json.dumps(card, indent=1, default=float))
    add_patterns(out, [a[np.isin(a.obs_names, final["barcode"][val])].copy() for a in parts])
    (args.results / "package_metrics.json").write_text(json.dumps(metrics, indent=1, default=float))
    print(json.dumps({k: metrics[k] for k in ("cv_5fold", "transfer")} | {"shipped": {
        k: v for k, v in metrics["shipped_model"].items() if k != "jobs"}}, indent=1, default=float))
    print(f"load {os.getloadavg()}")


#: The card's wording for tcga-exome's thresholds per measured pattern (pattern_thresholds.card_with_patterns).
PATTERN_CARD = {
    "tumours": "tumours",
    "advice": "An SNV-only MAF or VCF (a caller that called no indels) is read as zero indels unless declared: "
    "give `--not-measured indels` so the model leaves indels out and applies that pattern's threshold",
    "out_of_sample": "Measured in sample only (the job folders with the CV and transfer scores were not kept); "
    "BENCHMARKS.md 'Thresholds per measured pattern'",
}


def add_patterns(out: Path, val_parts: list) -> list[dict]:
    """Fit and store the package's thresholds per measured pattern on its validation tumours `val_parts`
    (one AnnData per TCGA source, as `package` scores them; labels from their types over the model's
    classes): calibration.json `pattern_thresholds`, the card's `calibration_per_pattern` and a limit naming
    the patterns typed more than 2 points below complete inputs. Printed as a table."""
    from pattern_thresholds import fit_patterns, pattern_table, store_patterns

    from nanog1.encoder.predictor import load_predictor

    loaded = load_predictor(out)
    labels = _labels(val_parts, list(loaded.saved["classes"]))
    base = float(loaded.calibration["abstention"]["confidence_threshold"])
    complete = _complete_scores(val_parts, labels, loaded)
    with _known_warnings():
        fitted = fit_patterns(val_parts, labels, loaded, assay="exome", base=base)
    store_patterns(out, fitted, weak_below=complete["top1"] - 0.02, **PATTERN_CARD)
    print(f"{'complete':24s} masked {'-':22s} top-1 {complete['top1']:.3f}  threshold {base:.3f}: "
          f"{100 * complete['coverage']:.1f} % accepted at {complete['top1_accepted']:.3f}")
    print("\n".join(pattern_table(fitted)))
    return fitted


@contextlib.contextmanager
def _known_warnings():
    """Silence what `predict` rightly warns about these tumours and is known here: they are the package's
    own validation tumours (in its reference.npz) and MC3's MAF states no genome build (GRCh37 by source)."""
    import warnings

    from nanog1.encoder.evaluate import TrainingOverlapWarning
    from nanog1.encoder.predictor import GenomeBuildWarning

    with warnings.catch_warnings():
        for kind in (TrainingOverlapWarning, GenomeBuildWarning):
            warnings.simplefilter("ignore", kind)
        yield


def _labels(parts: list, classes: list[str]) -> np.ndarray:
    """Class index of each tumour of `parts` (in order) among the model's `classes`."""
    from nanog1.schema import CANCER_TYPE

    types = np.concatenate([a.obs[CANCER_TYPE].astype(str).to_numpy() for a in parts])
    labels = pd.Index(classes).get_indexer(types)
    if (labels < 0).any():
        raise SystemExit(f"{int((labels < 0).sum())} validation tumours have a type the model lacks")
    return labels


def _complete_scores(parts: list, labels: np.ndarray, loaded) -> dict:
    """Top-1, threshold refit for 0.90 and share/top-1 accepted at the operating point of `nanog1 predict`
    on `parts` as they are (every set they measured): what `validation_parts` checks against the package."""
    from nanog1.encoder.abstention import choose_threshold
    from nanog1.encoder.predictor import PredictOptions, predict

    options = PredictOptions(neighbours=0, exposures=False, assay="exome")
    with _known_warnings():
        proba = np.concatenate([predict(a, loaded, options, copy=True).obsm["proba_type"].to_numpy() for a in parts])
    hit, keep = proba.argmax(1) == labels, proba.max(1) >= loaded.calibration["abstention"]["confidence_threshold"]
    return {"top1": float(hit.mean()), "threshold": choose_threshold(proba, labels, 0.9),
            "coverage": float(keep.mean()), "top1_accepted": float(hit[keep].mean())}


def validation_parts(args) -> list:
    """The final job's validation tumours, per source, exactly as `package` scored them: both ingests' rows
    must be the reference's (barcodes, types and sources in order), the final job's roles (`job_roles`, a
    seeded patient-grouped 1/7) recomputed from them must give the card's training and validation counts,
    and the model's top-1 and 0.90 threshold on them must be the package's (card, calibration.json);
    otherwise it stops rather than fit on tumours the model trained on."""
    from nanog1.encoder.predictor import load_predictor
    from nanog1.schema import CANCER_TYPE

    parts = read_sources(args.mc3, args.firehose)
    barcodes = np.concatenate([np.asarray(a.obs_names, dtype=str) for a in parts])
    types = np.concatenate([a.obs[CANCER_TYPE].astype(str).to_numpy() for a in parts])
    source = np.concatenate([a.obs["source"].astype(str).to_numpy() for a in parts])
    with np.load(args.model_out / "reference.npz", allow_pickle=False) as z:
        same = all(np.array_equal(a, z[k]) for a, k in ((barcodes, "sample"), (types, "cancer_type"),
                                                         (source, "project")))
    if not same:
        raise SystemExit("the ingests' tumours are not the package's reference rows (order, types, sources): "
                         "re-ingest both sources with `nanog1 ingest --filter all` and no reference")
    roles = job_roles("final", types, source, patient(barcodes), np.zeros(len(barcodes), dtype=int))  # no folds
    shipped = json.loads((args.model_out / "card.json").read_text())["metrics"]["shipped_model"]
    counts = {"train_tumours": int((roles == TRAIN).sum()), "validation_tumours": int((roles == VAL).sum())}
    if any(shipped[k] != v for k, v in counts.items()):
        raise SystemExit(f"the final job's roles do not reproduce: {counts}, the card states "
                         f"{ {k: shipped[k] for k in counts} }")
    ends = np.cumsum([0] + [a.n_obs for a in parts])
    val_parts = [a[roles[lo:hi] == VAL].copy() for a, lo, hi in zip(parts, ends[:-1], ends[1:], strict=True)]
    loaded = load_predictor(args.model_out)
    complete = _complete_scores(val_parts, _labels(val_parts, list(loaded.saved["classes"])), loaded)
    calib = loaded.calibration
    if (abs(complete["top1"] - shipped["predictor_top1_on_validation"]) > 1e-9
            or abs(complete["threshold"] - calib["abstain_threshold"]) > 1e-3):
        raise SystemExit(f"the validation tumours do not score as packaged: top-1 {complete['top1']:.4f} "
                         f"(card {shipped['predictor_top1_on_validation']:.4f}), 0.90 threshold "
                         f"{complete['threshold']:.4f} (calibration.json {calib['abstain_threshold']:.4f})")
    print(f"validation tumours reproduced: {counts}, top-1 {complete['top1']:.4f}, 0.90 threshold "
          f"{complete['threshold']:.4f} (packaged {calib['abstain_threshold']:.4f})", flush=True)
    return val_parts


def patterns_mode(args) -> None:
    """`patterns` mode: the thresholds per measured pattern of --model-out (tcga-exome), fitted on the final
    job's validation tumours (`validation_parts`) and written into its calibration.json and card."""
    add_patterns(args.model_out, validation_parts(args))
    print(f"load {os.getloadavg()}")


def card_recipe(train_config: dict) -> dict:
    """The recipe a model was trained with, as its card states it: every RECIPE key (one its saved config
    predates, e.g. consequence_shares, at RECIPE's value: the behaviour before the option existed) plus every
    other TrainConfig setting away from today's default (lr, class_weight_power, label_smoothing...)."""
    from nanog1.encoder.config import TrainConfig

    defaults = TrainConfig().to_dict()
    recipe = {k: train_config.get(k, v) for k, v in RECIPE.items()}
    return recipe | {k: v for k, v in train_config.items() if k not in recipe and k in defaults and v != defaults[k]}


def recipe_text(recipe: dict) -> dict:
    """The card's recipe entries: the script's command, the `nanog1 train` line with only flags train has
    (nanog1.train_command) and the `--config` YAML for the settings without one, what the CLI cannot
    express, and the loss."""
    from nanog1.encoder.config import TrainConfig
    from nanog1.train_command import train_command

    line = train_command(recipe)
    full = TrainConfig().to_dict() | recipe
    power, smoothing = full["class_weight_power"], full["label_smoothing"]
    weights = ("unweighted" if not full["class_weighting"] else "class-weighted (inverse type frequency)"
               if power == 1 else f"class-weighted (type frequency ^ -{power:g})")
    return {
        "command": "python benchmarks/tcga_exome_ship.py jobs --mc3 MC3.h5ad --firehose FH.h5ad --typing-work W "
        + "".join(f"--set {k}={v} " for k, v in recipe.items() if k not in RECIPE or v != RECIPE[k])
        + "--jobs final (+ cv0-4, mc3_to_firehose, firehose_to_mc3); then `... package`",
        "equivalent": line.command,
        "equivalent_config": line.config,
        "equivalent_limits": "`equivalent` is `nanog1 train` with the same recipe: options train has as flags, the "
        "others in the YAML file given to --config (`equivalent_config`). It does not reproduce the data handling "
        "of the command above, which has no train option: the two TCGA ingests joined row by row by the script, "
        "the VAF token field given an empty vocabulary, and a validation part drawn by patient (a patient-grouped, "
        "type-stratified 1/7 and no test part; train draws val_fraction / test_fraction of tumours at random)",
        "objective": f"{weights} cross-entropy" + (f", label smoothing {smoothing:g}" if smoothing else ""),
    }


def recard(args) -> None:
    """`card` mode: rewrite the recipe entries of --model-out's card.json from its model.pt's training config
    (no retraining; every other entry kept as written)."""
    import torch

    from nanog1.io import atomic_write_text

    saved = torch.load(args.model_out / "model.pt", map_location="cpu", weights_only=True)
    card = json.loads((args.model_out / "card.json").read_text())
    card["recipe"] |= recipe_text(card_recipe(saved["train_config"]))
    atomic_write_text(args.model_out / "card.json", json.dumps(card, indent=1, default=float))
    print(json.dumps(card["recipe"], indent=1))


def model_card(classes: list[str], metrics: dict, written: dict, input_filter: str) -> dict:
    """The JSON model card: what it is, what it was trained on (FILTER rule `input_filter`), how well it
    does, what it is not for; the recipe and bag as `written` (the shipped model.pt's configs)."""
    cv = metrics["cv_5fold"]
    recipe = card_recipe(written["train_config"])
    from nanog1.encoder.protein_input import codon_hotspots

    n_genes, n_sites = len(written["encoder_config"]["gene_bag"]), len(written["encoder_config"]["hotspots"])
    n_codons = len(codon_hotspots(written["encoder_config"]))
    kinds = (f"{n_sites - n_codons} sites + {n_codons} protein codons" if n_codons else f"{n_sites} sites")
    bag = f"CLS gene bag of {n_genes} genes" + (f" + {n_sites} hotspot sites" if n_sites else "")
    sites = (f" and its 0/1 bag of the hotspots ({kinds}: contig:position, chromosome names canonical: 23 = X"
             + ("; codons as gene + first reference residue + position of the MAF's protein change, "
                "allele-agnostic: KRAS:p.G12" if n_codons else "")
             + f") mutated in >= {recipe['hotspots']} training tumours (at most 2,000, commonest first; a tumour "
             "called by both sources counts once per call), recomputed for a new tumour from its own mutations"
             if n_sites else "")
    window = (f"; the token sequence holds at most {recipe['max_events']} of a tumour's mutations (training: a "
              f"random {recipe['max_events']} of a thinned copy each epoch; `predict`: {recipe['max_events']} "
              "evenly spaced in genomic order, first and last included, the same on every call), while the CLS "
              "token reads the whole tumour (catalogue summary and bags over all of its mutations)")
    t_mf, t_fm = (metrics["transfer"][j]["test_new_patients"] for j in ("mc3_to_firehose", "firehose_to_mc3"))
    shipped = metrics["shipped_model"]
    what = f"ensemble of {len(shipped['seeds'])} seeds" if shipped["kind"] == "ensemble" else "single model"
    return {
        "name": "tcga-exome",
        "summary": f"TCGA exome event encoder ({what}; one token per mutation + {bag}), {len(classes)} "
        f"TCGA types; patient-grouped 5-fold CV top-1 {cv['all']['scores']['top1']:.3f} / macro-F1 "
        f"{cv['all']['scores']['macro_f1']:.3f}; MC3->Firehose {t_mf['scores']['top1']:.3f}, "
        f"Firehose->MC3 {t_fm['scores']['top1']:.3f} (new patients)",
        "classes": classes,
        "model": "NanoG1 SAVO event encoder (`nanog1 train --view events`): one token per mutation (SBS6/DBS78/ID12 "
        "class, gene, consequence, chromosome, 1 Mb bin; vocabularies saved in model.pt; the VAF field is left out "
        "(empty vocabulary): Firehose has no read counts for CESC, COAD, GBM, KICH, KIRC, OV and READ, so their "
        "absence named the type), a CLS token "
        f"from the tumour's catalogue and its 0/1 bag of the {n_genes} genes mutated in most training tumours{sites}, "
        f"type head{window}",
        "inputs": "somatic mutations with gene and consequence: a MAF (GDC/MC3/Firehose style; Hugo_Symbol, "
        "Variant_Classification) or a VCF ingested with `nanog1 ingest --genes` (genes from a BED/GTF/GFF3; VEP/snpEff "
        "annotations inside a VCF are not read; a tumour with no gene on any call abstains: 'no gene annotation'); "
        "no reference genome needed (reference-free channels only). "
        "Catalogue matrices cannot be scored (no per-mutation tokens)."
        + (" The codon hotspots read the MAF's protein change (HGVSp_Short / Protein_Change): a plain VCF or a MAF "
           "without that column reads every codon as absent, and `predict` states it per tumour (obs['protein_change'], "
           "a warning in the table line, JSON and report)" if n_codons else ""),
        "assay": "exome",
        "genome_build": "GRCh37",  # positions (bins, hotspot sites); predict checks each tumour's build
        "input_filter": input_filter,
        "training_data": {
            "source": "TCGA somatic mutation calls of whole exomes, GRCh37, as compiled by the R package "
            "TCGAmutations (github.com/PoisonAlien/TCGAmutations, MIT licence, 2024 snapshot): MC3 (Ellrott et al., "
            "Cell Systems 6, 271-281, 2018; one multi-caller pipeline, every FILTER value kept) and the Broad "
            "Firehose MAFs (each cohort's own calling); TCGA open-access tier",
            "tumours": f"{metrics['shipped_model']['train_tumours'] + metrics['shipped_model']['validation_tumours']:,} "
            "tumours of the four fifths of TCGA patients in ../shared/data/tcga (the held-back fifth never read): "
            "MC3 5,952 (UNKNOWN dropped) + Firehose 7,102, ingested with `nanog1 ingest --filter all` and no "
            "reference. Types: the union of both sources' TCGA study codes (MC3 has MESO only; Firehose has COAD, "
            "LUAD, LUSC, STAD, UCEC only). 5,404 patients are in both sources (one tumour called twice): every split "
            "is by patient",
            "licence": "TCGAmutations: MIT; TCGA open-access data (cite Ellrott 2018, Liu 2018 (Cell 173, 400-416), "
            "Mayakonda 2018 (maftools)). Model weights: the project's licence.",
        },
        "recipe": recipe_text(recipe) | {
            "seeds": f"{what}: seeds {shipped['seeds']} (same splits); an ensemble averages the members' "
            "log-probabilities and is calibrated as one model; shipped as an ensemble only if it beats seed 0 in "
            f"CV top-1 and is not worse on either transfer ({shipped['decision']})",
            "device": "CPU (2-core VM, 1 thread, niced)",
            "validation": "the final model trains on 6/7 of the patients (type-stratified, grouped by patient) and "
            "picks its epoch, temperature and abstention threshold on the other 1/7",
        },
        "metrics": metrics,
        "calibration": "temperature fitted on the validation tumours; abstention = calibrated confidence below the "
        "threshold reaching 0.90 accuracy on validation, or a mutational profile beyond the 99th percentile of "
        "validation distances to the nearest type centroid, or a burden outside the training range, or a "
        "whole-genome input (see limits)",
        "intended_use": "research use: typing tumour exomes for exploration and cohort QC, cancers of unknown "
        "primary as a research hypothesis. NOT a diagnosis; not for clinical decisions.",
        "limits": [
            "trained on TCGA exomes only (\"assay\": \"exome\"): `nanog1 predict` abstains on whole genomes (stated "
            "with --assay genome, or detected: < 25 % of >= 10 mutations protein-coding/splice and inside exome "
            "capture targets)",
            f"{len(classes)} TCGA study codes only (no SKCM: absent from both sources here); any other type is at "
            "best flagged out-of-distribution",
            "GRCh37 TCGA-like calling: other pipelines shift burden and indel/DNP shares; the transfer numbers "
            "(train on one TCGA source, test on the other's new patients) are the honest guide",
            "reads GRCh37 positions (\"genome_build\": \"GRCh37\"; 1 Mb bins, hotspot sites): `nanog1 predict` "
            "abstains on tumours on another build (a MAF's NCBI_Build, a VCF header's ##contig lengths or "
            "##reference/##assembly, an ingested cohort's record) and warns where a tumour's build is unknown (a VCF "
            "header stating none)",
            f"trained on {DESCRIBED[input_filter]} (\"input_filter\": \"{input_filter}\"; MC3's FILTER column "
            "ignored): `nanog1 predict` reads VCF/MAF inputs the same way by default; `--filter` overrides it, and "
            "the outputs then state the mismatch",
            "the abstention threshold is fitted on validation tumours of the training sources: on the other source "
            f"the accepted tumours were typed right {t_mf['abstention'].get('top1_covered', float('nan')):.2f} "
            f"(MC3->Firehose) and {t_fm['abstention'].get('top1_covered', float('nan')):.2f} (Firehose->MC3) of the time",
        ],
    }
