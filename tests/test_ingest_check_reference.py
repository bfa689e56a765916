"""`nanog1 ingest --check-only --reference`: the FASTA and its index, the contigs the VCFs name and their
lengths are checked as ingest checks them, from the index and the VCF headers and first records alone
(QA #31: --check-only passed a GRCh37 VCF against a GRCh38 FASTA, and a FASTA with no index).

The FASTA and its .fai are written here; the VCFs as Mutect2 writes them (##contig lines with length and
assembly from the reference's .dict, ##tumor_sample/##normal_sample, a normal and a tumour column)."""

from __future__ import annotations

import random

import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.genomics.build import GRCH37, GRCH38
from nanog1.genomics.build_checks import check_reference_lengths
from nanog1.genomics.variants import InputError

WIDTH = 60  # bases per FASTA line


def write_fasta(path, contigs: dict[str, int], index: bool = True, seed: int = 3) -> dict[str, str]:
    """A FASTA of random bases (60 a line) and, with `index`, its .fai as samtools faidx writes it
    (name, length, offset of the first base, bases and bytes per line)."""
    rng = random.Random(seed)
    seqs = {name: "".join(rng.choice("ACGT") for _ in range(n)) for name, n in contigs.items()}
    text, fai = "", []
    for name, seq in seqs.items():
        text += f">{name}\n"
        fai.append(f"{name}\t{len(seq)}\t{len(text.encode())}\t{WIDTH}\t{WIDTH + 1}\n")
        text += "".join(seq[i:i + WIDTH] + "\n" for i in range(0, len(seq), WIDTH))
    path.write_text(text)
    if index:
        (path.parent / (path.name + ".fai")).write_text("".join(fai))
    return seqs


