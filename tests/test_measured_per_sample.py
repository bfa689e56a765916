"""Measured channel sets are per sample (issue 31: "a mismatch is never silent").

Strelka2 writes one tumour's SNVs and indels to two files (somatic.snvs.vcf, somatic.indels.vcf): an SNV
file alone measures SBS96, DBS78 and SBS6, never the indel sets, so its tumour's ID83/ID12 are recorded
unmeasured (obsm['measured_sets']) and the models key-pad them for that tumour only, where before they
were read as zero indels (or, beside a complete tumour, every tumour's indels were dropped). The files
are written as the callers write them (tests/test_ingest_somatic.py's Strelka2 and Mutect2 headers).
"""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from nanog1.genomics.cohort import read_cohort, write_cohort
from nanog1.genomics.ingest import ingest
from nanog1.genomics.synthetic import GenomeSpec, make_genome
from tests.test_ingest_somatic import (
    MUTECT2_META,
    sites,
    snv_rows,
    strelka_indels,
    strelka_snvs,
    write,
)

ALL = ["SBS96", "DBS78", "ID83", "SBS6", "ID12"]
NO_INDELS = {"SBS96": True, "DBS78": True, "ID83": False, "SBS6": True, "ID12": False}


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    work = tmp_path_factory.mktemp("measured")
    seqs = make_genome(work / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=11))
    return work / "g.fa", seqs["1"]


def mutect2_complete(path, seq: str, snvs: list[int], dels: list[int]) -> None:
    """A Mutect2 tumour/normal VCF with SNVs and 1-bp deletions (one file holds every kind of call)."""
    fields = "TLOD=12.3\tGT:AD:AF:DP\t0/0:30,0:0.03:30\t0/1:20,9:0.3:29"
    rows = {int(r.split("\t")[1]): r for r in snv_rows(seq, snvs, lambda p, ref, alt: fields)}
    for p in dels:
        rows[p] = f"1\t{p}\t.\t{seq[p - 1 : p + 1]}\t{seq[p - 1]}\t.\tPASS\t{fields}"
    write(path, MUTECT2_META, ["P1-N", "P1-T"], [rows[p] for p in sorted(rows)])


def strelka_alone(folder, seq: str):
    folder.mkdir(exist_ok=True)
    strelka_snvs(folder / "somatic.snvs.vcf", seq, sites(seq, 80, start=1020), [], [])
    return folder / "somatic.snvs.vcf"


def complete(folder, seq: str):
    folder.mkdir(exist_ok=True)
    mutect2_complete(folder / "p1.vcf", seq, sites(seq, 70), sites(seq, 25, start=1050))
    return folder / "p1.vcf"


def warning_lines(result) -> str:
    return " ".join(line for line in result.stderr.splitlines() if line.startswith("warning: "))


def measured(adata) -> dict[str, dict[str, bool]]:
    from nanog1.schema import measured_sets_per_sample

    table = measured_sets_per_sample(adata)
    return {str(s): {k: bool(v) for k, v in row.items()} for s, row in table.iterrows()}


