"""Class-balanced cancer-type training (issue 28): logit adjustment (tau x log prior added to the logits in
the loss only), class-weight powers, and the TCGA event benchmark's loss options and validation macro-F1."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from nanog1.encoder import losses
from nanog1.encoder.config import TrainConfig
from nanog1.encoder.model import EncoderOutput
from nanog1.errors import UserError

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _out(logits: torch.Tensor) -> EncoderOutput:
    return EncoderOutput(embedding=torch.zeros(len(logits), 2), tokens=torch.zeros(len(logits), 1, 2),
                         type_logits=logits, exposure_logp={}, masked_pred=torch.zeros(()))  # fmt: skip


def test_logit_offsets_are_tau_log_training_shares_and_absent_classes_count_once():
    labels = np.array([0, 0, 0, 1, -1, 0, 1, 3])  # -1 unlabelled; class 2 absent
    got = losses.logit_offsets(labels, 4, tau=1.5).numpy()
    want = 1.5 * np.log(np.array([4, 2, 1, 1]) / 8)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert np.all(np.isfinite(got))
    assert np.all(losses.logit_offsets(labels, 4, tau=0.0).numpy() == 0.0)


def test_type_loss_with_offsets_is_cross_entropy_of_the_shifted_logits():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(7, 4, generator=g, requires_grad=True)
    labels = torch.tensor([0, 3, -1, 2, 2, 1, 0])
    offsets = losses.logit_offsets(np.array([0, 0, 0, 0, 1, 2, 3, 3]), 4, tau=1.0)
    w = torch.tensor([0.5, 1.0, 2.0, 0.7])
    got = losses.type_loss(_out(logits), labels, w, offsets)
    want = F.cross_entropy(logits + offsets, labels, weight=w, ignore_index=-1)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    plain = losses.type_loss(_out(logits), labels, w)
    assert abs(got.item() - plain.item()) > 1e-3  # the offsets change the loss


def test_logit_adjusted_training_learns_balanced_logits_where_plain_learns_the_prior():
    """A bias-only classifier on 90 / 9 / 1 % labels: plain cross-entropy fits the bias to log prior, the
    logit-adjusted loss (tau 1) to a constant, i.e. a balanced classifier (Menon et al. 2021, eq. 10)."""
    labels = np.repeat([0, 1, 2], [900, 90, 10])
    y = torch.from_numpy(labels)
    offsets = losses.logit_offsets(labels, 3, tau=1.0)
    fitted = {}
    for name, off in (("plain", None), ("adjusted", offsets)):
        bias = torch.zeros(3, requires_grad=True)
        opt = torch.optim.LBFGS([bias], max_iter=200, line_search_fn="strong_wolfe")

        def closure(bias=bias, off=off, opt=opt):
            opt.zero_grad()
            loss = losses.type_loss(_out(bias.expand(len(y), 3)), y, None, off)
            loss.backward()
            return loss

        opt.step(closure)
        fitted[name] = bias.detach() - bias.detach().mean()
    prior = np.log(np.array([0.9, 0.09, 0.01]))
    np.testing.assert_allclose(fitted["plain"].numpy(), prior - prior.mean(), atol=1e-3)
    np.testing.assert_allclose(fitted["adjusted"].numpy(), 0.0, atol=1e-3)


@pytest.mark.parametrize("power", [0.0, 0.5, 1.0])
def test_class_weights_are_count_to_minus_power_with_mean_one(power):
    labels = np.array([0] * 16 + [1] * 4 + [3] * 1)  # class 2 absent: weight 0
    w = losses.class_weights(labels, 4, power).numpy()
    raw = np.array([16.0, 4.0, 1.0]) ** -power
    np.testing.assert_allclose(w[[0, 1, 3]], raw * 3 / raw.sum(), rtol=1e-6)
    assert w[2] == 0.0


def test_loss_context_carries_offsets_and_config_rejects_a_negative_tau():
    from nanog1.encoder.loop import loss_context

    arrays = SimpleNamespace(classes=["A", "B", "C"], labels=np.array([0, 0, 0, 1, 2, 2]),
                             channel_padding=np.zeros(4, dtype=bool), signature_matrices={})  # fmt: skip
    train = np.arange(5)  # the last C is outside the training split: shares 3/5, 1/5, 1/5
    ctx = loss_context(TrainConfig(logit_adjust=2.0, class_weighting=False), arrays, train, "cpu")
    np.testing.assert_allclose(ctx.logit_offsets.numpy(), 2.0 * np.log([0.6, 0.2, 0.2]), rtol=1e-6)
    assert ctx.class_weights is None
    off = loss_context(TrainConfig(), arrays, train, "cpu")
    assert off.logit_offsets is None and off.class_weights is not None
    with pytest.raises(UserError, match="logit_adjust"):
        TrainConfig(logit_adjust=-1.0)


def test_cli_train_passes_logit_adjust_and_class_weighting(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from nanog1 import cli
    from nanog1.encoder import run

    seen = {}

    def fake_train(cohort, out, cfg, *rest):  # the command's only job here: options -> TrainConfig
        seen["cfg"] = cfg
        return SimpleNamespace(run_id=None)

    monkeypatch.setattr(run, "train_cohort", fake_train)
    cohort = tmp_path / "c.h5ad"
    cohort.write_bytes(b"")
    args = ["train", str(cohort), "--out", str(tmp_path / "r"), "--logit-adjust", "1", "--no-class-weighting"]
    done = CliRunner().invoke(cli.app, args)
    assert done.exit_code == 0, done.output
    assert (seen["cfg"].logit_adjust, seen["cfg"].class_weighting) == (1.0, False)
    CliRunner().invoke(cli.app, args[:4])
    assert (seen["cfg"].logit_adjust, seen["cfg"].class_weighting) == (0.0, True)  # defaults unchanged


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_names_loss_options_and_pairs_them_with_their_twins():
    ev = _bench("tcga_events")
    job = dict(mixer="savo", init="scratch", frac=1.0, seed=1, gene_bag=300, hotspots=5, hotspot_key="both",
               embed_bags="", logit_adjust=1.0, class_weight_power=0.0, label_smoothing=0.1, tag="L8")
    name = ev.job_name(job)
    assert name == "events_savo_scratch_bag300_hot5both_la1_cw0_L8_p100_s1"
    default = ev.job_name(job | dict(logit_adjust=0.0, class_weight_power=0.5))
    assert default == "events_savo_scratch_bag300_hot5both_L8_p100_s1"  # earlier rows keep their names
    peers = _bench("tcga_typing")._peers(name)
    assert peers["no logit adj."] == "events_savo_scratch_bag300_hot5both_cw0_L8_p100_s1"
    assert peers["weights n^-0.5"] == "events_savo_scratch_bag300_hot5both_la1_L8_p100_s1"
    assert peers["MHA-r"] == name.replace("_savo_", "_mha_rank_")


def test_benchmark_macro_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    ev = _bench("tcga_events")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 6, 200)
    y[y == 4] = 5  # class 4 absent from the truth, predicted sometimes: not averaged (sklearn's labels=y)
    pred = np.where(rng.random(200) < 0.6, y, rng.integers(0, 6, 200))
    want = f1_score(y, pred, labels=np.unique(y), average="macro")
    assert ev.macro_f1(y, pred, 6) == pytest.approx(want, abs=1e-12)


def test_product_loss_takes_the_benchmarks_weight_power_and_label_smoothing():
    """TrainConfig class_weight_power / label_smoothing (issue 28/31: the product path's loss can be the
    TCGA event benchmark's): weights n_c^-power from the training split, torch's smoothing in type_loss."""
    from nanog1.encoder.loop import loss_context

    arrays = SimpleNamespace(classes=["A", "B"], labels=np.array([0, 0, 0, 0, 1]),
                             channel_padding=np.zeros(4, dtype=bool), signature_matrices={})  # fmt: skip
    ctx = loss_context(TrainConfig(class_weight_power=0.5, label_smoothing=0.1), arrays, np.arange(5), "cpu")
    w = ctx.class_weights.numpy()
    np.testing.assert_allclose(w[1] / w[0], 2.0, rtol=1e-6)  # (1/4)^-0.5 : the square root of 4
    assert ctx.label_smoothing == 0.1
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(6, 2, generator=g)
    labels = torch.tensor([0, 1, -1, 0, 0, 1])
    wt = torch.from_numpy(w)
    got = losses.type_loss(_out(logits), labels, wt, label_smoothing=0.1)
    want = F.cross_entropy(logits, labels, weight=wt, ignore_index=-1, label_smoothing=0.1)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    assert abs(got.item() - losses.type_loss(_out(logits), labels, wt).item()) > 1e-3
    for bad in (dict(class_weight_power=-0.5), dict(label_smoothing=1.0)):
        with pytest.raises(UserError, match=next(iter(bad))):
            TrainConfig(**bad)
