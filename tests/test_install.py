"""The package installs anywhere: a wheel in a fresh virtualenv, used from another folder, finds its workflow
and its dashboard inside itself (importlib.resources), not in a source checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(venv, wheel, env): the wheel built from a copy of the package sources, installed without its
    dependencies into a fresh venv that sees this interpreter's packages (so nothing is downloaded)."""
    base = tmp_path_factory.mktemp("install")
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "nanog1", src / "nanog1", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
          str(base / "dist"), str(src)], base, env)
    wheel = next((base / "dist").glob("nanog1-*.whl"))
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base, env)
    python = venv / "bin" / "python"
    script = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = _run([str(python), "-c", script], base, env)
    # like --system-site-packages, with this interpreter's packages (torch, snakemake, ...) as the system's
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib.stdout.strip(), "_nanog1_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q",
          str(wheel)], base, env)
    return venv, wheel, {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}


def test_wheel_ships_the_workflow_and_the_app(installed):
    _, wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("Snakefile", "demo.yaml", "pcawg.yaml", "rules/model.smk", "schema/config.schema.yaml",
                    "profiles/default/config.yaml", "profiles/slurm/config.yaml"):
        assert f"nanog1/workflow/{shipped}" in names
    assert {"nanog1/dashboard/app/Home.py", "nanog1/dashboard/app/views/runs.py"} <= names
    from nanog1.dashboard.notebook_charts import LIBRARIES  # notebooks draw their charts offline with these

    assert {f"nanog1/dashboard/vega/{name}" for name in LIBRARIES} <= names


def test_installed_commands_work_from_another_folder(installed, tmp_path: Path):
    venv, _, env = installed
    nanog1 = str(venv / "bin" / "nanog1")
    script = ("import nanog1; from nanog1.pipeline import PIPELINES_DIR; "
              "from nanog1.dashboard.launch import streamlit_command; "
              "print(nanog1.__file__); print(PIPELINES_DIR); print(streamlit_command()[4])")
    where = _run([str(venv / "bin" / "python"), "-c", script], tmp_path, env)
    for line in where.stdout.split():
        assert Path(line).is_relative_to(venv), f"{line} is not inside the installed package"
    assert "run" in _run([nanog1, "pipeline", "run", "--help"], tmp_path, env).stdout
    assert "dashboard" in _run([nanog1, "app", "--help"], tmp_path, env).stdout.lower()
    dry = _run([nanog1, "demo", "--dry-run", "--cores", "1"], tmp_path, env)
    assert "simulate" in dry.stdout + dry.stderr
    assert str(venv) in dry.stdout + dry.stderr  # Snakemake ran the installed Snakefile
    assert not (tmp_path / "results").exists()  # a dry run writes no outputs


def test_shipped_configs_and_profiles_by_name_from_another_folder(installed, tmp_path: Path):
    """`pipeline run pcawg --profile default` from a folder outside the checkout: both found in the wheel."""
    venv, _, env = installed
    matrix = tmp_path / "WGS.96.csv"
    matrix.write_text("Mutation type,Trinucleotide,S1\nC>A,ACA,1\n")
    args = [str(venv / "bin" / "nanog1"), "pipeline", "run", "pcawg", "--dry-run", "--cores", "1",
            "--profile", "default", "--set", f"input.files=[{matrix}]"]
    dry = _run(args, tmp_path, env)
    shown = dry.stdout + dry.stderr
    assert "merge" in shown and "train" in shown  # the PCAWG recipe's jobs were planned
    assert str(venv) in shown and not (tmp_path / "results").exists()
    missing = subprocess.run(args[:-4] + ["--profile", "nowhere"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 2 and "shipped: default, slurm" in missing.stderr
