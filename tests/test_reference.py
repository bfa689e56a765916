"""The reference: a stale .fai is rebuilt or refused, and the cached contigs equal the FASTA's."""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil

import numpy as np
import pysam
import pytest

from nanog1.genomics import fasta_index, reference_cache
from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.ingest import IngestOptions, ingest
from nanog1.genomics.reference import Reference, open_reference
from nanog1.genomics.synthetic import GenomeSpec, make_genome, sample_records, write_vcf
from nanog1.genomics.variants import InputError


@pytest.fixture(autouse=True)
def _cache_beside_fasta(monkeypatch):
    monkeypatch.delenv(reference_cache.ENV, raising=False)


def _stale_world(tmp_path):
    """genome.fa rewritten (longer contigs) after indexing, keeping the old .fai; a VCF of the new one.

    With main's reader before this fix, 594 of 800 records were skipped as out of range and 115 as
    REF mismatches (the second contig read from the wrong offsets): 80 % of the file lost, exit 0."""
    make_genome(tmp_path / "genome.fa", GenomeSpec(length=30_000, seed=1))
    old_fai = (tmp_path / "genome.fa.fai").read_text()
    seqs = make_genome(tmp_path / "genome.fa", GenomeSpec(length=90_000, seed=2))
    (tmp_path / "genome.fa.fai").write_text(old_fai)
    records = sample_records(np.random.default_rng(3), seqs, 800)
    write_vcf(tmp_path / "s.vcf", records, seqs)
    return seqs


def _cohort_counts(vcf, fasta, out) -> np.ndarray:
    ingest([vcf], fasta, None, out, IngestOptions())
    return np.asarray(read_cohort(out).X).astype(np.int64)


def _fresh_counts(tmp_path) -> np.ndarray:
    """Counts against an untouched copy of the same genome with its own fresh index."""
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    make_genome(fresh / "genome.fa", GenomeSpec(length=90_000, seed=2))
    return _cohort_counts(tmp_path / "s.vcf", fresh / "genome.fa", fresh / "c.h5ad")


def test_stale_fai_is_rebuilt_and_counts_match_a_fresh_index(tmp_path):
    _stale_world(tmp_path)
    assert fasta_index.index_problem(tmp_path / "genome.fa", tmp_path / "genome.fa.fai") is not None
    want = _fresh_counts(tmp_path)
    assert want.sum() > 500
    got = _cohort_counts(tmp_path / "s.vcf", tmp_path / "genome.fa", tmp_path / "c.h5ad")
    np.testing.assert_array_equal(got, want)
    assert fasta_index.index_problem(tmp_path / "genome.fa", tmp_path / "genome.fa.fai") is None


def test_stale_fai_in_a_read_only_folder_is_refused_naming_both_files(tmp_path, monkeypatch):
    _stale_world(tmp_path)
    monkeypatch.setattr(fasta_index, "can_write", lambda folder: False)
    with pytest.raises(InputError) as err:
        Reference(tmp_path / "genome.fa")
    assert str(tmp_path / "genome.fa.fai") in str(err.value)
    assert f"FASTA {tmp_path / 'genome.fa'}" in str(err.value)


@pytest.mark.parametrize(
    "change",
    ["append contig", "rewrap lines", "rename contig", "drop last line"],
)
def test_index_checks_catch_each_kind_of_change(tmp_path, change):
    fa = tmp_path / "g.fa"
    fa.write_text(">1 first\n" + "ACGT" * 30 + "A\n>2\n" + "ACGTT" * 20 + "\n")
    pysam.faidx(str(fa))
    assert fasta_index.index_problem(fa, tmp_path / "g.fa.fai") is None
    text = fa.read_text()
    lines = text.splitlines()
    if change == "append contig":
        text += ">3\nACGT\n"
    elif change == "rewrap lines":
        wrapped = "\n".join(lines[1][i : i + 50] for i in range(0, len(lines[1]), 50))
        text = "\n".join([">1 first", wrapped, *lines[2:]]) + "\n"
    elif change == "rename contig":
        text = text.replace(">2\n", ">chr2\n")
    else:
        text = text[: text.rindex("ACGTT") - 10] + "\n"
    fa.write_text(text)
    assert fasta_index.index_problem(fa, tmp_path / "g.fa.fai") is not None


