"""A bgzipped sites-only VCF (the PCAWG consensus `*.somatic.snv_mnv.vcf.gz` files) takes the fast reader,
as the plain and plain-gzip files do: pysam read it record by record, 3.5 times slower. Its records, lines,
skips and catalogues are pysam's; an index beside it changes nothing; a BCF is still pysam's; a cut-off or
damaged bgzip file is one error naming it, on either path (a damaged block was a "Closing failed"
traceback, and under --on-error skip a count of malformed lines that never ended) (QA #31)."""

from __future__ import annotations

import struct

import numpy as np
import pysam
import pytest
from typer.testing import CliRunner

import nanog1.genomics.vcf as vcf
import nanog1.genomics.vcf_sites as vcf_sites
from nanog1.cli import app
from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.ingest import IngestOptions, ingest
from nanog1.genomics.synthetic import GenomeSpec, make_genome
from nanog1.genomics.variants import InputError
from tests.test_vcf_gzip_stream import mutect2_text, same_table

#: The header of a PCAWG consensus SNV/MNV file (VCFv4.1, sites only, chr-less hs37d5 contigs, INFO of the
#: callers' consensus, FILTER LOWSUPPORT and the OxoG / remapping / bias filters).
PCAWG_HEAD = """##fileformat=VCFv4.1
##INFO=<ID=Callers,Number=.,Type=String,Description="Callers that made this call">
##INFO=<ID=NumCallers,Number=1,Type=Integer,Description="Number of callers that made this call">
##INFO=<ID=VAF,Number=1,Type=Float,Description="Variant allele fraction">
##INFO=<ID=t_alt_count,Number=1,Type=Integer,Description="Tumour alt count">
##INFO=<ID=t_ref_count,Number=1,Type=Integer,Description="Tumour ref count">
##INFO=<ID=dbsnp,Number=0,Type=Flag,Description="Known polymorphism in dbSNP">
##INFO=<ID=1000genomes_AF,Number=1,Type=Float,Description="Thousand Genomes phase 3 allele frequency">
##INFO=<ID=snv_near_indel,Number=0,Type=Flag,Description="True if within a few bp of an indel">
##FILTER=<ID=LOWSUPPORT,Description="Not called by enough callers in ensemble">
##FILTER=<ID=OXOGFAIL,Description="Failed OXOG oxidative artifact filter">
##FILTER=<ID=REMAPFAIL,Description="Mapped to different location with remapping">
##FILTER=<ID=BSEQ,Description="Failed strand bias filter">
{contigs}
##reference=ftp://ftp.sanger.ac.uk/pub/project/PanCancer/genome.fa.gz
##source=PCAWG consensus
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO
"""
FILTERS = ["PASS", "PASS", "PASS", "LOWSUPPORT", "LOWSUPPORT;OXOGFAIL", "REMAPFAIL", "BSEQ", "."]
LENGTH = 60_000


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pcawg")
    return folder / "g.fa", make_genome(folder / "g.fa", GenomeSpec(n_contigs=2, length=LENGTH, seed=31))


