"""The Python API as a notebook user calls it: ordinary mistakes are one-line ValueErrors naming the
problem, and packaged models are taken by name wherever a model is asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nanog1.encoder as enc
from nanog1.errors import UserError
from nanog1.genomics.channels import SBS96
from tests.training_cohort import make_cohort


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(n_per_type=2, seed=3, tokens=False)


def test_read_inputs_takes_one_path_as_well_as_a_list(tmp_path):
    matrix = tmp_path / "one.tsv"
    counts = np.random.default_rng(0).poisson(20, size=(96, 2))
    pd.DataFrame(counts, index=pd.Index(SBS96, name="MutationType"), columns=["T1", "T2"]).to_csv(
        matrix, sep="\t")
    for given in (str(matrix), matrix):  # was: iterated over the characters ('/: input file not found')
        adata = enc.read_inputs(given)
        assert list(adata.obs_names) == ["T1", "T2"]


@pytest.mark.parametrize("call", [
    lambda x: enc.predict(x, "pcawg-catalogue"),
    lambda x: enc.embed(x, "pcawg-catalogue"),
    lambda x: enc.score(x, "pcawg-catalogue"),
    lambda x: enc.features(x),
])
def test_a_path_or_table_instead_of_an_anndata_is_named(tmp_path, cohort, call):
    for wrong in ("cohort.h5ad", Path("cohort.h5ad"), cohort.to_df()):
        with pytest.raises(UserError, match="an AnnData"):  # was AttributeError: ... 'n_vars'
            call(wrong)


def test_predict_on_no_tumours_says_so(cohort):
    with pytest.raises(UserError, match="no tumour"):  # was: 'this model has no cancer-type head'
        enc.predict(cohort[:0].copy(), "pcawg-catalogue")


def test_type_metrics_names_a_missing_key(cohort):
    with pytest.raises(UserError, match=r"no obsm\['proba_x'\]"):  # was KeyError: 'proba_x'
        enc.type_metrics(cohort, "proba_x")
