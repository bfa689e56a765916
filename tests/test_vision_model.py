"""Vision encoder: shapes, routing maps against a hand-computed reference, prefix merge, data loaders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from nanog1.zoo.images import digits_dataset, image_folder, sample_images
from nanog1.zoo.train_vision import random_shift
from nanog1.zoo.vision import (
    VisionConfig,
    VisionEncoder,
    load_checkpoint,
    routing_grid,
    save_checkpoint,
)

CFG = dict(image_size=8, channels=1, patch_size=2, hidden_size=16, layers=2, rank=8, heads=2, num_classes=3)


def encoder(seed: int = 0, **extra) -> VisionEncoder:
    torch.manual_seed(seed)
    return VisionEncoder(VisionConfig(**(CFG | extra))).eval()


def test_logits_and_features_shapes():
    model = encoder()
    pixels = torch.rand(5, 1, 8, 8)
    assert model(pixels).shape == (5, 3)
    assert model.encode(pixels).shape == (5, 16, 16)
    with pytest.raises(ValueError, match=r"\[B, 1, 8, 8\]"):
        model(torch.rand(5, 3, 8, 8))


def test_routing_map_matches_a_hand_computed_softmax():
    model = encoder(1)
    pixels = torch.rand(2, 1, 8, 8)
    x = model.patch_embed(pixels).flatten(2).transpose(1, 2) + model.pos_emb
    block = model.stack.blocks[0]
    z = block.norm_mix(x)
    s = block.mixer.state_proj(z).view(2, 16, 2, 4).transpose(1, 2)
    a = block.mixer.action_proj(z).view(2, 16, 2, 4).transpose(1, 2)
    reference = torch.softmax(s @ a.transpose(-1, -2) / 2.0, dim=-1)  # scale = (r/h)^-1/2 = 1/2
    weights = model.routing_map(pixels, layer=0)
    torch.testing.assert_close(weights, reference)
    assert model.routing_map(pixels, layer=-1).shape == (2, 2, 16, 16)
    grid = routing_grid(weights, model.config.grid)
    assert grid.shape == (2, 4, 4)
    torch.testing.assert_close(grid.sum(dim=(1, 2)), torch.ones(2))  # column means of row-stochastic rows


def test_bidirectional_every_patch_reads_every_other():
    weights = encoder(2).routing_map(torch.rand(1, 1, 8, 8), layer=0)
    assert torch.all(weights > 0)


def test_prefix_merges_neighbouring_patches_before_projecting():
    model = encoder(3, lm_hidden=24, merge=2)
    pixels = torch.rand(2, 1, 8, 8)
    feats = model.encode(pixels)
    reference = torch.cat([feats[:, 0::2], feats[:, 1::2]], dim=-1) @ model.proj.weight.T + model.proj.bias
    torch.testing.assert_close(model.prefix(pixels), reference)
    with pytest.raises(ValueError, match="divide"):
        VisionConfig(**(CFG | {"merge": 3}))


def test_checkpoint_round_trip(tmp_path):
    model = VisionEncoder(VisionConfig(**CFG), ["a", "b", "c"]).eval()
    save_checkpoint(tmp_path / "model.pt", model, {"test_accuracy": 0.5})
    loaded = load_checkpoint(tmp_path / "model.pt")
    pixels = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(loaded.model(pixels), model(pixels))
    assert loaded.model.class_names == ["a", "b", "c"] and loaded.metrics == {"test_accuracy": 0.5}


def test_digits_and_sample_images_are_embedded():
    digits = digits_dataset()
    assert digits.images.shape == (1797, 1, 8, 8) and digits.images.dtype == np.float32
    assert 0.0 <= digits.images.min() and digits.images.max() <= 1.0
    assert sorted(set(digits.labels.tolist())) == list(range(10))
    photos, names = sample_images(16, 3)
    assert photos.shape == (2, 3, 16, 16) and len(names) == 2


def test_image_folder_reads_classes_and_counts_skipped_files(tmp_path):
    for cls, value in (("dark", 20), ("light", 230)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(np.full((10, 12), value + i, dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "dark" / "notes.txt").write_text("not an image")
    (tmp_path / "light" / ".DS_Store").write_bytes(b"\0")
    data = image_folder(tmp_path, image_size=4, channels=1)
    assert data.images.shape == (6, 1, 4, 4) and data.class_names == ["dark", "light"]
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(data.images[0], 20 / 255, atol=1e-6)
    assert data.skipped == {"not a readable image": 1, "hidden file": 1}
    with pytest.raises(ValueError, match="no class folders"):
        image_folder(tmp_path / "dark", 4, 1)


def test_random_shift_is_a_zero_filled_translation():
    images = torch.rand(6, 1, 5, 5) + 1.0  # strictly positive, so zero fill is visible
    shifted = random_shift(images, 1, torch.Generator().manual_seed(0))
    for before, after in zip(images, shifted, strict=True):
        padded = torch.nn.functional.pad(before, (1, 1, 1, 1))
        matches = [torch.equal(after, padded[:, dy:dy + 5, dx:dx + 5]) for dy in range(3) for dx in range(3)]
        assert any(matches)
    assert torch.equal(random_shift(images, 0, torch.Generator()), images)
