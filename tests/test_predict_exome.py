"""The packaged TCGA exome model `tcga-exome` (issue 31): a tumour exome MAF in, calibrated types out.

Inputs are written the way GDC / MC3 write MAFs (version line, the GDC column set, GRCh37, read counts,
FILTER). The model reads one token per mutation (gene, consequence, class, position), so a catalogue
matrix is refused with a clear message; a whole genome (mostly intronic/intergenic calls) given to this
exome model abstains with the reverse of the whole-genome model's assay rule.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from nanog1.encoder.predictor import GENOME_REASON, PredictOptions, predict, prediction_table, read_inputs
from nanog1.errors import UserError

MODEL = "tcga-exome"
FAST = PredictOptions(neighbours=2, exposures=False)
GDC_COLUMNS = [
    "Hugo_Symbol", "Entrez_Gene_Id", "Center", "NCBI_Build", "Chromosome", "Start_Position", "End_Position",
    "Strand", "Variant_Classification", "Variant_Type", "Reference_Allele", "Tumor_Seq_Allele1",
    "Tumor_Seq_Allele2", "dbSNP_RS", "Tumor_Sample_Barcode", "Matched_Norm_Sample_Barcode",
    "HGVSp_Short", "t_depth", "t_ref_count", "t_alt_count", "n_depth", "FILTER",
]  # fmt: skip
#: Driver calls typical of a low-grade glioma (GRCh37): IDH1 R132H, TP53 R273C, ATRX truncations.
GLIOMA = [
    ("IDH1", "2", 209113112, "C", "T", "Missense_Mutation", "p.R132H"),
    ("TP53", "17", 7577121, "G", "A", "Missense_Mutation", "p.R273C"),
    ("TP53", "17", 7578406, "C", "T", "Missense_Mutation", "p.R175H"),
    ("ATRX", "X", 76938210, "G", "A", "Nonsense_Mutation", "p.R1426*"),
    ("ATRX", "X", 76889100, "C", "T", "Nonsense_Mutation", "p.R2111*"),
    ("CIC", "19", 42796000, "C", "T", "Missense_Mutation", "p.R215W"),
]
#: A papillary thyroid carcinoma's usual lone driver: BRAF V600E.
THYROID = [("BRAF", "7", 140453136, "A", "T", "Missense_Mutation", "p.V600E")]


def _row(barcode: str, gene: str, chrom: str, pos: int, ref: str, alt: str, cls: str, hgvs: str) -> dict:
    depth = 80
    return {"Hugo_Symbol": gene, "Entrez_Gene_Id": "0", "Center": "BI", "NCBI_Build": "GRCh37",
            "Chromosome": chrom, "Start_Position": pos, "End_Position": pos, "Strand": "+",
            "Variant_Classification": cls, "Variant_Type": "SNP", "Reference_Allele": ref,
            "Tumor_Seq_Allele1": ref, "Tumor_Seq_Allele2": alt, "dbSNP_RS": "novel",
            "Tumor_Sample_Barcode": barcode, "Matched_Norm_Sample_Barcode": barcode[:13] + "10A",
            "HGVSp_Short": hgvs, "t_depth": depth, "t_ref_count": depth - 30, "t_alt_count": 30,
            "n_depth": 60, "FILTER": "PASS"}  # fmt: skip


def write_gdc_maf(path, tumours: dict[str, list[tuple]]) -> None:
    """A GDC-style MAF (version line, GDC columns) of `tumours`: barcode -> calls."""
    rows = [_row(b, *call) for b, calls in tumours.items() for call in calls]
    with open(path, "w") as f:
        f.write("#version gdc-1.0.0\n")
        pd.DataFrame(rows, columns=GDC_COLUMNS).to_csv(f, sep="\t", index=False)


def _passengers(rng, n: int, cls: str = "Missense_Mutation") -> list[tuple]:
    """`n` C>T / C>A / T>C SNVs on chr1 in made-up gene names (UNK to the model), of class `cls`."""
    pairs = [("C", "T"), ("C", "A"), ("T", "C")]
    pos = np.sort(rng.choice(np.arange(2_000_000, 240_000_000), n, replace=False))
    return [(f"NOTAGENE{i}", "1", int(p), *pairs[i % 3], cls, "") for i, p in enumerate(pos)]


@pytest.fixture(scope="module")
def exome_maf(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("exome") / "cohort.maf"
    write_gdc_maf(path, {
        "TCGA-AA-0001-01A-11D-A000-08": GLIOMA + _passengers(rng, 12),
        "TCGA-AA-0002-01A-11D-A000-08": THYROID + _passengers(rng, 10),
    })  # fmt: skip
    return path


def test_packaged_exome_model_loads_weights_only_with_its_card():
    from nanog1.encoder import pretrained

    assert MODEL in pretrained.available(), "the packaged exome model is missing from the package"
    folder = pretrained.resolve(MODEL)
    saved = torch.load(folder / "model.pt", weights_only=True)
    card = pretrained.card(MODEL)
    assert card["assay"] == "exome" and card["classes"] == list(saved["classes"])
    assert {"LGG", "THCA", "COAD", "MESO"} <= set(card["classes"])  # the union of both sources' types
    assert saved["encoder_config"]["view"] == "events" and len(saved["encoder_config"]["gene_bag"]) == 300
    assert "MIT" in card["training_data"]["licence"] and "not a diagnosis" in card["intended_use"].lower()
    for kind in ("cv_5fold", "transfer"):
        assert kind in card["metrics"]
    assert sum(p.stat().st_size for p in folder.iterdir()) < 50e6


def test_card_states_the_shipped_hotspot_bag_filter_rule_and_its_own_numbers():
    """The card and model.pt agree: the FILTER rule (every call), the hotspot bag (IDH1 R132H and BRAF V600E
    among its sites, chosen with --hotspots 5), and the summary quotes the card's own metrics; the
    replacement rule it was shipped by holds on those metrics."""
    from nanog1.encoder import pretrained

    saved = torch.load(pretrained.resolve(MODEL) / "model.pt", weights_only=True)
    card = pretrained.card(MODEL)
    assert saved["input_filter"] == card["input_filter"] == "all"
    sites = saved["encoder_config"]["hotspots"]
    assert {"2:209113112", "7:140453136"} <= set(sites) and len(sites) == len(set(sites)) > 100
    assert f"+ {len(sites)} hotspot sites" in card["summary"]
    assert "--hotspots 5" in card["recipe"]["equivalent"]
    cv, transfer = card["metrics"]["cv_5fold"]["all"]["scores"], card["metrics"]["transfer"]
    jobs = ("mc3_to_firehose", "firehose_to_mc3")
    quoted = [cv["top1"], cv["macro_f1"]] + [transfer[j]["test_new_patients"]["scores"]["top1"] for j in jobs]
    assert all(f"{x:.3f}" in card["summary"] for x in quoted), card["summary"]
    versus = card["metrics"]["shipped_model"]["versus_previous"]
    assert versus["top1"]["cv"] == cv["top1"]
    assert versus["top1"]["cv"] - versus["previous_top1"]["cv"] > versus["seed_spread"]
    assert all(versus["top1"][j] >= versus["previous_top1"][j] - 0.01 for j in jobs)


def test_exome_maf_typed_with_calibrated_top3(exome_maf):
    """Both tumours are read as exomes; probabilities are a distribution over the 32 types; the glioma's
    drivers put LGG (or GBM) first and the BRAF V600E tumour gets THCA among its top three."""
    adata = read_inputs([exome_maf])
    predict(adata, MODEL, FAST)
    proba = adata.obsm["proba_type"]
    assert proba.shape == (2, 32) and np.allclose(proba.to_numpy().sum(1), 1, atol=1e-4)
    assert list(adata.obs["assay"].astype(str)) == ["exome", "exome"]
    reasons = adata.obs["abstain_reason"].astype(str)
    assert not reasons.str.contains("genome input").any()
    table = prediction_table(adata)
    glioma, thyroid = table.index
    assert table.loc[glioma, "type_1"] in ("LGG", "GBM"), table.loc[glioma].to_dict()
    assert "THCA" in table.loc[thyroid, ["type_1", "type_2", "type_3"]].tolist(), table.loc[thyroid].to_dict()
    shown = adata.obs["predicted_type"].astype(str)
    assert ((shown == "uncertain") == (reasons != "")).all()
    assert adata.uns["nanog1_predict"]["model_assay"] == "exome"


def test_genome_given_to_the_exome_model_is_flagged(tmp_path):
    """300 calls mostly intronic/intergenic, off the capture targets: a whole genome; it abstains with the
    reverse assay rule, and --assay genome says so for any input."""
    rng = np.random.default_rng(1)
    calls = _passengers(rng, 240, "Intron") + _passengers(rng, 50, "IGR") + _passengers(rng, 10)
    write_gdc_maf(tmp_path / "genome.maf", {"TCGA-BB-0001-01A-11D-A000-08": calls})
    adata = read_inputs([tmp_path / "genome.maf"])
    predict(adata, MODEL, FAST)
    reason = adata.obs["abstain_reason"].iloc[0]
    assert reason.startswith(f"{GENOME_REASON} (") and "protein-coding or splice" in reason
    assert adata.obs["predicted_type"].iloc[0] == "uncertain"
    assert adata.uns["nanog1_predict"]["abstained_by_reason"]["genome input"] == 1


def test_cli_batch_table_json_and_genome_stated(exome_maf, tmp_path):
    from nanog1.cli import app

    res = CliRunner().invoke(app, ["predict", str(exome_maf), "--model", MODEL, "--out", str(tmp_path / "o"),
                                   "--no-exposures", "--no-reports"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "o" / "predictions.tsv", sep="\t", index_col=0)
    assert len(table) == 2 and {"type_1", "p_1", "type_3", "abstain_reason"} <= set(table.columns)
    payload = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert len(json.dumps(payload)) > 100
    res = CliRunner().invoke(app, ["predict", str(exome_maf), "--model", MODEL, "--out", str(tmp_path / "g"),
                                   "--no-exposures", "--no-reports", "--assay", "genome"])
    assert res.exit_code == 0, res.output
    assert "genome input 2" in res.output


def test_catalogue_matrix_and_corrupt_maf_are_clear_errors(tmp_path):
    """A catalogue matrix has no per-mutation tokens: refused, naming what to give instead. A MAF whose
    allele column is missing is refused by ingest with its file named; neither prints a traceback."""
    from nanog1.cli import app
    from nanog1.genomics.channels import SBS96

    frame = pd.DataFrame({"T1": np.full(96, 5)}, index=pd.Index(SBS96, name="MutationType"))
    frame.to_csv(tmp_path / "m.tsv", sep="\t")
    with pytest.raises(UserError, match="one token per mutation.*MAF or VCF"):
        predict(read_inputs([tmp_path / "m.tsv"]), MODEL, FAST)
    write_gdc_maf(tmp_path / "bad.maf", {"TCGA-CC-0001-01A-11D-A000-08": THYROID})
    text = (tmp_path / "bad.maf").read_text().replace("Tumor_Seq_Allele2", "Allele_Two")
    (tmp_path / "bad.maf").write_text(text.replace("Tumor_Seq_Allele1", "Allele_One"))
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "bad.maf"), "--model", MODEL,
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert "bad.maf" in res.output


def test_models_list_and_show_include_the_exome_model():
    from nanog1.cli import app

    res = CliRunner().invoke(app, ["models", "list"])
    assert res.exit_code == 0 and "tcga-exome\t32 types" in res.output and "pcawg-catalogue" in res.output
    res = CliRunner().invoke(app, ["models", "show", MODEL])
    card = json.loads(res.output)
    assert card["name"] == MODEL and card["assay"] == "exome"
    assert card["metrics"]["transfer"]["mc3_to_firehose"]["test_new_patients"]["n"] > 100


def test_cohort_merged_from_parts_keeps_genes_and_scores_as_one_ingest(exome_maf, tmp_path):
    """The pipeline ingests each file alone and merges the parts (nanog1.genomics.merge): the merged
    tokens keep gene, consequence and read counts, so the model scores it exactly as one ingest of both."""
    from nanog1.genomics.cohort import read_cohort
    from nanog1.genomics.ingest import ingest
    from nanog1.genomics.merge import merge_adatas

    text = exome_maf.read_text().splitlines(keepends=True)
    head, rows = text[:2], text[2:]
    parts = []
    for name, barcode in (("a", "TCGA-AA-0001"), ("b", "TCGA-AA-0002")):
        path = tmp_path / f"{name}.maf"
        path.write_text("".join(head + [r for r in rows if barcode in r]))
        ingest([path], None, None, tmp_path / f"{name}.h5ad")
        parts.append(read_cohort(tmp_path / f"{name}.h5ad"))
    merged, _ = merge_adatas(parts, [tmp_path / "a.h5ad", tmp_path / "b.h5ad"])
    genes = merged.uns["tokens"]["vocab"]["gene"][merged.uns["tokens"]["gene"]]
    assert {"IDH1", "BRAF", "TP53"} <= set(genes) and np.isfinite(merged.uns["tokens"]["t_alt_count"]).all()
    once = read_inputs([exome_maf])
    for adata in (merged, once):
        predict(adata, MODEL, FAST)
    assert np.allclose(merged.obsm["proba_type"].to_numpy(), once.obsm["proba_type"].to_numpy(), atol=1e-5)


def _mixed_filter_maf(path) -> tuple[int, int]:
    """One tumour of the GLIOMA calls + 20 passengers, 8 of the passengers non-PASS (MC3 writes such
    FILTER values); returns (all calls, PASS calls)."""
    rng = np.random.default_rng(2)
    write_gdc_maf(path, {"TCGA-DD-0001-01A-11D-A000-08": GLIOMA + _passengers(rng, 20)})
    frame = pd.read_csv(path, sep="\t", comment="#")
    frame.loc[frame.index[-8:], "FILTER"] = ["wga", "oxog", "common_in_exac", "wga;oxog"] * 2
    with open(path, "w") as f:
        f.write("#version gdc-1.0.0\n")
        frame.to_csv(f, sep="\t", index=False)
    return len(frame), int((frame["FILTER"] == "PASS").sum())


def _rules(record: dict) -> tuple[str, str, str]:
    """(rule the input was read with, the model's rule, where the applied rule came from)."""
    return record["input_filter"], record["model_input_filter"], record["filter_source"]


def test_exome_model_reads_every_call_by_default_and_states_an_override(tmp_path):
    """tcga-exome was trained on every MC3 call (FILTER ignored): by default `predict` reads PASS and
    non-PASS calls alike and says so; `--filter PASS` drops the non-PASS calls and the table line, JSON
    and report state the mismatch with the count dropped."""
    from nanog1.cli import app

    n_all, n_pass = _mixed_filter_maf(tmp_path / "t.maf")
    args = ["predict", str(tmp_path / "t.maf"), "--model", MODEL, "--no-exposures", "--neighbours", "1"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "d"), "--no-reports"])
    assert res.exit_code == 0, res.output
    assert "calls read with --filter all (the model's rule)" in res.output and "mismatch" not in res.output
    table = pd.read_csv(tmp_path / "d" / "predictions.tsv", sep="\t", index_col=0)
    assert table["mutations"].tolist() == [n_all]
    record = json.loads((tmp_path / "d" / "predictions.json").read_text())["model"]
    assert _rules(record) == ("all", "all", "model")
    assert record["filter_mismatch"] == ""
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "p"), "--reports", "--filter", "PASS"])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(tmp_path / "p" / "predictions.tsv", sep="\t")["mutations"].tolist() == [n_pass]
    record = json.loads((tmp_path / "p" / "predictions.json").read_text())["model"]
    assert _rules(record) == ("PASS", "all", "user")
    note = record["filter_mismatch"]
    assert note.startswith("FILTER mismatch") and f"{n_all - n_pass} non-PASS calls dropped" in note
    assert "warning: FILTER mismatch" in res.output and "your --filter; the model's rule: all" in res.output
    assert note in next((tmp_path / "p").glob("*.report.md")).read_text()
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x"), "--filter", "LOW"])
    assert res.exit_code != 0 and "--filter LOW: choose PASS or all" in res.output


