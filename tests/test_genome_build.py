"""Genome builds of VCF inputs (issue 31: a mismatch is never silent).

Headers are written the way somatic callers write them: Mutect2 (##contig lines with lengths from the
reference's .dict, ##reference), Strelka2 (##reference, ##contig with lengths, UCSC `chr` names) and
VarScan2 (neither). The detector (nanog1.genomics.build) reads the build from contig lengths first, names
second, and says so when there is nothing to read; `nanog1 predict` with the GRCh37 exome model abstains on
a GRCh38 VCF, `ingest`/`predict` refuse a VCF whose contig lengths disagree with the FASTA given, the build
travels in the cohort's provenance to .h5ad predictions, and catalogue matrices of different sets that share
no sample name are refused.
"""

from __future__ import annotations

import pytest

from nanog1.genomics.build import GRCH37, GRCH38, build_from_lengths, canonical_build, vcf_build
from tests.test_ingest_somatic import MUTECT2_META, STRELKA_SNV_META, VARSCAN_META, strelka_counts

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
