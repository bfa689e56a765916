"""Dashboard page loads and interactions on a demo-sized and a TCGA-sized cohort, in headless Chromium.

Starts `nanog1 app` on a generated contract cohort (tests/app_fixtures.py: 40 SBS signatures,
type probabilities, 16-d embeddings) and a real MLflow store, drives Debian's chromium through
playwright and times, per page, from the click in the sidebar to the end of the script run with
every chart drawn: the first visit of a fresh server (cold: imports, reading the .h5ad, building
tables) and the median of later visits (warm). Interactions are timed the same way: picking a
sample, filtering the cohort by a type, switching the signature view, colouring the map by
predicted type, searching a sample by name, lassoing a region of the map, hiding a type from the
map's legend. Peer = the first visit; ratio = warm ÷ first.

Run: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/app_page_load.py [--samples 300,13000] [--map-only]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from app_browser import MAP, draw_lasso  # noqa: E402
from app_fixtures import MANY_SBS, make_cohort, make_mlflow_store, write_cohort  # noqa: E402

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
#: sidebar label -> page title
PAGES = {"Home": "NanoG1 dashboard", "Cohort": "Cohort", "Sample": "Sample", "Embeddings": "Embeddings",
         "Signatures": "Signatures", "Runs": "Training runs"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"server at {url} not healthy after {timeout} s")


def drawn(page, title: str | None = None) -> None:
    """Block until the page's title is up, the script run ended and every Vega chart has its marks."""
    page.wait_for_timeout(30)  # let the rerun request leave before polling for idle
    if title:
        page.get_by_role("heading", name=title, exact=True).first.wait_for()
    page.wait_for_selector(IDLE)
    charts = page.get_by_test_id("stVegaLiteChart")
    for i in range(charts.count()):
        charts.nth(i).locator(":is(svg.marks, canvas.marks)").wait_for(state="attached")
    maps = page.locator(MAP)
    for i in range(maps.count()):  # Plotly draws its axes once the WebGL points are in
        maps.nth(i).locator("g.xaxislayer-above").first.wait_for(state="attached")
    page.wait_for_selector(IDLE)


def timed(action, page, title: str | None = None) -> float:
    start = time.perf_counter()
    action()
    drawn(page, title)
    return time.perf_counter() - start


def visit(page, label: str) -> float:
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=label, exact=True)
    return timed(link.click, page, PAGES[label])


def choose(page, label: str, option: str):
    def act() -> None:
        box = page.get_by_test_id("stSelectbox").filter(has_text=label).first
        box.locator("input").click()
        box.locator("input").fill(option)
        page.get_by_role("option", name=option, exact=True).click()
    return act


def search(page, name: str):
    """Type a full sample name in the page's search box and press Enter."""
    def act() -> None:
        field = page.get_by_role("textbox", name="Search samples")
        field.fill(name)
        field.press("Enter")
    return act


def lasso(page, right: float):
    """Take the map's lasso tool and circle the samples left of `right` (a fraction of the width)."""
    def act() -> None:
        heading = page.get_by_role("heading", name=re.compile(r"samples selected$"))
        before = heading.inner_text() if heading.count() else ""
        draw_lasso(page, page.locator(MAP).first, 0.0, right)
        deadline = time.monotonic() + 60
        while (not heading.count() or heading.inner_text() == before) and time.monotonic() < deadline:
            page.wait_for_timeout(20)  # until the new selection's list is up
    return act


def hide_type(page, name: str):
    """Click a type's legend entry on the map until Plotly has hidden (or shown again) its points."""
    def act() -> None:
        plot = page.locator(MAP).first
        hidden = plot.evaluate("g => g._fullData.filter(t => t.visible === 'legendonly').length")
        plot.locator("g.legend g.traces", has_text=name).locator("rect.legendtoggle").click()
        page.wait_for_function("n => document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot')"
                               "._fullData.filter(t => t.visible === 'legendonly').length !== n", arg=hidden)
    return act


MAP_ROWS = ("Embeddings: colour by prediction", "Embeddings: lasso a region",
            "Embeddings: legend click hides a type", "Embeddings: search a sample (ringed)")


