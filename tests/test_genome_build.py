"""Genome builds of VCF inputs (issue 31: a mismatch is never silent).

Headers are written the way somatic callers write them: Mutect2 (##contig lines with lengths from the
reference's .dict, ##reference), Strelka2 (##reference, ##contig with lengths, UCSC `chr` names) and
VarScan2 (neither). The detector (nanog1.genomics.build) reads the build from contig lengths first, names
second, and says so when there is nothing to read; `nanog1 predict` with the GRCh37 exome model abstains on
a GRCh38 VCF, `ingest`/`predict` refuse a VCF whose contig lengths disagree with the FASTA given (and a
MAF whose NCBI_Build names another build than the FASTA's lengths, or two builds), the build travels
in the cohort's provenance to .h5ad predictions, and catalogue matrices of different sets that share
no sample name are refused.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pysam
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.encoder.predictor import PredictOptions, predict, read_inputs
from nanog1.genomics.build import GRCH37, GRCH38, build_from_lengths, canonical_build, vcf_build
from nanog1.genomics.channels import CHANNEL_SETS
from tests.test_ingest_somatic import MUTECT2_META, STRELKA_SNV_META, VARSCAN_META, strelka_counts

FAST = PredictOptions(neighbours=0, exposures=False)
#: Exome calls of a glioma (GRCh37 positions; only the header's build matters here).
CALLS = [("2", 209113112, "C", "T"), ("17", 7577121, "G", "A"), ("17", 7578406, "C", "T"),
         ("X", 76938210, "G", "A"), ("X", 76889100, "C", "T"), ("19", 42796000, "C", "T")]
COLUMNS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"


def contig_lines(lengths: dict[str, int], prefix: str = "", assembly: str | None = None) -> list[str]:
    extra = f",assembly={assembly}" if assembly else ""
    return [f"##contig=<ID={prefix}{c},length={n}{extra}>" for c, n in lengths.items()]


def mutect2_vcf(path, lengths: dict[str, int] | None, reference: str, prefix: str = "",
                calls=CALLS, assembly: str | None = None):
    """A Mutect2 tumour/normal VCF: ##contig lines with lengths (GATK copies the reference's .dict), then
    ##reference=file://..., ##source=Mutect2, ##tumor_sample."""
    tumour = path.stem  # ##tumor_sample names the tumour column (and so the cohort sample)
    head = ["##fileformat=VCFv4.2", *MUTECT2_META[:7], *(contig_lines(lengths, prefix, assembly) if lengths
                                                         else []),
            '##GATKCommandLine=<ID=Mutect2,CommandLine="Mutect2 --output somatic.vcf.gz",Version="4.2.6.1">',
            "##MutectVersion=2.2", f"##reference={reference}", "##source=Mutect2",
            f"##normal_sample={tumour}-N", f"##tumor_sample={tumour}"]
    samples = "GT:AD:AF:DP\t0/0:30,0:0.03:30\t0/1:20,9:0.3:29"
    rows = [f"{prefix}{c}\t{p}\t.\t{r}\t{a}\t.\tPASS\tTLOD=12.3\t{samples}" for c, p, r, a in calls]
    path.write_text("\n".join([*head, COLUMNS + f"{tumour}-N\t{tumour}", *rows]) + "\n")
    return path


def strelka2_vcf(path, lengths: dict[str, int], reference: str, prefix: str = "chr"):
    """A Strelka2 somatic SNV VCF: ##fileDate, ##source=strelka, ##reference=file://..., ##contig lines with
    lengths, NORMAL/TUMOR columns without GT."""
    head = ["##fileformat=VCFv4.1", "##fileDate=20240101", "##source=strelka", "##source_version=2.9.10",
            f"##reference={reference}", *contig_lines(lengths, prefix), "##content=strelka somatic snv calls",
            *STRELKA_SNV_META]
    rows = [f"{prefix}{c}\t{p}\t.\t{r}\t{a}\t.\tPASS\tSOMATIC;QSS=40;NT=ref;SGT={r}{r}->{r}{a}\t"
            f"DP:FDP:AU:CU:GU:TU\t{strelka_counts(r, a, 0)}\t{strelka_counts(r, a, 11)}"
            for c, p, r, a in CALLS]
    path.write_text("\n".join([*head, COLUMNS + "NORMAL\tTUMOR", *rows]) + "\n")
    return path


