"""Run a pipeline config through Snakemake's command line (`python -m snakemake`).

Nothing here schedules, resumes or locks: Snakemake does all three. This module validates the config
first, passes the options on, explains Snakemake's lock error when a run finds the folder locked (a
killed run leaves its lock behind; only the user can know that no other run is going on, so clearing it
is an explicit `--unlock`), and prints the per-rule time/memory table at the end.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nanog1.io import atomic_write_text
from nanog1.pipeline.config import PIPELINES_DIR, ConfigError, load_config

SNAKEFILE = PIPELINES_DIR / "Snakefile"


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


def snakemake_locks(workdir: Path) -> list[Path]:
    """The lock files Snakemake keeps in `workdir` while a run writes there (left behind by a killed run)."""
    return sorted((Path(workdir) / ".snakemake" / "locks").glob("*.lock"))


def lock_message(workdir: Path) -> str:
    """What to do when Snakemake refused to start because the folder is locked."""
    return (
        f"Snakemake found {workdir} locked ({workdir / '.snakemake' / 'locks'}): another Snakemake run may be"
        " writing the same outputs. If none is running (a killed run leaves its lock behind), add --unlock"
        " to the same `nanog1 pipeline run` command to clear the lock, then run it again."
    )


def _resolved_configfile(config_path: Path, config: dict, options: RunOptions) -> Path:
    """The file for Snakemake: the user's, or (with overrides) the resolved config under .snakemake/."""
    if not options.overrides:
        return config_path.resolve()
    text = yaml.safe_dump(config, sort_keys=False)
    # Named by content: cluster jobs re-read the config file, so another run's file must never replace it.
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    target = Path(options.workdir or ".") / ".snakemake" / "nanog1" / f"{config['name']}.{digest}.yaml"
    atomic_write_text(target, text)
    return target.resolve()


def check_input_files(config: dict, source: str, workdir: Path) -> None:
    """The config's input files, reference and sample sheet exist (relative paths from `workdir`, where
    Snakemake reads them): a mistyped path is one ConfigError naming it and its key, told before Snakemake
    starts (which would stop with a MissingInputException block naming rule ingest, exit code 1)."""
    inp = config["input"]
    if inp["mode"] == "simulate":
        return
    keys = [("input.files", f) for f in inp.get("files") or []]
    keys += [(f"input.{key}", inp[key]) for key in ("reference", "samples") if inp.get(key)]
    missing = [(key, path) for key, path in keys if not (workdir / Path(path).expanduser()).exists()]
    if missing:
        shown = ", ".join(f"{path} ({key})" for key, path in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ConfigError(f"{source}: input not found: {shown}{more}; relative paths are read from the"
                          f" working directory {workdir} (--directory); name your files, e.g."
                          " --set 'input.files=[/data/a.vcf.gz]'")


def run_pipeline(
    config: Path,
    cores: int = 2,
    dry_run: bool = False,
    until: str | None = None,
    extra_args: Sequence[str] = (),
    overrides: Sequence[str] = (),
    workdir: Path | None = None,
    quiet_table: bool = False,
    unlock: bool = False,
) -> int:
    """Validate `config`, run Snakemake on it and print the per-rule table; return Snakemake's exit code.

    With `unlock`, only remove the lock a killed run left in the working directory (`snakemake --unlock`).
    """
    options = RunOptions(cores, dry_run, until, list(extra_args), list(overrides), workdir, quiet_table)
    resolved = load_config(Path(config), options.overrides)
    root = Path(workdir or ".").resolve()
    options.workdir = root
    if not unlock:
        check_input_files(resolved, str(config), root)
    configfile = _resolved_configfile(Path(config), resolved, options)
    if unlock:
        base = snakemake_command(configfile, RunOptions(cores=1, workdir=root))
        code = subprocess.run(base + ["--unlock"], check=False).returncode
        if code == 0:
            print(f"removed Snakemake's lock in {root}", file=sys.stderr)
        return code
    locked_before = bool(snakemake_locks(root))
    started = time.time()
    code = subprocess.run(snakemake_command(configfile, options), check=False).returncode
    if code != 0 and not dry_run and locked_before and snakemake_locks(root):
        print(f"error: {lock_message(root)}", file=sys.stderr)
        return code
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
