"""The Predict page through Streamlit's AppTest: a packaged model and a trained MLflow run, files found on the
server, clear errors for bad paths, corrupt files and a model that does not fit the input, and nothing
written beside the inputs or into results/ (file list and modification times compared). How the calls were
read (skips by reason, the FILTER rule, the operating point and the sets not measured, chosen on the page)
and every warning `nanog1 predict` states (FILTER and protein-change mismatches, sets masked as unmeasured
or declared not measured, substitution-only inputs, abstentions) are shown as the product words them.
--adapt-priors is a checkbox for a model with a prior-adaptation record; its probabilities and estimated
type mix are the product's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from app_fixtures import (
    codon_model,
    make_cohort,
    mutect2_vcf,
    simulated_vcfs,
    snv_only_maf,
    stated_prediction,
    unannotated_gdc_maf,
    write_cohort,
)
from streamlit.testing.v1 import AppTest

from nanog1.dashboard import predict_sources
from nanog1.dashboard.config import ENV_COHORT, ENV_TRACKING, app_dir
from nanog1.encoder import predict_notes
from nanog1.encoder.predictor import prediction_table
from nanog1.errors import UserError
from nanog1.genomics.channels import NOT_MEASURED_HELP, SBS96, SNV_ONLY_MIN_SBS
from nanog1.genomics.skip_policy import MAX_SKIP_FLAG, MAX_SKIP_HELP, ON_ERROR_HELP
from nanog1.schema import DECLARED_WHY
from tests.predict_models import add_prior_record, write_model_folder
from tests.training_cohort import make_cohort as make_training_cohort

HOME = str(app_dir() / "Home.py")


@pytest.fixture(scope="module")
def server_files(tmp_path_factory) -> dict[str, Path]:
    """A lab's folder: results/demo/ with a cohort, simulated VCFs and their genome, a catalogue matrix."""
    root = tmp_path_factory.mktemp("predict_page")
    demo = root / "results" / "demo"
    write_cohort(make_cohort(20, seed=3), demo / "cohort.h5ad")
    files = simulated_vcfs(demo / "sim")
    Path(str(files.fasta) + ".fai").unlink()  # the page must index the FASTA elsewhere, not beside it
    counts = make_training_cohort(n_per_type=2, seed=8, tokens=False)
    matrix = pd.DataFrame(counts.X[:, :96].T, index=pd.Index(SBS96, name="MutationType"),
                          columns=list(counts.obs_names))
    matrix.to_csv(demo / "catalogue.tsv", sep="\t")
    return {"root": root, "cohort": demo / "cohort.h5ad", "vcf": sorted(files.vcfs)[0], "fasta": files.fasta,
            "matrix": demo / "catalogue.tsv"}


@pytest.fixture(scope="module")
def run_store(tmp_path_factory) -> dict[str, str]:
    """A real MLflow store with two trained runs: one reads every set, one reads DBS78 only."""
    import mlflow

    root = tmp_path_factory.mktemp("predict_store")
    cohort = make_training_cohort(n_per_type=10, seed=4, tokens=False)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("lab/cancer_type", artifact_location=(root / "mlartifacts").as_uri())
    ids = {}
    for name, reads in (("all-sets", None), ("dbs-only", ("DBS78",))):
        folder = write_model_folder(root / name, cohort, reads)
        run = client.create_run(exp, run_name=name)
        client.log_artifact(run.info.run_id, str(folder / "model.pt"), "model")
        client.log_artifact(run.info.run_id, str(folder / "calibration.json"))
        client.set_terminated(run.info.run_id)
        ids[name] = run.info.run_id
    unfinished = client.create_run(exp, run_name="still-training")  # no model yet: not offered
    ids["unfinished"] = unfinished.info.run_id
    return {"uri": uri, **ids}


@pytest.fixture
def page_env(server_files, run_store, monkeypatch):
    monkeypatch.setenv(ENV_COHORT, str(server_files["cohort"]))
    monkeypatch.setenv(ENV_TRACKING, run_store["uri"])
    monkeypatch.chdir(server_files["root"])
    return server_files