def test_multi_line_contigs_long_headers_and_crlf_pass_the_check(tmp_path):
    fa = tmp_path / "g.fa"
    seq = "ACGTTGCA" * 40 + "ACG"
    body = "\r\n".join(seq[i : i + 60] for i in range(0, len(seq), 60))
    fa.write_bytes(f">a {'long description ' * 60}\r\n{body}\r\n>b\r\n{seq[:120]}".encode())
    pysam.faidx(str(fa))
    assert fasta_index.index_problem(fa, tmp_path / "g.fa.fai") is None
    assert Reference(fa).raw("a").tobytes().decode() == seq


def test_cache_is_built_once_beside_the_fasta_and_only_for_used_contigs(tmp_path):
    seqs = make_genome(tmp_path / "g.fa", GenomeSpec(n_contigs=3, length=20_000, seed=4))
    ref = Reference(tmp_path / "g.fa")
    assert ref.raw("2").tobytes().decode() == seqs["2"]
    built = list((tmp_path / "g.fa.nanog1").glob("*/*.npy"))
    assert [p.name for p in built] == ["1.npy"]  # contig '2' is the second contig
    assert built[0].stat().st_mode & 0o040
    stamp = built[0].stat().st_mtime_ns
    again = Reference(tmp_path / "g.fa")
    assert again.raw("2").tobytes().decode() == seqs["2"]
    assert built[0].stat().st_mtime_ns == stamp
    assert isinstance(again.raw("2").base, np.memmap) or again.raw("2").base is not None


def test_changed_fasta_never_reuses_the_old_cache(tmp_path):
    make_genome(tmp_path / "g.fa", GenomeSpec(length=20_000, seed=4))
    Reference(tmp_path / "g.fa").raw("1")
    seqs = make_genome(tmp_path / "g.fa", GenomeSpec(length=20_000, seed=5))  # same lengths and layout
    os.utime(tmp_path / "g.fa", ns=(1, 10**18))
    assert Reference(tmp_path / "g.fa").raw("1").tobytes().decode() == seqs["1"]
    assert len(list((tmp_path / "g.fa.nanog1").iterdir())) == 1


def test_cache_goes_to_the_user_cache_when_the_fasta_folder_is_read_only(tmp_path, monkeypatch):
    seqs = make_genome(tmp_path / "g.fa", GenomeSpec(length=20_000, seed=4))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(reference_cache, "can_write", lambda folder: folder != tmp_path)
    assert Reference(tmp_path / "g.fa").raw("1").tobytes().decode() == seqs["1"]
    assert not (tmp_path / "g.fa.nanog1").exists()
    assert len(list((tmp_path / "xdg" / "nanog1" / "references").glob("g.fa-*/*/0.npy"))) == 1


def test_cache_can_be_moved_or_turned_off(tmp_path, monkeypatch):
    seqs = make_genome(tmp_path / "g.fa", GenomeSpec(length=20_000, seed=4))
    monkeypatch.setenv(reference_cache.ENV, "off")
    assert Reference(tmp_path / "g.fa").raw("1").tobytes().decode() == seqs["1"]
    assert not (tmp_path / "g.fa.nanog1").exists()
    monkeypatch.setenv(reference_cache.ENV, str(tmp_path / "elsewhere"))
    assert Reference(tmp_path / "g.fa").raw("1").tobytes().decode() == seqs["1"]
    assert len(list((tmp_path / "elsewhere").glob("*/*/0.npy"))) == 1


def test_bgzipped_fasta_caches_the_same_letters(tmp_path):
    seqs = make_genome(tmp_path / "g.fa", GenomeSpec(length=20_000, seed=4))
    pysam.tabix_compress(str(tmp_path / "g.fa"), str(tmp_path / "g.fa.gz"))
    ref = Reference(tmp_path / "g.fa.gz")  # no index yet: built, with its .gzi
    assert (tmp_path / "g.fa.gz.gzi").exists()
    assert ref.raw("2").tobytes().decode() == seqs["2"]
    os.utime(tmp_path / "g.fa.gz.fai", ns=(1, 1))  # older than the FASTA: rebuilt
    assert fasta_index.index_problem(tmp_path / "g.fa.gz", tmp_path / "g.fa.gz.fai") is not None
    assert Reference(tmp_path / "g.fa.gz").raw("2").tobytes().decode() == seqs["2"]
    assert fasta_index.index_problem(tmp_path / "g.fa.gz", tmp_path / "g.fa.gz.fai") is None


