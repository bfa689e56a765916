"""The report: Markdown + PNGs from an evaluated cohort; its tables equal simple references."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.report import confusion_table, mean_exposures, pca_2d, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def evaluated_cohort(rng: np.random.Generator, n: int = 60) -> ad.AnnData:
    types = rng.choice(["Lung", "Skin", "Breast"], size=n)
    predicted = np.where(rng.random(n) < 0.7, types, rng.choice(["Lung", "Skin", "Breast"], size=n))
    obs = pd.DataFrame({"cancer_type": pd.Categorical(types), "predicted_type": pd.Categorical(predicted),
                        "burden_SBS96": rng.integers(10, 500, n)}, index=[f"s{i}" for i in range(n)])
    obs["split"] = np.where(rng.random(n) < 0.3, "test", np.where(rng.random(n) < 0.2, "val", "train"))
    adata = ad.AnnData(X=rng.poisson(1.0, (n, 257)).astype(np.float32), obs=obs)
    adata.obsm["X_nanog1"] = rng.normal(size=(n, 16)).astype(np.float32)
    adata.obsm["exposures_SBS96"] = pd.DataFrame(rng.gamma(1.0, 50, (n, 5)), index=obs.index,
                                                  columns=["SBS1", "SBS2", "SBS4", "SBS5", "SBS7a"])
    return adata


def test_confusion_table_counts_pairs():
    rng = np.random.default_rng(0)
    truth = pd.Series(rng.choice(list("abc"), 200))
    pred = pd.Series(rng.choice(list("abcd"), 200))
    table = confusion_table(truth, pred)
    for t in table.index:
        for p in table.columns:
            assert table.loc[t, p] == int(((truth == t) & (pred == p)).sum())


def test_mean_exposures_are_mean_shares_per_type():
    rng = np.random.default_rng(1)
    exp = pd.DataFrame(rng.gamma(1.0, 10, (40, 6)), columns=[f"S{i}" for i in range(6)])
    types = pd.Series(rng.choice(["x", "y"], 40))
    table = mean_exposures(exp, types, top=6)
    share = exp.to_numpy() / exp.to_numpy().sum(1, keepdims=True)
    for t in ("x", "y"):
        expected = share[(types == t).to_numpy()].mean(0)
        np.testing.assert_allclose(table.loc[t, exp.columns].to_numpy(), expected)


def test_pca_matches_svd():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 8)) @ np.diag([5, 3, 1, 1, 1, 1, 1, 1])
    coords = pca_2d(X)
    centred = X - X.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    ref = centred @ vt[:2].T
    np.testing.assert_allclose(np.abs(coords), np.abs(ref), atol=1e-8)


def test_report_writes_markdown_and_pngs(tmp_path: Path):
    rng = np.random.default_rng(3)
    adata = evaluated_cohort(rng)
    cohort = tmp_path / "cohort.h5ad"
    adata.write_h5ad(cohort)
    run = tmp_path / "run"
    run.mkdir()
    saved = {"run_id": "abc", "metrics": {"val_accuracy": 0.71, "best_epoch": 3}}
    (run / "metrics.json").write_text(json.dumps(saved))
    argv = ["report", str(cohort), "--run", str(run), "-o", str(tmp_path / "report")]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    md = (tmp_path / "report" / "report.md").read_text()
    for name in ("confusion_matrix.png", "embedding.png", "exposures_SBS96.png"):
        assert f"]({name})" in md
        assert (tmp_path / "report" / name).read_bytes()[:8] == PNG_MAGIC
    held = adata.obs["split"] == "test"  # val samples tuned the run: not held out
    acc = (adata.obs["cancer_type"][held].astype(str) == adata.obs["predicted_type"][held].astype(str)).mean()
    assert f"Scored on {int(held.sum())} held-out test samples" in md
    assert f"accuracy on accepted {acc:.3f} at coverage 1.000" in md
    assert "| val_accuracy | 0.7100 |" in md and "| run_id | abc |" in md
    assert not list((tmp_path / "report").glob(".*"))


def test_report_takes_the_cohort_first_and_still_reads_the_old_option(tmp_path: Path):
    """`nanog1 report COHORT` as ingest/evaluate/embed take their input; the old `--cohort COHORT` (scripts,
    older pipeline rules) still runs with a one-line notice, and --help shows only the positional form."""
    from importlib.resources import files

    cohort = tmp_path / "cohort.h5ad"
    evaluated_cohort(np.random.default_rng(4)).write_h5ad(cohort)
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text(json.dumps({"run_id": "r1", "metrics": {}}))
    for i, spelling in enumerate(([str(cohort)], ["--cohort", str(cohort)], [f"--cohort={cohort}"])):
        out = tmp_path / f"report{i}"
        result = CliRunner().invoke(app, ["report", "--run", str(run), "-o", str(out), *spelling])
        assert result.exit_code == 0, result.output
        assert (out / "report.md").is_file()
        notices = [line for line in result.stderr.splitlines() if "deprecated" in line]
        assert len(notices) == (0 if i == 0 else 1), result.stderr
    assert "--cohort" not in CliRunner().invoke(app, ["report", "--help"]).stdout
    rule = (files("nanog1") / "workflow" / "rules" / "report.smk").read_text()
    assert "report {input.cohort:q}" in rule and "--cohort" not in rule


def test_report_says_what_is_missing(tmp_path: Path):
    adata = ad.AnnData(X=np.zeros((4, 257), dtype=np.float32))
    cohort = tmp_path / "bare.h5ad"
    adata.write_h5ad(cohort)
    result = write_report(cohort, tmp_path, tmp_path / "r")
    assert len(result.figures) == 0 and len(result.notes) == 3
    assert "no `predicted_type`" in result.markdown.read_text()


def test_report_never_shows_an_unmeasured_set_as_a_zero_burden(tmp_path: Path):
    """A cohort ingested without a reference records SBS96/ID83 as not computable: the report gives the
    burdens of what was measured (SBS6, DBS78, ID12) and names the rest as not measured, not 'median 0'."""
    adata = evaluated_cohort(np.random.default_rng(5))
    adata.obs = adata.obs.drop(columns="burden_SBS96").assign(burden_SBS6=7, burden_DBS78=2, burden_ID12=3)
    status = {"SBS96": "not_computable", "DBS78": "exact", "ID83": "not_computable", "SBS6": "exact"}
    adata.uns["nanog1"] = {"channel_sets": {**status, "ID12": "exact"}}
    adata.write_h5ad(tmp_path / "c.h5ad")
    md = write_report(tmp_path / "c.h5ad", tmp_path, tmp_path / "r").markdown.read_text()
    assert "- median SBS6 burden: 7" in md and "- median ID12 burden: 3" in md
    assert "- median DBS78 burden: 2" in md
    assert "median SBS96" not in md and "median ID83" not in md
    assert "- not measured (e.g. ingested without a reference): SBS96, ID83" in md


def test_a_mutation_file_given_as_the_cohort_is_one_error_and_no_folder(tmp_path: Path):
    """`nanog1 report calls.vcf` (or a damaged .h5ad) is one line naming the file, exit 2, and no report
    folder made (h5py's 'file signature not found' traceback before)."""
    vcf = tmp_path / "calls.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t5\t.\tA\tC\t.\tPASS\t.\n")
    cut = tmp_path / "cut.h5ad"
    evaluated_cohort(np.random.default_rng(6)).write_h5ad(cut)
    cut.write_bytes(cut.read_bytes()[:2000])
    for cohort, needle in ((vcf, "not an .h5ad cohort"), (cut, "not a readable .h5ad cohort")):
        out = tmp_path / f"report_{cohort.stem}"
        result = CliRunner().invoke(app, ["report", str(cohort), "--run", str(tmp_path), "-o", str(out)])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines == [lines[0]] and lines[0].startswith(f"error: {cohort}: {needle}"), result.output
        assert not out.exists()