def _snapshot(root: Path) -> dict[str, int]:
    """Every file and folder under `root` with its modification time."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def _open() -> AppTest:
    return AppTest.from_file(HOME, default_timeout=180).switch_page("views/predict.py").run()


def _predict(at: AppTest, path: str, reference: str = "", model: str | None = None,
             rule: str | None = None, point: str | None = None) -> AppTest:
    if model is not None:
        box = at.selectbox(key="predict_model")
        box.select_index(next(i for i, o in enumerate(box.options) if o.startswith(model))).run()
    at.text_input(key="predict_input").set_value(path)
    at.text_input(key="predict_reference").set_value(reference).run()
    if rule is not None:
        at.radio(key="predict_filter").set_value(rule).run()
    if point is not None:
        at.radio(key="predict_point").set_value(point).run()
    if not at.error:
        at.button[0].click().run()
    return at


def _errors(at: AppTest) -> list[str]:
    assert not at.exception, [e.value for e in at.exception]
    return [e.value for e in at.error]


def test_packaged_model_on_a_vcf_found_on_the_server_writes_nothing(page_env, tmp_path):
    import shutil

    import nanog1.encoder

    before = _snapshot(page_env["root"])
    at = _open()
    found = at.selectbox(key="predict_found")
    assert str(page_env["vcf"]) in found.options and str(page_env["matrix"]) in found.options
    assert str(page_env["cohort"]) in found.options
    found.set_value(str(page_env["vcf"])).run()
    at.selectbox(key="predict_found_ref").set_value(str(page_env["fasta"])).run()
    assert at.text_input(key="predict_input").value == str(page_env["vcf"])
    assert at.selectbox(key="predict_model").value.packaged == "pcawg-catalogue"
    at.button[0].click().run()
    assert not _errors(at)
    assert _snapshot(page_env["root"]) == before, "the page wrote beside its inputs or into results/"
    fasta = Path(shutil.copy(page_env["fasta"], tmp_path))  # the API indexes and caches beside its FASTA
    expected = nanog1.encoder.read_inputs([page_env["vcf"]], fasta)
    nanog1.encoder.predict(expected, "pcawg-catalogue")
    call = str(expected.obs["predicted_type"].iloc[0])
    shown = [m.value for m in at.markdown] + [w.value for w in at.warning]
    assert any(f"**{call}**" in text for text in shown), shown
    table = at.dataframe[0].value
    assert list(table.index) == list(expected.obs_names)
    assert table["type_1"].iloc[0] == expected.obsm["proba_type"].iloc[0].idxmax()
    assert table["p_1"].iloc[0] >= table["p_2"].iloc[0] >= table["p_3"].iloc[0]
    exposures = [d.value for d in at.dataframe[1:]]
    assert any("interval" in frame.columns for frame in exposures), "exposures with bootstrap intervals"
    assert len(at.get("vega_lite_chart")) >= 4  # top-3 bars and SBS96, DBS78, ID83 spectra
    fits = [e.label for e in at.expander]
    assert any(label.startswith("SBS96 fit: sample vs reconstruction vs residual") for label in fits), fits


@pytest.mark.parametrize(("path", "says"), [
    ("/no/such/tumour.vcf", "no such file on the server"),
    ("results/demo", "a folder with a cohort .h5ad (cohort.h5ad) beside other inputs"),
    ("results", "a folder with no input file NanoG1 reads directly in it"),
    ("results/demo/sim/genome.fa", "not an input NanoG1 reads"),
])
def test_wrong_paths_are_named_before_predicting(page_env, path, says):
    at = _predict(_open(), path)
    errors = _errors(at)
    assert len(errors) == 1 and says in errors[0], errors
    assert not at.button, "no Predict button under an unusable path"


def test_corrupt_files_and_misplaced_reference_are_clear_errors(page_env, tmp_path):
    garbage = tmp_path / "broken.vcf"
    garbage.write_bytes(b"\x00\x01 not a VCF at all\n\xff\xfe")
    cohort = tmp_path / "broken.h5ad"
    cohort.write_bytes(b"not hdf5")
    for path, says in ((garbage, "broken.vcf"), (cohort, "broken.h5ad")):
        errors = _errors(_predict(_open(), str(path)))
        assert len(errors) == 1 and says in errors[0] and "Traceback" not in errors[0], errors
    errors = _errors(_predict(_open(), str(page_env["matrix"]), reference=str(page_env["fasta"])))
    assert len(errors) == 1 and "only with VCF/BCF" in errors[0], errors


def test_trained_runs_from_the_store_and_a_model_that_does_not_fit(page_env, run_store):
    at = _open()
    labels = at.selectbox(key="predict_model").options
    assert any(run_store["all-sets"][:8] in label for label in labels)
    assert any(run_store["dbs-only"][:8] in label for label in labels)
    assert not any(run_store["unfinished"][:8] in label for label in labels)
    at = _predict(at, str(page_env["matrix"]), model="lab/cancer_type / all-sets")
    assert not _errors(at)
    tumours = pd.read_csv(page_env["matrix"], sep="\t", nrows=0).columns[1:]
    assert list(at.dataframe[0].value.index) == list(tumours)
    assert at.selectbox(key="predict_sample").options  # several tumours: one is picked for the details
    at = _predict(_open(), str(page_env["matrix"]), model="lab/cancer_type / dbs-only")
    errors = _errors(at)
    assert len(errors) == 1 and "nothing in common" in errors[0] and "dbs-only" in errors[0], errors


def test_find_inputs_skips_caches_and_artifacts(tmp_path):
    for rel in ("a/x.vcf.gz", "a/y.maf", "b/m.tsv", "c.h5ad", "mlartifacts/1/model.tsv", "g.fa.nanog1/z.tsv",
                ".hidden/h.vcf", "a/notes.md", "a/genome.fa"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    found = [str(p.relative_to(tmp_path)) for p in predict_sources.find_inputs([tmp_path, tmp_path / "a"])]
    assert found == ["a/x.vcf.gz", "a/y.maf", "b/m.tsv", "c.h5ad"]
    assert [p.name for p in predict_sources.find_references([tmp_path])] == ["genome.fa"]
    assert len(predict_sources.find_inputs([tmp_path], limit=2)) == 2
    assert predict_sources.input_kind(Path("T.VCF.GZ")) == "VCF"
    assert predict_sources.input_kind(Path("genome.fa")) is None


def test_a_cohort_without_its_suffix_is_read_as_a_cohort(tmp_path):
    """A cohort written as `ingest -o cohort` (no .h5ad) is told by its content, as `nanog1 predict` reads
    it, alone or in a folder; a text file without a suffix stays refused."""
    write_cohort(make_cohort(5, seed=1), tmp_path / "c.h5ad")
    (tmp_path / "c.h5ad").rename(tmp_path / "cohort")
    assert predict_sources.input_kind(tmp_path / "cohort") == "cohort"
    assert predict_sources.check_inputs(str(tmp_path)) == [tmp_path / "cohort"]
    (tmp_path / "notes").write_text("x")
    with pytest.raises(UserError, match="not an input NanoG1 reads"):
        predict_sources.check_input(str(tmp_path / "notes"))


def test_recorded_abstention_reason_is_told():
    from nanog1.dashboard import prediction_view

    proba = pd.DataFrame({"cancer_type": ["Lung", "Skin"], "probability": [0.9, 0.1]})
    far = pd.Series({"predicted_type": "uncertain", "predicted_type_raw": "Lung", "type_confidence": 0.9,
                     "abstain_reason": "out of distribution (profile distance 9.1 > 4.0)"})
    why = prediction_view.explain(far, proba, 0.5)
    assert why.ood and "abstained on: out of distribution (profile distance 9.1 > 4.0)" in why.sentence()
    low = far.copy()
    low["abstain_reason"], low["type_confidence"] = "low confidence (0.30 < 0.50)", 0.3
    why = prediction_view.explain(low, proba, 0.5)
    assert not why.ood and "low confidence (0.30 < 0.50)" in why.sentence() and "**Lung**" in why.sentence()
    assert prediction_view.cohort_threshold({"nanog1_predict": {"confidence_threshold": 0.42}}) == 0.42
    assert prediction_view.cohort_threshold({}) is None
    uns = {"nanog1_predict": {"confidence_threshold": 0.42}}
    assert prediction_view.tumour_threshold(low, uns) == 0.42  # no per-tumour record: the cohort's
    raised = low.copy()
    raised["confidence_threshold"] = 0.85  # a tumour held to its measured pattern's threshold
    assert prediction_view.tumour_threshold(raised, uns) == 0.85
    raised["confidence_threshold"] = float("inf")  # measured sets never validated: no threshold to show
    assert prediction_view.tumour_threshold(raised, uns) is None


def test_linked_reference_reads_through_a_scratch_folder(tmp_path):
    from nanog1.genomics.fasta_index import linked_reference
    from nanog1.genomics.reference import Reference

    genome, scratch = tmp_path / "genome", tmp_path / "scratch"
    genome.mkdir()
    scratch.mkdir()
    fasta = genome / "g.fa"
    fasta.write_text(">1\n" + "ACGTTGCA" * 50 + "\n>2\n" + "GGCCAATT" * 20 + "\n")
    link = linked_reference(fasta, scratch)
    ref = Reference(link)  # no index beside the FASTA: built in the scratch folder
    assert ref.lengths == {"1": 400, "2": 160} and bytes(ref.raw("2")[:4]) == b"GGCC"
    assert sorted(p.name for p in genome.iterdir()) == ["g.fa"]
    assert (scratch / "g.fa.fai").is_file() and not (scratch / "g.fa.fai").is_symlink()
    import pysam

    pysam.faidx(str(fasta))  # a matching index beside it is used through a link, not rebuilt
    other = tmp_path / "other"
    other.mkdir()
    assert Reference(linked_reference(fasta, other)).lengths == {"1": 400, "2": 160}
    assert (other / "g.fa.fai").is_symlink()
    assert sorted(p.name for p in genome.iterdir()) == ["g.fa", "g.fa.fai"]


def test_a_profile_unlike_any_type_shows_the_abstention_and_its_reason(page_env, tmp_path):
    """Every mutation in one T>G channel: the packaged model abstains as out of distribution, and says so."""
    spike = pd.DataFrame({"spike": 0}, index=pd.Index(SBS96, name="MutationType"))
    spike.loc["T[T>G]T", "spike"] = 3000
    spike.to_csv(tmp_path / "spike.tsv", sep="\t")
    at = _predict(_open(), str(tmp_path / "spike.tsv"))
    assert not _errors(at)
    assert at.dataframe[0].value.loc["spike", "predicted_type"] == "uncertain"
    said = [w.value for w in at.warning]
    assert any(s.startswith("**Uncertain**") and "out of distribution" in s for s in said), said
    assert any(c.value.startswith("OOD:") for c in at.caption)


@pytest.fixture(scope="module")
def codon_run(run_store, tmp_path_factory) -> tuple[str, Path]:
    """A run of the page's store whose model's hotspot bag reads protein codons (trained here): its label in
    the chooser and its run folder."""
    import mlflow

    folder = codon_model(tmp_path_factory.mktemp("codon_run"))
    client = mlflow.MlflowClient(tracking_uri=run_store["uri"])
    run = client.create_run(client.get_experiment_by_name("lab/cancer_type").experiment_id, run_name="codon")
    client.log_artifact(run.info.run_id, str(folder / "model.pt"), "model")
    if (folder / "calibration.json").exists():
        client.log_artifact(run.info.run_id, str(folder / "calibration.json"))
    client.set_terminated(run.info.run_id)
    return "lab/cancer_type / codon", folder


def _shown_as_stated(at: AppTest, expected) -> list[str]:
    """The page shows the product's reading line, its skip table and one warning box per notice; returns
    the notices' kinds."""
    assert not _errors(at)
    texts = [m.value for m in at.markdown]
    assert f"**Input:** {predict_notes.reading_line(expected)}." in texts, texts
    skips = predict_notes.skip_table(expected)
    if len(skips):
        pd.testing.assert_frame_equal(at.table[0].value, skips, check_dtype=False)
    else:
        assert not at.table
    boxes = [w.value for w in at.warning]
    for notice in predict_notes.notices(expected):
        assert notice.text[0].upper() + notice.text[1:] in boxes, (notice, boxes)
    return [n.kind for n in predict_notes.notices(expected)]


