"""Per-mutation signature probabilities on event tokens: normalisation, reference values, exposure sums."""

from __future__ import annotations

import numpy as np
import pytest

from nanog1.fitting.cohort import fit_cohort
from nanog1.fitting.per_mutation import annotate_tokens, token_probabilities
from nanog1.genomics.channels import CHANNEL_SETS, all_channels
from nanog1.genomics.signatures import load_reference
from nanog1.genomics.simulate import simulate_cohort, simulated_anndata


def _tokens_from_counts(counts: np.ndarray, rng) -> dict:
    """One token per counted mutation (all 257 channels), shuffled within each sample."""
    channel, offsets = [], [0]
    for row in counts.astype(np.int64):
        events = np.repeat(np.arange(len(row)), row)
        channel.append(rng.permutation(events))
        offsets.append(offsets[-1] + len(events))
    return {"offsets": np.array(offsets, dtype=np.int64), "channel": np.concatenate(channel).astype(np.int32)}


@pytest.fixture(scope="module")
def cohort():
    sim = simulate_cohort(30, seed=4, burden_scale=0.2)
    adata = simulated_anndata(sim)
    adata.uns["tokens"] = _tokens_from_counts(np.asarray(adata.X), np.random.default_rng(0))
    fit_cohort(adata, channel_sets=["SBS96", "ID83"])
    return adata


def test_rows_sum_to_one_and_match_a_per_event_reference(cohort):
    ref = load_reference()
    names = annotate_tokens(cohort, ref, "SBS96")
    tok = cohort.uns["tokens"]
    probs = tok["sig_prob_SBS96"]
    assert probs.dtype == np.float32 and probs.shape == (len(tok["channel"]), len(names))
    assert list(tok["sig_names_SBS96"]) == names
    sets = np.array([s for s, _ in all_channels()])[tok["channel"]]
    np.testing.assert_allclose(probs[sets == "SBS96"].sum(1), 1.0, atol=1e-5)
    assert (probs[sets != "SBS96"] == 0).all()
    exp = cohort.obsm["exposures_SBS96"]
    labels = np.array([lab for _, lab in all_channels()])
    rng = np.random.default_rng(1)
    sample_of = np.repeat(np.arange(cohort.n_obs), np.diff(tok["offsets"]))
    for i in rng.choice(np.flatnonzero(sets == "SBS96"), 25, replace=False):
        e = exp.iloc[sample_of[i]][names].to_numpy()
        s = ref.loc[labels[tok["channel"][i]], names].to_numpy()
        np.testing.assert_allclose(probs[i], e * s / (e * s).sum(), rtol=1e-5, atol=1e-7)


def test_sums_over_a_sample_reproduce_its_exposures(cohort):
    for cs in ("SBS96", "ID83"):
        ref = load_reference(channel_set=cs)
        tok = cohort.uns["tokens"]
        probs, names = token_probabilities(tok, cohort.obsm[f"exposures_{cs}"], ref, cs)
        sample_of = np.repeat(np.arange(cohort.n_obs), np.diff(tok["offsets"]))
        summed = np.zeros((cohort.n_obs, len(names)))
        np.add.at(summed, sample_of, probs.astype(np.float64))
        E = cohort.obsm[f"exposures_{cs}"][names].to_numpy()
        V = cohort.to_df()[list(CHANNEL_SETS[cs])].to_numpy()
        R = E @ ref[names].to_numpy().T
        exact = E * ((V / np.where(R > 0, R, 1)) @ ref[names].to_numpy())  # e_s · Σ_c V_c S_cs / R_c
        np.testing.assert_allclose(summed, exact, rtol=1e-4, atol=1e-3)
        good = cohort.obs[f"fit_cosine_{cs}"].to_numpy() > 0.95
        assert good.sum() >= 10
        rel = np.abs(summed - E).sum(1) / E.sum(1)
        assert np.median(rel[good]) < 0.1


