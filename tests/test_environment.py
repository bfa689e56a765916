"""pyproject.toml declares what nanog1 imports, and environment.yml names, for a conda user, every dependency
pyproject.toml declares (runtime and dev), by its conda-forge/bioconda name, at the version constraints.txt
pins; the few that conda lacks come from pip."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

#: PyPI name -> conda-forge/bioconda name, where the two differ.
CONDA_NAME = {"torch": "pytorch", "matplotlib": "matplotlib-base", "snakemake": "snakemake-minimal"}
#: Bioconda packages (the rest are on conda-forge).
BIOCONDA = {"pysam", "snakemake-minimal"}
#: Optional extras a plain conda environment leaves out (the GPU kernels' Triton comes with a CUDA pytorch).
NOT_IN_ENVIRONMENT = {"triton"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower()


def declared(root: Path = ROOT, extras: bool = True) -> set[str]:
    """Every package pyproject.toml declares (runtime, and extras unless told not), by its PyPI name."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    more = [r for reqs in project["optional-dependencies"].values() for r in reqs] if extras else []
    return {_name(r) for r in [*project["dependencies"], *more]} - NOT_IN_ENVIRONMENT


def environment(root: Path = ROOT) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(conda name -> version, pip name -> version, channels) of environment.yml."""
    env = yaml.safe_load((root / "environment.yml").read_text())
    conda, pip = {}, {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for item in dep["pip"]:
                name, _, version = item.partition("==")
                pip[name.lower()] = version
        else:
            name, _, version = dep.partition("=")
            conda[name.lower()] = version
    return conda, pip, env["channels"]


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return {n.lower(): v for n, _, v in (line.partition("==") for line in lines if "==" in line)}


def missing(root: Path = ROOT) -> list[str]:
    """Declared packages that environment.yml names neither for conda nor for pip."""
    conda, pip, _ = environment(root)
    return sorted(n for n in declared(root) if CONDA_NAME.get(n, n) not in conda and n not in pip)


def test_environment_names_every_declared_dependency():
    assert not missing(), f"environment.yml lacks {missing()} (declared in pyproject.toml)"
    conda, pip, channels = environment()
    assert {"conda-forge", "bioconda"} <= set(channels)
    assert BIOCONDA <= set(conda)
    assert "-e ." in pip or "." in pip  # nanog1 itself, over the conda-installed dependencies


def test_environment_versions_are_the_ci_pins():
    conda, pip, _ = environment()
    pinned = pins()
    for name in declared():
        version = conda.get(CONDA_NAME.get(name, name)) or pip.get(name)
        assert version == pinned[name], f"{name}: environment.yml {version}, constraints.txt {pinned[name]}"


def test_the_check_sees_a_dropped_dependency(tmp_path: Path):
    """The name check fails when a declared package is dropped from environment.yml (here: pysam)."""
    text = (ROOT / "environment.yml").read_text()
    assert "\n  - pysam=" in text
    (tmp_path / "environment.yml").write_text(re.sub(r"\n  - pysam=[^\n]*", "", text))
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    assert missing(tmp_path) == ["pysam"]


#: Imported by nanog1 but declared only as an extra: the GPU kernels (Triton, loaded on CUDA only), the
#: SigProfiler peer that tests and benchmarks compare with, and IPython (the notebooks' offline charts).
OPTIONAL_IMPORTS = {"triton", "sigprofilermatrixgenerator", "ipython"}
#: Declared but never imported: Snakemake runs as `python -m snakemake`; SigProfilerAssignment ships the
#: COSMIC tables read as package data.
NOT_IMPORTED = {"snakemake", "sigprofilerassignment"}


def imported(root: Path = ROOT) -> dict[str, str]:
    """Distribution name (lower case) -> one file of nanog1/ importing it, for every third-party import."""
    dists = packages_distributions()
    found: dict[str, str] = {}
    for path in sorted((root / "nanog1").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in sys.stdlib_module_names or top in ("nanog1", "__future__"):
                    continue
                for dist in dists.get(top, [top]):
                    if dist.lower() in ("mlflow-skinny", "mlflow-tracing"):  # parts of mlflow
                        continue
                    found.setdefault(dist.lower(), str(path.relative_to(root)))
    return found


def test_every_imported_package_is_declared_and_every_declared_one_used():
    uses = imported()
    runtime = declared(extras=False)
    undeclared = {d: f for d, f in uses.items() if d not in runtime and d not in OPTIONAL_IMPORTS}
    assert not undeclared, f"imported but not in pyproject's dependencies: {undeclared}"
    assert OPTIONAL_IMPORTS <= declared() | NOT_IN_ENVIRONMENT
    unused = runtime - set(uses) - NOT_IMPORTED
    assert not unused, f"declared in pyproject but never imported by nanog1: {unused}"


def test_the_import_check_sees_an_undeclared_import(tmp_path: Path):
    (tmp_path / "nanog1").mkdir()
    (tmp_path / "nanog1" / "x.py").write_text("import os\nimport h5py\nfrom nanog1 import io\n")
    assert imported(tmp_path) == {"h5py": "nanog1/x.py"}
