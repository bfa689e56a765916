"""Tumour-level contrastive pretraining (nanog1.encoder.contrastive): the InfoNCE loss on hand-made
embeddings, the bag-drop augmentation, two-view batches of the product path (labels unused) and the
benchmark's pretraining rows (held-out patients left out)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from nanog1.encoder import contrastive as con


def _spread(b: int = 16, d: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, d, generator=torch.Generator().manual_seed(seed))


def test_identical_views_score_low_and_shuffled_pairs_high():
    z = _spread()
    same = con.info_nce(z, z.clone(), temperature=0.1)
    shuffled = con.info_nce(z, z[torch.roll(torch.arange(16), 1)], temperature=0.1)
    assert same.item() < 0.1  # each view finds its twin: near-zero cross-entropy
    assert shuffled.item() > 3.0  # the twin of row i is row i - 1's: the loss must see the wrong pairing
    noisy = con.info_nce(z, z + 0.5 * _spread(seed=1), temperature=0.1)
    assert same < noisy < shuffled
    assert con.view_accuracy(z, z) == 1.0
    assert con.view_accuracy(z, z[torch.roll(torch.arange(16), 1)]) == 0.0


def test_loss_gradient_reaches_the_encoder_through_the_head():
    head = con.ProjectionHead(8, out=4)
    x1 = _spread(6, 8).requires_grad_()
    x2 = (x1.detach() + 0.1 * _spread(6, 8, seed=3)).requires_grad_()
    loss = con.info_nce(head(x1), head(x2), temperature=0.2)
    loss.backward()
    assert x1.grad is not None and x1.grad.abs().sum() > 0 and x2.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_loss_rejects_mismatched_or_single_tumour_batches():
    with pytest.raises(ValueError, match="one shape"):
        con.info_nce(_spread(4, 8), _spread(5, 8))
    with pytest.raises(ValueError, match="at least 2"):
        con.info_nce(_spread(1, 8), _spread(1, 8))


def test_drop_present_drops_never_adds_and_views_are_independent():
    gen = torch.Generator().manual_seed(0)
    bag = (torch.rand(64, 300, generator=gen) < 0.2).float()
    a, b = con.drop_present(bag, 0.4, gen), con.drop_present(bag, 0.4, gen)
    for view in (a, b):
        assert ((view == 0) | (view == 1)).all()
        assert (view <= bag).all()  # never adds an entry
        kept = view.sum() / bag.sum()
        assert 0.55 < kept < 0.65  # ~60 % of the ~3,840 present entries kept (binomial sd ~0.8 %)
    assert not torch.equal(a, b)  # two calls: two independent views
    both = (a * b).sum() / bag.sum()
    assert 0.32 < both < 0.40  # independent: P(kept in both) = 0.6^2 = 0.36
    assert torch.equal(con.drop_present(bag, 0.0, gen), bag)
    with pytest.raises(ValueError, match="drop rate"):
        con.drop_present(bag, 1.0)


def test_augment_view_jitters_continuous_columns_and_drops_bag_entries_only():
    gen = torch.Generator().manual_seed(1)
    plain = torch.randn(32, 5, generator=gen)
    bag = (torch.rand(32, 20, generator=gen) < 0.5).float()
    both = torch.cat([plain, bag], 1)  # the benchmark's layout: summary, then bags
    view = con.augment_view(both, slice(5, None), 0.5, 0.3, gen)
    assert view.shape == (32, 25)
    assert (view[:, 5:] <= bag).all() and view[:, 5:].sum() < bag.sum()
    assert 0.2 < (view[:, :5] - plain).std() < 0.4
    assert torch.equal(con.augment_view(both, slice(5, None), 0.0, 0.0, gen)[:, 5:], bag)
    first = con.augment_view(torch.cat([bag, plain], 1), slice(0, 20), 0.5, 0.3, gen)  # the product's layout
    assert (first[:, :20] <= bag).all() and 0.2 < (first[:, 20:] - plain).std() < 0.4


def _cohort_arrays(n: int = 12):
    """Event-view arrays of `n` tumours (12-30 events each) with a 10-column gene bag, labels 0..2."""
    from nanog1.encoder.data import EVENT_FIELDS, CohortArrays
    from nanog1.schema import N_CHANNELS

    rng = np.random.default_rng(0)
    offsets = np.r_[0, np.cumsum(rng.integers(12, 30, n))]
    ids = {f: rng.integers(3, 9, offsets[-1]) for f in EVENT_FIELDS} | {"offsets": offsets}
    return CohortArrays(sample_ids=[f"T{i}" for i in range(n)],
                        counts=rng.poisson(3, (n, N_CHANNELS)).astype(np.float32),
                        channel_padding=np.zeros(N_CHANNELS, dtype=bool), labels=np.arange(n) % 3,
                        classes=["A", "B", "C"], event_ids=ids,
                        gene_bag=(rng.random((n, 10)) < 0.5).astype(np.float32))  # fmt: skip


def test_two_view_batches_and_the_product_loss_ignore_labels():
    from nanog1.encoder.data import Collate
    from nanog1.encoder.inference import LossContext, batch_loss
    from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig
    from nanog1.schema import N_CHANNELS

    arrays = _cohort_arrays()
    torch.manual_seed(0)
    batch = Collate(arrays, "events", 64, train=True, views=2, view_drop=0.4)(list(range(12)))
    v1, v2 = batch, batch["view2"]
    full = torch.from_numpy(arrays.gene_bag)
    assert (v1["gene_bag"] <= full).all() and (v2["gene_bag"] <= full).all()
    assert not torch.equal(v1["gene_bag"], v2["gene_bag"])
    assert not torch.equal(v1["event_padding"].sum(1), v2["event_padding"].sum(1))  # thinned apart
    lengths = np.diff(arrays.event_ids["offsets"])
    assert ((~v1["event_padding"]).sum(1).numpy() <= lengths).all()

    vocab = {f: [str(i) for i in range(6)] for f in ("channel", "gene", "consequence", "chrom", "bin", "vaf")}
    cfg = MutationEncoderConfig(hidden=16, layers=1, rank=4, heads=2, view="events", event_vocab=vocab,
                                gene_bag=[f"g{i}" for i in range(10)], projection=8, dropout=0.0)  # fmt: skip
    model = MutationEncoder(cfg)
    padding = torch.zeros(N_CHANNELS, dtype=torch.bool)
    ctx = LossContext(task="pretrain", view="events", channel_padding=padding, objective="contrastive")
    loss, parts = batch_loss(model, batch, ctx)
    assert set(parts) == {"loss_contrastive"} and loss.item() > 0
    relabelled = {**batch, "labels": torch.full_like(batch["labels"], -1),
                  "view2": {**batch["view2"], "labels": torch.flip(batch["labels"], [0])}}  # fmt: skip
    assert batch_loss(model, relabelled, ctx)[0].item() == loss.item()  # labels never read
    loss.backward()
    assert model.stack.parameters().__next__().grad is not None and model.gene_bag.weight.grad.abs().sum() > 0


def test_product_views_jitter_consequence_shares_and_drop_only_bag_entries():
    """The bag is [genes | hotspots | consequence shares / sd] (data.with_gene_bag): a view drops present
    0/1 entries at view_drop and jitters the shares (never zeroes them as if they were absent entries)."""
    from dataclasses import replace

    from nanog1.encoder.data import Collate

    base = _cohort_arrays(400)
    rng = np.random.default_rng(1)
    shares = rng.uniform(0.5, 3.0, (400, 3)).astype(np.float32)  # every tumour has all three consequences
    arrays = replace(base, gene_bag=np.hstack([base.gene_bag, shares]), consequence_scale=[0.1, 0.2, 0.3])
    assert arrays.bag_entries == slice(0, 10)
    torch.manual_seed(0)
    batch = Collate(arrays, "events", 8, train=True, views=2, view_drop=0.4, view_noise=0.5)(list(range(400)))
    entries, full = torch.from_numpy(base.gene_bag), torch.from_numpy(shares)
    for view in (batch, batch["view2"]):
        bag = view["gene_bag"]
        assert ((bag[:, :10] == 0) | (bag[:, :10] == 1)).all() and (bag[:, :10] <= entries).all()
        assert 0.55 < bag[:, :10].sum() / entries.sum() < 0.65  # ~2,000 present entries, ~60 % kept
        assert (bag[:, 10:] != 0).all()  # a share is never dropped to 0
        noise = bag[:, 10:] - full
        assert 0.45 < noise.std() < 0.55 and abs(noise.mean()) < 0.05  # jittered: sd 0.5, centred
    assert not torch.equal(batch["gene_bag"][:, 10:], batch["view2"]["gene_bag"][:, 10:])  # two draws
    plain = Collate(arrays, "events", 8, train=True)(list(range(400)))["gene_bag"]
    assert torch.equal(plain, torch.from_numpy(arrays.gene_bag))  # one-view batches: the bag as it is


def test_bag_layout_follows_the_bag_and_the_shares_are_computed_once(monkeypatch):
    from nanog1.encoder import data, loop
    from nanog1.encoder.config import TrainConfig
    from nanog1.genomics.event_vocab import EventVocab

    arrays = _cohort_arrays(12)
    vocab = {f: [str(i) for i in range(6)] for f in ("channel", "gene", "consequence", "chrom", "bin", "vaf")}
    arrays.event_vocab = EventVocab(values=vocab)
    calls = []
    real = data.consequence_shares

    def counted(a):
        calls.append(1)
        return real(a)

    monkeypatch.setattr(data, "consequence_shares", counted)
    monkeypatch.setattr(loop, "consequence_shares", counted)
    cfg = TrainConfig(view="events", gene_bag=4, hotspots=0, task="pretrain", objective="contrastive")
    bagged = loop.prepare_gene_bag(cfg, arrays, np.arange(8))
    assert len(calls) == 1  # one pass over the events feeds the scale and the bag
    assert bagged.gene_bag.shape[1] == len(bagged.gene_bag_genes) + 6 and len(bagged.gene_bag_genes) >= 1
    assert bagged.bag_entries == slice(0, len(bagged.gene_bag_genes))  # then the 6 consequence shares
    assert np.isin(bagged.gene_bag[:, bagged.bag_entries], (0.0, 1.0)).all()
    plain = TrainConfig(view="events", gene_bag=4, hotspots=0, consequence_shares=False, task="pretrain",
                        objective="contrastive")  # fmt: skip
    off = loop.prepare_gene_bag(plain, arrays, np.arange(8))
    assert off.bag_entries == slice(0, off.gene_bag.shape[1])  # no shares: every column an entry


def test_benchmark_pretraining_leaves_out_the_test_patients_of_both_sources():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "tcga_events.py"
    spec = importlib.util.spec_from_file_location("tcga_events", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tumours = np.array(["mc3|TCGA-AA-0001-01A", "mc3|TCGA-AA-0002-01A", "mc3|TCGA-AA-0003-01A",
                        "firehose|TCGA-AA-0001-01A-11", "firehose|TCGA-AA-0004-01A", "mc3|TCGA-AA-0005-01A"])
    data = type("D", (), {"tumours": tumours, "fold": np.array([0, 1, -1, 2, 0, 1])})()
    # mc3 fold 0 holds patient 0001: its Firehose tumour is left out too; 0004 (firehose fold 0) stays
    assert bench.pretraining_rows(data, "mc3", 0).tolist() == [1, 2, 4, 5]
    assert bench.pretraining_rows(data, "firehose", 0).tolist() == [0, 1, 2, 3, 5]
    assert bench.pretraining_rows(data, "mc3", 1).tolist() == [0, 2, 3, 4]
