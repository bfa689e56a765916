"""A run of single-tumour files without one indel is noted once (issue 31, "a mismatch is never silent").

A lab running `nanog1 ingest` / `predict` on many single-sample VCFs of a caller that did not call indels
(Mutect2 filtered to SNVs) gets files that are each under the per-tumour (SNV_ONLY_MIN_SBS) and per-file
(FILE_SNV_ONLY_MIN_SBS, >= 2 tumours) rules, yet a whole run without an indel is very unlikely from a
caller that called them (benchmarks/indel_free_rates.py). The run is noted once, never guessed: the
tumours stay read as zero indels until declared with --not-measured indels. Files are written as Mutect2
writes them (tests/test_ingest_somatic.py's header), with a Strelka2 SNV file, which says it holds no
indel, beside them.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.encoder.predict_notes import input_warnings, snv_only_note
from nanog1.encoder.predictor import PredictOptions, predict, read_inputs
from nanog1.genomics.channels import RUN_SNV_ONLY_MIN_FILES, RUN_SNV_ONLY_MIN_SBS, SNV_ONLY_MIN_SBS
from nanog1.genomics.ingest import ingest
from tests.test_ingest_somatic import MUTECT2_META, sites, snv_rows, strelka_snvs, write
from tests.test_measured_per_sample import genome, warning_lines  # noqa: F401  (fixture)

OPTIONS = PredictOptions(neighbours=0, exposures=False)
#: Between SNV sites: 20 kb hold about 350 (isolated, so no doublet).
STEP = 53
FIELDS = "TLOD=12.3\tGT:AD:AF:DP\t0/0:30,0:0.03:30\t0/1:20,9:0.3:29"


def mutect2(path, seq: str, patient: str, n_snvs: int, deletion: bool = False):
    """Patient `patient`'s Mutect2 tumour/normal VCF: `n_snvs` SNVs (a run filtered to SNVs), and one 1-bp
    deletion where `deletion` (a caller that called indels)."""
    meta = [line.replace("P1-", f"{patient}-") for line in MUTECT2_META]
    positions = sites(seq, n_snvs, step=STEP)
    rows = {int(r.split("\t")[1]): r for r in snv_rows(seq, positions, lambda p, ref, alt: FIELDS)}
    if deletion:
        p = sites(seq, 1, start=1050)[0]
        rows[p] = f"1\t{p}\t.\t{seq[p - 1 : p + 1]}\t{seq[p - 1]}\t.\tPASS\t{FIELDS}"
    write(path, meta, [f"{patient}-N", f"{patient}-T"], [rows[p] for p in sorted(rows)])
    return path


def split(total: int, files: int) -> list[int]:
    """`total` substitutions over `files` files, as evenly as possible."""
    return [total // files + (i < total % files) for i in range(files)]


def run(folder, seq: str, sizes: list[int], deletion_in: int | None = None):
    """One single-tumour Mutect2 VCF per size, in `folder`."""
    folder.mkdir()
    return [mutect2(folder / f"P{i}.vcf", seq, f"P{i}", n, deletion=i == deletion_in)
            for i, n in enumerate(sizes)]


def want(files: int, substitutions: int) -> str:
    return (f"{files} input files ({files} tumours) with {substitutions:,} substitutions together and not "
            "one indel in the whole run: if their caller did not call indels, rerun with --not-measured "
            "indels (read now as zero indels)")


def run_notes(notes: list[str]) -> list[str]:
    return [n for n in notes if "in the whole run" in n]


@pytest.fixture(scope="module")
def sizes():
    """RUN_SNV_ONLY_MIN_SBS substitutions over RUN_SNV_ONLY_MIN_FILES files: each file alone stays under the
    per-tumour rule, and the same total fits one file fewer (the genome fixture holds about 350 sites)."""
    at = split(RUN_SNV_ONLY_MIN_SBS, RUN_SNV_ONLY_MIN_FILES)
    fewer = split(RUN_SNV_ONLY_MIN_SBS, RUN_SNV_ONLY_MIN_FILES - 1)
    assert max(fewer) < min(SNV_ONLY_MIN_SBS, 300)
    return at, fewer


def test_a_run_of_indel_free_single_tumour_vcfs_is_noted_by_ingest_above_the_thresholds_only(
        genome, sizes, tmp_path):  # noqa: F811
    """RUN_SNV_ONLY_MIN_FILES Mutect2 VCFs with RUN_SNV_ONLY_MIN_SBS substitutions together and no indel:
    one note naming the files, tumours and substitutions (no tumour or file alone is noted); one
    substitution fewer, one file fewer, one deletion in one file, the run declared with --not-measured
    indels, or one file being a Strelka2 SNV file (which says it holds no indel, so its tumour's indels are
    unmeasured, not zero) gives none."""
    from nanog1.genomics.ingest import IngestOptions

    _, seq = genome
    at, fewer = sizes
    full = run(tmp_path / "full", seq, at)
    report = ingest(full, None, None, tmp_path / "full.h5ad")
    assert run_notes(report.notes) == [want(len(at), RUN_SNV_ONLY_MIN_SBS)], report.notes
    assert not any(n.startswith("P") for n in report.notes), report.notes  # no tumour alone is noted
    assert not any("in the whole file" in n for n in report.notes), report.notes

    short = run(tmp_path / "short", seq, [*at[:-1], at[-1] - 1])
    few = run(tmp_path / "few", seq, fewer)
    indel = run(tmp_path / "indel", seq, at, deletion_in=len(at) - 1)
    for files in (short, few, indel):
        notes = ingest(files, None, None, tmp_path / f"{files[0].parent.name}.h5ad").notes
        assert not run_notes(notes), (files[0].parent.name, notes)
    assert sum(fewer) >= RUN_SNV_ONLY_MIN_SBS and len(few) == RUN_SNV_ONLY_MIN_FILES - 1

    declared = ingest(full, None, None, tmp_path / "declared.h5ad", IngestOptions(not_measured=("indels",)))
    assert not run_notes(declared.notes), declared.notes

    strelka = tmp_path / "strelka"
    strelka.mkdir()
    strelka_snvs(strelka / "somatic.snvs.vcf", seq, sites(seq, at[-1], step=STEP), [], [])
    mixed = [*full[:-1], strelka / "somatic.snvs.vcf"]
    notes = ingest(mixed, None, None, tmp_path / "mixed.h5ad").notes
    assert not run_notes(notes), notes
    assert any("Strelka2 SNV file only" in n for n in notes), notes


def test_predict_records_and_states_the_indel_free_run(genome, sizes, tmp_path):  # noqa: F811
    """predict of the same run: uns['nanog1_predict']['unstated_snv_only_run'] holds the files, tumours,
    substitutions and note, the input warnings (CLI, reports, dashboard) state it, predictions.json keeps
    it; a run with one deletion records nothing. A cohort ingested from the run keeps the rule."""
    _, seq = genome
    at, _ = sizes
    full = run(tmp_path / "full", seq, at)
    note = want(len(at), RUN_SNV_ONLY_MIN_SBS)
    adata = read_inputs(full)
    predict(adata, "pcawg-catalogue", OPTIONS)
    record = adata.uns["nanog1_predict"]["unstated_snv_only_run"]
    assert dict(record) == {"files": len(at), "tumours": len(at), "substitutions": RUN_SNV_ONLY_MIN_SBS,
                            "note": note}
    warned = [n.text for n in input_warnings(adata) if n.kind == "snv_only"]
    assert warned == [note], warned
    assert snv_only_note(adata.uns["nanog1_predict"]) == note

    indel = read_inputs(run(tmp_path / "indel", seq, at, deletion_in=0))
    predict(indel, "pcawg-catalogue", OPTIONS)
    assert dict(indel.uns["nanog1_predict"]["unstated_snv_only_run"]) == {}
    assert not [n for n in input_warnings(indel) if n.kind == "snv_only"]

    runner = CliRunner()
    res = runner.invoke(app, ["ingest", *map(str, full), "-o", str(tmp_path / "c.h5ad"), "-q"])
    assert res.exit_code == 0, res.output
    args = ["--no-exposures", "--neighbours", "0", "--no-reports", "--out", str(tmp_path / "typed")]
    res = runner.invoke(app, ["predict", str(tmp_path / "c.h5ad"), *args])
    assert res.exit_code == 0, res.output
    assert note in warning_lines(res), res.stderr
    doc = json.loads((tmp_path / "typed" / "predictions.json").read_text())
    assert doc["model"]["unstated_snv_only_run"]["note"] == note
    assert doc["model"]["unstated_snv_only_run"]["files"] == len(at)


def test_a_merged_cohort_of_single_file_parts_is_one_run(genome, sizes, tmp_path):  # noqa: F811
    """The pipeline ingests its inputs in parts and merges them: parts of too few files are not noted, the
    merged cohort (what predict reads) is, as the same files ingested together; with a deletion in one
    part, the merged cohort is not."""
    from nanog1.genomics.cohort import read_cohort
    from nanog1.genomics.merge import merge_adatas
    from nanog1.genomics.unstated_sets import unstated_indel_free_run

    _, seq = genome
    at, _ = sizes
    half = len(at) // 2

    def merged(files) -> tuple | None:
        parts, paths = [], []
        for name, chunk in (("a", files[:half]), ("b", files[half:])):
            out = tmp_path / f"{files[0].parent.name}_{name}.h5ad"
            assert not run_notes(ingest(chunk, None, None, out).notes)
            parts.append(read_cohort(out))
            paths.append(out)
        return unstated_indel_free_run(merge_adatas(parts, paths)[0])

    got = merged(run(tmp_path / "full", seq, at))
    assert got == (len(at), len(at), RUN_SNV_ONLY_MIN_SBS, want(len(at), RUN_SNV_ONLY_MIN_SBS)), got
    assert merged(run(tmp_path / "indel", seq, at, deletion_in=0)) is None


def test_a_run_whose_every_file_is_noted_as_a_whole_gets_no_second_note(tmp_path, monkeypatch):
    """RUN_SNV_ONLY_MIN_FILES exome MAFs of two tumours, each already noted as a whole file (not one indel;
    the file and run thresholds lowered to 40 substitutions so the files stay small): one note per file,
    none for the run; one more MAF under the file rule brings the run note (a file no other note names)."""
    from nanog1.genomics import channels
    from tests.test_predict_exome import write_gdc_maf

    monkeypatch.setattr(channels, "FILE_SNV_ONLY_MIN_SBS", 40)
    monkeypatch.setattr(channels, "RUN_SNV_ONLY_MIN_SBS", 40)

    def maf(i: int, substitutions: int):
        """A GDC-style exome MAF of two tumours: C>T / C>A / T>C SNVs on chr1, no indel."""
        pairs = [("C", "T"), ("C", "A"), ("T", "C")]
        calls = [[(f"NOTAGENE{k}", "1", 2_000_000 + 1_000 * k, *pairs[k % 3], "Missense_Mutation", "")
                  for k in range(n)] for n in split(substitutions, 2)]
        path = tmp_path / f"m{i}.maf"
        write_gdc_maf(path, {f"TCGA-A{i}-{j:04d}-01A-11D-A000-08": c for j, c in enumerate(calls)})
        return path

    files = [maf(i, 40) for i in range(RUN_SNV_ONLY_MIN_FILES)]
    notes = ingest(files, None, None, tmp_path / "c.h5ad").notes
    assert sum("in the whole file" in n for n in notes) == len(files), notes
    assert not run_notes(notes), notes
    notes = ingest([*files, maf(99, 2)], None, None, tmp_path / "d.h5ad").notes
    total = len(files) * 40 + 2
    assert run_notes(notes) == [f"{len(files) + 1} input files ({2 * len(files) + 2} tumours) with {total:,} "
                                "substitutions together and not one indel in the whole run: if their caller "
                                "did not call indels, rerun with --not-measured indels (read now as zero "
                                "indels)"], notes


def test_the_pipelines_merge_step_notes_a_run_of_indel_free_parts(genome, sizes, tmp_path):  # noqa: F811
    """The pipeline ingests each file as its own part (each too small for any rule: no note) and gathers
    them with `nanog1 cohort merge`: the merge prints the run's note once, as `ingest` of the same files
    does; with a deletion in one part it prints none. Before, the merge step said nothing."""
    _, seq = genome
    at, _ = sizes

    def merge_output(files) -> str:
        parts = []
        for path in files:
            parts.append(tmp_path / f"{files[0].parent.name}_{path.stem}.h5ad")
            assert not run_notes(ingest([path], None, None, parts[-1]).notes)
        out = tmp_path / f"{files[0].parent.name}_merged.h5ad"
        res = CliRunner().invoke(app, ["cohort", "merge", *map(str, parts), "--out", str(out)])
        assert res.exit_code == 0, res.output
        return res.output

    printed = merge_output(run(tmp_path / "full", seq, at))
    assert printed.count("in the whole run") == 1
    assert f"note: {want(len(at), RUN_SNV_ONLY_MIN_SBS)}" in printed
    assert "in the whole run" not in merge_output(run(tmp_path / "indel", seq, at, deletion_in=0))
