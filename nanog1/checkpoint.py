"""Resumable checkpoints: model, optimiser, scheduler, every RNG, step/epoch and early-stopping state.

Saved atomically and read back weights-only (nanog1.io), so everything inside is tensors, numbers,
strings, lists and dicts.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from nanog1.io import atomic_write_with, load_weights


def rng_state() -> dict:
    """Python, numpy, torch (and CUDA) generator states in weights_only-safe form."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what rng_state() captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def atomic_save(obj: dict, path: Path) -> None:
    """torch.save atomically (a kill never leaves half a file; nanog1.io)."""
    atomic_write_with(path, lambda tmp: torch.save(obj, tmp))


def load(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint or model file safely (weights only; a missing or unreadable file is a UserError)."""
    return load_weights(path, map_location)
