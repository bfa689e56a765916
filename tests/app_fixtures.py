"""Fixture data for the dashboard tests and benchmark: a contract-following cohort and a real MLflow store.

The cohort is random but realistic: per-type mutational profiles, Dirichlet-multinomial counts with
log-normal burdens, signature exposures, type probabilities and embeddings that cluster by type.
The MLflow store is made by MLflow itself (two runs, metrics per epoch, a confusion-matrix PNG).
"""

from __future__ import annotations

import functools
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from nanog1.genomics.channels import CHANNEL_SETS, all_channels
from nanog1.genomics.cohort import channel_set_status, channel_var, full_layout, with_derived_sets

TYPES = ("Breast-AdenoCA", "Lung-SCC", "Skin-Melanoma", "ColoRect-AdenoCA", "Liver-HCC")
SIGNATURES = {"SBS96": ["SBS1", "SBS2", "SBS5", "SBS7a", "SBS13", "SBS40a"], "DBS78": ["DBS1", "DBS2"]}


#: 40 COSMIC SBS signatures: a realistic fit has this many active, more than any 20-colour scheme.
MANY_SBS = ("SBS1 SBS2 SBS3 SBS4 SBS5 SBS6 SBS7a SBS7b SBS7c SBS7d SBS8 SBS9 SBS10a SBS10b SBS11 SBS12 SBS13 "
            "SBS14 SBS15 SBS16 SBS17a SBS17b SBS18 SBS19 SBS20 SBS21 SBS22a SBS23 SBS24 SBS25 SBS26 "
            "SBS28 SBS29 SBS30 SBS31 SBS32 SBS33 SBS34 SBS35 SBS40a").split()


def make_cohort(n: int, seed: int = 0, sets: tuple[str, ...] = ("SBS96", "DBS78", "ID83"),
                signatures: dict[str, list[str]] | None = None) -> ad.AnnData:
    """A cohort of `n` samples following the cohort contract (cohort_format.md).

    `signatures` (channel set -> names) replaces the default six SBS and two DBS signatures.
    """
    rng = np.random.default_rng(seed)
    channels = all_channels()
    set_of = np.array([s for s, _ in channels])
    types = rng.choice(len(TYPES), size=n)
    x = np.zeros((n, len(channels)), dtype=np.float32)
    for name in sets:
        cols = np.flatnonzero(set_of == name)
        profiles = rng.dirichlet(np.full(len(cols), 0.3), size=len(TYPES))
        scale = {"SBS96": 6.5, "DBS78": 3.0, "ID83": 4.0}[name]
        burdens = rng.lognormal(scale, 1.0, size=n).astype(int)
        for i in range(n):
            p = rng.dirichlet(50 * profiles[types[i]] + 1e-3)
            x[i, cols] = rng.multinomial(burdens[i], p)
    x[0] = 0.0  # one empty sample, flagged no_mutations
    x = full_layout(x, list(sets)).astype(np.float32)
    names = [f"SA{i:05d}" for i in range(n)]
    obs = pd.DataFrame(index=names)
    type_names = np.array(TYPES)[types].astype(object)
    type_names[1] = np.nan  # one sample of unknown type
    obs["cancer_type"] = pd.Categorical(type_names, categories=list(TYPES))
    obs["donor"] = [f"DO{i:05d}" for i in range(n)]
    for name in CHANNEL_SETS:
        obs[f"burden_{name}"] = x[:, set_of == name].sum(axis=1).astype(np.int64)
    obs["no_mutations"] = x.sum(axis=1) == 0
    adata = ad.AnnData(X=x, obs=obs, var=channel_var())
    _add_signatures(adata, rng, sets, signatures or SIGNATURES)
    _add_predictions(adata, rng, types)
    adata.uns["nanog1"] = {"version": "0.1.0", "created": "2026-11-23T00:00:00+00:00",
                           "channel_sets_present": with_derived_sets(list(sets)),
                           "channel_sets": channel_set_status(list(sets)), "skipped": {"filter": 3}}
    adata.uns["signature_fit"] = {"cosmic_version": "3.4", "genome_build": "GRCh37", "method": "nnls"}
    return adata


def _add_signatures(adata: ad.AnnData, rng: np.random.Generator, sets: tuple[str, ...],
                    signatures: dict[str, list[str]]) -> None:
    for name, sigs in signatures.items():
        if name not in sets:
            continue
        shares = rng.dirichlet(np.full(len(sigs), 0.5), size=adata.n_obs)
        shares[shares < 0.05] = 0.0
        burden = adata.obs[f"burden_{name}"].to_numpy()[:, None]
        total = shares.sum(axis=1, keepdims=True)
        expo = np.where(total > 0, shares / np.where(total > 0, total, 1) * burden, 0.0)
        adata.obsm[f"exposures_{name}"] = pd.DataFrame(expo, index=adata.obs_names, columns=sigs)
        adata.obs[f"fit_cosine_{name}"] = rng.uniform(0.85, 0.99, size=adata.n_obs)


