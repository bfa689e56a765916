"""Classification metrics (top-k, macro-F1, per-type recall, confusion) and exposure agreement.

scikit-learn is imported inside the functions that use it: `nanog1 predict` imports this module (through
the training loop's imports) and needs none of them, and importing scikit-learn costs about a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def top_k_accuracy(proba: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of samples whose true class is among the k most probable."""
    k = min(k, proba.shape[1])
    top = np.argsort(-proba, axis=1)[:, :k]
    return float((top == labels[:, None]).any(1).mean())


def classification_metrics(proba: np.ndarray, labels: np.ndarray, classes: list[str]) -> dict[str, float]:
    """top-1, top-3, macro-F1 and balanced accuracy on the labelled samples."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    keep = labels >= 0
    proba, labels = proba[keep], labels[keep]
    if labels.size == 0:
        return {}
    pred = proba.argmax(1)
    ids = list(range(len(classes)))
    recall = precision_recall_fscore_support(labels, pred, labels=ids, zero_division=0)[1]
    present = np.isin(ids, labels)
    return {
        "top1": top_k_accuracy(proba, labels, 1),
        "top3": top_k_accuracy(proba, labels, 3),
        "macro_f1": float(f1_score(labels, pred, labels=np.unique(labels), average="macro", zero_division=0)),
        "balanced_accuracy": float(recall[present].mean()),
    }


def per_type_report(proba: np.ndarray, labels: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Per-type precision, recall, F1 and support (rows = types)."""
    from sklearn.metrics import precision_recall_fscore_support

    keep = labels >= 0
    pred = proba[keep].argmax(1)
    p, r, f, s = precision_recall_fscore_support(
        labels[keep], pred, labels=list(range(len(classes))), zero_division=0
    )
    return pd.DataFrame(
        {"precision": p, "recall": r, "f1": f, "support": s}, index=pd.Index(classes, name="type")
    )


def confusion_table(proba: np.ndarray, labels: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """Confusion counts, rows = true type, columns = predicted type."""
    from sklearn.metrics import confusion_matrix

    keep = labels >= 0
    cm = confusion_matrix(labels[keep], proba[keep].argmax(1), labels=list(range(len(classes))))
    return pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean row-wise cosine similarity over rows where both are non-zero."""
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    keep = (na > 0) & (nb > 0)
    if not keep.any():
        return float("nan")
    return float(((a[keep] * b[keep]).sum(1) / (na[keep] * nb[keep])).mean())
