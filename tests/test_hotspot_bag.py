"""The CLS hotspot bag (recurrent mutated sites, chosen from training tumours only) and the all-gene
embedding bag of the event model, on tiny hand-made MAFs ingested by NanoG1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from nanog1.genomics.gene_bag import FIRST_ID, gene_bag, site_keys, site_pairs, top_genes
from nanog1.genomics.ingest import IngestOptions, ingest

COLS = ["Tumor_Sample_Barcode", "Hugo_Symbol", "Chromosome", "Start_Position", "End_Position",
        "Variant_Classification", "Variant_Type", "Reference_Allele", "Tumor_Seq_Allele2",
        "Cohort"]  # fmt: skip
IDH1 = ("IDH1", "2", 209113112, "C", "T")  # R132H
BRAF = ("BRAF", "7", 140453136, "A", "T")  # V600E


def _row(tumour: str, site: tuple, alt: str | None = None, chrom: str | None = None) -> tuple:
    gene, c, pos, ref, a = site
    return (tumour, gene, chrom or c, pos, pos, "Missense_Mutation", "SNP", ref, alt or a, "LGG")


def _tokens(tmp_path, rows: list[tuple], name: str) -> dict:
    maf = tmp_path / f"{name}.maf"
    pd.DataFrame(rows, columns=COLS).to_csv(maf, sep="\t", index=False)
    ingest([maf], None, None, tmp_path / f"{name}.h5ad", IngestOptions(filter="all"))
    import anndata as ad

    adata = ad.read_h5ad(tmp_path / f"{name}.h5ad")
    return adata.uns["tokens"], list(adata.obs_names)


def _cohort() -> list[tuple]:
    """A, B, C train; D, E held out. IDH1 R132H in A and B (twice in A: counted once); BRAF V600E in A
    and in both held-out tumours; a private TP53 site in C; one on chromosome X in B."""
    tp53 = ("TP53", "17", 7577120, "C", "T")
    atrx = ("ATRX", "X", 76938000, "G", "A")
    return [_row("A", IDH1), _row("A", (*IDH1[:2], IDH1[2], "C", "A")), _row("A", BRAF), _row("B", IDH1),
            _row("B", atrx), _row("C", tp53), _row("D", BRAF), _row("E", BRAF)]  # fmt: skip


def test_hotspots_are_sites_recurrent_in_training_tumours_only(tmp_path):
    tok, names = _tokens(tmp_path, _cohort(), "c")
    keys = site_keys(tok)
    assert "2:209113112" in set(keys) and "X:76938000" in set(keys)
    rows, sites, table = site_pairs(tok["offsets"], keys)
    assert len(set(zip(rows.tolist(), sites.tolist(), strict=True))) == len(rows)  # a tumour counts once
    train = np.array([names.index(t) for t in "ABC"])
    chosen = top_genes(rows, sites, train, k=100, min_count=2)
    # IDH1 in A and B (A twice: still 2 tumours); BRAF is in 3 tumours, but only one of them trains
    assert table[chosen - FIRST_ID].tolist() == ["2:209113112"]
    held_out = np.array([names.index(t) for t in "ADE"])
    assert table[top_genes(rows, sites, held_out, 100, min_count=2) - FIRST_ID].tolist() == ["7:140453136"]
    assert len(top_genes(rows, sites, train, 100, min_count=3)) == 0  # nothing in 3 training tumours
    bag = gene_bag(rows, sites, chosen, len(names))
    assert bag[:, 0].tolist() == [float(t in "AB") for t in names]


def test_site_keys_agree_across_chromosome_spellings(tmp_path):
    """Firehose writes X as 23: the same site must get the same key as MC3's 'X'."""
    atrx = ("ATRX", "X", 76938000, "G", "A")
    mc3, _ = _tokens(tmp_path, [_row("A", atrx), _row("A", IDH1)], "mc3")
    firehose, _ = _tokens(tmp_path, [_row("B", atrx, chrom="23"), _row("B", IDH1)], "fh")
    assert sorted(site_keys(mc3).tolist()) == sorted(site_keys(firehose).tolist())


