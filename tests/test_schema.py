"""The cohort contract: one channel-sets accessor, and per-mutation tokens that follow their rows."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from nanog1 import schema
from nanog1.encoder.data import cohort_arrays
from nanog1.genomics.channels import CHANNEL_SETS, EXACT, NOT_COMPUTABLE
from nanog1.genomics.cohort import read_cohort, write_cohort
from nanog1.genomics.tokens import token_table
from tests.training_cohort import make_cohort


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(n_per_type=5, seed=3)


def own_channels(adata) -> dict[str, list[int]]:
    """Each sample's own mutations, from its catalogue row: the simulated cohort draws one token per
    counted mutation of SBS96/DBS78/ID83 (the truth to compare with; independent of the tokens)."""
    measured = sum(len(CHANNEL_SETS[s]) for s in ("SBS96", "DBS78", "ID83"))
    x = np.asarray(adata.X)[:, :measured].astype(np.int64)
    return {name: np.repeat(np.arange(measured), x[i]).tolist() for i, name in enumerate(adata.obs_names)}


def tokens_by_sample(adata) -> dict[str, list[int]]:
    """Each row's token channels as the encoder's data reads them (compact arrays in row order)."""
    tok = cohort_arrays(adata).tokens
    off = tok["offsets"]
    return {name: sorted(tok["channel"][off[i]:off[i + 1]].tolist())
            for i, name in enumerate(adata.obs_names)}


def test_layout_is_derived_from_channel_sets():
    assert schema.SET_NAMES == tuple(CHANNEL_SETS)
    assert schema.N_CHANNELS == sum(len(v) for v in CHANNEL_SETS.values())


def test_subset_and_reorder_keep_each_tumours_mutations(cohort):
    truth = own_channels(cohort)
    mask = np.zeros(cohort.n_obs, bool)
    mask[[1, 4, 7, 12, 19]] = True
    sub = cohort[mask].copy()
    assert tokens_by_sample(sub) == {n: truth[n] for n in sub.obs_names}
    reordered = cohort[np.random.default_rng(0).permutation(cohort.n_obs)].copy()
    assert tokens_by_sample(reordered) == truth
    name = sub.obs_names[2]
    assert sorted(token_table(sub, name)["channel_id"]) == truth[name]  # the per-sample table agrees


def test_concat_cohorts_keeps_tokens_and_plain_concat_is_refused(cohort):
    truth = own_channels(cohort)
    a, b = cohort[:8].copy(), cohort[8:].copy()
    b.uns["tokens"] = {**b.uns["tokens"], "channel": b.uns["tokens"]["channel"].copy()}
    b.uns["tokens"]["table_id"] = "another-table"
    b.obs[schema.TOKEN_TABLE] = b.obs[schema.TOKEN_TABLE].cat.rename_categories(["another-table"])
    joined = schema.concat_cohorts([b, a], uns_merge=None)
    assert tokens_by_sample(joined) == {n: truth[n] for n in joined.obs_names}
    plain = ad.concat([b, a], uns_merge="first")
    with pytest.raises(schema.SchemaError, match="concatenated"):
        cohort_arrays(plain)


def test_round_trip_and_older_offsets_layout(cohort, tmp_path):
    write_cohort(cohort[::2].copy(), tmp_path / "half.h5ad")
    back = read_cohort(tmp_path / "half.h5ad")
    assert tokens_by_sample(back) == {n: own_channels(cohort)[n] for n in back.obs_names}
    old = cohort.copy()
    old.obs = old.obs.drop(columns=[schema.TOKEN_START, schema.TOKEN_COUNT, schema.TOKEN_TABLE])
    write_cohort(old, tmp_path / "old.h5ad")
    assert schema.TOKEN_START in read_cohort(tmp_path / "old.h5ad").obs  # converted on read
    write_cohort(old[:5].copy(), tmp_path / "old_subset.h5ad")  # offsets for 20 rows, 5 rows kept
    with pytest.raises(ValueError, match="re-ingest"):
        read_cohort(tmp_path / "old_subset.h5ad")
    with pytest.raises(schema.SchemaError, match="re-ingest"):
        cohort_arrays(old[:5].copy())


def test_spans_outside_the_arrays_are_refused(cohort):
    bad = cohort[:3].copy()
    bad.obs[schema.TOKEN_START] = bad.obs[schema.TOKEN_START] + 10**9
    with pytest.raises(schema.SchemaError, match="outside"):
        schema.row_tokens(bad)


def test_channel_sets_present_one_rule(cohort):
    status = {name: NOT_COMPUTABLE for name in CHANNEL_SETS} | {"DBS78": EXACT, "SBS6": EXACT}
    a = cohort[:2].copy()
    a.uns["nanog1"] = {"channel_sets": status, "channel_sets_present": ["SBS96"]}
    assert schema.channel_sets_present(a) == ["DBS78", "SBS6"]  # the status wins, layout order
    a.uns["nanog1"] = {"channel_sets_present": ["ID83", "SBS96"]}
    assert schema.channel_sets_present(a) == ["SBS96", "ID83", "SBS6", "ID12"]  # + sets folded from them
    a.uns["nanog1"] = {"channel_sets_present": []}
    assert schema.channel_sets_present(a) == []  # a recorded empty list is not second-guessed
    with pytest.raises(schema.SchemaError, match="measured none of the channel sets"):
        schema.channel_padding(a)
    a.uns["nanog1"] = {}
    a.X[:] = 0
    a.X[:, schema.SET_SIZES[0]] = 1  # one DBS78 count, nothing else
    with pytest.warns(UserWarning, match="no uns"):  # no record: counted from X, and said so
        assert schema.channel_sets_present(a) == ["DBS78"]
    with pytest.warns(UserWarning):
        assert schema.channel_padding(a).sum() == schema.N_CHANNELS - schema.SET_SIZES[1]
