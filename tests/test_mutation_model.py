"""Mutation encoder: shapes, catalogue features against numpy, padding invariance, serving wrapper."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nanog1.encoder.model import (
    N_CHANNELS,
    SET_SIZES,
    CataloguePredictor,
    MutationEncoder,
    MutationEncoderConfig,
    catalogue_features,
)


def _cfg(**kw) -> MutationEncoderConfig:
    base = dict(hidden=16, layers=1, rank=4, heads=2, dropout=0.0, n_types=3, exposure_sizes={"SBS96": 5})
    return MutationEncoderConfig(**(base | kw))


VOCAB_SIZES = {"channel": 30, "gene": 12, "consequence": 5, "chrom": 4, "bin": 40, "vaf": 10}


def test_catalogue_features_match_numpy():
    rng = np.random.default_rng(0)
    counts = rng.poisson(3.0, size=(4, N_CHANNELS)).astype(np.float64)
    counts[1, 96:174] = 0  # a sample with no doublets
    got = catalogue_features(torch.from_numpy(counts)).numpy()
    bounds = np.cumsum((0,) + SET_SIZES)
    for i in range(4):
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            total = counts[i, a:b].sum()
            want = counts[i, a:b] / max(total, 1.0) * (b - a)
            np.testing.assert_allclose(got[i, a:b, 1], want, rtol=1e-12)
        np.testing.assert_allclose(got[i, :, 0], np.log1p(counts[i]), rtol=1e-12)


@pytest.mark.parametrize("mixer", ["savo", "qcompass", "mha", "mha_rank"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_catalogue_view_shapes_and_heads(mixer, pooling):
    torch.manual_seed(0)
    model = MutationEncoder(_cfg(mixer=mixer, pooling=pooling)).eval()
    out = model(counts=torch.poisson(torch.full((3, N_CHANNELS), 2.0)))
    assert out.embedding.shape == (3, 16)
    assert out.type_logits.shape == (3, 3)
    assert out.masked_pred.shape == (3, N_CHANNELS)
    np.testing.assert_allclose(out.exposure_logp["SBS96"].exp().sum(-1).detach().numpy(), 1.0, rtol=1e-5)


def test_unmeasured_sets_are_padding():
    """With DBS/ID marked as padding, their counts cannot change any output."""
    torch.manual_seed(1)
    model = MutationEncoder(_cfg()).eval()
    pad = torch.zeros(N_CHANNELS, dtype=torch.bool)
    pad[96:] = True
    a = torch.poisson(torch.full((2, N_CHANNELS), 3.0))
    b = a.clone()
    b[:, 96:] = torch.poisson(torch.full((2, N_CHANNELS - 96), 9.0))
    with torch.no_grad():
        ya, yb = model(counts=a, padding_mask=pad[None]), model(counts=b, padding_mask=pad[None])
        yc = model(counts=b)
    torch.testing.assert_close(ya.embedding, yb.embedding, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(ya.embedding, yc.embedding, atol=1e-4)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_event_view_padded_batch_equals_one_by_one(pooling):
    torch.manual_seed(2)
    vocab = {k: [f"{k}{i}" for i in range(n)] for k, n in VOCAB_SIZES.items()}
    model = MutationEncoder(_cfg(view="events", pooling=pooling, event_vocab=vocab)).eval()
    lengths = [7, 3, 5]
    seqs = [{k: torch.randint(1, n + 3, (n_tok,)) for k, n in VOCAB_SIZES.items()} for n_tok in lengths]
    batch = {k: torch.zeros(3, 7, dtype=torch.long) for k in seqs[0]}
    padding = torch.ones(3, 7, dtype=torch.bool)
    for i, (s, n) in enumerate(zip(seqs, lengths, strict=True)):
        for k in s:
            batch[k][i, :n] = s[k]
        padding[i, :n] = False
    with torch.no_grad():
        full = model(events=batch, padding_mask=padding)
        for i, s in enumerate(seqs):
            alone = model(events={k: v[None] for k, v in s.items()})
            torch.testing.assert_close(full.embedding[i], alone.embedding[0], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(full.type_logits[i], alone.type_logits[0], rtol=1e-4, atol=1e-5)


def test_masked_tokens_change_only_through_the_mask_token():
    torch.manual_seed(3)
    model = MutationEncoder(_cfg()).eval()
    counts = torch.poisson(torch.full((2, N_CHANNELS), 3.0))
    mask = torch.zeros(2, N_CHANNELS, dtype=torch.bool)
    mask[:, :10] = True
    other = counts.clone()
    other[:, :10] += 50  # hidden by the mask except through the set share of unmasked channels
    with torch.no_grad():
        y1 = model(counts=counts, token_mask=mask).tokens[:, :10]
        y2 = model(counts=other, token_mask=mask).tokens[:, :10]
    assert not torch.allclose(y1, y2)  # the shares of unmasked channels moved, so context differs
    emb = model.embed(counts, mask)
    emb2 = model.embed(other, mask)
    torch.testing.assert_close(emb[:, :10], emb2[:, :10])


def test_predictor_outputs_probabilities_and_embeddings():
    torch.manual_seed(4)
    model = MutationEncoder(_cfg()).eval()
    counts = torch.poisson(torch.full((4, N_CHANNELS), 2.0))
    proba = CataloguePredictor(model, torch.zeros(N_CHANNELS, dtype=torch.bool))(counts)
    np.testing.assert_allclose(proba.sum(-1).detach().numpy(), 1.0, rtol=1e-5)
    emb = CataloguePredictor(model, torch.zeros(N_CHANNELS, dtype=torch.bool), output="embedding")(counts)
    assert emb.shape == (4, 16)


def test_bad_view_and_pooling_are_rejected():
    with pytest.raises(ValueError, match="view"):
        MutationEncoder(_cfg(view="reads"))
    with pytest.raises(ValueError, match="pooling"):
        MutationEncoder(_cfg(pooling="max"))


def test_catalogue_features_burden_column_matches_numpy():
    rng = np.random.default_rng(5)
    counts = rng.poisson(4.0, size=(3, N_CHANNELS)).astype(np.float64)
    got = catalogue_features(torch.from_numpy(counts)).numpy()
    bounds = np.cumsum((0,) + SET_SIZES)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        want = np.log1p(counts[:, a:b].sum(1, keepdims=True)).repeat(b - a, axis=1)
        np.testing.assert_allclose(got[:, a:b, 2], want, rtol=1e-12)


def test_summary_cls_hides_masked_channels_and_sees_the_rest():
    """The CLS summary equals a numpy-free reference with masked channels zeroed; visible channels count."""
    torch.manual_seed(6)
    model = MutationEncoder(_cfg()).eval()
    counts = torch.poisson(torch.full((2, N_CHANNELS), 3.0))
    mask = torch.zeros(2, N_CHANNELS, dtype=torch.bool)
    mask[:, 100:110] = True
    visible_changed = counts.clone()
    visible_changed[:, 0:10] += 40
    s = model.summary(counts, mask)
    x = model.summary.proj.weight
    feats = catalogue_features(counts)
    ref = torch.cat([feats[..., 1] / 10.0, feats[..., 0] / 5.0], -1).masked_fill(mask.repeat(1, 2), 0.0)
    torch.testing.assert_close(s, ref @ x.T + model.summary.proj.bias)
    assert not torch.allclose(model.summary(visible_changed, mask), s)
