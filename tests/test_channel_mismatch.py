"""A cohort that lacks a channel set the model was trained on is scored with that set masked (#31)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nanog1.errors import UserError
from nanog1.genomics.channels import set_slice
from nanog1.genomics.cohort import channel_set_status, measured_sets, with_derived_sets
from nanog1.schema import SET_NAMES, SET_SIZES
from tests.training_cohort import make_cohort


def _without(adata, drop: set[str]):
    """The cohort as a study that never called `drop`: those sets zero, its record saying so."""
    out = adata.copy()
    kept = [s for s in ("SBS96", "DBS78", "ID83") if s not in drop]
    derived = {"ID83": "ID12", "SBS96": "SBS6"}
    for name in drop:
        out.X[:, set_slice(name)] = 0
        if name in derived:
            out.X[:, set_slice(derived[name])] = 0
    out.uns["nanog1"] = {
        "channel_sets_present": with_derived_sets(kept),
        "channel_sets": channel_set_status(kept),
    }
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny encoder trained with SBS96 + DBS78 + ID83 measured."""
    from nanog1.encoder.config import TrainConfig
    from nanog1.encoder.run import train_cohort

    tmp = tmp_path_factory.mktemp("mismatch")
    make_cohort(n_per_type=12, seed=5, tokens=False).write_h5ad(tmp / "c.h5ad")
    cfg = TrainConfig(hidden=16, layers=1, rank=4, heads=2, batch_size=16, epochs=2, register_model=False)
    train_cohort(tmp / "c.h5ad", tmp / "run", cfg, tracking_uri=f"sqlite:///{tmp}/m.db")
    return tmp / "run"


def test_measured_sets_reads_the_cohort_record():
    adata = _without(make_cohort(n_per_type=2, seed=1, tokens=False), {"ID83"})
    assert measured_sets(adata) == ["SBS96", "DBS78", "SBS6"]
    del adata.uns["nanog1"]
    assert measured_sets(adata) is None


def test_missing_id83_is_masked_not_read_as_zero(trained, monkeypatch):
    import nanog1.encoder.embedding as embed
    from nanog1.encoder.loop import MODEL, load_model

    cohort = _without(make_cohort(n_per_type=3, seed=9, tokens=False), {"ID83"})
    model, saved = load_model(trained / MODEL)
    assert not saved["channel_padding"][set_slice("ID83")].any()  # the model was trained reading ID83
    seen, real = [], embed.predict

    def spy(model, arrays, indices, ctx, *a, **k):
        seen.append(ctx.channel_padding.cpu().numpy().copy())
        return real(model, arrays, indices, ctx, *a, **k)

    monkeypatch.setattr(embed, "predict", spy)
    pred, _, _ = embed.apply_model(cohort, trained)
    padding = seen[0]
    assert padding[set_slice("ID83")].all() and padding[set_slice("ID12")].all()
    assert not padding[set_slice("SBS96")].any() and not padding[set_slice("DBS78")].any()
    # The scored probabilities are the model's with ID83/ID12 masked, not those of "zero indels".
    counts = torch.from_numpy(np.asarray(cohort.X, dtype=np.float32))
    with torch.no_grad():
        masked = model(counts=counts, padding_mask=torch.from_numpy(padding)[None].expand(len(counts), -1))
        zeros = model(counts=counts, padding_mask=saved["channel_padding"][None].expand(len(counts), -1))
    np.testing.assert_allclose(pred.proba, torch.softmax(masked.type_logits, -1).numpy(), atol=1e-5)
    assert not np.allclose(pred.proba, torch.softmax(zeros.type_logits, -1).numpy(), atol=1e-4)


def test_a_cohort_with_nothing_the_model_reads_is_refused(trained):
    from nanog1.encoder.embedding import apply_model, scoring_padding

    cohort = _without(make_cohort(n_per_type=1, seed=2, tokens=False), {"SBS96", "DBS78", "ID83"})
    with pytest.raises(UserError, match="measured none of the channel sets|nothing in common"):
        apply_model(cohort, trained)
    # A model that reads only SBS96 and a cohort with only indels: refused, naming both sides.
    only_sbs = np.concatenate(
        [np.full(n, name != "SBS96") for name, n in zip(SET_NAMES, SET_SIZES, strict=True)]
    )
    with pytest.raises(UserError, match=r"measured ID83\+ID12 but m reads only SBS96"):
        scoring_padding(
            ~np.isin(np.arange(len(only_sbs)), np.r_[set_slice("ID83"), set_slice("ID12")]),
            only_sbs,
            source="m",
        )


def test_set_dropout_masks_whole_sets_at_the_stated_rates():
    from nanog1.encoder.data import set_dropout_mask

    torch.manual_seed(0)
    mask = set_dropout_mask(20000, 0.3).numpy()
    whole = {name: mask[:, set_slice(name)] for name in SET_NAMES}
    for name, block in whole.items():  # a set is masked whole or not at all
        assert (block.all(1) | ~block.any(1)).all(), name
    rate = {name: block[:, 0].mean() for name, block in whole.items()}
    assert rate["SBS6"] == 0 and rate["DBS78"] == pytest.approx(0.3, abs=0.02)
    assert rate["ID12"] == pytest.approx(0.3, abs=0.02)
    assert rate["ID83"] == pytest.approx(1 - 0.7 * 0.85, abs=0.02)  # with ID12, or alone (no reference)
    assert rate["SBS96"] == pytest.approx(0.1, abs=0.02)
    assert (whole["ID83"][:, 0] >= whole["ID12"][:, 0]).all()  # ID12 never masked while ID83 is read