def _add_predictions(adata: ad.AnnData, rng: np.random.Generator, types: np.ndarray) -> None:
    logits = rng.normal(0, 1, size=(adata.n_obs, len(TYPES)))
    logits[np.arange(adata.n_obs), types] += 2.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    adata.obsm["proba_type"] = pd.DataFrame(proba, index=adata.obs_names, columns=list(TYPES))
    predicted = np.array(TYPES)[proba.argmax(axis=1)]
    adata.obs["predicted_type"] = pd.Categorical(predicted, categories=list(TYPES))
    centres = rng.normal(0, 4, size=(len(TYPES), 16))
    adata.obsm["X_nanog1"] = (centres[types] + rng.normal(0, 1, size=(adata.n_obs, 16))).astype(np.float32)


def tile_cohort(adata: ad.AnnData, n: int) -> ad.AnnData:
    """A cohort of `n` samples made of repeats of `adata`'s (names SA00000…): TCGA-sized in a second,
    for tests of how the dashboard scales (generating 13,000 catalogues takes far longer)."""
    big = adata[np.arange(n) % adata.n_obs].copy()
    big.obs_names = [f"SA{i:05d}" for i in range(n)]
    return big


def write_cohort(adata: ad.AnnData, path: Path) -> Path:
    """Write the cohort to `path` (.h5ad) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(path)
    return path


def confusion_png(path: Path, seed: int) -> Path:
    """A small confusion-matrix figure, as training would log it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.random.default_rng(seed).integers(0, 20, size=(len(TYPES), len(TYPES)))
    fig, ax = plt.subplots(figsize=(3, 3), dpi=80)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.savefig(path)
    plt.close(fig)
    return path


def make_mlflow_store(root: Path, epochs: int = 4, experiments: tuple[str, ...] = ("nanog1-demo",)) -> str:
    """A real SQLite MLflow store under `root` with two runs per experiment; returns its tracking URI."""
    import mlflow

    root.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    for name in experiments:
        _log_runs(client, root, name, epochs)
    return uri


def _log_runs(client, root: Path, experiment: str, epochs: int) -> None:
    artifacts = (root / "artifacts" / experiment).as_uri()
    exp_id = client.create_experiment(experiment, artifact_location=artifacts)
    for k, lr in enumerate((1e-3, 3e-4)):
        name = f"mixer-{k}" if experiment == "nanog1-demo" else f"{experiment}-{k}"
        run = client.create_run(exp_id, run_name=name)
        rid = run.info.run_id
        client.log_param(rid, "lr", lr)
        client.log_param(rid, "mixer", ("qcompass", "mha")[k])
        for epoch in range(epochs):
            client.log_metric(rid, "train_loss", 2.0 / (epoch + 1) + 0.1 * k, step=epoch)
            client.log_metric(rid, "val_accuracy", 0.5 + 0.1 * epoch - 0.05 * k, step=epoch)
        client.log_artifact(rid, str(confusion_png(root / f"confusion_matrix_{k}.png", k)), "figures")
        for table in _report_tables(root / f"reports_{experiment}_{k}", k):
            client.log_artifact(rid, str(table))
        client.set_terminated(rid)


def _report_tables(folder: Path, seed: int) -> list[Path]:
    """confusion.csv and reliability.csv in the layout `nanog1 train` writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = len(TYPES)
    counts = rng.integers(0, 5, size=(n, n)) + np.diag(rng.integers(20, 40, size=n))
    confusion = pd.DataFrame(counts, index=pd.Index(TYPES, name="true"),
                             columns=pd.Index(TYPES, name="predicted"))
    confusion.to_csv(folder / "confusion.csv")
    edges = np.linspace(0, 1, 6)
    mids = (edges[:-1] + edges[1:]) / 2
    rows = [{"model": model, "bin": b, "lower": edges[b], "upper": edges[b + 1],
             "count": int(rng.integers(5, 50)), "confidence": mids[b], "accuracy": min(1.0, mids[b] + shift)}
            for model, shift in (("uncalibrated", -0.1), ("T = 1.30", 0.0)) for b in range(5)]
    pd.DataFrame(rows).to_csv(folder / "reliability.csv", index=False)
    return [folder / "confusion.csv", folder / "reliability.csv"]


@functools.cache
def shared_store(base: Path) -> str:
    """One MLflow store per test session (made once: MLflow's SQLite set-up takes seconds)."""
    return make_mlflow_store(base / "app_mlflow")


def simulated_vcfs(folder: Path, n: int = 2, cancer_type: str = "Skin-Melanoma", seed: int = 5):
    """`nanog1 simulate`'s files in `folder`: genome.fa (+.fai), vcf/<sample>.vcf and samples.csv."""
    from nanog1.genomics.simulate import SimulationConfig, simulate_cohort
    from nanog1.genomics.simulate_files import FileOptions, write_simulated_files

    sim = simulate_cohort(config=SimulationConfig(n, (cancer_type,), seed, 0.1))
    return write_simulated_files(sim, folder, FileOptions(maf_fraction=0.0, seed=seed, min_length=1_000_000))


def models_page(monkeypatch, checkpoints: dict[str, tuple[str, Path]]):
    """The dashboard's Models page run with each environment variable of `checkpoints` naming a model file.

    `checkpoints` maps a variable to (the model class the page must load, the file); the page must raise
    nothing and report each model loaded, in that order. Returns the AppTest for further checks.
    """
    from streamlit.testing.v1 import AppTest

    from nanog1.dashboard.config import app_dir

    for var, (_, path) in checkpoints.items():
        monkeypatch.setenv(var, str(path))
    at = AppTest.from_file(str(app_dir() / "Home.py"), default_timeout=120)
    at = at.switch_page("views/models.py").run()
    assert not at.exception, [e.value for e in at.exception]
    loaded = [f"Loaded {name} from {path}" for name, path in checkpoints.values()]
    assert [s.value for s in at.success] == loaded
    return at


def mutect2_vcf(folder: Path, n_pass: int = 30, n_weak: int = 6) -> tuple[Path, int]:
    """A Mutect2 tumour/normal VCF as Mutect2 writes it (tests/test_ingest_somatic.py: its header, FORMAT,
    the tumour named in `##tumor_sample`) with FILTER `weak_evidence` on `n_weak` of its SNVs, on a generated
    genome; returns the VCF and the number of non-PASS calls written."""
    from nanog1.genomics.synthetic import GenomeSpec, make_genome
    from tests.test_ingest_somatic import mutect2, sites

    folder.mkdir(parents=True, exist_ok=True)
    seq = make_genome(folder / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=11))["1"]
    positions = sites(seq, n_pass + n_weak)
    mutect2(folder / "p1.mutect2.vcf", seq, positions[:n_pass], positions[n_pass:])
    return folder / "p1.mutect2.vcf", n_weak