def test_annotate_requires_tokens_and_exposures(cohort):
    bare = cohort.copy()
    del bare.uns["tokens"]
    with pytest.raises(ValueError, match="tokens"):
        annotate_tokens(bare, load_reference(), "SBS96")
    with pytest.raises(ValueError, match="exposures_DBS78"):
        annotate_tokens(cohort, load_reference(channel_set="DBS78"), "DBS78")


def test_export_without_per_mutation_fit_names_the_option(cohort):
    """`signatures per-mutation` on a cohort fitted without --per-mutation said 'run `nanog1 signatures fit`
    on it first', which a user had done: it names the option that writes the probabilities."""
    from nanog1.errors import UserError
    from nanog1.fitting.per_mutation import probability_table

    fitted = cohort.copy()
    fitted.uns["tokens"] = {k: v for k, v in cohort.uns["tokens"].items() if not k.startswith("sig_")}
    with pytest.raises(UserError, match="--per-mutation"):
        probability_table(fitted, "SBS96")


def test_cli_fit_with_bootstrap_subset_mlflow_and_export(tmp_path):
    import mlflow
    import pandas as pd
    from typer.testing import CliRunner

    from nanog1.cli import app
    from nanog1.genomics.cohort import read_cohort, write_cohort

    adata = simulated_anndata(simulate_cohort(12, seed=6, burden_scale=0.2))
    adata.uns["tokens"] = _tokens_from_counts(np.asarray(adata.X), np.random.default_rng(2))
    path, fitted, tsv = tmp_path / "c.h5ad", tmp_path / "fitted.h5ad", tmp_path / "probs.tsv"
    write_cohort(adata, path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["signatures", "fit", str(path), "-o", str(fitted), "--set", "SBS96", "--bootstrap", "20"]
    args += ["--signatures", "SBS1,SBS2,SBS5,SBS13,SBS40a", "--mlflow", uri, "--per-mutation"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    out = read_cohort(fitted)
    assert list(out.obsm["exposures_SBS96"].columns) == ["SBS1", "SBS2", "SBS5", "SBS13", "SBS40a"]
    lo, hi, point = (out.obsm[f"exposures_SBS96{s}"].to_numpy() for s in ("_lo", "_hi", ""))
    assert (lo <= hi).all() and lo.shape == point.shape
    record = out.uns["signature_fit"]
    assert record["cosmic_version"] == "3.4" and int(record["SBS96"]["bootstrap"]["draws"]) == 20
    assert len(record["SBS96"]["table_sha256"]) == 64
    client = mlflow.MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("fitted/signatures").experiment_id])[0]
    assert run.data.params["fit.SBS96.bootstrap.draws"] == "20"
    assert run.data.params["fit.subset"] == "SBS1,SBS2,SBS5,SBS13,SBS40a"
    res = CliRunner().invoke(app, ["signatures", "per-mutation", str(fitted), "-o", str(tsv)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tsv, sep="\t")
    assert len(table) == int(np.asarray(out.X)[:, :96].sum())
    names = list(out.uns["tokens"]["sig_names_SBS96"])
    np.testing.assert_allclose(table[names].sum(1), 1.0, atol=1e-4)
    bad = CliRunner().invoke(app, ["signatures", "fit", str(path), "--signatures", "SBS999"])
    assert bad.exit_code == 2 and "SBS999" in bad.output


def test_own_signature_table_is_fitted_and_recorded(tmp_path):
    import hashlib

    from nanog1.fitting.cohort import CohortFitOptions, own_tables

    ref = load_reference()[["SBS1", "SBS5", "SBS13"]].rename(columns=lambda c: f"MY{c}")
    path = tmp_path / "mine.tsv"
    ref.to_csv(path, sep="\t")
    adata = simulated_anndata(simulate_cohort(6, seed=1))
    options = CohortFitOptions(tables=own_tables([path]))
    fit_cohort(adata, channel_sets=["SBS96"], options=options)
    assert list(adata.obsm["exposures_SBS96"].columns) == ["MYSBS1", "MYSBS5", "MYSBS13"]
    rec = adata.uns["signature_fit"]["SBS96"]
    assert rec["table"] == str(path) and rec["table_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match="second SBS96"):
        own_tables([path, path])
