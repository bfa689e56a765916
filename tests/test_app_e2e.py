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
import urllib.request
from pathlib import Path

import pytest
from app_fixtures import MANY_SBS, make_cohort, make_mlflow_store, shared_store, simulated_vcfs, write_cohort

from nanog1.genomics.channels import SBS6

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
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
        if path in ("cohort", "embeddings", "signatures", "runs"):
            page.locator("[data-testid='stVegaLiteChart'] svg").first.wait_for()
        if path == "runs":
            page.locator("[data-testid='stImage'] img").nth(1).wait_for()  # both confusion matrices
        page.screenshot(path=str(artifacts / f"{path or 'home'}.png"), full_page=True)


@pytest.mark.slow
def test_click_on_embedding_opens_sample(url, page, artifacts):
    page.goto(f"{url}/embeddings")
    points = page.locator("[data-testid='stVegaLiteChart'] svg g.mark-symbol path[aria-label*='sample: ']")
    points.first.wait_for()
    _settle(page)
    point = points.nth(17)
    sample = re.search(r"sample: (\S+?);", point.get_attribute("aria-label")).group(1)
    point.hover()
    tooltip = page.locator("#vg-tooltip-element")
    tooltip.wait_for(state="visible")
    assert sample in tooltip.inner_text()
    point.click()
    page.wait_for_url(re.compile(rf"/sample\?sample={re.escape(sample)}$"))
    page.get_by_role("heading", name=sample, exact=True).wait_for()
    _settle(page)
    assert not _problems(page)
    assert page.locator("[data-testid='stMetric']").filter(has_text="SBS96 mutations").count() == 1
    page.locator("[data-testid='stVegaLiteChart'] svg").nth(2).wait_for()  # the three spectra
    page.screenshot(path=str(artifacts / "sample_from_embedding.png"), full_page=True)


def _choose(page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label` by typing it, as a user searching does."""
    box = page.get_by_test_id("stSelectbox").filter(has_text=label).first
    box.locator("input").click()
    box.locator("input").fill(option)
    page.get_by_role("option", name=option, exact=True).click()
    page.wait_for_timeout(100)
    _settle(page)


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
def test_embedding_map_browses_like_a_cell_browser(url, page, artifacts):
    page.goto(f"{url}/embeddings")
    page.get_by_role("heading", name="Embeddings", exact=True).first.wait_for()
    _settle(page)
    chart = page.get_by_test_id("stVegaLiteChart").first
    points = chart.locator("g.mark-symbol path[aria-label*='sample: ']")
    points.first.wait_for()
    # the legend: clicking a type keeps it in view and fades the others
    chart.locator("g.role-legend-label text", has_text="Lung-SCC").click()
    page.wait_for_timeout(300)
    faded = {p.get_attribute("aria-label").split("cancer_type: ")[1].split(";")[0]: p.get_attribute("opacity")
             for p in points.all()[:60]}
    assert faded["Lung-SCC"] == "0.85" and {v for k, v in faded.items() if k != "Lung-SCC"} == {"0.05"}
    chart.locator("g.role-legend-label text", has_text="Lung-SCC").click(modifiers=["Shift"])
    page.mouse.dblclick(*_centre(chart))  # back to every type
    # shift-drag over the left half of the plot: the samples there are listed
    box = chart.locator("g.mark-symbol").first.bounding_box()
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] - 2, steps=8)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_timeout(200)
    _settle(page)
    heading = page.get_by_role("heading", name=re.compile(r"^\d+ samples in the selected region$"))
    heading.wait_for()
    assert int(heading.inner_text().split()[0]) > 0
    # a searched sample is ringed and named on the map
    _choose(page, "Find a sample", "SA00009")
    chart.locator("g.mark-text text", has_text="SA00009").wait_for()
    page.screenshot(path=str(artifacts / "embeddings_browse.png"), full_page=True)


def _centre(locator) -> tuple[float, float]:
    box = locator.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


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
    _type_path(page, "Reference FASTA (optional, VCF/BCF only)", str(files.fasta))
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