def test_a_lone_strelka2_snv_file_measures_no_indels(genome, tmp_path):
    fasta, seq = genome
    snvs = strelka_alone(tmp_path / "T1", seq)
    report = ingest([snvs], fasta, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    status = adata.uns["nanog1"]["channel_sets"]
    assert status["ID83"] == status["ID12"] == "not_computable" and status["SBS96"] == "exact"
    assert measured(adata) == {"somatic.snvs": NO_INDELS}
    assert adata.uns["nanog1"]["inputs"]["content"].tolist() == ["Strelka2 SNV file"]
    assert any("indels (ID83+ID12) not measured for somatic.snvs (Strelka2 SNV file only)" in n
               for n in report.notes), report.notes


def test_predict_masks_the_indels_of_a_strelka2_snv_tumour_instead_of_reading_zeros(genome, tmp_path):
    """pcawg-catalogue reads all five sets: the SNV-only tumour is scored with its indels key-padded, as the
    same counts are with ID83/ID12 recorded unmeasured, and not as the same counts read as zero indels."""
    import anndata as ad

    from nanog1.encoder.predict_notes import input_warnings
    from nanog1.encoder.predictor import PredictOptions, predict, read_inputs

    fasta, seq = genome
    options = PredictOptions(neighbours=0, exposures=False)
    adata = read_inputs([strelka_alone(tmp_path / "T1", seq)], fasta)
    predict(adata, "pcawg-catalogue", options)
    record = adata.uns["nanog1_predict"]
    assert record["channel_sets_masked"] == ["ID83", "ID12"]
    assert adata.obs["channel_sets_masked"].tolist() == ["ID83+ID12"]
    warned = " ".join(n.text for n in input_warnings(adata))
    assert ("indels (ID83+ID12) not measured for somatic.snvs (Strelka2 SNV file only): masked as unmeasured"
            in warned), warned

    def scored(sets: list[str]) -> np.ndarray:
        same = ad.AnnData(X=np.asarray(adata.X).copy(), obs=adata.obs[[]].copy(), var=adata.var.copy())
        same.uns["nanog1"] = {"channel_sets_present": sets}
        predict(same, "pcawg-catalogue", options)
        return same.obsm["proba_type"].to_numpy()

    got = adata.obsm["proba_type"].to_numpy()
    np.testing.assert_allclose(got, scored(["SBS96", "DBS78"]), atol=1e-5)
    assert np.abs(got - scored(["SBS96", "DBS78", "ID83"])).max() > 1e-3  # zeros read as no indels


def test_predict_cli_states_which_sets_a_strelka2_snv_tumour_did_not_measure_and_why(genome, tmp_path):
    """The CLI's warning lines and predictions.json say it; without a reference the SBS96 that the
    Strelka2 file did cover is masked too, and said to be for another reason."""
    import json

    from nanog1.cli import app

    fasta, seq = genome
    snvs = strelka_alone(tmp_path / "T1", seq)
    args = ["predict", str(snvs), "--no-exposures", "--neighbours", "0", "--no-reports"]
    result = CliRunner().invoke(app, [*args, "-r", str(fasta), "--out", str(tmp_path / "typed")])
    assert result.exit_code == 0, result.output
    warned = warning_lines(result)
    assert ("indels (ID83+ID12) not measured for somatic.snvs (Strelka2 SNV file only): masked as unmeasured"
            in warned), result.stderr
    assert "channel sets masked as unmeasured:" not in warned
    doc = json.loads((tmp_path / "typed" / "predictions.json").read_text())
    assert doc["model"]["unmeasured_why"]["why"] == ["Strelka2 SNV file only"]

    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "bare")])
    assert result.exit_code == 0, result.output
    warned = warning_lines(result)
    assert "channel sets masked as unmeasured: SBS96." in warned, warned
    assert "indels (ID83+ID12) not measured for somatic.snvs (Strelka2 SNV file only)" in warned, warned


