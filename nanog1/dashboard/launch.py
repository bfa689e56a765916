"""How `nanog1 app` starts Streamlit: the command line and the environment that carries the sources."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path

from nanog1.dashboard.config import ENV_COHORT, ENV_TRACKING, app_dir


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
    ]


def streamlit_env(base: Mapping[str, str], cohort: Path | None = None,
                  tracking_uri: str | None = None) -> dict[str, str]:
    """A copy of `base` with the cohort and tracking URI set where given (else inherited or defaults)."""
    env = dict(base)
    if cohort is not None:
        env[ENV_COHORT] = str(Path(cohort).expanduser().resolve())
    if tracking_uri is not None:
        env[ENV_TRACKING] = tracking_uri
    return env
