"""One error wrapper for all commands: ordinary mistakes are one line, exit 2; --debug shows the traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nanog1.cli import app

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def one_line_error(result, *needles: str) -> str:
    """The single `error: ...` line of a failed command, after checking exit code 2 and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def vcf(tmp_path: Path) -> Path:
    path = tmp_path / "tumour.vcf"
    path.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n1\t10\t.\tC\tA\t.\tPASS\t.\n")
    return path


@pytest.mark.parametrize("command", [
    ["train", "{vcf}", "--out", "{tmp}/run"],
    ["evaluate", "{vcf}", "--run", "{tmp}", "--out", "{tmp}/e.h5ad"],
    ["embed", "{vcf}", "--run", "{tmp}", "--out", "{tmp}/e.h5ad"],
    ["signatures", "fit", "{vcf}", "--out", "{tmp}/s.h5ad"],
    ["baselines", "{vcf}", "--folds", "2"],
    ["cohort", "merge", "{vcf}", "--out", "{tmp}/m.h5ad"],
])
def test_a_vcf_where_a_cohort_belongs_is_one_line(command: list[str], vcf: Path, tmp_path: Path):
    args = [a.format(vcf=vcf, tmp=tmp_path) for a in command]
    result = CliRunner().invoke(app, args)
    one_line_error(result, str(vcf), "not an .h5ad cohort", "nanog1 ingest")


def test_predict_names_a_vcf_given_as_a_cohort(vcf: Path, tmp_path: Path):
    """predict reads VCFs itself, so the mistake is a VCF under a cohort's name (.h5ad)."""
    named = tmp_path / "tumour.h5ad"
    named.write_text(vcf.read_text())
    result = CliRunner().invoke(app, ["predict", str(named), "--out", str(tmp_path / "out")])
    one_line_error(result, str(named), "not an .h5ad cohort", "nanog1 ingest")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["ingest", "predict"])
def test_a_fasta_or_vcf_given_as_the_sample_sheet_is_one_line(command: str, vcf: Path, tmp_path: Path):
    """QA: `--samples genome.fa` (the FASTA where the sheet belongs) read every sequence line as a sample:
    'sample 'SIM0001' has no row in the sample sheet genome.fa (and 50003 more sheet/input mismatches)'."""
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">1\n" + "ACGT" * 20 + "\n")
    for sheet, says in ((fasta, "it looks like a FASTA"), (vcf, "it looks like a VCF")):
        args = [command, str(vcf), "--samples", str(sheet), "-o", str(tmp_path / "out")]
        one_line_error(CliRunner().invoke(app, args), f"{sheet}:1: not a sample sheet", says)


@pytest.mark.parametrize(("option", "needle"), [
    (["-j", "0"], "Invalid value for '--jobs' / '-j'"),  # was read as one job without a word
    (["--samples", "{tmp}"], "is a directory"),  # was 'error: DIR: Is a directory', no option named
])
def test_ingest_refuses_a_bad_jobs_count_or_sheet_folder_naming_the_option(option, needle, vcf: Path,
                                                                            tmp_path: Path):
    args = ["ingest", str(vcf), "-o", str(tmp_path / "c.h5ad"), *(a.format(tmp=tmp_path) for a in option)]
    result = CliRunner().invoke(app, args)
    said = " ".join(result.output.replace("│", " ").split())  # the error box wraps lines
    assert result.exit_code == 2 and needle in said and option[0] in said, result.output
    assert not (tmp_path / "c.h5ad").exists()


def test_a_damaged_cohort_is_one_line(tmp_path: Path):
    import h5py

    damaged = tmp_path / "cohort.h5ad"
    with h5py.File(damaged, "w") as f:
        f["junk"] = [1, 2, 3]  # HDF5, but no AnnData inside
    result = CliRunner().invoke(app, ["train", str(damaged), "--out", str(tmp_path / "run")])
    one_line_error(result, str(damaged), "not a readable .h5ad cohort")


