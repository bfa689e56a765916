"""End to end: `nanog1 app` serves the dashboard; headless Chromium (playwright) loads every page,
clicks a sample on the embedding map and finds it on the Sample page, and checks the answers a
researcher reads off the screen: the picked sample, one colour per signature, readable box plots,
run selections that survive switching, clear store errors. One server for the module. Screenshots
are kept as artifacts under $NANOG1_TEST_ARTIFACTS (else the test's tmp folder).

Needs Debian's chromium (`apt-get install -y chromium`): without it this test fails, it does not skip.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from app_browser import CHROMIUM, CHROMIUM_ARGS, MAP, MAP_POINTS, draw_lasso
from app_fixtures import (
    MANY_SBS,
    make_cohort,
    make_mlflow_store,
    mutect2_vcf,
    shared_store,
    simulated_vcfs,
    snv_only_maf,
    stated_prediction,
    tile_cohort,
    unannotated_gdc_maf,
    write_cohort,
)

from nanog1.encoder import predict_notes
from nanog1.genomics.channels import SBS6, SNV_ONLY_MIN_SBS
from nanog1.schema import DECLARED_WHY

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
PAGES = {"": "NanoG1 dashboard", "cohort": "Cohort", "sample": "Sample", "embeddings": "Embeddings",
         "signatures": "Signatures", "runs": "Training runs", "models": "Text & vision models",
         "predict": "Predict"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"`nanog1 app` exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"dashboard not healthy after {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = os.environ.get("NANOG1_TEST_ARTIFACTS")
    path = Path(folder) / "app" if folder else tmp_path_factory.mktemp("app_screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The real server, started through the CLI on a free localhost port; stopped afterwards."""
    folder = tmp_path_factory.mktemp("app_e2e")
    cohort = write_cohort(make_cohort(150, seed=21, signatures={"SBS96": MANY_SBS}), folder / "cohort.h5ad")
    store = make_mlflow_store(folder / "store", epochs=3, experiments=("nanog1-demo", "pcawg-typing"))
    port = _free_port()
    log = folder / "server.log"
    exe = Path(sys.executable).parent / "nanog1"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with log.open("w") as out:
        command = [str(exe), "app", "--cohort", str(cohort), "--mlflow", store, "--port", str(port),
                   "--host", "127.0.0.1", "--headless"]
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url, store
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def url(server) -> str:
    return server[0]