def test_python_api_warns_on_a_filter_mismatch_and_an_ingested_cohort_is_not_refiltered(tmp_path):
    from nanog1.encoder.input_filter import FilterMismatchWarning

    _mixed_filter_maf(tmp_path / "t.maf")
    adata = read_inputs([tmp_path / "t.maf"])  # the ingest default: PASS only
    with pytest.warns(FilterMismatchWarning, match="trained on every call"):
        predict(adata, MODEL, FAST)
    assert adata.uns["nanog1_predict"]["filter_source"] == "input"
    same = read_inputs([tmp_path / "t.maf"], filter="all")
    with pytest.raises(UserError, match="ingested with --filter all, so --filter PASS cannot be applied"):
        predict(same, MODEL, PredictOptions(neighbours=0, exposures=False, filter="PASS"))


def test_catalogue_model_keeps_reading_pass_calls_only(tmp_path):
    """pcawg-catalogue was trained on catalogues and states no FILTER rule: its VCF/MAF inputs keep the
    ingest default (PASS only), with no mismatch reported."""
    from nanog1.cli import app
    from nanog1.encoder import pretrained

    assert "input_filter" not in pretrained.card("pcawg-catalogue")
    n_all, n_pass = _mixed_filter_maf(tmp_path / "t.maf")
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "t.maf"), "--out", str(tmp_path / "o"),
                                   "--no-exposures", "--no-reports", "--neighbours", "0"])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(tmp_path / "o" / "predictions.tsv", sep="\t")["mutations"].tolist() == [n_pass]
    record = json.loads((tmp_path / "o" / "predictions.json").read_text())["model"]
    assert _rules(record) == ("PASS", "unstated", "default") and record["filter_mismatch"] == ""
    assert "--filter PASS (the default; the model states no rule)" in res.output


