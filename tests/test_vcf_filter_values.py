"""QA #31: under the default --filter PASS, the calls dropped for FILTER were counted as `non_pass` alone;
which FILTER values they had (Mutect2's germline / panel_of_normals / weak_evidence, Strelka2's LowEVS) was
told by neither ingest nor predict. Both VCF readers (the sites-only fast path and pysam's, with sample
columns) count the values per call, and ingest's notes and table, uns['nanog1']['filter_dropped'], predict's
closing line and predictions.json give them."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from nanog1.genomics import vcf, vcf_sites
from nanog1.genomics.ingest import IngestOptions, ingest
from nanog1.genomics.summary import summary_table
from nanog1.genomics.synthetic import GenomeSpec, make_genome
from nanog1.genomics.variants import filter_counts
from tests.test_ingest_somatic import MUTECT2_META, sites, snv, write

#: FILTER per record, in file order: 10 PASS, one '.', then Mutect2's filters; the last LowQual record has
#: two ALTs (two calls), so LowQual is 3 calls of 2 records.
FILTERS = (["PASS"] * 10 + ["."] + ["weak_evidence"] * 8 + ["germline"] * 5 + ["panel_of_normals"] * 3
           + ["germline;weak_evidence"] * 2 + ["LowQual"] * 2)
EXPECTED = {"weak_evidence": 8, "germline": 5, "panel_of_normals": 3, "germline;weak_evidence": 2,
            "LowQual": 3}
#: U.vcf (sites-only, sample U): other FILTER values, germline shared with T.vcf; the last record: two calls.
OTHER_FILTERS = ["PASS"] * 6 + ["strand_bias"] * 4 + ["germline"] * 2 + ["clustered_events"] * 2
OTHER = {"strand_bias": 4, "germline": 2, "clustered_events": 3}
SHOWN = "non_pass 21 (FILTER weak_evidence 8, germline 5, LowQual 3, +2 more)"
META = [*MUTECT2_META, *(f'##FILTER=<ID={f},Description="{f}">' for f in
                         ("germline", "panel_of_normals", "LowQual"))]


def _rows(seq: str, samples: bool, filters: list[str] = FILTERS) -> list[str]:
    """One SNV record per `filters` entry (the last with two ALTs), with Mutect2's tumour/normal columns or
    none (sites-only)."""
    rows = []
    for i, (p, flag) in enumerate(zip(sites(seq, len(filters)), filters, strict=True)):
        ref, alt = snv(seq, p)
        last = i == len(filters) - 1
        alts = f"{alt},{next(b for b in 'ACGT' if b not in (ref, alt))}" if last else alt
        gt = "1/2" if last else "0/1"
        normal, tumour = ("0/0:30,0,0", f"{gt}:20,9,5") if last else ("0/0:30,0", f"{gt}:20,9")
        columns = f"\tGT:AD\t{normal}\t{tumour}" if samples else ""
        rows.append(f"1\t{p}\t.\t{ref}\t{alts}\t.\t{flag}\tTLOD=12.3{columns}")
    return rows


@pytest.fixture(scope="module")
def calls(tmp_path_factory) -> dict[str, Path]:
    """T.vcf (Mutect2, tumour P1-T and normal P1-N) and S.vcf (sites-only, the same records), with g.fa."""
    folder = tmp_path_factory.mktemp("filters")
    seq = make_genome(folder / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=5))["1"]
    write(folder / "T.vcf", META, ["P1-N", "P1-T"], _rows(seq, samples=True))
    write(folder / "S.vcf", META, [], _rows(seq, samples=False))
    write(folder / "U.vcf", [*META, *(f'##FILTER=<ID={f},Description="{f}">' for f in OTHER)], [],
          _rows(seq, samples=False, filters=OTHER_FILTERS))
    return {"T": folder / "T.vcf", "S": folder / "S.vcf", "U": folder / "U.vcf", "fasta": folder / "g.fa"}


def test_both_vcf_readers_count_the_filter_values_of_the_calls_that_do_not_pass(calls, monkeypatch):
    with_samples = vcf.read_vcf(calls["T"])
    assert dict(with_samples.filter_values) == EXPECTED
    assert sum(with_samples.filter_values.values()) == int((~with_samples.passed).sum()) == 21

    def no_pysam(*args, **kwargs):  # the sites-only file must be read by the fast path, not pysam
        raise AssertionError("sites-only VCF read by pysam")

    monkeypatch.setattr(vcf, "_collect", no_pysam)
    sites_only = vcf.read_vcf(calls["S"])
    assert dict(sites_only.filter_values) == EXPECTED


def test_sites_only_fast_path_counts_filter_values_over_several_pieces(calls, monkeypatch):
    """The fast reader parses a file in pieces: a failing record's line is found across piece bounds."""
    monkeypatch.setattr(vcf_sites, "SITES_CHUNK", 300)
    table = vcf.read_vcf(calls["S"])
    assert dict(table.filter_values) == EXPECTED


