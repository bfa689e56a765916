"""A FASTA that lacks contigs the calls use: those calls are counted from their alleles alone (SBS6,
DBS78, ID12, tokens), the rest in full context, and the cohort says which sets are exact for whom."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import alt_of
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.errors import UserError
from nanog1.fitting.cohort import check_fittable
from nanog1.genomics.channels import set_slice
from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.ingest import IngestOptions, ingest
from nanog1.genomics.tokens import token_table
from nanog1.genomics.variants import InputError
from nanog1.schema import recorded_channel_sets

HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


@pytest.fixture(scope="module")
def genome(two_contig_genome):
    return two_contig_genome


def snvs(seqs, chrom: str, n: int, start: int = 1_000) -> list[str]:
    out, pos = [], start
    while len(out) < n:
        if all(b in "ACGT" for b in seqs[chrom][pos - 3 : pos + 2]):
            base = seqs[chrom][pos - 1]
            out.append(f"{chrom}\t{pos}\t.\t{base}\t{alt_of(base)}\t.\tPASS\t.\n")
        pos += 97
    return out


def write_vcf(path, lines) -> None:
    path.write_text(HEADER + "".join(lines))


# Calls on MT, which the FASTA lacks: a G>T (SBS6 C>A after folding) and a 1-bp C deletion.
MT = ["MT\t300\t.\tG\tT\t.\tPASS\t.\n", "MT\t500\t.\tAC\tA\t.\tPASS\t.\n"]


@pytest.fixture
def cohort(genome, tmp_path):
    fasta, seqs = genome
    write_vcf(tmp_path / "A.vcf", snvs(seqs, "1", 20) + snvs(seqs, "2", 20) + MT)
    write_vcf(tmp_path / "B.vcf", snvs(seqs, "1", 20, start=5_000))
    report = ingest([tmp_path / "A.vcf", tmp_path / "B.vcf"], fasta, None, tmp_path / "c.h5ad")
    return report, read_cohort(tmp_path / "c.h5ad")


def assert_partial_for_b(meta: dict) -> None:
    """SBS96/ID83 partial (exact for sample B only); the sets that need no context exact."""
    assert meta["channel_sets"] == {
        "SBS96": "partial",
        "DBS78": "exact",
        "ID83": "partial",
        "SBS6": "exact",
        "ID12": "exact",
    }
    assert {k: list(v) for k, v in meta["exact_for"].items()} == {"SBS96": ["B"], "ID83": ["B"]}


def test_calls_on_missing_contigs_are_counted_without_context(cohort):
    report, adata = cohort
    x = np.asarray(adata.X, dtype=np.int64)
    a, b = adata.obs_names.get_loc("A"), adata.obs_names.get_loc("B")
    assert x[a, set_slice("SBS96")].sum() == 40 and x[a, set_slice("SBS6")].sum() == 41
    assert x[a, set_slice("ID83")].sum() == 0 and x[a, set_slice("ID12")].sum() == 1
    assert x[a, adata.var_names.get_loc("1:Del:C")] == 1 and x[a, adata.var_names.get_loc("C>A")] >= 1
    assert x[b, set_slice("SBS96")].sum() == x[b, set_slice("SBS6")].sum() == 20
    assert "unknown_contig" not in report.skips and report.missing_contigs == {"MT": 2}
    meta = adata.uns["nanog1"]
    assert_partial_for_b(meta)
    assert meta["without_context"] == {"contig_not_in_reference": {"MT": 2}}
    # fitting and the models take only the exact sets; fitting says why and what to do
    assert recorded_channel_sets(adata) == ["DBS78", "SBS6", "ID12"]
    with pytest.raises(UserError, match=r"SBS96 partial: .* exact for the 1 samples in uns"):
        check_fittable(adata, ["SBS96"])
    check_fittable(adata, ["DBS78"])
    acc = meta["accounting"].set_index("sample")
    assert acc.loc["A", ["read", "counted", "counted_without_context", "skipped"]].tolist() == [42, 42, 2, 0]
    assert acc.loc["B", ["read", "counted", "counted_without_context", "skipped"]].tolist() == [20, 20, 0, 0]
    tokens = token_table(adata, "A")
    on_mt = tokens[tokens["chrom"] == "MT"]
    assert list(on_mt["channel_set"]) == ["SBS6", "ID12"] and list(on_mt["pos"]) == [300, 500]
    assert list(adata.uns["tokens"]["chroms"]) == ["1", "2", "MT"]


def test_a_mostly_missing_reference_is_refused_unless_allowed(genome, tmp_path):
    fasta, seqs = genome
    write_vcf(tmp_path / "A.vcf", snvs(seqs, "1", 10) + MT)
    with pytest.raises(
        InputError, match=r"A\.vcf: 2 of 12 calls \(17%\) are on contigs the reference lacks \(MT 2\)"
    ):
        ingest([tmp_path / "A.vcf"], fasta, None, tmp_path / "c.h5ad")
    assert not (tmp_path / "c.h5ad").exists()
    ingest([tmp_path / "A.vcf"], fasta, None, tmp_path / "c.h5ad", IngestOptions(max_skip_fraction=0.2))
    assert read_cohort(tmp_path / "c.h5ad").obs.loc["A", "burden_SBS6"] == 11
    # SigProfiler-compatible mode skips them, as SigProfilerMatrixGenerator does
    report = ingest(
        [tmp_path / "A.vcf"],
        fasta,
        None,
        tmp_path / "d.h5ad",
        IngestOptions(sigprofiler_compatible=True, max_skip_fraction=0.2),
    )
    assert report.skips["unknown_contig"] == 2 and not report.missing_contigs


def test_the_summary_says_which_calls_lost_their_context(genome, tmp_path):
    fasta, seqs = genome
    write_vcf(tmp_path / "A.vcf", snvs(seqs, "1", 40) + MT)
    result = CliRunner().invoke(
        app, ["ingest", str(tmp_path / "A.vcf"), "-r", str(fasta), "-o", str(tmp_path / "c.h5ad")]
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "2 call(s) on contigs the reference lacks (MT 2) were classified without context" in out
    assert "channel sets partial" in out and "SBS96, ID83" in out
    assert "counted_without_context" in out  # the per-sample table's column, apart from the skip reasons


def test_cohort_merge_keeps_partial_sets_and_whom_they_are_exact_for(genome, tmp_path):
    from nanog1.genomics.merge import merge_cohort

    fasta, seqs = genome
    write_vcf(tmp_path / "A.vcf", snvs(seqs, "1", 40) + MT)
    write_vcf(tmp_path / "B.vcf", snvs(seqs, "1", 20, start=5_000))
    for name in ("A", "B"):
        ingest([tmp_path / f"{name}.vcf"], fasta, None, tmp_path / f"{name}.h5ad")
    merge_cohort([tmp_path / "A.h5ad", tmp_path / "B.h5ad"], tmp_path / "m.h5ad")
    meta = read_cohort(tmp_path / "m.h5ad").uns["nanog1"]
    assert meta["channel_sets"]["SBS96"] == meta["channel_sets"]["ID83"] == "partial"
    assert meta["channel_sets"]["SBS6"] == "exact"
    assert list(meta["exact_for"]["SBS96"]) == ["B"]
    assert meta["without_context"] == {"contig_not_in_reference": {"MT": 2}}


MAF_HEAD = "Chromosome\tStart_Position\tReference_Allele\tTumor_Seq_Allele2\tTumor_Sample_Barcode\n"


def test_cohort_merge_of_a_reference_free_part_keeps_the_referenced_samples_exact(genome, tmp_path):
    """QA (issue 26): a part ingested without a reference merged with one ingested with it made SBS96 and
    ID83 not computable for all; now they are partial, exact for the referenced part's samples."""
    fasta, seqs = genome
    write_vcf(tmp_path / "B.vcf", snvs(seqs, "1", 20, start=5_000))
    ingest([tmp_path / "B.vcf"], fasta, None, tmp_path / "ref.h5ad")
    rows = [line.split("\t") for line in snvs(seqs, "2", 12)]
    body = "".join(f"{c}\t{p}\t{r}\t{a}\tF\n" for c, p, _, r, a, *_ in rows)
    (tmp_path / "F.maf").write_text(MAF_HEAD + body)
    ingest([tmp_path / "F.maf"], None, None, tmp_path / "free.h5ad")
    assert read_cohort(tmp_path / "free.h5ad").uns["nanog1"]["channel_sets"]["SBS96"] == "not_computable"
    parts = [str(tmp_path / "free.h5ad"), str(tmp_path / "ref.h5ad")]
    result = CliRunner().invoke(app, ["cohort", "merge", *parts, "--out", str(tmp_path / "m.h5ad")])
    assert result.exit_code == 0, result.output
    assert "SBS96 partial: exact for 1 of the merged samples" in " ".join(result.output.split())
    merged, part = read_cohort(tmp_path / "m.h5ad"), read_cohort(tmp_path / "ref.h5ad")
    meta = merged.uns["nanog1"]
    assert_partial_for_b(meta)
    x = np.asarray(merged.X, dtype=np.int64)
    b, f = merged.obs_names.get_loc("B"), merged.obs_names.get_loc("F")
    kept = np.asarray(part.X, dtype=np.int64)[0, set_slice("SBS96")]
    assert x[b, set_slice("SBS96")].tolist() == kept.tolist()
    assert x[b, set_slice("SBS96")].sum() == 20 and x[f, set_slice("SBS96")].sum() == 0
    assert x[f, set_slice("SBS6")].sum() == 12
    assert recorded_channel_sets(merged) == ["DBS78", "SBS6", "ID12"]
    refused = r"SBS96 partial: .*without a reference.* exact for the 1 samples in uns"
    with pytest.raises(UserError, match=refused):
        check_fittable(merged, ["SBS96"])
    check_fittable(merged, ["DBS78"])