def test_an_output_folder_that_is_a_file_is_one_error(tmp_path: Path):
    """`-o report.md` (a file already there) is one line naming it and the file is left as it was
    (mkdir's FileExistsError traceback before)."""
    cohort = tmp_path / "cohort.h5ad"
    evaluated_cohort(np.random.default_rng(7)).write_h5ad(cohort)
    taken = tmp_path / "report.md"
    taken.write_text("mine\n")
    result = CliRunner().invoke(app, ["report", str(cohort), "--run", str(tmp_path), "-o", str(taken)])
    assert result.exit_code == 2, result.output
    said = f"error: {taken}: cannot be written there ({taken} is a file, not a folder)"
    assert result.stderr.strip() == said
    assert taken.read_text() == "mine\n"


@pytest.mark.parametrize("text", ["{\"run_id\": \"abc\", ", "[1, 2]"])
def test_a_run_metrics_file_that_is_not_a_json_object_is_one_error(tmp_path: Path, text: str):
    """A half-written (or hand-edited) metrics.json is one line naming it, as `models show RUN` says, and no
    report folder is made (json's decoder traceback, or 'list' has no attribute 'items', before)."""
    cohort = tmp_path / "cohort.h5ad"
    evaluated_cohort(np.random.default_rng(8)).write_h5ad(cohort)
    (tmp_path / "metrics.json").write_text(text)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(cohort), "--run", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {tmp_path / 'metrics.json'}: not a readable metrics.json (")
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_report_takes_a_packaged_model_name_as_evaluate_does(tmp_path: Path):
    """`report --run pcawg-catalogue` as `evaluate --run pcawg-catalogue`: the report names the model and says
    plainly that a packaged model has no metrics.json (its card holds the CV metrics); a name that is neither
    a folder nor a packaged model is the resolver's one-line error, no report folder."""
    from nanog1.encoder import pretrained

    name = pretrained.available()[0]
    cohort = tmp_path / "cohort.h5ad"
    evaluated_cohort(np.random.default_rng(5)).write_h5ad(cohort)
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(cohort), "--run", name, "-o", str(out)])
    assert result.exit_code == 0, result.output
    md = (out / "report.md").read_text()
    assert f"packaged model `{name}`" in md
    metrics = md.split("## Training metrics")[1].split("##")[0]
    assert "has no metrics.json" in metrics and f"nanog1 models show {name}" in metrics
    argv = ["report", str(cohort), "--run", "no-such-model", "-o", str(tmp_path / "r")]
    missing = CliRunner().invoke(app, argv)
    assert missing.exit_code != 0
    assert missing.stderr.startswith("error: no-such-model: no such model (packaged:")
    assert name in missing.stderr and not (tmp_path / "r").exists()