def test_debug_shows_the_traceback(vcf: Path, tmp_path: Path):
    """Through the real entry point (a new interpreter: the traceback is Python's own). The switch lives in
    the one wrapper every command goes through; `cohort merge` reaches the same mistake (a VCF where a cohort
    belongs) as `train` without importing torch and MLflow first (2 s a run instead of 10)."""
    cmd = [sys.executable, "-m", "nanog1.cli", "cohort", "merge", str(vcf), "--out", str(tmp_path / "m.h5ad")]
    plain = subprocess.run(cmd, capture_output=True, text=True, env=ENV)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr and "error: " in plain.stderr
    for debug_cmd, env in ((cmd[:3] + ["--debug"] + cmd[3:], ENV), (cmd, {**ENV, "NANOG1_DEBUG": "1"})):
        shown = subprocess.run(debug_cmd, capture_output=True, text=True, env=env)
        assert shown.returncode == 1 and "Traceback" in shown.stderr and "UserError" in shown.stderr


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path: Path):
    import nanog1.genomics.cohort as cohort

    def broken(path):
        raise ZeroDivisionError("a bug, not a user mistake")

    monkeypatch.setattr(cohort, "read_cohort", broken)
    (tmp_path / "x.h5ad").touch()
    result = CliRunner().invoke(app, ["train", str(tmp_path / "x.h5ad"), "--out", str(tmp_path / "run")])
    assert isinstance(result.exception, ZeroDivisionError) and result.exit_code == 1


def test_an_uncaught_end_of_stream_is_a_traced_bug_not_a_bare_aborted(monkeypatch, tmp_path: Path):
    """click answers EOFError (Ctrl-D at a prompt) with a bare 'Aborted!', even under --debug: a damaged
    stream nobody caught must keep its traceback instead."""
    import nanog1.genomics.cohort as cohort

    def cut_short(path):
        raise EOFError("Compressed file ended before the end-of-stream marker was reached")

    monkeypatch.setattr(cohort, "read_cohort", cut_short)
    (tmp_path / "x.h5ad").touch()
    result = CliRunner().invoke(app, ["train", str(tmp_path / "x.h5ad"), "--out", str(tmp_path / "run")])
    assert "Aborted" not in result.output and result.exit_code == 1
    assert isinstance(result.exception, RuntimeError) and "end-of-stream" in str(result.exception)
    assert isinstance(result.exception.__cause__, EOFError)


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory) -> tuple[Path, Path]:
    """(labelled, unlabelled) small simulated cohorts."""
    from training_cohort import make_cohort

    from nanog1.genomics.cohort import write_cohort

    folder = tmp_path_factory.mktemp("cohorts")
    labelled = make_cohort()
    unlabelled = labelled.copy()
    del unlabelled.obs["cancer_type"]
    return write_cohort(labelled, folder / "lab.h5ad"), write_cohort(unlabelled, folder / "unlab.h5ad")


def test_an_unlabelled_cohort_for_training_is_one_line(cohorts, tmp_path: Path):
    _, unlabelled = cohorts
    args = ["train", str(unlabelled), "--out", str(tmp_path / "run"), "--epochs", "1"]
    result = CliRunner().invoke(app, args)
    one_line_error(result, str(unlabelled), "no labelled samples", "sample sheet")
    assert not (tmp_path / "run" / "model.pt").exists()


def test_an_unlabelled_cohort_for_baselines_is_one_line(cohorts, tmp_path: Path):
    _, unlabelled = cohorts
    args = ["baselines", str(unlabelled), "--folds", "2", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]
    one_line_error(CliRunner().invoke(app, args), str(unlabelled), "no labelled samples", "sample sheet")


def test_a_damaged_checkpoint_to_resume_is_one_line(cohorts, tmp_path: Path):
    labelled, _ = cohorts
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"cut short")
    result = CliRunner().invoke(app, ["train", str(labelled), "--out", str(run), "--epochs", "1"])
    one_line_error(result, str(run / "checkpoint.pt"), "not a torch checkpoint")
    assert not (run / "model.pt").exists() and not (run.parent / "mlflow.db").exists()  # nothing begun


