"""Vision training loop with MLflow, `nanog1 vision train|predict`, and predictions from files."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.zoo.train_vision import VisionTrainConfig, predict_files, train_vision
from nanog1.zoo.vision import VisionConfig, load_checkpoint

TINY = VisionConfig(image_size=8, channels=1, patch_size=2, hidden_size=16, layers=1, rank=4, heads=2,
                    dropout=0.0)


def bar_images(root, per_class: int = 12, seed: int = 0):
    """Two classes an encoder must tell apart by position: a bright bar on the left or on the right."""
    rng = np.random.default_rng(seed)
    for cls, cols in (("left", slice(0, 3)), ("right", slice(5, 8))):
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 40, (8, 8)).astype(np.uint8)
            img[:, cols] = 220
            Image.fromarray(img).save(root / cls / f"{i}.png")
    return root


def test_train_vision_learns_a_folder_and_logs_to_mlflow(tmp_path):
    data = bar_images(tmp_path / "images")
    cfg = VisionTrainConfig(data=str(data), epochs=15, batch_size=8, lr=5e-3, test_fraction=0.25, model=TINY)
    result = train_vision(cfg, tmp_path / "run")
    assert result.test_accuracy == 1.0
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.params["train_images"] == "18"
    loaded = load_checkpoint(result.checkpoint)
    assert loaded.model.class_names == ["left", "right"]
    preds = predict_files(result.checkpoint, [data / "left" / "0.png", data / "right" / "0.png"])
    assert [label for _, label, _ in preds] == ["left", "right"]
    assert all(0.5 < prob <= 1.0 for _, _, prob in preds)


def test_a_size_mismatch_is_reported_before_training(tmp_path):
    cfg = VisionTrainConfig(model=VisionConfig(image_size=16))  # the digits are 8×8
    with pytest.raises(ValueError, match="expects"):
        train_vision(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_vision_cli_train_then_predict(tmp_path):
    data = bar_images(tmp_path / "images", per_class=4)
    runner = CliRunner()
    out = tmp_path / "vis"
    res = runner.invoke(app, ["vision", "train", "--out", str(out), "--data", str(data), "--epochs", "2",
                              "--hidden", "16", "--layers", "1", "--rank", "4", "--heads", "2"])
    assert res.exit_code == 0, res.output
    assert "test accuracy" in res.output and "mlflow run:" in res.output
    epochs = [line.split()[1] for line in res.stderr.splitlines() if line.startswith("epoch ")]
    assert epochs == ["1/2", "2/2"] and "train_loss" in res.stderr  # one progress line per epoch
    res = runner.invoke(app, ["vision", "predict", "--model", str(out / "model.pt"),
                              str(data / "left" / "0.png")])
    assert res.exit_code == 0, res.output
    assert res.output.split("\t")[1] in {"left", "right"}
    res = runner.invoke(app, ["vision", "predict", "--model", str(out / "model.pt")])  # sample photos
    assert res.exit_code == 0 and len(res.output.strip().splitlines()) == 2
