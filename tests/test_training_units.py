"""Training building blocks against plain references: schedule, weights, losses, metrics, RNG, splits."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from nanog1 import checkpoint as ckpt
from nanog1.encoder import losses
from nanog1.encoder.config import TrainConfig, load_config
from nanog1.encoder.cv import kfold_splits, train_val_split
from nanog1.encoder.metrics import classification_metrics, confusion_table, mean_cosine, top_k_accuracy
from nanog1.encoder.model import N_CHANNELS, EncoderOutput
from nanog1.optim import build_optimizer, warmup_cosine


def test_warmup_cosine_matches_formula():
    warm, total = 5, 25
    for step in range(total + 3):
        if step < warm:
            want = (step + 1) / warm
        else:
            p = min(1.0, (step - warm) / (total - warm))
            want = 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * p))
        assert warmup_cosine(step, warm, total) == pytest.approx(want)


def test_scheduler_follows_the_multiplier():
    model = torch.nn.Linear(3, 2)
    opt, sched = build_optimizer(model, 0.1, 0.01, 3, 10)
    seen = []
    for _ in range(10):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(seen, [0.1 * warmup_cosine(s, 3, 10) for s in range(10)])
    assert opt.param_groups[1]["weight_decay"] == 0.0  # the bias group


def test_class_weights_inverse_frequency():
    labels = np.array([0, 0, 0, 1, 2, 2, -1])
    w = losses.class_weights(labels, 4).numpy()
    raw = np.array([1 / 3, 1, 1 / 2, 0])
    np.testing.assert_allclose(w, raw * 3 / raw.sum(), rtol=1e-6)


def _out(logp: dict, batch: int = 4) -> EncoderOutput:
    return EncoderOutput(
        embedding=torch.zeros(batch, 2),
        tokens=torch.zeros(batch, 1, 2),
        type_logits=None,
        exposure_logp=logp,
        masked_pred=torch.zeros(batch, N_CHANNELS),
    )


def test_exposure_loss_matches_numpy_kl():
    rng = np.random.default_rng(0)
    target = rng.dirichlet(np.ones(5), size=4)
    target[2] = 0.0  # a sample without mutations is left out
    logits = rng.normal(size=(4, 5))
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    sig = rng.dirichlet(np.ones(96), size=5).T  # 96 x 5
    counts = np.zeros((4, N_CHANNELS))
    counts[:, :96] = rng.poisson(4.0, size=(4, 96))
    got = losses.exposure_loss(
        _out({"SBS96": torch.tensor(logp)}),
        {"SBS96": torch.tensor(target)},
        torch.tensor(counts),
        {"SBS96": torch.tensor(sig)},
        recon_weight=0.5,
    )
    keep = [0, 1, 3]
    kl = np.mean(
        [
            np.sum(np.where(target[i] > 0, target[i] * (np.log(np.maximum(target[i], 1e-300)) - logp[i]), 0))
            for i in keep
        ]
    )
    obs = counts[:, :96] / counts[:, :96].sum(1, keepdims=True)
    recon = np.exp(logp) @ sig.T
    rkl = np.mean(
        [
            np.sum(np.where(obs[i] > 0, obs[i] * (np.log(np.maximum(obs[i], 1e-300)) - np.log(recon[i])), 0))
            for i in keep
        ]
    )
    assert float(got) == pytest.approx(kl + 0.5 * rkl, rel=1e-6)


def test_token_mask_respects_padding_and_masks_one_at_least():
    torch.manual_seed(0)
    padding = torch.zeros(50, 20, dtype=torch.bool)
    padding[:, 15:] = True
    mask = losses.draw_token_mask(padding, 0.0)
    assert (mask.sum(1) == 1).all() and not (mask & padding).any()
    mask = losses.draw_token_mask(padding, 0.3)
    assert not (mask & padding).any()
    assert 0.2 < mask[:, :15].float().mean() < 0.45


def test_classification_metrics_against_references():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(5), size=200)
    labels = rng.integers(0, 5, 200)
    labels[:10] = -1  # unknown types are ignored
    m = classification_metrics(proba, labels, list("abcde"))
    keep = labels >= 0
    pred = proba[keep].argmax(1)
    assert m["top1"] == pytest.approx((pred == labels[keep]).mean())
    ranks = [(proba[i] > proba[i, labels[i]]).sum() for i in np.flatnonzero(keep)]
    assert m["top3"] == pytest.approx(np.mean(np.array(ranks) < 3))
    assert m["macro_f1"] == pytest.approx(f1_score(labels[keep], pred, average="macro"))
    assert top_k_accuracy(proba[keep], labels[keep], 5) == 1.0
    table = confusion_table(proba, labels, list("abcde"))
    assert table.to_numpy().sum() == keep.sum() and np.trace(table.to_numpy()) == (pred == labels[keep]).sum()


def test_mean_cosine_reference():
    rng = np.random.default_rng(2)
    a, b = rng.random((6, 4)), rng.random((6, 4))
    b[3] = 0
    want = np.mean([a[i] @ b[i] / np.linalg.norm(a[i]) / np.linalg.norm(b[i]) for i in (0, 1, 2, 4, 5)])
    assert mean_cosine(a, b) == pytest.approx(want)


def test_rng_state_round_trip_through_weights_only(tmp_path):
    ckpt.seed_everything(5)
    state = ckpt.rng_state()
    path = tmp_path / "rng.pt"
    ckpt.atomic_save({"rng": state}, path)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    ckpt.set_rng_state(ckpt.load(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    assert [p.name for p in tmp_path.iterdir()] == ["rng.pt"]  # no temp file left behind


def test_splits_are_stratified_and_repeatable():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    tr, val = train_val_split(labels, 0.2, seed=0)
    assert len(np.intersect1d(tr, val)) == 0 and len(tr) + len(val) == 100
    np.testing.assert_array_equal(np.bincount(labels[val]), [2, 4, 6, 8])
    folds = kfold_splits(labels, 5, seed=3)
    again = kfold_splits(labels, 5, seed=3)
    for (a, b), (c, d) in zip(folds, again, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    np.testing.assert_array_equal(np.sort(np.concatenate([te for _, te in folds])), np.arange(100))
    for _, te in folds:
        np.testing.assert_array_equal(np.bincount(labels[te]), [2, 4, 6, 8])


def test_config_from_yaml_and_overrides(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("epochs: 7\nmixer: mha_rank\n")
    cfg = load_config(path, {"epochs": 3, "hidden": None})
    assert (cfg.epochs, cfg.mixer, cfg.hidden) == (3, "mha_rank", TrainConfig().hidden)
    path.write_text("epochz: 7\n")
    with pytest.raises(ValueError, match="epochz"):
        load_config(path, {})
    with pytest.raises(ValueError, match="task"):
        TrainConfig(task="survival")