def test_site_keys_and_saved_sites_are_spelled_canonically():
    """A cohort whose contigs kept a UCSC spelling (a VCF read against a chr-named reference) and a model
    that saved a site as 'chr2:...' or '23:...' still meet on the same site."""
    from nanog1.encoder.data import CohortArrays, with_gene_bag
    from nanog1.genomics.event_vocab import EventVocab
    from nanog1.genomics.gene_bag import canonical_site

    tokens = {"chroms": np.array(["chr2", "chrX", "23"], dtype=object), "chrom": np.array([0, 1, 2, 0]),
              "pos": np.array([209113112, 76938000, 76938000, 5]), "offsets": np.array([0, 2, 4])}
    assert site_keys(tokens).tolist() == ["2:209113112", "X:76938000", "X:76938000", "2:5"]
    spelled = [canonical_site(s) for s in ("chr23:7", "chrM:3", "17:9", "M:p.G12")]
    assert spelled == ["X:7", "MT:3", "17:9", "M:p.G12"]  # a codon key (gene M, codon 12) is left alone
    arrays = CohortArrays(sample_ids=["a", "b"], counts=np.zeros((2, 1)), channel_padding=np.zeros(1, bool),
                          labels=np.zeros(2, int), classes=["T"], tokens=tokens,
                          event_ids={"gene": np.full(4, 1), "offsets": tokens["offsets"]},
                          event_vocab=EventVocab(values={"gene": ["IDH1"]}))  # fmt: skip
    bag = with_gene_bag(arrays, ["IDH1"], ["chr2:209113112", "23:76938000", "7:140453136"]).gene_bag
    assert bag.tolist() == [[0, 1, 1, 0], [0, 0, 1, 0]]  # IDH1's gene id is UNK here: its column stays 0


def _model(**kw):
    from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig

    sizes = {"channel": 10, "gene": 20, "consequence": 6, "chrom": 5, "bin": 30, "vaf": 13}
    vocab = {k: [f"{k}{i}" for i in range(n - 3)] for k, n in sizes.items()}
    torch.manual_seed(0)
    cfg = MutationEncoderConfig(view="events", event_vocab=vocab, summary=False, n_summary=4, hidden=16,
                                layers=1, rank=4, heads=2, dropout=0.0, n_types=3, **kw)  # fmt: skip
    return MutationEncoder(cfg).eval(), {k: torch.full((2, 5), 3) for k in sizes}


def test_event_model_hotspot_columns_change_the_prediction_and_are_checked():
    model, ids = _model(gene_bag=["gene0", "gene1"], hotspots=["1:1", "1:2", "1:3"])
    summary = torch.randn(2, 4)
    genes = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    without = torch.cat([genes, torch.zeros(2, 3)], 1)
    with_hot = torch.cat([genes, torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])], 1)
    with torch.no_grad():
        a, b = (model(events=ids, summary_features=summary, gene_bag=g).type_logits
                for g in (without, with_hot))
    assert not torch.allclose(a[0], b[0]) and torch.allclose(a[1], b[1])  # only the tumour with the site
    with pytest.raises(ValueError, match="3 hotspot sites"):
        model(events=ids, summary_features=summary, gene_bag=genes)


def test_event_model_gene_embedding_bag_reads_every_gene_and_drops_only_in_training():
    model, ids = _model(embed_bags=["gene"], bag_dropout=0.5)
    summary = torch.randn(2, 4)
    # tumour 0 carries genes 4, 5, 6 (none of them in its token window), tumour 1 gene 4 only
    bags = {"gene": (torch.tensor([4, 5, 6, 4]), torch.tensor([3, 1]))}
    other = {"gene": (torch.tensor([4, 4]), torch.tensor([1, 1]))}

    def logits(b=None):
        return model(events=ids, summary_features=summary, bags=b).type_logits

    with torch.no_grad():
        a, b = logits(bags), logits(other)
        assert torch.equal(a, logits(bags))  # eval: no dropout, deterministic
        mean = model.embed.tables["gene"].weight[[4, 5, 6]].mean(0)
        assert torch.allclose(model._mean_bag("gene", *bags["gene"])[0], mean, atol=1e-6)
    assert not torch.allclose(a[0], b[0]) and torch.allclose(a[1], b[1])
    model.train()
    draws = {tuple(model._mean_bag("gene", *bags["gene"])[0].tolist()) for _ in range(20)}
    assert len(draws) > 1  # training: genes dropped at random
    with pytest.raises(ValueError, match="embedding bag of 'gene'"):
        logits()
    with pytest.raises(ValueError, match="outside its vocabulary"):
        logits({"gene": (torch.tensor([25]), torch.tensor([1, 0]))})


def _typed_maf(path, n_per_type: int, seed: int) -> None:
    """Tumours of three types among random mutations; AAA tumours carry IDH1 R132H, BBB ones BRAF V600E
    (a recurrent site each), CCC none."""
    rng = np.random.default_rng(seed)
    rows = []
    for cancer, site in (("AAA", IDH1), ("BBB", BRAF), ("CCC", None)):
        for t in range(n_per_type):
            name = f"{path.stem}{cancer}{t:02d}"
            rows += [_row(name, site)[:-1] + (cancer,)] if site else []
            for _ in range(int(rng.integers(5, 15))):
                pos = int(rng.integers(1, 50_000_000))
                gene, chrom = f"G{int(rng.integers(0, 30))}", str(rng.integers(1, 23))
                alt = str(rng.choice(["A", "G", "T"]))
                rows.append((name, gene, chrom, pos, pos, "Missense_Mutation", "SNP", "C", alt, cancer))
    pd.DataFrame(rows, columns=COLS).to_csv(path, sep="\t", index=False)