@pytest.fixture(scope="module")
def page(server):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (CI does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(90_000)
        yield tab
        browser.close()


def _settle(page) -> None:
    """Wait until the script run has finished and no spinner is left."""
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(500)
    page.wait_for_selector(IDLE)


def _problems(page) -> list[str]:
    boxes = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
    return boxes.all_inner_texts()


@pytest.mark.slow
def test_every_page_loads_in_chromium(url, page, artifacts):
    for path, title in PAGES.items():
        page.goto(f"{url}/{path}")
        page.get_by_role("heading", name=title, exact=True).first.wait_for()
        _settle(page)
        assert not _problems(page), (path, _problems(page))
        if path in ("cohort", "signatures", "runs"):
            page.locator("[data-testid='stVegaLiteChart'] svg").first.wait_for()
        if path == "embeddings":
            _map(page)
        if path == "runs":
            page.locator("[data-testid='stImage'] img").nth(1).wait_for()  # both confusion matrices
        page.screenshot(path=str(artifacts / f"{path or 'home'}.png"), full_page=True)


def _open_map(page, url: str):
    """Open the Embeddings page and return its Plotly map, once drawn."""
    page.goto(f"{url}/embeddings")
    plot = _map(page)
    _settle(page)
    return plot


def _map(page):
    """The Plotly map of the Embeddings page, once drawn."""
    plot = page.locator(MAP).first
    plot.locator("g.xaxislayer-above").first.wait_for(state="attached", timeout=30_000)
    plot.scroll_into_view_if_needed()
    return plot


def _lasso(page, plot, left: float, right: float) -> dict:
    """Lasso the samples between `left` and `right` (fractions of the map's width); the rectangle drawn."""
    rectangle = draw_lasso(page, plot, left, right)
    page.wait_for_timeout(300)
    _settle(page)
    return rectangle


def _listed_samples(page) -> list[str]:
    """The sample list the selection gave, as a user gets it: the downloaded CSV."""
    heading = page.get_by_role("heading", name=re.compile(r"^[\d,]+ samples selected$"))
    heading.wait_for(timeout=30_000)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the sample list (.csv)").click()
    names = Path(download.value.path()).read_text().splitlines()[1:]
    assert int(heading.inner_text().split()[0].replace(",", "")) == len(names)
    return [n.split(",")[0] for n in names]


def _inside(points: list, area: dict, margin: float) -> set[str]:
    """Samples drawn at least `margin` px inside a rectangle of page pixels."""
    return {s for s, _, x, y in points if area["x"] + margin < x < area["x"] + area["width"] - margin
            and area["y"] + margin < y < area["y"] + area["height"] - margin}


@pytest.mark.slow
def test_click_on_embedding_opens_sample(url, page, artifacts):
    plot = _open_map(page, url)
    sample, _, x, y = plot.evaluate(MAP_POINTS)[17]
    page.mouse.move(x, y)
    plot.locator(".hoverlayer .hovertext").filter(has_text=sample).wait_for()
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(rf"/sample\?sample={re.escape(sample)}$"))
    page.get_by_role("heading", name=sample, exact=True).wait_for()
    _settle(page)
    assert not _problems(page)
    assert page.locator("[data-testid='stMetric']").filter(has_text="SBS96 mutations").count() == 1
    page.locator("[data-testid='stVegaLiteChart'] svg").nth(2).wait_for()  # the three spectra
    page.screenshot(path=str(artifacts / "sample_from_embedding.png"), full_page=True)


@pytest.mark.slow
def test_lasso_on_the_map_lists_the_samples_inside(url, page, artifacts):
    plot = _open_map(page, url)
    points = plot.evaluate(MAP_POINTS)
    left = _lasso(page, plot, 0.0, 0.5)  # the left half of the map
    listed = set(_listed_samples(page))
    assert _inside(points, left, 3) <= listed <= _inside(points, left, -3), "lasso ≠ the samples inside it"
    assert 0 < len(listed) < len(points)
    page.screenshot(path=str(artifacts / "embeddings_lasso.png"), full_page=True)


@pytest.mark.slow
def test_lasso_on_a_webgl_map_lists_the_samples_inside(url, page, tmp_path_factory, artifacts):
    """From WEBGL_FROM points the map is WebGL, drawn at one canvas pixel per screen pixel (a lasso
    redraws it on every mouse move): the lasso still lists exactly the samples inside it."""
    from nanog1.dashboard.embedding_map import WEBGL_FROM

    cohort = write_cohort(make_cohort(WEBGL_FROM + 500, seed=7),
                          tmp_path_factory.mktemp("webgl_map") / "cohort.h5ad")
    page.goto(f"{url}/embeddings?cohort={urllib.parse.quote(str(cohort))}")
    plot = _map(page)
    _settle(page)
    assert set(plot.evaluate("g => g._fullData.map(t => t.type)")) == {"scattergl"}
    assert plot.evaluate("g => g._context.plotGlPixelRatio") == 1
    points = plot.evaluate(MAP_POINTS)
    assert len(points) == WEBGL_FROM + 500
    area = _lasso(page, plot, 0.0, 0.45)
    listed = set(_listed_samples(page))
    assert _inside(points, area, 3) <= listed <= _inside(points, area, -3), "lasso ≠ the samples inside it"
    assert 0.1 * len(points) < len(listed) < len(points)
    _choose(page, "Colour by", "predicted_type")  # a new WebGL chart draws the kept selection
    assert set(_listed_samples(page)) == listed and _drawn_selected(page) == listed
    page.screenshot(path=str(artifacts / "embeddings_lasso_webgl.png"), full_page=True)