def test_calls_without_genes_abstain_with_that_reason(exome_maf, tmp_path):
    """The exome model reads each mutation's gene: the same tumours without Hugo_Symbol, or as a plain VCF
    (no gene on any call), abstain saying so instead of being typed from class and position alone."""
    from nanog1.cli import app
    from nanog1.encoder.predictor import GENE_REASON

    with_genes = read_inputs([exome_maf], filter="all")
    predict(with_genes, MODEL, FAST)
    assert not with_genes.obs["abstain_reason"].str.contains("no gene annotation").any()
    table = pd.read_csv(exome_maf, sep="\t", comment="#")
    table.drop(columns="Hugo_Symbol").to_csv(tmp_path / "nogene.maf", sep="\t", index=False)
    bare = read_inputs([tmp_path / "nogene.maf"], filter="all")
    predict(bare, MODEL, FAST)
    assert (bare.obs["predicted_type"] == "uncertain").all()
    assert bare.obs["abstain_reason"].str.startswith(GENE_REASON).all(), bare.obs["abstain_reason"].tolist()
    assert bare.uns["nanog1_predict"]["abstained_by_reason"]["no gene annotation"] == 2
    rows = [f"{c}\t{p}\t.\t{r}\t{a}\t.\tPASS\t.\tGT\t0/1" for _, c, p, r, a, _, _ in GLIOMA]
    (tmp_path / "glioma.vcf").write_text("##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,"
                                         'Description="Genotype">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\t'
                                         "INFO\tFORMAT\tT1\n" + "\n".join(rows) + "\n")
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "glioma.vcf"), "--model", MODEL, "--assay",
                                   "exome", "--out", str(tmp_path / "o"), "--no-exposures", "--no-reports"])
    assert res.exit_code == 0, res.output
    assert "1 abstained (no gene annotation 1" in res.output, res.output