def varscan2_vcf(path):
    """A VarScan2 somatic VCF: no ##contig, ##reference or ##assembly line."""
    head = ["##fileformat=VCFv4.1", *VARSCAN_META]
    info = "DP=60;SOMATIC;SS=2;SSC=40;GPV=1;SPV=1e-05\tGT:GQ:DP:RD:AD:FREQ:DP4"
    samples = "0/0:.:30:30:0:0%:15,15,0,0\t0/1:.:30:20:10:33.3%:10,10,5,5"
    rows = [f"{c}\t{p}\t.\t{r}\t{a}\t.\tPASS\t{info}\t{samples}" for c, p, r, a in CALLS]
    path.write_text("\n".join([*head, COLUMNS + "NORMAL\tTUMOR", *rows]) + "\n")
    return path


def primary(lengths: dict[str, int]) -> dict[str, int]:
    """The 24 chromosomes plus the mitochondrion (rCRS), as a .dict lists them."""
    return {**lengths, "MT": 16569}


@pytest.mark.parametrize(("writer", "build", "source"), [
    (lambda p: mutect2_vcf(p, primary(GRCH38), "file:///refs/Homo_sapiens_assembly38.fasta", "chr"),
     "GRCh38", "##contig lengths: 24 of 24 chromosomes match GRCh38 (chr1 248,956,422 bp)"),
    (lambda p: mutect2_vcf(p, primary(GRCH37), "file:///refs/human_g1k_v37.fasta", assembly="NCBI37"),
     "GRCh37", "##contig lengths: 24 of 24 chromosomes match GRCh37 (chr1 249,250,621 bp)"),
    (lambda p: strelka2_vcf(p, {**GRCH37, "M": 16571}, "file:///refs/ucsc.hg19.fasta"),
     "GRCh37", "##contig lengths: 24 of 24 chromosomes match GRCh37"),
    (lambda p: strelka2_vcf(p, {c: GRCH38[c] for c in ("1", "2", "17")}, "file:///refs/genome.fa"),
     "GRCh38", "##contig lengths: 3 of 3 chromosomes match GRCh38"),
    (lambda p: mutect2_vcf(p, None, "file:///data/GRCh38.fa"), "GRCh38", "##reference: file:///data/GRCh38.fa"),
    (lambda p: mutect2_vcf(p, None, "/refs/hs37d5.fa"), "GRCh37", "##reference: /refs/hs37d5.fa"),
    (lambda p: mutect2_vcf(p, primary(GRCH38), "ucsc.hg19.fasta"), "GRCh38", "##contig lengths: 24 of 24"),
    (varscan2_vcf, None, "no ##contig lengths, ##reference or ##assembly in the header"),
    (lambda p: mutect2_vcf(p, None, "file:///data/ref.fa"), None, "file:///data/ref.fa names no build"),
    (lambda p: mutect2_vcf(p, {**GRCH37, "2": GRCH38["2"]}, "x.fa"), None, "match GRCh37 (chr1) and GRCh38"),
])  # fmt: skip
def test_detector_reads_the_build_the_way_callers_write_it(tmp_path, writer, build, source):
    """Contig lengths decide (chr-prefixed or not, hg19's chrM aside), even against a name; a header with only
    a reference path or assembly name is read by the name; VarScan2's bare header gives None and says why."""
    got, evidence = vcf_build(writer(tmp_path / "calls.vcf"))
    assert got == build, evidence
    assert source in evidence, evidence


