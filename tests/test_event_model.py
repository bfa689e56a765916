"""The event view of the encoder (MutationEncoder, view="events") with the research benchmark's options
(summary features, no catalogue summary): shapes, padding invariance, masking, out-of-range ids refused."""

from __future__ import annotations

import pytest
import torch

from nanog1.encoder.model import MASK_ID, MutationEncoder, MutationEncoderConfig

SIZES = {"channel": 10, "gene": 20, "consequence": 6, "chrom": 5, "bin": 30, "vaf": 13}
VOCAB = {k: [f"{k}{i}" for i in range(n - 3)] for k, n in SIZES.items()}  # ids 3.. = the values


def _model(mixer: str = "savo") -> MutationEncoder:
    torch.manual_seed(0)
    cfg = MutationEncoderConfig(view="events", event_vocab=VOCAB, summary=False, n_summary=4, hidden=16,
                                layers=1, rank=4, heads=2, mixer=mixer, dropout=0.0, n_types=3)  # fmt: skip
    return MutationEncoder(cfg).eval()


def _ids(b: int, length: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {k: torch.randint(3, n, (b, length), generator=g) for k, n in SIZES.items()}


def _run(model, ids, summary, token_mask=None):
    padding = ids["channel"] == 0
    return model(events=ids, padding_mask=padding, token_mask=token_mask, summary_features=summary)


@pytest.mark.parametrize("mixer", ["savo", "mha_rank"])
def test_padding_does_not_change_a_tumour(mixer):
    model, ids, summary = _model(mixer), _ids(1, 5), torch.randn(1, 4)
    padded = {k: torch.cat([v, torch.zeros(1, 3, dtype=v.dtype)], 1) for k, v in ids.items()}
    with torch.no_grad():
        a, b = _run(model, ids, summary).type_logits, _run(model, padded, summary).type_logits
    assert a.shape == (1, 3)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_masked_logits_and_mask_hides_the_token():
    model, ids, summary = _model(), _ids(2, 6), torch.randn(2, 4)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[0, 2] = mask[1, 4] = True
    out = _run(model, ids, summary, mask).masked_logits
    assert out["channel"].shape == (2, SIZES["channel"])
    assert out["consequence"].shape == (2, SIZES["consequence"])
    assert out["gene"].shape == (2, SIZES["gene"] - 3 + 1)  # every gene of the small vocabulary + other
    changed = {k: v.clone() for k, v in ids.items()}
    changed["gene"][0, 2] = 3 if ids["gene"][0, 2] != 3 else 4  # the masked token's own gene must not leak
    with torch.no_grad():
        torch.testing.assert_close(_run(model, changed, summary, mask).masked_logits["gene"],
                                   _run(model, ids, summary, mask).masked_logits["gene"])  # fmt: skip
    assert MASK_ID == 2


def test_out_of_range_id_is_an_error_not_a_modulo():
    model, ids = _model(), _ids(1, 4)
    ids["bin"][0, 0] = SIZES["bin"]
    with pytest.raises(ValueError, match="'bin'"):
        _run(model, ids, torch.randn(1, 4))


def test_summary_features_are_read_and_their_width_checked():
    model, ids = _model(), _ids(2, 4)
    summary = torch.randn(2, 4)
    other = summary.clone()
    other[1, 0] += 1.0
    with torch.no_grad():
        a, b = _run(model, ids, summary).type_logits, _run(model, ids, other).type_logits
    assert torch.equal(a[0], b[0]) and not torch.allclose(a[1], b[1])
    with pytest.raises(ValueError, match="4 summary features; 3 columns"):
        _run(model, ids, summary[:, :3])
    with pytest.raises(ValueError, match="4 summary features; none"):
        _run(model, ids, None)


def test_catalogue_model_event_view_sizes_tables_to_its_vocabulary_and_refuses_out_of_range_ids():
    from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig

    vocab = {k: [f"{k}{i}" for i in range(n - 3)] for k, n in SIZES.items()}
    model = MutationEncoder(MutationEncoderConfig(hidden=8, layers=1, rank=4, heads=2, view="events",
                                                  event_vocab=vocab, gene_top_k=5)).eval()  # fmt: skip
    assert {k: t.num_embeddings for k, t in model.embed.tables.items()} == SIZES
    assert model.cfg.masked_sizes() == {"channel": 10, "consequence": 6, "gene": 6}  # 5 genes + other
    ids = _ids(1, 4)
    mask = torch.zeros(1, 4, dtype=torch.bool)
    mask[0, 1] = True
    out = model(events=ids, padding_mask=torch.zeros(1, 4, dtype=torch.bool), token_mask=mask)
    assert out.masked_logits["gene"].shape == (1, 6) and out.masked_logits["channel"].shape == (1, 10)
    ids["bin"][0, 0] = SIZES["bin"]  # a modulo would have wrapped it onto bin 0
    with pytest.raises(ValueError, match="'bin'"):
        model(events=ids)
    with pytest.raises(ValueError, match="event_vocab"):
        MutationEncoder(MutationEncoderConfig(view="events"))


def test_capped_gene_targets_and_weights_do_not_reward_the_prior():
    import numpy as np

    from nanog1.encoder.losses import gene_class_weights, gene_targets

    ids = np.array([3, 3, 3, 3, 4, 5, 9, 1])  # commonest-first vocabulary: 3 = the commonest gene; 1 = UNK
    assert gene_targets(ids, 2).tolist() == [0, 0, 0, 0, 1, 2, 2, 2]  # K = 2, then "other"
    assert gene_targets(torch.from_numpy(ids), 2).tolist() == [0, 0, 0, 0, 1, 2, 2, 2]
    w = gene_class_weights(ids, 2).numpy()
    counts = np.array([4, 1, 3])
    assert w[1] > w[2] > w[0]  # rarer classes weigh more
    assert (w * counts).sum() == pytest.approx(counts.sum())  # the average event weighs 1
