"""How `nanog1 app` starts Streamlit: the command line and the environment that carries the sources."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from nanog1.dashboard.config import ENV_COHORT, ENV_TRACKING, app_dir, sqlite_path


def streamlit_command(port: int = 8501, host: str = "127.0.0.1", headless: bool = False) -> list[str]:
    """`python -m streamlit run …/nanog1/dashboard/app/Home.py …` on `host:port`, usage statistics off."""
    entry = app_dir() / "Home.py"
    return [
        sys.executable, "-m", "streamlit", "run", str(entry),
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", str(headless).lower(),
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", host,
        "--client.toolbarMode", "viewer",  # no Deploy button or developer menu for researchers
    ]


def streamlit_env(base: Mapping[str, str], cohort: Path | None = None,
                  tracking_uri: str | None = None) -> dict[str, str]:
    """A copy of `base` with the cohort and tracking URI set where given (else inherited or defaults)."""
    env = dict(base)
    if cohort is not None:
        env[ENV_COHORT] = str(Path(cohort).expanduser().resolve())
    if tracking_uri is not None:
        env[ENV_TRACKING] = resolve_tracking_uri(tracking_uri)
    return env


def resolve_tracking_uri(uri: str, cwd: Path | None = None) -> str:
    """A tracking URI with any relative path made absolute against `cwd`, as `--cohort` is.

    `sqlite:///results/x.db` (three slashes: relative) and a bare `results/x.db` become
    `sqlite:////abs/results/x.db`; `file:mlruns` and a bare folder become `file:/abs/mlruns`; URIs
    with a host (http, databricks) are returned unchanged.
    """
    base = Path(cwd or Path.cwd())
    db = sqlite_path(uri)
    if db is not None:
        return f"sqlite:///{(base / db.expanduser()).resolve()}"
    if uri.startswith("file:"):
        return f"file:{(base / Path(urlsplit(uri).path).expanduser()).resolve()}"
    if "://" not in uri and uri.strip():
        path = (base / Path(uri).expanduser()).resolve()
        return f"sqlite:///{path}" if path.suffix == ".db" else f"file:{path}"
    return uri


def launch_warnings(cohort: Path | None, tracking_uri: str | None) -> list[str]:
    """Lines to print before serving when a given source does not exist (the app still starts)."""
    warnings = []
    if cohort is not None and not Path(cohort).expanduser().is_file():
        warnings.append(f"warning: cohort {Path(cohort).expanduser().resolve()} does not exist; "
                        "the dashboard will say so until another file is chosen in its sidebar")
    if tracking_uri is not None:
        uri = resolve_tracking_uri(tracking_uri)
        db = sqlite_path(uri)
        folder = Path(urlsplit(uri).path) if uri.startswith("file:") else None
        if (db is not None and not db.is_file()) or (folder is not None and not folder.is_dir()):
            warnings.append(f"warning: MLflow store {uri} does not exist; the Runs page will say so")
    return warnings
