"""The console script exists and tells the truth about its sub-commands."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from nanog1.cli import app


def _is_group(command) -> bool:
    """A command group (typer ships its own copy of click, so click.Group is not its base class)."""
    return hasattr(command, "commands")


def test_help_lists_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("info", "demo"):
        assert name in result.output


def test_every_command_in_a_help_list_is_one_line(monkeypatch):
    """`nanog1 --help` (and each group's) lists a one-line summary per command: a docstring's first paragraph
    is what the list shows, so a summary with hard line breaks spilled the whole text into the list."""
    import typer

    monkeypatch.setenv("COLUMNS", "300")  # wide enough that no summary wraps: only hard breaks make rows
    root = typer.main.get_command(app)
    groups = {(): root} | {(n,): c for n, c in root.commands.items() if _is_group(c)}
    for words, group in groups.items():
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, result.output
        panel = result.output.split("Commands", 1)[1].split("╰", 1)[0].splitlines()[1:]
        rows = [line.strip("│ ") for line in panel if line.strip("│ ")]
        listed = [c for c in group.commands.values() if not c.hidden]
        assert len(rows) == len(listed), (words, rows)  # one row per command, nothing spilled


def test_command_help_wraps_to_the_terminal(monkeypatch):
    """Every command's description in `--help` fills an 80-column terminal line by line: rich kept the
    docstrings' source line breaks (about 110 columns), so each source line wrapped on its own and left a
    ragged short line behind it (`predict --help`: "... skipped by reason. A" then "FILTER rule ...")."""
    import typer

    monkeypatch.setenv("COLUMNS", "80")
    root = typer.main.get_command(app)
    commands = [((name,), c) for name, c in root.commands.items()]
    commands += [((g, name), c) for g, grp in root.commands.items() if _is_group(grp)
                 for name, c in grp.commands.items()]
    checked = 0
    for words, command in commands:
        if _is_group(command):
            continue
        result = CliRunner().invoke(app, [*words, "--help"])
        assert result.exit_code == 0, (words, result.output)
        description = result.output.split("Usage:", 1)[1].split("╭", 1)[0].splitlines()[1:]
        paragraph: list[str] = []
        for line in [*description, ""]:
            if line.strip():
                paragraph.append(line.rstrip())
                continue
            # a paragraph's line breaks only where the next word did not fit
            for inner, after in zip(paragraph[:-1], paragraph[1:], strict=True):
                assert len(inner) + 1 + len(after.split()[0]) > 74, (words, inner, paragraph)
            checked += len(paragraph) > 1
            paragraph = []
    assert checked >= 10  # many commands have descriptions longer than one line


def test_every_out_option_takes_dash_o():
    """`-o` names the output wherever `--out` does: ingest and predict took `-o` and cohort merge, train,
    evaluate, embed and the others answered "No such option: -o" (a QA run as a user)."""
    import typer

    root = typer.main.get_command(app)
    commands = [((n,), c) for n, c in root.commands.items() if not _is_group(c)]
    commands += [((g, n), c) for g, grp in root.commands.items() if _is_group(grp)
                 for n, c in grp.commands.items()]
    outs = {words: p for words, c in commands for p in c.params if "--out" in getattr(p, "opts", [])}
    assert len(outs) >= 15, sorted(outs)
    missing = sorted(" ".join(w) for w, p in outs.items() if "-o" not in p.opts)
    assert not missing, missing


def test_console_script_runs():
    exe = Path(sys.executable).parent / "nanog1"
    out = subprocess.run([str(exe), "info"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("nanog1 ")
    assert "torch" in out.stdout


def test_info_says_whether_the_triton_kernels_run():
    """README: the core runs SDPA's fused kernels and our Triton kernels on CUDA, and `nanog1 info` says
    which; info printed the device and SDPA's flags only, never whether the Triton kernels could run."""
    import torch

    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    line = next((s for s in result.output.splitlines() if s.startswith("Triton kernels")), None)
    assert line is not None, result.output
    if not torch.cuda.is_available():
        assert line.endswith("off (no CUDA GPU: the PyTorch paths run)"), line


def _readme_commands() -> list[list[str]]:
    """The `nanog1 ...` command lines of the README's code blocks, as argument lists."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    commands = []
    for line in "\n".join(blocks).splitlines():
        for part in line.split("#", 1)[0].split("&&"):
            words = shlex.split(part)
            if words[:1] == ["nanog1"]:
                commands.append(words[1:])
    return commands


def test_every_option_in_the_readme_examples_exists():
    """Each option the README's examples pass is one the command's parser accepts."""
    import typer

    commands = _readme_commands()
    assert len(commands) >= 15
    for words in commands:
        cmd, path = typer.main.get_command(app), ["nanog1"]
        while words and words[0] in getattr(cmd, "commands", {}):
            cmd = cmd.commands[words[0]]
            path.append(words.pop(0))
        accepted = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
        for word in words:
            if word.startswith("-"):
                assert word.split("=", 1)[0] in accepted, f"README: `{' '.join(path)} {word}` does not exist"


def test_evaluate_and_embed_take_a_packaged_model_by_name(tmp_path, monkeypatch):
    """`predict --model pcawg-catalogue` takes the packaged model by name; so do `evaluate --run` and
    `embed --run` (they asked for a folder inside site-packages). Inputs: SBS96/DBS78/ID83 matrices as
    SigProfilerMatrixGenerator writes them (MutationType rows), ingested with a sheet of PCAWG types."""
    import numpy as np
    import pandas as pd

    from nanog1.genomics.channels import CHANNEL_SETS

    monkeypatch.chdir(tmp_path)  # no folder named like the model here
    samples = ["PD1a", "PD2a", "PD3a"]
    rng = np.random.default_rng(3)
    files = []
    for name, n in (("SBS96", 30), ("DBS78", 2), ("ID83", 4)):
        labels = list(CHANNEL_SETS[name])
        counts = rng.poisson(n, (len(labels), len(samples)))
        files.append(tmp_path / f"study.{name}.all")
        frame = pd.DataFrame(counts, index=pd.Index(labels, name="MutationType"), columns=samples)
        frame.to_csv(files[-1], sep="\t")
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("sample\tcancer_type\n" + "".join(f"{s}\tBreast-AdenoCA\n" for s in samples))
    cohort = tmp_path / "c.h5ad"
    args = ["ingest", *map(str, files), "--samples", str(sheet), "-o", str(cohort), "-q"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["evaluate", str(cohort), "--run", "pcawg-catalogue", "--out", "e.h5ad"])
    assert res.exit_code == 0, res.output
    assert "scored: all 3 tumours" in res.output and (tmp_path / "e.h5ad").is_file(), res.output
    res = CliRunner().invoke(app, ["embed", str(cohort), "--run", "pcawg-catalogue", "--out", "m.h5ad"])
    assert res.exit_code == 0 and (tmp_path / "m.h5ad").is_file(), res.output
    res = CliRunner().invoke(app, ["evaluate", str(cohort), "--run", "pcawg-catalog", "--out", "x.h5ad"])
    assert res.exit_code == 2 and "pcawg-catalog/model.pt: no such model" in res.output, res.output


def test_train_and_pretrain_help_state_every_default():
    """`nanog1 train/pretrain --help` states the default of every training option the command leaves to
    TrainConfig (an option left unset takes TrainConfig's value): the help showed nothing for --epochs,
    --hidden, --lr, --task ..., and pretrain's --view still called the event view's objective masked."""
    import dataclasses

    import typer

    from nanog1.encoder.config import TrainConfig

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    root = typer.main.get_command(app)
    for name in ("train", "pretrain"):
        for param in root.commands[name].params:
            if param.name not in defaults or param.default is not None or getattr(param, "hidden", False):
                continue
            if (name, param.name) == ("pretrain", "objective"):  # follows --view, and says so
                assert "event-view default" in param.help and "catalogue-view default" in param.help
                continue
            value = defaults[param.name]
            if value is None:
                continue
            shown = ("on" if value else "off") if isinstance(value, bool) else (
                f"{value:g}" if isinstance(value, float) else str(value))
            text = " ".join((param.help or "").split())
            assert f"default {shown}" in text, f"nanog1 {name} {param.opts[0]}: {text!r}"
    view = next(p for p in root.commands["pretrain"].params if p.name == "view")
    assert "contrastive" in view.help, view.help


def test_every_tracking_uri_option_names_its_default_store():
    """Every command's --tracking-uri help says what an unset one uses: MLFLOW_TRACKING_URI first (as
    nanog1.tracking.default_tracking_uri reads it), else a SQLite file; only `train` said the first, and
    `baselines` said nothing."""
    import typer

    def walk(cmd, path):
        for param in cmd.params:
            if "--tracking-uri" in param.opts and not cmd.hidden:
                yield path, param
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, [*path, name])

    found = list(walk(typer.main.get_command(app), ["nanog1"]))
    assert len(found) >= 8
    for path, param in found:
        assert "MLFLOW_TRACKING_URI" in (param.help or ""), " ".join(path)


def test_demo_messages_name_the_command_an_installed_package_has(monkeypatch):
    """`nanog1 demo` from a wheel (no Makefile) told the user to run `make demo` again after a stop and
    `make app` after success; both name the `nanog1` command first now."""
    import nanog1.pipeline.runner as runner

    for code, said in ((1, "run `nanog1 demo`"), (0, "dashboard with `nanog1 app`")):
        monkeypatch.setattr(runner, "run_pipeline", lambda *a, code=code, **k: code)
        result = CliRunner().invoke(app, ["demo"])
        assert result.exit_code == code and said in result.output, result.output


def test_every_option_the_docs_name_inline_exists():
    """Each `nanog1 <command> --option` written inline in README.md and docs/*.md (not only the README's
    bash blocks) names an option that command's parser accepts; `pipeline run` passes unknown ones on."""
    import typer

    root_dir = Path(__file__).resolve().parents[1]
    texts = [root_dir / "README.md", *sorted((root_dir / "docs").glob("*.md"))]
    spans = [s for f in texts for s in re.findall(r"`(nanog1 [^`]+)`", f.read_text())]
    assert len(spans) >= 30
    checked = 0
    for span in spans:
        words = [w.strip("[]") for w in span.split()[1:]]
        cmd, path = typer.main.get_command(app), ["nanog1"]
        while words and words[0] in getattr(cmd, "commands", {}):
            cmd = cmd.commands[words[0]]
            path.append(words.pop(0))
        if cmd.ignore_unknown_options:  # pipeline run: the rest goes to Snakemake
            continue
        accepted = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
        for word in words:
            if word.startswith("--"):
                option = re.split(r"[=|]", word)[0].rstrip(".,;:)")
                assert option in accepted, f"docs: `{span}`: {' '.join(path)} has no {option}"
                checked += 1
    assert checked >= 20


def _param_help(command: str, name: str) -> str:
    """The help text of `nanog1 COMMAND`'s parameter `name` (as --help shows it, before wrapping)."""
    import typer

    params = typer.main.get_command(app).commands[command].params
    return " ".join(p.help or "" for p in params if p.name == name)


def test_predict_help_says_its_inputs_are_files_as_it_refuses_a_folder(tmp_path):
    """`nanog1 predict folder/` is refused ("a directory, not an input file: give its files with a glob");
    its --help said only "VCF/BCF, MAF, catalogue matrices ...", and its --on-error help speaks of "a folder
    of VCF/MAF files": a QA run as a user gave the folder. The help says what the command takes."""
    (tmp_path / "calls").mkdir()
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "calls"), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and "a directory, not an input file" in res.output
    assert "Files, not directories: use a glob" in _param_help("predict", "inputs")


def test_ingest_help_says_out_is_needed_unless_check_only(tmp_path):
    """`nanog1 ingest x.vcf` without --out stops ("--out is required (or --check-only)"), while its --help
    showed --out as optional ("Cohort .h5ad to write (atomically)."): the help says when it is needed."""
    vcf = tmp_path / "a.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    res = CliRunner().invoke(app, ["ingest", str(vcf)])
    assert res.exit_code == 2 and "--out is required (or --check-only)" in res.output
    assert "required unless --check-only" in _param_help("ingest", "out")