def test_a_complete_tumour_keeps_its_indels_beside_a_strelka2_snv_tumour(genome, tmp_path):
    """Each tumour is scored as it would be alone: the Mutect2 tumour with its indels read, the Strelka2
    SNV tumour with them masked (before, the cohort-wide rule masked the indels of both)."""
    from nanog1.encoder.predictor import PredictOptions, load_predictor, predict, read_inputs

    fasta, seq = genome
    full, snv = complete(tmp_path / "A", seq), strelka_alone(tmp_path / "B", seq)
    ingest([full, snv], fasta, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    assert adata.obs.loc["P1-T", "burden_ID83"] == 25
    meta = adata.uns["nanog1"]
    assert meta["channel_sets"]["ID83"] == "partial" and list(meta["exact_for"]["ID83"]) == ["P1-T"]
    assert meta["channel_sets"]["SBS96"] == "exact"

    model, options = load_predictor("pcawg-catalogue"), PredictOptions(neighbours=0, exposures=False)
    both = read_inputs([full, snv], fasta)
    predict(both, model, options)
    for path, name in ((full, "P1-T"), (snv, "somatic.snvs")):
        alone = read_inputs([path], fasta)
        predict(alone, model, options)
        np.testing.assert_allclose(both.obsm["proba_type"].loc[name].to_numpy(),
                                   alone.obsm["proba_type"].loc[name].to_numpy(), atol=1e-5)
    assert both.obs["channel_sets_masked"].to_dict() == {"P1-T": "", "somatic.snvs": "ID83+ID12"}
    record = both.uns["nanog1_predict"]
    assert record["channel_sets_masked_per_tumour"] == {"tumour": ["somatic.snvs"], "sets": ["ID83+ID12"]}
    assert record["unmeasured_why"] == {"tumour": ["somatic.snvs"], "sets": ["ID83+ID12"],
                                        "why": ["Strelka2 SNV file only"]}
    assert measured(adata) == {"P1-T": dict.fromkeys(ALL, True), "somatic.snvs": NO_INDELS}


def test_split_strelka2_files_are_one_tumour_with_a_sheet_and_refused_without(genome, tmp_path):
    from nanog1.cli import app

    fasta, seq = genome
    strelka_snvs(tmp_path / "somatic.snvs.vcf", seq, sites(seq, 30), [], [])
    strelka_indels(tmp_path / "somatic.indels.vcf", seq, sites(seq, 8, start=1050), [])
    files = [str(tmp_path / "somatic.snvs.vcf"), str(tmp_path / "somatic.indels.vcf")]
    result = CliRunner().invoke(app, ["ingest", *files, "-r", str(fasta), "-o", str(tmp_path / "c.h5ad")])
    assert result.exit_code != 0 and "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in ("somatic.snvs.vcf", "somatic.indels.vcf", "Strelka2", "--samples SHEET"):
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "c.h5ad").exists()

    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("sample\tfile\nP9\tsomatic.snvs.vcf\nP9\tsomatic.indels.vcf\n")
    result = CliRunner().invoke(app, ["ingest", *files, "-r", str(fasta), "--samples", str(sheet),
                                      "-o", str(tmp_path / "c.h5ad")])
    assert result.exit_code == 0, result.output
    adata = read_cohort(tmp_path / "c.h5ad")
    assert measured(adata) == {"P9": dict.fromkeys(ALL, True)}
    assert adata.obs.loc["P9", "burden_ID83"] == 8 and adata.obs.loc["P9", "burden_SBS96"] == 30
    assert all(v == "exact" for v in adata.uns["nanog1"]["channel_sets"].values())


def test_merge_keeps_per_sample_records_and_reads_cohorts_without_them(genome, tmp_path):
    from nanog1.genomics.merge import MergeOptions, merge_cohort

    MEASURED_SETS = "measured_sets"  # noqa: N806  (nanog1.schema.MEASURED_SETS, spelled out)

    fasta, seq = genome
    ingest([complete(tmp_path / "A", seq)], fasta, None, tmp_path / "a.h5ad")
    ingest([strelka_alone(tmp_path / "B", seq)], fasta, None, tmp_path / "b.h5ad")
    merge_cohort([tmp_path / "a.h5ad", tmp_path / "b.h5ad"], tmp_path / "m.h5ad")
    merged = read_cohort(tmp_path / "m.h5ad")
    meta = merged.uns["nanog1"]
    assert meta["channel_sets"]["ID83"] == "partial" and list(meta["exact_for"]["ID83"]) == ["P1-T"]
    want = {"P1-T": dict.fromkeys(ALL, True), "somatic.snvs": NO_INDELS}
    assert measured(merged) == want
    assert MEASURED_SETS in merged.obsm

    # a cohort written before the per-sample record: its cohort-wide record (exact_for) is the fallback
    old = merged.copy()
    del old.obsm[MEASURED_SETS]
    write_cohort(old, tmp_path / "old.h5ad")
    assert measured(read_cohort(tmp_path / "old.h5ad")) == want
    for name in ("a", "b"):
        part = read_cohort(tmp_path / f"{name}.h5ad")
        del part.obsm[MEASURED_SETS]
        write_cohort(part, tmp_path / f"old_{name}.h5ad")
    merge_cohort([tmp_path / "old_a.h5ad", tmp_path / "old_b.h5ad"], tmp_path / "m2.h5ad")
    assert measured(read_cohort(tmp_path / "m2.h5ad")) == want

    # one tumour's Strelka2 SNV and indel parts, summed: every set measured
    (tmp_path / "C").mkdir()
    strelka_snvs(tmp_path / "C" / "somatic.snvs.vcf", seq, sites(seq, 30), [], [])
    strelka_indels(tmp_path / "C" / "somatic.indels.vcf", seq, sites(seq, 8, start=1050), [])
    for kind in ("snvs", "indels"):
        sheet = tmp_path / f"{kind}.tsv"
        sheet.write_text(f"sample\tfile\nP9\tsomatic.{kind}.vcf\n")
        ingest([tmp_path / "C" / f"somatic.{kind}.vcf"], fasta, sheet, tmp_path / f"{kind}.h5ad")
        assert measured(read_cohort(tmp_path / f"{kind}.h5ad"))["P9"]["ID83"] == (kind == "indels")
    merge_cohort([tmp_path / "snvs.h5ad", tmp_path / "indels.h5ad"], tmp_path / "p9.h5ad",
                 options=MergeOptions(duplicates="sum"))
    p9 = read_cohort(tmp_path / "p9.h5ad")
    assert measured(p9) == {"P9": dict.fromkeys(ALL, True)}
    assert all(v == "exact" for v in p9.uns["nanog1"]["channel_sets"].values())


