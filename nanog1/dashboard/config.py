"""Where the dashboard reads from: cohort file, MLflow store and model checkpoints.

Resolution order for each source: the sidebar chooser (per browser session), then the environment
(`nanog1 app` sets it from its options), then the demo outputs in `results/demo/` of the folder the app
was started in (where `nanog1 demo` writes them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from nanog1.resources import resource_path

#: Environment variables read by the dashboard (set by `nanog1 app`).
ENV_COHORT = "NANOG1_COHORT"
ENV_TRACKING = "MLFLOW_TRACKING_URI"
ENV_TEXT_CKPT = "NANOG1_TEXT_CHECKPOINT"
ENV_VISION_CKPT = "NANOG1_VISION_CHECKPOINT"
ENV_AUDIO_CKPT = "NANOG1_AUDIO_CHECKPOINT"
ENV_WORLD_CKPT = "NANOG1_WORLD_CHECKPOINT"


def app_dir() -> Path:
    """The Streamlit app shipped in the package: `Home.py` and the page scripts in `views/`."""
    return resource_path("dashboard", "app")


@dataclass(frozen=True)
class DashboardConfig:
    """The data sources one dashboard session shows."""

    cohort: Path
    tracking_uri: str
    text_checkpoint: Path | None = None
    vision_checkpoint: Path | None = None
    audio_checkpoint: Path | None = None
    world_checkpoint: Path | None = None


def _optional_path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None


def default_config(environ: dict[str, str] | None = None) -> DashboardConfig:
    """Sources from the environment, falling back to the demo outputs in `./results/demo/`."""
    env = os.environ if environ is None else environ
    demo = Path.cwd() / "results" / "demo"
    return DashboardConfig(
        cohort=Path(env.get(ENV_COHORT) or demo / "cohort.h5ad").expanduser(),
        tracking_uri=env.get(ENV_TRACKING) or f"sqlite:///{demo / 'mlflow.db'}",
        text_checkpoint=_optional_path(env.get(ENV_TEXT_CKPT)),
        vision_checkpoint=_optional_path(env.get(ENV_VISION_CKPT)),
        audio_checkpoint=_optional_path(env.get(ENV_AUDIO_CKPT)),
        world_checkpoint=_optional_path(env.get(ENV_WORLD_CKPT)),
    )


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///…` tracking URI, or None for other stores."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix):
        return None
    return Path(tracking_uri[len(prefix):].split("?", 1)[0])


def discovered_cohorts(root: Path | None = None) -> list[str]:
    """Cohort files the pipelines wrote under `<root or here>/results/` (one level deep), as sorted paths."""
    results = (root or Path.cwd()) / "results"
    return sorted(str(p) for p in results.glob("*/*.h5ad")) if results.is_dir() else []