def interactions(page, samples: list[str], repeats: int) -> dict[str, list[float]]:
    """Times of the clicks researchers make most, each `repeats` times on warm pages."""
    out: dict[str, list[float]] = {
        "Sample: pick another sample": [], "Sample: search a name (Enter)": [], "Cohort: filter one type": [],
        "Signatures: stacked bars": []}
    visit(page, "Sample")
    for k in range(repeats):
        out["Sample: pick another sample"].append(timed(choose(page, "Sample", samples[k + 3]), page))
    for k in range(repeats):  # after the picks: a search narrows the picker to its matches
        name = samples[len(samples) // 2 + k]
        out["Sample: search a name (Enter)"].append(timed(search(page, name), page, name))
    visit(page, "Cohort")
    for k in range(repeats):
        def filter_type(k: int = k) -> None:
            page.get_by_test_id("stMultiSelect").first.locator("input").click()
            name = ("Lung-SCC", "Liver-HCC", "Skin-Melanoma")[k % 3]
            page.get_by_role("option", name=name, exact=True).click()
            page.keyboard.press("Escape")
        out["Cohort: filter one type"].append(timed(filter_type, page))
    visit(page, "Signatures")
    for view in (["stacked bars", "heatmap"] * repeats)[: 2 * repeats]:
        elapsed = timed(lambda view=view: page.get_by_text(view, exact=True).click(), page)
        if view == "stacked bars":
            out["Signatures: stacked bars"].append(elapsed)
    return {**out, **map_interactions(page, samples, repeats)}


def map_interactions(page, samples: list[str], repeats: int) -> dict[str, list[float]]:
    """Times of the Embeddings map's interactions (colour, lasso, legend, search), `repeats` times each."""
    out: dict[str, list[float]] = {row: [] for row in MAP_ROWS}
    visit(page, "Embeddings")
    for _ in range(repeats):
        elapsed = timed(choose(page, "Colour by", "predicted_type"), page)
        out["Embeddings: colour by prediction"].append(elapsed)
        timed(choose(page, "Colour by", "cancer_type"), page)
    for k in range(repeats):
        out["Embeddings: lasso a region"].append(timed(lasso(page, 0.3 + 0.1 * k), page))
        out["Embeddings: legend click hides a type"].append(timed(hide_type(page, "Lung-SCC"), page))
        timed(hide_type(page, "Lung-SCC"), page)  # and back
    for k in range(repeats):
        name = samples[100 + k]
        out["Embeddings: search a sample (ringed)"].append(timed(search(page, name), page))
    return out


def measure(n_samples: int, repeats: int, tmp: Path,
            map_only: bool = False) -> tuple[list[tuple], dict[str, list[float]]]:
    from playwright.sync_api import sync_playwright

    adata = make_cohort(n_samples, seed=0, signatures={"SBS96": MANY_SBS, "DBS78": ["DBS1", "DBS2"]})
    cohort = write_cohort(adata, tmp / f"cohort_{n_samples}.h5ad")
    store = make_mlflow_store(tmp / f"store_{n_samples}", epochs=20)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [str(Path(sys.executable).parent / "nanog1"), "app", "--cohort", str(cohort), "--port", str(port),
           "--mlflow", store, "--headless"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_healthy(url)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(300_000)
            page.goto(url)
            drawn(page, PAGES["Home"])
            pages = [] if map_only else list(PAGES)
            first = {label: visit(page, label) for label in pages}
            warm: dict[str, list[float]] = {label: [] for label in pages}
            for _ in range(repeats):
                for label in pages:
                    warm[label].append(visit(page, label))
            acts = (map_interactions if map_only else interactions)(page, list(adata.obs_names), repeats)
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    rows = [(label, first[label], sorted(warm[label])[repeats // 2]) for label in pages]
    return rows, acts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default="300,13000", help="cohort sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--map-only", action="store_true",
                        help="time only the Embeddings map's interactions (no page visits, no other clicks)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nanog1-bench-app-") as tmp:
        for n in (int(v) for v in args.samples.split(",")):
            rows, acts = measure(n, args.repeats, Path(tmp), args.map_only)
            load = os.getloadavg()
            print(f"\n{n:,} samples · {platform.node()} · {os.cpu_count()} cores · load {load[0]:.2f} "
                  f"{load[1]:.2f} {load[2]:.2f} · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
            if rows:
                print(f"| page ({n:,} samples) | first visit (s) | warm, median (s) | warm ÷ first |")
                print("| --- | --- | --- | --- |")
                for label, first, warm in rows:
                    print(f"| {label} | {first:.2f} | {warm:.2f} | {warm / first:.2f} |")
            print(f"| interaction ({n:,} samples) | median (s) | max (s) | |")
            print("| --- | --- | --- | --- |")
            for label, times in acts.items():
                print(f"| {label} | {sorted(times)[len(times) // 2]:.2f} | {max(times):.2f} | |")


if __name__ == "__main__":
    main()
