"""Files shipped inside the package: the Snakemake workflow and the Streamlit dashboard's scripts.

They are package data (`nanog1/workflow/`, `nanog1/dashboard/app/`), found with `importlib.resources`, so a
wheel installed anywhere finds them exactly as a source checkout does; nothing looks outside the package.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

_OPEN = ExitStack()
atexit.register(_OPEN.close)


@cache
def resource_path(*parts: str) -> Path:
    """A real path to the shipped file or folder `nanog1/<parts...>` (Snakemake and Streamlit need paths)."""
    path = _OPEN.enter_context(as_file(files("nanog1").joinpath(*parts)))
    if not path.exists():
        raise FileNotFoundError(f"{'/'.join(parts)} is missing from the installed nanog1 package ({path})")
    return Path(path)
