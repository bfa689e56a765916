"""A whole-genome model never silently types an exome (issue 31 QA: MC3 exomes typed CNS-PiloAstro).

The packaged PCAWG model says `"assay": "genome"` in its card; `nanog1 predict` detects exome-like
tumours (mostly protein-coding consequences, or mostly inside exome capture targets) or takes
`--assay exome`, and abstains on them with a reason the summary counts. Each exome here carries 300
mutations, above the model's burden floor (~100), so the burden rule alone would type it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nanog1.encoder.predict_notes import input_warnings
from nanog1.encoder.predictor import EXOME_REASON, PredictOptions, predict, read_inputs
from nanog1.genomics.channels import SBS96
from tests.test_predict import _matrix_tsv

FAST = PredictOptions(neighbours=0, exposures=False)
PAIRS = [("C", "T"), ("C", "A"), ("T", "C"), ("C", "G"), ("T", "G"), ("T", "A")]
CHR1 = 249_250_621  # GRCh37


def _snvs(rng, n: int) -> list[tuple[str, str]]:
    return [PAIRS[i] for i in rng.choice(len(PAIRS), n, p=[0.45, 0.15, 0.2, 0.1, 0.05, 0.05])]


def _maf(path, tumours: dict[str, tuple[np.ndarray, list[str]]], seed: int = 0) -> None:
    """A MAF: per tumour, chr1 positions and Variant_Classification values."""
    rng = np.random.default_rng(seed)
    cols = ["Hugo_Symbol", "Chromosome", "Start_Position", "End_Position", "Reference_Allele",
            "Tumor_Seq_Allele2", "Tumor_Sample_Barcode", "Variant_Type",
            "Variant_Classification"]  # fmt: skip
    rows = []
    for name, (pos, classes) in tumours.items():
        for p, (ref, alt), c in zip(pos, _snvs(rng, len(pos)), classes, strict=True):
            rows.append(["G", "1", str(p), str(p), ref, alt, name, "SNP", c])
    path.write_text("\t".join(cols) + "\n" + "\n".join("\t".join(r) for r in rows) + "\n")


def _vcf(path, pos: np.ndarray, seed: int = 0) -> None:
    """A sites-only VCF on GRCh37 chr1 (no annotation: only positions can tell the assay)."""
    rng = np.random.default_rng(seed)
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID=1,length={CHR1}>",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    snvs = _snvs(rng, len(pos))
    lines += [f"1\t{p}\t.\t{r}\t{a}\t.\tPASS\t." for p, (r, a) in zip(sorted(pos), snvs, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def _random_positions(rng, n: int) -> np.ndarray:
    return np.sort(rng.choice(np.arange(1_000_000, CHR1 - 1_000_000), n, replace=False))


def _inside_targets(rng, n: int) -> np.ndarray:
    from nanog1.genomics.assay import capture_targets

    starts, ends = capture_targets("GRCh37")["1"]
    pick = rng.choice(len(starts), n, replace=False)
    return np.unique((starts[pick] + ends[pick]) // 2)


def test_exome_maf_abstains_by_its_coding_share(tmp_path):
    """Two MAF tumours of 300 SNVs at the same kind of scattered positions: the one whose calls are
    missense/silent/nonsense abstains as an exome, the intergenic/intronic one does not."""
    rng = np.random.default_rng(1)
    coding = list(rng.choice(["Missense_Mutation", "Silent", "Nonsense_Mutation", "3'UTR"], 300,
                             p=[0.6, 0.25, 0.05, 0.1]))
    noncoding = list(rng.choice(["IGR", "Intron", "RNA", "Missense_Mutation"], 300,
                                p=[0.6, 0.35, 0.04, 0.01]))
    _maf(tmp_path / "c.maf", {"EXOME": (_random_positions(rng, 300), coding),
                              "GENOME": (_random_positions(rng, 300), noncoding)})
    adata = read_inputs([tmp_path / "c.maf"])
    predict(adata, "pcawg-catalogue", FAST)
    reasons = adata.obs["abstain_reason"].astype(str)
    assert reasons["EXOME"].startswith(f"{EXOME_REASON} (")
    assert "protein-coding or splice" in reasons["EXOME"]
    assert adata.obs.loc["EXOME", "predicted_type"] == "uncertain" and adata.obs.loc["EXOME", "abstain"]
    assert "exome" not in reasons["GENOME"] and "burden" not in reasons["GENOME"]
    assert adata.obs["assay"].astype(str).to_dict() == {"EXOME": "exome", "GENOME": "genome"}
    assert adata.uns["nanog1_predict"]["abstained_by_reason"]["exome input"] == 1
    # stated as genomes, neither is held back for its assay
    again = read_inputs([tmp_path / "c.maf"])
    predict(again, "pcawg-catalogue", PredictOptions(neighbours=0, exposures=False, assay="genome"))
    assert not again.obs["abstain_reason"].astype(str).str.contains("exome").any()


def test_an_exome_with_many_noncoding_calls_is_still_an_exome(tmp_path):
    """Real exomes reach coding shares of 0.42 (MC3: TCGA-X7-A8D7, 5 of 12; six of 5,793 below 0.5,
    which the old 0.5 threshold called whole genomes and the exome model turned away as 'genome input'):
    8 of 19 coding calls at positions outside the capture targets is an exome, 6 of 300 a genome."""
    from nanog1.genomics.assay import detect_assay

    rng = np.random.default_rng(3)
    low = ["Missense_Mutation"] * 6 + ["Silent"] * 2 + ["Intron"] * 6 + ["3'UTR"] * 3 + ["5'Flank"] * 2
    genome = ["Missense_Mutation"] * 6 + ["IGR"] * 200 + ["Intron"] * 94
    _maf(tmp_path / "m.maf", {"LOWCODING": (_random_positions(rng, 19), low),
                              "GENOME": (_random_positions(rng, 300), genome)})
    adata = read_inputs([tmp_path / "m.maf"])
    call = detect_assay(adata)
    got = dict(zip(adata.obs_names, call.assay, strict=True))
    assert got == {"LOWCODING": "exome", "GENOME": "genome"}, (got, list(call.evidence))
    evidence = dict(zip(adata.obs_names, call.evidence, strict=True))
    assert "42% of 19 mutations protein-coding or splice" in evidence["LOWCODING"]


def test_exome_vcf_found_by_capture_territory_through_the_cli(tmp_path):
    """Unannotated VCFs: 300 SNVs inside GRCh37 exome baits abstain as an exome (the CLI's summary
    counts it), 300 scattered over chr1 do not; `--assay genome` turns the check off."""
    from nanog1.cli import app

    rng = np.random.default_rng(2)
    _vcf(tmp_path / "exome.vcf", _inside_targets(rng, 300))
    _vcf(tmp_path / "genome.vcf", _random_positions(rng, 300))
    runner = CliRunner()
    args = ["predict", str(tmp_path / "exome.vcf"), str(tmp_path / "genome.vcf"), "--no-exposures",
            "--neighbours", "0", "--no-reports"]  # fmt: skip
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "auto")])
    assert res.exit_code == 0, res.output
    assert "exome input 1" in res.output
    table = pd.read_csv(tmp_path / "auto" / "predictions.tsv", sep="\t", index_col=0).fillna("")
    exome = [s for s in table.index if "exome" in s.lower()]
    genome = [s for s in table.index if "genome" in s.lower()]
    assert len(exome) == len(genome) == 1
    assert table.loc[exome[0], "abstain_reason"].startswith(EXOME_REASON)
    assert "GRCh37 exome capture targets" in table.loc[exome[0], "abstain_reason"]
    assert "exome" not in table.loc[genome[0], "abstain_reason"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "stated"), "--assay", "genome"])
    assert res.exit_code == 0, res.output
    stated = pd.read_csv(tmp_path / "stated" / "predictions.tsv", sep="\t", index_col=0).fillna("")
    assert not stated["abstain_reason"].str.contains("exome").any()
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "bad"), "--assay", "wgs"])
    assert res.exit_code != 0 and "--assay wgs: choose genome, exome or auto" in res.output


def test_catalogue_matrix_is_an_exome_only_when_stated(tmp_path):
    """A catalogue matrix has no positions or consequences: auto cannot tell (assay 'unknown', typed as
    before); `assay='exome'` makes the genome model abstain; a run folder whose card states no assay is
    never checked."""
    flat = np.full(96, 20)
    flat[[SBS96.index(c) for c in ("A[C>T]G", "C[C>T]G", "G[C>T]G", "T[C>T]G")]] = 400
    _matrix_tsv(tmp_path / "m.tsv", flat[None], ["clock"])
    auto = read_inputs([tmp_path / "m.tsv"])
    predict(auto, "pcawg-catalogue", FAST)
    assert auto.obs.loc["clock", "assay"] == "unknown"
    assert "exome" not in auto.obs.loc["clock", "abstain_reason"]
    # not checked, and said so (it was silent): the reader is told to state it
    said = [n.text for n in input_warnings(auto) if n.kind == "assay"]
    assert len(said) == 1 and said[0].startswith("assay not checked for 1 of 1 tumour(s)"), said
    assert "say --assay genome or --assay exome" in said[0]
    stated = read_inputs([tmp_path / "m.tsv"])
    predict(stated, "pcawg-catalogue", PredictOptions(neighbours=0, exposures=False, assay="exome"))
    assert stated.obs.loc["clock", "abstain_reason"].startswith(f"{EXOME_REASON} (stated --assay exome)")
    assert not [n for n in input_warnings(stated) if n.kind == "assay"]
    from tests.predict_models import write_model_folder
    from tests.training_cohort import make_cohort

    run_dir = write_model_folder(tmp_path / "run", make_cohort(n_per_type=10, seed=4, tokens=False))
    run = read_inputs([tmp_path / "m.tsv"])
    predict(run, run_dir, PredictOptions(neighbours=0, exposures=False, assay="exome"))
    assert "assay" not in run.obs and "exome" not in run.obs.loc["clock", "abstain_reason"]
    run = read_inputs([tmp_path / "m.tsv"])
    predict(run, run_dir, FAST)  # a model that states no assay: nothing to check, nothing to say
    assert not [n for n in input_warnings(run) if n.kind == "assay"]


def test_catalogue_counts_are_not_said_to_be_filtered_and_their_masked_sets_say_why(tmp_path):
    """An SBS96 matrix has no calls to filter: the outputs say so, not '--filter PASS'; its masked sets
    point at the matrices it lacks. A VCF without a FASTA points at the FASTA instead."""
    from nanog1.encoder.input_filter import describe
    from nanog1.encoder.predict_notes import masked_note

    _matrix_tsv(tmp_path / "m.tsv", np.full((1, 96), 20), ["flat"])
    matrix = read_inputs([tmp_path / "m.tsv"])
    predict(matrix, "pcawg-catalogue", FAST)
    record = matrix.uns["nanog1_predict"]
    assert record["input_filter"] == "n/a" and describe(record) == "catalogue counts (no FILTER to apply)"
    assert "give the tumours' SBS96, DBS78 and ID83 matrices together" in masked_note(record)
    _vcf(tmp_path / "t.vcf", _random_positions(np.random.default_rng(3), 200))
    calls = read_inputs([tmp_path / "t.vcf"])
    predict(calls, "pcawg-catalogue", FAST)
    record = calls.uns["nanog1_predict"]
    assert record["input_filter"] == "PASS" and "without a reference FASTA" in masked_note(record)


def test_a_vcf_without_records_is_still_read_calls_and_a_maf_without_any_is_named(tmp_path):
    """A header-only VCF names its tumour: it abstains for no mutations, its FILTER rule still stated; a
    header-only MAF names none: one error naming the file, not the schema's 'measured none' message."""
    from nanog1.errors import UserError

    _vcf(tmp_path / "none.vcf", np.array([], dtype=int))
    lines = (tmp_path / "none.vcf").read_text().splitlines()
    lines[-1] += "\tFORMAT\tT9"  # a sample column: the tumour is named though it has no calls
    (tmp_path / "none.vcf").write_text("\n".join(lines) + "\n")
    empty = read_inputs([tmp_path / "none.vcf"])
    predict(empty, "pcawg-catalogue", FAST)
    assert empty.obs.loc["T9", "abstain_reason"] == "no mutations"
    assert empty.uns["nanog1_predict"]["input_filter"] == "PASS"
    _maf(tmp_path / "none.maf", {})
    with pytest.raises(UserError, match=r"none\.maf: no tumour to type"):
        read_inputs([tmp_path / "none.maf"])


def test_catalogue_matrix_beside_a_vcf_is_still_said_to_be_unchecked(tmp_path):
    """QA: an SBS96 matrix given together with a VCF lost the 'assay not checked' warning (the VCF's call
    tokens made the whole batch count as checked); it is per tumour: the matrix row is named in the count,
    the VCF tumour (its positions tell its assay) is not."""
    _matrix_tsv(tmp_path / "m.tsv", np.full((1, 96), 20), ["counts"])
    _vcf(tmp_path / "t.vcf", _random_positions(np.random.default_rng(0), 300))
    both = read_inputs([tmp_path / "m.tsv", tmp_path / "t.vcf"])
    predict(both, "pcawg-catalogue", FAST)
    assert both.obs["assay"].astype(str).tolist() == ["unknown", "genome"]
    said = [n.text for n in input_warnings(both) if n.kind == "assay"]
    assert len(said) == 1 and said[0].startswith("assay not checked for 1 of 2 tumour(s)"), said
