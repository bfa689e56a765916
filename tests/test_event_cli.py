"""`nanog1 train --view events`, evaluate, embed, pretrain and finetune end to end on a small MAF cohort
(one token per mutation, gene/consequence vocabularies from the cohort), with the real MLflow store."""

from __future__ import annotations

import re

import anndata as ad
import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.encoder.loop import load_model
from nanog1.genomics.ingest import IngestOptions, ingest
from nanog1.tracking import default_tracking_uri, download_model

SMALL = ["--hidden", "16", "--layers", "1", "--rank", "4", "--heads", "2", "--batch-size", "8",
         "--lr", "0.01"]  # fmt: skip
#: Per type: the genes its tumours carry and the substitution it favours (ref -> alt).
TYPES = {"AAA": (["TP53", "KRAS", "APC"], ("C", "A")), "BBB": (["IDH1", "ATRX", "CIC"], ("T", "C")),
         "CCC": (["VHL", "PBRM1", "SETD2"], ("C", "T"))}  # fmt: skip
CONSEQUENCES = ["Missense_Mutation", "Silent", "Nonsense_Mutation", "Intron"]


def _maf(path, n_per_type: int, seed: int, prefix: str = "T", extra_gene: str | None = None) -> None:
    """A MAF whose tumours carry their type's genes and favoured substitution among random others."""
    rng = np.random.default_rng(seed)
    rows = []
    for cancer, (genes, (ref, alt)) in TYPES.items():
        for t in range(n_per_type):
            name = f"{prefix}{cancer}{t:02d}"
            for j in range(int(rng.integers(15, 40))):
                own = rng.random() < 0.6
                gene = str(rng.choice(genes)) if own else f"G{int(rng.integers(0, 40))}"
                gene = extra_gene if extra_gene and j == 0 else gene
                r, a = (ref, alt) if own else ("G", str(rng.choice(["A", "C", "T"])))
                pos = int(rng.integers(1, 50_000_000))
                rows.append((name, gene, str(rng.integers(1, 23)), pos, pos, str(rng.choice(CONSEQUENCES)),
                             "SNP", r, a, cancer))  # fmt: skip
    cols = ["Tumor_Sample_Barcode", "Hugo_Symbol", "Chromosome", "Start_Position", "End_Position",
            "Variant_Classification", "Variant_Type", "Reference_Allele", "Tumor_Seq_Allele2",
            "Cohort"]  # fmt: skip
    pd.DataFrame(rows, columns=cols).to_csv(path, sep="\t", index=False)


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    """A training cohort and a second one with a gene the first never saw."""
    root = tmp_path_factory.mktemp("events")
    out = {}
    for name, n, seed, gene in (("train", 14, 0, None), ("other", 8, 1, "NEVERSEEN")):
        _maf(root / f"{name}.maf", n, seed, prefix=name[0].upper(), extra_gene=gene)
        ingest([root / f"{name}.maf"], None, None, root / f"{name}.h5ad", IngestOptions(filter="all"))
        out[name] = root / f"{name}.h5ad"
    return out


