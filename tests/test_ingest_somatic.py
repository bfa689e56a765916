# ruff: noqa: E501  (caller header lines are kept whole, as the callers write them)
"""Tumour/normal VCFs as somatic callers write them (Mutect2, Strelka2 SNV and indel, VarScan2, MuSE),
and the plain single-sample VCF: which column becomes the sample, what is counted, exact counts.

Each file follows the caller's published header and FORMAT/INFO conventions (trimmed to the fields
that matter); the expected SBS96 channel of every SNV is worked out here from the genome, independently
of the classifier.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from pathlib import Path

import pytest

from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.ingest import IngestOptions, ingest
from nanog1.genomics.synthetic import GenomeSpec, make_genome
from nanog1.genomics.variants import InputError

COMP = str.maketrans("ACGT", "TGCA")


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    work = tmp_path_factory.mktemp("somatic")
    seqs = make_genome(work / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=11))
    return work / "g.fa", seqs["1"]


def snv(seq: str, p: int) -> tuple[str, str]:
    """REF (from the genome) and an ALT at 1-based p."""
    ref = seq[p - 1]
    return ref, "ACGT"[("ACGT".index(ref) + 1) % 4]


def sbs_label(seq: str, p: int, alt: str) -> str:
    """SBS96 label of an SNV, pyrimidine-folded (written out here, not taken from the package)."""
    ref, five, three = seq[p - 1], seq[p - 2], seq[p]
    if ref in "AG":
        ref, alt, five, three = (
            ref.translate(COMP),
            alt.translate(COMP),
            three.translate(COMP),
            five.translate(COMP),
        )
    return f"{five}[{ref}>{alt}]{three}"


def sites(seq: str, n: int, start: int = 1000, step: int = 137) -> list[int]:
    """n isolated positions on A/C/G/T bases with A/C/G/T neighbours (no doublets, no N context)."""
    out, p = [], start
    while len(out) < n:
        if all(b in "ACGT" for b in seq[p - 3 : p + 2]):
            out.append(p)
        p += step
    return out


def expected_sbs(seq: str, positions: list[int]) -> dict[str, int]:
    labels: dict[str, int] = {}
    for p in positions:
        label = sbs_label(seq, p, snv(seq, p)[1])
        labels[label] = labels.get(label, 0) + 1
    return labels


def observed_sbs(adata, sample: str) -> dict[str, int]:
    row = adata[sample].X[0, :96]
    return {label: int(v) for label, v in zip(adata.var_names[:96], row, strict=True) if v}


def snv_rows(seq: str, positions: list[int], columns: Callable[[int, str, str], str],
             filtered: Collection[int] = (), flag: str = "") -> list[str]:
    """VCF lines of SNVs at `positions` (sorted) on contig 1: FILTER `flag` at those in `filtered`,
    PASS elsewhere; `columns(p, ref, alt)` gives the rest (INFO, FORMAT and sample columns, tab-joined)."""
    rows = []
    for p in sorted(positions):
        ref, alt = snv(seq, p)
        rows.append(f"1\t{p}\t.\t{ref}\t{alt}\t.\t{flag if p in filtered else 'PASS'}\t{columns(p, ref, alt)}")
    return rows


def write(path, meta: list[str], columns: list[str], rows: list[str]) -> None:
    head = ["##fileformat=VCFv4.2", "##contig=<ID=1,length=20000>", *meta]
    cols = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO" + (
        "\tFORMAT\t" + "\t".join(columns) if columns else ""
    )
    path.write_text("\n".join([*head, cols, *rows]) + "\n")


MUTECT2_META = [
    '##FILTER=<ID=PASS,Description="All filters passed">',
    '##FILTER=<ID=weak_evidence,Description="Mutation does not meet likelihood threshold">',
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
    '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fractions of alternate alleles in the tumor">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Approximate read depth">',
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '##INFO=<ID=TLOD,Number=A,Type=Float,Description="Log 10 likelihood ratio score of variant existing">',
    "##source=Mutect2",
    "##normal_sample=P1-N",
    "##tumor_sample=P1-T",
]


def mutect2(path, seq: str, positions: list[int], weak: list[int]) -> None:
    rows = snv_rows(seq, positions + weak, lambda p, ref, alt: "TLOD=12.3\tGT:AD:AF:DP\t0/0:30,0:0.03:30\t0/1:20,9:0.3:29",
                    weak, "weak_evidence")
    write(path, MUTECT2_META, ["P1-N", "P1-T"], rows)


def test_mutect2_tumour_from_header_normal_never_a_sample(genome, tmp_path):
    fasta, seq = genome
    positions = sites(seq, 40)
    mutect2(tmp_path / "p1.mutect2.vcf", seq, positions[:36], positions[36:])
    report = ingest([tmp_path / "p1.mutect2.vcf"], fasta, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    assert list(adata.obs_names) == ["P1-T"]
    assert observed_sbs(adata, "P1-T") == expected_sbs(seq, positions[:36])
    assert dict(report.skips) == {"non_pass": 4}
    acc = adata.uns["nanog1"]["accounting"]
    assert acc[["sample", "read", "counted", "skipped", "non_pass"]].values.tolist() == [
        ["P1-T", 40, 36, 4, 4]
    ]


def test_a_header_naming_the_normal_as_tumour_is_told_by_its_column(genome, tmp_path):
    """##tumor_sample and ##normal_sample swapped (a renamed or hand-edited header): every call has no carrier
    in the column read as the tumour. The refusal names that column and asks whether it is the normal (it
    said 'check the reference and the file'), and --tumor-sample reads the file."""
    from typer.testing import CliRunner

    from nanog1.cli import app

    fasta, seq = genome
    mutect2(tmp_path / "p1.vcf", seq, sites(seq, 30), [])
    text = (tmp_path / "p1.vcf").read_text()
    text = text.replace("##normal_sample=P1-N", "##x=P1-T").replace("##tumor_sample=P1-T", "##tumor_sample=P1-N")
    (tmp_path / "p1.vcf").write_text(text.replace("##x=P1-T", "##normal_sample=P1-T"))
    with pytest.raises(InputError, match=r"p1\.vcf: 30 of 30 calls lost \(100%: no_carrier 30\), more than "
                                         r"--max-skip-fraction 0\.05: the column read as the tumour \(P1-N\) "
                                         r"carries no ALT allele on most calls; is it the normal\? Name the tumour "
                                         r"column with a sample sheet's tumor_sample column or --tumor-sample"):
        ingest([tmp_path / "p1.vcf"], fasta, None, tmp_path / "c.h5ad")
    res = CliRunner().invoke(app, ["ingest", str(tmp_path / "p1.vcf"), "-r", str(fasta), "-o",
                                   str(tmp_path / "c.h5ad"), "--tumor-sample", "P1-T", "--normal-sample", "P1-N"])
    assert res.exit_code == 0, res.output
    assert list(read_cohort(tmp_path / "c.h5ad").obs_names) == ["P1-T"]


STRELKA_SNV_META = [
    "##source=strelka",
    "##source_version=2.9.10",
    "##content=strelka somatic snv calls",
    '##INFO=<ID=SOMATIC,Number=0,Type=Flag,Description="Somatic mutation">',
    '##INFO=<ID=QSS,Number=1,Type=Integer,Description="Quality score for any somatic snv">',
    '##INFO=<ID=NT,Number=1,Type=String,Description="Genotype of the normal in all data tiers">',
    '##INFO=<ID=SGT,Number=1,Type=String,Description="Most likely somatic genotype excluding normal noise states">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth for tier1 (used+filtered)">',
    '##FORMAT=<ID=FDP,Number=1,Type=Integer,Description="Number of basecalls filtered from original read depth">',
    "##FORMAT=<ID=AU,Number=2,Type=Integer,Description=\"Number of 'A' alleles used in tiers 1,2\">",
    "##FORMAT=<ID=CU,Number=2,Type=Integer,Description=\"Number of 'C' alleles used in tiers 1,2\">",
    "##FORMAT=<ID=GU,Number=2,Type=Integer,Description=\"Number of 'G' alleles used in tiers 1,2\">",
    "##FORMAT=<ID=TU,Number=2,Type=Integer,Description=\"Number of 'T' alleles used in tiers 1,2\">",
    '##FILTER=<ID=LowEVS,Description="Somatic Empirical Variant Score (SomaticEVS) is below threshold">',
]
STRELKA_INDEL_META = [
    "##source=strelka",
    "##source_version=2.9.10",
    "##content=strelka somatic indel calls",
    '##INFO=<ID=SOMATIC,Number=0,Type=Flag,Description="Somatic mutation">',
    '##INFO=<ID=QSI,Number=1,Type=Integer,Description="Quality score for any somatic variant">',
    '##INFO=<ID=NT,Number=1,Type=String,Description="Genotype of the normal in all data tiers">',
    '##INFO=<ID=SGT,Number=1,Type=String,Description="Most likely somatic genotype excluding normal noise states">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth for tier1">',
    '##FORMAT=<ID=DP2,Number=1,Type=Integer,Description="Read depth for tier2">',
    '##FORMAT=<ID=TAR,Number=2,Type=Integer,Description="Reads strongly supporting alternate allele for tiers 1,2">',
    '##FORMAT=<ID=TIR,Number=2,Type=Integer,Description="Reads strongly supporting indel allele for tiers 1,2">',
    '##FORMAT=<ID=TOR,Number=2,Type=Integer,Description="Other reads (weak support or insufficient indel breakpoint'
    ' overlap) for tiers 1,2">',
    '##FILTER=<ID=LowEVS,Description="Somatic Empirical Variant Score (SomaticEVS) is below threshold">',
]


def strelka_counts(ref: str, alt: str, tumour_alt: int) -> str:
    """DP:FDP:AU:CU:GU:TU of one sample: 30 reads of REF (and `tumour_alt` of ALT), tiers 1,2."""
    values = {b: 0 for b in "ACGT"}
    values[ref] = 30
    values[alt] = tumour_alt
    return f"{30 + tumour_alt}:0:" + ":".join(f"{values[b]},{values[b]}" for b in "ACGT")


def strelka_snvs(path, seq: str, positions: list[int], low: list[int], absent: list[int]) -> None:
    def columns(p: int, ref: str, alt: str) -> str:
        tumour = strelka_counts(ref, alt, 0 if p in absent else 11)
        info = f"SOMATIC;QSS=40;NT=ref;SGT={ref}{ref}->{ref}{alt}"
        return f"{info}\tDP:FDP:AU:CU:GU:TU\t{strelka_counts(ref, alt, 0)}\t{tumour}"

    write(path, STRELKA_SNV_META, ["NORMAL", "TUMOR"], snv_rows(seq, positions + low + absent, columns, low, "LowEVS"))


def strelka_indels(path, seq: str, positions: list[int], absent: list[int]) -> None:
    rows = []
    for p in sorted(positions + absent):
        ref, alt = seq[p - 1 : p + 1], seq[p - 1]  # a 1-bp deletion after the anchor base
        tir = 0 if p in absent else 9
        info = "SOMATIC;QSI=40;NT=ref;SGT=ref->het"
        fmt = "DP:DP2:TAR:TIR:TOR"
        rows.append(
            f"1\t{p}\t.\t{ref}\t{alt}\t.\tPASS\t{info}\t{fmt}\t30:30:30,30:0,0:0,0\t30:30:20,20:{tir},{tir}:1,1"
        )
    write(path, STRELKA_INDEL_META, ["NORMAL", "TUMOR"], rows)


def test_strelka2_snv_and_indel_files_no_gt(genome, tmp_path):
    fasta, seq = genome
    positions = sites(seq, 60)
    snvs, low, absent = positions[:40], positions[40:42], positions[42:43]
    dels = sites(seq, 12, start=1050)
    strelka_snvs(tmp_path / "somatic.snvs.vcf", seq, snvs, low, absent)
    strelka_indels(tmp_path / "somatic.indels.vcf", seq, dels[:10], dels[10:11])
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(
        "sample\tfile\tcancer_type\nP2\tsomatic.snvs.vcf\tLiver\nP2\tsomatic.indels.vcf\tLiver\n"
    )
    files = [tmp_path / "somatic.snvs.vcf", tmp_path / "somatic.indels.vcf"]
    # one tumour allele with no supporting read out of 43 SNV calls (2 %) and 11 indels (9 %)
    with pytest.raises(InputError, match=r"somatic\.indels\.vcf: 1 of 11 calls lost \(9%: no_carrier 1\)"):
        ingest(files, fasta, sheet, tmp_path / "c.h5ad")
    ingest(files, fasta, sheet, tmp_path / "c.h5ad", IngestOptions(max_skip_fraction=0.1))
    adata = read_cohort(tmp_path / "c.h5ad")
    assert list(adata.obs_names) == ["P2"] and adata.obs.loc["P2", "cancer_type"] == "Liver"
    assert observed_sbs(adata, "P2") == expected_sbs(seq, snvs)
    assert adata.obs.loc["P2", "burden_ID83"] == 10 and adata.obs.loc["P2", "burden_DBS78"] == 0
    acc = adata.uns["nanog1"]["accounting"].set_index("file")
    assert acc.loc["0", ["read", "counted", "non_pass", "no_carrier"]].tolist() == [43, 40, 2, 1]
    assert acc.loc["1", ["read", "counted", "non_pass", "no_carrier"]].tolist() == [11, 10, 0, 1]


def test_tumor_columns_take_the_file_name_and_clash_loudly(genome, tmp_path):
    fasta, seq = genome
    positions = sites(seq, 20)
    for patient, chunk in (("A", positions[:10]), ("B", positions[10:])):
        (tmp_path / patient).mkdir()
        strelka_snvs(tmp_path / patient / "somatic.snvs.vcf", seq, chunk, [], [])
    files = [tmp_path / "A" / "somatic.snvs.vcf", tmp_path / "B" / "somatic.snvs.vcf"]
    with pytest.raises(
        ValueError, match=r"'somatic\.snvs' is given by 2 files \(.*A/somatic\.snvs\.vcf, .*B/"
    ):
        ingest(files, fasta, None, tmp_path / "c.h5ad")
    assert not (tmp_path / "c.h5ad").exists()
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(f"sample,file,cancer_type\nA,{files[0]},Lung\nB,{files[1]},Skin\n")
    ingest(files, fasta, sheet, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    assert list(adata.obs_names) == ["A", "B"]
    assert observed_sbs(adata, "B") == expected_sbs(seq, positions[10:])


VARSCAN_META = [
    "##source=VarScan2",
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Total depth of quality bases">',
    '##INFO=<ID=SOMATIC,Number=0,Type=Flag,Description="Indicates if record is a somatic mutation">',
    '##INFO=<ID=SS,Number=1,Type=String,Description="Somatic status of variant (0=Reference,1=Germline,2=Somatic,'
    '3=LOH, or 5=Unknown)">',
    '##INFO=<ID=SSC,Number=1,Type=String,Description="Somatic score in Phred scale (0-255) derived from somatic'
    ' p-value">',
    "##INFO=<ID=GPV,Number=1,Type=Float,Description=\"Fisher's Exact Test P-value of tumor+normal versus no variant"
    ' for Germline calls">',
    "##INFO=<ID=SPV,Number=1,Type=Float,Description=\"Fisher's Exact Test P-value of tumor versus normal for Somatic/LOH"
    ' calls">',
    '##FILTER=<ID=str10,Description="Less than 10% or more than 90% of variant supporting reads on one strand">',
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype Quality">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read Depth">',
    '##FORMAT=<ID=RD,Number=1,Type=Integer,Description="Depth of reference-supporting bases (reads1)">',
    '##FORMAT=<ID=AD,Number=1,Type=Integer,Description="Depth of variant-supporting bases (reads2)">',
    '##FORMAT=<ID=FREQ,Number=1,Type=String,Description="Variant allele frequency">',
    '##FORMAT=<ID=DP4,Number=1,Type=String,Description="Strand read counts: ref/fwd, ref/rev, var/fwd, var/rev">',
]


def test_varscan2_somatic_status_and_tumour_column(genome, tmp_path):
    fasta, seq = genome
    positions = sites(seq, 30)
    somatic, germline, loh = positions[:26], positions[26:29], positions[29:]
    rows = []
    for p in positions:
        ref, alt = snv(seq, p)
        ss, normal, tumour = "2", "0/0", "0/1"
        if p in germline:
            ss, normal, tumour = "1", "0/1", "0/1"
        elif p in loh:
            ss, normal, tumour = "3", "0/1", "1/1"
        info = (
            f"DP=60;SOMATIC;SS={ss};SSC=40;GPV=1;SPV=0.0001"
            if ss == "2"
            else f"DP=60;SS={ss};SSC=5;GPV=1e-10;SPV=0.5"
        )
        fmt = "GT:GQ:DP:RD:AD:FREQ:DP4"
        rows.append(
            f"1\t{p}\t.\t{ref}\t{alt}\t.\tPASS\t{info}\t{fmt}\t{normal}:.:30:30:0:0%:15,15,0,0"
            f"\t{tumour}:.:30:20:10:33.33%:10,10,5,5"
        )
    write(tmp_path / "P3.vcf", VARSCAN_META, ["NORMAL", "TUMOR"], rows)
    report = ingest([tmp_path / "P3.vcf"], fasta, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    assert list(adata.obs_names) == ["P3"]
    assert observed_sbs(adata, "P3") == expected_sbs(seq, somatic)
    assert dict(report.skips) == {"not_somatic": 4}


MUSE_META = [
    '##MuSE_version="v2.0"',
    '##FILTER=<ID=PASS,Description="Passes all filters">',
    '##FILTER=<ID=Tier3,Description="Confident level 3">',
    '##INFO=<ID=SOMATIC,Number=0,Type=Flag,Description="Indicates if record is a somatic mutation">',
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Total read depth">',
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths for the ref and alt alleles">',
    '##FORMAT=<ID=BQ,Number=.,Type=Integer,Description="Average base quality for reads supporting alleles">',
    '##FORMAT=<ID=SS,Number=1,Type=Integer,Description="Variant status relative to non-adjacent Normal,0=wildtype,'
    '1=germline,2=somatic,3=LOH,4=post-transcriptional modification,5=unknown">',
]


def test_muse_tumour_column_first_and_plain_single_sample(genome, tmp_path):
    fasta, seq = genome
    positions = sites(seq, 25)
    rows = snv_rows(seq, positions[:20], lambda p, ref, alt: "SOMATIC\tGT:DP:AD:BQ:SS\t0/1:30:20,10:30,30:2\t0/0:30:30,0:30:0",
                    positions[18:20], "Tier3")
    write(tmp_path / "P4.vcf", MUSE_META, ["TUMOR", "NORMAL"], rows)
    plain = snv_rows(seq, positions[20:], lambda p, ref, alt: ".\tGT\t0/1")
    write(
        tmp_path / "plain.vcf",
        ['##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">'],
        ["S5"],
        plain,
    )
    ingest([tmp_path / "P4.vcf", tmp_path / "plain.vcf"], fasta, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    assert list(adata.obs_names) == ["P4", "S5"]
    assert observed_sbs(adata, "P4") == expected_sbs(seq, positions[:18])
    assert observed_sbs(adata, "S5") == expected_sbs(seq, positions[20:])


def test_multisample_without_gt_is_an_error_unless_the_tumour_is_named(genome, tmp_path):
    fasta, seq = genome
    positions = sites(seq, 10)
    dp = '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">'
    write(tmp_path / "pair.vcf", [dp], ["blood", "biopsy"], snv_rows(seq, positions, lambda *_: ".\tDP\t30\t31"))
    with pytest.raises(InputError, match=r"pair\.vcf: 2 sample columns, no GT field"):
        ingest([tmp_path / "pair.vcf"], fasta, None, tmp_path / "c.h5ad")
    options = IngestOptions(tumor_sample="biopsy", normal_sample="blood")
    ingest([tmp_path / "pair.vcf"], fasta, None, tmp_path / "c.h5ad", options)
    adata = read_cohort(tmp_path / "c.h5ad")
    assert list(adata.obs_names) == ["biopsy"]
    assert observed_sbs(adata, "biopsy") == expected_sbs(seq, positions)
    with pytest.raises(InputError, match=r"pair\.vcf: tumour sample 'nope' is not a column"):
        ingest([tmp_path / "pair.vcf"], fasta, None, tmp_path / "d.h5ad", IngestOptions(tumor_sample="nope"))


def test_sheet_tumor_and_normal_columns_route_a_file(genome, tmp_path):
    fasta, seq = genome
    positions = sites(seq, 10)
    gt = '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">'
    write(tmp_path / "x.vcf", [gt], ["N1", "T1"], snv_rows(seq, positions, lambda *_: ".\tGT\t0/0\t0/1"))
    sheet = tmp_path / "s.tsv"
    sheet.write_text("sample\tfile\ttumor_sample\tnormal_sample\tcancer_type\nDonor7\tx.vcf\tT1\tN1\tSkin\n")
    ingest([tmp_path / "x.vcf"], fasta, sheet, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    assert list(adata.obs_names) == ["Donor7"] and adata.obs.loc["Donor7", "burden_SBS96"] == 10
    # without routing, two columns with GT are two samples, each by its genotype
    ingest([tmp_path / "x.vcf"], fasta, None, tmp_path / "d.h5ad")
    d = read_cohort(tmp_path / "d.h5ad")
    assert d.obs["burden_SBS96"].to_dict() == {"N1": 0, "T1": 10}


def test_mutect2_bgzipped_with_tabix_index_and_as_bcf(genome, tmp_path):
    """The compressed forms Mutect2 pipelines hand on (`.vcf.gz` + `.tbi`, and BCF) give the same tumour
    and counts: the tumour/normal header lines are read through htslib, not as text."""
    import pysam

    fasta, seq = genome
    positions = sites(seq, 30)
    mutect2(tmp_path / "p1.vcf", seq, positions[:27], positions[27:])
    gz = pysam.tabix_index(str(tmp_path / "p1.vcf"), preset="vcf", keep_original=True, force=True)
    assert (tmp_path / "p1.vcf.gz.tbi").exists()
    with (
        pysam.VariantFile(str(tmp_path / "p1.vcf")) as src,
        pysam.VariantFile(str(tmp_path / "p1.bcf"), "wb", header=src.header) as dst,
    ):
        for record in src:
            dst.write(record)
    want = expected_sbs(seq, positions[:27])
    for path in (tmp_path / "p1.vcf", Path(gz), tmp_path / "p1.bcf"):
        out = tmp_path / f"{path.name}.h5ad"
        report = ingest([path], fasta, None, out)
        adata = read_cohort(out)
        assert list(adata.obs_names) == ["P1-T"], path
        assert observed_sbs(adata, "P1-T") == want, path
        assert report.skips == {"non_pass": 3}, path


def test_predict_refuses_strelka_snv_and_indel_files_as_two_tumours_unless_a_sheet_names_one(genome, tmp_path):
    """`nanog1 predict` has no other way to learn that Strelka2's two files are one tumour: without a sheet
    they are refused (naming both files), with one they are one tumour with its SNVs and indels."""
    from nanog1.encoder.predictor import read_inputs
    from nanog1.errors import UserError

    fasta, seq = genome
    snvs, dels = sites(seq, 30), sites(seq, 8, start=1050)
    strelka_snvs(tmp_path / "somatic.snvs.vcf", seq, snvs, [], [])
    strelka_indels(tmp_path / "somatic.indels.vcf", seq, dels, [])
    files = [tmp_path / "somatic.snvs.vcf", tmp_path / "somatic.indels.vcf"]
    with pytest.raises(UserError, match=r"somatic\.snvs\.vcf \('somatic\.snvs'\), .*somatic\.indels\.vcf "
                                        r"\('somatic\.indels'\): Strelka2 VCFs of one folder.*--samples"):
        read_inputs(files, fasta)
    alone = read_inputs(files[:1], fasta)  # one file is one tumour: nothing to join
    assert list(alone.obs_names) == ["somatic.snvs"]
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("sample\tfile\nP9\tsomatic.snvs.vcf\nP9\tsomatic.indels.vcf\n")
    adata = read_inputs(files, fasta, samples=sheet)
    assert list(adata.obs_names) == ["P9"]
    assert observed_sbs(adata, "P9") == expected_sbs(seq, snvs)
    assert adata.obs.loc["P9", "burden_ID83"] == len(dels)


def test_predict_refuses_a_pair_vcf_naming_no_tumour_unless_a_sheet_does(genome, tmp_path):
    """A Mutect2 VCF whose ##tumor_sample/##normal_sample lines were lost (columns named after the samples,
    normal first): predict would type the normal as a second tumour ('no mutations'). It is refused naming
    the file and both columns; a sheet naming the tumour column makes it one tumour. `ingest` still reads a
    multi-sample VCF's columns as samples by genotype (a cohort file)."""
    from nanog1.encoder.predictor import read_inputs
    from nanog1.errors import UserError

    fasta, seq = genome
    positions = sites(seq, 30)
    rows = snv_rows(seq, positions, lambda *a: "TLOD=12.3\tGT:AD:AF:DP\t0/0:30,0:0.03:30\t0/1:20,9:0.3:29")
    meta = [m for m in MUTECT2_META if not m.startswith(("##normal_sample", "##tumor_sample"))]
    write(tmp_path / "p1.vcf", meta, ["P1-N", "P1-T"], rows)
    with pytest.raises(UserError, match=r"p1\.vcf: 2 sample columns \(P1-N, P1-T\) and neither is named as the "
                                        r"tumour .*--samples SHEET"):
        read_inputs([tmp_path / "p1.vcf"], fasta)
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("sample\tfile\ttumor_sample\tnormal_sample\nP1\tp1.vcf\tP1-T\tP1-N\n")
    adata = read_inputs([tmp_path / "p1.vcf"], fasta, samples=sheet)
    assert list(adata.obs_names) == ["P1"]
    assert observed_sbs(adata, "P1") == expected_sbs(seq, positions)
    ingest([tmp_path / "p1.vcf"], fasta, None, tmp_path / "c.h5ad")
    assert sorted(read_cohort(tmp_path / "c.h5ad").obs_names) == ["P1-N", "P1-T"]


