"""`nanog1 predict --on-error stop|skip`, as `nanog1 ingest` has it: a lab types a whole folder of VCFs/MAFs,
and one corrupt file (a .vcf.gz cut short by an interrupted copy, a binary file, a MAF whose last row was
cut off) stops the batch with an error naming it (stop, the default), or is skipped and counted by reason
in the closing line and predictions.json while the other tumours are typed (skip)."""

from __future__ import annotations

import json
from pathlib import Path

import pysam
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.genomics.synthetic import GenomeSpec, make_genome
from tests.predict_models import write_model_folder
from tests.test_ingest_somatic import MUTECT2_META, sites, snv_rows, write
from tests.test_maf_producers import mc3
from tests.training_cohort import make_cohort

FIELDS = "TLOD=12.3\tGT:AD:AF:DP\t0/0:30,0:0.03:30\t0/1:20,9:0.3:29"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small random-weight model folder (tests.predict_models): the typing itself is not under test."""
    cohort = make_cohort(n_per_type=10, seed=4, tokens=False)
    return write_model_folder(tmp_path_factory.mktemp("predict_model"), cohort)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    return corrupt_batch(tmp_path_factory.mktemp("batch"))


def corrupt_batch(folder: Path) -> Path:
    """A folder as a lab hands it over: two good Mutect2 VCFs (tumours P1-T, P2-T), a third one bgzipped and
    cut short (an interrupted copy: no BGZF end marker) and a binary file named .vcf; their genome g.fa
    beside them (the dashboard's Predict page types the folder too)."""
    seq = make_genome(folder / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=5))["1"]
    at = sites(seq, 60)
    for i, patient in enumerate(("P1", "P2", "P3")):
        meta = [m.replace("P1", patient) for m in MUTECT2_META]
        rows = snv_rows(seq, at[20 * i : 20 * i + 20], lambda *a: FIELDS)
        write(folder / f"{patient}.vcf", meta, [f"{patient}-N", f"{patient}-T"], rows)
    pysam.tabix_compress(str(folder / "P3.vcf"), str(folder / "P3.vcf.gz"))
    (folder / "P3.vcf").unlink()
    packed = (folder / "P3.vcf.gz").read_bytes()
    (folder / "P3.vcf.gz").write_bytes(packed[: len(packed) * 2 // 3])
    (folder / "scan.vcf").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x01garbage" * 20)
    return folder


def _predict(run_dir, inputs, out, *options):
    args = ["predict", *map(str, inputs), "--model", str(run_dir), "-o", str(out), "--no-exposures",
            "--neighbours", "0", "--no-reports", *options]
    return CliRunner().invoke(app, args)


def _closing_line(output: str) -> str:
    return next(line for line in output.splitlines() if "tumour(s)," in line)


def test_under_stop_a_corrupt_file_stops_the_batch_with_an_error_naming_it(run_dir, batch, tmp_path):
    good = [batch / "P1.vcf", batch / "P2.vcf"]
    for bad in ("P3.vcf.gz", "scan.vcf"):
        for stop in (["--on-error", "stop"], []):  # stop is the default, as for ingest
            res = _predict(run_dir, [*good, batch / bad], tmp_path / "o", *stop)
            assert res.exit_code == 2, res.output
            assert bad in res.output and "Traceback" not in res.output, res.output
            assert not (tmp_path / "o").exists()  # nothing written
    res = _predict(run_dir, good, tmp_path / "o", "--on-error", "maybe")
    assert res.exit_code == 2 and "--on-error maybe: choose stop or skip" in res.output, res.output


def test_under_skip_the_good_tumours_are_typed_and_the_bad_files_counted(run_dir, batch, tmp_path):
    inputs = [batch / "P1.vcf", batch / "P3.vcf.gz", batch / "scan.vcf", batch / "P2.vcf"]
    res = _predict(run_dir, inputs, tmp_path / "o", "--on-error", "skip")
    assert res.exit_code == 0, res.output
    line = _closing_line(res.output)
    assert line.startswith("2 tumour(s),"), line
    # the files are named apart, not counted as calls (it said '42 calls read' of 40 calls in the files)
    said = "40 calls read, 40 counted, 0 skipped; 2 file(s) not read (unreadable_file: P3.vcf.gz, scan.vcf)"
    assert said in line, line
    doc = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert [t["sample"] for t in doc["tumours"]] == ["P1-T", "P2-T"]
    assert doc["calls"]["skips"] == {"unreadable_file": 2} and doc["calls"]["files_not_read"] == 2
    assert (doc["calls"]["read"], doc["calls"]["counted"], doc["calls"]["skipped"]) == (40, 40, 0)
    assert doc["calls"]["unreadable_files"] == [str(batch / "P3.vcf.gz"), str(batch / "scan.vcf")]
    bad = [batch / "P3.vcf.gz", batch / "scan.vcf"]
    res = _predict(run_dir, bad, tmp_path / "none", "--on-error", "skip")
    said = " ".join(res.output.replace("│", " ").split())  # the error box wraps lines
    assert res.exit_code == 2 and "no tumour to type: 2 of 2 file(s) could not be read" in said, res.output
    assert "Traceback" not in res.output


def test_under_skip_a_maf_row_cut_short_is_one_malformed_line(run_dir, tmp_path):
    """An MC3 MAF whose download stopped inside its last row: under stop an error naming the file and line,
    under skip that row is counted as malformed_line and the rest of the file is typed."""
    text = mc3(tmp_path / "whole.maf").read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    (tmp_path / "cut.maf").write_text(text[: len(text) - 1 - len(last) // 2])  # no final newline either
    res = _predict(run_dir, [tmp_path / "cut.maf"], tmp_path / "o")
    assert res.exit_code == 2 and "cut.maf:12: malformed MAF" in res.output, res.output
    res = _predict(run_dir, [tmp_path / "cut.maf"], tmp_path / "o", "--on-error", "skip")
    assert res.exit_code == 0, res.output
    assert "malformed_line 1" in _closing_line(res.output)
    doc = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert doc["calls"]["skips"]["malformed_line"] == 1
    assert doc["calls"]["read"] == len(text.splitlines()) - 1  # every row below the header, the cut one too


def test_an_empty_file_is_skipped_under_skip_and_named_under_stop(run_dir, batch, tmp_path):
    """QA: a zero-byte file (a copy that never started) stopped the batch even under --on-error skip, in
    predict and in ingest, while a file cut short was skipped: it is an unreadable_file too."""
    from nanog1.genomics.ingest import IngestOptions, ingest
    from nanog1.genomics.variants import InputError

    (tmp_path / "P4.vcf").write_bytes(b"")
    inputs = [batch / "P1.vcf", tmp_path / "P4.vcf", batch / "P2.vcf"]
    res = _predict(run_dir, inputs, tmp_path / "stop")
    assert res.exit_code == 2 and "P4.vcf: empty file" in res.output, res.output
    res = _predict(run_dir, inputs, tmp_path / "o", "--on-error", "skip")
    assert res.exit_code == 0, res.output
    assert "1 file(s) not read (unreadable_file: P4.vcf)" in _closing_line(res.output), res.output
    doc = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert [t["sample"] for t in doc["tumours"]] == ["P1-T", "P2-T"]
    assert doc["calls"]["unreadable_files"] == [str(tmp_path / "P4.vcf")]
    ingest(inputs, None, None, tmp_path / "c.h5ad", IngestOptions(on_error="skip"))
    with pytest.raises(InputError, match="empty file"):
        ingest(inputs, None, None, tmp_path / "d.h5ad", IngestOptions())


def test_under_skip_a_sheet_row_whose_file_is_unreadable_is_not_a_sample_without_a_file(run_dir, batch,
                                                                                        tmp_path):
    """QA: with --samples, a sheet row naming the corrupt file stopped the batch under skip with 'sample
    'P3-T' has no input file' (it had one, unreadable); the other tumours are typed and the file named.
    A sheet row naming a file that is not among the inputs is still an error."""
    inputs = [batch / "P1.vcf", batch / "scan.vcf", batch / "P2.vcf"]
    rows = ["sample,file", "P1-T,P1.vcf", "P2-T,P2.vcf", "P3-T,scan.vcf"]
    (tmp_path / "sheet.csv").write_text("\n".join(rows) + "\n")
    res = _predict(run_dir, inputs, tmp_path / "o", "--on-error", "skip", "--samples", tmp_path / "sheet.csv")
    assert res.exit_code == 0, res.output
    assert "1 file(s) not read (unreadable_file: scan.vcf)" in _closing_line(res.output), res.output
    doc = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert [t["sample"] for t in doc["tumours"]] == ["P1-T", "P2-T"]
    (tmp_path / "more.csv").write_text("\n".join([*rows, "P4-T,P4.vcf"]) + "\n")
    res = _predict(run_dir, inputs, tmp_path / "m", "--on-error", "skip", "--samples", tmp_path / "more.csv")
    assert res.exit_code == 2 and "file 'P4.vcf' is not among the inputs" in res.output, res.output


def test_a_catalogue_matrix_beside_an_unreadable_file_is_still_catalogue_counts(run_dir, batch, tmp_path):
    """QA: an SBS96 matrix typed under skip beside a file that could not be read was said to be '1 calls read,
    0 counted, 1 skipped ...; calls read with --filter PASS', and its masked sets blamed on 'a VCF or MAF
    without a reference FASTA': the unreadable file's accounting row made the matrix look like calls."""
    import numpy as np

    from tests.test_predict import _matrix_tsv

    _matrix_tsv(tmp_path / "m.tsv", np.full((2, 96), 20), ["A", "B"])
    res = _predict(run_dir, [tmp_path / "m.tsv", batch / "scan.vcf"], tmp_path / "o", "--on-error", "skip")
    assert res.exit_code == 0, res.output
    line = _closing_line(res.output)
    said = "1 file(s) not read (unreadable_file: scan.vcf); catalogue counts (no FILTER to apply)"
    assert said in line, line
    assert "calls read" not in line and "a VCF or MAF without a reference" not in res.output, res.output


def test_ingest_check_only_under_skip_names_the_unreadable_files_instead_of_failing(batch, tmp_path):
    """QA: `ingest --check-only` (the pipeline's first step, which now gets ingest.on_error too) failed on
    the file that the run under --on-error skip would skip; under skip it names it and passes."""
    inputs = [str(batch / "P1.vcf"), str(batch / "scan.vcf"), str(batch / "P2.vcf")]
    res = CliRunner().invoke(app, ["ingest", *inputs, "--check-only", "--on-error", "skip"])
    assert res.exit_code == 0, res.output
    assert "checked 3 inputs (2 sample(s) named before reading): no errors; 1 unreadable, to be skipped: " \
           "scan.vcf" in res.output, res.output
    res = CliRunner().invoke(app, ["ingest", *inputs, "--check-only"])
    assert res.exit_code == 2 and "scan.vcf" in res.output, res.output


def test_under_skip_each_unreadable_file_is_told_with_why(run_dir, batch, tmp_path):
    """QA #31: the closing line and predictions.json named the files skipped whole, never why: a download cut
    short (fetch it again) read the same as a file that is no VCF at all. A warning gives each file's reason,
    and predictions.json's calls block has it per file (`unreadable_reasons`)."""
    inputs = [batch / "P1.vcf", batch / "P3.vcf.gz", batch / "scan.vcf", batch / "P2.vcf"]
    res = _predict(run_dir, inputs, tmp_path / "o", "--on-error", "skip")
    assert res.exit_code == 0, res.output
    warned = next(line for line in res.output.splitlines() if line.startswith("warning: 2 file(s) not read"))
    assert "P3.vcf.gz: truncated or damaged gzip file" in warned, warned
    assert "scan.vcf: " in warned and "P1.vcf" not in warned, warned
    doc = json.loads((tmp_path / "o" / "predictions.json").read_text())
    reasons = {Path(r["file"]).name: r["why"] for r in doc["calls"]["unreadable_reasons"]}
    assert set(reasons) == {"P3.vcf.gz", "scan.vcf"}, reasons
    assert reasons["P3.vcf.gz"].startswith("truncated or damaged gzip file"), reasons
    assert reasons["scan.vcf"].startswith("not a readable VCF/BCF"), reasons  # no "path: " before it


def test_under_skip_an_unreadable_file_is_counted_as_a_file_alike_in_table_json_and_closing_line(
        run_dir, batch, tmp_path):
    """QA #31: on a batch with a truncated .vcf.gz, ingest's table and predictions.json counted the file as
    one call read and skipped (51,743 read / 6 skipped) while predict's closing line said 51,738 / 1. An
    unreadable file is not a call: all three count only calls in read/skipped, the file in unreadable_file."""
    from rich.console import Console

    from nanog1.genomics.ingest import IngestOptions, ingest
    from nanog1.genomics.summary import summary_table

    inputs = [batch / "P1.vcf", batch / "P3.vcf.gz", batch / "P2.vcf"]
    report = ingest(inputs, None, None, tmp_path / "c.h5ad", IngestOptions(on_error="skip"))
    bad = next(f for f in report.files if f["path"].endswith("P3.vcf.gz"))
    assert (bad["records"], bad["counted"], bad["skipped"]) == (0, 0, 0), bad
    assert report.records == 40 and report.skips["unreadable_file"] == 1
    console = Console(width=200, record=True)
    console.print(summary_table(report))
    total = next(line for line in console.export_text().splitlines() if "total" in line).replace("│", " ")
    assert total.split()[1:4] == ["40", "40", "0"], total  # read, counted, skipped: calls only
    res = _predict(run_dir, inputs, tmp_path / "o", "--on-error", "skip")
    assert res.exit_code == 0, res.output
    assert "40 calls read, 40 counted, 0 skipped; 1 file(s) not read" in _closing_line(res.output)
    calls = json.loads((tmp_path / "o" / "predictions.json").read_text())["calls"]
    assert (calls["read"], calls["counted"], calls["skipped"]) == (40, 40, 0), calls
    assert calls["skips"] == {"unreadable_file": 1} and calls["files_not_read"] == 1, calls
