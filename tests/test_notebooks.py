"""The analysis notebooks in notebooks/ run top to bottom on a small demo run and are stored without outputs.

The demo pipeline runs once (at the test size of `run_small_demo`, the session's `small_demo`
fixture, shared with test_pipeline_e2e) into a temporary folder; the three
notebooks then execute concurrently, each in its own kernel (a kernel spec written to a temporary
folder that starts this interpreter, so no user-level `python3` spec can swap it), pointed at that
folder through NANOG1_RESULTS. Any cell error fails.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("01_cohort_and_signatures.ipynb", "02_embeddings.ipynb", "03_runs_and_models.ipynb")
CELL_TIMEOUT_S = 600
KERNEL = "nanog1-tests"


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def code_cells(nb: nbformat.NotebookNode) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def kernel_env(results: Path) -> dict[str, str]:
    """The kernel's environment: the demo folder to read, one thread per library, no GUI backend."""
    return {**os.environ, "NANOG1_RESULTS": str(results), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}


async def execute(nb: nbformat.NotebookNode, results: Path) -> CellExecutionError | None:
    """Run `nb` in place from the notebooks folder; the first cell error, or None."""
    client = NotebookClient(nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    try:
        await client.async_execute(env=kernel_env(results))
    except CellExecutionError as err:
        return err
    return None


async def execute_all(notebooks: dict[str, nbformat.NotebookNode], results: Path) -> dict:
    errors = await asyncio.gather(*(execute(nb, results) for nb in notebooks.values()))
    return dict(zip(notebooks, errors, strict=True))


@pytest.fixture(scope="module", autouse=True)
def kernel_spec(tmp_path_factory):
    """The KERNEL spec (this interpreter + ipykernel) in a temporary folder on JUPYTER_PATH."""
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(root / "kernels" / KERNEL)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(root), prepend=os.pathsep)
        yield


@pytest.fixture(scope="module")
def demo_results(small_demo: Path) -> Path:
    """Output folder of one small demo pipeline run (the session's, shared with the pipeline tests)."""
    return small_demo


@pytest.fixture(scope="module")
def executed(demo_results: Path) -> dict[str, tuple[nbformat.NotebookNode, CellExecutionError | None]]:
    """Each notebook executed on the demo run, with a last cell that prints the folder it read."""
    notebooks = {}
    for name in NAMES:
        nb = read(name)
        nb.cells.append(nbformat.v4.new_code_cell("print(RESULTS.resolve())"))
        notebooks[name] = nb
    errors = asyncio.run(execute_all(notebooks, demo_results))
    return {name: (notebooks[name], errors[name]) for name in NAMES}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_top_to_bottom(name: str, executed, demo_results: Path):
    nb, error = executed[name]
    assert error is None, f"{name} failed:\n{str(error)[-4000:]}"
    cells = code_cells(nb)
    assert all(c.execution_count is not None for c in cells)
    assert not [o for c in cells for o in c.outputs if o.output_type == "error"]
    printed = "".join(o.get("text", "") for o in cells[-1].outputs if o.output_type == "stream")
    assert printed.strip() == str(demo_results.resolve())  # it read the demo run, not results/demo


#: What makes an output load code from the internet when it is shown: a CDN's host, or a script, stylesheet,
#: module or require.js path at an http(s) address. On a machine without internet such an output stays empty.
FETCHES = re.compile(r"cdn\.jsdelivr|cdn\.plot\.ly|unpkg\.com|cdnjs\.|esm\.sh|(?:src|href)\s*=\s*[\"']?https?://"
                     r"|import\(\s*[\"']https?://|[\"']https?://[^\"']*\?noext")


def html_outputs(nb: nbformat.NotebookNode) -> list[str]:
    """The HTML and JavaScript outputs of `nb`, in order."""
    return [o["data"][kind] for c in code_cells(nb) for o in c.outputs
            if o.output_type in ("display_data", "execute_result")
            for kind in ("text/html", "application/javascript") if kind in o.get("data", {})]