def test_vcf_non_pass_calls_are_counted_by_reason_and_masked_sets_said(page_env, tmp_path):
    """A Mutect2 VCF with weak_evidence calls, no FASTA, the packaged whole-genome model (no FILTER rule of
    its own: PASS): the page counts the calls read, counted and skipped by reason, names the FILTER rule,
    and says SBS96 and ID83 are masked as unmeasured."""
    vcf, n_weak = mutect2_vcf(tmp_path / "mutect2")
    at = _predict(_open(), str(vcf))
    assert at.radio(key="predict_filter").value is None  # the model's own rule unless chosen
    expected = stated_prediction(vcf, "pcawg-catalogue")
    kinds = _shown_as_stated(at, expected)
    assert predict_notes.skip_table(expected).loc["non_pass", "calls"] == n_weak
    assert "masked_sets" in kinds and "filter" not in kinds
    assert "--filter PASS (the default; the model states no rule)" in predict_notes.reading_line(expected)


def test_maf_without_protein_change_and_a_chosen_filter_rule(page_env, tmp_path, codon_run):
    """An MC3-style MAF without HGVSp_Short, with non-PASS calls. tcga-exome with PASS chosen on the page:
    the non-PASS calls are skipped and counted, and the FILTER mismatch is said. A model with codon hotspots
    on the same MAF (its rule, all): nothing skipped, and the protein-change mismatch is said."""
    import streamlit as st

    maf, n_non_pass = unannotated_gdc_maf(tmp_path / "mc3.maf")
    at = _predict(_open(), str(maf), model="tcga-exome", rule="PASS")
    expected = stated_prediction(maf, "tcga-exome", "PASS")
    kinds = _shown_as_stated(at, expected)
    assert "filter" in kinds and predict_notes.skip_table(expected).loc["non_pass", "calls"] == n_non_pass
    assert f"{n_non_pass} non-PASS calls dropped" in expected.uns["nanog1_predict"]["filter_mismatch"]
    st.cache_data.clear()  # the store's runs are listed once per 30 s: see the run trained for this test
    label, folder = codon_run
    at = _predict(_open(), str(maf), model=label)
    expected = stated_prediction(maf, folder)
    kinds = _shown_as_stated(at, expected)
    assert "protein_change" in kinds and "filter" not in kinds and not at.table
    record = expected.uns["nanog1_predict"]
    assert record["codon_hotspots"] > 0 and record["tumours_without_protein_change"] == expected.n_obs


