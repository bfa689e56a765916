"""A plain-gzip VCF (`gzip calls.vcf`, not bgzip) is read as a stream: nothing is decompressed to disk (a
multi-GB file filled /tmp with its copy), the calls are those of the plain file, and a cut-off or damaged
file is still one clear error naming it (QA #31)."""

from __future__ import annotations

import gzip
import tempfile
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.genomics.ingest import IngestOptions, ingest
from nanog1.genomics.variants import InputError
from nanog1.genomics.vcf import read_vcf
from tests.test_ingest_somatic import MUTECT2_META, write

#: Records of the larger files: their text (~1.5 MB) is many times a pipe's buffer (64 KiB).
MANY = 20_000


def mutect2_text(tmp_path, n: int, name: str = "p1.vcf") -> bytes:
    """A Mutect2 tumour/normal VCF of `n` SNVs on contig 1 (a normal and a tumour column: read by pysam,
    not the sites-only fast path); its bytes."""
    fields = "TLOD=12.3\tGT:AD\t0/0:30,0\t0/1:20,9"
    rows = [f"1\t{1000 + 3 * i}\t.\t{'ACGT'[i % 4]}\t{'CGTA'[i % 4]}\t.\tPASS\t{fields}" for i in range(n)]
    write(tmp_path / name, MUTECT2_META, ["P1-N", "P1-T"], rows)
    return (tmp_path / name).read_bytes()


def sites_text(tmp_path, n: int) -> bytes:
    """A sites-only VCF (no sample column: the pyarrow fast path) of `n` SNVs; its bytes."""
    head = ("##fileformat=VCFv4.2\n##contig=<ID=1,length=100000000>\n"
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    body = "".join(f"1\t{1000 + 3 * i}\t.\t{'ACGT'[i % 4]}\t{'CGTA'[i % 4]}\t.\tPASS\t.\n" for i in range(n))
    (tmp_path / "s1.vcf").write_text(head + body)
    return (tmp_path / "s1.vcf").read_bytes()


def same_table(a, b) -> bool:
    columns = ("sample", "chrom", "pos", "ref", "alt", "passed", "line")
    return all(np.array_equal(getattr(a, c), getattr(b, c)) for c in columns) and a.skips == b.skips


@pytest.mark.parametrize("kind", [mutect2_text, sites_text])
def test_a_plain_gzip_vcf_is_read_without_a_copy_in_the_temporary_folder(tmp_path, monkeypatch, kind):
    """With no usable temporary folder (as /tmp full of a copy was), a plain-gzip VCF still reads, to the
    same records, lines and skips as its plain text."""
    text = kind(tmp_path, MANY)
    plain = next(tmp_path.glob("*.vcf"))
    (tmp_path / "gz").mkdir()
    zipped = tmp_path / "gz" / (plain.name + ".gz")
    zipped.write_bytes(gzip.compress(text))
    expected = read_vcf(plain)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-temporary-folder"))
    got = read_vcf(zipped)
    assert len(got) == MANY and same_table(got, expected)


@pytest.mark.parametrize("kind", [mutect2_text, sites_text])
def test_a_cut_off_plain_gzip_vcf_is_one_clear_error_naming_it(tmp_path, kind):
    """Half a plain-gzip VCF (an interrupted download): the read stops with 'truncated or damaged gzip file'
    naming the file, not with a malformed record at the cut; ingest says it in one line (exit 2), and under
    --on-error skip counts it as an unreadable file, as before."""
    text = kind(tmp_path, MANY)
    whole = gzip.compress(text)
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match=r"cut\.vcf\.gz: truncated or damaged gzip file") as err:
        read_vcf(cut)
    assert err.value.line is None, str(err.value)
    res = CliRunner().invoke(app, ["ingest", str(cut), "-o", str(tmp_path / "c.h5ad")])
    said = " ".join(res.output.split())
    assert res.exit_code == 2 and said.count("truncated or damaged gzip file") == 1, res.output
    assert "malformed" not in said and "Traceback" not in res.output, res.output
    report = ingest([cut], None, None, tmp_path / "c.h5ad", IngestOptions(on_error="skip"))
    assert report.skips["unreadable_file"] == 1
    assert "truncated or damaged gzip file" in report.files[0]["status"], report.files