def test_predict_says_a_set_was_masked_for_calls_on_contigs_the_reference_lacks(cohort):
    """A's two MT calls (a primary-assembly FASTA, calls on chrM or decoys) leave its SBS96 and ID83 inexact,
    so the model masks them: the warning says so, with the contigs, for A only (it blamed 'a VCF or MAF
    without a reference FASTA' although one was given)."""
    from nanog1.encoder.predict_notes import masked_note
    from nanog1.encoder.predictor import PredictOptions, predict

    _, adata = cohort
    predict(adata, "pcawg-catalogue", PredictOptions(neighbours=0, exposures=False))
    note = masked_note(adata.uns["nanog1_predict"])
    assert "without a reference FASTA" not in note
    assert ("not measured for A (2 of its calls on contigs the reference lacks (MT 2), counted without "
            "sequence context)") in note, note
    assert "for B" not in note and list(adata.obs["channel_sets_masked"]) == ["SBS96+ID83", ""]


# A Mutect2-style VCF on a primary-assembly FASTA: three substitutions on chrM and decoys (issue 31, QA: 5 of
# 7,219 calls there turned a Kidney-RCC call into ColoRect, SBS96 masked for them).
FEW = ["MT\t300\t.\tG\tT\t.\tPASS\t.\n", "GL000220.1\t1200\t.\tC\tT\t.\tPASS\t.\n",
       "hs37d5\t88\t.\tA\tG\t.\tPASS\t.\n"]