def charts(outputs: list[str]) -> int:
    """How many of the outputs draw a Vega chart (Altair's renderers and NanoG1's call vegaEmbed)."""
    return sum("vegaEmbed(" in html for html in outputs)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_outputs_load_nothing_from_the_internet(name: str, executed):
    nb, error = executed[name]
    assert error is None, f"{name} failed:\n{str(error)[-4000:]}"
    outputs = html_outputs(nb)
    assert charts(outputs), f"{name} shows no chart"
    fetched = sorted({m.group(0) for html in outputs for m in FETCHES.finditer(html)})
    assert not fetched, f"{name}: its outputs load {fetched} from the internet (blank charts offline)"


def test_offline_renderer_fetches_nothing_and_keeps_its_script_whole(capsys):
    """The libraries' output and a chart's output load nothing from the internet, and a '</script>' in a
    chart's text does not end its script early; enable_offline_charts makes the renderer Altair's."""
    import altair as alt

    from nanog1.dashboard import enable_offline_charts, notebook_charts

    libraries = notebook_charts.library_script()
    chart = alt.Chart(pd.DataFrame({"x": [1.0, 2.0]}), title="a </script> title").mark_bar().encode(x="x:Q")
    html = notebook_charts.render(chart.to_dict())["text/html"]
    for text in (libraries, html):
        assert text.count("</script") == 1 and not FETCHES.search(text)
    assert "a <\\/script> title" in html and "vegaEmbed(" in html
    before = alt.renderers.active
    try:
        enable_offline_charts()
        assert alt.renderers.active == notebook_charts.RENDERER
        bundle = chart._repr_mimebundle_()
        bundle = bundle[0] if isinstance(bundle, tuple) else bundle
        assert "nanog1-chart-" in bundle["text/html"] and not FETCHES.search(bundle["text/html"])
    finally:
        alt.renderers.enable(before)
    capsys.readouterr()


#: A stand-in for the AMD loader (require.js) of classic Notebook front ends, which takes over every UMD
#: script that does not hide it from it.
AMD = "<script>window.define = function () { window.amdCalls = (window.amdCalls || 0) + 1; }; " \
      "window.define.amd = {};</script>"


#: A drawn chart: the SVG or canvas Vega draws in, in vega-embed's wrapper (not a mark group named marks).
DRAWN = ".vega-embed .chart-wrapper > .marks"


def draw_offline(browser, outputs: list[str], page_file: Path, amd: bool) -> str | None:
    """Show `outputs` in order in one page, as a Jupyter front end shows them (`amd`: with a require.js
    stand-in, as classic Notebook), in headless Chromium with every request but the page's own refused.
    None when every chart draws its marks; else what went wrong."""
    body = "\n".join(f"<div class='output'>{html}</div>" for html in outputs)
    page_file.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'>{AMD if amd else ''}</head>"
                         f"<body>{body}</body></html>")
    page = browser.new_page()
    refused, errors = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.route("**/*", lambda route: route.continue_() if route.request.url == page_file.as_uri()
               else (refused.append(route.request.url), route.abort()))
    try:
        page.goto(page_file.as_uri())
        try:
            page.wait_for_function(f"n => document.querySelectorAll('{DRAWN}').length >= n",
                                   arg=charts(outputs), timeout=60_000)
        except Exception as exc:
            marks = page.locator(DRAWN).count()
            return (f"{marks} of {charts(outputs)} charts drawn ({type(exc).__name__}); "
                    f"refused {refused[:4]}; page errors {errors[:4]}")
        area = "els => els.map(e => e.getBoundingClientRect()).map(r => r.width * r.height)"
        sizes = page.locator(DRAWN).evaluate_all(area)
        if len(sizes) != charts(outputs) or min(sizes) <= 0 or errors or refused:
            return f"chart areas {sizes}; refused {refused[:4]}; page errors {errors[:4]}"
        return None
    finally:
        page.close()


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_charts_draw_without_internet(name: str, executed, tmp_path):
    """The executed notebook's HTML outputs, in order in one page, draw every chart in headless Chromium with
    the network refused, with and without an AMD loader on the page."""
    nb, error = executed[name]
    assert error is None, f"{name} failed:\n{str(error)[-4000:]}"
    outputs = html_outputs(nb)
    assert charts(outputs), f"{name} shows no chart"

    from app_browser import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():  # as the dashboard's browser tests: missing, it fails
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (CI does)")
    with sync_playwright() as pw:  # not a module fixture: its event loop would stop later asyncio.run calls
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        failed = {amd: draw_offline(browser, outputs, tmp_path / f"{amd}.html", amd) for amd in (False, True)}
        browser.close()
    assert failed == {False: None, True: None}, f"{name} offline: {failed}"


