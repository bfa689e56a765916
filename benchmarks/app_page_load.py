"""Dashboard page-load times on a 3,000-sample cohort: first visit against later visits, side by side.

Starts `nanog1 app` on a free localhost port with a generated contract cohort (tests/app_fixtures.py),
drives headless Chromium (playwright) and times, per page, from navigation to the end of the script
run with every chart drawn. "reload" opens the URL afresh (new page load, new session); "in-app" clicks
the page in the sidebar as a researcher does. Run: `.venv/bin/python benchmarks/app_page_load.py`.
"""

from __future__ import annotations

import os
import platform
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

from app_fixtures import make_cohort, write_cohort  # noqa: E402

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
#: page url -> (sidebar label, number of charts it draws on the benchmark cohort)
PAGES = {"cohort": ("Cohort", 4), "sample": ("Sample", 4), "embeddings": ("Embeddings", 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"server at {url} not healthy after {timeout} s")


def drawn(page, charts: int) -> None:
    """Block until the script run ended and `charts` Vega charts are on screen."""
    page.wait_for_selector(IDLE)
    page.locator("[data-testid='stVegaLiteChart'] :is(svg.marks, canvas.marks)").nth(charts - 1).wait_for()
    page.wait_for_selector(IDLE)


def time_reload(page, url: str, charts: int) -> float:
    start = time.perf_counter()
    page.goto(url)
    drawn(page, charts)
    return time.perf_counter() - start


def time_in_app(page, label: str, charts: int) -> float:
    page.get_by_role("link", name=label, exact=True).first.wait_for()
    start = time.perf_counter()
    page.get_by_role("link", name=label, exact=True).first.click()
    page.wait_for_timeout(50)  # let the rerun request leave before polling for idle
    drawn(page, charts)
    return time.perf_counter() - start


def main(n_samples: int = 3000, repeats: int = 5) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="nanog1-bench-app-") as tmp:
        cohort = write_cohort(make_cohort(n_samples, seed=0), Path(tmp) / "cohort.h5ad")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        cmd = [str(Path(sys.executable).parent / "nanog1"), "app", "--cohort", str(cohort),
               "--port", str(port), "--mlflow", f"sqlite:///{Path(tmp) / 'none.db'}", "--headless"]
        server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_healthy(url)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(180_000)
                rows = []
                for path, (label, charts) in PAGES.items():
                    first = time_reload(page, f"{url}/{path}", charts)
                    reloads = [time_reload(page, f"{url}/{path}", charts) for _ in range(repeats)]
                    in_app = []
                    for _ in range(repeats):
                        page.get_by_role("link", name="Home", exact=True).first.click()
                        page.wait_for_selector(IDLE)
                        in_app.append(time_in_app(page, label, charts))
                    rows.append((path, first, sorted(reloads)[repeats // 2], sorted(in_app)[repeats // 2]))
                browser.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    load = os.getloadavg()
    print(f"{n_samples} samples · {platform.node()} · {os.cpu_count()} cores · load {load[0]:.2f} · "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{'page':<12}{'first (s)':>10}{'reload med (s)':>16}{'in-app med (s)':>16}{'reload/first':>14}")
    for path, first, reload, in_app in rows:
        print(f"{path:<12}{first:>10.2f}{reload:>16.2f}{in_app:>16.2f}{reload / first:>14.2f}")


if __name__ == "__main__":
    main()