def write_mutect2(path, contigs: dict[str, int], assembly: str, seq: str, chrom: str, n: int = 20) -> None:
    """A Mutect2 VCF: its ##contig lines list `contigs` (length and assembly), its records are `n` SNVs on
    `chrom` whose REF is `seq`'s base there."""
    head = ["##fileformat=VCFv4.2",
            '##FILTER=<ID=PASS,Description="All filters passed">',
            '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Allelic depths">',
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
            "##GATKCommandLine=<ID=Mutect2,CommandLine=\"Mutect2 --output p1.vcf\",Version=\"4.2.6.1\">",
            *(f"##contig=<ID={c},length={n_},assembly={assembly}>" for c, n_ in contigs.items()),
            "##normal_sample=P1-N", "##source=Mutect2", "##tumor_sample=P1-T",
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tP1-N\tP1-T"]
    rows = []
    for p in range(500, 500 + 97 * n, 97):
        ref = seq[p - 1]
        alt = "ACGT"[("ACGT".index(ref) + 1) % 4]
        rows.append(f"{chrom}\t{p}\t.\t{ref}\t{alt}\t.\tPASS\t.\tGT:AD\t0/0:30,0\t0/1:20,9")
    path.write_text("\n".join(head + rows) + "\n")


def run(*args):
    return CliRunner().invoke(app, ["ingest", *map(str, args)])


def said(result) -> str:
    return " ".join(result.output.split())


@pytest.fixture
def fasta(tmp_path):
    """(FASTA path, its sequences): chr1 of 20,000 and chr2 of 5,000 bases, indexed."""
    seqs = write_fasta(tmp_path / "ref.fa", {"chr1": 20_000, "chr2": 5_000})
    return tmp_path / "ref.fa", seqs


def test_a_matching_vcf_passes_with_no_reference_note(fasta, tmp_path):
    fa, seqs = fasta
    write_mutect2(tmp_path / "p1.vcf", {"chr1": 20_000, "chr2": 5_000}, "toy", seqs["chr1"], "chr1")
    res = run(tmp_path / "p1.vcf", "-r", fa, "--check-only")
    assert res.exit_code == 0 and "no errors" in res.output and "reference:" not in res.output, res.output


def test_a_missing_fasta_is_named(tmp_path, fasta):
    fa, seqs = fasta
    write_mutect2(tmp_path / "p1.vcf", {"chr1": 20_000}, "toy", seqs["chr1"], "chr1")
    res = run(tmp_path / "p1.vcf", "-r", tmp_path / "nothere.fa", "--check-only")
    assert res.exit_code == 2, res.output
    assert f"{tmp_path / 'nothere.fa'}: reference FASTA not found" in said(res), res.output


def test_an_unindexed_fasta_is_told_how_to_index_and_is_not_written_to(tmp_path, monkeypatch):
    """No .fai: where ingest can build it, a note saying so and how to make it now (`samtools faidx`),
    nothing written by the check; where its folder is not writable, the error ingest gives, how included."""
    seqs = write_fasta(tmp_path / "ref.fa", {"chr1": 20_000}, index=False)
    write_mutect2(tmp_path / "p1.vcf", {"chr1": 20_000}, "toy", seqs["chr1"], "chr1")
    res = run(tmp_path / "p1.vcf", "-r", tmp_path / "ref.fa", "--check-only")
    assert res.exit_code == 0, res.output
    assert f"reference: {tmp_path / 'ref.fa'}: has no index; ingest will build ref.fa.fai (or make it now " \
           f"with `samtools faidx {tmp_path / 'ref.fa'}`)" in said(res), res.output
    assert not (tmp_path / "ref.fa.fai").exists()
    monkeypatch.setattr("nanog1.genomics.fasta_index.can_write", lambda folder: False)
    res = run(tmp_path / "p1.vcf", "-r", tmp_path / "ref.fa", "--check-only")
    assert res.exit_code == 2 and "its folder is not writable: rebuild it with `samtools faidx" in said(res)
    assert f"{tmp_path / 'ref.fa.fai'}: this index does not match" in said(res), res.output


def test_a_plain_gzip_fasta_cannot_be_indexed(tmp_path):
    import gzip

    seqs = write_fasta(tmp_path / "ref.fa", {"chr1": 20_000}, index=False)
    (tmp_path / "ref.fa.gz").write_bytes(gzip.compress((tmp_path / "ref.fa").read_bytes()))
    write_mutect2(tmp_path / "p1.vcf", {"chr1": 20_000}, "toy", seqs["chr1"], "chr1")
    res = run(tmp_path / "p1.vcf", "-r", tmp_path / "ref.fa.gz", "--check-only")
    assert res.exit_code == 2 and "ref.fa.gz: cannot index the reference FASTA: compressed with gzip, not " \
                                  "bgzip" in said(res), res.output


def test_chr_prefix_naming_is_named_for_each_and_matched_as_ingest_matches_it(tmp_path, fasta):
    """A VCF naming contigs 1, 2 against a FASTA naming them chr1, chr2: ingest reads it (it matches names
    without the prefix), so the check passes it, with a note saying which naming each uses."""
    fa, seqs = fasta
    write_mutect2(tmp_path / "p1.vcf", {"1": 20_000, "2": 5_000}, "toy", seqs["chr1"], "1")
    res = run(tmp_path / "p1.vcf", "-r", fa, "--check-only")
    assert res.exit_code == 0, res.output
    assert ("reference: p1.vcf: names contigs without a chr prefix (1, 2), the reference ref.fa with a chr "
            "prefix (chr1, chr2): ingest matches them by name, as it reads them (1 is chr1)") in said(res), \
        said(res)
    assert run(tmp_path / "p1.vcf", "-r", fa, "-o", tmp_path / "c.h5ad", "-q").exit_code == 0


def test_a_vcf_sharing_no_contig_with_the_fasta_is_refused_as_ingest_refuses_it(tmp_path, fasta):
    """RefSeq accessions (NC_000001.11) against chr1: no call could be read in context. Ingest refuses the
    file for its calls on contigs the reference lacks; --check-only says so first, naming both namings.
    With --max-skip-fraction 1 ingest reads such calls without context: a note then."""
    fa, seqs = fasta
    write_mutect2(tmp_path / "p1.vcf", {"NC_000001.11": 20_000}, "GRCh38", seqs["chr1"], "NC_000001.11")
    res = run(tmp_path / "p1.vcf", "-r", fa, "--check-only")
    assert res.exit_code == 2, res.output
    assert (f"p1.vcf: none of the contigs it names (NC_000001.11) is in the reference {fa}: the VCF names "
            "them as NC_000001.11 (no chromosome 1-22, X, Y or MT among them), the reference with a chr "
            "prefix (chr1, chr2)") in said(res), said(res)
    ran = run(tmp_path / "p1.vcf", "-r", fa, "-o", tmp_path / "c.h5ad", "-q")
    assert ran.exit_code == 2 and "contigs the reference lacks" in said(ran), ran.output
    res = run(tmp_path / "p1.vcf", "-r", fa, "--check-only", "--max-skip-fraction", "1")
    assert res.exit_code == 0 and "reference: p1.vcf: none of the contigs" in said(res), res.output


def test_first_records_on_contigs_the_fasta_lacks_are_a_note(tmp_path, fasta):
    """A header naming chr1, chr2 and chr3, records on chr3 (absent from the FASTA) beside chr1: ingest reads
    those without context; the check names them."""
    fa, seqs = fasta
    write_mutect2(tmp_path / "p1.vcf", {"chr1": 20_000, "chr2": 5_000, "chr3": 9_000}, "toy", seqs["chr1"],
                  "chr1")
    text = (tmp_path / "p1.vcf").read_text()
    (tmp_path / "p1.vcf").write_text(text + "chr3\t100\t.\tA\tC\t.\tPASS\t.\tGT:AD\t0/0:30,0\t0/1:20,9\n")
    res = run(tmp_path / "p1.vcf", "--reference", fa, "--check-only")
    assert res.exit_code == 0, res.output
    assert ("reference: p1.vcf: its first records name 1 contig(s) the reference ref.fa lacks (chr3): calls "
            "there are read without context") in said(res), said(res)


def _refused_as_grch37(tmp_path, fa, chr1: str) -> None:
    """A Mutect2 VCF of GRCh37 (chr1 249,250,621 bp) checked against `fa` (chr1 20,000 bp): refused by
    --check-only, both lengths and the VCF's build named."""
    grch37 = {f"chr{c}": n for c, n in GRCH37.items()}
    write_mutect2(tmp_path / "p1.vcf", grch37, "GRCh37", chr1, "chr1")
    res = run(tmp_path / "p1.vcf", "-r", fa, "--check-only")
    assert res.exit_code == 2, res.output
    assert ("p1.vcf: contig chr1 is 249,250,621 bp in the VCF header (GRCh37) but 20,000 bp in the "
            f"reference {fa}") in said(res), said(res)


def test_a_grch37_vcf_against_another_build_is_refused_naming_the_build(tmp_path, fasta):
    """A Mutect2 VCF called on GRCh37 (its ##contig lines: chr1 249,250,621 bp, assembly=GRCh37) against a
    FASTA whose chr1 is another length: refused at check time as ingest refuses it, with both lengths and
    the VCF's build; against GRCh38's lengths, both builds are named."""
    fa, seqs = fasta
    _refused_as_grch37(tmp_path, fa, seqs["chr1"])
    grch38 = {f"chr{c}": n for c, n in GRCH38.items()}
    with pytest.raises(InputError, match=r"contig chr1 is 249,250,621 bp in the VCF header \(GRCh37\) but "
                                         r"248,956,422 bp in the reference \S+ \(GRCh38\)"):
        check_reference_lengths([tmp_path / "p1.vcf"], fa, grch38)


def test_check_inputs_from_python_checks_the_reference_as_check_only_does(tmp_path, fasta):
    """`ingest.check_inputs(..., reference=)` (what --check-only and the pipeline's check rule run) checks the
    FASTA too: the other build refused in the same words, the reference's notes returned with the sheet's."""
    from nanog1.genomics.ingest import check_inputs

    fa, seqs = fasta
    grch37 = {f"chr{c}": n for c, n in GRCH37.items()}
    write_mutect2(tmp_path / "p1.vcf", grch37, "GRCh37", seqs["chr1"], "chr1")
    with pytest.raises(InputError, match=r"contig chr1 is 249,250,621 bp in the VCF header \(GRCh37\) but "
                                         r"20,000 bp in the reference"):
        check_inputs([tmp_path / "p1.vcf"], None, reference=fa)
    check_inputs([tmp_path / "p1.vcf"], None)  # without one, nothing to compare the header with
    write_mutect2(tmp_path / "p1.vcf", {"1": 20_000, "2": 5_000}, "toy", seqs["chr1"], "1")
    _, notes = check_inputs([tmp_path / "p1.vcf"], None, reference=fa)
    assert [n[:24] for n in notes] == ["reference: p1.vcf: names"], notes


@pytest.mark.parametrize("bgzipped", [False, True])
def test_an_unindexed_fasta_is_checked_from_its_own_header_lines(tmp_path, bgzipped):
    """No .fai yet (ingest will build it): the contigs and lengths come from the FASTA's '>' lines, so a
    VCF of another build and one sharing no contig are refused as with an index, and a chr-prefix note is
    given; nothing is written beside the FASTA. A bgzipped FASTA is read through gzip."""
    import pysam

    seqs = write_fasta(tmp_path / "ref.fa", {"chr1": 20_000, "chr2": 5_000}, index=False)
    fa = tmp_path / "ref.fa"
    if bgzipped:
        pysam.tabix_compress(str(fa), str(tmp_path / "ref.fa.gz"))
        fa.unlink()
        fa = tmp_path / "ref.fa.gz"
    before = sorted(p.name for p in tmp_path.iterdir())
    _refused_as_grch37(tmp_path, fa, seqs["chr1"])
    write_mutect2(tmp_path / "p1.vcf", {"NC_000001.11": 20_000}, "GRCh38", seqs["chr1"], "NC_000001.11")
    res = run(tmp_path / "p1.vcf", "-r", fa, "--check-only")
    assert res.exit_code == 2 and "p1.vcf: none of the contigs it names (NC_000001.11) is in the reference" \
        in said(res), said(res)
    write_mutect2(tmp_path / "p1.vcf", {"1": 20_000, "2": 5_000}, "toy", seqs["chr1"], "1")
    res = run(tmp_path / "p1.vcf", "-r", fa, "--check-only")
    assert res.exit_code == 0, res.output
    assert f"without a chr prefix (1, 2), the reference {fa.name} with a chr prefix" in said(res), said(res)
    assert "has no index; ingest will build" in said(res) and "checked against the FASTA's own '>' lines" \
        in said(res), said(res)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "p1.vcf") == before


