"""Fail loudly, lose nothing: the failures a new user meets, each an error that names the file (exit 2,
no traceback, nothing written), and every call accounted for (read = counted + skipped by reason)."""

from __future__ import annotations

import gzip
import os
import re
import tempfile

import pysam
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.genomics.channels import SBS96
from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.ingest import IngestOptions, check_inputs, ingest
from nanog1.genomics.synthetic import GenomeSpec, make_genome
from nanog1.genomics.variants import InputError

HEADER = "##fileformat=VCFv4.2\n##contig=<ID=1,length=30000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
GT = '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">'


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    work = tmp_path_factory.mktemp("fail")
    seqs = make_genome(work / "g.fa", GenomeSpec(n_contigs=1, length=30_000, seed=21))
    seq = seqs["1"]
    positions = [p for p in range(1000, 29_000, 211) if all(b in "ACGT" for b in seq[p - 3 : p + 2])][:60]
    return work, seq, positions


def alt_of(base: str) -> str:
    return "ACGT"[("ACGT".index(base) + 1) % 4]


def sites_vcf(path, seq, positions, extra: str = "") -> None:
    body = "".join(f"1\t{p}\t.\t{seq[p - 1]}\t{alt_of(seq[p - 1])}\t.\tPASS\t.\n" for p in positions)
    path.write_text(HEADER + "\n" + body + extra)


def run(*args):
    return CliRunner().invoke(app, ["ingest", *map(str, args)])


def test_worker_errors_reach_the_user_as_in_one_process(world, tmp_path):
    work, seq, positions = world
    sites_vcf(tmp_path / "good.vcf", seq, positions[:10])
    sites_vcf(tmp_path / "bad.vcf", seq, positions[:3], extra="1\tabc\t.\tA\tC\t.\tPASS\t.\n")
    outs = []
    for jobs in ("1", "2"):
        result = run(
            tmp_path / "good.vcf",
            tmp_path / "bad.vcf",
            "-r",
            work / "g.fa",
            "-o",
            tmp_path / "c.h5ad",
            "-j",
            jobs,
            "-q",
        )
        assert result.exit_code == 2, result.output
        assert "BrokenProcessPool" not in result.output and "Traceback" not in result.output
        outs.append(result.output)
    assert outs[0] == outs[1] and "bad.vcf:7: malformed VCF record" in outs[1]
    assert not (tmp_path / "c.h5ad").exists()


def test_the_same_file_twice_is_an_error_even_when_summing(world, tmp_path):
    work, seq, positions = world
    sites_vcf(tmp_path / "a.vcf", seq, positions)
    os.symlink(tmp_path / "a.vcf", tmp_path / "link.vcf")
    for second in ("a.vcf", "link.vcf"):
        for policy in ("error", "sum"):
            with pytest.raises(ValueError, match="the same file is given twice"):
                ingest(
                    [tmp_path / "a.vcf", tmp_path / second],
                    work / "g.fa",
                    None,
                    tmp_path / "c.h5ad",
                    IngestOptions(duplicates=policy),
                )
    result = run(tmp_path / "a.vcf", tmp_path / "a.vcf", "-r", work / "g.fa", "-o", tmp_path / "c.h5ad")
    assert result.exit_code == 2 and "given twice" in result.output and not (tmp_path / "c.h5ad").exists()


def test_one_sample_in_two_files_errors_by_default_or_sums(world, tmp_path):
    work, seq, positions = world
    (tmp_path / "x").mkdir()
    sites_vcf(tmp_path / "S1.vcf", seq, positions[:20])
    sites_vcf(tmp_path / "x" / "S1.vcf", seq, positions[20:50])
    files = [tmp_path / "S1.vcf", tmp_path / "x" / "S1.vcf"]
    with pytest.raises(ValueError, match=r"'S1' is given by 2 files \(.*S1\.vcf, .*x/S1\.vcf\)"):
        ingest(files, work / "g.fa", None, tmp_path / "c.h5ad")
    ingest(files, work / "g.fa", None, tmp_path / "c.h5ad", IngestOptions(duplicates="sum"))
    adata = read_cohort(tmp_path / "c.h5ad")
    assert list(adata.obs_names) == ["S1"] and adata.obs.loc["S1", "burden_SBS96"] == 50


def test_empty_and_headerless_files_are_errors(world, tmp_path):
    work, seq, positions = world
    (tmp_path / "zero.vcf").write_bytes(b"")
    sites_vcf(tmp_path / "ok.vcf", seq, positions)
    (tmp_path / "nohead.vcf").write_text("not a variant file\nat all\n")
    with pytest.raises(InputError, match=r"zero\.vcf: empty file \(zero bytes\)"):
        ingest([tmp_path / "ok.vcf", tmp_path / "zero.vcf"], work / "g.fa", None, tmp_path / "c.h5ad")
    with pytest.raises(InputError, match=r"nohead\.vcf: not a readable VCF/BCF, or no #CHROM header"):
        ingest([tmp_path / "nohead.vcf"], work / "g.fa", None, tmp_path / "c.h5ad")
    assert not (tmp_path / "c.h5ad").exists()


def test_headerless_vcfs_as_sigprofiler_ships_them_read_like_their_headed_twin(world, tmp_path):
    """The example VCFs of SigProfilerAssignment/MatrixGenerator have no header (`CHROM POS ID REF ALT`,
    free text after): read as SigProfilerMatrixGenerator reads them, the sample named by the file (or
    the sheet's `file` column), the same counts as the same records under a header."""
    work, seq, positions = world
    rows = "".join(f"1\t{p}\tPD1\t{seq[p - 1]}\t{alt_of(seq[p - 1])}\t.\tSims\tGRCh37\n" for p in positions)
    (tmp_path / "PD1.vcf").write_text(rows)
    (tmp_path / "headed").mkdir()
    sites_vcf(tmp_path / "headed" / "PD1.vcf", seq, positions)
    ingest([tmp_path / "PD1.vcf"], work / "g.fa", None, tmp_path / "a.h5ad")
    ingest([tmp_path / "headed" / "PD1.vcf"], work / "g.fa", None, tmp_path / "b.h5ad")
    a, b = read_cohort(tmp_path / "a.h5ad"), read_cohort(tmp_path / "b.h5ad")
    assert list(a.obs_names) == ["PD1"] and a.X.sum() > 0
    assert (a.X == b.X).all()
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(f"sample\tcancer_type\tfile\nT9\tBreast\t{tmp_path / 'PD1.vcf'}\n")
    ingest([tmp_path / "PD1.vcf"], work / "g.fa", sheet, tmp_path / "s.h5ad")
    named = read_cohort(tmp_path / "s.h5ad")
    assert list(named.obs_names) == ["T9"] and named.obs["cancer_type"].tolist() == ["Breast"]
    (tmp_path / "bad.vcf").write_text(rows + "1\tnot_a_position\tx\tA\tC\n")
    res = run(tmp_path / "bad.vcf", "-r", work / "g.fa", "-o", tmp_path / "c.h5ad")
    assert res.exit_code == 2 and f"bad.vcf:{len(positions) + 1}: expected CHROM POS" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "c.h5ad").exists()


