"""End to end: files -> cohort .h5ad (counts, obs, provenance, tokens), the CLI, atomic writes."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest
from typer.testing import CliRunner

from nanog1.cli import app
from nanog1.genomics.channels import DBS78, N_CHANNELS, SBS96, all_channels, set_slice
from nanog1.genomics.cohort import read_cohort
from nanog1.genomics.ingest import IngestOptions, ingest
from nanog1.genomics.synthetic import GenomeSpec, make_cohort, make_genome
from nanog1.genomics.tokens import bin_offsets, token_table

HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    work = tmp_path_factory.mktemp("cohort")
    seqs = make_genome(work / "g.fa", GenomeSpec(length=80_000, seed=9))
    paths = make_cohort(work / "vcf", seqs, n_samples=3, per_sample=800, seed=4)
    (work / "vcf" / "EMPTY.vcf").write_text(HEADER)
    paths.append(work / "vcf" / "EMPTY.vcf")
    sheet = work / "sheet.tsv"
    sheet.write_text("sample\tcancer_type\tage\nS000\tBreast\t50\nS001\tLiver\t61\nEMPTY\tBreast\t40\n")
    return work, seqs, paths, sheet


@pytest.fixture(scope="module")
def cohort(world):
    work, _, paths, sheet = world
    options = IngestOptions(bin_size=10_000, sheet_policy="lenient")
    report = ingest(paths, work / "g.fa", sheet, work / "c.h5ad", options)
    return report, read_cohort(work / "c.h5ad")


def test_layout_follows_the_contract(cohort):
    report, adata = cohort
    assert adata.shape == (4, N_CHANNELS) and adata.X.dtype == np.float32
    assert list(adata.var_names) == [label for _, label in all_channels()]
    sizes = {"SBS96": 96, "DBS78": 78, "ID83": 83, "SBS6": 6, "ID12": 12}
    assert adata.var["channel_set"].value_counts().to_dict() == sizes
    # The derived sets are the folds of the measured ones, and uns says every set is exact.
    x = np.asarray(adata.X)
    np.testing.assert_array_equal(x[:, set_slice("SBS6")].sum(1), x[:, set_slice("SBS96")].sum(1))
    np.testing.assert_array_equal(x[:, set_slice("ID12")].sum(1), x[:, set_slice("ID83")].sum(1))
    assert set(adata.uns["nanog1"]["channel_sets"].values()) == {"exact"}
    x = adata.X
    np.testing.assert_array_equal(adata.obs["burden_SBS96"], x[:, :96].sum(1))
    np.testing.assert_array_equal(adata.obs["burden_DBS78"], x[:, 96:174].sum(1))
    np.testing.assert_array_equal(adata.obs["burden_ID83"], x[:, 174:257].sum(1))
    assert adata.obs.loc["S001", "cancer_type"] == "Liver" and adata.obs["cancer_type"].isna().sum() == 1
    assert adata.obs.loc["EMPTY", "no_mutations"] and report.no_mutation_samples == ["EMPTY"]
    prov = adata.uns["nanog1"]
    assert list(prov["inputs"]["path"]) == [str(p) for p in world_paths(report)]
    assert prov["inputs"]["sha256"].str.len().eq(64).all()
    assert prov["skips"] == {k: int(v) for k, v in report.skips.items()}
    acc = prov["accounting"]
    assert acc.drop(columns=["file", "sample", "read", "counted", "skipped"]).sum().to_dict() == prov["skips"]
    assert "skips_per_file" not in prov and "records_per_sample" not in prov  # one table, not three
    assert list(prov["channel_sets_present"]) == ["SBS96", "DBS78", "ID83", "SBS6", "ID12"]


def world_paths(report):
    return [Path(f["path"]) for f in report.files]


def test_tokens_round_trip_to_counts(cohort):
    _, adata = cohort
    offsets = bin_offsets([adata.uns["tokens"]["vocab"]["contig_length"][i] for i in range(2)], 10_000)
    for row, sample in enumerate(adata.obs_names):
        tokens = token_table(adata, sample)
        measured = set_slice("SBS96").start, set_slice("ID83").stop
        np.testing.assert_array_equal(
            np.bincount(tokens["channel_id"], minlength=N_CHANNELS)[slice(*measured)],
            adata.X[row, slice(*measured)],
        )
        chrom_idx = tokens["chrom"].map({"1": 0, "2": 1}).to_numpy()
        key = chrom_idx * 10**9 + tokens["pos"].to_numpy()
        assert (np.diff(key) >= 0).all()
        np.testing.assert_array_equal(tokens["bin"], offsets[chrom_idx] + (tokens["pos"] - 1) // 10_000)
        sbs = tokens["channel_set"] == "SBS96"
        assert (tokens.loc[sbs, "motif_id"] >= 0).all() and (tokens.loc[~sbs, "motif_id"] == -1).all()
        centre = tokens.loc[sbs, "motif"].str[2]
        assert (centre == tokens.loc[sbs, "channel"].str[2]).all()


def test_parallel_equals_serial(world, cohort, tmp_path):
    work, _, paths, sheet = world
    options = IngestOptions(bin_size=10_000, jobs=2, sheet_policy="lenient")
    ingest(paths, work / "g.fa", sheet, tmp_path / "p.h5ad", options)
    a, b = cohort[1], read_cohort(tmp_path / "p.h5ad")
    np.testing.assert_array_equal(a.X, b.X)
    for key in ("offsets", "channel", "pos", "bin"):
        np.testing.assert_array_equal(a.uns["tokens"][key], b.uns["tokens"][key])


def test_default_and_compatible_policies(tmp_path, world):
    work, seqs, _, _ = world
    s = seqs["1"]
    alt = {b: ("A" if b != "A" else "C") for b in "ACGT"}
    recs = [
        (1000, "PASS"),
        (2000, "PASS"),
        (2001, "PASS"),
        (3000, "PASS"),
        (3001, "PASS"),
        (3002, "PASS"),
        (4000, "LowQual"),
    ]
    body = "".join(f"1\t{p}\t.\t{s[p - 1]}\t{alt[s[p - 1]]}\t.\t{f}\t.\n" for p, f in recs)
    (tmp_path / "P.vcf").write_text(HEADER + body)
    ingest([tmp_path / "P.vcf"], work / "g.fa", None, tmp_path / "d.h5ad")
    ingest(
        [tmp_path / "P.vcf"],
        work / "g.fa",
        None,
        tmp_path / "c.h5ad",
        IngestOptions(sigprofiler_compatible=True),
    )
    d, c = read_cohort(tmp_path / "d.h5ad"), read_cohort(tmp_path / "c.h5ad")
    assert d.obs.iloc[0][["burden_SBS96", "burden_DBS78"]].tolist() == [1, 1]
    assert d.uns["nanog1"]["skips"] == {"non_pass": 1, "mnv": 3}
    # SigProfiler: FILTER ignored, doublet bases also in SBS96, the run of three forms no doublet.
    assert c.obs.iloc[0][["burden_SBS96", "burden_DBS78"]].tolist() == [7, 1]


def test_matrices_make_a_cohort(pcawg_dir, tmp_path):
    files = [pcawg_dir / n for n in ("WGS_PCAWG.96.csv", "WGS_PCAWG.dinucs.csv", "WGS_PCAWG.indels.csv")]
    ingest(files, None, None, tmp_path / "m.h5ad")
    adata = read_cohort(tmp_path / "m.h5ad")
    assert adata.shape == (2780, N_CHANNELS)
    assert adata.obs["cancer_type"].nunique() == 37
    assert adata.obs["burden_DBS78"].sum() > 0 and len(adata.uns["tokens"]["channel"]) == 0


def test_only_sbs_matrix_marks_sets_present(pcawg_dir, tmp_path):
    ingest([pcawg_dir / "WGS_PCAWG.96.csv"], None, None, tmp_path / "s.h5ad")
    adata = read_cohort(tmp_path / "s.h5ad")
    assert list(adata.uns["nanog1"]["channel_sets_present"]) == ["SBS96", "SBS6"]
    assert adata.uns["nanog1"]["channel_sets"]["ID83"] == "not_computable"
    assert adata.X[:, len(SBS96) : len(SBS96) + len(DBS78)].sum() == 0


def test_write_is_atomic(world, tmp_path, monkeypatch):
    work, _, paths, _ = world

    def broken(self, filename, *args, **kwargs):
        Path(filename).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", broken)
    with pytest.raises(OSError, match="disk full"):
        ingest(paths[:1], work / "g.fa", None, tmp_path / "x.h5ad")
    assert list(tmp_path.iterdir()) == []


def test_cli_summary_and_errors(world, tmp_path):
    work, _, paths, sheet = world
    runner = CliRunner()
    out = tmp_path / "cli.h5ad"
    result = runner.invoke(
        app,
        [
            "ingest",
            *map(str, paths),
            "--reference",
            str(work / "g.fa"),
            "--samples",
            str(sheet),
            "--out",
            str(out),
            "-j",
            "2",
            "--sheet-policy",
            "lenient",
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.exists() and "skipped by reason" in result.output and "non_pass" in result.output
    bad = tmp_path / "bad.vcf"
    bad.write_text(HEADER + "1\t10\t.\tA\tC\t.\tPASS\t.\n1\tx\t.\tA\tC\t.\tPASS\t.\n")
    result = runner.invoke(
        app, ["ingest", str(bad), "-r", str(work / "g.fa"), "-o", str(tmp_path / "b.h5ad")]
    )
    assert result.exit_code == 2 and "bad.vcf:4" in result.output
    assert not (tmp_path / "b.h5ad").exists()
    result = runner.invoke(
        app,
        [
            "ingest",
            str(bad),
            "-r",
            str(work / "g.fa"),
            "-o",
            str(tmp_path / "b.h5ad"),
            "--on-error",
            "skip",
            "--filter",
            "all",
            "--max-skip-fraction",
            "1",
            "-q",
        ],
    )
    assert (
        result.exit_code == 0
        and read_cohort(tmp_path / "b.h5ad").uns["nanog1"]["skips"]["malformed_line"] == 1
    )