def _abstained(at: AppTest) -> int:
    assert not _errors(at)
    return int(at.dataframe[0].value["abstain"].sum())


def test_operating_point_chosen_on_the_page_is_the_products(page_env):
    """pcawg-catalogue offers in-study and new-study: on the catalogue matrix the page's abstentions under
    new-study are the product's under new-study, more than under in-study, and the threshold used is said.
    tcga-exome stores no new-study point: no chooser, and the in-study threshold is used."""
    matrix = page_env["matrix"]
    expected = {p: stated_prediction(matrix, "pcawg-catalogue", point=p) for p in ("in-study", "new-study")}
    counts = {p: int((a.obs["predicted_type"].astype(str) == "uncertain").sum()) for p, a in expected.items()}
    assert counts["new-study"] > counts["in-study"], counts  # the input was chosen for a difference
    at = _open()
    at = _predict(at, str(matrix))
    points = at.radio(key="predict_point")
    assert points.value == "in-study" and len(points.options) == 2  # the default: as `nanog1 predict`
    assert _abstained(at) == counts["in-study"]
    at = _predict(at, str(matrix), point="new-study")
    assert _abstained(at) == counts["new-study"]
    line = predict_notes.operating_point_line(expected["new-study"])
    assert "new-study: confidence threshold 0.859" in line
    assert f"**Abstention:** {line}." in [m.value for m in at.markdown]
    labels = [str(o) for o in at.radio(key="predict_point").options]
    stricter = [o for o in labels if o.startswith("Tumour from a new study/cohort: stricter")]
    assert len(stricter) == 1 and "threshold 0.859" in stricter[0], labels
    at = _predict(_open(), str(matrix), model="tcga-exome")
    assert "predict_point" not in [r.key for r in at.radio]


