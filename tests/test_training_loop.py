"""Training loop: it learns, it resumes exactly after a stop, checkpoints load with weights_only=True."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from training_cohort import make_cohort

from nanog1 import checkpoint as ckpt
from nanog1.encoder.config import TrainConfig
from nanog1.encoder.cv import train_val_split
from nanog1.encoder.data import EVENT_FIELDS, Collate, cohort_arrays, thin_counts
from nanog1.encoder.loop import CHECKPOINT, TrainingInterrupted, fit, prepare_events

SMALL = dict(hidden=16, layers=1, rank=4, heads=2, batch_size=8, lr=1e-2, warmup_frac=0.05)


@pytest.fixture(scope="module")
def arrays():
    return cohort_arrays(make_cohort(n_per_type=20, seed=0))


def _split(arrays):
    return train_val_split(arrays.labels, 0.25, seed=0)


def test_cancer_type_learns_above_chance(arrays, tmp_path):
    tr, val = _split(arrays)
    cfg = TrainConfig(epochs=12, dropout=0.0, **SMALL)
    result = fit(arrays, cfg, tmp_path, tr, val, resume=False)
    assert result.metrics["val_top1"] >= 0.6  # four balanced types: chance is 0.25
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    saved = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert saved["epoch"] == len(result.history) - 1 and saved["step"] > 0


@pytest.mark.parametrize(
    "task,view,thin",
    [
        ("cancer_type", "catalogue", 0.0),
        ("multitask", "catalogue", 0.0),
        ("pretrain", "events", 0.0),
        ("exposures", "catalogue", 0.0),
        ("cancer_type", "catalogue", 0.5),  # thinning draws from the RNG the checkpoint restores
        ("multitask", "events", 0.5),  # so does thinning the events
    ],
)
def test_resume_after_stop_gives_identical_parameters(arrays, tmp_path, task, view, thin):
    tr, val = _split(arrays)
    cfg = TrainConfig(
        task=task, view=view, epochs=4, dropout=0.1, max_events=64, patience=100, thin=thin, **SMALL
    )
    straight = fit(arrays, cfg, tmp_path / "straight", tr, val, resume=False)
    with pytest.raises(TrainingInterrupted):
        fit(arrays, cfg, tmp_path / "resumed", tr, val, resume=True, stop_after_epochs=2)
    assert ckpt.load(tmp_path / "resumed" / CHECKPOINT)["epoch"] == 1
    torch.manual_seed(1234)  # a fresh process would start from other RNG states: the checkpoint restores them
    np.random.seed(99)
    resumed = fit(arrays, cfg, tmp_path / "resumed", tr, val, resume=True)
    for (name, a), (_, b) in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    last = [ckpt.load(tmp_path / d / CHECKPOINT)["model"] for d in ("straight", "resumed")]
    for name in last[0]:
        torch.testing.assert_close(last[0][name], last[1][name], rtol=0, atol=0, msg=name)
    assert [h["train_loss"] for h in straight.history] == [h["train_loss"] for h in resumed.history]


def test_thinning_changes_training_and_keeps_counts_bounded(arrays, tmp_path):
    tr, val = _split(arrays)
    plain = fit(arrays, TrainConfig(epochs=2, **SMALL), tmp_path / "plain", tr, val, resume=False)
    thinned = fit(arrays, TrainConfig(epochs=2, thin=0.5, **SMALL), tmp_path / "thin", tr, val, resume=False)
    assert plain.history[0]["train_loss"] != thinned.history[0]["train_loss"]
    torch.manual_seed(0)
    counts = torch.from_numpy(arrays.counts[:64])
    out = thin_counts(counts, 0.5)
    assert out.dtype == counts.dtype and torch.all(out <= counts) and torch.all(out[counts == 0] == 0)
    share = out.sum() / counts.sum()
    assert 0.65 < share < 0.85  # E[keep] = 0.75
    assert torch.equal(thin_counts(counts, 0.0), counts)
    with pytest.raises(ValueError, match="thin"):
        TrainConfig(thin=1.0)


def test_thinning_the_event_view_drops_events_not_just_counts(arrays):
    """With thin, the event view's input loses a U(1 - thin, 1) share of events, kept in order."""
    arrays = prepare_events(TrainConfig(view="events"), arrays)
    rows = np.arange(32)
    off = arrays.tokens["offsets"]
    plain = Collate(arrays, "events", max_events=10_000, train=True)(list(rows))
    torch.manual_seed(0)
    thinned = Collate(arrays, "events", max_events=10_000, train=True, thin=0.5)(list(rows))
    full = (~plain["event_padding"]).sum(1)
    kept = (~thinned["event_padding"]).sum(1)
    assert torch.equal(full, torch.from_numpy(off[rows + 1] - off[rows]))  # no thinning: every event
    assert torch.all(kept >= 1) and torch.all(kept <= full)
    assert 0.6 < kept.sum() / full.sum() < 0.9  # E[keep] = 0.75
    assert torch.all(thinned["counts"] <= plain["counts"])
    assert not torch.equal(thinned["counts"], plain["counts"])
    for r in range(len(rows)):  # the kept events are a subsequence of the sample's own events
        mine = [tuple(int(plain["events"][f][r, j]) for f in EVENT_FIELDS) for j in range(int(full[r]))]
        got = [tuple(int(thinned["events"][f][r, j]) for f in EVENT_FIELDS) for j in range(int(kept[r]))]
        it = iter(mine)
        assert all(any(g == m for m in it) for g in got)
    evaluation = Collate(arrays, "events", max_events=10_000, train=False, thin=0.5)(list(rows))
    assert torch.equal((~evaluation["event_padding"]).sum(1), full)  # evaluation never thins


