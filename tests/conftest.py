"""Shared pytest fixtures and settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PCAWG = SHARED / "data" / "pcawg7"


def pytest_collection_modifyitems(config, items):
    """Skip `gpu` tests cleanly on machines without CUDA."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pcawg_dir() -> Path:
    """The PCAWG catalogues in ../shared, or a clean skip where they are absent."""
    if not PCAWG.is_dir():
        pytest.skip("../shared/data/pcawg7 is absent on this machine")
    return PCAWG


os.environ.setdefault("MPLBACKEND", "Agg")
