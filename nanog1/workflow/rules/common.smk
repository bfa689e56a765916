# Shared helpers: output paths, the nanog1 command, benchmark and log locations.
# Every value reaches a rule's shell command quoted ({x:q}; a list: each item quoted), argument lists
# rather than strings, so no config value (paths, names, `extra:` options) is ever read by the shell.
import json
import sys
from pathlib import Path

from nanog1.pipeline.extra import extra_arguments

OUT = config["outdir"].rstrip("/")
NANOG1 = [sys.executable, "-m", "nanog1.cli"]
#: {'simulate': [...], 'ingest': [...], ...}: the `extra:` options, checked against each command.
EXTRA = extra_arguments(config)
SEED = config["seed"]
RUN_DIR = f"{OUT}/run"
TRACKING_URI = config["train"]["tracking_uri"] or f"sqlite:///{OUT}/mlflow.db"
ARTIFACTS = f"{OUT}/mlartifacts"
EXPERIMENT = config["train"]["experiment"] or f"nanog1-{config['name']}"


def _recorded_config(cfg):
    """The config as MLflow records it: a long input file list shortened to its first files and count."""
    shown = json.loads(json.dumps(cfg))
    files = shown["input"].get("files") or []
    if len(files) > 20:
        shown["input"]["files"] = files[:5] + [f"... {len(files)} files in all"]
    return shown


# The resolved config, handed to the train job so that MLflow records it. It is a global (not a
# param) on purpose: changing an unrelated key must not rerun training.
PIPELINE_CONFIG = json.dumps(_recorded_config(config), sort_keys=True)


def out(path):
    """A path under the run's output folder."""
    return f"{OUT}/{path}"


def bench(name):
    """Where Snakemake's `benchmark:` directive writes a job's wall time and peak memory."""
    return f"{OUT}/benchmarks/{name}.tsv"


def logfile(name):
    return f"{OUT}/logs/{name}.log"


def opt(flag, value):
    """[flag, value] for a set option, [] for None (an argument list: quote it with {...:q})."""
    return [] if value is None else [flag, str(value)]


def final_targets():
    if config["predict"]["enabled"] and config["predict"]["only"]:
        return [out("predict/predictions.tsv")]
    targets = [out("cohort.h5ad")]
    if config["report"]["enabled"]:
        targets.append(out("report/report.md"))
    if config["finetune"]["enabled"]:
        targets.append(out("finetune/metrics.json"))
    if config["predict"]["enabled"]:
        targets.append(out("predict/predictions.tsv"))
    return targets