@pytest.fixture(autouse=True)
def _no_env_store(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def test_train_events_saves_its_vocabulary_and_evaluates_another_cohort(cohorts, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    run_dir = tmp_path / "runs" / "events"
    done = runner.invoke(app, ["train", str(cohorts["train"]), "--out", str(run_dir), "--view", "events",
                               "--epochs", "8", *SMALL])  # fmt: skip
    assert done.exit_code == 0, done.output
    run_id = re.search(r"mlflow run: (\w+)", done.output).group(1)
    model, saved = load_model(run_dir / "model.pt")
    vocab = saved["encoder_config"]["event_vocab"]
    assert saved["encoder_config"]["view"] == "events"
    assert {"TP53", "IDH1", "VHL"} <= set(vocab["gene"]) and "NEVERSEEN" not in vocab["gene"]
    assert "Missense_Mutation" in vocab["consequence"]
    assert model.embed.tables["gene"].num_embeddings == 3 + len(vocab["gene"])
    bag = saved["encoder_config"]["gene_bag"]  # K = 300 > the genes here: all of the training part's
    assert {"TP53", "IDH1", "VHL"} <= set(bag) <= set(vocab["gene"])
    assert model.gene_bag.in_features == len(bag) + len(vocab["consequence"])  # + the consequence shares
    client = mlflow.MlflowClient(tracking_uri=default_tracking_uri(run_dir))
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["view"] == "events"
    mlflow.set_tracking_uri(default_tracking_uri(run_dir))
    _, logged = load_model(download_model(f"runs:/{run_id}/model"))  # weights only, vocabulary inside
    assert logged["encoder_config"]["event_vocab"] == vocab

    out = tmp_path / "other_eval.h5ad"
    args = ["evaluate", str(cohorts["other"]), "--run", str(run_dir), "--out", str(out)]
    evaluated = runner.invoke(app, args)
    assert evaluated.exit_code == 0, evaluated.output
    scored = ad.read_h5ad(out)
    assert scored.obsm["X_nanog1"].shape == (scored.n_obs, 16)
    predicted = scored.obs["predicted_type"].astype(str).to_numpy()
    truth = scored.obs["cancer_type"].astype(str).to_numpy()
    assert (predicted == truth).mean() >= 0.6  # three types, strong gene/class signal: chance is 1/3

    embedded = runner.invoke(app, ["embed", str(cohorts["other"]), "--run", str(run_dir), "--out",
                                   str(tmp_path / "emb.h5ad")])  # fmt: skip
    assert embedded.exit_code == 0, embedded.output
    np.testing.assert_allclose(ad.read_h5ad(tmp_path / "emb.h5ad").obsm["X_nanog1"], scored.obsm["X_nanog1"],
                               rtol=1e-4, atol=1e-5)  # fmt: skip


def test_pretrain_beats_the_majority_class_then_finetune_from_it(cohorts, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    pre = tmp_path / "runs" / "pretrained"
    done = runner.invoke(app, ["pretrain", str(cohorts["train"]), "--out", str(pre), "--epochs", "25",
                               "--objective", "masked", "--hidden", "16", "--layers", "1", "--gene-top-k",
                               "8", "--batch-size", "8", "--lr", "0.005"])  # fmt: skip
    assert done.exit_code == 0, done.output
    masked = dict(re.findall(r"masked (\w+): accuracy ([\d.]+)", done.output))
    majority = dict(re.findall(r"masked (\w+): accuracy [\d.]+ \(majority class ([\d.]+)\)", done.output))
    assert set(masked) >= {"channel", "consequence", "gene", "gene_topk"}
    # a tumour's other mutations tell its favoured substitution: the class head must beat the prior
    assert float(masked["channel"]) > float(majority["channel"]) + 0.05
    _, saved = load_model(pre / "model.pt")
    assert saved["encoder_config"]["n_types"] == 0 and saved["train_config"]["task"] == "pretrain"
    assert saved["encoder_config"]["gene_bag"] == []  # a bag would show the masked events' genes

    tuned = runner.invoke(app, ["finetune", str(cohorts["other"]), "--from", str(pre), "--out",
                                str(tmp_path / "runs" / "tuned"), "--epochs", "3"])  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    assert "fine-tuned:" in tuned.output and "scratch:" in tuned.output
    model, saved = load_model(tmp_path / "runs" / "tuned" / "model.pt")
    pretrained_vocab = load_model(pre / "model.pt")[1]["encoder_config"]["event_vocab"]
    assert saved["encoder_config"]["event_vocab"] == pretrained_vocab  # carried over from pretraining
    assert model.type_head.out_features == 3
    assert "TP53" in saved["encoder_config"]["gene_bag"]  # a fresh bag to classify, from its training part


def test_contrastive_pretrain_matches_views_then_finetune_keeps_its_bag(cohorts, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    pre = tmp_path / "runs" / "contrastive"
    opts = ["--epochs", "6", "--hidden", "16", "--layers", "1", "--batch-size",
            "16", "--lr", "0.005", "--view-drop", "0.4", "--temperature", "0.1"]  # fmt: skip
    done = runner.invoke(app, ["pretrain", str(cohorts["train"]), "--out", str(pre), *opts])
    assert done.exit_code == 0, done.output
    found = re.search(r"view accuracy: ([\d.]+) \(chance ([\d.]+)\)", done.output)
    acc, chance = float(found.group(1)), float(found.group(2))
    assert 0.05 < chance < 0.2 and acc > 2 * chance  # each tumour's other view found well above chance
    _, saved = load_model(pre / "model.pt")
    ecfg = saved["encoder_config"]
    assert saved["train_config"]["objective"] == "contrastive" and ecfg["projection"] == 64  # the default
    assert {"TP53", "IDH1", "VHL"} <= set(ecfg["gene_bag"])  # the bag is kept (its entries are dropped)

    tuned = runner.invoke(app, ["finetune", str(cohorts["other"]), "--from", str(pre), "--out",
                                str(tmp_path / "runs" / "tuned"), "--epochs", "3"])  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    model, saved = load_model(tmp_path / "runs" / "tuned" / "model.pt")
    assert model.projection is None and saved["encoder_config"]["projection"] == 0  # head dropped
    assert saved["encoder_config"]["gene_bag"] == ecfg["gene_bag"]  # fine-tuned on the pretraining's bag
    bad = runner.invoke(app, ["pretrain", str(cohorts["train"]), "--out", str(tmp_path / "x"), "--objective",
                              "contrastive", "--view", "catalogue"])  # fmt: skip
    assert bad.exit_code != 0 and "event view" in bad.output


def test_event_view_on_a_cohort_without_tokens_is_a_clear_error(tmp_path):
    from training_cohort import make_cohort

    adata = make_cohort(n_per_type=4, seed=0)
    del adata.uns["tokens"]
    adata.write_h5ad(tmp_path / "no_tokens.h5ad")
    result = CliRunner().invoke(app, ["train", str(tmp_path / "no_tokens.h5ad"), "--out", str(tmp_path / "r"),
                                      "--view", "events", "--epochs", "1", *SMALL])  # fmt: skip
    assert result.exit_code != 0
    assert "uns['tokens']" in (result.output + str(result.exception))
