"""Batch pipelines on Snakemake: config validation, running the Snakefile, the per-rule table."""

from nanog1.pipeline.config import PIPELINES_DIR, ConfigError, load_config, validate_config
from nanog1.pipeline.runner import SMALL_DEMO, run_pipeline, run_small_demo

__all__ = [
    "PIPELINES_DIR", "SMALL_DEMO", "ConfigError", "load_config", "run_pipeline", "run_small_demo",
    "validate_config",
]