def test_a_damaged_plain_gzip_vcf_is_named(tmp_path):
    """Bytes changed inside the compressed stream (a bad disk, a bad copy): zlib's error, named with the
    file, whatever the reader made of the text before it."""
    whole = bytearray(gzip.compress(mutect2_text(tmp_path, MANY)))
    middle = len(whole) // 2
    whole[middle:middle + 64] = bytes(64)
    (tmp_path / "bad.vcf.gz").write_bytes(bytes(whole))
    with pytest.raises(InputError, match=r"bad\.vcf\.gz: truncated or damaged gzip file"):
        read_vcf(tmp_path / "bad.vcf.gz")


def test_a_reader_that_stops_early_does_not_wait_on_the_stream(tmp_path):
    """A malformed record near the start of a large plain-gzip VCF stops the read under --on-error stop: the
    error is the record's (file and line), at once; the stream feeding the reader is ended, not left blocked
    on a full pipe."""
    text = mutect2_text(tmp_path, MANY).decode()
    lines = text.splitlines(keepends=True)
    first = next(i for i, t in enumerate(lines) if not t.startswith("#"))
    lines[first + 2] = "1\tabc\t.\tA\tC\t.\tPASS\t.\tGT:AD\t0/0:30,0\t0/1:20,9\n"
    (tmp_path / "early.vcf.gz").write_bytes(gzip.compress("".join(lines).encode()))
    start = time.perf_counter()
    with pytest.raises(InputError, match=rf"early\.vcf\.gz:{first + 3}: malformed VCF record"):
        read_vcf(tmp_path / "early.vcf.gz")
    assert time.perf_counter() - start < 10


