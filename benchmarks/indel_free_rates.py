"""How often a real tumour with many substitutions has no indel (or no doublet) at all: the data behind
the threshold of `nanog1.genomics.ingest.SNV_ONLY_MIN_SBS` (issue 31, a substitution-only file that does
not say so). PCAWG genomes from the catalogues (SBS96, ID83, DBS78 per genome), TCGA exomes from the MAFs
(SNP vs INS/DEL; doublets = DNP records plus adjacent SNPs). Prints, per threshold N, the tumours with
>= N substitutions and how many of them have zero indels / zero doublets.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/indel_free_rates.py [../shared/data]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

THRESHOLDS = (20, 50, 100, 200, 300, 500, 1000, 2000)


def table(name: str, sbs: np.ndarray, ind: np.ndarray, dbs: np.ndarray) -> None:
    none_ind, none_dbs = int((ind == 0).sum()), int((dbs == 0).sum())
    print(f"\n{name}: {len(sbs)} tumours; zero indels {none_ind}, zero doublets {none_dbs}")
    print(f"{'N':>6} {'>=N SBS':>8} {'no indel':>9} {'rate':>8} {'no DBS':>7} {'rate':>8}")
    for n in THRESHOLDS:
        big = sbs >= n
        k = int(big.sum())
        a, b = int((ind[big] == 0).sum()), int((dbs[big] == 0).sum())
        print(f"{n:>6} {k:>8} {a:>9} {a / max(k, 1):>8.4f} {b:>7} {b / max(k, 1):>8.4f}")


def pcawg(root: Path) -> None:
    sbs = pd.read_csv(root / "pcawg7/WGS_PCAWG.96.csv").iloc[:, 2:].sum()
    ind = pd.read_csv(root / "pcawg7/WGS_PCAWG.indels.csv").iloc[:, 4:].sum()
    dbs = pd.read_csv(root / "pcawg7/WGS_PCAWG.dinucs.csv").iloc[:, 2:].sum()
    common = sbs.index.intersection(ind.index).intersection(dbs.index)
    table("PCAWG genomes (catalogues)", *(s[common].to_numpy() for s in (sbs, ind, dbs)))


def tcga(root: Path, source: str, pass_only: bool) -> None:
    cols = ["Chromosome", "Start_Position", "Variant_Type", "Tumor_Sample_Barcode"]
    maf = pd.read_csv(root / f"tcga/{source}/mutations.maf.gz", sep="\t", usecols=cols + (["FILTER"] if
                      source == "mc3" else []), dtype={"Chromosome": str}, low_memory=False)
    if pass_only:
        maf = maf[maf["FILTER"].astype(str) == "PASS"]
    maf = maf.drop_duplicates(cols)
    key = maf["Tumor_Sample_Barcode"]
    snp = maf[maf["Variant_Type"] == "SNP"]
    snp = snp.sort_values(["Tumor_Sample_Barcode", "Chromosome", "Start_Position"])
    adjacent = ((snp["Tumor_Sample_Barcode"].values[1:] == snp["Tumor_Sample_Barcode"].values[:-1])
                & (snp["Chromosome"].values[1:] == snp["Chromosome"].values[:-1])
                & (np.diff(snp["Start_Position"].to_numpy()) == 1))
    pairs = pd.Series(snp["Tumor_Sample_Barcode"].values[1:][adjacent]).value_counts()
    samples = key.unique()
    n_snp = snp["Tumor_Sample_Barcode"].value_counts().reindex(samples, fill_value=0)
    n_ind = key[maf["Variant_Type"].isin(["INS", "DEL"])].value_counts().reindex(samples, fill_value=0)
    n_dnp = key[maf["Variant_Type"] == "DNP"].value_counts().reindex(samples, fill_value=0)
    n_dbs = n_dnp + pairs.reindex(samples, fill_value=0)
    name = f"TCGA {source} exomes ({'PASS' if pass_only else 'all calls'})"
    table(name, n_snp.to_numpy(), n_ind.to_numpy(), n_dbs.to_numpy())


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    pcawg(root)
    tcga(root, "mc3", False)
    tcga(root, "mc3", True)
    tcga(root, "firehose", False)
