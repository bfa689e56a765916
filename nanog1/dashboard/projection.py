"""Two-dimensional projections of sample embeddings (`obsm['X_nanog1']`) for the Embeddings page."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

METHODS = ("PCA", "UMAP")


@dataclass(frozen=True)
class ProjectionConfig:
    """Which projection to draw; UMAP settings are ignored for PCA."""

    method: str = "PCA"
    n_neighbors: int = 15
    min_dist: float = 0.1
    seed: int = 0


def project(x: np.ndarray, config: ProjectionConfig) -> np.ndarray:
    """n × 2 coordinates of the rows of `x` by PCA (scikit-learn) or UMAP (umap-learn)."""
    return project_with_titles(x, config)[0]


def project_with_titles(x: np.ndarray, config: ProjectionConfig) -> tuple[np.ndarray, tuple[str, str]]:
    """Coordinates and axis titles; PCA titles carry each component's share of the variance."""
    coords = _project(x, config)
    if config.method != "PCA":
        return coords, (f"{config.method} 1", f"{config.method} 2")
    x = np.asarray(x, dtype=np.float64)
    total = float(((x - x.mean(axis=0)) ** 2).sum())
    shares = [float((c - c.mean()) @ (c - c.mean())) / total if total > 0 else 0.0 for c in coords.T]
    return coords, (f"PC1 ({shares[0]:.1%} of variance)", f"PC2 ({shares[1]:.1%} of variance)")


def _project(x: np.ndarray, config: ProjectionConfig) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] < 3:
        raise ValueError(f"need at least 3 samples with 2-D embeddings, got shape {x.shape}")
    if config.method == "PCA":
        from sklearn.decomposition import PCA

        n = min(2, x.shape[1])
        coords = PCA(n_components=n, random_state=config.seed).fit_transform(x)
        return coords if n == 2 else np.column_stack([coords[:, 0], np.zeros(len(x))])
    if config.method == "UMAP":
        import umap

        cache_umap_kernels()
        reducer = umap.UMAP(
            n_neighbors=min(config.n_neighbors, x.shape[0] - 1),
            min_dist=config.min_dist,
            random_state=config.seed,
            n_jobs=1,
        )
        return reducer.fit_transform(x)
    raise ValueError(f"unknown projection {config.method!r}; expected one of {METHODS}")


@functools.cache
def cache_umap_kernels() -> None:
    """Let numba keep every umap-learn kernel it compiles on disk, not only those umap-learn marks
    `cache=True`: its parallel ones (exact kNN, distance smoothing, membership strengths) and the layout
    epoch were compiled again in each new process, about 25 s of a dashboard server's first UMAP fit on
    2 cores (3 s once on disk). Same compiled code, same coordinates. Where numba finds no writable cache
    folder it compiles as before."""
    import umap.layouts
    import umap.umap_
    import umap.utils
    from numba.core.registry import CPUDispatcher

    for module in (umap.umap_, umap.utils, umap.layouts):
        for kernel in list(vars(module).values()):
            if isinstance(kernel, CPUDispatcher):
                try:
                    kernel.enable_caching()
                except RuntimeError:  # numba: "cannot cache function ...: no locator available"
                    return
