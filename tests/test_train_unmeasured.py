"""Training reads the events scoring reads (issue 31, "a mismatch is never silent").

A tumour whose MAF holds indel lines although its indels are declared not measured (`--not-measured
indels`): every saved model's scoring leaves those calls out (nanog1.encoder.data.for_model), and so must
`nanog1 train --view events`, from its tokens and its vocabulary alike, and say how many it left out.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from training_cohort import make_cohort
from typer.testing import CliRunner

from nanog1 import checkpoint as ckpt
from nanog1.cli import app
from nanog1.encoder.api import run_info
from nanog1.encoder.config import TrainConfig
from nanog1.encoder.data import cohort_arrays
from nanog1.encoder.loop import MODEL, TRAINING_NOT_READ, prepare_events
from nanog1.encoder.predict_report import write_outputs
from nanog1.encoder.predictor import PredictOptions, load_predictor, predict, prediction_table
from nanog1.genomics.channels import PARTIAL, set_slice
from nanog1.genomics.merge import merge_adatas
from nanog1.schema import MEASURED_SETS, SET_NAMES, TOKENS
from tests.test_persample_predict import INDELS
from tests.test_predict_exome import GDC_COLUMNS, GLIOMA, THYROID, _passengers, _row

DECLARED, COMPLETE = "TCGA-AA-0003-01A-11D-A000-08", "TCGA-BB-0004-01A-11D-A000-08"


def _write_maf(path, barcode: str, calls: list[tuple], deletion_at: int | None) -> None:
    """A GDC MAF of one tumour: `calls` (SNVs), then, at `deletion_at`, the frameshift deletions of
    INDELS (moved there), written as tests/test_persample_predict.exome_mafs writes them."""
    rows = [_row(barcode, *c) for c in calls]
    for i, (gene, chrom, _, ref, alt, cls, kind) in enumerate(INDELS if deletion_at is not None else []):
        row = _row(barcode, gene, chrom, deletion_at + 7 * i, ref, alt, cls, "p.K1fs")
        row.update({"Variant_Type": kind, "Tumor_Seq_Allele1": ref})
        rows.append(row)
    with open(path, "w") as f:
        f.write("#version gdc-1.0.0\n")
        pd.DataFrame(rows, columns=GDC_COLUMNS).to_csv(f, sep="\t", index=False)


def _cohort(tmp_path, with_lines: bool):
    """The DECLARED tumour (--not-measured indels; its MAF with or without its deletion lines) merged with
    the COMPLETE tumour (indels measured, deletions of its own), as the pipeline merges ingested parts."""
    from nanog1.encoder.predictor import read_inputs

    rng = np.random.default_rng(3)
    declared, complete = GLIOMA + _passengers(rng, 20), THYROID + _passengers(rng, 15)
    folder = tmp_path / ("with" if with_lines else "without")
    folder.mkdir()
    _write_maf(folder / "a.maf", DECLARED, declared, 89717700 if with_lines else None)
    _write_maf(folder / "b.maf", COMPLETE, complete, 89720000)
    parts = [read_inputs([folder / "a.maf"], filter="all", not_measured="indels"),
             read_inputs([folder / "b.maf"], filter="all")]
    return merge_adatas(parts, [folder / "a.h5ad", folder / "b.h5ad"])[0]


def _assert_same_events(got, want) -> None:
    assert got.event_vocab.values == want.event_vocab.values
    assert got.event_ids.keys() == want.event_ids.keys()
    for key, value in want.event_ids.items():
        np.testing.assert_array_equal(got.event_ids[key], value, err_msg=key)
    np.testing.assert_array_equal(got.counts, want.counts)
    np.testing.assert_array_equal(got.tokens["channel"], want.tokens["channel"])


def test_event_training_data_equal_the_cohort_without_the_declared_lines(tmp_path):
    """The arrays `nanog1 train --view events` trains on (vocabulary, model ids, counts, tokens) for the
    cohort whose declared tumour's MAF holds 12 deletions equal those of the same cohort without those
    lines; the complete tumour keeps its own deletions. Before, training read them as tokens and built
    its vocabulary (gene PTEN, indel channels) from them, while predict left them out."""
    from nanog1.encoder.data import unmeasured_event_counts

    cfg = TrainConfig(view="events", min_gene_tumours=1)
    with_lines, without = _cohort(tmp_path, True), _cohort(tmp_path, False)
    assert unmeasured_event_counts(with_lines).tolist() == [len(INDELS), 0]
    got = prepare_events(cfg, cohort_arrays(with_lines, min_class_size=1))
    want = prepare_events(cfg, cohort_arrays(without, min_class_size=1))
    _assert_same_events(got, want)
    indel_ids = [i for i, v in enumerate(got.event_vocab.values["channel"]) if v.startswith("ID")]
    assert indel_ids  # the complete tumour's deletions are read
    offsets = got.event_ids["offsets"]
    assert np.diff(offsets).tolist()[1] == len(THYROID) + 15 + len(INDELS)


def _declared_indels_unmeasured(adata, rows: list[int]):
    """`adata` with its tumours `rows` recording ID83/ID12 unmeasured (as --not-measured indels does) and
    their indel counts zeroed, their indel tokens kept (the calls a file holds all the same)."""
    out = adata.copy()
    table = pd.DataFrame(True, index=out.obs_names, columns=list(SET_NAMES))
    table.iloc[rows, [SET_NAMES.index("ID83"), SET_NAMES.index("ID12")]] = False
    out.obsm[MEASURED_SETS] = table
    meta = dict(out.uns["nanog1"])  # measured for some tumours only, as a merge of such parts records it
    meta["channel_sets"] = dict(meta["channel_sets"]) | {"ID83": PARTIAL, "ID12": PARTIAL}
    out.uns["nanog1"] = meta
    x = np.asarray(out.X).copy()
    for name in ("ID83", "ID12"):
        x[np.ix_(rows, np.arange(x.shape[1])[set_slice(name)])] = 0
    out.X = x
    return out


def _train(tmp_path, view: str):
    """A tiny `train_adata` run of `view` on a cohort of which tumours 0 and 5 declare indels not measured
    while their tokens hold indel calls; returns (cohort, run folder, its MLflow params, the number of
    indel calls of those two tumours)."""
    import mlflow

    from nanog1.encoder.run import train_adata

    adata = _declared_indels_unmeasured(make_cohort(n_per_type=4, seed=2), [0, 5])
    tokens = adata.uns[TOKENS]
    owner = np.repeat(np.arange(adata.n_obs), np.diff(tokens["offsets"]))
    is_indel = np.isin(tokens["channel"], np.arange(adata.n_vars)[set_slice("ID83")])
    declared = int((is_indel & np.isin(owner, [0, 5])).sum())
    cfg = TrainConfig(view=view, hidden=16, layers=1, rank=4, heads=2, batch_size=8, epochs=1,
                      register_model=False, min_gene_tumours=1)
    tmp_path.mkdir(exist_ok=True)
    uri = f"sqlite:///{tmp_path}/m.db"
    outcome = train_adata(adata, tmp_path / "run", cfg, tracking_uri=uri)
    params = mlflow.MlflowClient(uri).get_run(outcome.run_id).data.params
    return adata, tmp_path / "run", params, declared


def test_training_and_finetuning_state_how_many_calls_they_left_out(tmp_path, capsys):
    """An event-view training run states in metrics.json, its MLflow params and a log line how many calls
    (and of how many tumours) it left out, the count predict would give (obs['events_not_read']); so does
    fine-tuning it on that cohort; a catalogue run reads no calls and states none. Before, neither said
    anything."""
    import mlflow

    from nanog1.encoder.data import unmeasured_event_counts
    from nanog1.encoder.finetune import FinetuneConfig, finetune_cohort

    adata, run, params, declared = _train(tmp_path, "events")
    assert declared > 0 and unmeasured_event_counts(adata).sum() == declared
    record = json.loads((run / "metrics.json").read_text())
    assert record["events_not_read"] == declared and record["tumours_events_not_read"] == 2
    assert params["events_not_read"] == str(declared) and params["tumours_events_not_read"] == "2"
    assert f"train: {declared:,} call(s) of 2 tumour(s) left out" in capsys.readouterr().err

    adata.write_h5ad(tmp_path / "c.h5ad")
    uri = f"sqlite:///{tmp_path}/f.db"
    outcome = finetune_cohort(tmp_path / "c.h5ad", run, tmp_path / "ft", FinetuneConfig(epochs=1), uri)
    record = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert record["events_not_read"] == declared and record["tumours_events_not_read"] == 2
    params = mlflow.MlflowClient(uri).get_run(outcome.run_id).data.params
    assert params["events_not_read"] == str(declared)
    stored = ckpt.load(tmp_path / "ft" / MODEL)[TRAINING_NOT_READ]  # the fine-tuned model.pt keeps its own
    assert stored == {k: int(params[k]) for k in stored} and stored["events_not_read_indels"] == declared

    _, run, params, _ = _train(tmp_path / "catalogue", "catalogue")  # reads no calls: states none
    assert "events_not_read" not in json.loads((run / "metrics.json").read_text())
    assert "events_not_read" not in params
    assert TRAINING_NOT_READ not in ckpt.load(run / MODEL)


@pytest.fixture(scope="module")
def event_run(tmp_path_factory):
    """One tiny event-view run (`_train`) for the tests of what its model.pt states."""
    return _train(tmp_path_factory.mktemp("events"), "events")


def test_model_file_stores_what_training_left_out(event_run):
    """model.pt holds the run's not-read record (total, tumours, per kind of call) as plain ints, equal to
    the MLflow params and metrics.json of the same run, so the model file alone tells that training left
    calls out. Before, only the MLflow run and metrics.json did."""
    adata, run, params, declared = event_run
    stored = ckpt.load(run / MODEL)[TRAINING_NOT_READ]
    assert stored == {"events_not_read": declared, "tumours_events_not_read": 2,
                      "events_not_read_indels": declared}
    assert all(type(v) is int for v in stored.values())  # JSON-like: nothing pickled
    assert stored == {k: int(params[k]) for k in stored}
    metrics = json.loads((run / "metrics.json").read_text())
    assert stored == {k: metrics[k] for k in stored}
    assert run_info(run)[TRAINING_NOT_READ] == stored


def _scored(adata, run):
    """`predict` of `adata` with the model of `run` (no neighbours, no exposures): the annotated copy."""
    return predict(adata, load_predictor(run), PredictOptions(neighbours=0, exposures=False), copy=True)


def test_predict_and_models_show_state_the_stored_record_and_an_old_file_still_predicts(event_run, tmp_path):
    """predict with that run's model states what its training left out (predictions.json's model block, the
    event-view note on masked sets, `models show`); the same model.pt without the entry (as saved before
    it was kept, like the packaged models) loads and predicts the same probabilities and states nothing of
    it. Before, nothing read from the model told that training left calls out."""
    adata, run, _, declared = event_run
    got = _scored(adata, run)
    record = got.uns["nanog1_predict"]
    assert record[TRAINING_NOT_READ] == ckpt.load(run / MODEL)[TRAINING_NOT_READ]
    note = record["event_view_masking"]
    assert ("it was trained without set dropout, so its accuracy on tumours with masked sets is not "
            f"measured; its training left out {declared:,} call(s) of 2 tumour(s) as of a kind of call the "
            f"tumour did not measure (indels {declared:,}") in note, note
    write_outputs(got, prediction_table(got), tmp_path / "o", reports=False)
    doc = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert doc["model"][TRAINING_NOT_READ]["events_not_read"] == declared
    shown = CliRunner().invoke(app, ["models", "show", str(run)])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)[TRAINING_NOT_READ]["events_not_read"] == declared

    old = tmp_path / "old"
    shutil.copytree(run, old)
    saved = ckpt.load(old / MODEL)
    del saved[TRAINING_NOT_READ]
    ckpt.atomic_save(saved, old / MODEL)
    before = _scored(adata, old)
    record = before.uns["nanog1_predict"]
    assert TRAINING_NOT_READ not in record and "its training left out" not in record["event_view_masking"]
    assert "with every set it reads measured for every tumour" in record["event_view_masking"]
    np.testing.assert_allclose(before.obsm["proba_type"].to_numpy(), got.obsm["proba_type"].to_numpy())
    assert TRAINING_NOT_READ not in json.loads(CliRunner().invoke(app, ["models", "show", str(old)]).output)