def _build(fasta: str) -> str:
    os.environ.pop(reference_cache.ENV, None)
    return Reference(fasta).raw("1").tobytes().decode()


def test_two_processes_building_at_once_both_get_the_contig(tmp_path):
    seqs = make_genome(tmp_path / "g.fa", GenomeSpec(length=200_000, seed=4))
    with mp.get_context("spawn").Pool(2) as pool:
        got = pool.map(_build, [str(tmp_path / "g.fa")] * 2)
    assert got == [seqs["1"], seqs["1"]]
    assert not list((tmp_path / "g.fa.nanog1").glob("*/.*.tmp"))
    assert _build(str(tmp_path / "g.fa")) == seqs["1"]


def test_open_reference_is_shared_until_the_fasta_changes(tmp_path):
    make_genome(tmp_path / "g.fa", GenomeSpec(length=20_000, seed=4))
    first = open_reference(tmp_path / "g.fa")
    assert open_reference(tmp_path / "g.fa") is first
    shutil.copy(tmp_path / "g.fa", tmp_path / "copy.fa")
    os.replace(tmp_path / "copy.fa", tmp_path / "g.fa")
    assert open_reference(tmp_path / "g.fa") is not first


@pytest.mark.parametrize("cache", ["beside", "off"])
def test_spans_read_the_contig_with_zeros_off_its_ends(tmp_path, monkeypatch, cache):
    """`Reference.spans` (preads from the cache, or slices of the in-memory contig when caching is off)
    gives each span's letters end to end, 0 for the bases before the start or after the end."""
    seqs = make_genome(tmp_path / "g.fa", GenomeSpec(length=5_000, seed=6))
    if cache == "off":
        monkeypatch.setenv(reference_cache.ENV, "off")
    ref = Reference(tmp_path / "g.fa")
    text = seqs["1"].encode()
    rng = np.random.default_rng(0)
    starts = np.concatenate([rng.integers(-30, len(text) + 30, 200), [-5000, len(text) + 10, 0]])
    lengths = np.concatenate([rng.integers(0, 80, 200), [10, 10, len(text) + 40]])
    want = b"".join(
        bytes(text[i] if 0 <= i < len(text) else 0 for i in range(s, s + n))
        for s, n in zip(starts.tolist(), lengths.tolist(), strict=True)
    )
    assert ref.spans("1", starts, lengths).tobytes() == want
    inside = (starts >= 0) & (starts + lengths <= len(text))
    got = ref.spans("1", starts[inside], lengths[inside]).tobytes()
    assert got == b"".join(text[s : s + n] for s, n in zip(starts[inside], lengths[inside], strict=True))


@pytest.mark.parametrize("mistake", ["gzip", "vcf"])
def test_a_gzip_fasta_or_a_file_that_is_no_fasta_is_one_line(tmp_path, mistake):
    """The reference as labs often have it, `gzip genome.fa` (not bgzip), or the VCF given as -r by mistake:
    one line naming the file and what to do; it was samtools' message with its byte string and an htslib log
    line ('[E::fai_build_core] File truncated at line 1') on stderr."""
    import gzip
    import subprocess
    import sys

    seqs = make_genome(tmp_path / "genome.fa", GenomeSpec(length=20_000, seed=4))
    write_vcf(tmp_path / "s.vcf", sample_records(np.random.default_rng(3), seqs, 50), seqs)
    if mistake == "gzip":
        reference = tmp_path / "genome.fa.gz"
        reference.write_bytes(gzip.compress((tmp_path / "genome.fa").read_bytes()))
        why = "compressed with gzip, not bgzip (htslib indexes BGZF only): decompress it with gunzip, or"
    else:
        reference, why = tmp_path / "s.vcf", "not a FASTA: it does not start with a '>name' line"
    cmd = [sys.executable, "-m", "nanog1.cli", "ingest", str(tmp_path / "s.vcf"), "-r", str(reference),
           "-o", str(tmp_path / "c.h5ad"), "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {reference}: cannot index the reference FASTA: {why}"), lines[0]
    assert not (tmp_path / "c.h5ad").exists()
