"""Figures logged with every run: confusion matrix, per-type recall/F1 and learning curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from nanog1.io import atomic_write_with  # noqa: E402


def _save(fig, path: Path) -> None:
    atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    plt.close(fig)


def confusion_png(table: pd.DataFrame, path: Path) -> None:
    """Row-normalised confusion matrix heat map (true types down, predicted across)."""
    norm = table.div(table.sum(1).clip(lower=1), axis=0)
    size = max(4.0, 0.32 * len(table) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm.to_numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(table.index)), table.index, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, fraction=0.04, label="share of true type")
    _save(fig, path)


def report_png(report: pd.DataFrame, path: Path) -> None:
    """Per-type recall and F1 as horizontal bars."""
    fig, ax = plt.subplots(figsize=(6, max(3.0, 0.25 * len(report) + 1)))
    report[["recall", "f1"]].iloc[::-1].plot.barh(ax=ax)
    ax.set_xlim(0, 1)
    ax.set_xlabel("score")
    _save(fig, path)


def learning_curves_png(history: list[dict], path: Path) -> None:
    """Training and validation loss per epoch, with validation top-1/macro-F1 when present."""
    df = pd.DataFrame(history).set_index("epoch")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    df[[c for c in ("train_loss", "val_loss") if c in df]].plot(ax=axes[0], title="loss")
    scores = [c for c in df if c in ("val_top1", "val_macro_f1") or c.startswith("val_exposure_cosine")]
    if scores:
        df[scores].plot(ax=axes[1], title="validation", ylim=(0, 1))
    else:
        axes[1].axis("off")
    _save(fig, path)