@pytest.mark.slow
def test_a_failing_cell_fails_the_run(demo_results: Path):
    first = code_cells(read(NAMES[0]))[0].source
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(first),
                                         nbformat.v4.new_code_cell("assert RESULTS.is_dir()"),
                                         nbformat.v4.new_code_cell("raise ValueError('broken cell')"),
                                         nbformat.v4.new_code_cell("print('never reached')")])
    error = asyncio.run(execute(nb, demo_results))
    assert isinstance(error, CellExecutionError) and "broken cell" in str(error)
    assert nb.cells[1].execution_count is not None and nb.cells[3].execution_count is None


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_clean_with_one_results_variable(name: str):
    nb = read(name)
    nbformat.validate(nb)
    cells = code_cells(nb)
    assert all(not c.outputs and c.execution_count is None for c in cells), "stored with outputs"
    first = cells[0]
    assert "parameters" in first.metadata.get("tags", [])
    assert "RESULTS = " in first.source and "NANOG1_RESULTS" in first.source and '"pcawg"' in first.source
    for cell in cells[1:]:  # every later cell reaches the outputs through RESULTS only
        assert not any(s in cell.source for s in ("RESULTS =", "results/", '"results"')), cell.source


#: What a notebook may import from nanog1: package roots and top-level modules (their `__all__`, where
#: they declare one); modules below a package (nanog1.dashboard.charts, nanog1.encoder.data, ...) are
#: internals that may move.
PUBLIC = ("nanog1.dashboard", "nanog1.encoder", "nanog1.fitting", "nanog1.genomics", "nanog1.schema",
          "nanog1.report", "nanog1.tracking")


def nanog1_imports(source: str) -> list[tuple[str, str]]:
    """(module, name) for each nanog1 name a cell's code imports (`import nanog1.x as y`: name '')."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nanog1"):
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.startswith("nanog1")]
    return found


@pytest.mark.parametrize("name", NAMES)
def test_notebook_uses_the_public_api_only(name: str):
    import importlib

    imports = [i for cell in code_cells(read(name)) for i in nanog1_imports(cell.source)]
    assert imports
    for module, attr in imports:
        assert module in PUBLIC, f"{name} imports the internal module {module}"
        mod = importlib.import_module(module)
        public = getattr(mod, "__all__", [n for n in dir(mod) if not n.startswith("_")])
        assert not attr or attr in public, f"{name}: {module}.{attr} is not in its public API"
    source = "\n".join(c.source for c in code_cells(read(name)))
    for module, alias in re.findall(r"^import (nanog1\.\w+) as (\w+)$", source, re.M):
        used = set(re.findall(rf"\b{alias}\.(\w+)", source))  # attributes of an imported package
        assert used <= set(importlib.import_module(module).__all__), (name, used)

def test_the_public_api_check_sees_an_internal_import():
    assert nanog1_imports("from nanog1.dashboard import charts\nimport nanog1.encoder.data as d") == [
        ("nanog1.dashboard", "charts"), ("nanog1.encoder.data", "")]
    import nanog1.dashboard

    assert "charts" not in nanog1.dashboard.__all__ and "spectrum_chart" in nanog1.dashboard.__all__


@pytest.mark.parametrize("package", ["nanog1.dashboard", "nanog1.encoder", "nanog1.fitting",
                                     "nanog1.genomics"])
def test_public_names_stay_themselves_once_every_submodule_is_imported(package: str):
    """Importing a submodule sets it as the package's attribute: a lazily exported function of the same
    name would then turn into that module (`nanog1.encoder.baselines` is the CLI's module, so the function
    is `baseline_scores`)."""
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    for module in pkgutil.iter_modules(pkg.__path__):
        if module.name != "app":  # the Streamlit scripts' folder, not an importable module
            importlib.import_module(f"{package}.{module.name}")
    shadowed = [name for name in pkg.__all__ if isinstance(getattr(pkg, name), type(pkg))]
    assert not shadowed, f"{package}: {shadowed} became submodules"