def test_sets_declared_not_measured_on_the_page_are_the_products(page_env, tmp_path):
    """An SNV-only MAF of one tumour with many substitutions: read as it is, the page states the product's
    note (read as zero indels; rerun with --not-measured indels). With 'indels' chosen in the page's
    control (`nanog1 predict --not-measured`'s help), the page's probabilities are those of the product
    with --not-measured indels, the reason for the masked sets is said and the note is gone. Declaring
    every kind of call unmeasured is an error, with no Predict button."""
    maf = snv_only_maf(tmp_path / "snv_only.maf", SNV_ONLY_MIN_SBS + 50)
    at = _predict(_open(), str(maf))
    box = at.multiselect(key="predict_not_measured")
    assert box.value == [] and box.help == NOT_MEASURED_HELP + "."
    assert [str(o) for o in box.options] == ["substitutions (SBS96+SBS6)", "doublets (DBS78)",
                                             "indels (ID83+ID12)"]
    plain = stated_prediction(maf, "pcawg-catalogue")
    assert "snv_only" in _shown_as_stated(at, plain)
    box.set_value(["indels"]).run()
    at.button[0].click().run()
    declared = stated_prediction(maf, "pcawg-catalogue", not_measured="indels")
    kinds = _shown_as_stated(at, declared)
    assert "snv_only" not in kinds and "masked_sets" in kinds
    assert any(DECLARED_WHY in w.value for w in at.warning), [w.value for w in at.warning]
    table = at.dataframe[0].value
    want = prediction_table(declared)
    assert table["type_1"].tolist() == want["type_1"].tolist()
    np.testing.assert_allclose(table[["p_1", "p_2", "p_3"]].to_numpy(float),
                               want[["p_1", "p_2", "p_3"]].to_numpy(float), atol=1e-6)
    before = plain.obsm["proba_type"].to_numpy()
    assert np.abs(declared.obsm["proba_type"].to_numpy() - before).max() > 1e-3  # the choice changes it
    at.multiselect(key="predict_not_measured").set_value(["indels", "substitutions", "doublets"]).run()
    errors = _errors(at)
    assert len(errors) == 1 and "declares every channel set unmeasured" in errors[0], errors
    assert not at.button


