"""The Python API as a notebook user calls it: ordinary mistakes are one-line ValueErrors naming the
problem, and packaged models are taken by name wherever a model is asked for."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import nanog1.encoder as enc
from nanog1.encoder import pretrained
from nanog1.errors import UserError
from nanog1.genomics.channels import SBS96
from tests.training_cohort import make_cohort


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(n_per_type=2, seed=3, tokens=False)


def test_read_inputs_takes_one_path_as_well_as_a_list(tmp_path):
    matrix = tmp_path / "one.tsv"
    counts = np.random.default_rng(0).poisson(20, size=(96, 2))
    pd.DataFrame(counts, index=pd.Index(SBS96, name="MutationType"), columns=["T1", "T2"]).to_csv(
        matrix, sep="\t")
    for given in (str(matrix), matrix):  # was: iterated over the characters ('/: input file not found')
        adata = enc.read_inputs(given)
        assert list(adata.obs_names) == ["T1", "T2"]


@pytest.mark.parametrize("call", [
    lambda x: enc.predict(x, "pcawg-catalogue"),
    lambda x: enc.embed(x, "pcawg-catalogue"),
    lambda x: enc.score(x, "pcawg-catalogue"),
    lambda x: enc.features(x),
])
def test_a_path_or_table_instead_of_an_anndata_is_named(tmp_path, cohort, call):
    for wrong in ("cohort.h5ad", Path("cohort.h5ad"), cohort.to_df()):
        with pytest.raises(UserError, match="an AnnData"):  # was AttributeError: ... 'n_vars'
            call(wrong)


def test_predict_on_no_tumours_says_so(cohort):
    with pytest.raises(UserError, match="no tumour"):  # was: 'this model has no cancer-type head'
        enc.predict(cohort[:0].copy(), "pcawg-catalogue")


def test_score_embed_and_run_info_take_a_packaged_model_by_name(cohort):
    name = "pcawg-catalogue"
    assert name in pretrained.available()
    info = enc.run_info(name)  # was: 'pcawg-catalogue/model.pt: no such model or checkpoint file'
    assert info["classes"] and info["config"].task == "cancer_type"
    emb = enc.embed(cohort, name, key_added="X_pcawg", copy=True)
    assert emb.obsm["X_pcawg"].shape[0] == cohort.n_obs and "X_pcawg" not in cohort.obsm
    scored = enc.score(cohort, name, key_added="pcawg", copy=True)
    assert list(scored.obsm["pcawg_proba_type"].columns) == info["classes"]
    assert list(scored.obs_names) == list(cohort.obs_names)
    with pytest.raises(UserError, match="no such model or checkpoint"):
        enc.embed(cohort, "pcawg-catalog")  # a misspelt name is still named


def test_run_folder_of_that_name_here_still_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pcawg-catalogue").mkdir()
    assert pretrained.run_folder("pcawg-catalogue") == Path("pcawg-catalogue")
    assert pretrained.run_folder("elsewhere") == Path("elsewhere")
    monkeypatch.chdir(Path(ad.__file__).parent)
    assert pretrained.run_folder("pcawg-catalogue") == pretrained.ROOT / "pcawg-catalogue"


def test_type_metrics_names_a_missing_key(cohort):
    with pytest.raises(UserError, match=r"no obsm\['proba_x'\]"):  # was KeyError: 'proba_x'
        enc.type_metrics(cohort, "proba_x")


def test_embed_under_another_key_keeps_the_scoring_models_record(tmp_path, cohort):
    from tests.predict_models import write_model_folder

    other = write_model_folder(tmp_path / "other", make_cohort(n_per_type=3, seed=5, tokens=False))
    scored = enc.score(cohort, "pcawg-catalogue", copy=True)
    first = dict(scored.uns["nanog1_model"])
    assert "metrics" in first
    both = enc.embed(scored, other, key_added="X_other", copy=True)
    # was: uns['nanog1_model'] replaced by the other run's, with the first one's metrics dropped, while
    # obs['predicted_type'] and obsm['X_nanog1'] are still the first model's
    assert both.uns["nanog1_model"] == first
    assert both.uns["X_other_model"]["run_dir"] == str(other.resolve())
    assert both.obsm["X_other"].shape == (cohort.n_obs, 8)
    again = enc.embed(scored, "pcawg-catalogue", copy=True)  # the default key: the record is that model's
    assert again.uns["nanog1_model"]["metrics"] == first["metrics"]


def test_download_model_names_the_store_it_looked_in(tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient

    from nanog1.tracking import download_model

    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    (tmp_path / "store").mkdir()
    client = MlflowClient(store)
    experiment = client.create_experiment("x", artifact_location=(tmp_path / "store" / "art").as_uri())
    run_id = client.create_run(experiment).info.run_id
    (tmp_path / "model.pt").write_bytes(b"weights")
    client.log_artifact(run_id, str(tmp_path / "model.pt"), "model")
    client.set_terminated(run_id)

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'elsewhere.db'}")  # e.g. a notebook's own folder
    got = download_model(f"runs:/{run_id}/model", tracking_uri=store)  # was: no way to name the store
    assert got.name == "model.pt" and got.read_bytes() == b"weights"
    with pytest.raises(UserError, match=r"not found in the MLflow store sqlite:///.*elsewhere\.db.*tracking_uri"):
        download_model(f"runs:/{run_id}/model")  # was MlflowException 'Run with id=... not found'


def test_download_model_creates_no_store_where_it_reads(tmp_path, monkeypatch):
    """With no store named (no tracking_uri, MLFLOW_TRACKING_URI or set_tracking_uri), MLflow's default is
    sqlite:///mlflow.db in the current folder, which opening creates: download_model left an empty
    mlflow.db (and its schema) wherever it was called. It now says the store does not exist, and names how
    to give the right one; a named local store that does not exist is not created either."""
    import mlflow.tracking._model_registry.utils as registry
    import mlflow.tracking._tracking_service.utils as tracking

    from nanog1.tracking import download_model

    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tracking, "_tracking_uri", None)  # as in a fresh Python session
    monkeypatch.setattr(registry, "_registry_uri", None)
    cwd = tmp_path / "lab"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for uri in ("runs:/0123456789abcdef0123456789abcdef/model", "models:/lab-model/1"):
        with pytest.raises(UserError, match=rf"{uri}: not found in the MLflow store sqlite:///.*mlflow\.db "
                                            r"\(no such database file .*; not created\).*tracking_uri="):
            download_model(uri)
        assert sorted(p.name for p in cwd.iterdir()) == [], "download_model created files where it ran"
    for store, what in ((f"sqlite:///{tmp_path / 'typo' / 'mlflow.db'}", "database file"),
                        (f"sqlite:///{cwd / 'typo.db'}", "database file"),
                        ((tmp_path / "mlruns").as_uri(), "store folder")):
        with pytest.raises(UserError, match=f"no such {what}"):
            download_model("runs:/0123456789abcdef0123456789abcdef/model", tracking_uri=store)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["lab"]


@pytest.mark.parametrize("value", [np.nan, np.inf, -5.0])
def test_counts_that_are_not_counts_are_refused(cohort, value):
    bad = cohort.copy()
    x = np.asarray(bad.X, dtype=np.float32).copy()
    x[1, 3] = value
    bad.X = x
    calls = [lambda: enc.predict(bad, "pcawg-catalogue", enc.PredictOptions(exposures=False), copy=True),
             lambda: enc.predict(bad, "pcawg-catalogue", copy=True),
             lambda: enc.embed(bad, "pcawg-catalogue", copy=True),
             lambda: enc.features(bad)]
    for call in calls:  # was: NaN probabilities typed as a confident type, or numpy's 'pvals < 0' / 'n < 0'
        with pytest.raises(UserError, match=rf"negative or non-finite.*{bad.obs_names[1]}"):
            call()


def test_fit_cohort_refuses_what_is_not_counts(cohort):
    from nanog1.fitting import fit_cohort

    with pytest.raises(UserError, match="an AnnData"):  # was AttributeError: 'str' ... 'uns'
        fit_cohort("cohort.h5ad")
    for value in (np.nan, -5.0):  # was: fitted (NaN: zero exposures, cosine 0; -5: as if a count)
        bad = cohort.copy()
        x = np.asarray(bad.X, dtype=np.float32).copy()
        x[2, 0] = value
        bad.X = x
        with pytest.raises(UserError, match=rf"negative or non-finite.*{bad.obs_names[2]}"):
            fit_cohort(bad, channel_sets=["SBS96"])


def test_predict_says_which_tumours_the_model_was_trained_on(tmp_path):
    import warnings

    from nanog1.encoder.evaluate import TrainingOverlapWarning
    from nanog1.encoder.predict_notes import input_warnings, mismatch_warnings_stated
    from tests.predict_models import write_model_folder

    seen = make_cohort(n_per_type=3, seed=5, tokens=False)
    model = write_model_folder(tmp_path / "m", seen)  # reference.npz lists seen's tumours
    fast = enc.PredictOptions(exposures=False, neighbours=0)
    mixed = seen[:4].copy()
    fresh = make_cohort(n_per_type=1, seed=6, tokens=False)
    fresh.obs_names = [f"new{i}" for i in range(fresh.n_obs)]
    with pytest.warns(TrainingOverlapWarning, match=rf"4 of 4 tumour\(s\) \({mixed.obs_names[0]}"):
        enc.predict(mixed, model, fast)  # was: typed in-sample tumours as if new, silently
    assert mixed.uns["nanog1_predict"]["tumours_in_training"] == 4
    assert any(n.kind == "training_overlap" for n in input_warnings(mixed))  # CLI stderr and reports
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingOverlapWarning)
        enc.predict(fresh, model, fast)
        with mismatch_warnings_stated():  # the CLI states it once, from the record
            enc.predict(mixed, model, fast, copy=True)
    assert fresh.uns["nanog1_predict"]["tumours_in_training"] == 0
    assert not fresh.uns["nanog1_predict"]["training_overlap"]