@pytest.mark.parametrize(("text", "needle"), [
    ("epochs: 2\n\tbad: [", "config.yaml:2: not valid YAML"),
    ("- a list\n", "config.yaml:1: expected a mapping of training options"),
    ("epoch: 2\n", "unknown training option(s) (not fields of TrainConfig): epoch"),
    ("task: typing\n", "unknown task 'typing'"),
    ("mixer: transformer\n", "unknown mixer 'transformer'"),
    ("view: tokens\n", "unknown view 'tokens'"),
])
def test_a_bad_training_config_is_one_line(cohorts, tmp_path: Path, text: str, needle: str):
    labelled, _ = cohorts
    config = tmp_path / "config.yaml"
    config.write_text(text)
    args = ["train", str(labelled), "--out", str(tmp_path / "run"), "--config", str(config)]
    one_line_error(CliRunner().invoke(app, args), needle)
    assert not (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize(("args", "needle"), [
    (["simulate", "{tmp}/sim", "--type", "Not-A-Type", "-n", "2", "--no-files"], "not in the prior"),
    (["cohort", "merge", "{lab}", "--out", "{tmp}/m.h5ad", "--duplicates", "keep"], "duplicates must be"),
    (["signatures", "fit", "{lab}", "--out", "{tmp}/s.h5ad", "--method", "lasso"], "unknown fitting method"),
    (["signatures", "per-mutation", "{lab}", "--out", "{tmp}/p.tsv"], "no uns['tokens']"),
])
def test_commands_leave_their_mistakes_to_the_one_wrapper(cohorts, tmp_path: Path, args: list[str], needle):
    labelled, _ = cohorts
    result = CliRunner().invoke(app, [a.format(tmp=tmp_path, lab=labelled) for a in args])
    one_line_error(result, needle)


def test_no_command_catches_errors_itself():
    """Only the wrapper (`_Commands.invoke`) turns exceptions into messages: no command swallows a bug."""
    import ast

    import nanog1.cli as cli

    tree = ast.parse(Path(cli.__file__).read_text())
    handlers = [node for node in ast.walk(tree) if isinstance(node, ast.ExceptHandler)]
    wrapper = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "invoke")
    inside = {id(n) for n in ast.walk(wrapper)}
    assert handlers and all(id(h) in inside for h in handlers), [h.lineno for h in handlers]


@pytest.mark.parametrize("command", ["evaluate", "embed", "predict", "finetune"])
@pytest.mark.parametrize(("content", "needle"), [
    (None, "model.pt: no such model"),
    (b"garbage, not a checkpoint", "model.pt: not a torch checkpoint"),
])
def test_a_missing_or_corrupt_model_is_named(cohorts, tmp_path: Path, command: str, content, needle: str):
    labelled, _ = cohorts
    run = tmp_path / "run"
    run.mkdir()
    if content is not None:
        (run / "model.pt").write_bytes(content)
    run_option = {"predict": "--model", "finetune": "--from"}.get(command, "--run")
    args = [command, str(labelled), run_option, str(run), "--out", str(tmp_path / "o.h5ad")]
    result = CliRunner().invoke(app, args)
    by_folder = (command, content) == ("predict", None)  # predict names the folder: it exists, no model.pt
    named = run if by_folder else run / "model.pt"
    missing = "the folder exists but holds no model.pt" if by_folder else "no such model"
    one_line_error(result, str(named), missing if content is None else needle.split(": ", 1)[1])
    assert not (tmp_path / "o.h5ad").exists()


@pytest.mark.parametrize("command", [["ingest", "{dir}", "{vcf}", "--out", "{tmp}/c.h5ad"],
                                     ["ingest", "{dir}", "--check-only"],
                                     ["predict", "{vcf}", "{dir}", "--out", "{tmp}/out"]])
def test_a_directory_given_as_input_names_it_and_suggests_a_glob(command: list[str], vcf: Path,
                                                                  tmp_path: Path):
    folder = tmp_path / "vcfs"
    folder.mkdir()
    args = [a.format(dir=folder, vcf=vcf, tmp=tmp_path) for a in command]
    result = CliRunner().invoke(app, args)
    one_line_error(result, f"{folder}: a directory", f"{folder / '*.vcf.gz'}")
    assert not (tmp_path / "c.h5ad").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["ingest", "{dir}", "--out", "{tmp}/c.h5ad"],
                                     ["predict", "{dir}", "--out", "{tmp}/out"]])
def test_the_glob_suggested_for_a_directory_matches_its_files(command: list[str], tmp_path: Path):
    """A folder of plain .vcf files (as SigProfilerAssignment ships its examples) is answered with
    dir/*.vcf, not a dir/*.vcf.gz that matches none of them; a folder of MAFs with dir/*.maf."""
    for ending, files in ((".vcf", ("PD1.vcf", "PD2.vcf", "notes.txt")), (".maf", ("a.maf", "b.maf"))):
        folder = tmp_path / ending[1:]
        folder.mkdir()
        for name in files:
            (folder / name).write_text("1\t100\tPD1\tA\tC\n")
        result = CliRunner().invoke(app, [a.format(dir=folder, tmp=tmp_path) for a in command])
        one_line_error(result, f"{folder}: a directory", f"e.g. {folder / ('*' + ending)}")


