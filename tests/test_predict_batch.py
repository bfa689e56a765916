"""`nanog1 predict` on a lab's whole batch (issue 31, QA at cohort scale): a run of a thousand VCFs takes
minutes, so each step says when it is done (and a bar moves over the files on a terminal)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pysam
import pytest
from typer.testing import CliRunner

from nanog1 import progress
from nanog1.cli import app
from tests.predict_models import write_model_folder
from tests.test_predict_on_error import corrupt_batch
from tests.training_cohort import make_cohort


@pytest.fixture(autouse=True)
def _quiet_restored(monkeypatch):
    """`nanog1 --quiet` sets NANOG1_QUIET for the process: restored after each test, so that later tests'
    progress lines still show."""
    monkeypatch.setenv(progress.QUIET_ENV, "0")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A small random-weight model folder (tests.predict_models): the typing itself is not under test."""
    cohort = make_cohort(n_per_type=10, seed=4, tokens=False)
    return write_model_folder(tmp_path_factory.mktemp("predict_model"), cohort)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Path:
    return corrupt_batch(tmp_path_factory.mktemp("batch"))


def _predict(run_dir: Path, inputs: list[Path], out: Path, *options: str, quiet: bool = False):
    args = [*(["--quiet"] if quiet else []), "predict", *map(str, inputs), "--model", str(run_dir), "-o",
            str(out), "--no-exposures", "--neighbours", "0", "--no-reports", *options]
    return CliRunner().invoke(app, args)


