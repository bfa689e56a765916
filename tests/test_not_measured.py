"""`--not-measured SETS` and the note on substitution-only files that do not say so (issue 31).

A substitution-only VCF whose header does not say so (SigProfiler's headerless example VCFs, a lab's
SNV-only export, Mutect2 run on SNVs only) reads as "indels measured, zero indels". The user's switch
declares the sets unmeasured for every tumour of the run, through the same per-sample record a Strelka2
SNV file alone gives (so the prediction equals that of the same SNVs as a Strelka2 SNV file), and predict
says why per tumour. A tumour with many substitutions and no indel is noted, never guessed. Files are
written as the producers write them (tests/test_measured_per_sample.py, tests/test_ingest_failures.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.encoder.predict_notes import input_warnings
from nanog1.encoder.predictor import PredictOptions, load_predictor, predict, read_inputs
from nanog1.genomics.channels import ID83, NO_DOUBLET_MIN_SBS, SNV_ONLY_MIN_SBS
from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.ingest import ingest
from nanog1.genomics.synthetic import GenomeSpec, make_genome
from nanog1.schema import DECLARED_WHY, measured_sets_per_sample
from tests.test_cli_errors import one_line_error
from tests.test_ingest_somatic import sites, snv
from tests.test_measured_per_sample import (  # noqa: F401  (fixture)
    genome,
    mutect2_complete,
    strelka_alone,
    warning_lines,
)

OPTIONS = PredictOptions(neighbours=0, exposures=False)
NO_INDELS = {"SBS96": True, "DBS78": True, "ID83": False, "SBS6": True, "ID12": False}


def headerless(path, seq: str, positions: list[int]):
    """A VCF as SigProfilerAssignment/MatrixGenerator ship their examples: no header, CHROM POS ID REF ALT
    and free text after; substitutions only, and nothing says so."""
    rows = "".join(f"1\t{p}\t{path.stem}\t{snv(seq, p)[0]}\t{snv(seq, p)[1]}\t.\tSims\tGRCh37\n"
                   for p in positions)
    path.write_text(rows)
    return path


def mutect2_snvs(folder, seq: str):
    """A Mutect2 tumour/normal VCF of SNVs only (a caller run on SNVs): the same sites as strelka_alone."""
    folder.mkdir(exist_ok=True)
    mutect2_complete(folder / "p1.vcf", seq, sites(seq, 80, start=1020), [])
    return folder / "p1.vcf"


def measured(adata) -> dict[str, dict[str, bool]]:
    table = measured_sets_per_sample(adata)
    return {str(s): {k: bool(v) for k, v in row.items()} for s, row in table.iterrows()}


def test_not_measured_indels_scores_a_mutect2_snv_file_as_a_strelka2_snv_file(genome, tmp_path):  # noqa: F811
    """The same 80 SNVs as a Mutect2 VCF with --not-measured indels and as a Strelka2 SNV file alone: the
    same counts, the same sets masked, the same probabilities; read plainly (indels measured, zero), they
    differ. The note names the reason; the Python API (PredictOptions) gives the same."""
    fasta, seq = genome
    model = load_predictor("pcawg-catalogue")
    m2 = mutect2_snvs(tmp_path / "M", seq)
    strelka = read_inputs([strelka_alone(tmp_path / "S", seq)], fasta)
    predict(strelka, model, OPTIONS)
    declared = read_inputs([m2], fasta, not_measured="indels")
    predict(declared, model, OPTIONS)
    np.testing.assert_array_equal(np.asarray(declared.X), np.asarray(strelka.X))
    assert measured(declared) == {"P1-T": NO_INDELS}
    assert declared.obs["not_measured"].tolist() == ["ID83+ID12"]
    assert declared.obs["channel_sets_masked"].tolist() == strelka.obs["channel_sets_masked"].tolist()
    want = strelka.obsm["proba_type"].to_numpy()
    np.testing.assert_allclose(declared.obsm["proba_type"].to_numpy(), want, atol=1e-6)

    record = declared.uns["nanog1_predict"]
    assert record["unmeasured_why"] == {"tumour": ["P1-T"], "sets": ["ID83+ID12"], "why": [DECLARED_WHY]}
    warned = " ".join(n.text for n in input_warnings(declared))
    assert ("indels (ID83+ID12) not measured for P1-T (declared not measured (--not-measured)): masked as "
            "unmeasured, never read as zero mutations") in warned, warned
    assert "channel sets masked as unmeasured:" not in warned

    plain = read_inputs([m2], fasta)
    assert measured(plain)["P1-T"]["ID83"]  # read as measured, zero indels: the issue
    via_api = plain.copy()
    predict(via_api, model, PredictOptions(neighbours=0, exposures=False, not_measured=("ID83",)))
    np.testing.assert_allclose(via_api.obsm["proba_type"].to_numpy(), want, atol=1e-6)
    predict(plain, model, OPTIONS)
    assert np.abs(plain.obsm["proba_type"].to_numpy() - want).max() > 1e-3


def test_cli_not_measured_on_a_headerless_sigprofiler_vcf(genome, tmp_path):  # noqa: F811
    """ingest --not-measured ID83 records the indel sets unmeasured (ID12 with its source) in the cohort,
    and predict of that cohort states why; predict --not-measured indels on the file itself says the same
    in its warning lines and predictions.json."""
    fasta, seq = genome
    vcf = headerless(tmp_path / "PD1.vcf", seq, sites(seq, 80, start=1020))
    runner = CliRunner()
    res = runner.invoke(app, ["ingest", str(vcf), "-r", str(fasta), "-o", str(tmp_path / "c.h5ad"), "-q",
                              "--not-measured", "ID83"])
    assert res.exit_code == 0, res.output
    cohort = read_cohort(tmp_path / "c.h5ad")
    assert measured(cohort) == {"PD1": NO_INDELS}
    assert cohort.uns["nanog1"]["channel_sets"]["ID83"] == "not_computable"
    assert cohort.obs["not_measured"].tolist() == ["ID83+ID12"]
    args = ["--no-exposures", "--neighbours", "0", "--no-reports"]
    res = runner.invoke(app, ["predict", str(tmp_path / "c.h5ad"), *args, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    assert "indels (ID83+ID12) not measured for PD1 (declared not measured (--not-measured))" in (
        warning_lines(res)), res.stderr

    res = runner.invoke(app, ["predict", str(vcf), "-r", str(fasta), *args, "--out", str(tmp_path / "b"),
                              "--not-measured", "indels"])
    assert res.exit_code == 0, res.output
    assert "indels (ID83+ID12) not measured for PD1 (declared not measured (--not-measured))" in (
        warning_lines(res)), res.stderr
    doc = json.loads((tmp_path / "b" / "predictions.json").read_text())
    assert doc["model"]["unmeasured_why"]["why"] == [DECLARED_WHY]
    a = (tmp_path / "a" / "predictions.tsv").read_text()
    assert a == (tmp_path / "b" / "predictions.tsv").read_text()  # the cohort and the file: one prediction


@pytest.mark.parametrize("command", ["ingest", "predict"])
@pytest.mark.parametrize("value, needle", [
    ("ID84", "--not-measured 'ID84': not a channel set; valid: SBS96, DBS78, ID83, SBS6, ID12, substitutions "
             "(SBS96+SBS6), doublets (DBS78), indels (ID83+ID12)"),
    ("indels,substitutions,DBS78", "declares every channel set unmeasured"),
])
def test_an_invalid_not_measured_value_is_one_line(genome, tmp_path, command, value, needle):  # noqa: F811
    fasta, seq = genome
    vcf = headerless(tmp_path / "PD1.vcf", seq, sites(seq, 10))
    res = CliRunner().invoke(app, [command, str(vcf), "--out", str(tmp_path / "o"), "--not-measured", value])
    one_line_error(res, needle)
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def long_genome(tmp_path_factory):
    work = tmp_path_factory.mktemp("long")
    seqs = make_genome(work / "g.fa", GenomeSpec(n_contigs=1, length=60_000, seed=5))
    return seqs["1"]


def test_many_substitutions_and_no_indel_is_noted_above_the_threshold_only(long_genome, tmp_path):
    """Headerless SNV-only files: the tumour with SNV_ONLY_MIN_SBS substitutions and no indel is noted (read
    as zero indels, how to declare them), the one with one fewer is not; NO_DOUBLET_MIN_SBS substitutions
    without an adjacent pair adds the doublet note. Declared (--not-measured indels), or a tumour with an
    indel, gives no indel note."""
    seq = long_genome
    n = SNV_ONLY_MIN_SBS
    big = headerless(tmp_path / "BIG.vcf", seq, sites(seq, n, step=23))
    small = headerless(tmp_path / "SMALL.vcf", seq, sites(seq, n - 1, step=23))
    huge = headerless(tmp_path / "HUGE.vcf", seq, sites(seq, NO_DOUBLET_MIN_SBS, step=23))
    with_indel = tmp_path / "INDEL.vcf"
    p = 40_001
    deletion = f"1\t{p}\tINDEL\t{seq[p - 1:p + 1]}\t{seq[p - 1]}\t.\tSims\tGRCh37\n"
    with_indel.write_text(big.read_text() + deletion)

    report = ingest([big, small, huge, with_indel], None, None, tmp_path / "c.h5ad")
    want = (f"BIG: {n} substitutions and no indel: if its caller did not call indels, rerun with "
            "--not-measured indels (read now as zero indels)")
    assert want in report.notes, report.notes
    assert not any(note.startswith(("SMALL:", "INDEL:")) for note in report.notes), report.notes

    adata = read_inputs([big, small, huge, with_indel])
    assert adata.obs.loc["INDEL", "burden_ID12"] == 1 and adata.obs.loc["INDEL", "burden_SBS6"] == n
    predict(adata, "pcawg-catalogue", OPTIONS)
    warned = [n.text for n in input_warnings(adata) if n.kind == "snv_only"]
    assert len(warned) == 1 and want in warned[0], warned
    assert "SMALL:" not in warned[0] and "INDEL:" not in warned[0]
    assert (f"HUGE: {NO_DOUBLET_MIN_SBS:,} substitutions and no doublet (adjacent substitution pair): if its "
            "caller did not call doublets, rerun with --not-measured DBS78 (read now as zero doublets)"
            in warned[0]), warned
    assert "BIG: 200 substitutions and no doublet" not in warned[0]
    record = adata.uns["nanog1_predict"]["unstated_snv_only"]
    assert sorted(zip(record["tumour"], record["kind"], strict=True)) == [
        ("BIG", "indels"), ("HUGE", "doublets"), ("HUGE", "indels")]

    declared = read_inputs([big, huge], not_measured="indels")
    predict(declared, "pcawg-catalogue", OPTIONS)
    notes = declared.uns["nanog1_predict"]["unstated_snv_only"]
    assert list(zip(notes["tumour"], notes["kind"], strict=True)) == [("HUGE", "doublets")]


def test_pipeline_ingest_not_measured_reaches_every_part_and_the_merged_cohort(tmp_path):
    """ingest.not_measured in the pipeline config: each ingest part records the sets unmeasured, the merged
    cohort keeps the record and the reason (obs['not_measured']); a wrong name fails at config time."""
    import yaml

    from nanog1.pipeline import run_pipeline
    from nanog1.pipeline.config import PIPELINES_DIR, ConfigError, load_config
    from tests.test_pipeline_sheet import _config, _inputs

    fasta, files = _inputs(tmp_path)
    sheet = tmp_path / "sheet.tsv"
    sheet.write_text("sample\tcancer_type\nS1\tLung\nS2\tSkin\n")
    path = _config(tmp_path, fasta, files, sheet, "strict")
    config = yaml.safe_load(path.read_text())
    config["ingest"] = {"not_measured": ["indels"]}
    path.write_text(yaml.safe_dump(config))
    assert run_pipeline(path, cores=1, until="merge", workdir=tmp_path, quiet_table=True) == 0
    cohort = read_cohort(tmp_path / "results" / "strict" / "work" / "cohort_merged.h5ad")
    assert measured(cohort) == {"S1": NO_INDELS, "S2": NO_INDELS}
    assert cohort.obs["not_measured"].tolist() == ["ID83+ID12", "ID83+ID12"]
    with pytest.raises(ConfigError, match=r"'ingest\.not_measured': --not-measured 'indel': not a channel "
                                          r"set; valid: SBS96"):
        load_config(PIPELINES_DIR / "demo.yaml", ["ingest.not_measured=indel"])


def _exome_maf(path, tumours: dict[str, int], indel_in: str | None = None):
    """A GDC-style exome MAF: barcode -> number of substitutions, no indel unless one deletion is given to
    `indel_in` (as an SNV-only caller's export and a complete one)."""
    import pandas as pd

    from tests.test_predict_exome import _passengers, write_gdc_maf

    rng = np.random.default_rng(11)
    write_gdc_maf(path, {barcode: _passengers(rng, n) for barcode, n in tumours.items()})
    if indel_in is not None:
        frame = pd.read_csv(path, sep="\t", comment="#", dtype={"Chromosome": str})
        row = frame[frame["Tumor_Sample_Barcode"] == indel_in].iloc[[0]].copy()
        row[["Variant_Type", "Variant_Classification", "Reference_Allele", "Tumor_Seq_Allele1",
             "Tumor_Seq_Allele2", "Start_Position", "End_Position"]] = [
            "DEL", "Frame_Shift_Del", "A", "A", "-", 1_000_001, 1_000_001]
        with open(path, "w") as f:
            f.write("#version gdc-1.0.0\n")
            pd.concat([frame, row]).to_csv(f, sep="\t", index=False)
    return path


def _split(total: int, below: int) -> list[int]:
    """`total` substitutions over as few tumours as keep each one below `below`."""
    k = -(-total // (below - 1))
    return [total // k + (i < total % k) for i in range(k)]


def test_a_whole_file_of_substitutions_without_one_indel_is_noted(tmp_path):
    """Exome MAFs whose tumours each stay below the per-tumour rule (< SNV_ONLY_MIN_SBS substitutions): a
    file whose tumours together carry FILE_SNV_ONLY_MIN_SBS substitutions and not one indel is noted by
    ingest and predict (read as zero indels; rerun with --not-measured indels), with its file, tumours and
    substitutions in the record; one substitution fewer, one deletion in the file, or the file declared
    with --not-measured indels gives no note. A merged cohort (the pipeline's parts) keeps the rule."""
    from nanog1.encoder.predict_notes import snv_only_note
    from nanog1.genomics.channels import FILE_SNV_ONLY_MIN_SBS
    from nanog1.genomics.merge import merge_adatas
    from nanog1.genomics.unstated_sets import unstated_indel_free_files

    sizes = _split(FILE_SNV_ONLY_MIN_SBS, SNV_ONLY_MIN_SBS)
    assert len(sizes) >= 2 and max(sizes) < SNV_ONLY_MIN_SBS and sum(sizes) == FILE_SNV_ONLY_MIN_SBS

    def names(prefix: str) -> list[str]:
        return [f"TCGA-{prefix}-{i:04d}-01A-11D-A000-08" for i in range(len(sizes))]

    full = _exome_maf(tmp_path / "snv_only.maf", dict(zip(names("AA"), sizes, strict=True)))
    short = _exome_maf(tmp_path / "short.maf", dict(zip(names("BB"), [*sizes[:-1], sizes[-1] - 1],
                                                        strict=True)))
    indel = _exome_maf(tmp_path / "one_indel.maf", dict(zip(names("CC"), sizes, strict=True)),
                       indel_in=names("CC")[-1])
    want = (f"snv_only.maf: {len(sizes)} tumours with {FILE_SNV_ONLY_MIN_SBS:,} substitutions together and "
            "not one indel in the whole file: if its caller did not call indels, rerun with --not-measured "
            "indels (read now as zero indels)")
    report = ingest([full, short, indel], None, None, tmp_path / "c.h5ad")
    assert want in report.notes, report.notes
    assert not any("in the whole file" in n for n in report.notes if n != want), report.notes
    assert not any(n.startswith("TCGA-") for n in report.notes), report.notes  # no tumour alone is noted

    adata = read_inputs([full, short, indel])
    predict(adata, "pcawg-catalogue", OPTIONS)
    record = adata.uns["nanog1_predict"]["unstated_snv_only_files"]
    assert [p.rsplit("/", 1)[-1] for p in record["file"]] == ["snv_only.maf"], record
    assert list(record["tumours"]) == [len(sizes)]
    assert list(record["substitutions"]) == [FILE_SNV_ONLY_MIN_SBS]
    warned = [n.text for n in input_warnings(adata) if n.kind == "snv_only"]
    assert len(warned) == 1 and want in warned[0], warned
    assert snv_only_note(adata.uns["nanog1_predict"]) == want

    declared = read_inputs([full], not_measured="indels")
    predict(declared, "pcawg-catalogue", OPTIONS)
    assert not list(declared.uns["nanog1_predict"]["unstated_snv_only_files"]["file"])
    assert not [n for n in input_warnings(declared) if n.kind == "snv_only"]

    parts = []
    for path in (indel, full):
        ingest([path], None, None, tmp_path / f"{path.stem}.h5ad")
        parts.append(read_cohort(tmp_path / f"{path.stem}.h5ad"))
    merged, _ = merge_adatas(parts, [tmp_path / "one_indel.h5ad", tmp_path / "snv_only.h5ad"])
    assert [(f.rsplit("/", 1)[-1], k, n) for f, k, n, _ in unstated_indel_free_files(merged)] == [
        ("snv_only.maf", len(sizes), FILE_SNV_ONLY_MIN_SBS)]


def test_predict_not_measured_on_several_headerless_vcfs(genome, tmp_path):  # noqa: F811
    """The rerun the 'no indel' warning advises, on SigProfilerAssignment's example folder (five headerless
    VCFs): predict --not-measured indels on several files, and on a cohort of several tumours ingested with
    it, crashed with a pandas TypeError (the obs column is categorical for more than one tumour)."""
    fasta, seq = genome
    vcfs = [headerless(tmp_path / f"PD{i}.vcf", seq, sites(seq, 80, start=1020 + 7 * i)) for i in (1, 2)]
    args = ["--no-exposures", "--neighbours", "0", "--no-reports", "--not-measured", "indels"]
    runner = CliRunner()
    files = [*map(str, vcfs), "-r", str(fasta)]
    res = runner.invoke(app, ["predict", *files, *args, "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "b" / "predictions.json").read_text())
    assert doc["model"]["unmeasured_why"]["why"] == [DECLARED_WHY, DECLARED_WHY]
    cohort = ["-o", str(tmp_path / "c.h5ad"), "-q", "--not-measured", "ID83"]
    res = runner.invoke(app, ["ingest", *files, *cohort])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["predict", str(tmp_path / "c.h5ad"), *args, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    table = [(tmp_path / d / "predictions.tsv").read_text() for d in ("a", "b")]
    assert table[0] == table[1]  # the cohort and the files: one prediction


def test_declaring_every_set_the_inputs_measured_is_refused(tmp_path):
    """QA: an SBS96 matrix with `--not-measured substitutions` passed the per-name check (other sets were
    left) although the matrix measured nothing else: ingest wrote a cohort of nothing, and predict refused
    it as one to 're-ingest'. Both now say what the inputs measured and that nothing would be left."""
    from nanog1.errors import UserError
    from nanog1.genomics.ingest import IngestOptions
    from tests.test_predict import _matrix_tsv

    _matrix_tsv(tmp_path / "m.tsv", np.full((2, 96), 5), ["A", "B"])
    said = (r"--not-measured SBS96\+SBS6: the inputs of 2 of 2 tumour\(s\) \(A, B\) measured only "
            r"substitutions \(SBS96\+SBS6\), so nothing")
    declared = IngestOptions(not_measured="substitutions")
    with pytest.raises(UserError, match=said):
        ingest([tmp_path / "m.tsv"], None, None, tmp_path / "c.h5ad", declared)
    assert not (tmp_path / "c.h5ad").exists()
    with pytest.raises(UserError, match=said):
        read_inputs([tmp_path / "m.tsv"], not_measured="substitutions")
    kept = read_inputs([tmp_path / "m.tsv"], not_measured="indels")  # a set it lacks anyway: read as before
    assert measured_sets_per_sample(kept)["SBS96"].all()
    # beside a tumour that keeps a set (its indels), the matrix's tumours would still be typed from nothing
    (tmp_path / "id.tsv").write_text("MutationType\tA\tC\n" + "".join(f"{c}\t3\t3\n" for c in ID83))
    with pytest.raises(UserError, match=r"the inputs of 1 of 3 tumour\(s\) \(B\) measured only substit"):
        read_inputs([tmp_path / "m.tsv", tmp_path / "id.tsv"], not_measured="substitutions")