def test_mutect2_columns_renamed_after_calling_say_how_to_name_them(genome, tmp_path):
    """`bcftools reheader -s` renamed a Mutect2 file's columns to the lab's ids, leaving ##tumor_sample and
    ##normal_sample naming the old ones: the error names the header line and how to name the columns (it
    only said the sample is not a column); a sheet's tumor_sample/normal_sample reads the file."""
    from nanog1.encoder.predictor import read_inputs

    fasta, seq = genome
    positions = sites(seq, 30)
    mutect2(tmp_path / "p1.vcf", seq, positions, [])
    text = (tmp_path / "p1.vcf").read_text().replace("FORMAT\tP1-N\tP1-T", "FORMAT\tLAB-7-N\tLAB-7-T")
    (tmp_path / "p1.vcf").write_text(text)
    for read in (lambda: ingest([tmp_path / "p1.vcf"], fasta, None, tmp_path / "c.h5ad"),
                 lambda: read_inputs([tmp_path / "p1.vcf"], fasta)):
        with pytest.raises(InputError, match=r"p1\.vcf: tumour sample 'P1-T' is not a column \(columns: "
                                             r"\['LAB-7-N', 'LAB-7-T'\]\): the ##tumor_sample header names it "
                                             r".*sample sheet's tumor_sample and normal_sample columns"):
            read()
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("sample\tfile\ttumor_sample\tnormal_sample\nLAB-7\tp1.vcf\tLAB-7-T\tLAB-7-N\n")
    adata = read_inputs([tmp_path / "p1.vcf"], fasta, samples=sheet)
    assert list(adata.obs_names) == ["LAB-7"]
    assert observed_sbs(adata, "LAB-7") == expected_sbs(seq, positions)


