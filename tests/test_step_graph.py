"""The graphed training step (nanog1.core.step_graph): switch, per-shape state machine, fallbacks, sync-free
losses on CPU; on the GPU a graphed step equals the eager step (losses and parameters), schedules included."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from nanog1.core.step_graph import ENV, GraphedStep, batch_key, capturable_kwargs, graphs_wanted
from nanog1.encoder import losses
from nanog1.encoder.model import EncoderOutput


def test_switch_env_overrides_config_and_cpu_never_graphs(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    assert graphs_wanted(True, "cuda") and not graphs_wanted(False, "cuda")
    assert not graphs_wanted(True, "cpu")
    monkeypatch.setenv(ENV, "0")
    assert not graphs_wanted(True, "cuda")
    monkeypatch.setenv(ENV, "1")
    assert graphs_wanted(False, "cuda") and not graphs_wanted(True, "cpu")
    monkeypatch.setenv(ENV, "maybe")
    with pytest.raises(ValueError, match=ENV):
        graphs_wanted(True, "cuda")
    assert capturable_kwargs(True) == {"capturable": True, "fused": True} and capturable_kwargs(False) == {}


def test_batch_key_separates_shapes_dtypes_nesting_and_values():
    a = {"x": torch.zeros(4, 3), "e": {"g": torch.zeros(4, dtype=torch.long)}}
    assert batch_key(a) == batch_key({"x": torch.ones(4, 3), "e": {"g": torch.ones(4, dtype=torch.long)}})
    assert batch_key(a) != batch_key({"x": torch.zeros(5, 3), "e": {"g": torch.zeros(5, dtype=torch.long)}})
    assert batch_key(a) != batch_key({"x": torch.zeros(4, 3, dtype=torch.float64), "e": a["e"]})
    assert batch_key(a) != batch_key({"x": a["x"], "e": {"h": a["e"]["g"]}})
    assert batch_key({"x": a["x"], "n": 1}) != batch_key({"x": a["x"], "n": 2})


def _linear_step(model, opt):
    def step(batch):
        loss = F.mse_loss(model(batch["x"]), batch["y"])
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}
    return step


def test_cpu_step_is_eager_and_trains_like_a_plain_loop():
    torch.manual_seed(0)
    batches = [{"x": torch.randn(8, 4), "y": torch.randn(8, 2)} for _ in range(5)]
    models = [torch.nn.Linear(4, 2) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    opts = [torch.optim.AdamW(m.parameters(), lr=0.1) for m in models]
    stepper = GraphedStep(_linear_step(models[0], opts[0]), opts[0], "cpu", enabled=True)
    assert not stepper.enabled
    for b in batches:
        got = stepper(b)["loss"]
        opts[1].zero_grad(set_to_none=True)
        want = F.mse_loss(models[1](b["x"]), b["y"])
        want.backward()
        opts[1].step()
        assert torch.equal(got, want.detach())
    assert stepper.stats.eager == 5 and stepper.stats.captured == 0
    for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(p, q)


class _Scripted(GraphedStep):
    """The per-shape state machine with the CUDA parts replaced by records (CPU)."""

    def __init__(self, fail_shapes=(), sync_shapes=(), **kw):
        model = torch.nn.Linear(3, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        super().__init__(lambda b: {"n": b["x"].sum()}, opt, "cpu", **kw)
        self.enabled, self.log = True, []
        self.fail_shapes, self.sync_shapes = fail_shapes, sync_shapes

    def _warm(self, entry, key, batch):
        self.log.append(("warm", len(batch["x"])))
        if len(batch["x"]) in self.sync_shapes:
            entry.eager_only = True
            self.stats.reasons[str(key)] = "the step synchronises with the host"
        return self._eager(batch)

    def _capture(self, entry, batch):
        self.log.append(("capture", len(batch["x"])))
        if len(batch["x"]) in self.fail_shapes:
            raise RuntimeError("operation not permitted when stream is capturing")
        entry.graph = object()
        self.stats.captured += 1

    def _replay(self, entry, batch):
        self.log.append(("replay", len(batch["x"])))
        self.stats.replays += 1
        return {"n": batch["x"].sum()}


def _b(n):
    return {"x": torch.ones(n, 3)}


def test_state_machine_warms_then_captures_once_per_shape_and_replays():
    s = _Scripted(warmup=2)
    for n in (4, 4, 4, 4, 2, 2, 2):
        s(_b(n))
    assert s.log == [("warm", 4), ("warm", 4), ("capture", 4), ("replay", 4), ("replay", 4),
                     ("warm", 2), ("warm", 2), ("capture", 2), ("replay", 2)]
    assert (s.stats.captured, s.stats.replays, s.stats.eager) == (2, 3, 4)


def test_failed_capture_and_syncing_shapes_stay_eager_and_still_step(monkeypatch):
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    s = _Scripted(fail_shapes=(4,), sync_shapes=(3,), warmup=1)
    outs = [s(_b(n))["n"].item() for n in (4, 4, 4, 3, 3, 3)]
    assert outs == [12.0, 12.0, 12.0, 9.0, 9.0, 9.0]  # every batch got its step
    assert s.log == [("warm", 4), ("capture", 4), ("warm", 3)]  # no retry, no capture of the syncing shape
    assert s.stats.failed == 1 and s.stats.captured == 0 and s.stats.eager == 6
    assert any("capture failed" in r for r in s.stats.reasons.values())
    assert any("synchronises" in r for r in s.stats.reasons.values())


def test_shapes_past_max_graphs_run_eager():
    s = _Scripted(warmup=1, max_graphs=1)
    for n in (4, 4, 5, 5, 5, 4):
        s(_b(n))
    assert [e for e in s.log if e[0] == "capture"] == [("capture", 4)]
    assert s.log[-1] == ("replay", 4) and s.stats.eager == 4


def _out(logits=None, emb=None, expo=None, masked=None):
    return EncoderOutput(embedding=emb if emb is not None else torch.zeros(3, 2), tokens=torch.zeros(3, 1, 2),
                         type_logits=logits, exposure_logp=expo or {},
                         masked_pred=masked if masked is not None else torch.zeros(()))


def test_sync_free_type_loss_equals_weighted_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 4, generator=g, requires_grad=True)  # type_loss computes in float32
    labels = torch.tensor([0, 3, -1, 2, 2, -1])
    w = torch.tensor([0.5, 1.0, 2.0, 0.7])
    got = losses.type_loss(_out(logits), labels, w)
    want = F.cross_entropy(logits, labels, weight=w, ignore_index=-1)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    ga, = torch.autograd.grad(got, logits)
    gb, = torch.autograd.grad(want, logits)
    torch.testing.assert_close(ga, gb, rtol=1e-6, atol=1e-8)
    none = losses.type_loss(_out(logits), torch.full((6,), -1), None)  # no labelled row: 0, zero gradient
    assert float(none) == 0.0 and torch.count_nonzero(torch.autograd.grad(none, logits)[0]) == 0


def test_sync_free_masked_and_exposure_losses_equal_their_indexed_forms():
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(4, 7, generator=g)  # the loss computes in float32
    counts = torch.randint(0, 9, (4, 7), generator=g).float()
    mask = torch.rand(4, 7, generator=g) < 0.4
    mask[0, 0] = True
    got = losses.masked_catalogue_loss(_out(masked=pred), counts, mask)
    torch.testing.assert_close(got, F.mse_loss(pred[mask], torch.log1p(counts)[mask]), rtol=1e-6, atol=0)
    logp = torch.log_softmax(torch.randn(4, 5, generator=g), -1)
    target = torch.rand(4, 5, generator=g)
    target[1] = 0.0  # a row without attribution is left out of the mean
    got = losses.exposure_loss(_out(expo={"X": logp}), {"X": target}, counts, {}, 0.0)
    keep = target.sum(-1) > 0
    want = (target[keep] * (torch.log(target[keep]) - logp[keep])).sum(-1).mean()
    torch.testing.assert_close(got, want, rtol=1e-6, atol=0)
    empty = losses.exposure_loss(_out(expo={"X": logp}), {"X": torch.zeros(4, 5)},
                                 counts, {}, 0.0)
    assert float(empty) == 0.0


# ---------------------------------------------------------------------------------------------- GPU


def _encoder(seed: int, mixer: str = "savo"):
    from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig

    torch.manual_seed(seed)
    cfg = MutationEncoderConfig(hidden=128, layers=2, rank=16, heads=2, mixer=mixer, dropout=0.0, n_types=5)
    return MutationEncoder(cfg).cuda()


def _catalogue_batches(n_batches: int, sizes=(16, 16, 7)):
    from nanog1.schema import N_CHANNELS

    g = torch.Generator().manual_seed(3)
    out = []
    for i in range(n_batches):
        b = sizes[i % len(sizes)]
        out.append({"counts": torch.poisson(torch.full((b, N_CHANNELS), 2.0), generator=g),
                    "labels": torch.randint(-1, 5, (b,), generator=g)})
    return out


def _encoder_step(model, opt):
    from nanog1.encoder.model import N_CHANNELS

    padding = torch.zeros(N_CHANNELS, dtype=torch.bool, device="cuda")
    padding[-10:] = True  # a cohort that did not measure the last channels: a key mask, as in training

    def step(batch):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(counts=batch["counts"], padding_mask=padding[None])
            loss = losses.type_loss(out, batch["labels"], None)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return {"loss": loss.detach()}
    return step


@pytest.mark.gpu
@pytest.mark.parametrize("mixer", ["savo", "qcompass"])  # key-masked: the rank-r kernel, no host sync
def test_graphed_encoder_step_equals_eager_step(mixer, monkeypatch):
    from nanog1.optim import build_optimizer

    monkeypatch.delenv(ENV, raising=False)
    models = [_encoder(0, mixer), _encoder(0, mixer)]
    opts = [build_optimizer(m, 3e-3, 0.01, 3, 20, **capturable_kwargs(True)) for m in models]
    steppers = [GraphedStep(_encoder_step(m, o), o, "cuda", enabled=e)
                for m, o, e in zip(models, [o for o, _ in opts], (True, False), strict=True)]
    for batch in _catalogue_batches(12):  # 8 batches of 16 samples, 4 of 7: two graphs
        got, want = (s(batch)["loss"] for s in steppers)
        for _, sched in opts:
            sched.step()  # the learning rate changes every step: a graph must not bake it in
        torch.testing.assert_close(got, want, rtol=2e-3, atol=1e-5)
    stats = steppers[0].stats
    assert stats.captured == 2 and stats.replays >= 5 and stats.failed == 0, stats
    assert steppers[1].stats.captured == 0
    start = _encoder(0, mixer).state_dict()
    for (name, p), q in zip(models[0].named_parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-5, msg=name)
    assert not torch.equal(models[0].state_dict()["stack.blocks.0.mixer.out_proj.weight"],
                           start["stack.blocks.0.mixer.out_proj.weight"])  # the graphs did train the model


@pytest.mark.gpu
def test_syncing_step_is_detected_and_stays_eager(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    model = torch.nn.Linear(4, 2).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=0.1, **capturable_kwargs(True))
    inner = _linear_step(model, opt)

    def step(batch):
        out = inner(batch)
        if float(out["loss"]) < 0:  # a host read of a device value: cannot be captured
            raise AssertionError
        return out
    stepper = GraphedStep(step, opt, "cuda")
    for _ in range(4):
        stepper({"x": torch.randn(8, 4), "y": torch.randn(8, 2)})
    assert stepper.stats.captured == 0 and stepper.stats.eager == 4
    assert any("synchronises" in r for r in stepper.stats.reasons.values())


@pytest.mark.gpu
def test_fit_on_cuda_with_graphs_matches_eager_fit(monkeypatch, tmp_path):
    from nanog1.encoder.config import TrainConfig
    from nanog1.encoder.data import CohortArrays
    from nanog1.encoder.distributed import DistInfo
    from nanog1.encoder.loop import fit
    from nanog1.schema import N_CHANNELS

    rng = np.random.default_rng(0)  # four types, each with its own channel rates (no AnnData needed)
    labels = np.repeat(np.arange(4), 20)
    rates = rng.gamma(1.0, 2.0, (4, N_CHANNELS))
    padding = np.zeros(N_CHANNELS, dtype=bool)
    padding[-12:] = True  # an unmeasured set: a key mask, as real cohorts have
    arrays = CohortArrays(sample_ids=[f"s{i}" for i in range(80)],
                          counts=rng.poisson(rates[labels]).astype(np.float32) * ~padding,
                          channel_padding=padding, labels=labels, classes=list("ABCD"))
    order = rng.permutation(80)
    tr, val = order[:60], order[60:]
    cfg = TrainConfig(hidden=64, layers=1, rank=16, heads=2, batch_size=8, lr=1e-2, warmup_frac=0.2, epochs=3,
                      dropout=0.0)
    made = []

    class Recorded(GraphedStep):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            made.append(self)
    monkeypatch.setattr("nanog1.encoder.loop.GraphedStep", Recorded)
    results = []
    for flag in ("1", "0"):
        monkeypatch.setenv(ENV, flag)
        results.append(fit(arrays, cfg, tmp_path / flag, tr, val, DistInfo(device=torch.device("cuda")),
                           resume=False))
    for (name, a), b in zip(results[0].model.state_dict().items(), results[1].model.state_dict().values(),
                            strict=True):
        torch.testing.assert_close(a, b, rtol=2e-2, atol=2e-3, msg=name)
    assert made[0].stats.captured >= 1 and made[0].stats.replays >= 10, made[0].stats
    assert made[1].stats.captured == 0
    losses_ = [[h["train_loss"] for h in r.history] for r in results]
    np.testing.assert_allclose(losses_[0], losses_[1], rtol=2e-2)
