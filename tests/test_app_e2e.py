"""End to end: `nanog1 app` serves the dashboard; headless Chromium (playwright) loads every page,
clicks a sample on the embedding map and finds it on the Sample page. Screenshots are kept as
artifacts under $NANOG1_TEST_ARTIFACTS (else the test's tmp folder).

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
from app_fixtures import make_cohort, shared_store, write_cohort

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
PAGES = {"": "NanoG1 dashboard", "cohort": "Cohort", "sample": "Sample", "embeddings": "Embeddings",
         "signatures": "Signatures", "runs": "Training runs", "models": "Text & vision models"}


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
    cohort = write_cohort(make_cohort(150, seed=21), folder / "cohort.h5ad")
    store = shared_store(tmp_path_factory.getbasetemp())
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
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
def test_every_page_loads_in_chromium(server, page, artifacts):
    for path, title in PAGES.items():
        page.goto(f"{server}/{path}")
        page.get_by_role("heading", name=title, exact=True).first.wait_for()
        _settle(page)
        assert not _problems(page), (path, _problems(page))
        if path in ("cohort", "embeddings", "signatures", "runs"):
            page.locator("[data-testid='stVegaLiteChart'] svg").first.wait_for()
        if path == "runs":
            page.locator("[data-testid='stImage'] img").nth(1).wait_for()  # both confusion matrices
        page.screenshot(path=str(artifacts / f"{path or 'home'}.png"), full_page=True)


@pytest.mark.slow
def test_click_on_embedding_opens_sample(server, page, artifacts):
    page.goto(f"{server}/embeddings")
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