@pytest.fixture
def read_only_folder(tmp_path: Path):
    """A folder no new file can be made in: mode 0555, or, for root (whom modes do not stop), immutable."""
    folder = tmp_path / "shared_results"
    folder.mkdir()
    root = os.geteuid() == 0
    if root:
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
        if made.returncode != 0:
            pytest.skip(f"running as root and chattr +i failed: {made.stderr.decode().strip()}")
    else:
        folder.chmod(0o555)
    yield folder
    if root:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o755)


def _sbs96_matrix(path: Path) -> Path:
    """An SBS96 matrix as SigProfilerMatrixGenerator writes it (MutationType, one column per sample)."""
    import numpy as np
    import pandas as pd

    from nanog1.genomics.channels import CHANNEL_SETS

    labels = list(CHANNEL_SETS["SBS96"])
    counts = np.random.default_rng(0).poisson(20, (len(labels), 2))
    pd.DataFrame(counts, index=pd.Index(labels, name="MutationType"), columns=["PD1a", "PD2a"]).to_csv(
        path, sep="\t")
    return path


@pytest.mark.parametrize("where", ["{ro}", "{ro}/typed"])
def test_predict_into_a_folder_it_cannot_write_says_so_first(tmp_path, read_only_folder, where):
    """`predict --out` in a folder the user cannot write: one line naming that folder, said before the
    model and inputs are read (it was told last, as a failure on '.predictions.tsv.<random>.tmp').
    Likewise for `ingest --out`, below."""
    out = where.format(ro=read_only_folder)
    matrix = _sbs96_matrix(tmp_path / "study.SBS96.all")
    args = ["predict", str(matrix), "--assay", "genome", "--no-exposures", "--neighbours", "0", "--out", out]
    result = CliRunner().invoke(app, args)
    why = f"permission denied in folder {read_only_folder}"
    said = f"{out}: cannot be written there: {why}" if where == "{ro}" else \
        f"cannot create folder {out}: {why}"
    line = one_line_error(result, said)
    assert ".tmp" not in line
    assert list(read_only_folder.iterdir()) == []


@pytest.mark.parametrize("where", ["{ro}/cohort.h5ad", "{ro}/parts/cohort.h5ad"])
def test_ingest_into_a_folder_it_cannot_write_says_so_first(tmp_path, read_only_folder, where):
    out = where.format(ro=read_only_folder)
    matrix = _sbs96_matrix(tmp_path / "study.SBS96.all")
    result = CliRunner().invoke(app, ["ingest", str(matrix), "--out", out, "-q"])
    said = (f"{out}: cannot be written there: permission denied in folder {read_only_folder}"
            if "parts" not in where else
            f"{out}: cannot create folder {read_only_folder / 'parts'}: permission denied in folder "
            f"{read_only_folder}")
    line = one_line_error(result, said)
    assert ".tmp" not in line
    assert list(read_only_folder.iterdir()) == []


