"""Shared pytest fixtures and settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow_template
import pytest
from background import running

# One compute thread per process, set before anything imports torch or numpy (and inherited by the
# subprocesses tests start: CLI runs, Snakemake jobs, torchrun ranks, the Triton interpreter). The suite's
# models are tiny: a second intra-op thread buys nothing on them, while on CI's 2 cores, shared with the
# servers, kernels and jobs the tests start, spinning OpenMP workers made training tests several times
# slower (tests/test_training_loop.py: 171 s with torch's default of 2 threads, 42 s with 1, on this VM's
# 2 busy cores). Nothing a test checks depends on the thread count. An explicit setting still wins.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

mlflow_template.install()  # before any test module imports MLflow

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PCAWG = SHARED / "data" / "pcawg7"


def pytest_collection_modifyitems(config, items):
    """Run the tests that read umap-learn's kernels last (they are compiled beside the suite meanwhile:
    `umap_kernels`); skip `gpu` tests cleanly on machines without CUDA."""
    items.sort(key=lambda item: "umap_kernels" in getattr(item, "fixturenames", ()))  # stable: order kept
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pcawg_dir() -> Path:
    """The PCAWG catalogues in ../shared, or a clean skip where they are absent."""
    if not PCAWG.is_dir():
        pytest.skip("../shared/data/pcawg7 is absent on this machine")
    return PCAWG


@pytest.fixture(scope="session")
def two_contig_genome(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A generated, indexed FASTA of contigs '1' and '2' (20 kb each) and their sequences."""
    from nanog1.genomics.synthetic import GenomeSpec, make_genome

    work = tmp_path_factory.mktemp("genome")
    seqs = make_genome(work / "g.fa", GenomeSpec(n_contigs=2, length=20_000, seed=9))
    return work / "g.fa", seqs


@pytest.fixture(scope="session", autouse=True)
def _mlflow_template(tmp_path_factory):
    """New SQLite MLflow stores in this process start from one migrated template (tests/mlflow_template.py:
    MLflow's migrations cost 4-9 s a store, and dozens of tests make one)."""
    mlflow_template.use_folder(tmp_path_factory.mktemp("mlflow_template"))
    yield
    mlflow_template.use_folder(None)


@pytest.fixture(autouse=True)
def _cli_switches_restored():
    """`nanog1 --quiet` / `--debug` set NANOG1_QUIET / NANOG1_DEBUG for the whole process (a CLI run ends
    with it); in-process CliRunner tests would leak them into every later test (a later test's progress
    lines vanished once), so each test ends with them as they were before it."""
    names = ("NANOG1_QUIET", "NANOG1_DEBUG")
    before = {name: os.environ.get(name) for name in names}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def _fresh_mlflow_store(request):
    """A test marked `fresh_mlflow_store` creates its stores through MLflow's own migrations."""
    if request.node.get_closest_marker("fresh_mlflow_store") is None:
        yield
        return
    mlflow_template.fresh(True)
    yield
    mlflow_template.fresh(False)


@pytest.fixture(scope="session", autouse=True)
def _small_demo_started(request, tmp_path_factory):
    """Start the small demo run (`run_small_demo`, in a child process) in the background at the start of
    the session when a selected test needs `small_demo`; None otherwise. It is a chain of single-threaded
    jobs that took 2.5 minutes of the suite alone; started first, it runs on the second core beside the
    tests before the first that reads it. A run nobody waited for is stopped at the end."""
    if not any("small_demo" in getattr(item, "fixturenames", ()) for item in request.session.items):
        yield None
        return
    workdir = tmp_path_factory.mktemp("demo")
    log = tmp_path_factory.mktemp("demo_log") / "run_small_demo.log"
    code = "import sys; from pathlib import Path; from nanog1.pipeline import run_small_demo; " \
           "run_small_demo(Path(sys.argv[1]))"
    with running([sys.executable, "-c", code, str(workdir)], log) as proc:
        yield workdir, proc, log


@pytest.fixture(scope="session", autouse=True)
def _umap_warm_up_started(request, tmp_path_factory):
    """Compile umap-learn's kernels into numba's disk cache in the background (tests/umap_warm_up.py, at
    the lowest priority) when a selected test needs `umap_kernels`; None otherwise. It is a minute of one
    core that the UMAP test paid in the foreground."""
    if not any("umap_kernels" in getattr(item, "fixturenames", ()) for item in request.session.items):
        yield None
        return
    log = tmp_path_factory.mktemp("umap_log") / "umap_warm_up.log"
    with running([sys.executable, str(Path(__file__).with_name("umap_warm_up.py"))], log) as proc:
        yield proc, log


@pytest.fixture(scope="session")
def umap_kernels(_umap_warm_up_started) -> None:
    """umap-learn's kernels compiled and on disk (waits for the background compile)."""
    proc, log = _umap_warm_up_started
    if proc.wait() != 0:
        raise RuntimeError(f"the UMAP warm-up failed (exit {proc.returncode}):\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def small_demo(_small_demo_started) -> Path:
    """Output folder of one uninterrupted small demo pipeline run (`run_small_demo`), made once per session
    (started in the background at the start of the session: `_small_demo_started`).

    The pipeline end-to-end tests and the notebook tests read the same run (it is the slowest set-up in
    the suite). Tests that change it work on a copy or restore what they touched."""
    from nanog1.pipeline import PIPELINES_DIR, SMALL_DEMO, load_config

    workdir, proc, log = _small_demo_started
    if proc.wait() != 0:
        raise RuntimeError(f"the small demo failed (exit code {proc.returncode}):\n{log.read_text()[-4000:]}")
    return workdir / load_config(PIPELINES_DIR / "demo.yaml", list(SMALL_DEMO))["outdir"]


def alt_of(base: str) -> str:
    """A base other than `base` (the next one in ACGT order): an ALT allele for generated calls."""
    return "ACGT"[("ACGT".index(base) + 1) % 4]


os.environ.setdefault("MPLBACKEND", "Agg")
