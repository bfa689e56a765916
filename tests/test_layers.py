"""The rooms stay apart (docs/architecture.md, "Layout"): the model core knows no genomics or I/O, genomics
has no torch, the other modalities (zoo) never reach into the cancer encoder, and the shared edges (schema,
io, errors, progress, tracking, checkpoint, optim) import nothing above them. Every import counts, lazy
ones inside functions included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: area -> module prefixes its files may not import.
FORBIDDEN = {
    "core": ("nanog1.genomics", "nanog1.fitting", "nanog1.encoder", "nanog1.zoo", "nanog1.dashboard",
             "nanog1.pipeline", "nanog1.io", "anndata", "pysam", "mlflow", "pandas"),
    "genomics": ("torch", "nanog1.core", "nanog1.fitting", "nanog1.encoder", "nanog1.zoo",
                 "nanog1.dashboard"),
    "zoo": ("nanog1.encoder", "nanog1.genomics", "nanog1.fitting", "nanog1.dashboard", "nanog1.pipeline"),
    "fitting": ("nanog1.encoder", "nanog1.zoo", "nanog1.dashboard", "nanog1.pipeline", "nanog1.cli"),
    "encoder": ("nanog1.zoo", "nanog1.dashboard", "nanog1.pipeline", "nanog1.cli"),
    "edge": ("nanog1.encoder", "nanog1.zoo", "nanog1.fitting", "nanog1.dashboard", "nanog1.pipeline",
             "nanog1.cli", "nanog1.core"),
}
EDGES = {"schema", "io", "errors", "progress", "resources", "exports", "tracking", "checkpoint", "optim"}


def area(path: Path) -> str | None:
    rel = path.relative_to(ROOT / "nanog1")
    if len(rel.parts) > 1:
        return rel.parts[0] if rel.parts[0] in FORBIDDEN else None
    return "edge" if rel.stem in EDGES else None


def imports(source: str) -> set[str]:
    """Every module an import statement names (absolute imports; `from x import y` gives x)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def violations(path: Path) -> list[str]:
    room = area(path)
    if room is None:
        return []
    return sorted(m for m in imports(path.read_text())
                  if any(m == p or m.startswith(p + ".") for p in FORBIDDEN[room]))


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_each_room_imports_only_what_it_may(room: str):
    files = [p for p in (ROOT / "nanog1").rglob("*.py") if area(p) == room]
    assert files
    bad = {str(p.relative_to(ROOT)): v for p in files if (v := violations(p))}
    assert not bad, bad


def test_the_rule_sees_a_lazy_upward_import():
    source = "import numpy\n\ndef f():\n    from nanog1.encoder.model import Encoder\n    import torch.nn\n"
    assert imports(source) == {"numpy", "nanog1.encoder.model", "torch.nn"}
    genomics = [m for m in imports(source) if m.startswith(FORBIDDEN["genomics"])]
    assert sorted(genomics) == ["nanog1.encoder.model", "torch.nn"]