@pytest.mark.slow
def test_legend_click_hides_a_type_and_search_rings_a_sample(url, page, artifacts):
    plot = _open_map(page, url)
    before = plot.evaluate(MAP_POINTS)
    plot.locator("g.legend g.traces", has_text="Lung-SCC").locator("rect.legendtoggle").click()
    page.wait_for_function(  # Plotly waits out a possible double-click before it hides the trace
        "() => document.querySelector('.js-plotly-plot')._fullData.some(t => t.visible === 'legendonly')")
    after = plot.evaluate(MAP_POINTS)
    lung = {s for s, name, _, _ in before if name.startswith("Lung-SCC")}
    assert lung and {s for s, *_ in after} == {s for s, *_ in before} - lung
    # a lasso over the whole map now lists every sample but the hidden type's
    whole = _lasso(page, plot, 0.0, 1.0)
    listed = set(_listed_samples(page))
    assert _inside(after, whole, 3) <= listed <= _inside(after, whole, -3) and not listed & lung
    assert len(listed) >= 0.9 * len(after)
    # a searched sample is ringed and named on the map
    _search_on_map(page, "SA00009")
    page.screenshot(path=str(artifacts / "embeddings_legend_search.png"), full_page=True)


def _search_on_map(page, name: str) -> None:
    """Search `name` in the Embeddings search box and wait for the map to ring and name it."""
    field = page.get_by_role("textbox", name="Search samples")
    field.fill(name)
    field.press("Enter")
    page.wait_for_timeout(100)
    _settle(page)
    _map(page).locator("g.textpoint text", has_text=name).wait_for()