def test_build_names_and_lengths_share_one_rule():
    """A MAF's NCBI_Build values and a header's names go through the same spellings; a toy genome's lengths
    match no build."""
    spelled = {v: canonical_build(v) for v in ("37", "GRCh37-lite", "hg19", "b37", "GRCh38", "38", "hg38",
                                                 "GRCh38.p13", "hs37d5", "Homo_sapiens_assembly38.fasta")}
    assert spelled == {"37": "GRCh37", "GRCh37-lite": "GRCh37", "hg19": "GRCh37", "b37": "GRCh37",
                       "GRCh38": "GRCh38", "38": "GRCh38", "hg38": "GRCh38", "GRCh38.p13": "GRCh38",
                       "hs37d5": "GRCh37", "Homo_sapiens_assembly38.fasta": "GRCh38"}
    assert canonical_build("CHM13v2") == "T2T-CHM13" and canonical_build("mm10") == "mm10"
    assert build_from_lengths({"1": 20_000, "2": 20_000})[0] is None
    assert build_from_lengths({"chrX": GRCH38["X"], "chrY": GRCH38["Y"]})[0] == "GRCh38"


def _predict_cli(tmp_path, *inputs, model="tcga-exome", extra=("--no-reports",)):
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["predict", *map(str, inputs), "--model", model, "--assay", "exome",
                                   "--out", str(out), "--no-exposures", "--neighbours", "0", *extra])
    return res, out


def test_exome_model_abstains_on_a_grch38_vcf_and_says_so_everywhere(tmp_path, monkeypatch):
    """tcga-exome reads GRCh37 positions: a Mutect2 VCF whose contig lengths are GRCh38 abstains with the
    build and its evidence in the reason, a stderr warning, predictions.json; a GRCh37 header beside it
    does not, and a VarScan2 VCF (no build stated) is scored with a 'build unknown' warning."""
    monkeypatch.setenv("COLUMNS", "300")
    new = mutect2_vcf(tmp_path / "grch38.vcf", primary(GRCH38), "/r/Homo_sapiens_assembly38.fasta", "chr")
    old = mutect2_vcf(tmp_path / "b37.vcf", primary(GRCH37), "file:///refs/human_g1k_v37.fasta")
    bare = varscan2_vcf(tmp_path / "varscan.vcf")
    res, out = _predict_cli(tmp_path, new, old, bare, extra=["--reports"])
    assert res.exit_code == 0, res.output
    assert "genome build 1" in res.output, res.output  # the closing line counts it by reason
    assert "warning: genome build mismatch: 1 of 3 tumour(s) on GRCh38" in res.output, res.output
    assert "warning: genome build mismatch" in res.stderr and "genome build unknown for 1 of 3" in res.stderr
    doc = json.loads((out / "predictions.json").read_text())
    reasons = {t["sample"]: t["abstain_reason"] for t in doc["tumours"]}
    assert "genome build GRCh38 (##contig lengths): model trained on GRCh37 positions" in reasons["grch38"]
    assert "genome build" not in reasons["b37"] and "genome build" not in reasons["varscan"]
    record = doc["model"]
    assert record["abstained_by_reason"]["genome build"] == 1
    assert record["genome_builds"] == {"GRCh38": 1, "GRCh37": 1, "unknown": 1}
    assert "varscan.vcf: no ##contig lengths, ##reference or ##assembly" in record["genome_build_note"]
    for sample in ("grch38", "b37"):  # each one-page report repeats the input's warnings
        report = (out / f"{sample}.report.md").read_text()
        assert "genome build mismatch: 1 of 3 tumour(s) on GRCh38" in report, report
    assert "genome build GRCh38 (##contig lengths)" in (out / "grch38.report.md").read_text()


