"""Text corpora for QuatrixLM: the Python language reference that ships with every Python, or any file.

``pydoc_data.topics`` holds the reference's help topics (about 0.47 MB of English prose and code
with Python 3.11), so the default corpus needs no download. Token streams are split into
train/validation by position (the last fraction is validation) so the two never share text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def default_corpus() -> str:
    """The Python language reference topics from ``pydoc_data.topics``, in sorted topic order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))


def load_corpus(path: Path | str | None = None) -> str:
    """The text of ``path`` (UTF-8), or the default corpus when ``path`` is None."""
    if path is None:
        return default_corpus()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        line = path.read_bytes()[:err.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text ({err.reason})") from err
    if not text.strip():
        raise ValueError(f"{path}:1: the corpus is empty")
    return text


def split_tokens(ids: list[int] | np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) int64 arrays: the first 1 − ``val_fraction`` of the stream, then the rest."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    ids = np.asarray(ids, dtype=np.int64)
    cut = int(round(len(ids) * (1.0 - val_fraction)))
    return ids[:cut], ids[cut:]


def unigram_cross_entropy(train: np.ndarray, val: np.ndarray, vocab_size: int) -> float:
    """Validation cross-entropy (nats/token) of the train set's add-one-smoothed unigram distribution.

    The baseline an LM must beat: it knows token frequencies and nothing about context.
    """
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[val].mean())
