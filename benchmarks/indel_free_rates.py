"""How often a real tumour with many substitutions has no indel (or no doublet) at all: the data behind
the threshold of `nanog1.genomics.channels.SNV_ONLY_MIN_SBS` (issue 31, a substitution-only file that does
not say so). PCAWG genomes from the catalogues (SBS96, ID83, DBS78 per genome), TCGA exomes from the MAFs
(SNP vs INS/DEL; doublets = DNP records plus adjacent SNPs). Prints, per threshold N, the tumours with
>= N substitutions and how many of them have zero indels / zero doublets.

Then the same for whole files (`FILE_SNV_ONLY_MIN_SBS`): a MAF or multi-sample VCF holds several tumours of
one study, so a file is modelled as a set of tumours of one project (PCAWG project, TCGA cohort). Per
project: its tumours' substitutions and indels together (the project's whole file) and the largest
indel-free part of it (every tumour without an indel together: no file of that project's tumours without
an indel can hold more substitutions). Then `DRAWS` random sets of k tumours of one project (project drawn
uniformly among those with >= k tumours), per k: how many sets have no indel, the most substitutions such a
set holds, how many indel-free sets reach each file threshold, and the projects of those reaching `TAIL`.

Then whole runs (`RUN_SNV_ONLY_MIN_FILES`, `RUN_SNV_ONLY_MIN_SBS`): one `nanog1 ingest` / `predict` call on
k single-tumour VCFs (one per tumour, as a lab's caller writes them), each file under every other rule. A
run is modelled as k tumours of one project drawn as above (fresh draws, `DRAWS` per k, k up to 200, ten
times as many for k near the chosen 10 files): per k, the indel-free runs, the most substitutions in one,
how many reach each run threshold; then, per smallest run size N, the most substitutions of an indel-free
run of at least N files (the largest SBS total a rule ">= N files and >= M substitutions, not one indel"
must stay above).

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/indel_free_rates.py [../shared/data]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

THRESHOLDS = (20, 50, 100, 200, 300, 500, 1000, 2000)
#: Tumours per random file, file thresholds (substitutions in the whole file) and draws per k.
FILE_SIZES = (2, 3, 5, 10, 20, 50, 100)
FILE_THRESHOLDS = (500, 700, 1000, 1500, 2000)
DRAWS = 200_000
#: Indel-free random files with at least this many substitutions are listed by project.
TAIL = 1000
#: Single-tumour files per random run and run thresholds (substitutions in the whole run).
RUN_SIZES = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 40, 60, 100, 200)
RUN_THRESHOLDS = (300, 500, 700, 1000, 1500)
#: Run sizes near the chosen RUN_SNV_ONLY_MIN_FILES get RUN_TAIL_BATCHES x DRAWS draws (the tail is thin).
RUN_TAIL_SIZES = (8, 10, 12, 15)
RUN_TAIL_BATCHES = 10


def table(name: str, sbs: np.ndarray, ind: np.ndarray, dbs: np.ndarray) -> None:
    none_ind, none_dbs = int((ind == 0).sum()), int((dbs == 0).sum())
    print(f"\n{name}: {len(sbs)} tumours; zero indels {none_ind}, zero doublets {none_dbs}")
    print(f"{'N':>6} {'>=N SBS':>8} {'no indel':>9} {'rate':>8} {'no DBS':>7} {'rate':>8}")
    for n in THRESHOLDS:
        big = sbs >= n
        k = int(big.sum())
        a, b = int((ind[big] == 0).sum()), int((dbs[big] == 0).sum())
        print(f"{n:>6} {k:>8} {a:>9} {a / max(k, 1):>8.4f} {b:>7} {b / max(k, 1):>8.4f}")


def pcawg(root: Path) -> pd.DataFrame:
    sbs = pd.read_csv(root / "pcawg7/WGS_PCAWG.96.csv").iloc[:, 2:].sum()
    ind = pd.read_csv(root / "pcawg7/WGS_PCAWG.indels.csv").iloc[:, 4:].sum()
    dbs = pd.read_csv(root / "pcawg7/WGS_PCAWG.dinucs.csv").iloc[:, 2:].sum()
    common = sbs.index.intersection(ind.index).intersection(dbs.index)
    table("PCAWG genomes (catalogues)", *(s[common].to_numpy() for s in (sbs, ind, dbs)))
    return pd.DataFrame({"project": [c.split("::")[0] for c in common], "sbs": sbs[common].to_numpy(),
                         "ind": ind[common].to_numpy()})


def tcga(root: Path, source: str, pass_only: bool) -> pd.DataFrame:
    cols = ["Chromosome", "Start_Position", "Variant_Type", "Tumor_Sample_Barcode"]
    maf = pd.read_csv(root / f"tcga/{source}/mutations.maf.gz", sep="\t", usecols=cols + ["Cohort"] + (
                      ["FILTER"] if source == "mc3" else []), dtype={"Chromosome": str}, low_memory=False)
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
    cohort = maf.drop_duplicates("Tumor_Sample_Barcode").set_index("Tumor_Sample_Barcode")["Cohort"]
    return pd.DataFrame({"project": cohort.reindex(samples).astype(str).to_numpy(), "sbs": n_snp.to_numpy(),
                         "ind": n_ind.to_numpy()})


def draw(groups: dict[str, tuple[np.ndarray, np.ndarray]], k: int, rng: np.random.Generator):
    """`DRAWS` random sets of k tumours of one project (the project drawn uniformly among those with >= k
    tumours; k distinct tumours of it): (eligible projects, each draw's project index, substitutions and
    indels per draw)."""
    eligible = [p for p, (sbs, _) in groups.items() if len(sbs) >= k]
    if not eligible:
        return eligible, None, None, None
    picks = rng.choice(len(eligible), DRAWS)
    totals, indels = np.empty(DRAWS), np.empty(DRAWS)
    for j, project in enumerate(eligible):
        rows = np.flatnonzero(picks == j)
        sbs, ind = groups[project]
        chosen = rng.random((len(rows), len(sbs))).argsort(axis=1)[:, :k]
        totals[rows], indels[rows] = sbs[chosen].sum(axis=1), ind[chosen].sum(axis=1)
    return eligible, picks, totals, indels


def runs(name: str, tumours: pd.DataFrame, seed: int = 1) -> None:
    """Runs of k single-tumour files of one project's tumours (module docstring): per k (`RUN_TAIL_BATCHES`
    times the draws for k in `RUN_TAIL_SIZES`, near the chosen run size), then per smallest run size N the
    most substitutions of an indel-free run of >= N files."""
    rng = np.random.default_rng(seed)
    groups = {p: (g["sbs"].to_numpy(), g["ind"].to_numpy()) for p, g in tumours.groupby("project")}
    heads = " ".join(f"{'>=' + str(t):>7}" for t in RUN_THRESHOLDS)
    print(f"\n{name}: runs of k single-tumour files of one project ({DRAWS:,} per k, "
          f"{RUN_TAIL_BATCHES * DRAWS:,} for k in {RUN_TAIL_SIZES}): indel-free runs, the most substitutions "
          "in one, and indel-free runs with >= T substitutions")
    print(f"{'k':>4} {'projects':>8} {'draws':>9} {'no indel':>9} {'rate':>9} {'max SBS':>8} {heads}  "
          "project of the max")
    most = {}
    for k in RUN_SIZES:
        batches = RUN_TAIL_BATCHES if k in RUN_TAIL_SIZES else 1
        free_totals, best = [], (0, "-")
        for _ in range(batches):
            eligible, picks, totals, indels = draw(groups, k, rng)
            if not eligible:
                break
            free = indels == 0
            free_totals.append(totals[free])
            if free.any() and totals[free].max() > best[0]:
                best = (int(totals[free].max()), eligible[picks[np.flatnonzero(free)[totals[free].argmax()]]])
        if not free_totals:
            continue
        found = np.concatenate(free_totals)
        most[k] = best[0]
        over = " ".join(f"{int((found >= t).sum()):>7}" for t in RUN_THRESHOLDS)
        n = batches * DRAWS
        print(f"{k:>4} {len(eligible):>8} {n:>9} {len(found):>9} {len(found) / n:>9.6f} {most[k]:>8} {over}  "
              f"{best[1]}")
    print("most substitutions of an indel-free run of >= N files: " + ", ".join(
        f"N={n}: {max(v for k, v in most.items() if k >= n):,}" for n in most))


def files(name: str, tumours: pd.DataFrame, seed: int = 0) -> None:
    """Whole files of one project's tumours: per project, then random sets of k tumours (module docstring)."""
    by = tumours.assign(free_sbs=tumours["sbs"].where(tumours["ind"] == 0, 0),
                        free=(tumours["ind"] == 0).astype(int)).groupby("project")
    per = by.agg(tumours=("sbs", "size"), sbs=("sbs", "sum"), indels=("ind", "sum"),
                 indel_free=("free", "sum"),
                 indel_free_sbs=("free_sbs", "sum")).sort_values("indels")
    print(f"\n{name}: whole files, one per project ({len(per)} projects)")
    print(per.to_string())
    print(f"fewest indels in one project's file: {int(per['indels'].min()):,} ({per.index[0]}); largest "
          f"indel-free part of a project: {int(per['indel_free_sbs'].max()):,} substitutions "
          f"({per['indel_free_sbs'].idxmax()}, {int(per.loc[per['indel_free_sbs'].idxmax(), 'indel_free'])} "
          "tumours)")
    rng = np.random.default_rng(seed)
    groups = {p: (g["sbs"].to_numpy(), g["ind"].to_numpy()) for p, g in tumours.groupby("project")}
    heads = " ".join(f"{'>=' + str(t):>7}" for t in FILE_THRESHOLDS)
    print(f"random files of k tumours of one project, {DRAWS:,} per k: indel-free files, the most "
          "substitutions in one, and indel-free files with >= T substitutions")
    print(f"{'k':>4} {'projects':>8} {'no indel':>9} {'rate':>7} {'max SBS':>8} {heads}  "
          f"projects >= {TAIL:,}")
    for k in FILE_SIZES:
        eligible, picks, totals, indels = draw(groups, k, rng)
        if not eligible:
            continue
        free = indels == 0
        most = int(totals[free].max()) if free.any() else 0
        over = " ".join(f"{int((free & (totals >= t)).sum()):>7}" for t in FILE_THRESHOLDS)
        tail = pd.Series([eligible[j] for j in picks[free & (totals >= TAIL)]], dtype=str).value_counts()
        where = ", ".join(f"{p} {n}" for p, n in tail.items()) or "-"
        print(f"{k:>4} {len(eligible):>8} {int(free.sum()):>9} {free.mean():>7.4f} {most:>8} {over}  {where}")


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
    found = {"PCAWG genomes": pcawg(root), "TCGA mc3 exomes (all calls)": tcga(root, "mc3", False),
             "TCGA mc3 exomes (PASS)": tcga(root, "mc3", True),
             "TCGA firehose exomes (all calls)": tcga(root, "firehose", False)}
    for label, tumours in found.items():
        files(label, tumours)
    for label, tumours in found.items():
        runs(label, tumours)
