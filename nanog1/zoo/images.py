"""Image data for the vision encoder: scikit-learn's embedded digits and sample photos, or any folder.

Every loader returns float32 arrays [N, C, S, S] scaled to [0, 1]. A folder is read as
``root/<class name>/<image file>`` (classes in sorted order); files that cannot be read as images are
skipped and counted by reason, never silently.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class ImageSet:
    """Images [N, C, S, S] in [0, 1], integer labels [N], class names, and skipped files by reason."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    skipped: dict[str, int] = field(default_factory=dict)


def digits_dataset() -> ImageSet:
    """scikit-learn's 1,797 handwritten digits, 8×8 grey levels 0..16 -> [N, 1, 8, 8] in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]
    return ImageSet(images, digits.target.astype(np.int64), [str(c) for c in digits.target_names])


def to_array(image, image_size: int, channels: int) -> np.ndarray:
    """A PIL image resized to S×S, as float32 [C, S, S] in [0, 1] (C = 1 grey or 3 RGB)."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    resized = image.convert(mode).resize((image_size, image_size), Image.Resampling.BILINEAR)
    arr = np.asarray(resized, dtype=np.float32) / 255.0
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def image_folder(root: Path | str, image_size: int, channels: int) -> ImageSet:
    """Every readable image under ``root/<class>/``; unreadable or hidden files counted in ``skipped``."""
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{root}: no class folders (expected {root}/<class name>/<image files>)")
    images, labels, skipped = [], [], Counter()
    for label, name in enumerate(classes):
        for path in sorted(p for p in (root / name).rglob("*") if p.is_file()):
            if path.name.startswith("."):
                skipped["hidden file"] += 1
                continue
            try:
                with Image.open(path) as img:
                    images.append(to_array(img, image_size, channels))
                labels.append(label)
            except (UnidentifiedImageError, OSError):
                skipped["not a readable image"] += 1
    if not images:
        raise ValueError(f"{root}: no readable images in {len(classes)} class folders ({dict(skipped)})")
    return ImageSet(np.stack(images), np.asarray(labels, dtype=np.int64), classes, dict(skipped))


def sample_images(image_size: int, channels: int) -> tuple[np.ndarray, list[str]]:
    """scikit-learn's two embedded sample photos (china, flower) as [2, C, S, S] and their names."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    names = [Path(f).stem for f in photos.filenames]
    arrays = [to_array(Image.fromarray(img), image_size, channels) for img in photos.images]
    return np.stack(arrays), names
