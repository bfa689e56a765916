"""Run a pipeline config through Snakemake's command line (`python -m snakemake`).

Nothing here schedules or resumes: Snakemake does both. This module validates the config first, passes
the options on, clears the lock a killed run leaves behind (only while it holds an OS lock proving no
other `nanog1 pipeline run` uses the folder), and prints the per-rule time/memory table at the end.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nanog1.pipeline.config import PIPELINES_DIR, load_config

SNAKEFILE = PIPELINES_DIR / "Snakefile"


class PipelineBusyError(RuntimeError):
    """Another `nanog1 pipeline run` holds the working directory."""


@dataclass
class RunOptions:
    """How to run: cores, dry run, the last rule to run, extra Snakemake arguments, config overrides."""

    cores: int = 2
    dry_run: bool = False
    until: str | None = None
    extra_args: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    workdir: Path | None = None
    quiet_table: bool = False


def snakemake_command(configfile: Path, options: RunOptions) -> list[str]:
    """The `python -m snakemake ...` argument list for one run."""
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--configfile", str(configfile)]
    cmd += ["--cores", str(options.cores)]
    if options.workdir is not None:
        cmd += ["--directory", str(options.workdir)]
    if options.dry_run:
        cmd.append("--dry-run")
    if options.until:
        cmd += ["--until", options.until]
    return cmd + list(options.extra_args)


@contextmanager
def exclusive_workdir(workdir: Path) -> Iterator[None]:
    """Hold an OS file lock on the working directory for the run (released by the kernel on any exit)."""
    lock_dir = workdir / ".snakemake"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / "nanog1-pipeline.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise PipelineBusyError(f"another `nanog1 pipeline run` is using {workdir}") from err
        yield


def _clear_stale_lock(configfile: Path, options: RunOptions) -> None:
    """Remove the Snakemake lock a killed run left (we hold the folder, so no nanog1 run owns it)."""
    locks = (Path(options.workdir or ".") / ".snakemake" / "locks").glob("*.lock")
    if any(True for _ in locks):
        base = snakemake_command(configfile, RunOptions(cores=1, workdir=options.workdir))
        subprocess.run(base + ["--unlock"], check=False, capture_output=True)


def _resolved_configfile(config_path: Path, config: dict, options: RunOptions) -> Path:
    """The file for Snakemake: the user's, or (with overrides) the resolved config under .snakemake/."""
    if not options.overrides:
        return config_path.resolve()
    text = yaml.safe_dump(config, sort_keys=False)
    # Named by content: cluster jobs re-read the config file, so another run's file must never replace it.
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    target = Path(options.workdir or ".") / ".snakemake" / "nanog1" / f"{config['name']}.{digest}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, target)
    return target.resolve()


def run_pipeline(
    config: Path,
    cores: int = 2,
    dry_run: bool = False,
    until: str | None = None,
    extra_args: Sequence[str] = (),
    overrides: Sequence[str] = (),
    workdir: Path | None = None,
    quiet_table: bool = False,
) -> int:
    """Validate `config`, run Snakemake on it and print the per-rule table; return Snakemake's exit code."""
    options = RunOptions(cores, dry_run, until, list(extra_args), list(overrides), workdir, quiet_table)
    resolved = load_config(Path(config), options.overrides)
    root = Path(workdir or ".").resolve()
    options.workdir = root
    configfile = _resolved_configfile(Path(config), resolved, options)
    started = time.time()
    if dry_run:  # a dry run locks nothing, so it may look at a folder while a run is going on
        code = subprocess.run(snakemake_command(configfile, options), check=False).returncode
    else:
        with exclusive_workdir(root):
            _clear_stale_lock(configfile, options)
            code = subprocess.run(snakemake_command(configfile, options), check=False).returncode
    if not dry_run and not quiet_table:
        from nanog1.pipeline.rule_stats import read_benchmarks, render, summarise

        bench_dir = root / resolved["outdir"] / "benchmarks"
        status = "finished" if code == 0 else f"stopped (exit code {code})"
        render(summarise(read_benchmarks(bench_dir, since=started)), f"{resolved['name']}: {status}")
    return code


#: Config overrides that shrink the demo to a test size (a few dozen samples, a few epochs).
SMALL_DEMO = (
    "input.simulate.n_samples=36",
    "input.simulate.cancer_types=[Lung-AdenoCA, Skin-Melanoma, ColoRect-AdenoCA, Liver-HCC]",
    "input.simulate.maf_fraction=0.17",
    "ingest.files_per_job=12",
    "train.epochs=3",
    "train.hidden=32",
    "train.layers=1",
    "threads=1",
)


def run_small_demo(workdir: Path, cores: int = 2, extra_overrides: Sequence[str] = ()) -> Path:
    """Run the demo at test size in `workdir` (tests and notebooks use it); return its output folder."""
    overrides = [*SMALL_DEMO, *extra_overrides]
    code = run_pipeline(PIPELINES_DIR / "demo.yaml", cores=cores, overrides=overrides, workdir=workdir,
                        quiet_table=True)
    if code != 0:
        raise RuntimeError(f"the small demo failed (exit code {code}); see {workdir}/results/demo/logs")
    return Path(workdir) / load_config(PIPELINES_DIR / "demo.yaml", overrides)["outdir"]
