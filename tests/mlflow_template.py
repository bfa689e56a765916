"""MLflow's SQLite set-up done once per test session instead of once per store.

A new SQLite MLflow store runs MLflow's Alembic migrations (`mlflow.store.db.utils._initialize_tables`:
4-9 s on CI's 2 cores, most of it fsyncs), and dozens of tests train, evaluate or log through a store of
their own. In the pytest process the first new store of a session migrates as MLflow does it and its
freshly migrated database is kept as a template; every later new SQLite file store gets a copy of that
template (SQLite's backup API, into MLflow's own connection, before MLflow creates anything else in it).
The result is the same database MLflow's migrations give: same tables, indexes and Alembic version, no
experiment (MLflow adds its 'Default' experiment after this step, as for any new store).

Only `_initialize_tables` is replaced, and only in the pytest process: subprocesses (the CLI runs, the
demo pipeline, torchrun ranks, the dashboard server) create their stores through MLflow's migrations, and
a test marked `fresh_mlflow_store` does in-process too. The patch is applied when MLflow's module is first
imported (importing it here would cost every test session seconds)."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sqlite3
import sys
import threading
from contextlib import closing
from pathlib import Path

MODULE = "mlflow.store.db.utils"
_state = {"folder": None, "fresh": False}  # folder: where the template lives; None: no template this session
_lock = threading.Lock()


def use_folder(folder: Path | None) -> None:
    """Keep the session's template in `folder` (None: every store migrates itself)."""
    _state["folder"] = folder


def fresh(on: bool) -> None:
    """On: new stores migrate through MLflow (a test marked `fresh_mlflow_store`)."""
    _state["fresh"] = on


def _database_file(engine) -> str | None:
    """The file of a SQLite engine's database; None for in-memory databases and other back ends."""
    if engine.dialect.name != "sqlite":
        return None
    db = engine.url.database
    return None if not db or db == ":memory:" or db.startswith("file:") else db


def _from_template(original):
    def initialize_tables(engine):
        folder = _state["folder"]
        if folder is None or _state["fresh"] or _database_file(engine) is None:
            return original(engine)
        template = Path(folder) / "mlflow.db"
        with _lock:
            if not template.exists():  # the session's first store: MLflow migrates it; keep the result
                original(engine)
                part = template.with_suffix(".part")
                with engine.connect() as conn, closing(sqlite3.connect(part)) as out:
                    conn.connection.driver_connection.backup(out)
                part.replace(template)
                return None
        read_only = f"{template.as_uri()}?mode=ro"
        with engine.connect() as conn, closing(sqlite3.connect(read_only, uri=True)) as src:
            src.backup(conn.connection.driver_connection)
        return None

    initialize_tables.__wrapped__ = original
    return initialize_tables


REGISTRY = "mlflow.store.model_registry.sqlalchemy_store"  # imports the function by name


def _patch(module) -> None:
    if not hasattr(module._initialize_tables, "__wrapped__"):
        module._initialize_tables = _from_template(module._initialize_tables)
    if REGISTRY in sys.modules:
        sys.modules[REGISTRY]._initialize_tables = module._initialize_tables


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches MODULE right after it is executed, before other MLflow modules import its function."""

    def find_spec(self, name, path, target=None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Patch MLflow now if it is imported, else when it is."""
    if MODULE in sys.modules:
        _patch(sys.modules[MODULE])
    elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
