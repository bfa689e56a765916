"""umap-learn's numba kernels compiled once, in the background, before the UMAP test reads them.

The first UMAP fit in a process compiles umap-learn's kernels (about a minute of one core on CI's 2
cores); `nanog1.dashboard.projection` keeps them in numba's on-disk cache. `python tests/umap_warm_up.py`
(started at the start of the session by tests/conftest.py, at the lowest priority, so it runs on a core
the suite leaves idle) fits the test's own data once; the UMAP test, run at the end of the session, then
loads the compiled kernels and checks the projection as before.
"""

from __future__ import annotations

import os

import numpy as np


def two_clusters() -> np.ndarray:
    """60 samples in 6 dimensions: 30 around 0 and 30 around 12 (the UMAP test's data)."""
    rng = np.random.default_rng(1)
    return np.vstack([rng.normal(0, 1, (30, 6)), rng.normal(12, 1, (30, 6))])


if __name__ == "__main__":
    os.nice(19)
    from nanog1.dashboard.projection import ProjectionConfig, project

    project(two_clusters(), ProjectionConfig("UMAP", n_neighbors=10))
