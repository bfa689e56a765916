"""The genome column of SigProfiler's headerless VCFs and text files (QA: mm10_bench.vcf, 9,631 mouse calls,
was typed by the human pcawg-catalogue model without a word, and a GRCh38 file was not known as GRCh38).

SigProfilerMatrixGenerator's example VCFs have no header: `CHROM POS ID REF ALT . project genome context
strand`, the genome (GRCh37, GRCh38, mm9, mm10, rn6 ...) in the eighth column; the text format has it in its
Genome column. The file's one genome is build evidence (uns['nanog1']['genome_build']); another species'
genome abstains under any model (all are trained on human tumours); a file stating two genomes, or another
genome than the FASTA's, is refused naming the file (and the line).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.encoder.predictor import PredictOptions, predict, read_inputs
from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.variants import InputError
from tests.test_genome_build import grch37_chr21  # noqa: F401  (a fixture: a FASTA of GRCh37's chr21 length)

FAST = PredictOptions(neighbours=0, exposures=False)


def _rows(genomes: list[str], chrom: str = "1", start: int = 1_000, letters: np.ndarray | None = None) -> str:
    """Headerless rows as SigProfilerMatrixGenerator's examples write them, one genome per row; REF the
    FASTA's base where `letters` is given, else C>T."""
    lines = []
    for i, genome in enumerate(genomes):
        pos = start + 997 * i
        ref = chr(letters[pos - 1]) if letters is not None else "C"
        alt = "ACGT"[("ACGT".index(ref) + 1) % 4]
        lines.append(f"{chrom}\t{pos}\tPD1\t{ref}\t{alt}\t.\tSimulations\t{genome}\tTCA\t+1\n")
    return "".join(lines)


def _headerless(path: Path, genomes: list[str], **kw) -> Path:
    path.write_text(_rows(genomes, **kw))
    return path


