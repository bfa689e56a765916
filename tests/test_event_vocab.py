"""A model's event vocabularies over ingested tokens: strings per field, UNK, range checks, the cap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED

from nanog1.genomics import event_vocab as ev
from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.ingest import IngestOptions, ingest

TCGA = SHARED / "data" / "tcga"
COLUMNS = ["Tumor_Sample_Barcode", "Hugo_Symbol", "Chromosome", "Start_Position", "End_Position",
           "Variant_Classification", "Variant_Type", "Reference_Allele", "Tumor_Seq_Allele2", "t_alt_count",
           "t_depth", "Cohort"]  # fmt: skip


def _cohort(tmp_path, rows: list[tuple], name: str = "a"):
    path = tmp_path / f"{name}.maf"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, sep="\t", index=False)
    ingest([path], None, None, tmp_path / f"{name}.h5ad", IngestOptions(filter="all"))
    return read_cohort(tmp_path / f"{name}.h5ad")


ROWS = [
    ("T1", "TP53", "17", 7577120, 7577120, "Missense_Mutation", "SNP", "G", "A", 10, 20, "BRCA"),
    ("T1", "KRAS", "23", 1500000, 1500000, "Silent", "SNP", "T", "C", None, None, "BRCA"),
    ("T2", "TP53", "chr17", 7577500, 7577500, "Nonsense_Mutation", "DEL", "C", "-", 1, 100, "LUAD"),
    ("T2", "RARE1", "1", 5, 5, "Intron", "SNP", "A", "C", 1, 10, "LUAD"),
]


def test_token_strings_read_ingested_tokens(tmp_path):
    adata = _cohort(tmp_path, ROWS)
    tok = adata.uns["tokens"]
    s = ev.token_strings(tok)
    rows = ev.tumour_index(tok)
    by = pd.DataFrame({k: s[k] for k in ev.FIELDS}).assign(row=rows)
    t1 = by[by["row"] == 0].set_index("gene")
    assert t1.loc["TP53", "channel"] == "SBS6:C>T"  # G>A on the pyrimidine strand
    assert t1.loc["KRAS", "chrom"] == "X" and t1.loc["KRAS", "bin"] == "X:1"  # Firehose's 23 is X
    assert t1.loc["TP53", "vaf"] == "v5" and t1.loc["KRAS", "vaf"] == ""  # 10/20; no counts -> unknown
    t2 = by[by["row"] == 1].set_index("gene")
    assert t2.loc["TP53", "channel"].startswith("ID12:1:Del:C") and t2.loc["RARE1", "vaf"] == "v1"


def test_vocab_unk_for_rare_and_unseen_values_and_range_check(tmp_path):
    adata = _cohort(tmp_path, ROWS)
    vocab = ev.build_vocab([adata.uns["tokens"]], {"gene": 2})
    assert vocab.values["gene"] == ["TP53"]  # KRAS and RARE1 occur in one tumour each
    everything = ev.build_vocab([adata.uns["tokens"]])
    assert everything.values["gene"] == ["TP53", "KRAS", "RARE1"]  # commonest first (2 tumours), ties by name
    genes = ev.token_strings(adata.uns["tokens"])["gene"]
    ids = ev.encode(adata.uns["tokens"], vocab)
    assert ids["gene"].tolist() == [ev.N_SPECIAL if g == "TP53" else ev.UNK for g in genes]
    other = _cohort(tmp_path, [("T9", "TP53", "5", 1, 1, "Silent", "SNP", "C", "A", None, None, "BRCA")], "b")
    assert ev.encode(other.uns["tokens"], vocab)["chrom"].tolist() == [ev.UNK]  # unseen contig: UNK
    ev.check_ids(ids, vocab.sizes())
    with pytest.raises(ValueError, match="outside its vocabulary"):
        ev.check_ids({"gene": np.array([vocab.size("gene")])}, vocab.sizes())
    vocab.save(tmp_path / "vocab.json")
    assert ev.EventVocab.load(tmp_path / "vocab.json") == vocab


def test_cap_keeps_at_most_n_in_order_and_is_deterministic():
    offsets, names = np.array([0, 50, 55]), np.array(["A", "B"])
    keep = ev.cap_per_tumour(offsets, names, 10)
    assert keep[:50].sum() == 10 and keep[50:].all()
    assert (keep == ev.cap_per_tumour(offsets, names, 10)).all()
    assert not (keep == ev.cap_per_tumour(offsets, names, 10, seed=1)).all()


def test_summary_shares_and_burden(tmp_path):
    adata = _cohort(tmp_path, ROWS)
    summ = ev.summary_features(adata, ["Intron", "Missense_Mutation", "Silent"])
    assert summ.loc["T1", "SBS6:C>T"] == 0.5 and summ.loc["T1", "SBS6:T>C"] == 0.5
    assert summ.loc["T1", "SBS6:log_burden"] == pytest.approx(np.log1p(2))
    assert summ.loc["T2", "csq:Intron"] == 0.5 and summ.loc["T2", "csq:Silent"] == 0


@pytest.mark.skipif(not (TCGA / "mc3" / "mutations.maf.gz").exists(), reason="no ../shared/data/tcga")
def test_real_maf_slice_tokens_match_an_independent_count(tmp_path):
    maf = pd.read_csv(TCGA / "mc3" / "mutations.maf.gz", sep="\t", nrows=20000, dtype=str)
    maf.to_csv(tmp_path / "slice.maf", sep="\t", index=False)
    ingest([tmp_path / "slice.maf"], None, None, tmp_path / "s.h5ad", IngestOptions(filter="all"))
    adata = read_cohort(tmp_path / "s.h5ad")
    s = ev.token_strings(adata.uns["tokens"])
    snv = maf[maf["Variant_Type"] == "SNP"]
    got = pd.Series(s["gene"][np.char.startswith(s["channel"].astype(str), "SBS6:")]).value_counts()
    key = ["Tumor_Sample_Barcode", "Chromosome", "Start_Position", "Tumor_Seq_Allele2"]
    expect = snv.drop_duplicates(key)
    expect = expect["Hugo_Symbol"].value_counts()
    # adjacent SNVs of one tumour become one DBS token, so per gene the SBS6 tokens can only be fewer
    joined = pd.concat([got, expect], axis=1).fillna(0)
    assert (joined.iloc[:, 0] <= joined.iloc[:, 1]).all() and joined.iloc[:, 0].sum() > 0.98 * len(expect)


def test_encode_finds_contigs_spelled_otherwise(tmp_path):
    """A UCSC-style input (chr1, chrX) typed by a vocabulary of plain names, and the reverse, gets the same
    chromosome and bin ids; a contig the vocabulary lacks in every spelling stays UNK."""
    tok = _cohort(tmp_path, ROWS).uns["tokens"]
    ucsc = dict(tok, chroms=np.array(["chr" + str(c) for c in tok["chroms"]], dtype=object))
    assert set(ev.token_strings(ucsc)["chrom"]) == {"chr17", "chrX", "chr1"}
    for vocab in (ev.build_vocab([tok]), ev.build_vocab([ucsc])):
        plain, prefixed = ev.encode(tok, vocab), ev.encode(ucsc, vocab)
        for name in ("chrom", "bin"):
            assert prefixed[name].tolist() == plain[name].tolist()
            assert (plain[name] != ev.UNK).all()
    firehose = dict(tok, chroms=np.array(["23" if c == "X" else str(c) for c in tok["chroms"]], dtype=object))
    vocab = ev.build_vocab([tok])
    assert ev.encode(firehose, vocab)["bin"].tolist() == ev.encode(tok, vocab)["bin"].tolist()
    row = ("T9", "TP53", "chr5", 1, 1, "Silent", "SNP", "C", "A", None, None, "BRCA")
    assert ev.encode(_cohort(tmp_path, [row], "b").uns["tokens"], vocab)["chrom"].tolist() == [ev.UNK]
