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