def test_the_sites_only_fast_path_does_not_hold_a_plain_gzip_vcfs_whole_text(tmp_path, monkeypatch):
    """The sites-only reader (pyarrow) parses a plain-gzip VCF a piece at a time as it is decompressed: the
    Python memory it holds at its peak is a fraction of the text (it held the whole text: 1.37 GiB at the
    peak of a 200 MB file), and the records are those of the plain file read whole and of pysam."""
    import tracemalloc

    import nanog1.genomics.vcf_sites as vcf_sites

    head = ("##fileformat=VCFv4.2\n##contig=<ID=1,length=100000000>\n"
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    info = "NOTE=" + "x" * 1000  # long lines: the text, not the records kept, is what should not be held
    body = "".join(f"1\t{1000 + 3 * i}\t.\t{'ACGT'[i % 4]}\t{'CGTA'[i % 4]}\t.\tPASS\t{info}\n"
                   for i in range(4000))
    text = (head + body).encode()
    (tmp_path / "s1.vcf").write_bytes(text)
    (tmp_path / "s1.vcf.gz").write_bytes(gzip.compress(text))
    monkeypatch.setattr(vcf_sites, "SITES_CHUNK", 1 << 16)
    vcf_sites.collect_sites(tmp_path / "s1.vcf", 3)  # pyarrow's modules imported before the count starts
    tracemalloc.start()
    try:
        raw = vcf_sites.collect_sites(tmp_path / "s1.vcf.gz", 3)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert raw is not None and len(raw.pos) == 4000
    assert peak < len(text) / 4, f"peak {peak:,} bytes for a text of {len(text):,}"
    streamed = read_vcf(tmp_path / "s1.vcf.gz")
    monkeypatch.setattr(vcf_sites, "SITES_CHUNK", 1 << 30)
    assert same_table(streamed, read_vcf(tmp_path / "s1.vcf"))
    monkeypatch.setattr(vcf_sites, "collect_sites", lambda *a: None)
    assert same_table(streamed, read_vcf(tmp_path / "s1.vcf"))


@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_the_sites_only_fast_path_reads_alike_in_any_pieces(tmp_path, monkeypatch, chunk):
    """Pieces of any size (a line cut by a piece's end waits for its end; the header may span pieces) give
    the records of one whole read; a line pysam must read (a symbolic ALT, a blank line, a negative POS, a
    CR line end) anywhere in the file, or no record at all, leaves the whole file to pysam as before."""
    import nanog1.genomics.vcf_sites as vcf_sites

    head = ("##fileformat=VCFv4.2\n##contig=<ID=1,length=60000>\n"
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    rows = ["1\t100\t.\tA\tC\t30\tPASS\tDP=3", "1\t150\t.\ta\tg\t.\t.\t.", "1\t250\t.\tC\tA,G\t.\tPASS\t.",
            "chr9\t350\t.\tT\tA\t.\tLowQual;PASS\t.", "1\t400\t.\tACG\tA\t.\tq10\t."]
    for end in ("\n", ""):  # the last line with and without its newline
        (tmp_path / "s.vcf").write_text(head + "\n".join(rows) + end)
        (tmp_path / "s.vcf.gz").write_bytes(gzip.compress((tmp_path / "s.vcf").read_bytes()))
        whole = vcf_sites.collect_sites(tmp_path / "s.vcf", 3)
        monkeypatch.setattr(vcf_sites, "SITES_CHUNK", chunk)
        for path in (tmp_path / "s.vcf", tmp_path / "s.vcf.gz"):
            pieces = vcf_sites.collect_sites(path, 3)
            for field in ("chrom", "pos", "filters", "line"):
                assert list(getattr(pieces, field)) == list(getattr(whole, field)), (field, path, end)
            assert list(pieces.ref) == list(whole.ref) and list(pieces.alt) == list(whole.alt)
            assert list(pieces.multi) == list(whole.multi)
            assert len(read_vcf(path)) == 6
        monkeypatch.setattr(vcf_sites, "SITES_CHUNK", 1 << 24)
    odd_lines = ("1\t500\t.\tA\t<DEL>\t.\tPASS\t.", "", "1\t-5\t.\tA\tC\t.\tPASS\t.",
                 "1\t5\t.\tA\tC\t.\tPASS\t.\r")
    for odd in odd_lines:
        for at in (0, len(rows)):
            (tmp_path / "odd.vcf").write_text(head + "\n".join(rows[:at] + [odd] + rows[at:]) + "\n")
            monkeypatch.setattr(vcf_sites, "SITES_CHUNK", chunk)
            assert vcf_sites.collect_sites(tmp_path / "odd.vcf", 3) is None, (odd, at)
    (tmp_path / "empty.vcf").write_text(head)
    assert vcf_sites.collect_sites(tmp_path / "empty.vcf", 3) is None


@pytest.mark.timeout(60)
def test_the_feed_ends_though_a_reader_still_holds_the_pipe(tmp_path):
    """pysam reads a duplicate of the pipe's reading end: with a VariantFile still open on it (a reader
    stopped without closing, its header read and the rest of the text unread), `finish` closed only its own
    end, so the feed stayed blocked on the full pipe and `finish` waited on it for ever; the feed now ends
    when told, and its thread is gone."""
    import threading

    import pysam

    from nanog1.genomics.gzip_stream import GzipStream

    (tmp_path / "big.vcf.gz").write_bytes(gzip.compress(mutect2_text(tmp_path, MANY)))
    stream = GzipStream(tmp_path / "big.vcf.gz")
    held = pysam.VariantFile(stream.reader)  # its own copy of the reading end, left open
    try:
        done = threading.Thread(target=stream.finish, daemon=True)
        done.start()
        done.join(10)
        assert not done.is_alive(), "finish() still waiting on the feed"
        assert not stream._thread.is_alive()
    finally:
        held.close()