def _choose(page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label` by typing it, as a user searching does."""
    box = page.get_by_test_id("stSelectbox").filter(has_text=label).first
    box.locator("input").click()
    box.locator("input").fill(option)
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_timeout(100)
    _settle(page)


def _drawn_selected(page) -> set[str]:
    """Samples the map draws selected (Plotly's selectedpoints of every trace shown)."""
    return set(_map(page).evaluate("g => g._fullData.filter(t => t.visible === true && t.customdata)"
                                   ".flatMap(t => (t.selectedpoints || []).map(i => t.customdata[i][0]))"))


@pytest.mark.slow
def test_lasso_survives_a_colour_change_and_a_search(url, page):
    plot = _open_map(page, url)
    _lasso(page, plot, 0.0, 0.5)
    listed = _listed_samples(page)
    assert listed and _drawn_selected(page) == set(listed)
    _choose(page, "Colour by", "predicted_type")  # a new figure: Streamlit draws a new chart
    assert _map(page).evaluate("g => g._fullLayout.legend.title.text").startswith("predicted_type:")
    assert _listed_samples(page) == listed and _drawn_selected(page) == set(listed)
    _search_on_map(page, "SA00009")
    assert _listed_samples(page) == listed and _drawn_selected(page) == set(listed)
    page.get_by_role("button", name="Clear the selection").click()
    page.wait_for_timeout(100)
    _settle(page)
    assert not page.get_by_role("heading", name=re.compile(r"samples selected$")).count()
    assert not _drawn_selected(page)
    # a lasso after a kept selection lists its own samples
    _lasso(page, _map(page), 0.0, 0.3)
    fewer = _listed_samples(page)
    assert fewer and set(fewer) < set(listed)


def _set_store(page, uri: str, readable: bool = True) -> None:
    field = page.get_by_role("textbox", name="MLflow tracking URI")
    field.fill(uri)
    field.press("Enter")
    page.wait_for_timeout(100)
    _settle(page)
    if readable:  # wait until the Runs page has run on the new store
        page.get_by_text(f"MLflow store: {uri}", exact=True).wait_for()


@pytest.mark.slow
def test_sample_picker_shows_every_choice(url, page):
    page.goto(f"{url}/sample?sample=SA00002")
    page.get_by_role("heading", name="SA00002", exact=True).wait_for()
    for sample in ("SA00003", "SA00004", "SA00005", "SA00006"):
        _choose(page, "Sample", sample)
        page.get_by_role("heading", name=sample, exact=True).wait_for(timeout=15_000)
        assert page.url.endswith(f"sample={sample}")
    texts = page.get_by_test_id("stVegaLiteChart").first.locator("text").all_text_contents()
    assert set(SBS6) <= set(texts) and {"ACA", "TTT"} <= set(texts), "SBS96 class bands and contexts"


def _bounds(locator) -> list[dict]:
    return [b for b in (e.bounding_box() for e in locator.all()) if b]


@pytest.mark.slow
def test_signature_bars_one_colour_each_and_full_legend(url, page, artifacts):
    page.goto(f"{url}/signatures")
    page.get_by_role("heading", name="Signatures", exact=True).first.wait_for()
    _settle(page)
    page.get_by_text("stacked bars", exact=True).click()
    _settle(page)
    chart = page.get_by_test_id("stVegaLiteChart").first
    bars = chart.locator("g.mark-rect path[aria-label*='signature: ']")
    bars.first.wait_for()
    colour_of: dict[str, set[str]] = {}
    for bar in bars.all():
        name = re.search(r"signature: (\S+?);", bar.get_attribute("aria-label")).group(1)
        colour_of.setdefault(name, set()).add(bar.get_attribute("fill"))
    assert set(colour_of) == set(MANY_SBS)
    assert all(len(c) == 1 for c in colour_of.values()), "a signature drawn in two colours"
    fills = [next(iter(c)) for c in colour_of.values()]
    assert len(set(fills)) == len(MANY_SBS), "two signatures share a colour"
    labels = chart.locator("g.role-legend-label text")
    assert sorted(labels.all_text_contents()) == sorted(MANY_SBS), "legend entries missing"
    box = chart.bounding_box()
    for label in _bounds(labels):  # every entry inside the visible chart, none cut off
        assert box["y"] <= label["y"] and label["y"] + label["height"] <= box["y"] + box["height"] + 1
    for bar in _bounds(bars):
        assert bar["height"] >= 10, "bars squashed"
    page.screenshot(path=str(artifacts / "signatures_stacked.png"), full_page=True)


@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 1920])
def test_burden_boxes_stay_apart_with_few_types(url, page, artifacts, width):
    page.set_viewport_size({"width": width, "height": 1000})
    try:
        page.goto(f"{url}/cohort")
        page.get_by_role("heading", name="Cohort", exact=True).first.wait_for()
        _settle(page)
        picker = page.get_by_test_id("stMultiSelect").first
        for n, cancer_type in enumerate(("Lung-SCC", "Liver-HCC", "Skin-Melanoma"), start=1):
            picker.locator("input").click()
            page.get_by_role("option", name=cancer_type, exact=True).click()
            page.keyboard.press("Escape")
            page.wait_for_timeout(100)
            _settle(page)
            sbs = page.get_by_test_id("stVegaLiteChart").nth(1)
            labels = _bounds(sbs.locator("g.role-axis-label text").filter(has_text=re.compile("-")))
            boxes = [b for b in _bounds(sbs.locator("g.mark-rect path")) if b["width"] > 3]  # not medians
            assert len(labels) == n and len(boxes) == n
            for group in (labels, boxes):
                group.sort(key=lambda b: b["y"])
                for upper, lower in zip(group, group[1:], strict=False):
                    assert upper["y"] + upper["height"] <= lower["y"], (width, n, "overlap")
            assert all(b["height"] >= 10 for b in boxes), (width, n, "boxes squashed")
        page.screenshot(path=str(artifacts / f"cohort_3types_{width}.png"), full_page=True)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def _chosen_runs(page) -> list[str]:
    picker = page.get_by_test_id("stMultiSelect").filter(has_text="Runs to compare").first
    return picker.locator(".react-aria-ComboBox [data-tag] span[title]").all_inner_texts()


@pytest.mark.slow
def test_runs_selection_survives_switching_experiment_and_store(server, url, page, tmp_path_factory):
    store = server[1]
    page.goto(f"{url}/runs")
    _settle(page)
    first = _chosen_runs(page)
    assert len(first) == 2 and all(r.startswith("pcawg-typing") for r in first), first
    _choose(page, "Experiment", "nanog1-demo (id 1)")
    second = _chosen_runs(page)
    assert len(second) == 2 and all(r.startswith("mixer-") for r in second), second
    _set_store(page, shared_store(tmp_path_factory.getbasetemp()))
    _settle(page)
    third = _chosen_runs(page)
    assert len(third) == 2 and not set(third) & set(first + second), third
    _set_store(page, store)
    _settle(page)


@pytest.mark.slow
def test_runs_store_errors_are_clear_and_quick(url, page, tmp_path):
    (tmp_path / "mlruns").mkdir()
    closed = f"http://127.0.0.1:{_free_port()}"
    page.goto(f"{url}/runs")
    _settle(page)
    for uri, says in ((f"file:{tmp_path / 'mlruns'}", "filesystem store"), (closed, "unreachable")):
        _set_store(page, uri, readable=False)
        error = page.get_by_test_id("stAlertContentError").filter(has_text=says)
        error.wait_for(timeout=30_000)  # MLflow's defaults kept an unreachable server spinning for minutes
        assert not page.get_by_test_id("stException").count(), uri


@pytest.mark.slow
def test_sample_search_at_tcga_size(url, page, tmp_path_factory, artifacts):
    cohort = write_cohort(tile_cohort(make_cohort(100, seed=5), 13_000),
                          tmp_path_factory.mktemp("tcga_sized") / "cohort.h5ad")
    page.goto(f"{url}/sample?cohort={urllib.parse.quote(str(cohort))}")
    page.get_by_role("heading", name="SA00000", exact=True).wait_for()
    _settle(page)
    field = page.get_by_role("textbox", name="Search samples")
    field.wait_for(timeout=30_000)
    field.fill("1234")
    field.press("Enter")
    page.wait_for_timeout(100)
    _settle(page)
    picker = page.get_by_test_id("stSelectbox").filter(has_text="Sample").first
    picker.locator("input").click()
    options = page.get_by_role("option").all_inner_texts()  # the matches, not 13,000 names
    assert options == ["SA00000", "SA01234", "SA11234"] + [f"SA1234{d}" for d in range(10)], options
    page.get_by_role("option", name="SA12345", exact=True).click()
    page.get_by_role("heading", name="SA12345", exact=True).wait_for(timeout=15_000)
    _settle(page)
    field.fill("SA07777")  # a full name typed in the search box opens that sample at once
    field.press("Enter")
    page.get_by_role("heading", name="SA07777", exact=True).wait_for(timeout=15_000)
    _settle(page)
    assert page.url.endswith("sample=SA07777") and not _problems(page)
    page.screenshot(path=str(artifacts / "sample_search_13000.png"), full_page=True)


def _listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def _type_path(page, label: str, path: str) -> None:
    field = page.get_by_role("textbox", name=label)
    field.fill(path)
    field.press("Enter")
    page.wait_for_timeout(100)
    _settle(page)


def _api_call(files, folder: Path) -> str:
    """The type `nanog1.encoder.predict` gives the first VCF (its FASTA copied: the API indexes beside it)."""
    import shutil

    import nanog1.encoder

    folder.mkdir()
    adata = nanog1.encoder.read_inputs([files.vcfs[0]], Path(shutil.copy(files.fasta, folder)))
    nanog1.encoder.predict(adata, "pcawg-catalogue")
    return str(adata.obs["predicted_type"].iloc[0])


@pytest.mark.slow
def test_predict_a_vcf_with_the_packaged_model(url, page, artifacts, tmp_path):
    files = simulated_vcfs(tmp_path / "sim")
    before = _listing(tmp_path / "sim")
    page.goto(f"{url}/predict")
    page.get_by_role("heading", name="Predict", exact=True).first.wait_for()
    _settle(page)
    model = page.get_by_test_id("stSelectbox").filter(has_text="Model").first
    assert "pcawg-catalogue (packaged)" in model.locator("input").input_value()
    _type_path(page, "Input file on the server", str(files.vcfs[0]))
    _type_path(page, "Reference FASTA (optional, VCF/BCF/MAF only)", str(files.fasta))
    page.get_by_role("button", name="Predict", exact=True).click()
    page.get_by_text(f"tumour(s) in {files.vcfs[0].name}, predicted by pcawg-catalogue").wait_for()
    _settle(page)
    assert not _problems(page)
    call = _api_call(files, tmp_path / "api")
    said = "Uncertain: the raw top-1" if call == "uncertain" else f"Predicted {call} with"
    page.get_by_text(re.compile("^" + re.escape(said))).first.wait_for(timeout=5_000)
    page.locator("[data-testid='stVegaLiteChart'] svg").nth(3).wait_for()  # top-3 bars and three spectra
    page.screenshot(path=str(artifacts / "predict_vcf.png"), full_page=True)
    assert _listing(tmp_path / "sim") == before, "the page wrote beside the VCF or its FASTA"


@pytest.mark.slow
def test_predict_names_a_wrong_path(url, page):
    page.goto(f"{url}/predict")
    page.get_by_role("heading", name="Predict", exact=True).first.wait_for()
    _settle(page)
    _type_path(page, "Input file on the server", "/no/such/tumour.vcf")
    error = page.get_by_test_id("stAlertContentError").filter(has_text="/no/such/tumour.vcf: no such file")
    error.wait_for()
    assert not page.get_by_test_id("stException").count()
    assert not page.get_by_role("button", name="Predict", exact=True).count()


def _predict_on_page(page, path: Path, model: str) -> None:
    page.get_by_role("button", name="Predict", exact=True).click()
    page.get_by_text(f"tumour(s) in {path.name}, predicted by {model}").wait_for()
    _settle(page)
    assert not _problems(page)


def _shown_as_stated(page, expected, reason: str, calls: int) -> None:
    """The skip table's `reason` row counts `calls` as the product's skip_table does, and every notice of
    the product (FILTER / protein-change mismatch, masked sets, abstentions) is in a warning box."""
    assert predict_notes.skip_table(expected).loc[reason, "calls"] == calls
    rows = [r.split("\t") for r in page.locator("[data-testid='stTable'] tbody tr").all_inner_texts()]
    assert [reason, f"{calls}"] in [[c.strip() for c in r[:2]] for r in rows], rows
    boxes = [" ".join(b.split()) for b in page.get_by_test_id("stAlertContentWarning").all_inner_texts()]
    for notice in predict_notes.notices(expected):
        said = " ".join((notice.text[0].upper() + notice.text[1:]).split())
        assert any(said in box for box in boxes), (said, boxes)
    page.get_by_text(f"Input: {predict_notes.reading_line(expected)}.", exact=True).wait_for(timeout=5_000)


@pytest.mark.slow
def test_predict_states_skips_filter_rule_and_mismatches(url, page, artifacts, tmp_path):
    """A Mutect2 VCF with weak_evidence calls (packaged whole-genome model, no FASTA: PASS calls, SBS96 and
    ID83 masked), then an MC3 MAF without HGVSp_Short for tcga-exome with PASS chosen on the page (its
    rule is all: FILTER mismatch): the skip table and warning boxes show what `nanog1 predict` states."""
    vcf, n_weak = mutect2_vcf(tmp_path / "mutect2")
    maf, n_non_pass = unannotated_gdc_maf(tmp_path / "mc3.maf")
    page.goto(f"{url}/predict")
    page.get_by_role("heading", name="Predict", exact=True).first.wait_for()
    _settle(page)
    _type_path(page, "Input file on the server", str(vcf))
    _predict_on_page(page, vcf, "pcawg-catalogue")
    expected = stated_prediction(vcf, "pcawg-catalogue")
    assert expected.uns["nanog1_predict"]["channel_sets_masked"] == ["SBS96", "ID83"]
    _shown_as_stated(page, expected, "non_pass", n_weak)
    page.screenshot(path=str(artifacts / "predict_mutect2_skips.png"), full_page=True)
    box = page.get_by_test_id("stSelectbox").filter(has_text="Model").first
    box.locator("input").click()
    box.locator("input").fill("tcga-exome")
    page.get_by_role("option").filter(has_text="tcga-exome").first.click()
    _settle(page)
    _type_path(page, "Input file on the server", str(maf))
    page.get_by_text("PASS only", exact=True).click()
    _settle(page)
    _predict_on_page(page, maf, "tcga-exome")
    expected = stated_prediction(maf, "tcga-exome", "PASS")
    assert expected.uns["nanog1_predict"]["filter_mismatch"].startswith("FILTER mismatch")
    _shown_as_stated(page, expected, "non_pass", n_non_pass)
    page.screenshot(path=str(artifacts / "predict_mc3_filter.png"), full_page=True)


def _warnings(page) -> list[str]:
    return [" ".join(b.split()) for b in page.get_by_test_id("stAlertContentWarning").all_inner_texts()]


def _shown_probabilities(page) -> dict[str, float]:
    """The top-3 bars of the Predict page's probability chart as the page draws them: type -> probability
    (read from the bars' accessible labels, 'probability: 0.98841476; cancer_type: CNS-PiloAstro; ...')."""
    bars = page.get_by_test_id("stVegaLiteChart").locator("g.mark-rect path[aria-label*='probability: ']")
    bars.first.wait_for()
    labels = [dict(f.split(": ", 1) for f in b.get_attribute("aria-label").split("; ")) for b in bars.all()]
    assert len(labels) == 3, labels
    return {f["cancer_type"]: float(f["probability"]) for f in labels}


def _top3(adata) -> dict[str, float]:
    """The 3 most probable types of the (one) tumour with their calibrated probabilities."""
    row = adata.obsm["proba_type"].iloc[0].astype(float).sort_values(ascending=False).head(3)
    return dict(zip(row.index, row.to_numpy(), strict=True))


def _stated_on_page(page, expected) -> None:
    """The reading line and every notice of the product (nanog1.encoder.predict_notes) are on the page, and
    the probability bars are the product's top 3."""
    page.get_by_text(f"Input: {predict_notes.reading_line(expected)}.", exact=True).wait_for(timeout=5_000)
    boxes = _warnings(page)
    for notice in predict_notes.notices(expected):
        said = " ".join((notice.text[0].upper() + notice.text[1:]).split())
        assert any(said in box for box in boxes), (said, boxes)
    shown, want = _shown_probabilities(page), _top3(expected)
    assert shown.keys() == want.keys(), (shown, want)
    np.testing.assert_allclose([shown[t] for t in want], list(want.values()), atol=1e-6)


@pytest.mark.slow
def test_predict_with_indels_declared_not_measured(url, page, artifacts, tmp_path):
    """An SNV-only MAF (nothing in it says indels were not called), packaged whole-genome model. Read as it
    is, the page says the tumour was read as zero indels and to declare them; with 'indels' chosen in the
    page's not-measured control (`nanog1 predict --not-measured indels`) and Predict pressed again, the page
    says ID83 and ID12 were masked as declared, the zero-indel note is gone, and the probability bars are
    those of `nanog1 predict --not-measured indels`, not those of the first run."""
    maf = snv_only_maf(tmp_path / "snv_only.maf", SNV_ONLY_MIN_SBS + 50)
    plain = stated_prediction(maf, "pcawg-catalogue")
    declared = stated_prediction(maf, "pcawg-catalogue", not_measured="indels")
    assert {n.kind for n in predict_notes.notices(plain)} >= {"snv_only"}
    assert {n.kind for n in predict_notes.notices(declared)} & {"snv_only", "masked_sets"} == {"masked_sets"}
    gap = max(abs(p - _top3(declared).get(t, 0.0)) for t, p in _top3(plain).items())
    assert gap > 5e-3, "the declaration must change the top 3 for this test to see it"

    page.goto(f"{url}/predict")
    page.get_by_role("heading", name="Predict", exact=True).first.wait_for()
    _settle(page)
    _type_path(page, "Input file on the server", str(maf))
    control = page.get_by_test_id("stMultiSelect").filter(has_text="Not measured by the caller").first
    assert control.locator("input").get_attribute("placeholder") == "none: every kind of call was called"
    _predict_on_page(page, maf, "pcawg-catalogue")
    _stated_on_page(page, plain)
    assert not any(DECLARED_WHY in box for box in _warnings(page))
    first = _shown_probabilities(page)
    page.screenshot(path=str(artifacts / "predict_snv_only.png"), full_page=True)

    control.locator("input").click()
    page.get_by_role("option", name="indels (ID83+ID12)", exact=True).click()
    page.keyboard.press("Escape")
    page.wait_for_timeout(100)
    _settle(page)
    assert not page.get_by_text(f"tumour(s) in {maf.name}, predicted by").count(), "stale result kept"
    _predict_on_page(page, maf, "pcawg-catalogue")
    _stated_on_page(page, declared)
    boxes = _warnings(page)
    assert any(DECLARED_WHY in box and "ID83" in box and "ID12" in box for box in boxes), boxes
    zero_indels = " ".join(predict_notes.snv_only_note(plain.uns["nanog1_predict"]).split())
    assert zero_indels and not any(zero_indels[:60] in box for box in boxes), boxes
    assert _shown_probabilities(page) != first
    page.screenshot(path=str(artifacts / "predict_indels_not_measured.png"), full_page=True)


@pytest.mark.slow
def test_predict_a_batch_folder_skipping_its_corrupt_files(url, page, artifacts, tmp_path):
    """A lab's folder of VCFs with a .vcf.gz cut short and a binary .vcf, typed on the page as one batch with
    'skip bad lines and files' chosen (`nanog1 predict folder/* --on-error skip`): the two good tumours are
    typed, and a warning box names the two files that could not be read."""
    from tests.test_predict_on_error import corrupt_batch

    folder = tmp_path / "batch"
    folder.mkdir()
    corrupt_batch(folder)
    page.goto(f"{url}/predict")
    page.get_by_role("heading", name="Predict", exact=True).first.wait_for()
    _settle(page)
    _type_path(page, "Input file on the server", str(folder))
    page.get_by_text("skip bad lines and files, and type the rest", exact=True).click()
    _settle(page)
    _predict_on_page(page, folder, "pcawg-catalogue")
    page.get_by_text(f"2 tumour(s) in {folder.name}, predicted by pcawg-catalogue").wait_for(timeout=5_000)
    unreadable = [box for box in _warnings(page) if "could not be read" in box]
    assert len(unreadable) == 1, _warnings(page)
    assert all(str(folder / name) in unreadable[0] for name in ("P3.vcf.gz", "scan.vcf")), unreadable
    page.screenshot(path=str(artifacts / "predict_batch_skip.png"), full_page=True)
