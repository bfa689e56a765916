"""The zoo's one optimisation loop and its one checkpoint type."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nanog1.optim import build_optimizer
from nanog1.zoo.checkpoints import load_model, write_model_file
from nanog1.zoo.classifier import accuracy, epoch_batches
from nanog1.zoo.loop import evaluating, optimise
from nanog1.zoo.vision import VisionConfig, VisionEncoder


def test_optimise_steps_calls_back_and_lowers_a_regression_loss():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]])
    opt, sched = build_optimizer(model, 0.05, 0.0, 0, 200)
    seen = []
    done = optimise(model, (x for _ in range(200)),
                    lambda b: {"total": ((model(b) - y) ** 2).mean(), "abs": (model(b) - y).abs().mean()},
                    opt, sched, grad_clip=1.0, on_step=lambda s, losses: seen.append((s, set(losses))))
    assert [s for s, _ in seen] == list(range(1, 201)) and seen[0][1] == {"total", "abs"}
    assert len(done.losses) == 200 and done.last["total"] < 0.01 * done.losses[0]["total"]
    assert done.seconds > 0



def test_evaluating_switches_to_eval_and_restores_the_mode_before_also_on_error():
    model = nn.Sequential(nn.Dropout(0.5))
    with evaluating(model) as m:
        assert m is model and not model.training
    assert model.training
    model.eval()
    with evaluating(model):
        assert not model.training
    assert not model.training
    model.train()
    with pytest.raises(RuntimeError, match="boom"), evaluating(model):
        raise RuntimeError("boom")
    assert model.training and model[0].training

def test_epoch_batches_cover_every_sample_once_and_accuracy_counts_argmax():
    inputs, labels = (torch.arange(10).float()[:, None],), torch.arange(10)
    seen = torch.cat([y for _, y in epoch_batches(inputs, labels, 3, torch.Generator().manual_seed(1))])
    assert sorted(seen.tolist()) == list(range(10))
    logits = nn.Linear(1, 2)
    with torch.no_grad():
        logits.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        logits.bias.zero_()
    # inputs -0.5 … 8.5: only the first is negative, so only it is class 0
    assert accuracy(logits, (torch.arange(10).float()[:, None] - 0.5,), (torch.arange(10) > 0).long()) == 1.0


def test_one_model_file_round_trips_extras_and_refuses_another_kind(tmp_path):
    model = VisionEncoder(VisionConfig(hidden_size=16, layers=1, rank=4, heads=2, num_classes=3),
                          ["a", "b", "c"]).eval()
    write_model_file(tmp_path / "m.pt", "vision", model, {"acc": 0.5}, class_names=model.class_names,
                     note="x")
    loaded = load_model(tmp_path / "m.pt", "vision",
                        lambda blob: VisionEncoder(VisionConfig(**blob["config"]), blob["class_names"]))
    images = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(loaded.model(images), model(images))
    assert loaded.metrics == {"acc": 0.5} and loaded.extra == {"class_names": ["a", "b", "c"], "note": "x"}
    assert not loaded.model.training
    with pytest.raises(ValueError, match="not a NanoG1 audio checkpoint"):
        load_model(tmp_path / "m.pt", "audio", lambda blob: model)
