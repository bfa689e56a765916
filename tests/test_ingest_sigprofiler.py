"""Side by side with SigProfilerMatrixGenerator on a generated genome: identical SBS96/DBS78/ID83."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("SigProfilerMatrixGenerator")
pytestmark = pytest.mark.slow  # about 15-45 s on 2 cores, most of it SigProfilerMatrixGenerator

from nanog1.genomics import peer  # noqa: E402
from nanog1.genomics.cohort import read_cohort  # noqa: E402
from nanog1.genomics.ingest import IngestOptions, ingest  # noqa: E402
from nanog1.genomics.synthetic import GenomeSpec, make_cohort, make_genome  # noqa: E402


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory):
    """Our compatible-mode cohort and SigProfilerMatrixGenerator's matrices on the same inputs.

    Dense (one variant per ~50 bp per sample) so that same-position records, duplicates that differ
    only in FILTER, doublets next to other SNVs and runs all occur."""
    work = tmp_path_factory.mktemp("spmg")
    seqs = make_genome(work / "genome.fa", GenomeSpec(length=60_000, seed=7))
    paths = make_cohort(work / "vcf", seqs, n_samples=4, per_sample=2500, seed=11)
    name = f"nanog1test{os.getpid()}"
    try:
        peer.install_genome(name, work / "genome.fa", work)
        theirs = peer.run_matrix_generator(name, work / "vcf", work)
    finally:
        peer.remove_genome(name)
    options = IngestOptions(sigprofiler_compatible=True, filter="all")
    ingest(paths, work / "genome.fa", None, work / "cohort.h5ad", options)
    return read_cohort(work / "cohort.h5ad"), theirs


@pytest.mark.parametrize("channel_set", ["SBS96", "DBS78", "ID83"])  # the sets the peer writes
def test_matrix_equals_sigprofiler(side_by_side, channel_set):
    adata, theirs = side_by_side
    ours = adata[:, adata.var["channel_set"] == channel_set].to_df().T
    peer_matrix = theirs[channel_set][ours.columns]
    assert ours.to_numpy().sum() > 100
    np.testing.assert_array_equal(ours.to_numpy().astype(int), peer_matrix.to_numpy())


def test_inputs_cover_the_hard_cases(side_by_side):
    """The generated cohort exercises doublets, repeats and microhomology, so equality means something."""
    adata, _ = side_by_side
    counts = adata.to_df().sum(axis=0)
    assert counts[[c for c in counts.index if ":Del:M:" in c]].sum() > 10
    assert counts[[c for c in counts.index if ":R:" in c and not c.endswith(":0")]].sum() > 10
    assert (
        counts[[c for c in counts.index if c.startswith("1:") and c.endswith((":3", ":4", ":5"))]].sum() > 5
    )
    assert adata.obs["burden_DBS78"].min() > 20