@pytest.mark.parametrize("name", ["T", "S"])
@pytest.mark.parametrize("with_reference", [False, True])
def test_ingest_notes_table_and_provenance_give_the_filter_values_behind_non_pass(calls, tmp_path, name,
                                                                                  with_reference):
    reference = calls["fasta"] if with_reference else None
    report = ingest([calls[name]], reference, None, tmp_path / "c.h5ad", IngestOptions())
    assert report.skips["non_pass"] == 21
    assert report.files[0]["filter_values"] == EXPECTED
    assert f"{name}.vcf: {SHOWN}" in report.notes, report.notes
    console = Console(width=250, record=True)
    console.print(summary_table(report))
    row = next(line for line in console.export_text().splitlines() if line.startswith("│ non_pass"))
    assert "FILTER not PASS: weak_evidence 8, germline 5, LowQual 3, +2 more" in row, row
    import anndata as ad

    assert filter_counts(ad.read_h5ad(tmp_path / "c.h5ad").uns["nanog1"]["filter_dropped"]) == EXPECTED
    everything = ingest([calls[name]], reference, None, tmp_path / "a.h5ad", IngestOptions(filter="all"))
    assert not everything.skips.get("non_pass") and not everything.files[0]["filter_values"]


def test_predict_closing_line_and_predictions_json_give_the_filter_values(calls, tmp_path, tmp_path_factory):
    from typer.testing import CliRunner

    from nanog1.cli import app
    from tests.predict_models import write_model_folder
    from tests.training_cohort import make_cohort

    model = write_model_folder(tmp_path_factory.mktemp("m"), make_cohort(n_per_type=10, seed=4, tokens=False))
    args = ["predict", str(calls["T"]), "--model", str(model), "-o", str(tmp_path / "o"), "--no-exposures",
            "--neighbours", "0", "--no-reports"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    line = next(text for text in res.output.splitlines() if "tumour(s)," in text)
    assert "non_pass 21: FILTER weak_evidence 8, germline 5, LowQual 3, +2 more" in line, line
    doc = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert Counter(doc["calls"]["filter_values"]) == Counter(EXPECTED)
    assert doc["calls"]["skips"]["non_pass"] == 21


def _by_file(meta) -> dict[str, dict[str, int]]:
    """uns['nanog1']['filter_dropped_by_file'] as {file name: {FILTER value: calls}}, the file found through
    `inputs` by the id the table (as the accounting) gives it."""
    paths = meta["inputs"]["path"]
    out: dict[str, dict[str, int]] = {}
    for file, value, n in meta["filter_dropped_by_file"][["file", "filter", "calls"]].itertuples(index=False):
        out.setdefault(Path(paths.iloc[int(file)]).name, {})[str(value)] = int(n)
    return out


@pytest.mark.parametrize("with_reference", [False, True])
def test_the_cohort_keeps_the_filter_values_dropped_per_file(calls, tmp_path, with_reference):
    """Two files dropping different FILTER values: the .h5ad keeps each file's values (not only their sum),
    through a write and read of the cohort, next to the cohort total."""
    from nanog1.genomics.cohort import read_cohort

    reference = calls["fasta"] if with_reference else None
    ingest([calls["T"], calls["U"]], reference, None, tmp_path / "c.h5ad", IngestOptions())
    meta = read_cohort(tmp_path / "c.h5ad").uns["nanog1"]
    assert _by_file(meta) == {"T.vcf": EXPECTED, "U.vcf": OTHER}
    assert filter_counts(meta["filter_dropped"]) == dict(Counter(EXPECTED) + Counter(OTHER))
    ingest([calls["T"], calls["U"]], reference, None, tmp_path / "a.h5ad", IngestOptions(filter="all"))
    assert "filter_dropped_by_file" not in read_cohort(tmp_path / "a.h5ad").uns["nanog1"]


def test_cohort_merge_sums_the_parts_filter_values_and_keeps_them_per_file(calls, tmp_path):
    """Two parts (one ingest job each) that dropped different FILTER values: the merged cohort reports the
    sum by value and each file's values with its id renumbered to the merged inputs."""
    from nanog1.genomics.cohort import read_cohort
    from nanog1.genomics.merge import merge_cohort

    ingest([calls["U"]], None, None, tmp_path / "u.h5ad", IngestOptions())
    ingest([calls["T"]], None, None, tmp_path / "t.h5ad", IngestOptions())
    merge_cohort([tmp_path / "u.h5ad", tmp_path / "t.h5ad"], tmp_path / "m.h5ad")
    meta = read_cohort(tmp_path / "m.h5ad").uns["nanog1"]
    total = Counter(EXPECTED) + Counter(OTHER)
    assert filter_counts(meta["filter_dropped"]) == dict(total)
    assert sum(total.values()) == int(meta["skips"]["non_pass"]) == 21 + 9
    assert _by_file(meta) == {"U.vcf": OTHER, "T.vcf": EXPECTED}


#: FILTER values an .h5ad key would not keep: '/' (legal in VCF) splits a key into nested groups, and
#: 'LowQual' next to 'LowQual/strand' cannot be written as keys at all. The last (PASS) record: two calls.
ODD_FILTERS = ["PASS"] * 6 + ["LowQual/strand"] * 3 + ["weird.value"] * 2 + ["LowQual"] + ["PASS"]
ODD = {"LowQual/strand": 3, "weird.value": 2, "LowQual": 1}


@pytest.fixture(scope="module")
def odd_part(calls, tmp_path_factory) -> Path:
    """O.vcf (sites-only) with the FILTER values of ODD_FILTERS, ingested PASS-only into o.h5ad."""
    folder = tmp_path_factory.mktemp("odd")
    seq = make_genome(folder / "g.fa", GenomeSpec(n_contigs=1, length=20_000, seed=5))["1"]
    meta = [*META, *(f'##FILTER=<ID={f},Description="odd">' for f in ODD)]
    write(folder / "O.vcf", meta, [], _rows(seq, samples=False, filters=ODD_FILTERS))
    report = ingest([folder / "O.vcf"], None, None, folder / "o.h5ad", IngestOptions())
    assert report.skips["non_pass"] == sum(ODD.values())
    return folder / "o.h5ad"


def test_filter_values_with_slash_or_dot_survive_the_h5ad_exactly(odd_part):
    """The cohort total is a table (filter, calls; most calls first) that round-trips any FILTER value."""
    from nanog1.genomics.cohort import read_cohort

    table = read_cohort(odd_part).uns["nanog1"]["filter_dropped"]
    assert [tuple(r) for r in table[["filter", "calls"]].itertuples(index=False)] == list(ODD.items())
    assert filter_counts(table) == ODD
    assert _by_file(read_cohort(odd_part).uns["nanog1"]) == {"O.vcf": ODD}


@pytest.mark.filterwarnings("ignore:Element .* was written without encoding metadata")
def test_a_cohort_with_the_old_dict_still_reads(odd_part, tmp_path):
    """Cohorts ingested before the table hold {value: calls}; a value with '/' comes back from HDF5 as a
    nested dict, which the reader joins again: predict's notes give the value as the VCF spelled it."""
    import warnings

    from nanog1.encoder.predict_notes import call_counts
    from nanog1.genomics.cohort import read_cohort

    old = read_cohort(odd_part)
    old.uns["nanog1"] = {**old.uns["nanog1"], "filter_dropped": {"LowQual/strand": 3, "weird.value": 2}}
    with warnings.catch_warnings():  # anndata: '/' in keys to be disallowed (why the table replaced them)
        warnings.simplefilter("ignore", FutureWarning)
        old.write_h5ad(tmp_path / "old.h5ad")
    adata = read_cohort(tmp_path / "old.h5ad")
    back = adata.uns["nanog1"]["filter_dropped"]
    assert back == {"LowQual": {"strand": 3}, "weird.value": 2}  # what such a cohort holds on disk
    flat = {"LowQual/strand": 3, "weird.value": 2}
    assert filter_counts(back) == call_counts(adata)["filter_values"] == flat
    assert filter_counts(None) == filter_counts({}) == {}


def test_cohort_merge_sums_an_old_dict_part_and_a_table_part(calls, odd_part, tmp_path):
    """`nanog1 cohort merge` of a part written before the table (its filter_dropped a dict) and one with the
    table: the merged total is the exact sum by value, as a table."""
    from typer.testing import CliRunner

    from nanog1.cli import app
    from nanog1.genomics.cohort import read_cohort, write_cohort

    ingest([calls["U"]], None, None, tmp_path / "u.h5ad", IngestOptions())
    old = read_cohort(tmp_path / "u.h5ad")
    old.uns["nanog1"] = {**old.uns["nanog1"], "filter_dropped": dict(OTHER)}  # as ingest wrote it before
    del old.uns["nanog1"]["filter_dropped_by_file"]
    write_cohort(old, tmp_path / "u.h5ad")
    assert isinstance(read_cohort(tmp_path / "u.h5ad").uns["nanog1"]["filter_dropped"], dict)
    res = CliRunner().invoke(app, ["cohort", "merge", str(tmp_path / "u.h5ad"), str(odd_part),
                                   "-o", str(tmp_path / "m.h5ad")])
    assert res.exit_code == 0, res.output
    meta = read_cohort(tmp_path / "m.h5ad").uns["nanog1"]
    total = Counter(OTHER) + Counter(ODD)
    assert filter_counts(meta["filter_dropped"]) == dict(total)
    assert list(meta["filter_dropped"]["calls"]) == sorted(total.values(), reverse=True)
    assert sum(total.values()) == int(meta["skips"]["non_pass"])


def test_predict_notes_give_the_odd_filter_values(odd_part):
    """predict_notes (predict's closing line, its reports and the dashboard) read the table: the values
    as the VCF spelled them, with their counts."""
    from nanog1.encoder.predict_notes import call_counts, reading_line, skip_table
    from nanog1.genomics.cohort import read_cohort

    adata = read_cohort(odd_part)
    assert call_counts(adata)["filter_values"] == ODD
    assert "non_pass 6: FILTER LowQual/strand 3, weird.value 2, LowQual 1" in reading_line(adata)
    meaning = skip_table(adata).loc["non_pass", "meaning"]
    assert meaning.endswith(": LowQual/strand 3, weird.value 2, LowQual 1"), meaning