def test_cli_train_with_hotspots_saves_the_sites_and_evaluate_recomputes_them(tmp_path, monkeypatch):
    import anndata as ad
    from typer.testing import CliRunner

    from nanog1.cli import app
    from nanog1.encoder.loop import load_model

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    for name, n, seed in (("train", 12, 0), ("other", 6, 1)):
        _typed_maf(tmp_path / f"{name}.maf", n, seed)
        ingest([tmp_path / f"{name}.maf"], None, None, tmp_path / f"{name}.h5ad", IngestOptions(filter="all"))
    run = tmp_path / "runs" / "hot"
    args = ["train", str(tmp_path / "train.h5ad"), "--out", str(run), "--view", "events", "--hotspots", "3",
            "--gene-bag", "5", "--epochs", "20", "--hidden", "16", "--layers", "1", "--rank", "4", "--heads",
            "2", "--batch-size", "8", "--lr", "0.01"]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    model, saved = load_model(run / "model.pt")
    # the two type sites are in >= 3 training tumours (of the training split); random positions never are
    assert saved["encoder_config"]["hotspots"] == ["2:209113112", "7:140453136"]
    assert len(saved["encoder_config"]["gene_bag"]) == 5
    n_csq = len(saved["encoder_config"]["event_vocab"]["consequence"])  # the consequence shares (default on)
    assert saved["encoder_config"]["consequence_shares"] and n_csq >= 1
    assert len(saved["encoder_config"]["consequence_scale"]) == n_csq
    assert model.gene_bag.in_features == 5 + 2 + n_csq
    out = tmp_path / "other_eval.h5ad"
    evaluated = CliRunner().invoke(app, ["evaluate", str(tmp_path / "other.h5ad"), "--run", str(run),
                                         "--out", str(out)])  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    scored = ad.read_h5ad(out)
    predicted = scored.obs["predicted_type"].astype(str).to_numpy()
    truth = scored.obs["cancer_type"].astype(str).to_numpy()
    assert (predicted == truth).mean() >= 0.6  # the sites name AAA and BBB; chance is 1/3
    assert saved["input_filter"] == "all"  # the training cohort's FILTER rule, which predict applies


def test_predict_loads_a_hotspot_model_and_recomputes_the_sites_for_each_new_tumour(tmp_path, monkeypatch):
    """`nanog1 predict` with a model that has a hotspot bag: each new tumour's bag is 1 for exactly the
    saved sites among its own mutations, however its MAF spells the chromosome (2 or chr2)."""
    from typer.testing import CliRunner

    from nanog1.cli import app
    from nanog1.encoder.embedding import model_arrays
    from nanog1.encoder.predictor import load_predictor, predict, read_inputs

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    _typed_maf(tmp_path / "train.maf", 10, 0)
    ingest([tmp_path / "train.maf"], None, None, tmp_path / "train.h5ad", IngestOptions(filter="all"))
    run = tmp_path / "run"
    args = ["train", str(tmp_path / "train.h5ad"), "--out", str(run), "--view", "events", "--hotspots", "3",
            "--gene-bag", "4", "--epochs", "2", "--hidden", "8", "--layers", "1", "--rank", "2", "--heads",
            "2", "--batch-size", "8"]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    loaded = load_predictor(run)
    assert loaded.saved["encoder_config"]["hotspots"] == ["2:209113112", "7:140453136"]
    names = ("new_idh1", "new_braf", "new_idh1_other_allele")
    rows = [_row(names[0], IDH1, chrom="chr2"), _row(names[1], BRAF), _row(names[2], IDH1, alt="A")]
    rows += [_row(t, ("G1", "5", 1000 + i, "C", "T")) for i, t in enumerate(names)]
    pd.DataFrame(rows, columns=COLS).to_csv(tmp_path / "new.maf", sep="\t", index=False)
    adata = read_inputs([tmp_path / "new.maf"], filter=loaded.filter_choice().rule)
    bag = model_arrays(adata, loaded.saved).gene_bag
    sites = pd.DataFrame(bag[:, 4:6], index=adata.obs_names, columns=["idh1", "braf"])
    # another allele at the IDH1 position is the same site (R132H / R132C share it)
    assert sites.to_dict("index") == {"new_braf": {"idh1": 0.0, "braf": 1.0},
                                      "new_idh1": {"idh1": 1.0, "braf": 0.0},
                                      "new_idh1_other_allele": {"idh1": 1.0, "braf": 0.0}}  # fmt: skip
    predict(adata, loaded)
    assert adata.obsm["proba_type"].shape == (3, 3) and adata.uns["nanog1_predict"]["filter_mismatch"] == ""