def test_a_maf_on_another_genome_build_abstains_saying_so(tmp_path):
    """GDC's MAFs are GRCh38 (NCBI_Build); the exome model reads GRCh37 positions (bins, hotspot sites):
    such tumours abstain with the build named; a GRCh37 tumour of the same file is typed as before."""
    from nanog1.genomics.maf import maf_builds

    rng = np.random.default_rng(5)
    write_gdc_maf(tmp_path / "two.maf", {"TCGA-CC-0001-01A-11D-A000-08": GLIOMA + _passengers(rng, 12),
                                         "TCGA-CC-0002-01A-11D-A000-08": GLIOMA + _passengers(rng, 12)})
    table = pd.read_csv(tmp_path / "two.maf", sep="\t", comment="#", dtype=str)
    table.loc[table["Tumor_Sample_Barcode"].str.endswith("0002-01A-11D-A000-08"), "NCBI_Build"] = "GRCh38"
    table.to_csv(tmp_path / "mixed.maf", sep="\t", index=False)
    assert set(maf_builds(tmp_path / "mixed.maf").values()) == {"GRCh37", "GRCh38"}
    adata = read_inputs([tmp_path / "mixed.maf"], filter="all")
    predict(adata, MODEL, FAST)
    reasons = adata.obs["abstain_reason"]
    assert reasons.iloc[1].startswith("genome build GRCh38 (NCBI_Build): model trained on GRCh37 positions")
    assert "genome build" not in reasons.iloc[0]
    assert adata.uns["nanog1_predict"]["abstained_by_reason"]["genome build"] == 1