def mutect2_vcf(path, seqs, extra: list[str], indels: list[str] = ()) -> None:
    """300 substitutions on the FASTA's contigs (150 each) plus `extra` and `indels`."""
    write_vcf(path, snvs(seqs, "1", 150) + snvs(seqs, "2", 150) + extra + list(indels))


def test_a_few_calls_on_chrM_and_decoys_leave_sbs96_exact(genome, tmp_path):
    """3 of 303 substitutions (0.99 %, within WITHOUT_CONTEXT_TOLERANCE) on contigs the FASTA lacks: SBS96
    stays exact for the tumour with them left out (counted in SBS6), and the notes say how many, where and
    out of which set; its one indel on MT (1 of 1) is over the tolerance, so ID83 is partial as before."""
    fasta, seqs = genome
    mutect2_vcf(tmp_path / "T.vcf", seqs, FEW, indels=["MT\t500\t.\tAC\tA\t.\tPASS\t.\n"])
    report = ingest([tmp_path / "T.vcf"], fasta, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    x = np.asarray(adata.X, dtype=np.int64)[0]
    assert x[set_slice("SBS96")].sum() == 300 and x[set_slice("SBS6")].sum() == 303
    meta = adata.uns["nanog1"]
    assert meta["channel_sets"]["SBS96"] == "exact" and meta["channel_sets"]["ID83"] == "partial"
    assert list(meta["exact_for"]["ID83"]) == [] and "SBS96" not in meta["exact_for"]
    assert recorded_channel_sets(adata) == ["SBS96", "DBS78", "SBS6", "ID12"]
    assert meta["without_context"] == {"contig_not_in_reference": {"MT": 2, "GL000220.1": 1, "hs37d5": 1}}
    kept = meta["left_out_of_context"]["SBS96"]
    assert list(kept["sample"]) == ["T"] and list(kept["left_out"]) == [3] and list(kept["calls"]) == [303]
    assert "ID83" not in meta["left_out_of_context"]
    note = next(n for n in report.notes if "left out of SBS96" in n)
    assert note.startswith("T: 3 call(s) on ") and "(0.99 % of its 303 substitutions" in note, note
    assert all(c in note for c in ("MT", "GL000220.1", "hs37d5")) and "SBS6 class is counted" in note
    check_fittable(adata, ["SBS96"])  # fitting takes the exact set


def test_many_tolerated_tumours_share_one_note_naming_every_contig(genome, tmp_path):
    """Four tumours, each with one call on a different contig the FASTA lacks (1 of 301): one note for all
    four names the calls, every contig (commonest first) and the largest share; the record keeps each
    tumour's own contig."""
    fasta, seqs = genome
    extra = {"A": ["MT\t300\t.\tG\tT\t.\tPASS\t.\n"], "B": ["MT\t310\t.\tG\tT\t.\tPASS\t.\n"],
             "C": ["GL000220.1\t1200\t.\tC\tT\t.\tPASS\t.\n"], "D": ["hs37d5\t88\t.\tA\tG\t.\tPASS\t.\n"]}
    for name, lines in extra.items():
        write_vcf(tmp_path / f"{name}.vcf", snvs(seqs, "1", 150) + snvs(seqs, "2", 150) + lines)
    report = ingest([tmp_path / f"{n}.vcf" for n in extra], fasta, None, tmp_path / "c.h5ad")
    notes = [n for n in report.notes if "left out of SBS96" in n]
    assert len(notes) == 1 and notes[0].startswith("4 tumours: 4 call(s) on MT, "), notes
    assert "GL000220.1" in notes[0] and "hs37d5" in notes[0] and "at most 0.33 %" in notes[0]
    kept = read_cohort(tmp_path / "c.h5ad").uns["nanog1"]["left_out_of_context"]["SBS96"]
    contigs = dict(zip(kept["sample"], kept["contigs"], strict=True))
    assert contigs == {"A": "MT", "B": "MT", "C": "GL000220.1", "D": "hs37d5"}


def test_a_tolerated_tumour_keeps_sbs96_in_predict(genome, tmp_path):
    """predict does not mask SBS96 for the few chrM/decoy calls, and its reading line says they were left
    out; a tumour above the tolerance (2 of its 42 substitutions) is still masked and told why."""
    from nanog1.encoder.predict_notes import masked_note, reading_line
    from nanog1.encoder.predictor import PredictOptions, predict

    fasta, seqs = genome
    mutect2_vcf(tmp_path / "T.vcf", seqs, FEW)
    write_vcf(tmp_path / "U.vcf", snvs(seqs, "1", 40, start=5_000) + FEW[:2])
    ingest([tmp_path / "T.vcf", tmp_path / "U.vcf"], fasta, None, tmp_path / "c.h5ad")
    adata = read_cohort(tmp_path / "c.h5ad")
    predict(adata, "pcawg-catalogue", PredictOptions(neighbours=0, exposures=False))
    masked = dict(zip(adata.obs_names, adata.obs["channel_sets_masked"].astype(str), strict=True))
    assert "SBS96" not in masked["T"] and "SBS96" in masked["U"], masked
    note = masked_note(adata.uns["nanog1_predict"])
    assert "not measured for U (2 of its calls on contigs the reference lacks" in note and "for T" not in note
    line = reading_line(adata, "T")
    assert "3 call(s) on MT, GL000220.1, hs37d5 left out of SBS96 (0.99 % of its 303 substitutions" in line
    assert reading_line(adata, "U").count("left out of") == 0
    from nanog1.encoder.predict_report import write_outputs
    from nanog1.encoder.predictor import prediction_table

    write_outputs(adata, prediction_table(adata), tmp_path / "out", reports=False)
    calls = json.loads((tmp_path / "out" / "predictions.json").read_text())["calls"]
    assert "3 call(s) on MT, GL000220.1, hs37d5 left out of SBS96" in calls["left_out_of_context"]


@pytest.mark.parametrize(("extra", "exact"), [(1, True), (2, False)])
def test_the_tolerance_is_a_share_of_the_tumours_calls(genome, tmp_path, extra, exact):
    """1 of 100 substitutions on a missing contig is within the 1 % tolerance (SBS96 exact); 2 of 101 is not,
    and the set is partial (exact for no tumour) as before; 20 % is refused by the loss limit."""
    fasta, seqs = genome
    write_vcf(tmp_path / "T.vcf", snvs(seqs, "1", 50) + snvs(seqs, "2", 49 + (extra == 1)) + FEW[:extra])
    ingest([tmp_path / "T.vcf"], fasta, None, tmp_path / "c.h5ad", IngestOptions(max_skip_fraction=0.2))
    meta = read_cohort(tmp_path / "c.h5ad").uns["nanog1"]
    assert meta["channel_sets"]["SBS96"] == ("exact" if exact else "partial")
    assert ("left_out_of_context" in meta) == exact
    if not exact:
        assert list(meta["exact_for"]["SBS96"]) == []


def test_a_fifth_of_the_calls_on_a_missing_contig_is_partial_or_refused(genome, tmp_path):
    """20 % of the calls on contigs the FASTA lacks: refused by the default loss limit, and partial when the
    limit is raised (the tolerance changes nothing there)."""
    fasta, seqs = genome
    mt = [f"MT\t{300 + 7 * i}\t.\tG\tT\t.\tPASS\t.\n" for i in range(10)]
    write_vcf(tmp_path / "T.vcf", snvs(seqs, "1", 40) + mt)
    with pytest.raises(InputError, match=r"10 of 50 calls \(20%\) are on contigs the reference lacks"):
        ingest([tmp_path / "T.vcf"], fasta, None, tmp_path / "c.h5ad")
    report = ingest([tmp_path / "T.vcf"], fasta, None, tmp_path / "c.h5ad",
                    IngestOptions(max_skip_fraction=0.3))
    meta = read_cohort(tmp_path / "c.h5ad").uns["nanog1"]
    assert meta["channel_sets"]["SBS96"] == "partial" and list(meta["exact_for"]["SBS96"]) == []
    assert "left_out_of_context" not in meta and not any("left out of" in n for n in report.notes)


def test_cohort_merge_keeps_a_tolerated_sbs96_exact_and_its_record(genome, tmp_path):
    """A part whose tumour kept SBS96 within the tolerance merged with another: SBS96 exact for both, the
    tumour's SBS6 still holds the calls left out of SBS96, and the record is carried for predict."""
    from nanog1.genomics.merge import merge_cohort

    fasta, seqs = genome
    mutect2_vcf(tmp_path / "T.vcf", seqs, FEW)
    write_vcf(tmp_path / "B.vcf", snvs(seqs, "1", 20, start=5_000))
    for name in ("T", "B"):
        ingest([tmp_path / f"{name}.vcf"], fasta, None, tmp_path / f"{name}.h5ad")
    merge_cohort([tmp_path / "T.h5ad", tmp_path / "B.h5ad"], tmp_path / "m.h5ad")
    merged = read_cohort(tmp_path / "m.h5ad")
    meta = merged.uns["nanog1"]
    assert meta["channel_sets"]["SBS96"] == "exact" and "SBS96" not in dict(meta.get("exact_for") or {})
    x = np.asarray(merged.X, dtype=np.int64)[merged.obs_names.get_loc("T")]
    assert x[set_slice("SBS96")].sum() == 300 and x[set_slice("SBS6")].sum() == 303
    assert list(meta["left_out_of_context"]["SBS96"]["sample"]) == ["T"]
    assert list(meta["left_out_of_context"]["SBS96"]["left_out"]) == [3]
