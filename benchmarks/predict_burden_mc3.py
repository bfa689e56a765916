"""The packaged PCAWG model on MC3 exomes: how many are typed CNS-PiloAstro, and how many now abstain
for a burden below the range it was trained on or as exome input (issue 31 QA).

    PYTHONPATH=. python benchmarks/predict_burden_mc3.py [--n 123] [--seed 0]

A random slice of MC3 tumours (seed fixed) of eight TCGA types that PCAWG also has (none brain) is cut
from ../shared/data/tcga/mc3 into a temporary MAF (never into the repository), read by `nanog1 predict`'s
route (no reference: SBS6 + DBS78 + ID12) and scored. Prints the counts as JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

MC3 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tcga" / "mc3"
TYPES = ("BLCA", "BRCA", "HNSC", "KIRC", "LIHC", "OV", "PAAD", "PRAD")


def main() -> None:
    from nanog1.encoder.predictor import PredictOptions, mutation_totals, predict, read_inputs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=123)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    samples = pd.read_csv(MC3 / "samples.tsv", sep="\t", usecols=["Tumor_Sample_Barcode", "Cohort"])
    pool = samples[samples["Cohort"].isin(TYPES)]["Tumor_Sample_Barcode"].to_numpy()
    chosen = set(np.random.default_rng(args.seed).choice(pool, args.n, replace=False))
    maf = pd.read_csv(MC3 / "mutations.maf.gz", sep="\t", dtype=str, low_memory=False)
    with tempfile.TemporaryDirectory(prefix="nanog1-mc3-") as tmp:
        path = Path(tmp) / "slice.maf"
        maf[maf["Tumor_Sample_Barcode"].isin(chosen)].to_csv(path, sep="\t", index=False)
        adata = read_inputs([path])
    predict(adata, "pcawg-catalogue", PredictOptions(neighbours=0, exposures=False))
    reasons = adata.obs["abstain_reason"].astype(str)
    burden = reasons.str.contains("burden")
    exome = reasons.str.startswith("exome input")
    other = reasons.str.replace(r"(; )?(burden|exome input)[^;]*", "", regex=True).str.strip("; ") != ""
    totals = mutation_totals(adata)
    print(json.dumps({
        "tumours": int(adata.n_obs),
        "types": sorted(TYPES),
        "raw_top1_CNS-PiloAstro": int((adata.obs["predicted_type_raw"].astype(str) == "CNS-PiloAstro").sum()),
        "abstained_without_burden_or_exome_rule": int(other.sum()),
        "abstained_for_burden": int(burden.sum()),
        "abstained_as_exome_input": int(exome.sum()),
        "accepted_without_the_exome_rule": int(
            (reasons.str.replace(r"^exome input[^;]*(; )?", "", regex=True) == "").sum()),
        "assay_detected": adata.obs["assay"].astype(str).value_counts().to_dict(),
        "abstained_now": int(adata.obs["abstain"].sum()),
        "accepted_now": int((~adata.obs["abstain"]).sum()),
        "accepted_now_types": adata.obs.loc[~adata.obs["abstain"], "predicted_type"].astype(str)
        .value_counts().to_dict(),
        "median_mutations": float(np.median(totals)),
        "burden_floor_example": next((r for r in reasons if "burden" in r), ""),
    }, indent=1))


if __name__ == "__main__":
    main()