def test_a_maf_without_variant_classification_is_stated_not_abstained(exome_maf, tmp_path):
    """tcga-exome's tokens carry each call's consequence: the same tumours without Variant_Classification
    are scored, with a consequence mismatch stated in obs, the CLI line, the JSON and the report."""
    import json
    import warnings

    from nanog1.cli import app
    from nanog1.encoder.protein_input import ConsequenceMismatchWarning

    annotated = read_inputs([exome_maf], filter="all")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConsequenceMismatchWarning)
        predict(annotated, MODEL, FAST)
    assert annotated.obs["consequence"].all()
    assert annotated.uns["nanog1_predict"]["consequence_mismatch"] == ""
    table = pd.read_csv(exome_maf, sep="\t", comment="#")
    table.drop(columns="Variant_Classification").to_csv(tmp_path / "nocsq.maf", sep="\t", index=False)
    bare = read_inputs([tmp_path / "nocsq.maf"], filter="all")
    with pytest.warns(ConsequenceMismatchWarning, match="2 of 2 tumour"):
        predict(bare, MODEL, FAST)
    assert not bare.obs["consequence"].any()
    assert not bare.obs["abstain_reason"].str.contains("consequence").any()
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "nocsq.maf"), "--model", MODEL, "--assay",
                                   "exome", "--out", str(tmp_path / "o"), "--no-exposures", "--neighbours",
                                   "0", "--reports"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "warning: consequence mismatch" in res.output and "2 without consequence" in res.output
    note = json.loads((tmp_path / "o" / "predictions.json").read_text())["model"]["consequence_mismatch"]
    assert "Variant_Classification" in note and note in next((tmp_path / "o").glob("*.report.md")).read_text()