@pytest.fixture(scope="module")
def corrupt_folders(tmp_path_factory) -> dict[str, Path]:
    """Two batch folders (tests.test_predict_on_error.corrupt_batch): 'two_bad' holds Mutect2 VCFs of P1-T
    and P2-T, a .vcf.gz cut short and a binary .vcf; 'one_bad' the two good VCFs and the cut .vcf.gz."""
    import shutil

    from tests.test_predict_on_error import corrupt_batch

    two_bad = corrupt_batch(tmp_path_factory.mktemp("two_bad"))
    one_bad = tmp_path_factory.mktemp("one_bad")
    for name in ("P1.vcf", "P2.vcf", "P3.vcf.gz"):
        shutil.copy(two_bad / name, one_bad / name)
    return {"two_bad": two_bad, "one_bad": one_bad}


def _cli_default(option: str):
    """The default of `nanog1 predict`'s option (its parameter name), as the command line declares it."""
    import typer.main

    from nanog1.cli import app

    params = typer.main.get_command(app).commands["predict"].params
    return next(p.default for p in params if p.name == option)


def test_bad_input_controls_have_the_clis_defaults_and_help(page_env):
    """The page's --on-error and --max-skip-fraction: the command line's defaults and the same help text."""
    at = _open()
    at.text_input(key="predict_input").set_value(str(page_env["vcf"])).run()
    on_error, limit = at.radio(key="predict_on_error"), at.number_input(key="predict_max_skip")
    assert on_error.value == _cli_default("on_error") == "stop"
    assert len(on_error.options) == 2 and on_error.help == ON_ERROR_HELP + "."
    assert limit.value == pytest.approx(_cli_default("max_skip_fraction"))
    assert limit.help == MAX_SKIP_HELP + "."
    assert predict_sources.SKIP_LIMIT_CONTROL in limit.label


