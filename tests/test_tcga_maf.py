"""Every record of a slice of the real TCGA MAFs accounted for, checked against an independent pandas count.

The slice is the first lines of each source (MC3 with its FILTER column, Firehose with chromosomes
23/24), ingested without a reference. The expected per-tumour counts are computed here with plain
pandas group-bys, not with the ingest code: PASS (or empty) FILTER only, exact duplicates once, a
2-bp substitution or two adjacent substitutions of one tumour = one doublet, runs of 3+ adjacent
substituted bases and longer substitutions = MNV, indels with a '-' allele by type and length.
"""

from __future__ import annotations

import gzip
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED

from nanog1.genomics.channels import SBS6, set_slice
from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.ingest import ingest
from nanog1.genomics.variants import filter_counts

TCGA = SHARED / "data" / "tcga"
LINES = 6000
FOLD = str.maketrans("ACGT", "TGCA")


@pytest.fixture(scope="module")
def tcga_slice(tmp_path_factory) -> list[Path]:
    """The first LINES records of each source, as MAFs of their own (same header)."""
    sources = [TCGA / s / "mutations.maf.gz" for s in ("mc3", "firehose")]
    if not all(p.is_file() for p in sources):
        pytest.skip("../shared/data/tcga is absent on this machine")
    work = tmp_path_factory.mktemp("tcga")
    out = []
    for src in sources:
        dest = work / f"{src.parent.name}.maf"
        with gzip.open(src, "rt") as f:
            dest.write_text("".join(islice(f, LINES + 1)))
        out.append(dest)
    return out


def _sbs6(ref: pd.Series, alt: pd.Series) -> pd.Series:
    purine = ref.isin(["A", "G"])
    r = ref.where(~purine, ref.str.translate(FOLD))
    a = alt.where(~purine, alt.str.translate(FOLD))
    return r + ">" + a


def expected_counts(path: Path) -> pd.DataFrame:
    """Per-tumour SBS6 classes, doublets, MNV records and indels by ID12 class, by pandas alone."""
    maf = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if "FILTER" in maf:
        maf = maf[maf["FILTER"].isin(["PASS", "", "."])]
    key = ["Tumor_Sample_Barcode", "Chromosome", "Start_Position", "Reference_Allele", "Tumor_Seq_Allele2"]
    maf = maf.drop_duplicates(key).assign(pos=lambda m: m["Start_Position"].astype(int))
    ref, alt = maf["Reference_Allele"], maf["Tumor_Seq_Allele2"]
    subst = (ref.str.len() == alt.str.len()) & (ref != "-") & (alt != "-")
    # one row per changed base of substitutions up to 2 bp
    bases = []
    for k in range(2):
        part = maf[subst & (ref.str.len() <= 2)].copy()
        part["r"] = part["Reference_Allele"].str[k].fillna("")
        part["a"] = part["Tumor_Seq_Allele2"].str[k].fillna("")
        part = part[(part["r"] != "") & (part["r"] != part["a"])]
        bases.append(part.assign(pos=part["pos"] + k))
    snv = pd.concat(bases, ignore_index=True).sort_values(["Tumor_Sample_Barcode", "Chromosome", "pos"])
    snv = snv.reset_index(drop=True)
    group = (snv["Tumor_Sample_Barcode"] + ":" + snv["Chromosome"]).to_numpy()
    pos = snv["pos"].to_numpy()
    new_run = np.r_[True, (group[1:] != group[:-1]) | (np.diff(pos) != 1)]
    run_id = np.cumsum(new_run)
    run_len = pd.Series(run_id).map(pd.Series(run_id).value_counts()).to_numpy()
    snv = snv.assign(run=run_id, run_len=run_len)
    out = pd.DataFrame(index=pd.Index(sorted(maf["Tumor_Sample_Barcode"].unique()), name="sample"))
    lone = snv[snv["run_len"] == 1]
    classes = _sbs6(lone["r"], lone["a"])
    for label in SBS6:
        out[label] = (classes == label).groupby(lone["Tumor_Sample_Barcode"]).sum()
    out["DBS"] = snv[snv["run_len"] == 2].groupby("Tumor_Sample_Barcode")["run"].nunique()
    is_del, is_ins = alt == "-", ref == "-"
    size = np.where(is_del, ref.str.len(), alt.str.len()).clip(max=5)
    unit = np.where(is_del, ref, alt)
    label = np.where(
        size == 1,
        np.where(is_del, "1:Del:", "1:Ins:") + np.where(np.isin(unit, ["C", "G"]), "C", "T"),
        pd.Series(size).astype(str).to_numpy() + np.where(is_del, ":Del", ":Ins"),
    )
    indels = pd.DataFrame({"s": maf["Tumor_Sample_Barcode"].to_numpy(), "label": label})[
        (is_del | is_ins).to_numpy()
    ]
    for name, counts in indels.groupby("label")["s"]:
        out[name] = counts.value_counts()
    return out.fillna(0).astype(np.int64)


@pytest.fixture(scope="module")
def ingested(tcga_slice, tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort") / "tcga.h5ad"
    report = ingest(tcga_slice, None, None, out)
    return report, read_cohort(out)


def test_per_tumour_counts_match_pandas(tcga_slice, ingested):
    _, adata = ingested
    want = pd.concat([expected_counts(p) for p in tcga_slice]).fillna(0).astype(np.int64)
    assert set(want.index) <= set(adata.obs_names) and len(want) > 20
    got = adata[want.index]
    for label in SBS6:
        np.testing.assert_array_equal(np.asarray(got[:, label].X).ravel(), want[label], err_msg=label)
    dbs = np.asarray(got.X)[:, set_slice("DBS78")].sum(1)
    np.testing.assert_array_equal(dbs, want["DBS"])
    for label in [c for c in want.columns if ":" in c]:
        np.testing.assert_array_equal(np.asarray(got[:, label].X).ravel(), want[label], err_msg=label)


def test_every_record_accounted_for(tcga_slice, ingested):
    report, adata = ingested
    meta = adata.uns["nanog1"]
    acc = meta["accounting"]
    assert "records_per_sample" not in meta  # one accounting table
    table = acc.drop(columns="file").groupby("sample").sum()
    assert report.records == 2 * LINES == int(table["read"].sum())
    assert (table["read"] == table["counted"] + table["skipped"]).all()
    assert (table["skipped"] == table.drop(columns=["read", "counted", "skipped"]).sum(axis=1)).all()
    per_file = acc.groupby("file")["read"].sum()
    assert per_file.to_dict() == {"0": LINES, "1": LINES}
    per_tumour = pd.concat(
        [
            pd.read_csv(p, sep="\t", usecols=["Tumor_Sample_Barcode"])["Tumor_Sample_Barcode"]
            for p in tcga_slice
        ]
    ).value_counts()
    np.testing.assert_array_equal(table["read"].reindex(per_tumour.index), per_tumour)
    mc3 = pd.read_csv(tcga_slice[0], sep="\t", usecols=["FILTER"], keep_default_na=False)["FILTER"]
    assert (
        sum(filter_counts(meta["filter_dropped"]).values())
        == int((~mc3.isin(["PASS", ""])).sum())
        == meta["skips"]["non_pass"]
    )
    # Firehose's 23/24 are X/Y; cancer types come from the Cohort column.
    assert "23" not in set(adata.uns["tokens"]["chroms"]) and adata.obs["cancer_type"].notna().all()
    assert meta["channel_sets"] == {
        "SBS96": "not_computable",
        "DBS78": "exact",
        "ID83": "not_computable",
        "SBS6": "exact",
        "ID12": "exact",
    }