def test_header_lengths_agree_with_samtools_faidx_across_block_bounds(tmp_path):
    """The scan's names and lengths are the index's: descriptions after the name, a '>' inside one, CRLF
    line ends, a last line with no line end, a name given twice (htslib keeps the first), read in blocks
    of 1 to 7 bytes (every '>' line and line end cut somewhere) and in one."""
    import pysam

    from nanog1.genomics.fasta_index import read_fai
    from nanog1.genomics.reference_check import header_lengths

    body = (">chr1 AC:CM000663.2 LN:23 x>y\nACGTACGTAC\nGTACGTACGT\nACG\n>chr2\tdesc\nNNNNNNNNNN\nAC\n"
            ">chrUn_KI270302v1\nA\n>chr2\nACGTACGTAC\n>chrM\nACGTACGTAC\nACGTA")
    for name, text in (("lf.fa", body), ("crlf.fa", body.replace("\n", "\r\n"))):
        path = tmp_path / name
        path.write_bytes(text.encode())
        pysam.faidx(str(path))
        want = {e.name: e.length for e in read_fai(tmp_path / f"{name}.fai")}
        assert list(want) == ["chr1", "chr2", "chrUn_KI270302v1", "chrM"] and want["chr1"] == 23
        for chunk in (*range(1, 8), 1 << 20):
            assert header_lengths(path, chunk) == want, (name, chunk)