def test_each_step_of_a_batch_says_when_it_is_done(run_dir, batch, tmp_path):
    res = _predict(run_dir, [batch / "P1.vcf", batch / "P2.vcf"], tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert re.search(r"^predict: read 2 input\(s\)  tumours 2  \(\d+\.\d s\)$", res.stderr, re.M), res.stderr
    assert re.search(r"^predict: typed 2 tumour\(s\) with \S+  \(\d+\.\d s\)$", res.stderr, re.M), res.stderr
    assert re.search(rf"^predict: wrote {re.escape(str(tmp_path / 'o'))}  \(", res.stderr, re.M), res.stderr
    assert "\r" not in res.stderr  # no bar in a log
    quiet = _predict(run_dir, [batch / "P1.vcf"], tmp_path / "q", quiet=True)
    assert quiet.exit_code == 0 and "predict:" not in quiet.stderr, quiet.stderr


def test_on_a_terminal_a_bar_moves_over_the_files(run_dir, batch, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "terminal", lambda: True)
    res = _predict(run_dir, [batch / "P1.vcf", batch / "P2.vcf"], tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert re.search(r"ingest: +\d+%.*\d/2 \[", res.stderr), res.stderr
    assert re.search(r"members x views: +\d+%.*\d/1 \[.*pass", res.stderr), res.stderr  # the typing's passes


def _damaged(batch: Path, folder: Path) -> tuple[Path, int]:
    """P1.vcf with one record's tabs turned to spaces (a hand edit) and its last record cut off (an
    interrupted copy); returns the copy and the line number of the first damaged line."""
    lines = (batch / "P1.vcf").read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if not line.startswith("#")) + 5
    lines[first] = lines[first].replace("\t", " ", 3)
    text = "\n".join(lines)
    path = folder / "P1_damaged.vcf"
    path.write_text(text[: text.rindex("\t", 0, len(text) - 40)])
    return path, first + 1


def test_skipped_malformed_lines_are_named_by_file_and_line(run_dir, batch, tmp_path):
    damaged, line = _damaged(batch, tmp_path)
    res = _predict(run_dir, [damaged, batch / "P2.vcf"], tmp_path / "o", quiet=True)
    assert res.exit_code == 2 and f"P1_damaged.vcf:{line}: malformed VCF record" in res.output, res.output
    res = _predict(run_dir, [damaged, batch / "P2.vcf"], tmp_path / "o", "--on-error", "skip", quiet=True)
    assert res.exit_code == 0, res.output
    assert f"malformed_line 2: P1_damaged.vcf line {line} and 1 more)" in res.stdout, res.stdout
    calls = json.loads((tmp_path / "o" / "predictions.json").read_text())["calls"]
    (named,) = calls["malformed_lines"]
    assert named["file"] == str(damaged) and named["lines"] == 2, named
    assert named["first"].startswith(f"line {line}: malformed VCF record ("), named
    ingested = CliRunner().invoke(app, ["ingest", str(damaged), "-o", str(tmp_path / "c.h5ad"), "--on-error",
                                        "skip"])
    assert ingested.exit_code == 0, ingested.output
    assert f"P1_damaged.vcf: 2 malformed line(s) skipped (--on-error skip), the first at line {line}: " \
        in ingested.output, ingested.output


def test_a_glob_that_matches_the_tabix_indexes_types_the_vcfs_beside_them(run_dir, batch, tmp_path):
    """`nanog1 predict calls/*`: a folder of bgzipped VCFs holds their .tbi/.csi indexes too. Each index
    was read as an input and refused ('not a text file'), stopping the batch; an index whose VCF is given is
    now left out, and one given alone is still refused by name."""
    folder = tmp_path / "calls"
    folder.mkdir()
    for name in ("P1", "P2"):
        pysam.tabix_compress(str(batch / f"{name}.vcf"), str(folder / f"{name}.vcf.gz"))
    pysam.tabix_index(str(folder / "P1.vcf.gz"), preset="vcf")
    pysam.tabix_index(str(folder / "P2.vcf.gz"), preset="vcf", csi=True)
    inputs = sorted(folder.iterdir())
    assert [p.name for p in inputs] == ["P1.vcf.gz", "P1.vcf.gz.tbi", "P2.vcf.gz", "P2.vcf.gz.csi"]
    res = _predict(run_dir, inputs, tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert "2 tumour(s)," in res.stdout, res.stdout
    assert re.search(r"^predict: read 2 input\(s\)  tumours 2  ", res.stderr, re.M), res.stderr  # not 4
    ingested = CliRunner().invoke(app, ["ingest", *map(str, inputs), "-o", str(tmp_path / "c.h5ad")])
    assert ingested.exit_code == 0, ingested.output
    alone = _predict(run_dir, [folder / "P1.vcf.gz.tbi"], tmp_path / "o2", quiet=True)
    assert alone.exit_code == 2 and "P1.vcf.gz.tbi: not a text file" in alone.output, alone.output


def test_a_run_killed_while_writing_reports_leaves_no_stale_report_after_its_rerun(run_dir, batch, tmp_path,
                                                                                  monkeypatch):
    """Run A types P1 and P2 into a folder; run B, of P2 alone, is killed while writing its reports (a
    thousand take minutes), after predictions.json was replaced; its rerun must still remove A's report
    of P1, which no predictions.json in the folder lists any more."""
    from nanog1.encoder import predict_report

    out = tmp_path / "o"
    first = _predict(run_dir, [batch / "P1.vcf", batch / "P2.vcf"], out, "--reports", quiet=True)
    assert first.exit_code == 0 and (out / "P1-T.report.md").exists(), first.output

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(predict_report, "tumour_report", killed)
        _predict(run_dir, [batch / "P2.vcf"], out, "--reports", quiet=True)
    assert "P1-T" not in (out / "predictions.json").read_text()  # B's, written before its reports
    rerun = _predict(run_dir, [batch / "P2.vcf"], out, "--reports", quiet=True)
    assert rerun.exit_code == 0, rerun.output
    assert sorted(p.name for p in out.iterdir() if "report" in p.name) == ["P2-T.report.md"]


def test_a_sheet_of_a_thousand_file_rows_is_matched_to_its_inputs_in_one_pass(tmp_path, monkeypatch):
    """Each input's rows were found by scanning every row of the sheet (a path built and compared per
    input x row: 52 s to check 1,000 VCFs against their 1,000-row sheet, 0.65 s for 100); the rows are now
    indexed once. Counted as paths built, so the test does not time anything."""
    from nanog1.genomics import samplesheet

    n = 400
    (tmp_path / "calls").mkdir()
    rows = [f"T{i},T{i}.vcf,Lung" for i in range(n)] + [f"U{i},calls/U{i}.vcf,Skin" for i in range(n)]
    for i in range(n):
        (tmp_path / "calls" / f"U{i}.vcf").write_text("x")
    (tmp_path / "sheet.csv").write_text("sample,file,cancer_type\n" + "\n".join(rows) + "\n")
    sheet = samplesheet.load_sample_sheet(tmp_path / "sheet.csv")
    built = []
    real = samplesheet.Path
    monkeypatch.setattr(samplesheet, "Path", lambda *a: built.append(a) or real(*a))
    inputs = [real(f"/data/T{i}.vcf") for i in range(n)]
    inputs += [tmp_path / "calls" / f"U{i}.vcf" for i in range(n)]
    found = [sheet.rows_for(p)["sample"].tolist() for p in inputs]
    assert found == [[f"T{i}"] for i in range(n)] + [[f"U{i}"] for i in range(n)]
    assert len(built) < 10 * 2 * n, len(built)  # per input and row, not input x row (640,000 before)


KILLED_RUN = """
import os, signal, sys, time
from pathlib import Path
import nanog1.genomics.ingest as ingest_module
seen, args = Path(sys.argv[1]), sys.argv[2:]

def killed(inputs, reference, sheet, out, options):
    seen.write_text(str(Path(out).parent))  # the temporary folder predict reads the batch into
    os.kill(os.getpid(), signal.SIGTERM)  # a cluster's time limit, in the middle of reading
    time.sleep(30)

ingest_module.ingest = killed
from nanog1.cli import main
sys.argv = ["nanog1", *args]
main()
"""


def test_a_predict_stopped_by_sigterm_removes_its_temporary_folder(run_dir, batch, tmp_path):
    """SIGTERM (kill, a cluster's time limit, scancel) ended predict at once: its temporary folder (the
    cohort being read, decompressed copies of gzip VCFs) stayed in /tmp, one per killed run. It now exits
    as Ctrl-C does, through the cleanup, with 143 and a line saying so."""
    seen = tmp_path / "seen.txt"
    args = ["predict", str(batch / "P1.vcf"), "--model", str(run_dir), "-o", str(tmp_path / "o")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", KILLED_RUN, str(seen), *args], capture_output=True,
                          text=True, timeout=120, env=env)
    assert Path(seen.read_text()).name.startswith("nanog1-predict-"), seen.read_text()
    assert done.returncode == 143, (done.returncode, done.stderr)
    assert "stopped by SIGTERM" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not Path(seen.read_text()).exists()
    assert not (tmp_path / "o" / "predictions.tsv").exists()


def test_in_a_log_a_long_read_of_many_files_says_how_far_it_is(run_dir, batch, tmp_path, monkeypatch):
    """In a log (no terminal: no bar) a read of many files said nothing until it was done: `nanog1 ingest`
    of a cohort's VCFs was silent for its whole run, `predict` until its 'read' line. A plain line now says
    how many files are read, at most every progress.LOG_EVERY seconds; ingest -q and --quiet keep quiet."""
    monkeypatch.setattr(progress, "LOG_EVERY", 1e-9)  # every file, here
    (tmp_path / "P4.vcf").write_text((batch / "P1.vcf").read_text().replace("P1", "P4"))
    inputs = [batch / "P1.vcf", batch / "P2.vcf", tmp_path / "P4.vcf"]
    res = _predict(run_dir, inputs, tmp_path / "o")
    assert res.exit_code == 0, res.output
    assert re.search(r"^predict: read 1/3 files \(\d+ s\)$", res.stderr, re.M), res.stderr
    assert re.search(r"^predict: read 2/3 files", res.stderr, re.M) and "3/3 files" not in res.stderr
    ingested = CliRunner().invoke(app, ["ingest", *map(str, inputs), "-o", str(tmp_path / "c.h5ad")])
    assert ingested.exit_code == 0, ingested.output
    assert re.search(r"^ingest: read 2/3 files \(\d+ s\)$", ingested.stderr, re.M), ingested.stderr
    quiet = CliRunner().invoke(app, ["ingest", *map(str, inputs), "-o", str(tmp_path / "q.h5ad"), "-q"])
    assert quiet.exit_code == 0 and "files (" not in quiet.stderr, quiet.stderr
    assert "files (" not in _predict(run_dir, inputs, tmp_path / "q", quiet=True).stderr