def test_mutect2_plain_gzip_reads_as_the_plain_file_in_ingest_and_predict(genome, tmp_path):
    """`gzip p1.vcf` (plain gzip, not bgzip): the tumour column from the ##tumor_sample header, FILTER and the
    skips by reason are those of the plain file, in ingest and predict alike (refused as 'compressed with
    gzip, not bgzip' before)."""
    import gzip

    from nanog1.encoder.predictor import read_inputs

    fasta, seq = genome
    positions = sites(seq, 30)
    mutect2(tmp_path / "p1.vcf", seq, positions[:27], positions[27:])
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "p1.vcf.gz").write_bytes(gzip.compress((tmp_path / "p1.vcf").read_bytes()))
    report = ingest([tmp_path / "gz" / "p1.vcf.gz"], fasta, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    assert list(adata.obs_names) == ["P1-T"] and report.skips == {"non_pass": 3}
    assert observed_sbs(adata, "P1-T") == expected_sbs(seq, positions[:27])
    acc = adata.uns["nanog1"]["accounting"]
    assert acc[["sample", "read", "counted", "non_pass"]].values.tolist() == [["P1-T", 30, 27, 3]]
    typed = read_inputs([tmp_path / "gz" / "p1.vcf.gz"], fasta, filter="all")
    assert observed_sbs(typed, "P1-T") == expected_sbs(seq, positions)
    assert os.listdir(tmp_path / "gz") == ["p1.vcf.gz"]
