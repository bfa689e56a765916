"""The Python API as a notebook user calls it: ordinary mistakes are one-line ValueErrors naming the
problem, and packaged models are taken by name wherever a model is asked for."""

from __future__ import annotations

import numpy as np
import pandas as pd

import nanog1.encoder as enc
from nanog1.genomics.channels import SBS96


def test_read_inputs_takes_one_path_as_well_as_a_list(tmp_path):
    matrix = tmp_path / "one.tsv"
    counts = np.random.default_rng(0).poisson(20, size=(96, 2))
    pd.DataFrame(counts, index=pd.Index(SBS96, name="MutationType"), columns=["T1", "T2"]).to_csv(
        matrix, sep="\t")
    for given in (str(matrix), matrix):  # was: iterated over the characters ('/: input file not found')
        adata = enc.read_inputs(given)
        assert list(adata.obs_names) == ["T1", "T2"]
