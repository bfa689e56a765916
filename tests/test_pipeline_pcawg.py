"""The PCAWG recipe (shipped pcawg.yaml) through Snakemake up to the merged cohort, on the real matrices."""

from __future__ import annotations

import numpy as np
import pytest

from nanog1.pipeline import PIPELINES_DIR, run_pipeline

pytestmark = pytest.mark.slow
FILES = ("WGS_PCAWG.96.csv", "WGS_PCAWG.dinucs.csv", "WGS_PCAWG.indels.csv")


def test_pcawg_recipe_merges_three_matrices(pcawg_dir, tmp_path):
    from nanog1.genomics.cohort import read_cohort
    from nanog1.genomics.matrix import read_catalogue_matrix

    files = "[" + ", ".join(str(pcawg_dir / f) for f in FILES) + "]"
    code = run_pipeline(PIPELINES_DIR / "pcawg.yaml", cores=2, until="merge",
                        overrides=[f"input.files={files}"], workdir=tmp_path, quiet_table=True)
    assert code == 0
    cohort = read_cohort(tmp_path / "results" / "pcawg" / "work" / "cohort_merged.h5ad")
    assert list(cohort.uns["nanog1"]["channel_sets_present"]) == ["SBS96", "DBS78", "ID83", "SBS6", "ID12"]
    assert cohort.uns["nanog1"]["merge"]["samples_summed"] > 2500
    for name in FILES:
        matrix = read_catalogue_matrix(pcawg_dir / name)
        counts = matrix.counts.T  # samples x channels
        cols = (cohort.var["channel_set"] == matrix.channel_set).to_numpy()
        part = cohort[list(counts.index), cols]
        expected = counts[list(part.var_names)].to_numpy(dtype=np.float32)
        np.testing.assert_array_equal(np.asarray(part.X), expected)
    types = cohort.obs["cancer_type"].astype(str)
    assert types.nunique() > 20 and (types != "nan").all()