def unannotated_gdc_maf(path: Path) -> tuple[Path, int]:
    """A GDC/MC3-style exome MAF of one tumour with PASS and non-PASS calls (MC3's FILTER values; see
    tests/test_predict_exome.py) and no protein-change column (HGVSp_Short dropped); returns the MAF and
    its number of non-PASS calls."""
    from tests.test_predict_exome import _mixed_filter_maf

    n_all, n_pass = _mixed_filter_maf(path)
    frame = pd.read_csv(path, sep="\t", comment="#").drop(columns="HGVSp_Short")
    with open(path, "w") as f:
        f.write("#version gdc-1.0.0\n")
        frame.to_csv(f, sep="\t", index=False)
    return path, n_all - n_pass


def snv_only_maf(path: Path, n: int) -> Path:
    """A GDC-style MAF of one tumour with `n` substitutions and no indel, as an SNV-only caller exports it
    (nothing in the file says indels were not called)."""
    from tests.test_predict_exome import _passengers, write_gdc_maf

    write_gdc_maf(path, {"TCGA-EE-0001-01A-11D-A000-08": _passengers(np.random.default_rng(7), n)})
    return path


def codon_model(folder: Path) -> Path:
    """A small event-view model whose hotspot bag reads protein codons (KRAS:p.G12, IDH1:p.R132), trained by
    `nanog1 train` on an annotated MAF (tests/test_protein_codon.py) with every call read; its run folder."""
    import pytest
    from typer.testing import CliRunner

    from nanog1.cli import app
    from nanog1.genomics.ingest import IngestOptions, ingest
    from tests.test_protein_codon import _write_typed_maf

    folder.mkdir(parents=True, exist_ok=True)
    _write_typed_maf(folder / "train.maf", "train", 12, 0)
    ingest([folder / "train.maf"], None, None, folder / "train.h5ad", IngestOptions(filter="all"))
    args = ["train", str(folder / "train.h5ad"), "--view", "events", "--hotspots", "6", "--gene-bag", "5",
            "--epochs", "1", "--hidden", "16", "--layers", "1", "--rank", "4", "--heads", "2",
            "--max-events", "8", "--hotspot-key", "codon", "--out", str(folder / "codon")]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(folder)
        done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    return folder / "codon"


def stated_prediction(path: Path, model, rule: str | None = None, point: str = "in-study",
                      not_measured: str = "") -> ad.AnnData:
    """`path` predicted through the Python API as `nanog1 predict` does it (`model`: a packaged name, a run
    folder or a loaded model; the model's FILTER rule unless `rule`; operating point `point`; sets declared
    not measured `not_measured`, as --not-measured): what the Predict page must state."""
    from nanog1.encoder.predict_notes import mismatch_warnings_stated
    from nanog1.encoder.predictor import PredictOptions, load_predictor, predict, read_inputs

    loaded = load_predictor(model) if isinstance(model, (str, Path)) else model
    adata = read_inputs([path], None, loaded.filter_choice(rule).rule, not_measured=not_measured)
    with mismatch_warnings_stated():
        predict(adata, loaded, PredictOptions(filter=rule, operating_point=point, not_measured=not_measured))
    return adata
