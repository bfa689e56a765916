"""Protein changes carried through MAF ingest and merge as codon keys, and the codon hotspot bag, on
hand-written MAF rows in MC3's (`HGVSp_Short`) and Firehose's (`Protein_Change`) spellings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nanog1.genomics.gene_bag import FIRST_ID, codon_keys, hotspot_pairs, key_of, top_genes
from nanog1.genomics.ingest import IngestOptions, ingest
from nanog1.genomics.protein import codon_key, tally

BASE = ["Tumor_Sample_Barcode", "Hugo_Symbol", "Chromosome", "Start_Position", "End_Position",
        "Variant_Classification", "Variant_Type", "Reference_Allele", "Tumor_Seq_Allele2",
        "Cohort"]  # fmt: skip
# KRAS G12D and G12V: one codon, two genomic sites (c.35G>A at 25398284, c.34G>T at 25398285)
G12D = ("KRAS", "12", 25398284, "C", "T")
G12V = ("KRAS", "12", 25398285, "C", "A")
IDH1 = ("IDH1", "2", 209113112, "C", "T")
NONCODING = ("TERT", "5", 1295228, "G", "A")


@pytest.mark.parametrize(
    ("change", "key"),
    [("p.G12D", "p.G12"), ("G12D", "p.G12"), ("p.R132H", "p.R132"), ("p.Gly12Asp", "p.G12"),
     ("p.X125_splice", "p.X125"), ("p.K120fs", "p.K120"), ("p.K120Rfs*5", "p.K120"), ("p.V11V", "p.V11"),
     ("p.E746_A750del", "p.E746"), ("p.746_750ELREA>A", "p.E746"), ("p.YST657del", "p.Y657"),
     ("p.*123Qext*29", "p.*123"), ("p.M1?", "p.M1"), ("", ""), (".", ""), ('""', ""), (None, ""),
     ("p.%3D", ""), ("p.-146fs", ""), ("p.105_106insHH", ""), ("c.35G>A", "")],
)  # fmt: skip
def test_codon_key_reads_both_sources_spellings(change, key):
    assert codon_key(change) == key


def test_tally_counts_missing_codons_by_reason():
    counts = tally([pd.Categorical(["p.G12D", "p.G12V", "", "p.-146fs", None]), None, np.array(["G12C"])])
    assert dict(counts) == {"codon": 3, "none": 2, "unrecognised": 1}


def _maf(tmp_path, name: str, column: str | None, rows: list[tuple]) -> object:
    """Ingest hand-written rows (tumour, site, protein change) into a cohort; `column` names the protein
    column (None: the MAF has none)."""
    records = []
    for tumour, (gene, chrom, pos, ref, alt), change in rows:
        kind = "Missense_Mutation" if change else "5'Flank"
        records.append((tumour, gene, chrom, pos, pos, kind, "SNP", ref, alt, "LUAD")
                       + ((change,) if column else ()))  # fmt: skip
    path = tmp_path / f"{name}.maf"
    pd.DataFrame(records, columns=BASE + ([column] if column else [])).to_csv(path, sep="\t", index=False)
    report = ingest([path], None, None, tmp_path / f"{name}.h5ad", IngestOptions(filter="all"))
    import anndata as ad

    return ad.read_h5ad(tmp_path / f"{name}.h5ad"), report


MC3_ROWS = [("A", G12D, "p.G12D"), ("B", G12V, "p.G12V"), ("C", IDH1, "p.R132H"), ("C", NONCODING, "."),
            ("D", G12D, "p.G12D")]  # fmt: skip
FIREHOSE_ROWS = [("A", G12D, "G12D"), ("B", G12V, "p.G12V"), ("C", IDH1, "p.R132H"), ("C", NONCODING, '""'),
                 ("D", G12D, "p.-12fs")]  # fmt: skip


@pytest.mark.parametrize(("column", "rows"), [("HGVSp_Short", MC3_ROWS), ("Protein_Change", FIREHOSE_ROWS)])
def test_ingest_keeps_codons_and_counts_the_missing(tmp_path, column, rows):
    adata, report = _maf(tmp_path, "c", column, rows)
    tok = adata.uns["tokens"]
    where = zip(np.repeat(adata.obs_names, np.diff(tok["offsets"])), tok["pos"], strict=True)
    keys = dict(zip(where, codon_keys(tok), strict=True))
    assert keys[("A", 25398284)] == keys[("B", 25398285)] == "KRAS:p.G12"  # two alleles, two sites, one codon
    assert keys[("C", 209113112)] == "IDH1:p.R132" and keys[("C", 1295228)] == ""
    unrecognised = int(column == "Protein_Change")  # Firehose's p.-12fs names no residue
    assert keys[("D", 25398284)] == ("" if unrecognised else "KRAS:p.G12")
    expected = {"codon": 4 - unrecognised, "none": 1, "unrecognised": unrecognised}
    assert dict(adata.uns["nanog1"]["protein_change"]) == expected
    assert any(f"{4 - unrecognised} of 5 events have a codon key" in n for n in report.notes)


def test_without_a_protein_column_there_is_no_codon_field_and_no_codon_key(tmp_path):
    adata, report = _maf(tmp_path, "n", None, [(t, s, "") for t, s, _ in MC3_ROWS])
    tok = adata.uns["tokens"]
    assert "codon" not in tok and "protein_change" not in adata.uns["nanog1"]
    assert not any("protein change" in n for n in report.notes)
    assert (codon_keys(tok) == "").all() and len(hotspot_pairs(tok, "codon")[0]) == 0
    assert len(hotspot_pairs(tok, "site")[0]) == 5


def test_codon_hotspots_group_alleles_that_sites_split(tmp_path):
    adata, _ = _maf(tmp_path, "c", "HGVSp_Short", MC3_ROWS)
    names, tok = list(adata.obs_names), adata.uns["tokens"]
    train = np.array([names.index(t) for t in "ABC"])  # D held out
    chosen = {}
    for key in ("site", "codon", "both"):
        rows, ids, table = hotspot_pairs(tok, key)
        chosen[key] = table[top_genes(rows, ids, train, 10, min_count=2) - FIRST_ID].tolist()
    assert chosen["site"] == []  # G12D in A only among training tumours (D is held out), G12V in B
    assert chosen["codon"] == chosen["both"] == ["KRAS:p.G12"]
    assert key_of(["KRAS:p.G12"]) == "codon" and key_of(["12:25398284", "KRAS:p.G12"]) == "both"
    with pytest.raises(ValueError, match="unknown hotspot key"):
        hotspot_pairs(tok, "allele")


def test_merge_carries_codons_onto_the_union_table(tmp_path):
    from nanog1.genomics.merge import merge_adatas

    a, _ = _maf(tmp_path, "a", "HGVSp_Short", MC3_ROWS[:2])
    b, _ = _maf(tmp_path, "b", "HGVSp_Short", MC3_ROWS[2:4])
    c, _ = _maf(tmp_path, "c", None, [("E", IDH1, "")])
    merged, _ = merge_adatas([a, b, c], [tmp_path / f"{n}.h5ad" for n in "abc"])
    tok = merged.uns["tokens"]
    names = np.repeat(np.asarray(merged.obs_names), np.diff(tok["offsets"]))
    got = sorted(zip(names.tolist(), codon_keys(tok).tolist(), strict=True))
    assert got == [("A", "KRAS:p.G12"), ("B", "KRAS:p.G12"), ("C", ""), ("C", "IDH1:p.R132"), ("E", "")]
    assert dict(merged.uns["nanog1"]["protein_change"]) == {"codon": 3, "none": 1, "unrecognised": 0}


def _typed_rows(prefix: str, n_per_type: int, seed: int) -> list[tuple]:
    """AAA tumours carry KRAS G12D or G12V (alternating: one codon, two sites), BBB IDH1 R132H, CCC none;
    every tumour also has random missense mutations with a made-up protein change."""
    rng = np.random.default_rng(seed)
    rows = []
    for cancer, sites in (("AAA", (G12D, G12V)), ("BBB", (IDH1,)), ("CCC", ())):
        for t in range(n_per_type):
            name = f"{prefix}{cancer}{t:02d}"
            hot = [sites[t % len(sites)]] if sites else []
            rows += [(name, s, {G12D: "p.G12D", G12V: "p.G12V", IDH1: "p.R132H"}[s], cancer) for s in hot]
            for _ in range(int(rng.integers(5, 15))):
                pos = int(rng.integers(1, 50_000_000))
                site = (f"G{int(rng.integers(0, 30))}", str(rng.integers(1, 23)), pos, "C", "A")
                rows.append((name, site, f"p.L{int(rng.integers(1, 900))}M", cancer))
    return rows


def test_cli_train_with_codon_hotspots_saves_codons_and_evaluate_recomputes_them(tmp_path, monkeypatch):
    import anndata as ad
    from typer.testing import CliRunner

    from nanog1.cli import app
    from nanog1.encoder.data import cohort_arrays, for_model
    from nanog1.encoder.loop import load_model

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    for name, n, seed in (("train", 12, 0), ("other", 6, 1)):
        records = [(t, g, c, p, p, "Missense_Mutation", "SNP", r, a, typ, ch)
                   for t, (g, c, p, r, a), ch, typ in _typed_rows(name, n, seed)]  # fmt: skip
        pd.DataFrame(records, columns=BASE + ["HGVSp_Short"]).to_csv(tmp_path / f"{name}.maf", sep="\t",
                                                                     index=False)  # fmt: skip
        ingest([tmp_path / f"{name}.maf"], None, None, tmp_path / f"{name}.h5ad", IngestOptions(filter="all"))
    run = tmp_path / "runs" / "codon"
    args = ["train", str(tmp_path / "train.h5ad"), "--out", str(run), "--view", "events", "--hotspots", "6",
            "--hotspot-key", "codon", "--gene-bag", "5", "--epochs", "2", "--hidden", "16", "--layers", "1",
            "--rank", "4", "--heads", "2", "--batch-size", "8", "--lr", "0.01"]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    model, saved = load_model(run / "model.pt")
    # G12D and G12V are each in ~6 of the 12 AAA tumours (fewer in the training split): as sites neither
    # reaches 6 training tumours, as one codon KRAS:p.G12 does; IDH1 R132H is in every BBB tumour
    assert saved["encoder_config"]["hotspots"] == ["IDH1:p.R132", "KRAS:p.G12"]
    n_csq = len(saved["encoder_config"]["consequence_scale"])  # then the consequence shares (default on)
    assert model.gene_bag.in_features == 5 + 2 + n_csq
    # another cohort's columns are recomputed from its own tokens by name: KRAS G12D and G12V tumours alike
    other = ad.read_h5ad(tmp_path / "other.h5ad")
    arrays = for_model(cohort_arrays(other), saved["encoder_config"])
    kras = np.array([n.startswith("otherAAA") for n in other.obs_names], dtype=np.float32)
    assert np.array_equal(arrays.gene_bag[:, 6], kras) and arrays.gene_bag[:, 5].sum() == 6  # 6 BBB: IDH1
    out = tmp_path / "other_eval.h5ad"
    evaluated = CliRunner().invoke(app, ["evaluate", str(tmp_path / "other.h5ad"), "--run", str(run),
                                         "--out", str(out)])  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    assert "predicted_type" in ad.read_h5ad(out).obs
    bad = CliRunner().invoke(app, ["train", str(tmp_path / "train.h5ad"), "--out", str(run) + "x", "--view",
                                   "events", "--hotspot-key", "allele"])  # fmt: skip
    assert bad.exit_code != 0 and "unknown hotspot_key 'allele'" in bad.output


def _write_typed_maf(path, prefix: str, n: int, seed: int, protein: bool = True) -> None:
    """`_typed_rows` as a MAF, with its HGVSp_Short column or (protein False) without it."""
    records = [(t, g, c, p, p, "Missense_Mutation", "SNP", r, a, typ, ch)
               for t, (g, c, p, r, a), ch, typ in _typed_rows(prefix, n, seed)]  # fmt: skip
    frame = pd.DataFrame(records, columns=BASE + ["HGVSp_Short"])
    (frame if protein else frame.drop(columns="HGVSp_Short")).to_csv(path, sep="\t", index=False)


def test_codon_model_states_inputs_without_protein_changes(tmp_path, monkeypatch):
    """A model with codon hotspots given a MAF without HGVSp_Short (as a plain VCF: no protein change)
    says so per tumour, in uns / JSON / report / the CLI's warning and as a Python warning; the same MAF
    with the column is scored without a word."""
    import json
    import warnings

    import torch
    from typer.testing import CliRunner

    from nanog1.cli import app
    from nanog1.encoder.predictor import PredictOptions, predict, read_inputs
    from nanog1.encoder.protein_input import ProteinChangeMismatchWarning

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    _write_typed_maf(tmp_path / "train.maf", "train", 12, 0)
    ingest([tmp_path / "train.maf"], None, None, tmp_path / "train.h5ad", IngestOptions(filter="all"))
    base = ["train", str(tmp_path / "train.h5ad"), "--view", "events", "--hotspots", "6", "--gene-bag", "5",
            "--epochs", "1", "--hidden", "16", "--layers", "1", "--rank", "4", "--heads", "2",
            "--max-events", "8"]  # fmt: skip
    done = CliRunner().invoke(app, [*base, "--hotspot-key", "codon", "--out", str(tmp_path / "codon")])
    assert done.exit_code == 0, done.output
    assert torch.load(tmp_path / "codon" / "model.pt", weights_only=True)["train_config"]["max_events"] == 8
    _write_typed_maf(tmp_path / "with.maf", "new", 3, 1)
    _write_typed_maf(tmp_path / "bare.maf", "new", 3, 1, protein=False)
    fast = PredictOptions(neighbours=0, exposures=False)
    with_protein = read_inputs([tmp_path / "with.maf"], filter="all")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProteinChangeMismatchWarning)
        predict(with_protein, tmp_path / "codon", fast)
    record = with_protein.uns["nanog1_predict"]
    assert record["codon_hotspots"] == 2 and record["protein_change_mismatch"] == ""
    assert with_protein.obs["protein_change"].all()
    bare = read_inputs([tmp_path / "bare.maf"], filter="all")
    with pytest.warns(ProteinChangeMismatchWarning, match="9 of 9 tumour"):
        predict(bare, tmp_path / "codon", fast)
    assert not bare.obs["protein_change"].any()
    assert bare.uns["nanog1_predict"]["protein_change_mismatch"].startswith("protein-change mismatch")
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "bare.maf"), "--model", str(tmp_path / "codon"),
                                   "--out", str(tmp_path / "o"), "--no-exposures", "--neighbours", "0",
                                   "--reports"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "warning: protein-change mismatch" in res.output and "9 without protein change" in res.output
    note = json.loads((tmp_path / "o" / "predictions.json").read_text())["model"]["protein_change_mismatch"]
    assert "2 protein codons" in note and note in next((tmp_path / "o").glob("*.report.md")).read_text()


def test_protein_mismatch_sentence_counts_only_tumours_with_calls():
    from nanog1.encoder.protein_input import codon_hotspots, mismatch

    assert codon_hotspots({"hotspots": ["2:209113112", "KRAS:p.G12"]}) == ["KRAS:p.G12"]
    assert codon_hotspots({"hotspots": ["2:209113112"]}) == [] and codon_hotspots({}) == []
    has, calls = np.array([True, False, False]), np.array([True, True, False])
    assert "1 of 2 tumour(s) carry no protein change" in mismatch(876, has, calls)
    assert mismatch(0, has, calls) == ""
    assert mismatch(876, np.array([True, False]), np.array([True, False])) == ""
