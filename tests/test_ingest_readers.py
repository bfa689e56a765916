"""Readers: VCF (plain, bgzipped, BCF, multi-sample), MAF, SigProfiler text, catalogue matrices."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest

from nanog1.genomics.channels import CHANNEL_SETS
from nanog1.genomics.events import classify_table
from nanog1.genomics.maf import read_maf
from nanog1.genomics.matrix import read_catalogue_matrix
from nanog1.genomics.reference import Reference
from nanog1.genomics.synthetic import GenomeSpec, make_genome, sample_records, write_vcf
from nanog1.genomics.textformat import read_text
from nanog1.genomics.variants import InputError
from nanog1.genomics.vcf import read_vcf

HEADER = "##fileformat=VCFv4.2\n##contig=<ID=1,length=60000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    work = tmp_path_factory.mktemp("readers")
    seqs = make_genome(work / "g.fa", GenomeSpec(length=60_000, seed=5))
    records = sample_records(np.random.default_rng(2), seqs, 600)
    write_vcf(work / "s1.vcf", records, seqs)
    return work, seqs, records


def _counts(table, work, **kw):
    return classify_table(table, Reference(work / "g.fa"), **kw).counts()


def test_plain_bgzip_and_bcf_read_the_same(world):
    work, seqs, records = world
    # htslib cannot re-read a BCF holding a symbolic ALT without an ##ALT header line: leave them out.
    write_vcf(work / "s2.vcf", [r for r in records if "<" not in r[3]], seqs)
    pysam.tabix_compress(str(work / "s2.vcf"), str(work / "s1.vcf.gz"), force=True)
    with (
        pysam.VariantFile(str(work / "s2.vcf")) as src,
        pysam.VariantFile(str(work / "s1.bcf"), "wb", header=src.header) as dst,
    ):
        for rec in src:
            dst.write(rec)
    base = _counts(read_vcf(work / "s2.vcf"), work)
    assert base.sum() > 300
    for name in ("s1.vcf.gz", "s1.bcf"):
        np.testing.assert_array_equal(_counts(read_vcf(work / name), work), base)


def test_multisample_genotypes_assign_alleles(tmp_path, world):
    work, seqs, _ = world
    s = seqs["1"]
    p = 5000
    alts = [b for b in "ACGT" if b != s[p - 1]]
    text = HEADER.replace("#CHROM", '##FORMAT=<ID=GT,Number=1,Type=String,Description="g">\n#CHROM')
    text += "\tFORMAT\tT1\tT2\n"
    text += f"1\t{p}\t.\t{s[p - 1]}\t{alts[0]},{alts[1]}\t.\tPASS\t.\tGT\t0/1\t0/2\n"
    text += f"1\t{p + 100}\t.\t{s[p + 99]}\t{'A' if s[p + 99] != 'A' else 'C'}\t.\tPASS\t.\tGT\t0/0\t0/0\n"
    (tmp_path / "m.vcf").write_text(text)
    table = read_vcf(tmp_path / "m.vcf")
    assert sorted(zip(table.sample, table.alt, strict=True)) == [("T1", alts[0]), ("T2", alts[1])]
    assert table.skips["no_carrier"] == 1
    assert table.declared == ["T1", "T2"]


def test_malformed_line_names_file_and_line(tmp_path):
    lines = [
        HEADER,
        "1\t100\t.\tA\tC\t.\tPASS\t.",
        "1\tabc\t.\tA\tC\t.\tPASS\t.",
        "1\t300\t.\tA\tG\t.\tPASS\t.",
    ]
    (tmp_path / "bad.vcf").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"bad\.vcf:5"):
        read_vcf(tmp_path / "bad.vcf")
    table = read_vcf(tmp_path / "bad.vcf", on_error="skip")
    assert table.skips["malformed_line"] == 1 and list(table.pos) == [100, 300]


@pytest.mark.parametrize(
    "line,needle",
    [
        ("1\tabc\t.\tA\tC\t.\tPASS\t.", "POS 'abc' is not a whole number"),
        ("1\t300\t.\tA", "4 tab-separated columns where the #CHROM header has 8"),
        ("1 300 . A G . PASS .", "1 tab-separated columns where the #CHROM header has 8"),  # spaces, not tabs
        ("", "an empty line \\(a VCF has none among or after its records\\): delete it"),  # was: 1 column
    ],
)
@pytest.mark.parametrize("packed", [False, True])
def test_malformed_line_says_what_is_wrong_with_it(tmp_path, line, needle, packed):
    """htslib calls a short record or a bad POS "truncated file": the error says what is wrong instead."""
    path = tmp_path / "bad.vcf"
    path.write_text("\n".join([HEADER, "1\t100\t.\tA\tC\t.\tPASS\t.", line]) + "\n")
    if packed:
        path = Path(pysam.tabix_compress(str(path), str(tmp_path / "bad.vcf.gz")) or tmp_path / "bad.vcf.gz")
    with pytest.raises(InputError, match=rf"{path.name}:5: malformed VCF record \({needle}\)"):
        read_vcf(path)


def test_a_vcf_with_a_byte_order_mark_says_so(tmp_path):
    (tmp_path / "bom.vcf").write_bytes(b"\xef\xbb\xbf" + f"{HEADER}\n1\t100\t.\tA\tC\t.\tPASS\t.\n".encode())
    with pytest.raises(InputError, match=r"bom\.vcf:1: starts with a UTF-8 byte-order mark"):
        read_vcf(tmp_path / "bom.vcf")


def test_skip_reasons_are_counted(tmp_path, world):
    work, seqs, _ = world
    s = seqs["1"]
    other = {b: ("A" if b != "A" else "C") for b in "ACGT"}
    rows = [
        ("1", 1000, s[999], other[s[999]], "PASS"),
        ("chr1", 1100, s[1099], other[s[1099]], "PASS"),
        ("7", 1200, "A", "C", "PASS"),
        ("1", 1300, other[s[1299]], "T" if other[s[1299]] != "T" else "G", "PASS"),
        ("1", 1400, s[1399], other[s[1399]], "LowQual"),
        ("1", 1500, s[1499], "<DEL>", "PASS"),
    ]
    body = "\n".join(f"{c}\t{p}\t.\t{r}\t{a}\t.\t{f}\t." for c, p, r, a, f in rows)
    (tmp_path / "r.vcf").write_text(HEADER + "\n" + body + "\n")
    events = classify_table(read_vcf(tmp_path / "r.vcf"), Reference(work / "g.fa"))
    assert events.counts().sum() == 2
    assert events.skips == {"unknown_contig": 1, "ref_mismatch": 1, "non_pass": 1, "symbolic_allele": 1}


def _maf_and_text(work, seqs, records):
    """The same SNV/DBS/indel records as a GDC MAF (gzipped) and a SigProfiler text file."""
    maf_rows, text_rows = [], []
    for chrom, pos, ref, alt, flt in records:
        if flt != "PASS" or "," in alt or "<" in alt or len(ref) > 2 and len(alt) > 2:
            continue
        if len(ref) == len(alt):
            maf_rows.append(("S1", chrom, pos, ref, alt))
            text_rows.append((chrom, pos, ref, alt))
        elif len(ref) > len(alt):
            maf_rows.append(("S1", chrom, pos + 1, ref[1:], "-"))
            text_rows.append((chrom, pos, ref[1:], "-"))
        else:
            maf_rows.append(("S1", chrom, pos, "-", alt[1:]))
            text_rows.append((chrom, pos, "-", alt[1:]))
    maf = pd.DataFrame(
        maf_rows,
        columns=[
            "Tumor_Sample_Barcode",
            "Chromosome",
            "Start_Position",
            "Reference_Allele",
            "Tumor_Seq_Allele2",
        ],
    )
    with gzip.open(work / "s1.maf.gz", "wt") as f:
        f.write("#version 2.4\n")
        maf.to_csv(f, sep="\t", index=False)
    with open(work / "s1.txt", "w") as f:
        f.write("Project\tSamples\tID\tGenome\tmut_type\tchrom\tpos_start\tpos_end\tref\talt\tType\n")
        for chrom, pos, ref, alt in text_rows:
            f.write(f"P\tS1\t.\tG\tX\t{chrom}\t{pos}\t{pos}\t{ref}\t{alt}\tSOMATIC\n")
    return [r for r in records if r[4] == "PASS" and "," not in r[3] and "<" not in r[3]]


def test_maf_and_text_match_vcf(world):
    work, seqs, records = world
    kept = _maf_and_text(work, seqs, records)
    write_vcf(work / "same.vcf", [r for r in kept if not (len(r[2]) > 2 and len(r[3]) > 2)], seqs)
    want = _counts(read_vcf(work / "same.vcf"), work)
    maf = read_maf(work / "s1.maf.gz", block_size=4096)
    assert set(maf.sample) == {"S1"}
    np.testing.assert_array_equal(_counts(maf, work), want)
    np.testing.assert_array_equal(_counts(read_text(work / "s1.txt"), work), want)


def test_maf_missing_columns_is_an_error(tmp_path):
    (tmp_path / "x.maf").write_text("Hugo_Symbol\tChromosome\nTP53\t17\n")
    with pytest.raises(InputError, match="x.maf:1"):
        read_maf(tmp_path / "x.maf")


def test_pcawg_matrices(pcawg_dir):
    for name, channel_set in (
        ("WGS_PCAWG.96.csv", "SBS96"),
        ("WGS_PCAWG.dinucs.csv", "DBS78"),
        ("WGS_PCAWG.indels.csv", "ID83"),
    ):
        mat = read_catalogue_matrix(pcawg_dir / name)
        raw = pd.read_csv(pcawg_dir / name)
        assert mat.channel_set == channel_set
        assert list(mat.counts.index) == list(CHANNEL_SETS[channel_set])
        assert mat.counts.to_numpy().sum() == raw.select_dtypes("number").to_numpy().sum()
        assert mat.cancer_types.notna().all() and mat.counts.shape[1] == 2780


def test_sigprofiler_matrix_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    labels = list(CHANNEL_SETS["ID83"])
    frame = pd.DataFrame(rng.integers(0, 50, (83, 3)), index=labels, columns=["a", "b", "c"])
    shuffled = frame.sample(frac=1, random_state=1)
    shuffled.rename_axis("MutationType").to_csv(tmp_path / "m.tsv", sep="\t")
    mat = read_catalogue_matrix(tmp_path / "m.tsv")
    assert mat.channel_set == "ID83"
    pd.testing.assert_frame_equal(mat.counts, frame, check_dtype=False)


def test_matrix_with_unknown_rows_is_an_error(tmp_path):
    (tmp_path / "m.csv").write_text("MutationType,a\nfoo,1\nbar,2\n")
    with pytest.raises(InputError, match="m.csv"):
        read_catalogue_matrix(tmp_path / "m.csv")


def test_bgzipped_reference_reads_the_same(world, tmp_path):
    work, _, _ = world
    pysam.tabix_compress(str(work / "g.fa"), str(tmp_path / "g.fa.gz"), force=True)
    pysam.faidx(str(tmp_path / "g.fa.gz"))
    plain, packed = Reference(work / "g.fa"), Reference(tmp_path / "g.fa.gz")
    assert packed.resolve("chr1") == "1" and packed.resolve("chrX") is None
    np.testing.assert_array_equal(plain.codes("1"), packed.codes("1"))
    assert plain.codes("1")[:100].tolist() == [4] * 100


def test_soft_masked_reference_gives_the_same_counts(world, tmp_path):
    work, _, _ = world
    lines = (work / "g.fa").read_text().splitlines()
    masked = [line if line.startswith(">") else line[:30].lower() + line[30:] for line in lines]
    (tmp_path / "m.fa").write_text("\n".join(masked) + "\n")
    pysam.faidx(str(tmp_path / "m.fa"))
    table = read_vcf(work / "s1.vcf")
    for compat in (False, True):
        want = classify_table(table, Reference(work / "g.fa"), compat=compat).counts()
        got = classify_table(table, Reference(tmp_path / "m.fa"), compat=compat).counts()
        assert want.sum() > 300
        np.testing.assert_array_equal(got, want)


def _tables_equal(a, b) -> None:
    for col in ("sample", "chrom", "pos", "ref", "alt", "passed", "line"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    assert a.skips == b.skips and a.declared == b.declared


@pytest.mark.parametrize("compat", [False, True])
def test_sites_only_fast_path_reads_as_pysam(tmp_path, monkeypatch, compat):
    """Sites-only text VCFs are parsed by pyarrow; every field the table keeps equals pysam's reading, with
    lower case, multi-allelic records, FILTER lists, '.' FILTER, duplicate lines and unknown contigs."""
    import nanog1.genomics.vcf as vcf
    import nanog1.genomics.vcf_sites as vcf_sites

    rows = [
        ("1", 100, "A", "C", "PASS"),
        ("1", 100, "A", "C", "PASS"),  # the same line again (compat mode drops it)
        ("1", 150, "a", "g", "."),
        ("1", 200, "AC", "GT", "PASS;LowQual"),
        ("1", 250, "C", "A,G", "PASS"),
        ("1", 300, "G", "GTT", "LowQual;PASS"),
        ("chr9", 350, "T", "A", "LowQual"),
        ("1", 400, "ACG", "A", "."),
        ("1", 400, "T", "N", "PASS"),
    ]
    body = "\n".join(f"{c}\t{p}\t.\t{r}\t{a}\t30\t{f}\tDP=3" for c, p, r, a, f in rows)
    path = tmp_path / "sites.vcf"
    path.write_text(HEADER + "\n" + body + "\n")
    assert vcf_sites.collect_sites(path, vcf._header_lines(path)) is not None
    fast = read_vcf(path, compat=compat)
    monkeypatch.setattr(vcf_sites, "collect_sites", lambda *a: None)
    slow = read_vcf(path, compat=compat)
    _tables_equal(fast, slow)
    assert len(fast) == (7 if compat else 10)  # compat: the repeated line and the 2-ALT record go


@pytest.mark.parametrize(
    "line",
    [
        "1\t500\t.\tA\t<DEL>\t.\tPASS\t.",
        "1\t500\t.\tA\t*\t.\tPASS\t.",
        "1\t500\t.\tA\tC\t.\tPASS",
        "1\t-5\t.\tA\tC\t.\tPASS\t.",
        "",
    ],
)
def test_sites_fast_path_leaves_unusual_files_to_pysam(tmp_path, line):
    """A symbolic or '*' ALT, a missing column, a negative POS or a blank line: pysam reads the file."""
    import nanog1.genomics.vcf as vcf
    import nanog1.genomics.vcf_sites as vcf_sites

    path = tmp_path / "odd.vcf"
    path.write_text(HEADER + "\n1\t100\t.\tA\tC\t.\tPASS\t.\n" + line + "\n1\t600\t.\tA\tC\t.\tPASS\t.\n")
    assert vcf_sites.collect_sites(path, vcf._header_lines(path)) is None


def _sbs_matrix(tmp_path, labels: list[str], name: str = "m.tsv"):
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.integers(0, 50, (len(labels), 2)), index=labels, columns=["a", "b"])
    frame.rename_axis("MutationType").to_csv(tmp_path / name, sep="\t")
    return tmp_path / name


@pytest.mark.parametrize(
    "edit,where,needle",
    [
        (lambda ls: ls[:40] + ["A[C>A]X"] + ls[41:], ":42:", r"unknown channel label 'A\[C>A\]X'"),
        (lambda ls: [f"T:{c}" for c in ls] + [f"U:{c}" for c in ls], ":2:",
         r"'T:A\[C>A\]A' \(192 of 192 rows unknown; a strand-resolved matrix \(SBS288"),
        (lambda ls: [f"A{c}C" for c in ls], ":2:", r"'AA\[C>A\]AC' .*an SBS1536 matrix"),
        (lambda ls: ls + [ls[7]], ":98:", r"channel 'A\[C>G\]T' repeated \(first on line 9\)"),
        (lambda ls: ls[:90], ": ", r"90 of 96 SBS96 channels \(missing e\.g\. \['T\[T>C\]G'"),
        (lambda ls: ls + ["AC>CA"], ":98:", r"'AC>CA' is not a SBS96 channel: rows mix channel sets"),
    ],
)
def test_matrix_label_errors_name_the_line_and_the_label(tmp_path, edit, where, needle):
    """A bad row is named by its line; a repeated one is an error, not a pandas traceback."""
    path = _sbs_matrix(tmp_path, edit(list(CHANNEL_SETS["SBS96"])))
    with pytest.raises(InputError, match=rf"m\.tsv{where}.*{needle}"):
        read_catalogue_matrix(path)


def test_truncated_gzip_matrix_is_one_error_line_not_aborted(tmp_path):
    """A cut-off .gz matrix is named by the CLI (click used to swallow gzip's EOFError as 'Aborted!')."""
    from typer.testing import CliRunner

    from nanog1.cli import app

    whole = gzip.compress(_sbs_matrix(tmp_path, list(CHANNEL_SETS["SBS96"])).read_bytes())
    (tmp_path / "cut.tsv.gz").write_bytes(whole[: len(whole) // 2])
    result = CliRunner().invoke(app, ["ingest", str(tmp_path / "cut.tsv.gz"), "-o", str(tmp_path / "c.h5ad")])
    assert result.exit_code == 2, result.output
    assert "cut.tsv.gz: truncated or damaged gzip file" in result.output
    assert not (tmp_path / "c.h5ad").exists()


@pytest.mark.parametrize(
    "cell,where,needle",
    [
        ("0.25", ":7:", r"count 0\.25 of sample 'b' \(A\[C>G\]C\) is not a whole number: give mutation"),
        ("-3", ":7:", r"count -3 of sample 'b' \(A\[C>G\]C\) is negative"),
        ("NA", ":7:", r"count \(empty or NA\) of sample 'b' \(A\[C>G\]C\) is not a number"),
    ],
)
def test_matrix_counts_must_be_whole_non_negative_numbers(tmp_path, cell, where, needle):
    """A matrix of proportions read as whole counts would type tumours with no mutations; a negative or
    missing cell is named by its line and sample."""
    path = _sbs_matrix(tmp_path, list(CHANNEL_SETS["SBS96"]))
    lines = path.read_text().splitlines()
    label, a, _ = lines[6].split("\t")
    lines[6] = "\t".join([label, a, cell])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"m\.tsv{where} {needle}"):
        read_catalogue_matrix(path)
    lines[6] = "\t".join([label, a, "7.0"])  # a whole number written as a float is a count
    path.write_text("\n".join(lines) + "\n")
    assert read_catalogue_matrix(path).counts.loc["A[C>G]C", "b"] == 7


def test_a_vcf_or_bcf_under_another_name_is_read_as_one(world, tmp_path):
    """A VCF saved as .txt (or a BCF as .dat) is told by its first bytes, not sent to the matrix reader
    (a pandas tokenizing traceback); a ragged matrix is one error naming its line."""
    import shutil

    from nanog1.genomics.ingest import IngestOptions, detect_kind, process_file

    work, _, _ = world
    test_plain_bgzip_and_bcf_read_the_same(world)  # writes s2.vcf and s1.bcf
    shutil.copy(work / "s2.vcf", tmp_path / "calls.txt")
    shutil.copy(work / "s1.bcf", tmp_path / "calls.dat")
    base = process_file(work / "s2.vcf", work / "g.fa", IngestOptions())
    for name in ("calls.txt", "calls.dat"):
        assert detect_kind(tmp_path / name) == "vcf"
        got = process_file(tmp_path / name, work / "g.fa", IngestOptions())
        np.testing.assert_array_equal(got.counts, base.counts)
    labels = list(CHANNEL_SETS["SBS96"])
    (tmp_path / "m.tsv").write_text("MutationType\ta\tb\n" + "".join(f"{c}\t1\t2\n" for c in labels[:3])
                                    + f"{labels[3]}\t1\t2\t3\t4\n")
    assert detect_kind(tmp_path / "m.tsv") == "matrix"
    with pytest.raises(InputError, match=r"m\.tsv:5: not a catalogue matrix: rows of unequal length"):
        read_catalogue_matrix(tmp_path / "m.tsv")


@pytest.mark.parametrize("layout", ["activities", "transposed"])
def test_samples_as_rows_are_named_for_what_they_are(tmp_path, layout):
    """A signature-activity table (SigProfilerAssignment's layout, cancer type first) or a catalogue
    matrix transposed is said to be one, at the header line, with what to give instead."""
    activities = layout == "activities"
    columns = ["SBS1", "SBS2", "SBS5", "SBS13", "SBS40"] if activities else list(CHANNEL_SETS["SBS96"])
    frame = pd.DataFrame(np.arange(2 * len(columns)).reshape(2, -1), columns=columns)
    frame.insert(0, "Samples", ["SP1", "SP2"])
    frame.insert(0, "Cancer Types", ["Biliary-AdenoCA", "Biliary-AdenoCA"])
    path = tmp_path / "Assignment_Solution_Activities.txt"
    frame.to_csv(path, sep="\t", index=False)
    needle = (r"signature names \(SBS1, SBS2, SBS5, ...\).*signature-activity table.*give the catalogue"
              if activities else r"channel labels \(A\[C>A\]A, .*transposed; give channels as rows")
    with pytest.raises(InputError, match=rf"Activities\.txt:1: the column headers are {needle}"):
        read_catalogue_matrix(path)


@pytest.mark.parametrize("columns", [["S1", "S2", "S1"], ["Lung::S1", "S2", "Skin::S1"]])
def test_a_sample_heading_two_matrix_columns_is_named_at_the_header(tmp_path, columns):
    """pandas reads a repeated column as a new sample 'S1.1' (typed as a tumour of its own); the repeat, or
    one sample under two cancer types, is one error at line 1 naming both columns."""
    labels = list(CHANNEL_SETS["SBS96"])
    path = tmp_path / "m.tsv"
    rows = "".join(f"{c}\t1\t2\t3\n" for c in labels)
    path.write_text("\t".join(["MutationType", *columns]) + "\n" + rows)
    with pytest.raises(InputError, match=r"m\.tsv:1: sample 'S1' heads two columns \(2 and 4\)"):
        read_catalogue_matrix(path)
    path.write_text("\t".join(["MutationType", *columns[:2], "S3"]) + "\n" + rows)  # distinct: read as before
    assert list(read_catalogue_matrix(path).counts.columns) == ["S1", "S2", "S3"]


@pytest.mark.parametrize("sep", ["\t", ","])
def test_a_separator_ending_every_line_adds_no_sample(tmp_path, sep):
    """Some exporters end every line with a separator: the empty column pandas calls 'Unnamed: 3' is no
    sample (it was 'count (empty or NA) of sample 'Unnamed: 3' is not a number'); a column with counts
    and no name is one error naming the column."""
    labels = list(CHANNEL_SETS["SBS96"])
    rows = "".join(sep.join([c, str(i % 7), str(i % 5)]) + sep + "\n" for i, c in enumerate(labels))
    path = tmp_path / "m.txt"
    path.write_text(sep.join(["MutationType", "a", "b"]) + sep + "\n" + rows)
    mat = read_catalogue_matrix(path)
    assert list(mat.counts.columns) == ["a", "b"]
    assert mat.counts.loc[labels[12], "a"] == 12 % 7 and mat.counts.loc[labels[12], "b"] == 12 % 5
    path.write_text(sep.join(["MutationType", "a", "b"]) + sep + "\n" + rows.replace(f"{sep}\n", f"{sep}4\n"))
    with pytest.raises(InputError, match=r"m\.txt:1: column 4 holds counts but has no sample name"):
        read_catalogue_matrix(path)


@pytest.mark.parametrize("magic", [b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"])
def test_a_workbook_given_as_a_matrix_is_named_one(tmp_path, magic):
    """An Excel workbook (.xlsx, .xls) given as the catalogue matrix is said to be one, with what to save it
    as (it was 'not a text file: expected a VCF/BCF, MAF, SigProfiler text or catalogue matrix')."""
    (tmp_path / "SBS96.xlsx").write_bytes(magic + bytes(range(256)) * 4)
    needle = r"SBS96\.xlsx: an Excel workbook \(or a zip file\), not a text table: save the catalogue matrix"
    with pytest.raises(InputError, match=needle):
        read_catalogue_matrix(tmp_path / "SBS96.xlsx")


def test_a_utf16_matrix_is_named_one(tmp_path):
    """Excel's 'Unicode Text' export (UTF-16 with a byte-order mark) is said to be one, with how to convert it
    (it was 'not a text file')."""
    labels = list(CHANNEL_SETS["SBS96"])
    text = "MutationType\ta\n" + "".join(f"{c}\t1\n" for c in labels)
    (tmp_path / "m.txt").write_bytes(text.encode("utf-16"))
    with pytest.raises(InputError, match=r"m\.txt: UTF-16 text \(Excel's 'Unicode Text'\): save the matrix"):
        read_catalogue_matrix(tmp_path / "m.txt")


def test_cosmic_type_subtype_columns_read_as_the_sigprofiler_labels(tmp_path):
    """COSMIC's SBS96 layout splits each channel in two columns, Type 'C>A' and SubType 'ACA' (any header
    names): read as A[C>A]A with the same counts, in any row order (it was "channel 'C>A' repeated")."""
    rng = np.random.default_rng(5)
    labels = list(CHANNEL_SETS["SBS96"])
    frame = pd.DataFrame(rng.integers(0, 50, (96, 2)), index=labels, columns=["a", "b"])
    split = frame.sample(frac=1, random_state=2).reset_index(names="label")
    split.insert(0, "SubType", split["label"].str[0] + split["label"].str[2] + split["label"].str[6])
    split.insert(0, "Type", split.pop("label").str[2:5])
    assert list(split.columns) == ["Type", "SubType", "a", "b"] and split.iloc[0, 0][1] == ">"
    split.to_csv(tmp_path / "cosmic.tsv", sep="\t", index=False)
    mat = read_catalogue_matrix(tmp_path / "cosmic.tsv")
    assert mat.channel_set == "SBS96"
    pd.testing.assert_frame_equal(mat.counts, frame, check_dtype=False)