def varscan_pair(folder, seq: str, prefix: str = "T7", indel: bool = True) -> list:
    """VarScan2 `somatic --output-vcf 1` outputs: PREFIX.snp.vcf and PREFIX.indel.vcf, one header for both
    (##source=VarScan2, NORMAL/TUMOR columns), which does not say which file holds which calls."""
    from tests.test_ingest_somatic import VARSCAN_META

    folder.mkdir(exist_ok=True)
    fields = "DP=60;SOMATIC;SS=2;SSC=40;GPV=1;SPV=1e-05\tGT:GQ:DP:RD:AD:FREQ:DP4\t" \
             "0/0:.:30:30:0:0%:15,15,0,0\t0/1:.:30:20:10:33.3%:10,10,5,5"
    snp = folder / f"{prefix}.snp.vcf"
    write(snp, VARSCAN_META, ["NORMAL", "TUMOR"], snv_rows(seq, sites(seq, 40), lambda p, ref, alt: fields))
    if not indel:
        return [snp]
    rows = [f"1\t{p}\t.\t{seq[p - 1 : p + 1]}\t{seq[p - 1]}\t.\tPASS\t{fields}"
            for p in sites(seq, 9, start=1050)]
    write(folder / f"{prefix}.indel.vcf", VARSCAN_META, ["NORMAL", "TUMOR"], rows)
    return [snp, folder / f"{prefix}.indel.vcf"]


