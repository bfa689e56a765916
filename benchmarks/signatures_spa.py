"""Run SigProfilerAssignment's `cosmic_fit` on a samples × SBS96 catalogue and time it (the peer).

Used by benchmarks/signatures.py; kept apart so the slow peer run (~7 min on 2 cores) can be
started once in the background and its timed result reused by the comparison.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd


def run_spa(catalogue: pd.DataFrame, outdir: Path, cosmic_version: float = 3.4) -> dict:
    """Fit `catalogue` with cosmic_fit (matrix input, GRCh37, plots off); return timing + paths."""
    from SigProfilerAssignment import Analyzer

    outdir.mkdir(parents=True, exist_ok=True)
    tsv = outdir / "input_SBS96.tsv"
    matrix = catalogue.T.astype("int64")
    matrix.index.name = "MutationType"
    matrix.to_csv(tsv, sep="\t")
    start = time.perf_counter()
    Analyzer.cosmic_fit(
        samples=str(tsv),
        output=str(outdir / "spa"),
        input_type="matrix",
        context_type="96",
        genome_build="GRCh37",
        cosmic_version=cosmic_version,
        make_plots=False,
        sample_reconstruction_plots=False,
        export_probabilities=False,
        verbose=False,
    )
    seconds = time.perf_counter() - start
    info = {"seconds": seconds, "n_samples": int(catalogue.shape[0]), "cosmic_version": cosmic_version}
    (outdir / "timing.json").write_text(json.dumps(info))
    return info


def read_spa_activities(outdir: Path) -> pd.DataFrame:
    """The exposures (samples × signatures) cosmic_fit wrote under `outdir`."""
    path = next((outdir / "spa").rglob("*Activities.txt"))
    return pd.read_csv(path, sep="\t", index_col=0)


if __name__ == "__main__":
    import sys

    from nanog1.genomics.signatures_pcawg import read_pcawg_catalogue

    cat = read_pcawg_catalogue(sys.argv[1])
    print(run_spa(cat, Path(sys.argv[2])))
