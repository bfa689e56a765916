"""Signature exposures on PCAWG: the encoder's exposure head (out of fold) against the published attributions.

The peer is nanog1's own sparse NNLS fit of every PCAWG (COSMIC v3.0) reference signature, blind to the
cancer type — what a classical pipeline gives a new tumour. Both are compared by per-genome cosine with the
published SigProfiler attributions, on the same 2,650 genomes (types with >= 20 genomes) and the same order
as `pcawg_typing.py --export-npz`. The encoder files come from `pcawg_device.py cv` (oofexpo_NAME.npz).

    python benchmarks/pcawg_exposures.py --oof DIR [--pcawg ../shared/data/pcawg7]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from pcawg_device import exposure_cosine
from pcawg_typing import pcawg_cohort, refit_exposures

from nanog1.encoder.data import cohort_arrays
from nanog1.genomics.channels import CHANNEL_SETS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pcawg", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/pcawg7")
    ap.add_argument("--oof", type=Path, required=True, help="folder with pcawg_device.py's oofexpo_*.npz")
    ap.add_argument("--min-genomes", type=int, default=20)
    args = ap.parse_args()
    adata = pcawg_cohort(args.pcawg, args.min_genomes)
    arrays = cohort_arrays(adata, min_class_size=args.min_genomes)
    names = {n: list(adata.obsm[f"exposures_{n}"].columns) for n in CHANNEL_SETS}
    published = arrays.exposures
    rows = {"nanog1 sparse fit, type-blind (peer)": refit_exposures(arrays.counts, args.pcawg, names)}
    files = sorted(args.oof.glob("oofexpo_*.npz"))
    for path in files:
        rows[f"encoder {path.stem.removeprefix('oofexpo_')}"] = dict(np.load(path))
    for prefix in sorted({p.stem.removeprefix("oofexpo_").rsplit("_s", 1)[0] for p in files}):
        members = [rows[k] for k in rows if k.startswith(f"encoder {prefix}_s")]
        if len(members) > 1:
            mean = {n: np.mean([m[n] for m in members], 0) for n in CHANNEL_SETS}
            rows[f"encoder {prefix} ens{len(members)}"] = mean
    print(f"{arrays.n} genomes; median (mean) per-genome cosine with the published attributions")
    print("| model | " + " | ".join(CHANNEL_SETS) + " |\n|:--|" + "--:|" * len(CHANNEL_SETS))
    for label, expo in rows.items():
        cells = []
        for n in CHANNEL_SETS:
            c = exposure_cosine(np.asarray(expo[n], dtype=np.float64), published[n])
            cells.append(f"{np.nanmedian(c):.3f} ({np.nanmean(c):.3f})")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