def test_under_skip_a_batch_folder_types_the_good_tumours_and_names_the_unreadable_files(page_env,
                                                                                          corrupt_folders):
    """A folder with two good VCFs, a .vcf.gz cut short and a binary .vcf, with skip chosen: P1-T and P2-T
    are typed, the skips are counted by reason and the unreadable files named, as predictions.json has
    them (calls.skips, calls.unreadable_files)."""
    import nanog1.encoder

    folder = corrupt_folders["two_bad"]
    at = _open()
    at.text_input(key="predict_input").set_value(str(folder)).run()
    at.radio(key="predict_on_error").set_value("skip").run()
    at.button[0].click().run()
    assert not _errors(at)
    assert list(at.dataframe[0].value.index) == ["P1-T", "P2-T"]
    read = nanog1.encoder.read_inputs(sorted(folder.glob("*.vcf*")), on_error="skip")
    calls = predict_notes.call_counts(read)
    assert calls["skips"] == {"unreadable_file": 2}
    assert at.table[0].value.loc["unreadable_file", "calls"] == 2
    boxes = [w.value for w in at.warning]
    named = [b for b in boxes if "could not be read" in b]
    assert len(named) == 1 and all(f"`{p}`" in named[0] for p in calls["unreadable_files"]), boxes
    assert "P3.vcf.gz" in named[0] and "scan.vcf" in named[0]


def test_under_stop_a_batch_folder_with_a_corrupt_file_is_a_clear_error_naming_it(page_env, corrupt_folders):
    """The same kind of folder under stop (the default): one error naming the corrupt file, no traceback,
    no tumour typed."""
    at = _predict(_open(), str(corrupt_folders["one_bad"]))
    assert at.radio(key="predict_on_error").value == "stop"
    errors = _errors(at)
    assert len(errors) == 1 and "P3.vcf.gz" in errors[0] and "Traceback" not in errors[0], errors
    assert not at.dataframe


def test_too_many_calls_lost_names_the_pages_control_not_a_flag(page_env, tmp_path):
    """A VCF whose REF disagrees with the FASTA on 10 of 40 calls: the page's error advises raising its own
    control (no --max-skip-fraction there); with the control at 0.3 the tumour is typed, the 10 counted."""
    from tests.test_ingest_failures import ref_mismatch_vcf

    vcf, fasta = ref_mismatch_vcf(tmp_path)
    at = _predict(_open(), str(vcf), reference=str(fasta))
    errors = _errors(at)
    assert len(errors) == 1 and "10 of 40 calls lost" in errors[0], errors
    assert predict_sources.SKIP_LIMIT_NAME in errors[0] and MAX_SKIP_FLAG not in errors[0], errors
    at.number_input(key="predict_max_skip").set_value(0.3).run()
    at.button[0].click().run()
    assert not _errors(at)
    assert list(at.dataframe[0].value.index) == ["P1-T"]
    assert at.table[0].value.loc["ref_mismatch", "calls"] == 10


def test_a_maf_takes_the_reference_fasta_as_the_cli_does(server_files):
    """QA: the page refused a FASTA beside a MAF ('read only with VCF/BCF inputs') although `nanog1 predict
    tumour.maf -r genome.fa` reads SBS96/ID83 from it (without, a MAF is typed on SBS6/DBS78/ID12 alone, at
    the lower accuracy of the reference-free pattern); catalogues and cohorts still refuse it."""
    fasta = str(server_files["fasta"])
    assert predict_sources.check_reference(fasta, "MAF") == server_files["fasta"]
    assert predict_sources.check_reference(fasta, {"VCF", "MAF"}) == server_files["fasta"]
    for kind in ("cohort", "catalogue matrix"):
        with pytest.raises(UserError, match=f"read only with VCF/BCF/MAF inputs, not a {kind}"):
            predict_sources.check_reference(fasta, kind)


def _catalogue(path: Path, n_per_type: int, seed: int) -> Path:
    """A SigProfiler-layout SBS96 matrix of 4 x `n_per_type` tumours."""
    counts = make_training_cohort(n_per_type=n_per_type, seed=seed, tokens=False)
    pd.DataFrame(counts.X[:, :96].T, index=pd.Index(SBS96, name="MutationType"),
                 columns=list(counts.obs_names)).to_csv(path, sep="\t")
    return path


@pytest.fixture(scope="module")
def record_run(run_store, tmp_path_factory) -> str:
    """A run of the page's store whose calibration.json holds a prior-adaptation record (as
    tests/test_prior_shift.py writes one): its label in the chooser."""

    import mlflow

    cohort = make_training_cohort(n_per_type=10, seed=4, tokens=False)
    folder = add_prior_record(write_model_folder(tmp_path_factory.mktemp("record_run"), cohort), cohort)
    client = mlflow.MlflowClient(tracking_uri=run_store["uri"])
    run = client.create_run(client.get_experiment_by_name("lab/cancer_type").experiment_id,
                            run_name="with-record")
    client.log_artifact(run.info.run_id, str(folder / "model.pt"), "model")
    client.log_artifact(run.info.run_id, str(folder / "calibration.json"))
    client.set_terminated(run.info.run_id)
    return "lab/cancer_type / with-record"


