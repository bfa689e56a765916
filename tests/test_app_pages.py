"""Every dashboard page through Streamlit's AppTest, on fixture cohorts and a real MLflow store."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import anndata as ad
import pytest
from app_fixtures import make_cohort, shared_store, write_cohort
from streamlit.testing.v1 import AppTest

from nanog1.dashboard import cohort_tables
from nanog1.dashboard.config import ENV_COHORT, ENV_TRACKING, app_dir, sqlite_path

HOME = str(app_dir() / "Home.py")
PAGES = ("overview", "cohort", "sample", "embeddings", "signatures", "runs", "models", "predict")
N = 150


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, object]:
    base = tmp_path_factory.getbasetemp()
    folder = tmp_path_factory.mktemp("app_pages")
    full = make_cohort(N, seed=11)
    minimal = make_cohort(40, seed=12, sets=("SBS96",))
    for key in ("exposures_SBS96", "proba_type", "X_nanog1"):
        minimal.obsm.pop(key, None)
    minimal.obs = minimal.obs.drop(columns=["predicted_type"])
    return {
        "cohort": write_cohort(full, folder / "cohort.h5ad"),
        "minimal": write_cohort(minimal, folder / "minimal.h5ad"),
        "store": shared_store(base),
        "sample": str(full.obs_names[7]),
        "folder": folder,
    }


@pytest.fixture
def env(data, monkeypatch):
    monkeypatch.setenv(ENV_COHORT, str(data["cohort"]))
    monkeypatch.setenv(ENV_TRACKING, str(data["store"]))
    return data


def run_page(page: str, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(HOME, default_timeout=120)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    return at.switch_page(f"views/{page}.py").run()


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> list:
    return list(at.get("vega_lite_chart"))


@pytest.mark.parametrize("page", PAGES)
def test_page_renders(env, page):
    at = run_page(page)
    assert_clean(at)
    assert at.title, "every page has a title"
    assert [t.value for t in at.sidebar.text_input] == [str(env["cohort"]), str(env["store"])]


def test_overview_summarises_cohort(env):
    at = run_page("overview")
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Samples"] == f"{N:,}" and metrics["Cancer types"] == "6"
    assert any("SBS96, DBS78, ID83" in m.value for m in at.markdown)


def test_cohort_page_filters(env):
    at = run_page("cohort")
    assert_clean(at)
    present = cohort_tables.sets_present(ad.read_h5ad(env["cohort"]))
    assert len(charts(at)) == 1 + len(present)  # samples per type + one burden panel per channel set
    assert at.dataframe[0].value.shape[0] == N - 1  # the empty sample is hidden by default
    at.multiselect(key="cohort_types").select("Lung-SCC").run()
    shown = at.dataframe[0].value
    assert set(shown["cancer_type"]) == {"Lung-SCC"}
    assert {m.label: m.value for m in at.metric}["Samples shown"] == f"{len(shown):,}"


def test_sample_page_shows_requested_sample(env):
    sample = env["sample"]
    at = run_page("sample", {"sample": sample})
    assert_clean(at)
    assert at.selectbox[0].value == sample
    assert any(sample in m.value for m in at.markdown)
    specs = [c for c in charts(at) if "mutations" in c.proto.spec]
    assert len(specs) >= 3
    assert at.dataframe, "exposure table present"
    assert {m.label for m in at.metric} >= {"SBS96 mutations", "DBS78 mutations", "ID83 mutations"}
    fits = [e for e in at.expander if "sample vs reconstruction vs residual" in e.label]
    assert [e.label.split()[0] for e in fits] == ["SBS96", "DBS78"]  # the fitted sets
    assert all(re.search(r"cosine 0\.\d{3}$", e.label) for e in fits)
    # the fixture's exposures are random, not fitted: the page says so
    assert any("poorly fitted" in w.value for w in at.warning)


def test_sample_page_unknown_sample_warns(env):
    at = run_page("sample", {"sample": "NOT-A-SAMPLE"})
    assert not at.exception
    assert any("NOT-A-SAMPLE" in w.value for w in at.warning)


def plotly_spec(at: AppTest) -> dict:
    import json

    return json.loads(at.get("plotly_chart")[0].proto.spec)


def test_embeddings_open_sample_by_name(env):
    at = run_page("embeddings")
    assert_clean(at)
    spec = plotly_spec(at)
    # a demo-sized fixture is drawn in SVG (cheap lassos); WebGL from WEBGL_FROM points (test_app_data)
    assert {t["type"] for t in spec["data"]} == {"scatter"}
    assert spec["layout"]["dragmode"] == "pan"  # clicks pick a sample; the lasso is in the mode bar
    assert spec["layout"]["xaxis"]["title"]["text"].startswith("PC1 (")
    assert "of variance)" in spec["layout"]["yaxis"]["title"]["text"]
    target = env["sample"]
    at.selectbox(key="emb_find").set_value(target).run()
    assert_clean(at)
    assert f"found: {target}" in [t["name"] for t in plotly_spec(at)["data"]]  # ringed on the map
    at.button[0].click().run()
    assert_clean(at)
    assert at.title[0].value == "Sample"
    assert at.selectbox[0].value == target


def test_embeddings_colour_by_signature(env):
    at = run_page("embeddings")
    options = at.selectbox(key="emb_colour").options
    assert "SBS13 (SBS96)" in options and "predicted_type" in options
    at.selectbox(key="emb_colour").set_value("SBS13 (SBS96)").run()
    assert_clean(at)
    (trace,) = plotly_spec(at)["data"]
    assert trace["marker"]["colorbar"]["title"]["text"] == "SBS13 (SBS96)"


def test_sample_search_narrows_the_picker_and_picks_a_full_name(env):
    at = run_page("sample")
    names = list(ad.read_h5ad(env["cohort"], backed="r").obs_names)
    at.text_input(key="sample_pick_query").input("A0001").run()
    assert_clean(at)
    # the matches, after the sample still shown (a search alone never changes the page's sample)
    assert at.selectbox(key="sample_pick").options == [names[0]] + [n for n in names if "A0001" in n]
    at.text_input(key="sample_pick_query").input(names[42]).run()
    assert_clean(at)
    assert at.selectbox(key="sample_pick").value == names[42]
    assert any(names[42] in m.value for m in at.markdown)


def test_signatures_page(env):
    at = run_page("signatures")
    assert_clean(at)
    assert len(charts(at)) == 2  # exposures by type + reference signature
    at.radio(key="sig_view").set_value("stacked bars").run()
    assert_clean(at)
    assert '"normalize"' in charts(at)[0].proto.spec


def test_runs_page_shows_metrics_and_confusion_matrices(env):
    at = run_page("runs")
    assert_clean(at)
    # train_loss and val_accuracy over epochs, then a confusion matrix and a reliability diagram per run
    specs = [c.proto.spec for c in charts(at)]
    assert len(specs) == 6
    assert sum('"share of true type"' in s for s in specs) == 2
    assert sum('"mean confidence"' in s for s in specs) == 2
    best = next(d.value for d in at.dataframe if "best step" in d.value.columns)
    loss = best[(best["metric"] == "train_loss") & (best["run"] == "mixer-1")].iloc[0]
    assert loss["best"] == pytest.approx(2.0 / 4 + 0.1) and loss["best step"] == 3 and loss["steps"] == 4
    assert len(at.get("image")) == 2  # one confusion matrix per compared run
    assert any("params.mixer" in d.value.index for d in at.dataframe)  # side by side


def test_models_page_names_what_is_missing(env):
    at = run_page("models")
    assert_clean(at)
    assert len(at.info) == 2
    assert "nanog1.zoo.text" in at.info[0].value and "nanog1.zoo.vision" in at.info[1].value


def test_missing_and_corrupt_cohort_show_clear_errors(env, monkeypatch, tmp_path):
    junk = tmp_path / "junk.h5ad"
    junk.write_bytes(os.urandom(4096))
    for path in (tmp_path / "absent.h5ad", junk):
        monkeypatch.setenv(ENV_COHORT, str(path))
        for page in ("overview", "cohort", "sample", "embeddings", "signatures"):
            at = run_page(page)
            assert not at.exception, (page, [e.value for e in at.exception])
            assert at.error and str(path) in at.error[0].value, page


def test_missing_store_shows_error_and_creates_nothing(env, monkeypatch, tmp_path):
    db = tmp_path / "none" / "mlflow.db"
    monkeypatch.setenv(ENV_TRACKING, f"sqlite:///{db}")
    at = run_page("runs")
    assert not at.exception
    assert at.error and str(db) in at.error[0].value
    assert not db.exists() and not db.parent.exists()


def test_minimal_cohort_explains_what_is_absent(env, monkeypatch):
    monkeypatch.setenv(ENV_COHORT, str(env["minimal"]))
    infos = {}
    for page in ("cohort", "sample", "embeddings", "signatures"):
        at = run_page(page)
        assert_clean(at)
        infos[page] = " ".join(i.value for i in at.info) + " ".join(c.value for c in at.caption)
    assert "Not measured in this cohort: DBS78, ID83" in infos["cohort"]
    assert "X_nanog1" in infos["embeddings"]
    assert "exposures" in infos["signatures"]
    assert "proba_type" in infos["sample"] and "not measured" in infos["sample"]


def test_sidebar_chooser_switches_cohort(env):
    at = run_page("overview")
    at.sidebar.text_input(key="src_cohort").set_value(str(env["minimal"])).run()
    assert_clean(at)
    assert {m.label: m.value for m in at.metric}["Samples"] == "40"
    assert at.query_params["cohort"] == str(env["minimal"])  # a link or reload keeps it


def test_sources_from_the_url(env):
    at = run_page("overview", {"cohort": str(env["minimal"]), "store": str(env["store"])})
    assert_clean(at)
    assert {m.label: m.value for m in at.metric}["Samples"] == "40"
    assert at.sidebar.text_input(key="src_cohort").value == str(env["minimal"])


def test_home_shows_provenance_tables_and_newest_runs(env):
    at = run_page("overview")
    assert_clean(at)
    frames = [d.value for d in at.dataframe]
    provenance = next(f for f in frames if list(f.columns) == ["field", "value"])
    assert "skipped.filter" in set(provenance["field"])
    runs = next(f for f in frames if "experiment" in f.columns)
    assert set(runs["run"]) == {"mixer-0", "mixer-1"} and "val_accuracy" in runs.columns


def test_results_picker_fills_cohort_and_store(env, monkeypatch, tmp_path):
    import nanog1.dashboard.ui as ui

    folder = tmp_path / "results" / "pcawg"
    folder.mkdir(parents=True)
    cohort = folder / "cohort.h5ad"
    cohort.write_bytes(Path(env["minimal"]).read_bytes())
    (folder / "mlflow.db").write_bytes(sqlite_path(str(env["store"])).read_bytes())
    monkeypatch.setattr(ui, "discovered_cohorts", lambda: [str(cohort)])
    at = run_page("overview")
    at.sidebar.selectbox(key="src_found").set_value(str(cohort)).run()
    assert_clean(at)
    assert at.sidebar.text_input(key="src_cohort").value == str(cohort)
    assert at.sidebar.text_input(key="src_mlflow").value == f"sqlite:///{folder / 'mlflow.db'}"
    assert {m.label: m.value for m in at.metric}["Samples"] == "40"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pages_are_read_only(env):
    files = [Path(env["cohort"]), sqlite_path(str(env["store"]))]
    before = {f: (_digest(f), f.stat().st_mtime_ns) for f in files}
    listing = sorted(p.name for p in Path(env["folder"]).iterdir())
    for page in PAGES:
        assert_clean(run_page(page, {"sample": env["sample"]}))
    assert {f: (_digest(f), f.stat().st_mtime_ns) for f in files} == before
    assert sorted(p.name for p in Path(env["folder"]).iterdir()) == listing


def test_sample_page_says_which_calls_were_left_out_of_context(two_contig_genome, tmp_path, monkeypatch):
    """A tumour with 3 of its 303 substitutions on contigs the FASTA lacks (chrM, decoys: left out of an
    SBS96 that stays exact) is told so on the Sample page in the Predict page's words
    (predict_notes.left_out_phrase for that tumour); a tumour without such calls is told nothing."""
    from nanog1.dashboard import sample_panels
    from nanog1.encoder.predict_notes import left_out_phrase
    from nanog1.genomics.cohort import read_cohort
    from nanog1.genomics.ingest import ingest
    from tests.test_ingest_missing_contigs import FEW, mutect2_vcf, snvs, write_vcf

    fasta, seqs = two_contig_genome
    mutect2_vcf(tmp_path / "T.vcf", seqs, FEW)
    write_vcf(tmp_path / "U.vcf", snvs(seqs, "1", 20, start=5_000))
    ingest([tmp_path / "T.vcf", tmp_path / "U.vcf"], fasta, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    said = sample_panels.left_out_sentence(adata, "T")
    assert said == left_out_phrase(adata, "T") + "."
    assert said.startswith("3 call(s) on MT, GL000220.1, hs37d5 left out of SBS96 (0.99 % of its 303 "
                           "substitutions")
    assert sample_panels.left_out_sentence(adata, "U") == ""
    monkeypatch.setenv(ENV_COHORT, str(tmp_path / "c.h5ad"))
    monkeypatch.setenv(ENV_TRACKING, f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}")
    for sample, shown in (("T", [said]), ("U", [])):
        at = run_page("sample", {"sample": sample})
        assert_clean(at)
        assert [i.value for i in at.info if "left out of" in i.value] == shown, sample