def _with_indels(path, tumours: dict[str, list[tuple]], indels: dict[str, int]) -> None:
    """A GDC-style MAF of `tumours` plus, per barcode in `indels`, that many 1-base deletions (made-up
    genes)."""
    rows = [_row(b, *call) for b, calls in tumours.items() for call in calls]
    for barcode, n in indels.items():
        for i in range(n):
            row = _row(barcode, f"NOTAGENE_DEL{i}", "3", 10_000_000 + 1_000 * i, "C", "-", "Frame_Shift_Del",
                       "")
            rows.append(row | {"Variant_Type": "DEL", "Tumor_Seq_Allele1": "C"})
    with open(path, "w") as f:
        f.write("#version gdc-1.0.0\n")
        pd.DataFrame(rows, columns=GDC_COLUMNS).to_csv(f, sep="\t", index=False)


def test_pattern_simulation_scores_a_maf_as_its_snv_only_file(tmp_path):
    """The packaging's SNV-only pattern (benchmarks/pattern_thresholds.as_measured, ID83 + ID12 masked) is
    what `predict --not-measured indels` does with the same MAF without its indel rows: the indel calls are
    not read (obs['events_not_read'] = each tumour's indels), the probabilities are the same, and the record
    keeps SBS96/ID83 unmeasured as the reference-free MAF has them."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from pattern_thresholds import as_measured

    from nanog1.encoder.predictor import load_predictor
    from nanog1.schema import measured_sets_per_sample

    rng = np.random.default_rng(3)
    tumours = {"TCGA-AA-0001-01A-11D-A000-08": GLIOMA + _passengers(rng, 12),
               "TCGA-AA-0002-01A-11D-A000-08": THYROID + _passengers(rng, 10)}
    indels = {"TCGA-AA-0001-01A-11D-A000-08": 3, "TCGA-AA-0002-01A-11D-A000-08": 5}
    _with_indels(tmp_path / "both.maf", tumours, indels)
    write_gdc_maf(tmp_path / "snv.maf", tumours)
    options, model = PredictOptions(neighbours=0, exposures=False, assay="exome"), load_predictor(MODEL)
    simulated = as_measured(read_inputs([tmp_path / "both.maf"]), ("ID83", "ID12"))
    predict(simulated, model, options)
    real = read_inputs([tmp_path / "snv.maf"])
    predict(real, model, PredictOptions(neighbours=0, exposures=False, assay="exome", not_measured="indels"))
    assert simulated.obs["events_not_read"].to_dict() == indels
    assert list(simulated.obs["channel_sets_masked"].astype(str)) == ["ID12", "ID12"]
    np.testing.assert_allclose(simulated.obsm["proba_type"].to_numpy(), real.obsm["proba_type"].to_numpy(),
                               atol=1e-6)
    measured = measured_sets_per_sample(simulated)
    assert not measured[["SBS96", "ID83", "ID12"]].any().any() and measured[["SBS6", "DBS78"]].all().all()
    complete = read_inputs([tmp_path / "both.maf"])
    predict(complete, model, options)
    read_indels = complete.obsm["proba_type"].to_numpy()
    assert not np.allclose(read_indels, real.obsm["proba_type"].to_numpy(), atol=1e-4)  # the indels count


def test_packaged_exome_model_stores_an_indel_free_threshold_under_the_sets_it_reads():
    """tcga-exome reads SBS6, DBS78 and ID12 (no SBS96/ID83: MAFs have no reference): its pattern thresholds
    are keyed by those sets only, once each, fitted on the card's validation tumours, and an SNV-only input
    (ID12 unmeasured) is held to a higher bar than complete exomes."""
    from nanog1.encoder import pretrained
    from nanog1.encoder.predictor import load_predictor
    from nanog1.schema import SET_NAMES, SET_SIZES

    loaded = load_predictor(MODEL)
    padding, ends = np.asarray(loaded.saved["channel_padding"], dtype=bool), np.cumsum(SET_SIZES)
    reads = {name for name, end, n in zip(SET_NAMES, ends, SET_SIZES, strict=True)
             if not padding[end - n : end].any()}
    assert reads == {"SBS6", "DBS78", "ID12"}
    fitted = loaded.calibration["pattern_thresholds"]
    keys = [tuple(p["masked"]) for p in fitted]
    assert ("ID12",) in keys and len(keys) == len(set(keys)) and all(set(k) <= reads for k in keys)
    card = pretrained.card(pretrained.resolve(MODEL))
    assert all(p["n"] == card["metrics"]["shipped_model"]["validation_tumours"] for p in fitted)
    assert card["calibration_per_pattern"]["patterns"] == fitted
    no_indels = next(p for p in fitted if p["masked"] == ["ID12"])
    assert no_indels["threshold"] > loaded.calibration["abstention"]["confidence_threshold"]
    assert any("--not-measured indels" in str(limit) for limit in card["limits"])


def test_snv_only_maf_declared_so_gets_the_indel_free_threshold(exome_maf, tmp_path):
    """An SNV-only MAF (exome_maf: no indel) given with `--not-measured indels` is held to the threshold
    fitted on validation tumours without indels (predictions.tsv, predictions.json); read as zero indels
    (nothing declared) it keeps the operating point's."""
    from nanog1.cli import app
    from nanog1.encoder.abstention import pattern_threshold
    from nanog1.encoder.predictor import load_predictor

    calib = load_predictor(MODEL).calibration
    base = calib["abstention"]["confidence_threshold"]
    raised, name = pattern_threshold(calib["pattern_thresholds"], frozenset({"ID12"}), base)
    assert raised > base and name == "no_indels"
    res = CliRunner().invoke(app, ["predict", str(exome_maf), "--model", MODEL, "--out", str(tmp_path / "o"),
                                   "--no-exposures", "--no-reports", "--neighbours", "0",
                                   "--not-measured", "indels"])  # fmt: skip
    assert res.exit_code == 0, res.output
    table = pd.read_csv(tmp_path / "o" / "predictions.tsv", sep="\t", index_col=0)
    np.testing.assert_allclose(table["confidence_threshold"], round(raised, 4), atol=1e-4)
    record = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert "no_indels" in json.dumps(record)
    plain = read_inputs([exome_maf])
    predict(plain, MODEL, FAST)
    np.testing.assert_allclose(plain.obs["confidence_threshold"], base, rtol=1e-6)