def test_early_stopping_stops_and_keeps_best(arrays, tmp_path):
    tr, val = _split(arrays)
    cfg = TrainConfig(
        epochs=30,
        patience=2,
        lr=0.0,
        warmup_frac=0.0,
        dropout=0.0,
        **{k: v for k, v in SMALL.items() if k not in ("lr", "warmup_frac")},
    )
    result = fit(arrays, cfg, tmp_path, tr, val, resume=False)
    assert len(result.history) < 30
    assert len(result.history) - 1 - result.best_epoch == cfg.patience


def test_resume_refuses_changed_options(arrays, tmp_path):
    tr, val = _split(arrays)
    cfg = TrainConfig(epochs=2, **SMALL)
    with pytest.raises(TrainingInterrupted):
        fit(arrays, cfg, tmp_path, tr, val, stop_after_epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        fit(arrays, TrainConfig(epochs=3, **SMALL), tmp_path, tr, val)


def test_an_eight_event_window_at_evaluation_is_fixed_and_spans_the_tumour(arrays):
    """max_events 8 (the #28 recipe): a tumour with more events is read at evaluation (`predict`) through 8
    evenly spaced events in genomic order, first and last included, the same on every call; training draws
    a random 8 instead."""
    arrays = prepare_events(TrainConfig(view="events"), arrays)
    collate = Collate(arrays, "events", max_events=8, train=False)
    assert np.array_equal(collate._pick(20), [0, 3, 5, 8, 11, 14, 16, 19])
    assert np.array_equal(collate._pick(5), np.arange(5))  # short tumours: every event
    long = int(np.argmax(np.diff(arrays.tokens["offsets"])))
    assert arrays.tokens["offsets"][long + 1] - arrays.tokens["offsets"][long] > 8
    once, twice = collate([long]), collate([long])
    assert all(torch.equal(once["events"][f], twice["events"][f]) for f in EVENT_FIELDS)
    assert int((~once["event_padding"]).sum()) == 8
    torch.manual_seed(0)
    drawn = {tuple(Collate(arrays, "events", max_events=8, train=True)._pick(20)) for _ in range(5)}
    assert len(drawn) > 1