def test_gzipped_headerless_vcfs_read_as_the_plain_one(world, tmp_path):
    """`gzip *.vcf` on SigProfiler's headerless example VCFs (or bgzip): read as the plain file, the sample
    named without .vcf.gz ('not a readable VCF/BCF ... is it VCF/BCF format?' before); a cut-off download
    is one error naming the file."""
    work, seq, positions = world
    rows = "".join(f"1\t{p}\tPD1\t{seq[p - 1]}\t{alt_of(seq[p - 1])}\t.\tSims\tGRCh37\n" for p in positions)
    (tmp_path / "PD1.vcf").write_text(rows)
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "PD1.vcf.gz").write_bytes(gzip.compress(rows.encode()))
    pysam.tabix_compress(str(tmp_path / "PD1.vcf"), str(tmp_path / "PD1.vcf.bgz"))
    ingest([tmp_path / "PD1.vcf"], work / "g.fa", None, tmp_path / "a.h5ad")
    plain = read_cohort(tmp_path / "a.h5ad")
    for name in ("gz/PD1.vcf.gz", "PD1.vcf.bgz"):
        ingest([tmp_path / name], work / "g.fa", None, tmp_path / "z.h5ad")
        zipped = read_cohort(tmp_path / "z.h5ad")
        assert list(zipped.obs_names) == ["PD1"] and (zipped.X == plain.X).all() and plain.X.sum() > 0
    whole = (tmp_path / "gz" / "PD1.vcf.gz").read_bytes()
    (tmp_path / "cut.vcf.gz").write_bytes(whole[: len(whole) // 2])
    res = run(tmp_path / "cut.vcf.gz", "-r", work / "g.fa", "-o", tmp_path / "c.h5ad")
    assert res.exit_code == 2 and "cut.vcf.gz: truncated or damaged gzip file" in res.output, res.output


def test_compatible_mode_without_a_reference_says_it_changes_nothing(tmp_path):
    """SigProfilerMatrixGenerator needs a reference: asked to reproduce it without one, ingest says the
    option changes nothing (its counts would differ: it counts doublet bases in SBS96, hence SBS6)."""
    (tmp_path / "PD1.vcf").write_text("1\t100\t.\tC\tT\n1\t101\t.\tA\tG\n1\t500\t.\tG\tA\n")
    res = run(tmp_path / "PD1.vcf", "--sigprofiler-compatible", "-o", tmp_path / "a.h5ad", "-q")
    said = " ".join(res.output.split())
    assert res.exit_code == 0 and "--sigprofiler-compatible changes nothing without a reference" in said
    res = run(tmp_path / "PD1.vcf", "-o", tmp_path / "b.h5ad", "-q")
    assert res.exit_code == 0 and "sigprofiler" not in res.output
    assert (read_cohort(tmp_path / "a.h5ad").X == read_cohort(tmp_path / "b.h5ad").X).all()


def test_large_losses_are_refused_unless_allowed(world, tmp_path):
    work, seq, positions = world
    other = make_genome(tmp_path / "other.fa", GenomeSpec(n_contigs=1, length=30_000, seed=99))["1"]
    assert other != seq
    sites_vcf(tmp_path / "s.vcf", seq, positions)
    n_bad = sum(other[p - 1] != seq[p - 1] for p in positions)
    result = run(tmp_path / "s.vcf", "-r", tmp_path / "other.fa", "-o", tmp_path / "c.h5ad", "-q")
    assert result.exit_code == 2 and not (tmp_path / "c.h5ad").exists()
    assert f"s.vcf: {n_bad} of 60 calls lost" in result.output and f"ref_mismatch {n_bad}" in result.output
    assert "probably another genome build than the calls'" in " ".join(result.output.split())
    result = run(
        tmp_path / "s.vcf",
        "-r",
        tmp_path / "other.fa",
        "-o",
        tmp_path / "c.h5ad",
        "-q",
        "--max-skip-fraction",
        "1",
    )
    assert result.exit_code == 0
    assert read_cohort(tmp_path / "c.h5ad").uns["nanog1"]["skips"]["ref_mismatch"] == n_bad
    # under the limit: 2 calls on a contig the FASTA lacks, of 60 (3 %), pass, counted without context
    sites_vcf(
        tmp_path / "t.vcf",
        seq,
        positions[:58],
        extra="7\t100\t.\tA\tC\t.\tPASS\t.\n7\t200\t.\tA\tC\t.\tPASS\t.\n",
    )
    report = ingest([tmp_path / "t.vcf"], work / "g.fa", None, tmp_path / "t.h5ad")
    assert dict(report.skips) == {} and report.missing_contigs == {"7": 2}


def _sheet_case(tmp_path, text):
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text(text)
    return sheet


def test_sheet_is_checked_before_any_file_is_read(world, tmp_path):
    work, seq, positions = world
    sites_vcf(tmp_path / "S1.vcf", seq, positions[:10])
    # S2.vcf is malformed: a sheet error is reported first, so the sheet was checked before reading
    sites_vcf(tmp_path / "S2.vcf", seq, positions[:3], extra="1\tabc\t.\tA\tC\t.\tPASS\t.\n")
    files = [tmp_path / "S1.vcf", tmp_path / "S2.vcf"]
    cases = {
        "sample\tcancer_type\nS1\tLung\nS2\tSkin\nS3\tLiver\n": r"sheet\.tsv: sample 'S3' has no input file",
        "sample\tcancer_type\nS1\tLung\n": r"S2\.vcf: sample 'S2' has no row in the sample sheet",
        "sample\tcancer_type\nS1\tLung\nS2\tSkin\nS1\tLung\n": r"sheet\.tsv:4: duplicate sample id",
        "sample\tprimary_cancer\nS1\tLung\nS2\tSkin\n": r"'primary_cancer' is not a recognised cancer-type",
        "sample\tfile\nS1\tS1.vcf\nS2\tS2.vcf\nS3\tS3.vcf\n": r"sheet\.tsv:4: file 'S3\.vcf' is not",
        "sample\tfile\tcancer_type\nS1\tS1.vcf\tLung\n": r"S2\.vcf: no row of the sample sheet",
    }
    for text, message in cases.items():
        with pytest.raises(InputError, match=message):
            ingest(files, work / "g.fa", _sheet_case(tmp_path, text), tmp_path / "c.h5ad")
    # subset: rows may belong to other jobs' inputs (the pipeline's per-part ingest)
    sheet = _sheet_case(tmp_path, "sample\tcancer_type\nS1\tLung\nS3\tLiver\n")
    ingest(files[:1], work / "g.fa", sheet, tmp_path / "c.h5ad", IngestOptions(sheet_policy="subset"))
    assert list(read_cohort(tmp_path / "c.h5ad").obs_names) == ["S1"]
    result = run(files[0], "-r", work / "g.fa", "--samples", sheet, "-o", tmp_path / "d.h5ad", "-q")
    assert result.exit_code == 2 and "sample 'S3' has no input file" in result.output


def test_a_sheet_as_spreadsheets_export_it_reads_like_a_clean_one(world, tmp_path):
    """A byte-order mark, Windows line endings and cells padded with spaces (header, ids, types, file
    names) give the same cohort as the clean sheet; a blank cell is empty, not a type named ' '."""
    work, seq, positions = world
    sites_vcf(tmp_path / "S1.vcf", seq, positions[:10])
    sites_vcf(tmp_path / "S2.vcf", seq, positions[10:30])
    files = [tmp_path / "S1.vcf", tmp_path / "S2.vcf"]
    clean = tmp_path / "clean.tsv"
    clean.write_text("sample\tcancer_type\tfile\nS1\tLung\tS1.vcf\nS2\t\tS2.vcf\n")
    messy = tmp_path / "messy.tsv"
    text = "\ufeffsample \t cancer_type\tfile\r\n S1 \tLung \t S1.vcf\r\nS2\t  \tS2.vcf \r\n"
    messy.write_bytes(text.encode())
    ingest(files, work / "g.fa", clean, tmp_path / "a.h5ad")
    ingest(files, work / "g.fa", messy, tmp_path / "b.h5ad")
    a, b = read_cohort(tmp_path / "a.h5ad"), read_cohort(tmp_path / "b.h5ad")
    assert list(b.obs_names) == ["S1", "S2"] and (a.X == b.X).all()
    assert b.obs["cancer_type"].iloc[0] == "Lung" and a.obs["cancer_type"].equals(b.obs["cancer_type"])


@pytest.mark.parametrize(("data", "needle"), [
    (b"PK\x03\x04" + bytes(range(256)), r"sheet\.x: not a sample sheet: an Excel workbook \(\.xlsx\)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)),
     r"sheet\.x: not a sample sheet: an Excel 97-2003"),
    (gzip.compress(b"sample\tfile\nS1\tS1.vcf\n"), r"sheet\.x: not a sample sheet: gzip-compressed"),
    ("sample\tfile\nS1\tS1.vcf\n".encode("utf-16"), r"sheet\.x: not a sample sheet: UTF-16 text"),
    (b"sample\tfile\nS1\tS1.vcf\x00\xfc\x01\n", r"sheet\.x:2: not a text sample sheet \(byte 0xfc"),
])
def test_a_sheet_that_is_a_workbook_or_binary_is_one_error(world, tmp_path, data, needle):
    """`--samples sheet.xlsx` (or a binary file) was pandas' UnicodeDecodeError traceback: it is one error
    naming the sheet (and the line), before any input is read, with what to save it as."""
    work, seq, positions = world
    sites_vcf(tmp_path / "S1.vcf", seq, positions[:10])
    (tmp_path / "sheet.x").write_bytes(data)
    result = run(tmp_path / "S1.vcf", "-r", work / "g.fa", "--samples", tmp_path / "sheet.x",
                 "-o", tmp_path / "c.h5ad", "-q")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert re.search(rf"^error: .*{needle}", result.output, re.M), result.output
    assert not (tmp_path / "c.h5ad").exists()


def test_a_windows_1252_sheet_is_read_with_a_notice_and_its_names_match_the_vcf(world, tmp_path):
    """A sheet saved by Excel on Windows (Windows-1252: 'Patiënt' as byte 0xeb, an em dash as 0x97) was
    refused as 'not UTF-8 text'. It is read as Windows-1252 with one notice naming the sheet, its first such
    line and how that line reads; the decoded names are the ones used: the file name and the tumour column
    (UTF-8 on disk and in the VCF header) match, and the cohort holds the sample and type as decoded.
    --check-only says the same; predict's input warnings repeat it from the cohort's record."""
    from nanog1.encoder.predict_notes import input_warnings

    work, seq, positions = world
    body = "".join(f"1\t{p}\t.\t{seq[p - 1]}\t{alt_of(seq[p - 1])}\t.\tPASS\t.\tGT\t0/0\t0/1\n"
                   for p in positions[:20])
    head = HEADER.replace("#CHROM", GT + "\n#CHROM") + "\tFORMAT\tNormäl-N\tTumör-T\n"
    (tmp_path / "patiënt.vcf").write_text(head + body, encoding="utf-8")
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes("sample,cancer_type,file,tumor_sample,normal_sample,note\n"
                      "Patiënt-1,Côlon,patiënt.vcf,Tumör-T,Normäl-N,biopsy — left\n".encode("cp1252"))
    res = run(tmp_path / "patiënt.vcf", "-r", work / "g.fa", "--samples", sheet, "-o", tmp_path / "c.h5ad")
    assert res.exit_code == 0, res.output
    said = (f"{sheet}:2: not UTF-8 (byte 0xeb); read as Windows-1252, its names used as decoded (this line "
            "reads 'Patiënt-1,Côlon,patiënt.vcf,Tumör-T,Normäl-N,biopsy — left')")
    assert f"note: {said}" in " ".join(res.output.split()), res.output
    cohort = read_cohort(tmp_path / "c.h5ad")
    assert list(cohort.obs_names) == ["Patiënt-1"] and cohort.obs["cancer_type"].tolist() == ["Côlon"]
    assert cohort.obs["note"].tolist() == ["biopsy — left"] and cohort[:, :96].X.sum() == 20
    recorded = cohort.uns["nanog1"]["sample_sheet"]["notice"]
    assert said in recorded
    assert [n.text for n in input_warnings(cohort) if n.kind == "sample_sheet"] == [recorded]
    res = run(tmp_path / "patiënt.vcf", "--samples", sheet, "--check-only")
    assert res.exit_code == 0 and "no errors" in res.output, res.output
    assert f"sample sheet: {said}" in " ".join(res.output.split()), res.output


def test_a_tcga_sample_table_is_a_sheet_its_cohort_the_type(world, tmp_path):
    """TCGA's tables (the shared data's samples.tsv) name the type `Cohort`, beside clinical columns
    whose names hint at a type (`..._diagnosis`, `..._histological_type`): the sheet reads, the types
    come from `Cohort` (was refused: 'age_at_initial_pathologic_diagnosis is not a cancer-type column')."""
    work, seq, positions = world
    sites_vcf(tmp_path / "TCGA-A1.vcf", seq, positions[:10])
    sheet = tmp_path / "samples.tsv"
    sheet.write_text(
        "Tumor_Sample_Barcode\tCohort\tCDR_age_at_initial_pathologic_diagnosis\tCDR_histological_type\n"
        "TCGA-A1\tLUAD\t58\tAdenocarcinoma\n"
    )
    ingest([tmp_path / "TCGA-A1.vcf"], work / "g.fa", sheet, tmp_path / "c.h5ad")
    cohort = read_cohort(tmp_path / "c.h5ad")
    assert cohort.obs["cancer_type"].tolist() == ["LUAD"]


def test_every_call_accounted_per_file_and_per_sample(world, tmp_path):
    work, seq, positions = world
    p = positions
    rows = []
    for i, pos in enumerate(p[:30]):
        gt = (
            ("0/1", "0/0")
            if i < 12
            else ("0/0", "0/1")
            if i < 25
            else ("0/1", "0/1")
            if i < 29
            else ("0/0", "0/0")
        )
        flt = "LowQual" if i == 5 else "PASS"
        rows.append(f"1\t{pos}\t.\t{seq[pos - 1]}\t{alt_of(seq[pos - 1])}\t.\t{flt}\t.\tGT\t{gt[0]}\t{gt[1]}")
    header = HEADER.replace("#CHROM", GT + "\n#CHROM") + "\tFORMAT\tA\tB\n"
    (tmp_path / "multi.vcf").write_text(header + "\n".join(rows) + "\n")
    sites_vcf(tmp_path / "C.vcf", seq, p[30:55], extra=f"1\t{p[55]}\t.\tA\t<DEL>\t.\tPASS\t.\n")
    report = ingest([tmp_path / "multi.vcf", tmp_path / "C.vcf"], work / "g.fa", None, tmp_path / "c.h5ad")
    acc = read_cohort(tmp_path / "c.h5ad").uns["nanog1"]["accounting"]
    reasons = [c for c in acc.columns if c not in ("file", "sample", "read", "counted", "skipped")]
    assert (acc["read"] == acc["counted"] + acc["skipped"]).all()
    assert (acc["skipped"] == acc[reasons].sum(axis=1)).all()
    got = {(r.file, r.sample): (r.read, r.counted, r.skipped) for r in acc.itertuples()}
    # A carries 12 + 4, B 13 + 4 (one of A's is LowQual); 1 record carried by nobody; C 25 + 1 symbolic
    assert got == {
        ("0", "A"): (16, 15, 1),
        ("0", "B"): (17, 17, 0),
        ("0", ""): (1, 0, 1),
        ("1", "C"): (26, 25, 1),
    }
    assert acc.set_index(["file", "sample"]).loc[("0", ""), "no_carrier"] == 1
    files = {
        f["path"].rsplit("/", 1)[1]: (f["records"], f["counted"], sum(f["skips"].values()))
        for f in report.files
    }
    assert files == {"multi.vcf": (34, 32, 2), "C.vcf": (26, 25, 1)}
    assert read_cohort(tmp_path / "c.h5ad").obs["burden_SBS96"].sum() == 15 + 17 + 25
    result = run(tmp_path / "multi.vcf", tmp_path / "C.vcf", "-r", work / "g.fa", "-o", tmp_path / "d.h5ad")
    assert result.exit_code == 0 and "per sample (read = counted + skipped)" in result.output


def test_maf_and_text_samples_are_held_to_the_sheet_before_any_record_is_read(world, tmp_path):
    work, seq, positions = world
    sites_vcf(tmp_path / "S1.vcf", seq, positions[:10])
    head = "Tumor_Sample_Barcode\tChromosome\tStart_Position\tReference_Allele\tTumor_Seq_Allele2\n"
    owners = ["M1"] * 3 + ["M2"] * 2
    rows = [
        f"{s}\t1\t{p}\t{seq[p - 1]}\t{alt_of(seq[p - 1])}\n"
        for s, p in zip(owners, positions[20:25], strict=True)
    ]
    (tmp_path / "c.maf").write_text(head + "".join(rows))
    # bad.maf's second record is malformed: a sheet error reported first means no record was read
    (tmp_path / "bad.maf").write_text(head + rows[0].replace("M1", "B1") + "B1\t1\tabc\tA\tC\n")
    text_head = "Project Sample ID Genome mut_type chrom pos_start pos_end ref alt Type\n"
    text_rows = "P X1 i GRCh37 SNP 1 12 12 A C SOMATIC\nP X1 i GRCh37 SNP 1 zz\n"
    (tmp_path / "t.txt").write_text(text_head + text_rows)
    files = [tmp_path / "S1.vcf", tmp_path / "c.maf", tmp_path / "bad.maf", tmp_path / "t.txt"]
    cases = {
        "sample,cancer_type\nS1,Lung\nM1,Skin\nB1,Skin\nX1,Skin\n": r"c\.maf: sample 'M2' has no row in the",
        "sample,cancer_type\nS1,Lung\nM1,Skin\nM2,Skin\nB1,Skin\n": r"t\.txt: sample 'X1' has no row in the",
        "sample,cancer_type\nS1,Lung\nM1,Skin\nM2,Skin\nB1,Skin\nX1,Skin\nY,Skin\n": r"'Y' has no input file",
    }
    for text, message in cases.items():
        sheet = _sheet_case(tmp_path, text)
        with pytest.raises(InputError, match=message):
            ingest(files, work / "g.fa", sheet, tmp_path / "c.h5ad")
        assert not (tmp_path / "c.h5ad").exists()
        # the same check alone (`ingest --check-only`, the pipeline's check_inputs rule)
        with pytest.raises(InputError, match=message):
            check_inputs(files, sheet)
        result = run(*files, "--samples", sheet, "--check-only")
        assert result.exit_code == 2 and "has no" in result.output
    # a tumour in two MAFs: the duplicate policy, before reading either
    (tmp_path / "d.maf").write_text(head + rows[3] + "M2\t1\tabc\tA\tC\n")
    with pytest.raises(ValueError, match=r"'M2'.*c\.maf.*d\.maf"):
        check_inputs([tmp_path / "c.maf", tmp_path / "d.maf"], None)
    with pytest.raises(ValueError, match=r"'M2'.*c\.maf.*d\.maf"):
        ingest([tmp_path / "c.maf", tmp_path / "d.maf"], None, None, tmp_path / "c.h5ad")
    sheet = _sheet_case(tmp_path, "sample,cancer_type\nS1,Lung\nM1,Skin\nM2,Skin\n")
    plans, _ = check_inputs(files[:2], sheet)
    assert [p.samples for p in plans] == [("S1",), ("M1", "M2")]
    files = files[:2]
    sheet = _sheet_case(tmp_path, "sample,cancer_type\nS1,Lung\nM1,Skin\nM2,Liver\n")
    ingest(files, work / "g.fa", sheet, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    assert adata.obs["cancer_type"].astype(str).to_dict() == {"S1": "Lung", "M1": "Skin", "M2": "Liver"}
    acc = adata.uns["nanog1"]["accounting"]
    assert acc[["file", "sample", "read", "counted"]].values.tolist() == [
        ["0", "S1", 10, 10],
        ["1", "M1", 3, 3],
        ["1", "M2", 2, 2],
    ]


def test_a_maf_line_with_the_wrong_field_count_is_named(tmp_path):
    head = "Tumor_Sample_Barcode\tChromosome\tStart_Position\tReference_Allele\tTumor_Seq_Allele2\n"
    rows = "T1\t1\t100\tA\tC\nT1\t1\t200\tA\tC\textra\nT1\t1\t300\tA\tC\n"
    (tmp_path / "bad.maf").write_text("#version 2.4\n" + head + rows)
    message = r"bad\.maf:4: malformed MAF: 6 fields where the header has 5"
    with pytest.raises(InputError, match=message):  # before reading: the sample column alone
        check_inputs([tmp_path / "bad.maf"], None)
    from nanog1.genomics.maf import read_maf

    with pytest.raises(InputError, match=message):
        read_maf(tmp_path / "bad.maf")
    result = run(tmp_path / "bad.maf", "-o", tmp_path / "c.h5ad")
    assert result.exit_code == 2 and "bad.maf:4: malformed MAF" in result.output


def test_a_cohort_or_binary_file_given_as_input_is_one_clear_error(world, tmp_path):
    """A cohort .h5ad (or any binary file) passed to ingest names the file, exit 2, no decoding traceback;
    a gzipped matrix is read whatever its name."""
    work, seq, positions = world
    sites_vcf(tmp_path / "s.vcf", seq, positions)
    assert run(tmp_path / "s.vcf", "-r", work / "g.fa", "-o", tmp_path / "c.h5ad").exit_code == 0
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 8)
    cases = ((tmp_path / "c.h5ad", "an HDF5 file (a cohort .h5ad?)"), (tmp_path / "binary.csv", "not a text"))
    for bad, why in cases:
        res = run(bad, "-o", tmp_path / "out.h5ad")
        assert res.exit_code == 2 and f"{bad.name}: {why}" in res.output, res.output
        assert "Traceback" not in res.output and not (tmp_path / "out.h5ad").exists()
    table = "MutationType\tS1\n" + "".join(f"{label}\t{i % 5}\n" for i, label in enumerate(SBS96))
    (tmp_path / "matrix.tsv").write_bytes(gzip.compress(table.encode()))
    assert run(tmp_path / "matrix.tsv", "-o", tmp_path / "m.h5ad").exit_code == 0
    assert read_cohort(tmp_path / "m.h5ad")[:, :96].X.sum() == sum(i % 5 for i in range(96))


def test_a_plain_gzip_vcf_reads_as_the_plain_file_whatever_its_name(world, tmp_path, monkeypatch):
    """`gzip calls.vcf` (not bgzip; htslib reads BGZF only): read as the plain file, named .vcf.gz or .vcf
    ('compressed with gzip, not bgzip' before), through a copy in a private temporary folder that is gone
    afterwards, nothing written beside the file. A cut-off one, and a gzipped file that is no VCF, are still
    one error naming the file."""
    work, seq, positions = world
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    sites_vcf(tmp_path / "s.vcf", seq, positions)
    assert run(tmp_path / "s.vcf", "-r", work / "g.fa", "-o", tmp_path / "plain.h5ad").exit_code == 0
    plain = read_cohort(tmp_path / "plain.h5ad")
    data = gzip.compress((tmp_path / "s.vcf").read_bytes())
    for name in ("a.vcf.gz", "b.vcf"):
        (tmp_path / "gz").mkdir(exist_ok=True)
        (tmp_path / "gz" / name).write_bytes(data)
        res = run(tmp_path / "gz" / name, "-r", work / "g.fa", "-o", tmp_path / "c.h5ad")
        assert res.exit_code == 0, res.output
        zipped = read_cohort(tmp_path / "c.h5ad")
        assert (zipped.X == plain.X).all() and plain[:, :96].X.sum() == len(positions)
        assert list(zipped.obs_names) == [name.split(".")[0]]
        assert sorted(os.listdir(tmp_path / "gz")) == [name] and not os.listdir(scratch)
        (tmp_path / "gz" / name).unlink()
    (tmp_path / "cut.vcf.gz").write_bytes(data[: len(data) * 2 // 3])
    (tmp_path / "junk.vcf.gz").write_bytes(gzip.compress(b"##fileformat=VCFv4.2\nno header line here\n"))
    for bad, why in (("cut.vcf.gz", "truncated or damaged gzip file"), ("junk.vcf.gz", "not a readable VCF")):
        res = run(tmp_path / bad, "-r", work / "g.fa", "-o", tmp_path / "x.h5ad")
        assert res.exit_code == 2 and f"{bad}: {why}" in res.output, res.output
        assert "Traceback" not in res.output and not (tmp_path / "x.h5ad").exists()
        assert not os.listdir(scratch)


def test_a_vcf_and_its_bgzipped_copy_are_refused_even_with_duplicates_sum(tmp_path):
    """x.vcf and x.vcf.gz (bgzip -k leaves both) give one tumour's calls twice: the error must not advise
    --duplicates sum, and sum must not double every count."""
    from nanog1.errors import UserError
    from nanog1.genomics.synthetic import GenomeSpec, make_genome
    from tests.test_ingest_somatic import MUTECT2_META, sites, snv_rows, write

    seq = make_genome(tmp_path / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=5))["1"]
    fields = "TLOD=12.3\tGT:AD:AF:DP\t0/0:30,0:0.03:30\t0/1:20,9:0.3:29"
    rows = snv_rows(seq, sites(seq, 20), lambda *a: fields)
    write(tmp_path / "p1.vcf", MUTECT2_META, ["P1-N", "P1-T"], rows)
    pysam.tabix_compress(str(tmp_path / "p1.vcf"), str(tmp_path / "p1.vcf.gz"))
    files = [tmp_path / "p1.vcf", tmp_path / "p1.vcf.gz"]
    for policy in ("error", "sum"):
        with pytest.raises(UserError, match="copies of one call file") as err:
            ingest(files, tmp_path / "g.fa", None, tmp_path / "c.h5ad", IngestOptions(duplicates=policy))
        assert "p1.vcf.gz" in str(err.value) and "--duplicates sum" not in str(err.value)
    assert not (tmp_path / "c.h5ad").exists()


def test_predict_names_its_own_option_for_a_sample_in_two_files(tmp_path):
    """One tumour's SNV and indel calls in two Mutect2 VCFs (both naming P1-T): ingest's error advises
    --duplicates sum, predict's (which has no such option) asks for a --samples sheet instead."""
    from nanog1.encoder.predictor import read_inputs
    from nanog1.errors import UserError
    from nanog1.genomics.synthetic import GenomeSpec, make_genome
    from tests.test_ingest_somatic import MUTECT2_META, sites, snv_rows, write

    seq = make_genome(tmp_path / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=5))["1"]
    fields = "TLOD=12.3\tGT:AD:AF:DP\t0/0:30,0:0.03:30\t0/1:20,9:0.3:29"
    at = sites(seq, 40)
    write(tmp_path / "p1_a.vcf", MUTECT2_META, ["P1-N", "P1-T"], snv_rows(seq, at[:20], lambda *a: fields))
    write(tmp_path / "p1_b.vcf", MUTECT2_META, ["P1-N", "P1-T"], snv_rows(seq, at[20:], lambda *a: fields))
    files = [tmp_path / "p1_a.vcf", tmp_path / "p1_b.vcf"]
    with pytest.raises(UserError, match="'P1-T' is given by 2 files") as err:
        ingest(files, tmp_path / "g.fa", None, tmp_path / "c.h5ad", IngestOptions())
    assert "--duplicates sum" in str(err.value)
    with pytest.raises(UserError, match="'P1-T' is given by 2 files") as err:
        read_inputs(files, tmp_path / "g.fa")
    assert "--duplicates" not in str(err.value) and "--samples SHEET" in str(err.value), str(err.value)


def ref_mismatch_vcf(tmp_path):
    """(p1.vcf, g.fa) in `tmp_path`: a Mutect2 VCF whose REF disagrees with the FASTA on 10 of its 40 calls
    (called on another genome), for the too-many-calls-lost checks of ingest, predict and the Predict page."""
    from nanog1.genomics.synthetic import GenomeSpec, make_genome
    from tests.test_ingest_somatic import MUTECT2_META, sites, snv_rows, write

    seq = make_genome(tmp_path / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=5))["1"]
    fields = "TLOD=12.3\tGT:AD:AF:DP\t0/0:30,0:0.03:30\t0/1:20,9:0.3:29"
    rows = snv_rows(seq, sites(seq, 40), lambda *a: fields)
    for i in range(0, 40, 4):  # REF replaced by another base: the calls were made on another genome
        cols = rows[i].split("\t")
        cols[3] = "ACGT"[("ACGT".index(cols[3]) + 2) % 4]
        rows[i] = "\t".join(cols)
    write(tmp_path / "p1.vcf", MUTECT2_META, ["P1-N", "P1-T"], rows)
    return tmp_path / "p1.vcf", tmp_path / "g.fa"


def test_predict_takes_the_max_skip_fraction_ingest_takes(tmp_path):
    """A Mutect2 VCF whose REF disagrees with the FASTA on 10 of 40 calls: ingest and predict (which reads
    its files through ingest) refuse it alike, advising to raise --max-skip-fraction, which both take."""
    from nanog1.encoder.predictor import read_inputs
    from nanog1.errors import UserError

    vcf, _ = ref_mismatch_vcf(tmp_path)
    files = [vcf]
    with pytest.raises(UserError, match="10 of 40 calls lost") as err:
        ingest(files, tmp_path / "g.fa", None, tmp_path / "c.h5ad", IngestOptions())
    assert "more than --max-skip-fraction 0.05" in str(err.value) and "raise the limit" in str(err.value)
    said_by_ingest = str(err.value)
    with pytest.raises(UserError, match="10 of 40 calls lost") as err:
        read_inputs(files, tmp_path / "g.fa")
    assert str(err.value) == said_by_ingest
    adata = read_inputs(files, tmp_path / "g.fa", max_skip_fraction=0.3)
    assert list(adata.obs_names) == ["P1-T"] and adata.uns["nanog1"]["skips"]["ref_mismatch"] == 10
    control = "the page's “Largest share of calls a file may lose”"  # a caller without flags names its own
    with pytest.raises(UserError, match="10 of 40 calls lost") as err:
        read_inputs(files, tmp_path / "g.fa", skip_limit_name=control)
    assert str(err.value) == said_by_ingest.replace("--max-skip-fraction", control), str(err.value)


def test_on_error_skip_counts_a_maf_line_with_the_wrong_field_count(tmp_path):
    """--on-error skip skips a truncated MAF row (a cut-off download, a hand edit) as one malformed_line,
    like a non-numeric position; it used to stop the whole file (before any record was read). The
    records after it keep their own line numbers in the file."""
    from nanog1.genomics.maf import read_maf

    head = "Tumor_Sample_Barcode\tChromosome\tStart_Position\tReference_Allele\tTumor_Seq_Allele2\n"
    rows = [f"T1\t1\t{100 * i}\tA\tC\n" for i in range(1, 9)]
    rows[2] = "T1\t1\t300\n"  # truncated: 3 fields where the header has 5
    rows[5] = "T2\t1\t600\tA\tC\textra\n"
    (tmp_path / "bad.maf").write_text("#version 2.4\n" + head + "".join(rows))
    options = IngestOptions(on_error="skip")
    plans, _ = check_inputs([tmp_path / "bad.maf"], None, options)
    assert plans[0].samples == ("T1",)
    table = read_maf(tmp_path / "bad.maf", on_error="skip", block_size=160)  # several blocks
    assert table.skips["malformed_line"] == 2
    assert table.pos.tolist() == [100, 200, 400, 500, 700, 800]
    assert table.line.tolist() == [3, 4, 6, 7, 9, 10]
    result = run(tmp_path / "bad.maf", "--on-error", "skip", "-o", tmp_path / "c.h5ad")
    assert result.exit_code == 0, result.output
    acc = read_cohort(tmp_path / "c.h5ad").uns["nanog1"]["accounting"]
    assert acc["read"].sum() == 8 and acc["counted"].sum() == 6 and acc["malformed_line"].sum() == 2


def test_the_per_sample_table_keeps_whole_sample_names_at_80_columns(tmp_path):
    """MC3 barcodes (28 characters) beside several skip-reason columns: in an 80-column terminal or a log
    file the per-sample table cut them to 'TCGA-AG…', so the tumour that lost its calls could not be told."""
    head = "Tumor_Sample_Barcode\tChromosome\tStart_Position\tReference_Allele\tTumor_Seq_Allele2\tFILTER\n"
    names = [f"TCGA-AG-A00{i}-01A-01W-A019-10" for i in range(3)]
    rows = []
    for i, name in enumerate(names):
        at = 1000 * i  # a non-PASS call, a duplicate, a complex indel, a counted call
        calls = [(100, "A", "C", "wga"), (200, "A", "C", "PASS"), (200, "A", "C", "PASS"),
                 (300, "AC", "GTT", "PASS"), (400, "A", "C", "PASS")]
        rows += [f"{name}\t1\t{at + pos}\t{ref}\t{alt}\t{flt}\n" for pos, ref, alt, flt in calls]
    (tmp_path / "mc3.maf").write_text(head + "".join(rows))
    result = CliRunner(env={"COLUMNS": "80"}).invoke(app, ["ingest", str(tmp_path / "mc3.maf"), "-o",
                                                         str(tmp_path / "c.h5ad")])
    assert result.exit_code == 0, result.output
    part = result.output.split("per sample")[1].split("skipped by reason")[0]
    first = "".join(line.split("│")[1].strip() for line in part.splitlines() if line.startswith("│"))
    assert all(name in first for name in names), part


def test_on_error_skip_counts_a_file_that_cannot_be_read_at_all(world, tmp_path):
    """Under --on-error skip a file whose header or sample column cannot be read (a MAF.gz cut short by an
    interrupted download, a plain-gzip VCF cut short, a binary file named .vcf) is counted as one
    unreadable_file and the other inputs are read; it used to stop the whole run while planning. Under
    stop each one is still an error naming the file."""
    head = "Tumor_Sample_Barcode\tChromosome\tStart_Position\tReference_Allele\tTumor_Seq_Allele2\n"
    (tmp_path / "good.maf").write_text(head + "".join(f"T1\t1\t{100 * i}\tA\tC\n" for i in range(1, 6)))
    big = head + "".join(f"T{i % 50}\t1\t{1000 + i}\tA\tC\n" for i in range(20_000))
    packed = gzip.compress(big.encode())
    (tmp_path / "cut.maf.gz").write_bytes(packed[: len(packed) // 2])
    vcf = HEADER + "\n1\t100\t.\tA\tC\t.\tPASS\t.\n"
    zipped = gzip.compress(vcf.encode())
    (tmp_path / "plain.vcf.gz").write_bytes(zipped[: len(zipped) // 2])
    (tmp_path / "binary.vcf").write_bytes(b"garbage\x00\x01" * 10)
    bad = ["cut.maf.gz", "plain.vcf.gz", "binary.vcf"]
    for name in bad:
        res = run(tmp_path / name, tmp_path / "good.maf", "-o", tmp_path / "c.h5ad")
        assert res.exit_code == 2 and name in res.output and "Traceback" not in res.output, res.output
    args = [tmp_path / n for n in bad]
    res = run(*args, tmp_path / "good.maf", "--on-error", "skip", "-o", tmp_path / "c.h5ad")
    assert res.exit_code == 0, res.output
    adata = read_cohort(tmp_path / "c.h5ad")
    assert list(adata.obs_names) == ["T1"] and adata.X.sum() == 5
    assert adata.uns["nanog1"]["accounting"]["unreadable_file"].sum() == 3


def test_option_values_are_told_by_the_flags_users_type():
    """`--filter pass` is PASS (case-insensitive, as ingest and predict read it); a wrong value or a
    share outside [0, 1] is refused naming the flag, not a Python field."""
    from nanog1.encoder.input_filter import check_rule
    from nanog1.errors import UserError

    assert IngestOptions(filter="pass").filter == "PASS" and IngestOptions(filter="ALL").filter == "all"
    assert check_rule("pass") == "PASS" and check_rule("All") == "all" and check_rule(None) is None
    with pytest.raises(UserError, match=r"--filter some: choose PASS or all"):
        IngestOptions(filter="some")
    with pytest.raises(UserError, match=r"--filter some: choose PASS or all"):
        check_rule("some")
    with pytest.raises(UserError, match=r"^--max-skip-fraction must be between 0 and 1, not 1.5$"):
        IngestOptions(max_skip_fraction=1.5)
    with pytest.raises(UserError, match=r"^the page's limit must be between 0 and 1"):
        IngestOptions(max_skip_fraction=-0.1, skip_limit_name="the page's limit")


def test_ingest_without_skips_says_so_instead_of_an_empty_reason_table(tmp_path):
    """A clean file: the summary says 'nothing skipped' (it printed an empty 'skipped by reason' table);
    with skips, the table lists only the reasons that occurred."""
    from typer.testing import CliRunner

    from nanog1.cli import app
    from nanog1.genomics.synthetic import GenomeSpec, make_genome
    from tests.test_ingest_somatic import MUTECT2_META, sites, snv_rows, write

    seq = make_genome(tmp_path / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=5))["1"]
    fields = "TLOD=12.3\tGT:AD:AF:DP\t0/0:30,0:0.03:30\t0/1:20,9:0.3:29"
    rows = snv_rows(seq, sites(seq, 30), lambda *a: fields)
    write(tmp_path / "clean.vcf", MUTECT2_META, ["P1-N", "P1-T"], rows)
    res = CliRunner().invoke(app, ["ingest", str(tmp_path / "clean.vcf"), "-r", str(tmp_path / "g.fa"),
                                   "-o", str(tmp_path / "c.h5ad")], terminal_width=120)
    assert res.exit_code == 0, res.output
    assert "nothing skipped" in res.output and "skipped by reason" not in res.output, res.output
    vcf, fasta = ref_mismatch_vcf(tmp_path)
    res = CliRunner().invoke(app, ["ingest", str(vcf), "-r", str(fasta), "-o", str(tmp_path / "m.h5ad"),
                                   "--max-skip-fraction", "0.5"], terminal_width=120)
    assert res.exit_code == 0, res.output
    reasons = res.output.split("skipped by reason")[1]
    assert "ref_mismatch" in reasons and "non_pass" not in reasons and "nothing skipped" not in res.output


def test_an_output_that_is_one_of_the_inputs_is_refused_and_left_as_it_was(world, tmp_path):
    """`-o calls.vcf` (or the sheet, or the FASTA, by any name: a symlink too) replaced that file with the
    cohort, atomically and silently; it is one error naming both, and every file stays as it was."""
    work, seq, positions = world
    sites_vcf(tmp_path / "calls.vcf", seq, positions[:10])
    (tmp_path / "sheet.tsv").write_text("sample\tfile\nT1\tcalls.vcf\n")
    os.symlink(tmp_path / "calls.vcf", tmp_path / "link.vcf")
    fasta = tmp_path / "g.fa"
    fasta.write_bytes((work / "g.fa").read_bytes())
    before = {p: p.read_bytes() for p in (tmp_path / "calls.vcf", tmp_path / "sheet.tsv", fasta)}
    for inputs, out in (("calls.vcf", "calls.vcf"), ("link.vcf", "calls.vcf"), ("calls.vcf", "sheet.tsv"),
                        ("calls.vcf", "g.fa")):
        result = run(tmp_path / inputs, "-r", fasta, "--samples", tmp_path / "sheet.tsv", "--sheet-policy",
                     "lenient", "-o", tmp_path / out, "-q")
        assert result.exit_code == 2, result.output
        assert f"{tmp_path / out}: the output is also an input (" in result.output, result.output
        assert all(p.read_bytes() == data for p, data in before.items())
    assert run(tmp_path / "calls.vcf", "-r", fasta, "-o", tmp_path / "c.h5ad", "-q").exit_code == 0


def test_check_only_refuses_a_sample_shared_by_a_vcf_and_a_catalogue_matrix(world, tmp_path):
    """A matrix names its samples only in its header, read by ingest after planning: --check-only reads it
    too, so a tumour given by a VCF and a matrix is ingest's duplicate error (same words) at check time."""
    work, seq, positions = world
    sites_vcf(tmp_path / "S1.vcf", seq, positions[:10])
    table = "MutationType\tS1\tS2\n" + "".join(f"{label}\t{i % 5}\t1\n" for i, label in enumerate(SBS96))
    (tmp_path / "m.tsv").write_text(table)
    files = [tmp_path / "S1.vcf", tmp_path / "m.tsv"]
    with pytest.raises(ValueError, match=r"'S1' is given by 2 files") as ran:
        ingest(files, work / "g.fa", None, tmp_path / "c.h5ad")
    with pytest.raises(ValueError) as checked:
        check_inputs(files, None, reference=work / "g.fa")
    assert str(checked.value) == str(ran.value)
    result = run(*files, "-r", work / "g.fa", "--check-only")
    assert result.exit_code == 2 and "'S1' is given by 2 files" in result.output, result.output
    # without a reference ingest reads the VCF as SBS6 and takes both: so does the check
    assert run(*files, "--check-only").exit_code == 0
    (tmp_path / "m.tsv").write_text(table.replace("\tS1\t", "\tS3\t", 1))
    assert run(*files, "-r", work / "g.fa", "--check-only").exit_code == 0


def test_check_only_checks_a_sheet_against_catalogue_matrices_as_ingest_does(world, tmp_path):
    """Ingest learns a matrix's samples once it reads the file, then refuses a sheet row naming a sample no
    input holds, a matrix sample without a row, and matrices of different sets sharing no name. --check-only
    made none of these checks (it passed and the run failed later): it makes them now, with ingest's words."""
    from nanog1.genomics.channels import ID83

    work, seq, positions = world
    sites_vcf(tmp_path / "S1.vcf", seq, positions[:10])
    (tmp_path / "m.tsv").write_text("MutationType\tM1\tM2\n"
                                    + "".join(f"{label}\t{i % 5}\t1\n" for i, label in enumerate(SBS96)))
    files = [tmp_path / "S1.vcf", tmp_path / "m.tsv"]
    sheet = tmp_path / "sheet.tsv"
    for rows, says in (("S1\nM1\nM2\nS9\n", "sample 'S9' has no input file"),
                       ("S1\nM1\n", "m.tsv: sample 'M2' has no row in the sample sheet")):
        sheet.write_text("sample\n" + rows)
        with pytest.raises(ValueError, match=says) as ran:
            ingest(files, None, sheet, tmp_path / "c.h5ad")
        with pytest.raises(ValueError) as checked:
            check_inputs(files, sheet)
        assert str(checked.value) == str(ran.value)
        result = run(*files, "--samples", sheet, "--check-only")
        assert result.exit_code == 2 and says in result.output, result.output
        assert "Traceback" not in result.output
    sheet.write_text("sample\nS1\nM1\nM2\n")
    assert run(*files, "--samples", sheet, "--check-only").exit_code == 0
    (tmp_path / "id.tsv").write_text("MutationType\tX1\n" + "".join(f"{label}\t1\n" for label in ID83))
    pair = [tmp_path / "m.tsv", tmp_path / "id.tsv"]
    with pytest.raises(ValueError, match="share no sample names") as ran:
        ingest(pair, None, None, tmp_path / "c.h5ad")
    with pytest.raises(ValueError) as checked:
        check_inputs(pair, None)
    assert str(checked.value) == str(ran.value) and not (tmp_path / "c.h5ad").exists()


MUTECT2_PAIR = ('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n##tumor_sample=T1\n'
                "##normal_sample=N1")


@pytest.mark.parametrize("on_error", ["stop", "skip"])
def test_a_tumour_normal_vcf_cut_short_is_a_malformed_line_not_a_traceback(world, tmp_path, on_error):
    """A Mutect2 VCF copied in part: its last record stops before the sample columns. htslib reads it with
    no sample (pysam: IndexError), which was a traceback under both --on-error values."""
    work, seq, positions = world
    head = HEADER.replace("#CHROM", MUTECT2_PAIR + "\n#CHROM") + "\tFORMAT\tN1\tT1\n"
    body = "".join(f"1\t{p}\t.\t{seq[p - 1]}\t{alt_of(seq[p - 1])}\t.\tPASS\t.\tGT\t0/0\t0/1\n"
                   for p in positions[:10])
    path = tmp_path / "cut.vcf"
    path.write_text(head + body + f"1\t{positions[10]}\t.\t{seq[positions[10] - 1]}\tA\t.\tPASS\tTL")
    result = run(path, "-o", tmp_path / "c.h5ad", "--on-error", on_error)
    assert "Traceback" not in result.output and not isinstance(result.exception, IndexError), result.output
    last = len((head + body).splitlines()) + 1
    if on_error == "stop":
        assert result.exit_code == 2, result.output
        assert f"cut.vcf:{last}: malformed VCF record" in result.output, result.output
        return
    assert result.exit_code == 0, result.output
    meta = read_cohort(tmp_path / "c.h5ad").uns["nanog1"]
    assert meta["skips"] == {"malformed_line": 1}, meta["skips"]
    assert meta["accounting"]["counted"].sum() == 10


def test_a_sheet_with_a_file_column_annotates_a_maf_tumours_on_rows_with_no_file(world, tmp_path):
    """A lab's sheet for VCFs and a MAF: the VCF rows name their files (routing, tumor_sample); the MAF's
    tumours, named by its Tumor_Sample_Barcode, take rows with a blank file cell. Those were refused as
    'duplicate file (nan,)'; naming the MAF on every such row is refused saying why."""
    work, seq, positions = world
    sites_vcf(tmp_path / "S1.vcf", seq, positions[:10])
    head = "Tumor_Sample_Barcode\tChromosome\tStart_Position\tReference_Allele\tTumor_Seq_Allele2\n"
    rows = [f"{s}\t1\t{p}\t{seq[p - 1]}\t{alt_of(seq[p - 1])}\n"
            for s, p in zip(["M1"] * 3 + ["M2"] * 2, positions[20:25], strict=True)]
    (tmp_path / "c.maf").write_text(head + "".join(rows))
    files = [tmp_path / "S1.vcf", tmp_path / "c.maf"]
    sheet = _sheet_case(tmp_path, "sample,file,cancer_type\nS1,S1.vcf,Lung\nM1,,Skin\nM2,,Liver\n")
    ingest(files, work / "g.fa", sheet, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    assert adata.obs["cancer_type"].astype(str).to_dict() == {"S1": "Lung", "M1": "Skin", "M2": "Liver"}
    sheet = _sheet_case(tmp_path, "sample,file,cancer_type\nS1,S1.vcf,Lung\nM1,c.maf,Skin\nM2,c.maf,Liver\n")
    with pytest.raises(InputError, match=r"sheet\.tsv:4: file 'c\.maf' is named again \(first on line 3\).*"
                       r"file cell left blank"):
        ingest(files, work / "g.fa", sheet, tmp_path / "d.h5ad")
    sheet = _sheet_case(tmp_path, "sample,file,cancer_type\nS1,S1.vcf,Lung\nM1,,Skin\nS1,S1.vcf,Lung\n")
    with pytest.raises(InputError, match=r"sheet\.tsv:4: duplicate sample id and file"):
        ingest(files, work / "g.fa", sheet, tmp_path / "d.h5ad")