def test_a_lone_varscan2_snp_file_measures_no_indels(genome, tmp_path):
    """VarScan2 writes a tumour's SNPs and indels to PREFIX.snp.vcf and PREFIX.indel.vcf: the SNP file alone
    is a tumour whose indels are unmeasured (before: 0 indels, read as such by the models)."""
    fasta, seq = genome
    snp = varscan_pair(tmp_path / "V", seq, indel=False)
    report = ingest(snp, fasta, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    assert measured(adata) == {"T7.snp": NO_INDELS}
    assert adata.uns["nanog1"]["inputs"]["content"].tolist() == ["VarScan2 SNP file"]
    assert any("indels (ID83+ID12) not measured for T7.snp (VarScan2 SNP file only)" in n
               for n in report.notes), report.notes
    # two tumours' SNP files of one folder are two tumours (not refused), each without indels
    more = varscan_pair(tmp_path / "V", seq, prefix="T8", indel=False)
    ingest([*snp, *more], fasta, None, tmp_path / "c2.h5ad")
    assert measured(read_cohort(tmp_path / "c2.h5ad")) == {"T7.snp": NO_INDELS, "T8.snp": NO_INDELS}


def test_split_varscan2_files_are_one_tumour_with_a_sheet_and_refused_without(genome, tmp_path):
    from nanog1.cli import app

    fasta, seq = genome
    files = [str(p) for p in varscan_pair(tmp_path, seq)]
    for command in ("ingest", "predict"):
        result = CliRunner().invoke(app, [command, *files, "-r", str(fasta), "-o", str(tmp_path / "c.h5ad")])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        line = " ".join(result.stderr.split())
        for needle in ("T7.snp.vcf", "T7.indel.vcf", "VarScan2 VCFs of one folder", "--samples SHEET"):
            assert needle in line, line
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("sample\tfile\nT7\tT7.snp.vcf\nT7\tT7.indel.vcf\n")
    result = CliRunner().invoke(app, ["ingest", *files, "--samples", str(sheet), "--check-only"])
    assert result.exit_code == 0 and "checked 2 inputs (1 sample(s) named" in result.output, result.output
    result = CliRunner().invoke(app, ["ingest", *files, "-r", str(fasta), "--samples", str(sheet),
                                      "-o", str(tmp_path / "c.h5ad")])
    assert result.exit_code == 0, result.output
    adata = read_cohort(tmp_path / "c.h5ad")
    assert measured(adata) == {"T7": dict.fromkeys(ALL, True)}
    assert adata.obs.loc["T7", "burden_ID83"] == 9 and adata.obs.loc["T7", "burden_SBS96"] == 40


def test_a_snp_named_file_of_another_caller_measures_every_set(genome, tmp_path):
    """Only VarScan2's header makes the file name evidence: a Mutect2 VCF named calls.snp.vcf holds every
    kind of call it found."""
    fasta, seq = genome
    folder = tmp_path / "M"
    folder.mkdir()
    mutect2_complete(folder / "P1.snp.vcf", seq, sites(seq, 30), sites(seq, 5, start=1050))
    ingest([folder / "P1.snp.vcf"], fasta, None, tmp_path / "c.h5ad")
    assert measured(read_cohort(tmp_path / "c.h5ad")) == {"P1-T": dict.fromkeys(ALL, True)}


def test_each_one_page_report_counts_its_own_tumours_calls(genome, tmp_path):
    """Two tumours typed together: each report's input line gives that tumour's calls read/counted/skipped,
    not the batch's (before: 'Mutations: 95; input: 175 calls read' for the Mutect2 tumour)."""
    from nanog1.cli import app

    fasta, seq = genome
    full, snv = complete(tmp_path / "A", seq), strelka_alone(tmp_path / "B", seq)
    out = tmp_path / "typed"
    result = CliRunner().invoke(app, ["predict", str(full), str(snv), "-r", str(fasta), "--out", str(out),
                                      "--no-exposures", "--neighbours", "0", "--reports"])
    assert result.exit_code == 0, result.output
    acc = read_inputs_accounting(full, snv, fasta)
    for sample in ("P1-T", "somatic.snvs"):
        own = acc[acc["sample"] == sample]
        line = next(x for x in (out / f"{sample}.report.md").read_text().splitlines() if "input:" in x)
        want = f"input: {own['read'].sum():,} calls read, {own['counted'].sum():,} counted"
        assert want in line, (sample, line)


def read_inputs_accounting(*paths):
    from nanog1.encoder.predictor import read_inputs

    *files, fasta = paths
    return read_inputs(list(files), fasta).uns["nanog1"]["accounting"]


def test_two_tumours_strelka2_snv_files_of_one_name_ask_for_a_sheet(genome, tmp_path):
    """T1/somatic.snvs.vcf and T2/somatic.snvs.vcf (each tumour's Strelka2 folder) both read as sample
    'somatic.snvs': the error asks for a sheet naming each tumour (predict has no --duplicates option, and
    summing would make one tumour of two)."""
    from nanog1.cli import app

    fasta, seq = genome
    files = [str(strelka_alone(tmp_path / name, seq)) for name in ("T1", "T2")]
    result = CliRunner().invoke(app, ["predict", *files, "-r", str(fasta), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    line = " ".join(result.stderr.split())
    assert "files of one name in different folders" in line and "--samples SHEET" in line, line
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"sample\tfile\nT1\t{files[0]}\nT2\t{files[1]}\n")
    result = CliRunner().invoke(app, ["predict", *files, "-r", str(fasta), "--samples", str(sheet), "--out",
                                      str(tmp_path / "o"), "--no-exposures", "--neighbours", "0"])
    assert result.exit_code == 0, result.output
