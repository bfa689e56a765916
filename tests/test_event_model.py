"""Event encoder over cohort vocabularies: shapes, padding invariance, masking, out-of-range ids refused."""

from __future__ import annotations

import pytest
import torch

from nanog1.encoder.event_model import MASK_ID, EventModel, EventModelConfig

SIZES = {"channel": 10, "gene": 20, "consequence": 6, "chrom": 5, "bin": 30, "vaf": 13}


def _model(mixer: str = "savo") -> EventModel:
    torch.manual_seed(0)
    cfg = EventModelConfig(vocab_sizes=SIZES, n_summary=4, hidden=16, layers=1, rank=4, heads=2,
                           mixer=mixer, dropout=0.0, n_types=3)  # fmt: skip
    return EventModel(cfg).eval()


def _ids(b: int, length: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return {k: torch.randint(3, n, (b, length), generator=g) for k, n in SIZES.items()}


@pytest.mark.parametrize("mixer", ["savo", "mha_rank"])
def test_padding_does_not_change_a_tumour(mixer):
    model, ids, summary = _model(mixer), _ids(1, 5), torch.randn(1, 4)
    padded = {k: torch.cat([v, torch.zeros(1, 3, dtype=v.dtype)], 1) for k, v in ids.items()}
    with torch.no_grad():
        a, b = model.type_logits(ids, summary), model.type_logits(padded, summary)
    assert a.shape == (1, 3)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_masked_logits_and_mask_hides_the_token():
    model, ids, summary = _model(), _ids(2, 6), torch.randn(2, 4)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[0, 2] = mask[1, 4] = True
    out = model.masked_logits(ids, summary, mask)
    assert out["channel"].shape == (2, SIZES["channel"]) and out["gene"].shape == (2, SIZES["gene"])
    changed = {k: v.clone() for k, v in ids.items()}
    changed["gene"][0, 2] = 3 if ids["gene"][0, 2] != 3 else 4  # the masked token's own gene must not leak
    with torch.no_grad():
        torch.testing.assert_close(model.masked_logits(changed, summary, mask)["gene"],
                                   model.masked_logits(ids, summary, mask)["gene"])  # fmt: skip
    assert MASK_ID == 2


def test_out_of_range_id_is_an_error_not_a_modulo():
    model, ids = _model(), _ids(1, 4)
    ids["bin"][0, 0] = SIZES["bin"]
    with pytest.raises(ValueError, match="'bin'"):
        model.type_logits(ids, torch.randn(1, 4))


def test_catalogue_model_event_view_refuses_out_of_range_ids_and_sizes_tables_to_the_cohort():
    from types import SimpleNamespace

    import numpy as np

    from nanog1.encoder.loop import _event_table_sizes
    from nanog1.encoder.model import EventEmbedding, MutationEncoderConfig

    emb = EventEmbedding(MutationEncoderConfig(hidden=8, n_chroms=4, n_bins=10))
    ev = {k: torch.zeros(1, 3, dtype=torch.long) for k in ("channel", "motif", "chrom", "bin")}
    ev["motif"][0, 0] = -1  # no motif is its own id
    assert emb(ev).shape == (1, 3, 8)
    ev["bin"][0, 1] = 10  # was wrapped to bin 0 by a modulo before
    with pytest.raises(ValueError, match="'bin'"):
        emb(ev)
    tokens = {"chrom": np.array([0, 70]), "bin": np.array([5, 30000])}
    assert _event_table_sizes(SimpleNamespace(tokens=tokens)) == {"n_chroms": 71, "n_bins": 30001}
    assert _event_table_sizes(SimpleNamespace(tokens=None)) == {}