def test_cohort_h5ad_carries_the_build_to_predict(tmp_path):
    """`nanog1 ingest` records each tumour's build (and the evidence) in uns['nanog1']['genome_build']; a
    prediction on the .h5ad abstains as on the VCF itself, and on parts merged by `cohort merge`. An older
    cohort without the record is scored with a 'build not recorded' note, never refused."""
    from nanog1.genomics.cohort import read_cohort, write_cohort

    vcf = mutect2_vcf(tmp_path / "t1.vcf", primary(GRCH38), "file:///refs/GRCh38.fa", "chr")
    res = CliRunner().invoke(app, ["ingest", str(vcf), "--out", str(tmp_path / "c.h5ad"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "genome build (samples): GRCh38 1" in res.output, res.output
    table = read_cohort(tmp_path / "c.h5ad").uns["nanog1"]["genome_build"]
    assert table["genome_build"].tolist() == ["GRCh38"]
    assert table["evidence"].iloc[0].startswith("t1.vcf: ##contig lengths: 24 of 24")
    adata = read_inputs([tmp_path / "c.h5ad"])
    predict(adata, "tcga-exome", FAST)
    assert "genome build GRCh38 (##contig lengths)" in adata.obs["abstain_reason"].iloc[0]
    assert adata.obs["genome_build"].tolist() == ["GRCh38"]
    other = mutect2_vcf(tmp_path / "t2.vcf", primary(GRCH37), "file:///refs/hs37d5.fa")
    res = CliRunner().invoke(app, ["ingest", str(other), "--out", str(tmp_path / "c2.h5ad"), "--quiet"])
    res = CliRunner().invoke(app, ["cohort", "merge", str(tmp_path / "c.h5ad"), str(tmp_path / "c2.h5ad"),
                                   "--out", str(tmp_path / "merged.h5ad")])
    assert res.exit_code == 0, res.output
    merged = read_inputs([tmp_path / "merged.h5ad"])  # `cohort merge` (the pipeline's gather) keeps them
    predict(merged, "tcga-exome", FAST)
    assert merged.obs["genome_build"].tolist() == ["GRCh38", "GRCh37"]
    assert merged.uns["nanog1_predict"]["abstained_by_reason"]["genome build"] == 1
    older = read_cohort(tmp_path / "c.h5ad")
    del older.uns["nanog1"]["genome_build"]
    write_cohort(older, tmp_path / "old.h5ad")
    adata = read_inputs([tmp_path / "old.h5ad"])
    with pytest.warns(UserWarning, match="genome build not recorded"):
        predict(adata, "tcga-exome", FAST)
    assert "genome build" not in adata.obs["abstain_reason"].iloc[0]
    assert adata.uns["nanog1_predict"]["genome_build_note"].startswith("genome build not recorded")


@pytest.fixture
def small_chr1(tmp_path):
    """A 20 kb generated FASTA whose one contig has the real name chr1 (indexed), and its sequence."""
    from nanog1.genomics.synthetic import GenomeSpec, make_genome

    seq = make_genome(tmp_path / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=3))["1"]
    fasta = tmp_path / "chr1.fa"
    fasta.write_text(">chr1\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n")
    pysam.faidx(str(fasta))
    return fasta, seq


def _calls_on(seq: str) -> list[tuple]:
    return [("1", p, seq[p - 1], "ACGT"[("ACGT".index(seq[p - 1]) + 1) % 4]) for p in range(1000, 19000, 900)
            if seq[p - 1] in "ACGT"]


def test_a_grch38_vcf_against_another_fasta_is_one_clear_error(tmp_path, small_chr1):
    """The header claims GRCh38's chr1 (248,956,422 bp), the FASTA's chr1 has 20,000: `predict` (with the
    catalogue model, which reads the FASTA's contexts) and `ingest` stop with one line naming the file, the
    contig and both lengths, exit 2, no traceback. The same calls with the FASTA's own length go through."""
    fasta, seq = small_chr1
    calls = _calls_on(seq)
    vcf = mutect2_vcf(tmp_path / "t.vcf", {"1": GRCH38["1"]}, "file:///refs/GRCh38.fa", "chr", calls)
    res, _ = _predict_cli(tmp_path, vcf, model="pcawg-catalogue", extra=["--no-reports", "-r", str(fasta)])
    expected = (f"error: {vcf}: contig chr1 is 248,956,422 bp in the VCF header (GRCh38) but 20,000 bp in "
                f"the reference {fasta}: the calls were made on another genome build than this FASTA")
    assert res.exit_code == 2, res.output
    assert expected in res.output and "Traceback" not in res.output, res.output
    res = CliRunner().invoke(app, ["ingest", str(vcf), "-r", str(fasta), "--out", str(tmp_path / "c.h5ad")])
    assert res.exit_code == 2 and expected in res.output, res.output
    assert not (tmp_path / "c.h5ad").exists()
    same = mutect2_vcf(tmp_path / "ok.vcf", {"1": 20_000}, "file:///refs/chr1.fa", "chr", calls)
    res = CliRunner().invoke(app, ["ingest", str(same), "-r", str(fasta), "--out", str(tmp_path / "c.h5ad")])
    assert res.exit_code == 0, res.output


def _matrix(path, channel_set: str, samples: list[str], seed: int):
    labels = list(CHANNEL_SETS[channel_set])
    counts = np.random.default_rng(seed).poisson(5, (len(labels), len(samples)))
    pd.DataFrame(counts, index=pd.Index(labels, name="MutationType"), columns=samples).to_csv(path, sep="\t")
    return path


def test_matrices_of_different_sets_sharing_no_sample_name_are_refused(tmp_path):
    """An SBS96 matrix of A, B and an ID83 matrix of A_id, B_id would be four tumours, each reading the
    other matrix's set as zero mutations: refused naming both files, their sets and what to do. Sharing the
    names, they are two tumours with both sets."""
    sbs = _matrix(tmp_path / "sbs.tsv", "SBS96", ["A", "B"], 1)
    ids = _matrix(tmp_path / "ids.tsv", "ID83", ["A_id", "B_id"], 2)
    res, _ = _predict_cli(tmp_path, sbs, ids, model="pcawg-catalogue")
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    message = " ".join(res.output.split())
    assert (f"{sbs} (SBS96 matrix, 2 sample(s): A, B) and {ids} (ID83 matrix, 2: A_id, B_id) share no sample "
            "names: they would be typed as 2 + 2 separate tumours") in message, message
    assert "rename the columns to join them" in message
    res = CliRunner().invoke(app, ["ingest", str(sbs), str(ids), "--out", str(tmp_path / "c.h5ad")])
    assert res.exit_code == 2 and "share no sample names" in res.output, res.output
    joined = _matrix(tmp_path / "ids2.tsv", "ID83", ["A", "B"], 2)
    adata = read_inputs([sbs, joined])
    assert list(adata.obs_names) == ["A", "B"] and adata.obs["burden_ID83"].gt(0).all()


def test_matrices_sharing_some_sample_names_fold_each_tumours_own_sbs6_and_id12(tmp_path):
    """An SBS96 matrix of A, B and an ID83 matrix of A, C: A has both sets, B substitutions only, C indels
    only. Each tumour's SBS6/ID12 are recorded measured where its SBS96/ID83 are, so they must hold the fold
    of its own counts (as for matrices sharing every name), never zeros the models would read as no
    substitutions / no indels."""
    from nanog1.genomics.channels import fold_labels, set_slice
    from nanog1.schema import measured_sets_per_sample

    sbs = _matrix(tmp_path / "sbs.tsv", "SBS96", ["A", "B"], 1)
    ids = _matrix(tmp_path / "ids.tsv", "ID83", ["A", "C"], 2)
    adata = read_inputs([sbs, ids])
    measured = measured_sets_per_sample(adata)
    X = np.asarray(adata.X)
    for derived, source in (("SBS6", "SBS96"), ("ID12", "ID83")):
        want = np.zeros((adata.n_obs, len(CHANNEL_SETS[derived])))
        np.add.at(want.T, np.asarray(fold_labels(derived)), X[:, set_slice(source)].T)
        np.testing.assert_array_equal(X[:, set_slice(derived)], want)
        assert (measured[derived] == measured[source]).all()
        assert (adata.obs[f"burden_{derived}"] == adata.obs[f"burden_{source}"]).all()
    assert adata.obs.loc["A", "burden_SBS6"] > 0 and adata.obs.loc["C", "burden_ID12"] > 0


def test_abstention_reasons_hold_no_empty_parts_where_the_build_check_found_nothing(tmp_path):
    """A GRCh37 VCF (no gene: abstains) and a GRCh38 MAF-like cohort that abstains on its build only: the
    build check's '' (same build) must not leave '; ;' or a trailing '; ' in the reason users read."""
    old = mutect2_vcf(tmp_path / "b37.vcf", primary(GRCH37), "file:///refs/human_g1k_v37.fasta")
    new = mutect2_vcf(tmp_path / "grch38.vcf", primary(GRCH38), "/r/Homo_sapiens_assembly38.fasta", "chr")
    adata = read_inputs([old, new], filter="all")
    predict(adata, "tcga-exome", replace(FAST, assay="exome"))
    for sample, reason in adata.obs["abstain_reason"].items():
        parts = reason.split("; ")
        assert reason and all(p.strip() for p in parts), (sample, reason)


def test_masked_note_of_matrices_sharing_some_names_reads_right(tmp_path):
    """An SBS96 matrix of A, B, D and an ID83 matrix of A, C, E: B, D, C, E each measure one set, so no set
    is measured for every tumour; the warning must not say the input 'measured none', and names B, D with
    plural grammar where they share a reason."""
    from nanog1.encoder.predict_notes import masked_note

    sbs = _matrix(tmp_path / "sbs.tsv", "SBS96", ["A", "B", "D"], 1)
    ids = _matrix(tmp_path / "ids.tsv", "ID83", ["A", "C", "E"], 2)
    adata = read_inputs([sbs, ids])
    predict(adata, "pcawg-catalogue", FAST)
    note = masked_note(adata.uns["nanog1_predict"])
    assert "it measured none" not in note, note
    assert "no set was measured for every tumour" in note, note
    assert "not measured for B, D (their input files did not measure them)" in note, note


@pytest.fixture(scope="module")
def grch37_chr21(tmp_path_factory):
    """A generated FASTA whose one contig is named 21 and has GRCh37's chr21 length (48,129,895 bp, where
    GRCh38's is 46,709,983), so its contig lengths mark GRCh37 as a real b37 FASTA's do; and its letters."""
    n = GRCH37["21"]
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[np.random.default_rng(21).integers(0, 4, n)]
    full = n // 60 * 60
    rows = np.hstack([letters[:full].reshape(-1, 60), np.full((full // 60, 1), ord("\n"), np.uint8)])
    fasta = tmp_path_factory.mktemp("b37") / "b37_chr21.fa"
    with open(fasta, "wb") as f:
        f.write(b">21\n")
        f.write(rows.tobytes())
        f.write(letters[full:].tobytes() + b"\n")
    pysam.faidx(str(fasta))
    assert build_from_lengths({"21": n})[0] == "GRCh37"
    return fasta, letters


def _maf_on(letters: np.ndarray, path, builds: list[str], barcode="TCGA-AB-0001-01A-11D-A000-08"):
    """A MAF written as GDC (GRCh38) and MC3 (GRCh37) write them (version line, GDC columns, NCBI_Build per
    record): one C/G/T-changing SNV per entry of `builds`, on chr21 at bases the FASTA holds."""
    from tests.test_predict_exome import GDC_COLUMNS

    rows = []
    for i, build in enumerate(builds):
        pos = 15_000_000 + 40_000 * i
        ref = chr(letters[pos - 1])
        alt = "ACGT"[("ACGT".index(ref) + 1) % 4]
        rows.append({"Hugo_Symbol": f"GENE{i}", "Entrez_Gene_Id": "0", "Center": "BI", "NCBI_Build": build,
                     "Chromosome": "21", "Start_Position": pos, "End_Position": pos, "Strand": "+",
                     "Variant_Classification": "Missense_Mutation", "Variant_Type": "SNP",
                     "Reference_Allele": ref, "Tumor_Seq_Allele1": ref, "Tumor_Seq_Allele2": alt,
                     "dbSNP_RS": "novel",
                     "Tumor_Sample_Barcode": barcode, "Matched_Norm_Sample_Barcode": barcode[:13] + "10A",
                     "HGVSp_Short": "", "t_depth": 80, "t_ref_count": 50, "t_alt_count": 30, "n_depth": 60,
                     "FILTER": "PASS"})  # fmt: skip
    with open(path, "w") as f:
        f.write("#version gdc-1.0.0\n")
        pd.DataFrame(rows, columns=GDC_COLUMNS).to_csv(f, sep="\t", index=False)
    return path


def test_a_grch38_maf_against_a_grch37_fasta_is_one_clear_error(tmp_path, grch37_chr21):
    """GDC writes NCBI_Build GRCh38; the FASTA's chr21 length is GRCh37's. The calls' reference bases even
    match the FASTA (so nothing else stops them), yet they would be classified on the wrong genome: `ingest`
    and `predict` stop with one line naming the MAF, its build and the FASTA's, exit 2, nothing written. The
    same calls stated GRCh37 (as MC3 writes it, or Firehose's 37) go through."""
    fasta, letters = grch37_chr21
    maf = _maf_on(letters, tmp_path / "gdc.maf", ["GRCh38"] * 8)
    expected = (f"error: {maf}: NCBI_Build is GRCh38 but the reference {fasta} is GRCh37 (contig "
                "lengths: 1 of 1 chromosomes match GRCh37 (chr21 48,129,895 bp)): the calls were made on "
                "another genome build than this FASTA")
    res = CliRunner().invoke(app, ["ingest", str(maf), "-r", str(fasta), "--out", str(tmp_path / "c.h5ad")])
    assert res.exit_code == 2, res.output
    assert expected in " ".join(res.output.split()) and "Traceback" not in res.output, res.output
    assert not (tmp_path / "c.h5ad").exists()
    res, out = _predict_cli(tmp_path, maf, extra=["--no-reports", "-r", str(fasta)])
    assert res.exit_code == 2 and expected in " ".join(res.output.split()), res.output
    assert "Traceback" not in res.output and not out.exists()
    for build in ("GRCh37", "37"):
        ok = _maf_on(letters, tmp_path / f"mc3_{build}.maf", [build] * 8)
        res = CliRunner().invoke(app, ["ingest", str(ok), "-r", str(fasta), "--out", str(tmp_path / "o")])
        assert res.exit_code == 0, res.output


def test_a_maf_of_two_builds_against_a_fasta_names_the_first_differing_record(tmp_path, grch37_chr21):
    """Records 1-5 state GRCh37, record 6 (line 8: a version line, the header, then records) GRCh38: with a
    FASTA the MAF is refused at that line; the records above are named by
    their first line. A version line and blank NCBI_Build cells do not shift or break the count."""
    fasta, letters = grch37_chr21
    builds = ["GRCh37", "", "GRCh37", "37", "GRCh37", "GRCh38", "GRCh37"]
    maf = _maf_on(letters, tmp_path / "mixed.maf", builds)
    res = CliRunner().invoke(app, ["ingest", str(maf), "-r", str(fasta), "--out", str(tmp_path / "c.h5ad")])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    message = " ".join(res.output.split())
    assert (f"error: {maf}:8: NCBI_Build GRCh38 (GRCh38) where the records above state GRCh37 (from line 3): "
            f"one MAF of two genome builds, against one reference {fasta} (GRCh37,") in message, message
    assert "split the MAF by NCBI_Build" in message
    res, out = _predict_cli(tmp_path, maf, extra=["--no-reports", "-r", str(fasta)])
    assert res.exit_code == 2 and f"error: {maf}:8: NCBI_Build GRCh38" in " ".join(res.output.split())
