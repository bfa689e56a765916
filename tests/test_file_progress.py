"""Progress within one large file: ingest counted files, so the whole MC3 MAF or a whole-genome VCF (one
file) showed a 0/1 bar, or nothing in a log, until it was read; its readers now say how far into the file
they are (nanog1.progress.FileTicker), in a log every `log_every` seconds, a worker's lines too."""

from __future__ import annotations

import gzip
import re

import numpy as np
from typer.testing import CliRunner

from nanog1 import progress
from nanog1.cli import app
from nanog1.genomics.ingest import IngestOptions, _watched, ingest
from tests.app_fixtures import snv_only_maf

HEADER = "##fileformat=VCFv4.2\n##contig=<ID=1,length=90000>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
LINE = r"^ingest: {} \d+ % \(\d+\.\d of \d+\.\d kB, \d+ s\)$"


def _sites_vcf(path, n: int = 2000) -> None:
    """A gzipped sites-only VCF of `n` substitutions (read by the fast sites reader, `text_chunks`)."""
    rng = np.random.default_rng(3)
    pos = np.sort(rng.choice(np.arange(1, 90_000), n, replace=False))
    body = "".join(f"1\t{p}\t.\tA\t{'CGT'[p % 3]}\t30\tPASS\t.\n" for p in pos)
    with gzip.open(path, "wt") as f:
        f.write(HEADER + body)


def test_one_large_file_says_how_far_its_reader_is(tmp_path, capfd):
    """One MAF and one gzipped sites-only VCF, each read alone: a line names the file and its share read
    (without it, one file said nothing until done); none with log_every 0 (a terminal's bar, or -q)."""
    maf = snv_only_maf(tmp_path / "m.maf", 300)
    vcf = tmp_path / "s.vcf.gz"
    _sites_vcf(vcf)
    for path in (maf, vcf):
        options = IngestOptions(filter="all", log_every=1e-9)
        ingest([path], None, None, tmp_path / f"{path.name}.h5ad", options)
        err = capfd.readouterr().err
        assert re.search(LINE.format(re.escape(path.name)), err, re.M), err
        assert "files (" not in err  # one file: the count of files says nothing
        done = rf"^ingest: {re.escape(path.name)} read: [\d,]+ records \(\d+ s\); classifying$"
        assert re.search(done, err, re.M), err
    ingest([maf], None, None, tmp_path / "q.h5ad", IngestOptions(filter="all"))
    assert " % (" not in capfd.readouterr().err


def test_worker_processes_report_how_far_into_their_files_they_are(tmp_path, capfd):
    """With --jobs 2 the files are read in worker processes, whose lines reach the same stderr."""
    maf = snv_only_maf(tmp_path / "m.maf", 300)
    vcf = tmp_path / "s.vcf.gz"
    _sites_vcf(vcf)
    ingest([maf, vcf], None, None, tmp_path / "c.h5ad", IngestOptions(filter="all", jobs=2, log_every=1e-9))
    err = capfd.readouterr().err
    assert re.search(LINE.format(r"m\.maf"), err, re.M), err
    assert re.search(LINE.format(r"s\.vcf\.gz"), err, re.M), err


def test_quiet_ingest_and_a_terminal_bar(tmp_path, monkeypatch):
    """`ingest -q` prints no such line; on a terminal the share goes to the bar's postfix, not a line."""
    monkeypatch.setattr(progress, "LOG_EVERY", 1e-9)
    maf = snv_only_maf(tmp_path / "m.maf", 300)
    loud = CliRunner().invoke(app, ["ingest", str(maf), "-o", str(tmp_path / "a.h5ad"), "--filter", "all"])
    assert loud.exit_code == 0 and re.search(LINE.format("m.maf"), loud.stderr, re.M), loud.output
    args = ["ingest", str(maf), "-o", str(tmp_path / "b.h5ad"), "--filter", "all", "-q"]
    quiet = CliRunner().invoke(app, args)
    assert quiet.exit_code == 0 and " % (" not in quiet.stderr, quiet.stderr

    class Bar:
        postfix = ""

        def set_postfix_str(self, text: str) -> None:
            self.postfix = text

    bar = Bar()
    ticker = _watched(maf, IngestOptions(progress=True), bar)
    ticker.every = 0.0
    with progress.reading(ticker):
        progress.read_to(maf.stat().st_size // 2)
    assert bar.postfix == "m.maf 49 %" or bar.postfix == "m.maf 50 %", bar.postfix
    assert _watched(maf, IngestOptions(progress=True)) is None  # a worker's: the parent's bar counts files
