"""Dashboard data layer: cohort tables, projections, MLflow views, charts, launch command, model status."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from app_fixtures import make_cohort, shared_store, write_cohort
from typer.testing import CliRunner
from umap_warm_up import two_clusters

from nanog1.cli import app as cli
from nanog1.dashboard import charts, cohort_tables, embedding_map, fit_view, prediction_view, runs
from nanog1.dashboard.config import (
    ENV_COHORT,
    ENV_TRACKING,
    app_dir,
    default_config,
    discovered_cohorts,
    sqlite_path,
)
from nanog1.dashboard.launch import launch_warnings, resolve_tracking_uri, streamlit_command, streamlit_env
from nanog1.dashboard.model_status import load_model, model_status
from nanog1.dashboard.projection import ProjectionConfig, project
from nanog1.genomics.channels import CHANNEL_SETS, SBS6, all_channels, channel_color, channel_group


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(60, seed=3)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return shared_store(tmp_path_factory.getbasetemp())


def test_default_config_reads_environment(tmp_path):
    cfg = default_config({ENV_COHORT: str(tmp_path / "c.h5ad"), ENV_TRACKING: "sqlite:///x.db"})
    assert cfg.cohort == tmp_path / "c.h5ad" and cfg.tracking_uri == "sqlite:///x.db"
    demo = default_config({})
    assert demo.cohort.parts[-3:] == ("results", "demo", "cohort.h5ad")
    assert sqlite_path(demo.tracking_uri).name == "mlflow.db"
    assert sqlite_path("http://localhost:5000") is None
    assert (app_dir() / "Home.py").is_file()


def test_discovered_cohorts_lists_results_folders(tmp_path):
    assert discovered_cohorts(tmp_path) == []
    for name in ("demo/cohort.h5ad", "pcawg/cohort.h5ad", "pcawg/notes.txt", "deep/a/b.h5ad"):
        (tmp_path / "results" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "results" / name).touch()
    found = discovered_cohorts(tmp_path)
    assert found == [str(tmp_path / "results" / n) for n in ("demo/cohort.h5ad", "pcawg/cohort.h5ad")]


def test_read_cohort_round_trip_and_errors(cohort, tmp_path):
    path = write_cohort(cohort, tmp_path / "c.h5ad")
    back = cohort_tables.read_cohort_for_display(path)
    np.testing.assert_array_equal(back.X, cohort.X)
    with pytest.raises(cohort_tables.CohortError, match="not found"):
        cohort_tables.read_cohort_for_display(tmp_path / "absent.h5ad")
    junk = tmp_path / "junk.h5ad"
    junk.write_bytes(os.urandom(2048))
    with pytest.raises(cohort_tables.CohortError, match="junk.h5ad"):
        cohort_tables.read_cohort_for_display(junk)
    shuffled = cohort[:, np.r_[1, 0, 2:cohort.n_vars]].copy()
    with pytest.raises(cohort_tables.CohortError, match="COSMIC order"):
        cohort_tables.read_cohort_for_display(write_cohort(shuffled, tmp_path / "shuffled.h5ad"))


def test_burden_table_matches_column_sums(cohort):
    sets = np.array([s for s, _ in all_channels()])
    stripped = cohort.copy()
    stripped.obs = stripped.obs.drop(columns=[f"burden_{s}" for s in CHANNEL_SETS])
    for adata in (cohort, stripped):
        table = cohort_tables.burden_table(adata)
        for name in CHANNEL_SETS:
            expected = np.asarray(adata.X)[:, sets == name].sum(axis=1)
            np.testing.assert_array_equal(table[f"burden_{name}"].to_numpy(), expected)
    assert table.loc[cohort.obs_names[1], "cancer_type"] == "unknown"
    counts = cohort_tables.type_counts(table)
    assert counts["samples"].sum() == cohort.n_obs and counts["samples"].is_monotonic_decreasing


def test_burden_boxes_match_reference():
    rng = np.random.default_rng(5)
    n = 300
    table = pd.DataFrame({"sample": [f"s{i}" for i in range(n)], "cancer_type": rng.choice(["a", "b"], n),
                          "burden_SBS96": rng.lognormal(5, 1.5, n).astype(int)})
    table.loc[:9, "burden_SBS96"] = 0
    table.loc[10, "burden_SBS96"] = 10**7  # a certain outlier
    boxes, outliers = cohort_tables.burden_boxes(table, "SBS96")
    assert int(boxes["n"].sum()) == int((table["burden_SBS96"] > 0).sum())
    for box in boxes.to_dict("records"):
        kept = table[(table.cancer_type == box["cancer_type"]) & (table.burden_SBS96 > 0)]
        values = sorted(np.log10(kept["burden_SBS96"].to_numpy(dtype=float)))
        q1, med, q3 = (np.quantile(values, q) for q in (0.25, 0.5, 0.75))
        lo, hi = q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)
        got = np.log10([box["q1"], box["median"], box["q3"], box["low"], box["high"]])
        want = [q1, med, q3, min(v for v in values if v >= lo), max(v for v in values if v <= hi)]
        assert got == pytest.approx(want)
        flagged = outliers.loc[outliers.cancer_type == box["cancer_type"], "burden"].to_numpy(dtype=float)
        assert sorted(np.log10(flagged)) == pytest.approx([v for v in values if v < lo or v > hi])
    assert "s10" in set(outliers["sample"])


def test_sample_spectrum_order_and_fractions(cohort):
    sample = cohort.obs_names[5]
    for name, labels in CHANNEL_SETS.items():
        spec = cohort_tables.sample_spectrum(cohort, sample, name)
        assert list(spec["channel"]) == list(labels)
        row = np.asarray(cohort[sample, cohort.var["channel_set"] == name].X).ravel()
        np.testing.assert_allclose(spec["count"], row)
        np.testing.assert_allclose(spec["fraction"].sum(), 1.0)


def test_sets_present_follows_provenance(cohort):
    sbs_only = make_cohort(20, seed=1, sets=("SBS96",))
    assert cohort_tables.sets_present(sbs_only) == ["SBS96", "SBS6"]
    del sbs_only.uns["nanog1"]
    assert cohort_tables.sets_present(sbs_only) == ["SBS96", "SBS6"]
    assert cohort_tables.sets_present(cohort) == list(CHANNEL_SETS)


def test_exposure_by_type_matches_loop(rng=np.random.default_rng(7)):
    expo = pd.DataFrame(rng.exponential(size=(40, 5)), columns=[f"S{i}" for i in range(5)],
                        index=[f"s{i}" for i in range(40)])
    expo.iloc[3] = 0.0
    types = pd.Series(rng.choice(["a", "b", "c"], size=40), index=expo.index)
    for relative in (False, True):
        long = cohort_tables.exposure_by_type(expo, types, relative)
        for t in "abc":
            for sig in expo.columns:
                vals = []
                for s in expo.index[types == t]:
                    row = expo.loc[s]
                    vals.append(row[sig] / row.sum() if relative and row.sum() > 0 else
                                (0.0 if relative else row[sig]))
                got = long[(long.cancer_type == t) & (long.signature == sig)]["value"].item()
                assert got == pytest.approx(np.mean(vals))


def test_probabilities_sorted(cohort):
    proba = cohort_tables.probabilities(cohort, cohort.obs_names[2])
    assert proba["probability"].is_monotonic_decreasing
    assert proba["probability"].sum() == pytest.approx(1.0)


def test_pca_projection_matches_svd():
    x = np.random.default_rng(0).normal(size=(50, 8)) * np.arange(1, 9)
    xy = project(x, ProjectionConfig("PCA"))
    centred = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    ref = centred @ vt[:2].T
    for k in range(2):  # components are defined up to sign
        assert min(np.abs(xy[:, k] - ref[:, k]).max(), np.abs(xy[:, k] + ref[:, k]).max()) < 1e-3
    with pytest.raises(ValueError, match="unknown projection"):
        project(x, ProjectionConfig("tSNE"))


@pytest.mark.slow  # umap-learn's kernels: compiled beside the suite (umap_kernels), else a minute here
def test_umap_projection_separates_clusters(umap_kernels):
    x = two_clusters()
    xy = project(x, ProjectionConfig("UMAP", n_neighbors=10))
    assert xy.shape == (60, 2) and np.isfinite(xy).all()
    a, b = xy[:30].mean(axis=0), xy[30:].mean(axis=0)
    spread = max(xy[:30].std(axis=0).max(), xy[30:].std(axis=0).max())
    assert np.linalg.norm(a - b) > 3 * spread


@pytest.mark.slow
def test_umap_kernels_come_from_numba_disk_cache(umap_kernels):
    """umap-learn's parallel kernels (not marked `cache=True` there) are kept on disk too: a new process (a
    dashboard server, this test after the background compile) loads them instead of compiling them again."""
    from umap.umap_ import compute_membership_strengths, fast_knn_indices, smooth_knn_dist

    project(two_clusters(), ProjectionConfig("UMAP", n_neighbors=10))
    for kernel in (fast_knn_indices, smooth_knn_dist, compute_membership_strengths):
        assert sum(kernel.stats.cache_hits.values()) >= 1, kernel.py_func.__name__


def test_missing_store_is_reported_not_created(tmp_path):
    db = tmp_path / "nothing" / "mlflow.db"
    with pytest.raises(runs.StoreError, match="not found"):
        runs.open_store(f"sqlite:///{db}")
    assert not db.exists()


def test_file_and_http_stores_fail_clearly_and_create_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    with pytest.raises(runs.StoreError, match="not found"):
        runs.open_store(f"file:{tmp_path / 'none'}")
    assert not (tmp_path / "none").exists()
    (tmp_path / "mlruns").mkdir()
    with pytest.raises(runs.StoreError, match="filesystem store.*migrate-filestore"):
        runs.open_store(f"file:{tmp_path / 'mlruns'}")
    assert not any((tmp_path / "mlruns").iterdir())
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(runs.StoreError, match="unreachable"):
        runs.open_store(f"http://127.0.0.1:{port}")


def test_reconstruction_cosine_and_flags(rng=np.random.default_rng(3)):
    channels = [f"c{i}" for i in range(10)]
    reference = pd.DataFrame(rng.dirichlet(np.ones(10), size=3).T, index=channels, columns=["S1", "S2", "S3"])
    exposures = pd.Series([300.0, 0.0, 100.0], index=["S1", "S2", "S3"])
    counts = pd.Series(reference.to_numpy() @ exposures.to_numpy(), index=channels)
    counts.iloc[0] += 40.0
    frame = fit_view.reconstruction(counts, exposures, reference)
    expected = 300 * reference["S1"] + 100 * reference["S3"]
    np.testing.assert_allclose(frame["reconstruction"], expected.to_numpy())
    np.testing.assert_allclose(frame["residual"], [40.0] + [0.0] * 9, atol=1e-9)
    a, b = counts.to_numpy(), expected.to_numpy()
    assert fit_view.cosine(a, b) == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    assert fit_view.cosine(np.zeros(3), np.ones(3)) == 0.0
    with pytest.raises(KeyError, match="S9"):
        fit_view.reconstruction(counts, pd.Series([1.0], index=["S9"]), reference)
    assert fit_view.fit_flags(500, 0.97) == []
    low, poor = fit_view.fit_flags(12, 0.5)
    assert "low burden: 12" in low and "cosine 0.500" in poor


def test_spectrum_chart_draws_class_bands_and_short_labels():
    spectrum = pd.DataFrame({"channel": list(CHANNEL_SETS["SBS96"]), "count": 1.0, "fraction": 1 / 96})
    spec = charts.spectrum_chart(spectrum, "SBS96").to_dict()
    band_text = [layer for layer in spec["layer"] if layer["mark"]["type"] == "text"][0]
    labels = spec["datasets"][band_text["data"]["name"]]
    assert [r["label"] for r in labels] == list(SBS6)
    assert charts.band_labels("ID83")["1:Del:C"] == "1bp Del C"
    assert charts.band_labels("ID83")["5:Del:M"] == "MH 5+"


def test_spectrum_spec_from_a_template_equals_the_chart_built_anew():
    import json

    def resolved(spec: dict) -> str:  # dataset names are content hashes: compare the rows they name
        text = json.dumps({k: v for k, v in spec.items() if k != "datasets"}, sort_keys=True)
        for name, rows in spec["datasets"].items():
            text = text.replace(json.dumps(name), json.dumps(rows, sort_keys=True))
        return text

    rng = np.random.default_rng(3)
    for channel_set in ("SBS96", "ID83"):
        counts = rng.integers(0, 20, len(CHANNEL_SETS[channel_set])).astype(float)
        spectrum = pd.DataFrame({"channel": list(CHANNEL_SETS[channel_set]), "count": counts,
                                 "fraction": counts / counts.sum()})
        layouts = ({"value": "count", "title": "a · 12"}, {"value": "fraction", "bands": False, "height": 90})
        for layout in layouts:
            built = charts.spectrum_chart(spectrum, channel_set, **layout).to_dict()
            assert resolved(charts.spectrum_spec(spectrum, channel_set, **layout)) == resolved(built)
        other = charts.spectrum_spec(spectrum.assign(count=counts + 1), channel_set, title="b")
        assert resolved(other) != resolved(charts.spectrum_spec(spectrum, channel_set, title="b"))


def test_embedding_chart_rings_the_found_sample():
    points = pd.DataFrame({"sample": [f"s{i}" for i in range(6)], "x": np.arange(6.0), "y": np.arange(6.0),
                           "cancer_type": ["A", "B", "uncertain"] * 2})
    spec = charts.embedding_chart(points, "cancer_type", False, highlight="s4").to_dict()
    ring = spec["datasets"][spec["layer"][1]["data"]["name"]]
    assert [r["sample"] for r in ring] == ["s4"]
    assert {p["name"] for p in spec["params"]} == {"pick", "brush", "zoom", "types"}


def test_map_draws_one_trace_per_type_greys_uncertain_and_rings_the_found_sample():
    points = pd.DataFrame({"sample": [f"s{i}" for i in range(6)], "x": np.arange(6.0), "y": np.arange(6.0),
                           "cancer_type": ["A", "B", "uncertain"] * 2})
    fig = embedding_map.map_figure(points, "cancer_type", False, highlight="s4")
    types, ring = fig.data[:3], fig.data[3]
    assert [t.name for t in types] == ["A (2)", "B (2)", "uncertain (2)"]
    assert all(t.type == "scatter" for t in types)  # a small cohort in SVG
    assert types[2].marker.color == charts.UNCERTAIN_GREY and types[0].marker.color != charts.UNCERTAIN_GREY
    assert [c[0] for c in types[1].customdata] == ["s1", "s4"]
    assert list(ring.text) == ["s4"] and ring.name == "found: s4"
    assert fig.layout.dragmode == "pan"
    quantitative = embedding_map.map_figure(points.assign(v=np.arange(6.0)), "v", True)
    assert len(quantitative.data) == 1 and list(quantitative.data[0].marker.color) == list(range(6))
    many = pd.DataFrame({"sample": [f"s{i}" for i in range(embedding_map.WEBGL_FROM)], "x": 0.0, "y": 0.0,
                         "cancer_type": "A"})
    assert embedding_map.map_figure(many, "cancer_type", False).data[0].type == "scattergl"


def test_map_draws_a_kept_selection_selected():
    points = pd.DataFrame({"sample": [f"s{i}" for i in range(6)], "x": np.arange(6.0), "y": np.arange(6.0),
                           "cancer_type": ["A", "B", "uncertain"] * 2})
    fig = embedding_map.map_figure(points, "cancer_type", False, highlight="s0", selected=("s4", "s1", "s3"))
    assert [list(t.selectedpoints) for t in fig.data[:3]] == [[1], [0, 1], []]  # s3; s1, s4; none
    assert fig.data[3].selectedpoints is None  # the ring
    assert all(t.selectedpoints is None for t in embedding_map.map_figure(points, "cancer_type", False).data)
    (one,) = embedding_map.map_figure(points.assign(v=np.arange(6.0)), "v", True, selected=("s5", "s2")).data
    assert list(one.selectedpoints) == [2, 5]


def test_carried_selection_survives_a_new_map_until_replaced_or_cleared():
    memory: dict = {}
    pca, coloured = ("cohort", "PCA", 15, "cancer_type", None), ("cohort", "PCA", 15, "predicted_type", None)
    assert embedding_map.carried_selection(memory, pca, []) == ([], ())
    assert embedding_map.carried_selection(memory, pca, ["b", "a"]) == (["b", "a"], ())  # a lasso
    # the colour changes: the old chart's selection is kept, in its order, and drawn on the new map
    assert embedding_map.carried_selection(memory, coloured, ["b", "a"]) == (["b", "a"], ("b", "a"))
    assert embedding_map.carried_selection(memory, coloured, []) == (["b", "a"], ("b", "a"))  # other reruns
    # a lasso on the new map lists its samples; the kept ones stay in the figure (same chart, same id)
    assert embedding_map.carried_selection(memory, coloured, ["c"]) == (["c"], ("b", "a"))
    assert embedding_map.carried_selection(memory, coloured, []) == ([], ())  # a deselect clears both
    assert embedding_map.carried_selection(memory, pca, []) == ([], ())
    embedding_map.carried_selection(memory, pca, ["d"])
    other = ("another cohort", "PCA", 15, "cancer_type", None)
    assert embedding_map.carried_selection(memory, other, ["d"]) == ([], ())  # names of another cohort


def test_selection_reads_sample_names_once_in_order():
    points = [{"customdata": ["s3", "A"]}, {"customdata": ["s1", "B"]}, {"customdata": ["s3"]}, {"x": 1}]
    assert embedding_map.selected_samples({"points": points}) == ["s3", "s1"]
    assert embedding_map.selected_samples(None) == []


def test_sample_matches_scale_to_a_tcga_sized_cohort():
    names = pd.Index([f"SA{i:05d}" for i in range(13_000)])
    shown, total = cohort_tables.sample_matches(names, "")
    assert (len(shown), total) == (cohort_tables.PICKER_LIMIT, 13_000)
    shown, total = cohort_tables.sample_matches(names, "1234")
    assert shown == ["SA01234", "SA11234"] + [f"SA1234{d}" for d in range(10)] and total == 12
    assert cohort_tables.sample_matches(names, "sa0123 ")[0] == [f"SA0123{d}" for d in range(10)]  # any case
    assert cohort_tables.sample_matches(pd.Index(["x1", "ax", "x"]), "x") == (["x", "x1", "ax"], 3)
    assert cohort_tables.sample_matches(names, "nope") == ([], 0)


def test_prediction_explained_against_the_abstention_rule(tmp_path):
    import json

    proba = pd.DataFrame({"cancer_type": ["Lung-SCC", "Breast"], "probability": [0.42, 0.3]})
    low = pd.Series({"predicted_type": "uncertain", "predicted_type_raw": "Lung-SCC",
                     "type_confidence": 0.42})
    why = prediction_view.explain(low, proba, 0.6)
    assert (why.raw_top1, why.ood) == ("Lung-SCC", False) and "below the threshold" in why.sentence()
    far = prediction_view.explain(low.copy().replace({0.42: 0.8}), proba, 0.6)
    assert far.ood and "out-of-distribution" in far.sentence()
    sure = pd.Series({"predicted_type": "Breast", "type_confidence": 0.9})
    assert prediction_view.explain(sure, proba, 0.6).sentence() == (
        "Predicted **Breast** with calibrated confidence 0.90 (abstention threshold 0.60).")
    assert prediction_view.explain(pd.Series({"cancer_type": "x"}), None, None) is None
    (tmp_path / "calibration.json").write_text(json.dumps({"abstention": {"confidence_threshold": 0.55}}))
    assert prediction_view.abstention_threshold({"run_dir": str(tmp_path)}) == 0.55
    assert prediction_view.abstention_threshold({"metrics": {"abstain_threshold": 0.7}}) == 0.7
    assert prediction_view.abstention_threshold(None) is None


def test_uncertain_is_grey_and_many_types_stay_distinct():
    domain, colours = charts.category_colours(["b", "uncertain", "a", "unknown"])
    assert domain == ["a", "b", "uncertain", "unknown"]
    assert colours[2:] == [charts.UNCERTAIN_GREY] * 2 and charts.UNCERTAIN_GREY not in colours[:2]
    domain, colours = charts.category_colours([f"T{i}" for i in range(33)])  # TCGA's 33 types
    assert len(set(colours)) == 33


def test_signature_colours_distinct_and_ordered():
    colours = charts.distinct_colors(90)
    assert len(set(colours)) == 90 and all(len(c) == 7 and c[0] == "#" for c in colours)
    assert charts.signature_order(["SBS10a", "SBS2", "SBS1", "SBS7b", "SBS7a", "DBS2"]) == [
        "DBS2", "SBS1", "SBS2", "SBS7a", "SBS7b", "SBS10a"]


def test_runs_views_on_real_store(store, tmp_path):
    client = runs.open_store(store)
    exps = runs.experiments(client)
    exp_id = exps.loc[exps["name"] == "nanog1-demo", "experiment_id"].item()
    table = runs.runs_table(client, exp_id)
    assert sorted(table["run"]) == ["mixer-0", "mixer-1"]
    assert runs.metric_names(table) == ["train_loss", "val_accuracy"]
    ids = dict(zip(table["run"], table["run_id"], strict=True))
    hist = runs.metric_history(client, {ids["mixer-1"]: "mixer-1"}, "train_loss")
    assert list(hist["step"]) == [0, 1, 2, 3]
    np.testing.assert_allclose(hist["value"], [2.0 / (e + 1) + 0.1 for e in range(4)])
    side = runs.compare_runs(table, [ids["mixer-0"], ids["mixer-1"]])
    assert bool(side.loc["params.mixer", "differs"]) and side.shape[1] == 3
    images = runs.image_artifacts(client, ids["mixer-0"])
    assert images == ["figures/confusion_matrix_0.png"]
    local = runs.fetch_artifact(store, ids["mixer-0"], images[0], tmp_path)
    assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spectrum_chart_uses_cosmic_order_and_colours(cohort):
    sbs_blocks = [f"{a}[{sub}]{b}" for sub in SBS6 for a in "ACGT" for b in "ACGT"]
    for name, labels in CHANNEL_SETS.items():
        spec = cohort_tables.sample_spectrum(cohort, cohort.obs_names[4], name)
        chart = charts.spectrum_chart(spec, name).to_dict()
        enc = chart["layer"][0]["encoding"]  # the bars (then the class bands and their names)
        assert enc["x"]["sort"] == (sbs_blocks if name == "SBS96" else list(labels))
        domain, colours = enc["color"]["scale"]["domain"], enc["color"]["scale"]["range"]
        for label in labels:
            assert colours[domain.index(channel_group(label))] == channel_color(label)
        groups = [channel_group(c) for c in enc["x"]["sort"]]
        blocks = [g for i, g in enumerate(groups) if i == 0 or g != groups[i - 1]]
        assert len(blocks) == len(set(groups)), f"{name}: each colour group is one contiguous block"


def test_streamlit_command_binds_localhost(tmp_path, monkeypatch):
    cmd = streamlit_command(port=8600)
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8600"
    assert cmd[cmd.index("--client.toolbarMode") + 1] == "viewer"  # no Deploy button, no developer menu
    assert Path(cmd[cmd.index("run") + 1]) == app_dir() / "Home.py"
    monkeypatch.chdir(tmp_path)
    env = streamlit_env({"A": "1"}, cohort=Path("c.h5ad"), tracking_uri="sqlite:///m.db")
    db = f"sqlite:///{tmp_path / 'm.db'}"
    assert env == {"A": "1", ENV_COHORT: str(tmp_path / "c.h5ad"), ENV_TRACKING: db}
    assert streamlit_env({ENV_COHORT: "x"}) == {ENV_COHORT: "x"}


def test_relative_stores_resolved_and_missing_sources_warned(tmp_path):
    assert resolve_tracking_uri("sqlite:///r/m.db", tmp_path) == f"sqlite:///{tmp_path / 'r' / 'm.db'}"
    assert resolve_tracking_uri("sqlite:////abs/m.db", tmp_path) == "sqlite:////abs/m.db"
    assert resolve_tracking_uri("r/m.db", tmp_path) == f"sqlite:///{tmp_path / 'r' / 'm.db'}"
    assert resolve_tracking_uri("file:mlruns", tmp_path) == f"file:{tmp_path / 'mlruns'}"
    assert resolve_tracking_uri("http://host:5000", tmp_path) == "http://host:5000"
    (tmp_path / "m.db").write_bytes(b"")
    (tmp_path / "c.h5ad").write_bytes(b"")
    assert launch_warnings(tmp_path / "c.h5ad", f"sqlite:///{tmp_path / 'm.db'}") == []
    lines = launch_warnings(tmp_path / "none.h5ad", f"sqlite:///{tmp_path / 'none.db'}")
    assert len(lines) == 2 and "none.h5ad does not exist" in lines[0] and "none.db does not exist" in lines[1]


def test_cli_app_refuses_a_vcf_given_as_the_cohort(tmp_path: Path, monkeypatch):
    """`nanog1 app --cohort calls.vcf` is one error naming the file (exit 2), before Streamlit starts."""
    started = []
    monkeypatch.setattr(os, "execve", lambda *args: started.append(args))
    vcf = tmp_path / "calls.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    result = CliRunner().invoke(cli, ["app", "--cohort", str(vcf), "--headless"])
    assert result.exit_code == 2 and "calls.vcf: not an .h5ad cohort" in result.output and not started


def test_cli_app_options():
    result = CliRunner().invoke(cli, ["app", "--help"])
    assert result.exit_code == 0
    for option in ("--cohort", "--mlflow", "--port", "--host", "--headless"):
        assert option in result.output


def test_model_status_names_what_is_missing(tmp_path):
    absent = model_status("text LM", "nanog1.zoo.not_a_module", None)
    assert not absent.ready and "not_a_module" in absent.missing()
    no_ckpt = model_status("text LM", "json", None)
    assert no_ckpt.module_found and "no text LM checkpoint" in no_ckpt.missing()
    gone = model_status("text LM", "json", tmp_path / "missing.pt")
    assert "does not exist" in gone.missing()
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"x")
    ready = model_status("text LM", "json", ckpt)
    assert ready.ready and ready.missing() == ""
    with pytest.raises(AttributeError, match="load_checkpoint"):
        load_model(ready)
