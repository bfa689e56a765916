"""Stratified train/validation/test splits and k-fold CV on labelled samples (scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from nanog1.errors import UserError


def _pinned_to_train(labels: np.ndarray) -> np.ndarray:
    """Samples that can never be validation or test: an unknown or too-rare type (label -1) or the only
    sample of its type here. A held-out sample of a type the model has no class for (or cannot also
    have learnt) cannot be scored, and one such sample used to turn the whole split unstratified
    (issue 27: an MC3 cohort's single CESC tumour was put in the test fold). None pinned when no label
    is known (an unlabelled cohort splits at random)."""
    known = labels >= 0
    if not known.any():
        return np.zeros(len(labels), dtype=bool)
    values, counts = np.unique(labels[known], return_counts=True)
    single = np.isin(labels, values[counts < 2])
    return ~known | single


def train_val_split(labels: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One split of all samples, stratified by type over the samples that may be held out; samples
    pinned to train (`_pinned_to_train`) always train. Plain random split when no label is known."""
    pinned = _pinned_to_train(labels)
    idx = np.flatnonzero(~pinned)
    strata = labels[idx] if (labels >= 0).any() else None
    try:
        train, val = train_test_split(idx, test_size=val_fraction, random_state=seed, stratify=strata)
    except ValueError:  # too few held-out samples for one per type: random over the eligible ones
        train, val = train_test_split(idx, test_size=val_fraction, random_state=seed)
    return np.sort(np.concatenate([train, np.flatnonzero(pinned)])), np.sort(val)


def train_val_test_split(labels: np.ndarray, val_fraction: float, test_fraction: float,
                          seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test indices, fixed by `seed`: the test fold is cut first and never seen
    in training or tuning; validation (epoch choice, temperature, abstention) comes from the rest."""
    if test_fraction <= 0:
        train, val = train_val_split(labels, val_fraction, seed)
        return train, val, np.zeros(0, dtype=np.int64)
    rest, test = train_val_split(labels, test_fraction, seed)
    inner_tr, inner_val = train_val_split(labels[rest], val_fraction / (1.0 - test_fraction), seed)
    return rest[inner_tr], rest[inner_val], test


def split_roles(n: int, train: np.ndarray, val: np.ndarray, test: np.ndarray) -> list[str]:
    """obs['split'] values: 'train' / 'val' / 'test' per sample (nanog1.schema.SPLITS)."""
    roles = np.full(n, "train", dtype=object)
    roles[val], roles[test] = "val", "test"
    return [str(r) for r in roles]


def kfold_splits(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold (train, test) index pairs over all samples; the same for every model."""
    if folds < 2:
        raise UserError(f"k-fold needs --folds >= 2, got {folds}")
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    y = np.where(labels >= 0, labels, -1)
    return [(np.sort(tr), np.sort(te)) for tr, te in skf.split(np.zeros(len(y)), y)]
