"""Stratified train/validation splits and k-fold CV on labelled samples (scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split


def _strata(labels: np.ndarray) -> np.ndarray | None:
    """Labels to stratify on, or None when there are no usable labels (unlabelled cohorts)."""
    known = labels[labels >= 0]
    if known.size == 0:
        return None
    _, counts = np.unique(known, return_counts=True)
    return labels if counts.min() >= 2 and (labels >= 0).all() else None


def train_val_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One stratified split of all samples (plain random split when labels cannot stratify)."""
    idx = np.arange(len(labels))
    train, val = train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=_strata(labels))
    return np.sort(train), np.sort(val)


def kfold_splits(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (train, test) index pairs over all samples; the same for every model."""
    if folds < 2:
        raise ValueError(f"k-fold needs folds >= 2, got {folds}")
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    y = np.where(labels >= 0, labels, -1)
    return [(np.sort(tr), np.sort(te)) for tr, te in skf.split(np.zeros(len(y)), y)]