def test_an_mm10_headerless_vcf_abstains_under_the_catalogue_model_saying_why(tmp_path, monkeypatch):
    """The catalogue model states no build (it reads no positions), so nothing stopped mouse calls: now the
    tumour abstains with the genome and its source, the warning and the closing line say so; `ingest`
    records mm10 in the cohort and predict on the .h5ad abstains the same. A GRCh37 twin does not."""
    monkeypatch.setenv("COLUMNS", "300")
    mouse = _headerless(tmp_path / "mouse.vcf", ["mm10"] * 40)
    adata = read_inputs([mouse])
    with pytest.warns(UserWarning, match="non-human genome: 1 of 1 tumour"):
        predict(adata, "pcawg-catalogue", FAST)
    reason = adata.obs.loc["mouse", "abstain_reason"]
    assert reason.startswith("genome build mm10 (genome column): not a human genome"), reason
    assert adata.obs.loc["mouse", "abstain"] and adata.obs.loc["mouse", "genome_build"] == "mm10"
    record = adata.uns["nanog1_predict"]
    assert record["abstained_by_reason"]["genome build"] == 1
    assert "mouse.vcf: genome column: mm10 (line 1)" in record["genome_build_note"]
    res = CliRunner().invoke(app, ["ingest", str(mouse), "--out", str(tmp_path / "c.h5ad"), "--quiet"])
    assert res.exit_code == 0 and "genome build (samples): mm10 1" in res.output, res.output
    table = read_cohort(tmp_path / "c.h5ad").uns["nanog1"]["genome_build"]
    assert table["genome_build"].tolist() == ["mm10"]
    res = CliRunner().invoke(app, ["predict", str(tmp_path / "c.h5ad"), "--model", "pcawg-catalogue",
                                   "--out", str(tmp_path / "out"), "--no-exposures", "--neighbours", "0",
                                   "--no-reports"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "1 abstained (genome build 1" in text, text
    assert "warning: non-human genome: 1 of 1 tumour(s) on mm10" in text, text
    human = read_inputs([_headerless(tmp_path / "human.vcf", ["GRCh37"] * 40)])
    predict(human, "pcawg-catalogue", FAST)
    assert "genome build" not in human.obs.loc["human", "abstain_reason"]
    assert human.uns["nanog1_predict"]["genome_build_note"] == ""


def test_a_grch38_headerless_vcf_is_recorded_grch38_and_abstains_under_a_grch37_model(tmp_path):
    """The genome column is the file's build evidence (GRCh38 or hg38 read GRCh38): recorded per sample with
    the line it came from, and the GRCh37 exome model abstains on it as on a GRCh38 VCF header."""
    files = [_headerless(tmp_path / f"{name}.vcf", [genome] * 30)
             for name, genome in (("t38", "GRCh38"), ("u38", "hg38"), ("t37", "GRCh37"))]
    res = CliRunner().invoke(app, ["ingest", *map(str, files), "--out", str(tmp_path / "c.h5ad"), "--quiet"])
    assert res.exit_code == 0, res.output
    table = read_cohort(tmp_path / "c.h5ad").uns["nanog1"]["genome_build"].set_index("sample")
    assert table["genome_build"].to_dict() == {"t38": "GRCh38", "u38": "GRCh38", "t37": "GRCh37"}
    assert table.loc["u38", "evidence"] == "u38.vcf: genome column: hg38 (line 1)"
    adata = read_inputs([tmp_path / "c.h5ad"])
    with pytest.warns(UserWarning, match="genome build mismatch: 2 of 3 tumour"):
        predict(adata, "tcga-exome", PredictOptions(neighbours=0, exposures=False, assay="exome"))
    reasons = adata.obs["abstain_reason"]
    assert "genome build GRCh38 (genome column): model trained on GRCh37 positions" in reasons["t38"]
    assert "genome build" not in reasons["t37"]


def test_a_file_stating_two_genomes_is_one_error_naming_file_and_line(tmp_path):
    """Lines 1-3 state GRCh37, line 4 mm10: ingest and predict stop at line 4 naming the first line's genome
    (exit 2, no traceback, nothing written); the same in a text file's Genome column (line 1 its header)."""
    mixed = _headerless(tmp_path / "mixed.vcf", ["GRCh37", "GRCh37", "GRCh37", "mm10", "GRCh37"])
    expected = (f"{mixed}:4: genome mm10 (mm10) where the lines above state GRCh37 (GRCh37, from line 1): "
                "one file of two genome builds")
    for command in (["ingest", str(mixed), "--out", str(tmp_path / "c.h5ad")],
                    ["predict", str(mixed), "--model", "pcawg-catalogue", "--out", str(tmp_path / "out")]):
        res = CliRunner().invoke(app, command)
        assert res.exit_code == 2 and expected in " ".join(res.output.split()), res.output
        assert "Traceback" not in res.output
    assert not (tmp_path / "c.h5ad").exists() and not (tmp_path / "out").exists()
    text = tmp_path / "calls.txt"
    rows = [f"P\tS1\t.\t{g}\tSNP\t1\t{1000 + i}\t{1000 + i}\tC\tT\tSOMATIC" for i, g in enumerate(
        ["GRCh38", "GRCh38", "mm10"])]
    text.write_text("Project\tSample\tID\tGenome\tmut_type\tchrom\tpos_start\tpos_end\tref\talt\tType\n"
                    + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match=r"calls\.txt:4: genome mm10 \(mm10\) where the lines above state "
                                         r"GRCh38 \(GRCh38, from line 2\)"):
        read_inputs([text])


def test_a_headerless_file_of_another_genome_than_the_fasta_is_refused(tmp_path, grch37_chr21):  # noqa: F811
    """REF alleles read from the FASTA, so nothing else stops them: mm10 or GRCh38 calls against a FASTA whose
    chr21 length is GRCh37's are refused by ingest and by --check-only, naming the file, its genome and the
    FASTA's build; the same calls stated GRCh37 go through."""
    fasta, letters = grch37_chr21
    for genome in ("mm10", "GRCh38"):
        path = _headerless(tmp_path / f"{genome}.vcf", [genome] * 20, chrom="21", start=15_000_000,
                           letters=letters)
        expected = (f"{path}: the genome column states {genome} (line 1) but the reference {fasta} is GRCh37 "
                    "(contig lengths: 1 of 1 chromosomes match GRCh37")
        for extra in ([], ["--check-only"]):
            res = CliRunner().invoke(app, ["ingest", str(path), "-r", str(fasta), "--out",
                                           str(tmp_path / "c.h5ad"), *extra])
            assert res.exit_code == 2 and expected in " ".join(res.output.split()), res.output
            assert "another genome build than this FASTA" in " ".join(res.output.split())
        assert not (tmp_path / "c.h5ad").exists()
    ok = _headerless(tmp_path / "b37.vcf", ["GRCh37"] * 20, chrom="21", start=15_000_000, letters=letters)
    res = CliRunner().invoke(app, ["ingest", str(ok), "-r", str(fasta), "--out", str(tmp_path / "c.h5ad")])
    assert res.exit_code == 0, res.output


def _example(name: str) -> Path:
    """SigProfilerMatrixGenerator's shipped example VCF `name` (skips the test where it is not installed)."""
    spec = importlib.util.find_spec("SigProfilerMatrixGenerator")  # found, not imported (slow)
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("SigProfilerMatrixGenerator is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root / "references" / "vcf_files" / name / f"{name}.vcf"
    if not path.is_file():
        pytest.skip(f"{path} is not shipped with this SigProfilerMatrixGenerator")
    return path


def test_sigprofiler_example_vcfs_state_their_genome(tmp_path):
    """The registry package's own examples: mm10_bench.vcf (9,631 mouse calls) abstains under
    pcawg-catalogue for its genome; GRCh38_bench.vcf is recorded GRCh38 from its genome column."""
    mouse = read_inputs([_example("mm10_bench")])
    with pytest.warns(UserWarning, match="non-human genome"):
        predict(mouse, "pcawg-catalogue", FAST)
    assert mouse.obs["abstain_reason"].iloc[0].startswith("genome build mm10 (genome column)")
    human = read_inputs([_example("GRCh38_bench")])
    table = human.uns["nanog1"]["genome_build"]
    assert table["genome_build"].tolist() == ["GRCh38"]
    assert table["evidence"].iloc[0] == "GRCh38_bench.vcf: genome column: GRCh38 (line 1)"
