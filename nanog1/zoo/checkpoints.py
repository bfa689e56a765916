"""One file per trained model: config, names, weights and metrics, tagged with the model's kind.

The audio, vision and world models share this format; `read_model_file` refuses a file of another
kind by name, and loads with `weights_only=True`, so no code is unpickled.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from torch import nn

from nanog1.errors import UserError
from nanog1.io import load_weights


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