def test_a_new_output_folder_in_a_chmod_read_only_folder_is_refused_for_its_true_reason(tmp_path):
    """`predict -o shared/new` where `shared` is mode 0555: the folder -o names cannot be created because
    its parent refuses new entries; the error says so, naming both (the system's 'Permission denied' was
    told as of the parent alone). Skipped where chmod does not stop this user (root)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o555)
    try:
        if os.access(shared, os.W_OK):
            pytest.skip("chmod 0555 does not stop this user (root) from writing")
        matrix = _sbs96_matrix(tmp_path / "study.SBS96.all")
        out = shared / "new"
        args = ["predict", str(matrix), "--assay", "genome", "--no-exposures", "--out", str(out)]
        one_line_error(CliRunner().invoke(app, args),
                       f"cannot create folder {out}: permission denied in folder {shared}")
        assert not out.exists()
    finally:
        shared.chmod(0o755)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="no procfs /proc")
def test_an_output_folder_under_proc_is_not_told_as_a_missing_proc(tmp_path):
    """`predict -o /proc/nope`: /proc exists and takes no new folder, and answers 'No such file or
    directory'; the error said 'folder /proc: No such file or directory', read as a missing /proc. It names
    the folder it cannot create and that /proc exists."""
    matrix = _sbs96_matrix(tmp_path / "study.SBS96.all")
    args = ["predict", str(matrix), "--assay", "genome", "--no-exposures", "--out", "/proc/nope"]
    one_line_error(CliRunner().invoke(app, args), "cannot create folder /proc/nope: folder /proc exists but "
                   "takes no new files or folders")


def test_predict_names_a_missing_input_before_loading_the_model(tmp_path, monkeypatch):
    """A mistyped input path is told at once (it came after the model was loaded, seconds later)."""
    import nanog1.encoder.predictor as predictor

    def loading(*_args, **_kwargs):
        raise AssertionError("the model was loaded before the inputs were checked")

    monkeypatch.setattr(predictor, "load_predictor", loading)
    missing = tmp_path / "TCGA-AB-1234.mutect.vcf"
    result = CliRunner().invoke(app, ["predict", str(missing), "--out", str(tmp_path / "typed")])
    one_line_error(result, f"{missing}: input file not found")
    assert not (tmp_path / "typed").exists()


@pytest.mark.parametrize("command", [["predict", "--out", "o"], ["ingest", "--out", "c.h5ad"]])
def test_a_glob_that_matched_nothing_is_named_as_such(tmp_path, command):
    """`nanog1 predict calls/*.vcf` where calls/ holds .vcf.gz files: the shell passes the pattern on as it
    is, and 'calls/*.vcf: input file not found' reads as a missing file named '*.vcf' (a QA run as a user).
    The error says the glob matched no file and what the folder holds."""
    (tmp_path / "calls").mkdir()
    (tmp_path / "calls" / "P1.vcf.gz").write_bytes(b"")
    pattern = tmp_path / "calls" / "*.vcf"
    result = CliRunner().invoke(app, [command[0], str(pattern), *command[1:]])
    one_line_error(result, f"{pattern}: input file not found: a glob that matched no file (the shell passes "
                   "it on as it is); calls holds 1 file(s), e.g. P1.vcf.gz")
    plain = CliRunner().invoke(app, [command[0], str(tmp_path / "t.vcf"), *command[1:]])
    assert "input file not found" in plain.output and "matched no file" not in plain.output


@pytest.mark.parametrize(("args", "needle"), [
    (["predict", "{tmp}/t.vcf", "-r", "{tmp}/hg19.fa", "--out", "{tmp}/o"],
     "error: Invalid value for '--reference' / '-r': file '{tmp}/hg19.fa' does not exist."),
    (["ingest", "{tmp}/t.vcf", "--genes", "{tmp}/genes.gtf", "--out", "{tmp}/c.h5ad"],
     "error: Invalid value for '--genes': file '{tmp}/genes.gtf' does not exist."),
    (["predict", "{tmp}/t.vcf", "--draws", "0", "--out", "{tmp}/o"],
     "error: Invalid value for '--draws': Input should be greater than or equal to 1"),
])
def test_a_missing_option_file_or_a_bad_value_is_one_line(tmp_path, args, needle):
    """README: a missing file is one `error:` line naming it, exit 2. An option's file checked by the
    command line (a mistyped -r FASTA) was click's usage box instead: four lines, the path wrapped."""
    (tmp_path / "t.vcf").write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    result = CliRunner().invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert one_line_error(result) == needle.format(tmp=tmp_path)


@pytest.mark.parametrize("command", [["ingest", "{dir}", "--out", "{tmp}/c.h5ad"],
                                     ["predict", "{dir}", "--out", "{tmp}/out"]])
def test_a_folder_mixing_bgzipped_and_plain_vcfs_is_answered_with_a_glob_for_each(command, tmp_path: Path):
    """A lab's folder holds T1.vcf.gz, T2.vcf.gz and a plain T3.vcf: the suggestion names both endings (it
    named only the commonest, *.vcf.gz, which leaves T3 untyped), and no glob for its notes.txt."""
    folder = tmp_path / "calls"
    folder.mkdir()
    for name in ("T1.vcf.gz", "T2.vcf.gz", "T2.vcf.gz.tbi", "T3.vcf", "notes.txt"):
        (folder / name).write_text("1\t100\tT\tA\tC\n")
    result = CliRunner().invoke(app, [a.format(dir=folder, tmp=tmp_path) for a in command])
    line = one_line_error(result, f"{folder}: a directory", f"e.g. {folder / '*.vcf.gz'} {folder / '*.vcf'}")
    assert line.endswith(str(folder / "*.vcf")), line
