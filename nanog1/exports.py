"""Lazy public APIs: a package lists its public names (`__all__`) and the module each lives in, and imports
that module only when the name is first used, so `import nanog1.encoder` stays light and the CLI fast."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_attributes(package: str, api: dict[str, str]) -> Callable[[str], Any]:
    """A module-level `__getattr__` for `package`: each name of `api` (name -> module) imported on use."""

    def __getattr__(name: str) -> Any:
        if name in api:
            return getattr(importlib.import_module(api[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