def test_a_damaged_bgzipped_fasta_without_an_index_is_refused_not_a_traceback(tmp_path):
    """Cut short (a download stopped halfway): the scan of its '>' lines cannot read it to its end, nor
    could ingest index it: a one-line error naming the file."""
    import pysam

    seqs = write_fasta(tmp_path / "ref.fa", {"chr1": 20_000, "chr2": 5_000}, index=False)
    pysam.tabix_compress(str(tmp_path / "ref.fa"), str(tmp_path / "whole.fa.gz"))
    data = (tmp_path / "whole.fa.gz").read_bytes()
    (tmp_path / "ref.fa.gz").write_bytes(data[: len(data) // 2])
    write_mutect2(tmp_path / "p1.vcf", {"chr1": 20_000}, "toy", seqs["chr1"], "chr1")
    res = run(tmp_path / "p1.vcf", "-r", tmp_path / "ref.fa.gz", "--check-only")
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), (res.output, res.exception)
    assert f"{tmp_path / 'ref.fa.gz'}: cannot read the reference FASTA (" in said(res), res.output


def _headerless(path, seq: str, chrom: str, n: int = 40, shift: int = 0, start: int = 500) -> None:
    """A headerless SigProfiler-style VCF (CHROM POS ID REF ALT, no ##contig line to tell its build): `n`
    SNVs on `chrom` whose REF is `seq`'s base there, or, with `shift`, the base `shift` along ACGT from it
    (calls made on another FASTA)."""
    rows = []
    for p in range(start, start + 97 * n, 97):
        ref = "ACGT"[("ACGT".index(seq[p - 1]) + shift) % 4] if p <= len(seq) else "A"
        rows.append(f"{chrom}\t{p}\tP1\t{ref}\t{'ACGT'[('ACGT'.index(ref) + 1) % 4]}")
    path.write_text("\n".join(rows) + "\n")


def test_first_records_whose_ref_is_not_the_fasta_base_are_refused_as_ingest_refuses_them(tmp_path, fasta):
    """A headerless VCF (no ##contig lengths to tell its build) whose REF alleles are not the FASTA's bases:
    ingest refuses it (REF mismatch, more than --max-skip-fraction), and --check-only passed it with 'no
    errors' (a QA run: SigProfiler's example VCFs against another FASTA). The first records' REF alleles
    are now read against the FASTA, through its index, and the refusal told first."""
    fa, seqs = fasta
    _headerless(tmp_path / "P1.vcf", seqs["chr1"], "chr1", shift=1)
    ran = run(tmp_path / "P1.vcf", "-r", fa, "-o", tmp_path / "c.h5ad", "-q")
    assert ran.exit_code == 2 and "ref_mismatch" in said(ran), ran.output
    res = run(tmp_path / "P1.vcf", "-r", fa, "--check-only")
    assert res.exit_code == 2, res.output
    assert ("P1.vcf: 40 of its first 40 calls on the reference's contigs do not match ref.fa (40 REF not the "
            "reference's base") in said(res), said(res)
    text = (tmp_path / "P1.vcf").read_text()  # a first record on a contig it lacks (a note) changes nothing
    (tmp_path / "P3.vcf").write_text("chr3\t100\tP1\tA\tC\n" + text)
    res = run(tmp_path / "P3.vcf", "-r", fa, "--check-only")
    assert res.exit_code == 2 and "(40 REF not the reference's base" in said(res), res.output
    _headerless(tmp_path / "P2.vcf", seqs["chr1"], "chr1")  # the calls of this FASTA: no note
    res = run(tmp_path / "P2.vcf", "-r", fa, "--check-only")
    assert res.exit_code == 0 and "reference:" not in res.output, res.output
    res = run(tmp_path / "P1.vcf", "-r", fa, "--check-only", "--max-skip-fraction", "1")
    assert res.exit_code == 0 and "reference: P1.vcf: 40 of its first 40 calls" in said(res), res.output


def test_first_records_past_the_end_of_the_fasta_contigs_are_refused(tmp_path, fasta):
    """Positions past the end of the FASTA's contig (calls of a larger genome against a small or wrong
    FASTA): ingest refuses every such call (out_of_range); --check-only says so first, with or without the
    FASTA's index (from its '>' lines)."""
    fa, seqs = fasta
    _headerless(tmp_path / "P1.vcf", seqs["chr2"], "chr2", start=6_000)  # chr2 has 5,000 bases
    ran = run(tmp_path / "P1.vcf", "-r", fa, "-o", tmp_path / "c.h5ad", "-q")
    assert ran.exit_code == 2 and "out_of_range" in said(ran), ran.output
    res = run(tmp_path / "P1.vcf", "-r", fa, "--check-only")
    assert res.exit_code == 2 and "40 past the end of their contig" in said(res), said(res)
    (tmp_path / "ref.fa.fai").unlink()
    res = run(tmp_path / "P1.vcf", "-r", fa, "--check-only")
    assert res.exit_code == 2 and "40 past the end of their contig" in said(res), said(res)


def _maf(path, seq: str, chrom: str = "chr1", n: int = 40) -> list[tuple[int, str]]:
    """A GDC-style MAF of `n` calls on `chrom` whose Reference_Allele is `seq`'s bases there: every fifth a
    2-base deletion (Start_Position its first deleted base), every seventh an insertion ('-': no reference
    base), the rest SNVs. Returns the (Start_Position, Reference_Allele) of the calls that carry bases."""
    cols = ["Hugo_Symbol", "Chromosome", "Start_Position", "End_Position", "Variant_Type", "Reference_Allele",
            "Tumor_Seq_Allele1", "Tumor_Seq_Allele2", "Tumor_Sample_Barcode"]
    rows, based = ["#version gdc-1.0.0", "\t".join(cols)], []
    for i, p in enumerate(range(500, 500 + 97 * n, 97)):
        if i % 7 == 3:
            kind, ref, alt, end = "INS", "-", "T", p + 1
        elif i % 5 == 1:
            kind, ref, alt, end = "DEL", seq[p - 1:p + 1], "-", p + 1
        else:
            kind, ref, end = "SNP", seq[p - 1], p
            alt = "ACGT"[("ACGT".index(ref) + 1) % 4]
        based += [(p, ref)] if ref != "-" else []
        rows.append("\t".join(map(str, ["G", chrom, p, end, kind, ref, ref, alt, "P1-T"])))
    path.write_text("\n".join(rows) + "\n")
    return based


def test_a_maf_whose_reference_alleles_are_not_the_fasta_bases_is_refused_as_a_vcf_is(tmp_path, fasta):
    """A MAF checked against a FASTA it was not called on: --check-only passed it and ingest refused it
    (REF mismatch). Its first records' Chromosome, Start_Position and Reference_Allele (SNVs and deletions;
    an insertion's '-' names no base) are now read against the FASTA as a VCF's are, and refused in the
    same words; against the FASTA whose bases they carry, it passes with no note."""
    fa, seqs = fasta
    based = _maf(tmp_path / "P1.maf", seqs["chr1"])
    res = run(tmp_path / "P1.maf", "-r", fa, "--check-only")
    assert res.exit_code == 0 and "no errors" in res.output and "reference:" not in res.output, res.output
    other = write_fasta(tmp_path / "other.fa", {"chr1": 20_000, "chr2": 5_000}, seed=11)["chr1"]
    wrong = sum(other[p - 1:p - 1 + len(ref)] != ref for p, ref in based)
    assert len(based) < 40 and wrong > 20, (len(based), wrong)
    ran = run(tmp_path / "P1.maf", "-r", tmp_path / "other.fa", "-o", tmp_path / "c.h5ad", "-q")
    assert ran.exit_code == 2 and "ref_mismatch" in said(ran), ran.output
    res = run(tmp_path / "P1.maf", "-r", tmp_path / "other.fa", "--check-only")
    assert res.exit_code == 2, res.output
    p, ref = next((p, ref) for p, ref in based if other[p - 1:p - 1 + len(ref)] != ref)
    assert (f"P1.maf: {wrong} of its first 40 calls on the reference's contigs do not match other.fa "
            f"({wrong} REF not the reference's base; first: chr1:{p:,} REF {ref}, the reference "
            f"{other[p - 1:p - 1 + len(ref)]})") in said(res), said(res)
    assert "Ingest would refuse the file (more than --max-skip-fraction" in said(res), said(res)


def test_a_maf_sharing_no_contig_with_the_fasta_is_refused_as_a_vcf_is(tmp_path, fasta):
    """A MAF on RefSeq accessions against a chr FASTA passed --check-only and was refused by ingest (every
    call on a contig the reference lacks); its first records' Chromosome values are now checked as a VCF's
    contigs are, and refused in the same words (a note with --max-skip-fraction 1)."""
    fa, seqs = fasta
    _maf(tmp_path / "P1.maf", seqs["chr1"], chrom="NC_000001.11")
    ran = run(tmp_path / "P1.maf", "-r", fa, "-o", tmp_path / "c.h5ad", "-q")
    assert ran.exit_code == 2 and "contigs the reference lacks" in said(ran), ran.output
    res = run(tmp_path / "P1.maf", "-r", fa, "--check-only")
    assert res.exit_code == 2, res.output
    assert (f"P1.maf: none of the contigs it names (NC_000001.11) is in the reference {fa}: the MAF names "
            "them as NC_000001.11 (no chromosome 1-22, X, Y or MT among them), the reference with a chr "
            "prefix (chr1, chr2)") in said(res), said(res)
    res = run(tmp_path / "P1.maf", "-r", fa, "--check-only", "--max-skip-fraction", "1")
    assert res.exit_code == 0 and "reference: P1.maf: none of the contigs" in said(res), res.output


def test_a_chr_less_maf_gets_the_chr_prefix_note_a_vcf_gets_and_firehose_23_is_x(tmp_path, fasta):
    """A MAF naming 1 against a FASTA naming chr1: ingest reads it (it spells Chromosome 1, matched to chr1
    by adding the prefix), so the check passes it with the note a VCF gets; a Firehose '23' is named as the
    X that ingest reads it as, a contig this FASTA lacks (its calls read without context)."""
    fa, seqs = fasta
    _maf(tmp_path / "P1.maf", seqs["chr1"], chrom="1")
    with open(tmp_path / "P1.maf", "a") as f:
        f.write("\t".join(["G", "23", "700", "700", "SNP", "A", "A", "C", "P1-T"]) + "\n")
    res = run(tmp_path / "P1.maf", "-r", fa, "--check-only")
    assert res.exit_code == 0, res.output
    assert ("reference: P1.maf: names contigs without a chr prefix (1, X), the reference ref.fa with a chr "
            "prefix (chr1, chr2): ingest matches them by name, as it reads them (1 is chr1)") in said(res), \
        said(res)
    assert ("reference: P1.maf: its first records name 1 contig(s) the reference ref.fa lacks (X): calls "
            "there are read without context") in said(res), said(res)
    ran = run(tmp_path / "P1.maf", "-r", fa, "-o", tmp_path / "c.h5ad")
    assert ran.exit_code == 0 and "1 call(s) on contigs the reference lacks (X 1)" in said(ran), said(ran)