def _adapt_box(at: AppTest):
    """The page's --adapt-priors checkbox, None when the page does not offer it."""
    return next((c for c in at.checkbox if c.key == "predict_adapt_priors"), None)


def test_adapt_priors_is_offered_only_for_a_model_with_a_record(page_env, record_run):
    """tcga-exome and a run without a record: no checkbox; a run whose calibration.json holds a record and
    the packaged pcawg-catalogue: the checkbox, off by default (as the command line), with its help."""
    import streamlit as st
    import typer.main

    from nanog1.cli import app
    from nanog1.encoder.prior_shift import ADAPT_PRIORS_HELP

    st.cache_data.clear()  # the store's runs are listed once per 30 s: see the run made for this test
    matrix = str(page_env["matrix"])
    for model in ("tcga-exome", "lab/cancer_type / all-sets"):
        at = _predict(_open(), matrix, model=model)
        assert _adapt_box(at) is None, model
    for model in (record_run, "pcawg-catalogue"):
        at = _open()
        at.text_input(key="predict_input").set_value(matrix).run()
        box = at.selectbox(key="predict_model")
        box.select_index(next(i for i, o in enumerate(box.options) if o.startswith(model))).run()
        shown = _adapt_box(at)
        assert shown is not None and shown.value is False, model
        assert shown.label == "Adapt to this batch's type mix (as `nanog1 predict --adapt-priors`)"
        assert shown.help == f"{ADAPT_PRIORS_HELP}. This model: a batch of at least 10 tumours."
    params = typer.main.get_command(app).commands["predict"].params
    assert next(p.help for p in params if p.name == "adapt_priors").startswith(ADAPT_PRIORS_HELP)


def test_adapted_probabilities_and_mix_are_the_products_and_a_small_batch_is_refused(page_env, tmp_path):
    """pcawg-catalogue on 12 tumours with the checkbox on: the table's probabilities are those of
    predict(..., PredictOptions(adapt_priors=True)), not the plain ones, and the run's estimated type mix is
    shown in mix_line's words under the abstention line. On the 8 tumours of the server's matrix the
    product's message is shown (at least 10 tumours, got 8), not a traceback."""
    from nanog1.encoder.predictor import PredictOptions, predict, read_inputs
    from nanog1.encoder.prior_shift import mix_line

    matrix = _catalogue(tmp_path / "twelve.tsv", 3, 9)
    at = _predict(_open(), str(matrix))
    plain = at.dataframe[0].value
    _adapt_box(at).check().run()
    at.button[0].click().run()
    assert not _errors(at)
    expected = read_inputs([matrix])
    predict(expected, "pcawg-catalogue", PredictOptions(adapt_priors=True))
    want, table = prediction_table(expected), at.dataframe[0].value
    assert table["type_1"].tolist() == want["type_1"].tolist()
    np.testing.assert_allclose(table[["p_1", "p_2", "p_3"]].to_numpy(float),
                               want[["p_1", "p_2", "p_3"]].to_numpy(float), atol=1e-6)
    assert np.abs(table["p_1"].to_numpy(float) - plain["p_1"].to_numpy(float)).max() > 1e-3
    texts = [m.value for m in at.markdown]
    line = f"**Type mix:** {mix_line(expected.uns['nanog1_predict']['prior_adaptation'])}."
    assert line in texts and texts.index(line) == next(i for i, t in enumerate(texts)
                                                       if t.startswith("**Abstention:**")) + 1, texts
    assert "priors adapted to this batch of 12" in line
    at.text_input(key="predict_input").set_value(str(page_env["matrix"])).run()
    assert _adapt_box(at).value is True
    at.button[0].click().run()
    errors = _errors(at)
    assert len(errors) == 1 and "needs a batch of at least 10 tumours (got 8)" in errors[0], errors
    assert "Traceback" not in errors[0] and not at.dataframe