def pcawg_text(seqs: dict[str, str], n: int = 3000) -> str:
    """A PCAWG-consensus-like sites-only VCF of about `n` records on contigs '1' and '2': SNVs, doublets,
    multi-allelic lines, a deletion and an insertion, FILTER PASS, '.' and others, INFO as the consensus
    writes it; REF bases from `seqs`."""
    rng = np.random.default_rng(31)
    contigs = "\n".join(f"##contig=<ID={c},length={LENGTH}>" for c in seqs)
    rows = []
    for chrom, seq in seqs.items():
        for pos in np.sort(rng.choice(np.arange(100, LENGTH - 100), n // 2, replace=False)).tolist():
            ref = seq[pos - 1]
            others = [b for b in "ACGT" if b != ref]
            kind = int(rng.integers(20))
            if kind == 0:  # a doublet (MNV)
                ref, alt = seq[pos - 1:pos + 1], others[0] + [b for b in "ACGT" if b != seq[pos]][1]
            elif kind == 1:  # two ALTs on one line
                alt = f"{others[0]},{others[2]}"
            elif kind == 2:  # a deletion, as the consensus indel files write it
                ref, alt = seq[pos - 1:pos + 2], ref
            elif kind == 3:
                alt = ref + "TG"
            else:
                alt = others[int(rng.integers(3))]
            alt_n, ref_n = int(rng.integers(3, 40)), int(rng.integers(10, 80))
            info = (f"Callers=broad,dkfz,muse,sanger;NumCallers={int(rng.integers(1, 5))};"
                    f"VAF={alt_n / (alt_n + ref_n):.3f};t_alt_count={alt_n};t_ref_count={ref_n}"
                    + (";dbsnp;1000genomes_AF=0.01" if kind == 5 else "")
                    + (";snv_near_indel" if kind == 6 else ""))
            rows.append(f"{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\t{FILTERS[int(rng.integers(len(FILTERS)))]}\t{info}")
    return PCAWG_HEAD.format(contigs=contigs) + "\n".join(rows) + "\n"


def bgzipped(tmp_path, text: str, name: str) -> tuple:
    """`text` written as NAME.vcf and bgzipped (pysam.tabix_compress, as `bgzip` does) to NAME.vcf.gz."""
    (tmp_path / f"{name}.vcf").write_text(text)
    pysam.tabix_compress(str(tmp_path / f"{name}.vcf"), str(tmp_path / f"{name}.vcf.gz"), force=True)
    return tmp_path / f"{name}.vcf", tmp_path / f"{name}.vcf.gz"


def read_by_pysam(monkeypatch, path, **kw):
    """`path` read with the fast reader turned off: pysam's records, as every bgzipped file was read."""
    with monkeypatch.context() as m:
        m.setattr(vcf_sites, "collect_sites", lambda *a: None)
        return vcf.read_vcf(path, **kw)


def refuse_pysam(monkeypatch) -> None:
    """Make the pysam record loop fail: what reads now must be the fast reader."""
    def refused(*a, **kw):
        raise AssertionError("read by pysam record by record, not by the sites-only fast reader")

    monkeypatch.setattr(vcf, "_collect", refused)


@pytest.mark.parametrize("chunk", [1 << 24, 1 << 15])
def test_a_bgzipped_pcawg_style_vcf_takes_the_fast_reader_to_pysams_records(genome, tmp_path, monkeypatch,
                                                                            chunk):
    """The consensus-style file bgzipped (many BGZF blocks; in 32 KiB pieces too): records, lines, FILTER,
    multi-allelic splits, skips and (compatible mode) duplicates as pysam reads them, and the plain text's,
    with pysam's record loop made to fail."""
    fasta, seqs = genome
    plain, zipped = bgzipped(tmp_path, pcawg_text(seqs), "DO1234.consensus.somatic.snv_mnv")
    assert len(bgzf_blocks(zipped.read_bytes())) > 3  # several BGZF blocks (the last: the EOF marker)
    expected = {compat: read_by_pysam(monkeypatch, zipped, compat=compat) for compat in (False, True)}
    monkeypatch.setattr(vcf_sites, "SITES_CHUNK", chunk)
    refuse_pysam(monkeypatch)
    for compat in (False, True):
        got = vcf.read_vcf(zipped, compat=compat)
        assert len(got) > 2500 and same_table(got, expected[compat]), compat
        assert same_table(got, vcf.read_vcf(plain, compat=compat))
    table = expected[False]
    assert not table.passed.all() and table.passed.sum() > len(table) / 2
    assert {"1", "2"} == set(table.chrom) and (table.sample == "DO1234.consensus.somatic.snv_mnv").all()


def test_a_bgzipped_sites_only_vcf_ingests_to_pysams_catalogues_with_or_without_an_index(genome, tmp_path,
                                                                                         monkeypatch):
    """`nanog1 ingest` of the bgzipped consensus-style file gives pysam's catalogues (SBS, DBS, ID), with a
    .tbi or .csi beside it or none, all through the fast reader."""
    fasta, seqs = genome
    _, zipped = bgzipped(tmp_path, pcawg_text(seqs), "DO1")
    with monkeypatch.context() as m:
        m.setattr(vcf_sites, "collect_sites", lambda *a: None)
        ingest([zipped], fasta, None, tmp_path / "pysam.h5ad")
    expected = read_cohort(tmp_path / "pysam.h5ad")
    assert expected.X.sum() > 2000
    refuse_pysam(monkeypatch)
    for index in (None, "tbi", "csi"):
        if index is not None:
            pysam.tabix_index(str(zipped), preset="vcf", csi=index == "csi", force=True)
            assert zipped.with_name(zipped.name + f".{index}").exists()
        ingest([zipped], fasta, None, tmp_path / "fast.h5ad")
        got = read_cohort(tmp_path / "fast.h5ad")
        assert list(got.obs_names) == list(expected.obs_names) == ["DO1"], index
        assert list(got.var_names) == list(expected.var_names) and (got.X == expected.X).all(), index


def test_a_bcf_is_still_read_by_pysam(genome, tmp_path, monkeypatch):
    """A BCF (BGZF too) never reaches the text reader: its records are those of the bgzipped VCF."""
    fasta, seqs = genome
    _, zipped = bgzipped(tmp_path, pcawg_text(seqs, 400), "DO1")
    with pysam.VariantFile(str(zipped)) as src, pysam.VariantFile(str(tmp_path / "DO1.bcf"), "wb",
                                                                  header=src.header) as dst:
        for rec in src:
            dst.write(rec)
    fast = vcf.read_vcf(zipped)

    def refused(*a):
        raise AssertionError("a BCF handed to the text reader")

    monkeypatch.setattr(vcf_sites, "collect_sites", refused)
    bcf = vcf.read_vcf(tmp_path / "DO1.bcf")
    assert len(bcf) == len(fast) > 400 and bcf.skips == fast.skips
    for column in ("sample", "chrom", "pos", "ref", "alt", "passed"):  # a BCF's lines are record numbers
        assert np.array_equal(getattr(bcf, column), getattr(fast, column)), column


def bgzf_blocks(data: bytes) -> list[int]:
    """Offsets of a BGZF file's blocks (each gzip member's BSIZE field: bytes 16-17 of its header)."""
    starts, at = [], 0
    while at < len(data):
        starts.append(at)
        at += struct.unpack_from("<H", data, at + 16)[0] + 1
    return starts


def sites_text(tmp_path, n: int) -> bytes:
    """A sites-only VCF of `n` SNVs (the fast reader's), its bytes."""
    head = ("##fileformat=VCFv4.2\n##contig=<ID=1,length=100000000>\n"
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    return (head + "".join(f"1\t{1000 + 3 * i}\t.\t{'ACGT'[i % 4]}\t{'CGTA'[i % 4]}\t.\tPASS\tDP={i}\n"
                           for i in range(n))).encode()


def sites_symbolic_first(tmp_path, n: int) -> bytes:
    """The same with a symbolic ALT on its first record: the fast reader gives the file to pysam at once."""
    lines = sites_text(tmp_path, n).decode().splitlines(keepends=True)
    lines[3] = "1\t999\t.\tA\t<DEL>\t.\tPASS\t.\n"
    return "".join(lines).encode()


def mutect2_bytes(tmp_path, n: int) -> bytes:
    """A Mutect2 tumour/normal VCF (pysam's to read), its bytes."""
    return mutect2_text(tmp_path, n, "m.vcf")


KINDS = [sites_text, sites_symbolic_first, mutect2_bytes]


def bgzip_bytes(tmp_path, text: bytes) -> bytes:
    (tmp_path / "whole.vcf").write_bytes(text)
    pysam.tabix_compress(str(tmp_path / "whole.vcf"), str(tmp_path / "whole.vcf.gz"), force=True)
    return (tmp_path / "whole.vcf.gz").read_bytes()


@pytest.mark.parametrize("kind", KINDS)
def test_a_cut_off_bgzip_vcf_is_one_clear_error_naming_it(tmp_path, kind):
    """Half a bgzipped VCF (an interrupted download; htslib finds no BGZF EOF marker), or one cut at a block's
    end: 'truncated or damaged gzip file' naming the file, no line; ingest says it once (exit 2), and under
    --on-error skip counts an unreadable file."""
    whole = bgzip_bytes(tmp_path, kind(tmp_path, 20_000))
    blocks = bgzf_blocks(whole)
    assert len(blocks) > 4
    for cut in (len(whole) // 2, blocks[len(blocks) // 2]):
        (tmp_path / "cut.vcf.gz").write_bytes(whole[:cut])
        for on_error in ("stop", "skip"):
            with pytest.raises(InputError, match=r"cut\.vcf\.gz: truncated or damaged gzip file") as err:
                vcf.read_vcf(tmp_path / "cut.vcf.gz", on_error=on_error)
            assert err.value.line is None, str(err.value)
    res = CliRunner().invoke(app, ["ingest", str(tmp_path / "cut.vcf.gz"), "-o", str(tmp_path / "c.h5ad")])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and said.count("truncated or damaged gzip file") == 1, res.output
    assert "Traceback" not in res.output, res.output
    skip = IngestOptions(on_error="skip")
    report = ingest([tmp_path / "cut.vcf.gz"], None, None, tmp_path / "c.h5ad", skip)
    assert report.skips["unreadable_file"] == 1
    assert "truncated or damaged gzip file" in report.files[0]["status"], report.files


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", KINDS)
def test_a_bgzip_vcf_with_a_damaged_middle_block_is_one_clear_error_naming_it(tmp_path, kind):
    """Bytes zeroed inside a middle block's compressed data (a bad disk, a bad copy): one error naming the
    file, under both --on-error values, whichever reader meets it (pysam's was an OSError 'Closing failed'
    traceback, and under skip a malformed-line count that grew until memory ran out)."""
    whole = bytearray(bgzip_bytes(tmp_path, kind(tmp_path, 20_000)))
    blocks = bgzf_blocks(bytes(whole))
    middle = blocks[len(blocks) // 2] + 100
    whole[middle:middle + 64] = bytes(64)
    (tmp_path / "bad.vcf.gz").write_bytes(bytes(whole))
    for on_error in ("stop", "skip"):
        with pytest.raises(InputError, match=r"bad\.vcf\.gz: truncated or damaged gzip file") as err:
            vcf.read_vcf(tmp_path / "bad.vcf.gz", on_error=on_error)
        assert err.value.line is None, str(err.value)
    skip = IngestOptions(on_error="skip")
    report = ingest([tmp_path / "bad.vcf.gz"], None, None, tmp_path / "b.h5ad", skip)
    assert report.skips["unreadable_file"] == 1
    assert "truncated or damaged gzip file" in report.files[0]["status"], report.files


@pytest.mark.parametrize("kind", KINDS)
def test_a_bgzip_vcf_with_a_damaged_first_block_is_named_damaged_not_headerless(tmp_path, kind):
    """Bytes changed inside the first block, the one that holds the header: htslib reads no header, and the
    error said "not a readable VCF/BCF, or no #CHROM header" of a file whose header is whole; it is the
    damaged gzip file it is, under both --on-error values and in ingest's table (QA #31)."""
    whole = bytearray(bgzip_bytes(tmp_path, kind(tmp_path, 20_000)))
    assert len(bgzf_blocks(bytes(whole))) > 4
    whole[60:124] = bytes(b ^ 0x5A for b in whole[60:124])
    (tmp_path / "head.vcf.gz").write_bytes(bytes(whole))
    for on_error in ("stop", "skip"):
        with pytest.raises(InputError, match=r"head\.vcf\.gz: truncated or damaged gzip file") as err:
            vcf.read_vcf(tmp_path / "head.vcf.gz", on_error=on_error)
        assert "#CHROM" not in str(err.value), str(err.value)
    res = CliRunner().invoke(app, ["ingest", str(tmp_path / "head.vcf.gz"), "-o", str(tmp_path / "h.h5ad")])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and "truncated or damaged gzip file" in said and "#CHROM" not in said, said
    skip = IngestOptions(on_error="skip")
    report = ingest([tmp_path / "head.vcf.gz"], None, None, tmp_path / "h.h5ad", skip)
    assert "truncated or damaged gzip file" in report.files[0]["status"], report.files
