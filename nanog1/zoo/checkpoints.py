"""The zoo's one checkpoint type: a model file (config, weights, metrics, extras) tagged with its kind.

Text, vision, audio and world models all save through :func:`write_model_file` and load through
:func:`load_model`, which refuses a file of another kind by name and reads with
`weights_only=True`, so no code is unpickled. A file read back is a :class:`Loaded`: the model in
eval mode, the metrics it was saved with and its extra fields (class names, tokeniser, environment).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from torch import nn

from nanog1.errors import UserError
from nanog1.io import load_weights

#: Fields every model file holds; everything else is an extra.
CORE_FIELDS = ("kind", "config", "state_dict", "metrics")


@dataclass
class Loaded:
    """A zoo model file read back: the model (eval mode), its saved metrics and extra fields."""

    model: nn.Module
    metrics: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def write_model_file(path: Path | str, kind: str, model: nn.Module, metrics: dict | None = None,
                     **extra: object) -> None:
    """Save `model` (its `config` dataclass and weights) with `metrics` and `extra` fields, atomically."""
    from nanog1.checkpoint import atomic_save

    blob = {"kind": kind, "config": asdict(model.config), "state_dict": model.state_dict(),
            "metrics": dict(metrics or {}), **extra}
    atomic_save(blob, Path(path))


def read_model_file(path: Path | str, kind: str, label: str | None = None) -> dict:
    """The saved dict of a `kind` model file; a clear error names the file when it holds another kind."""
    blob = load_weights(path)
    if not isinstance(blob, dict) or blob.get("kind") != kind:
        found = blob.get("kind") if isinstance(blob, dict) else type(blob).__name__
        raise UserError(f"{path}: not a NanoG1 {label or kind} checkpoint (kind={found!r})")
    return blob


def load_model(path: Path | str, kind: str, build: Callable[[dict], nn.Module],
               label: str | None = None) -> Loaded:
    """Read a `kind` model file, build the model from its saved dict with `build`, load its weights."""
    blob = read_model_file(path, kind, label)
    model = build(blob)
    model.load_state_dict(blob["state_dict"])
    extra = {k: v for k, v in blob.items() if k not in CORE_FIELDS}
    return Loaded(model.eval(), blob.get("metrics", {}), extra)
