"""The gather step: parts merged into one cohort equal the parts stacked, summed or joined with the sheet."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from nanog1.genomics.channels import all_channels
from nanog1.genomics.merge import MergeOptions, _measured_sets, merge_adatas
from nanog1.genomics.tokens import bin_offsets, vocabulary

SETS = [s for s, _ in all_channels()]
LABELS = [label for _, label in all_channels()]


LENGTHS = {"1": 3_500_000, "2": 2_200_000, "X": 1_300_000}


def make_part(rng: np.random.Generator, names: list[str], chroms: list[str], types=None) -> ad.AnnData:
    """A contract-shaped part: Poisson counts, one event per counted SBS/ID mutation (capped), tokens."""
    X = rng.poisson(0.3, size=(len(names), len(LABELS))).astype(np.float32)
    var = pd.DataFrame({"channel_set": pd.Categorical(SETS)}, index=LABELS)
    obs = pd.DataFrame(index=pd.Index(names))
    if types is not None:
        obs["cancer_type"] = pd.Categorical(types)
    adata = ad.AnnData(X=X, obs=obs, var=var)
    lengths = rng.integers(0, 6, size=len(names))
    n = int(lengths.sum())
    chrom = rng.integers(0, len(chroms), n)
    pos = rng.integers(1, 1_200_000, n)
    sizes = [LENGTHS[c] for c in chroms]
    adata.uns["tokens"] = {
        "offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "channel": rng.integers(0, 257, n).astype(np.int32),
        "motif": rng.integers(-1, 1024, n).astype(np.int32),
        "chrom": chrom.astype(np.int16),
        "pos": pos.astype(np.int64),
        "bin": (bin_offsets(sizes)[chrom] + (pos - 1) // 1_000_000).astype(np.int32),
        "chroms": np.array(chroms, dtype=object),
        "vocab": vocabulary(chroms, sizes),
    }
    adata.uns["nanog1"] = {
        "inputs": pd.DataFrame({"path": [f"{names[0]}.vcf"], "records": [10]}),
        "channel_sets_present": ["SBS96", "ID83"],
        "skips": {"non_pass": 2, "ref_mismatch": 1},
        "skips_per_file": pd.DataFrame({"non_pass": [2], "ref_mismatch": [1]}),
    }
    return adata


def events(adata: ad.AnnData, sample: str) -> pd.DataFrame:
    """One sample's events with chromosome names (independent of the chrom id numbering)."""
    t = adata.uns["tokens"]
    i = list(adata.obs_names).index(sample)
    lo, hi = int(t["offsets"][i]), int(t["offsets"][i + 1])
    frame = pd.DataFrame({k: np.asarray(t[k])[lo:hi] for k in ("channel", "motif", "pos")})
    frame["chrom"] = np.asarray(t["chroms"])[np.asarray(t["chrom"])[lo:hi]].astype(str)
    return frame


def bins_consistent(adata: ad.AnnData) -> bool:
    """Every event's bin equals the genome-wide bin of its contig and position under the cohort's vocab."""
    t = adata.uns["tokens"]
    starts = bin_offsets(list(t["vocab"]["contig_length"]))
    return bool(
        (
            np.asarray(t["bin"]) == starts[np.asarray(t["chrom"])] + (np.asarray(t["pos"]) - 1) // 1_000_000
        ).all()
    )


def test_concat_equals_stacked_parts_with_tokens(tmp_path: Path):
    rng = np.random.default_rng(1)
    a = make_part(rng, ["s1", "s2", "s3"], ["1", "2"])
    b = make_part(rng, ["s4", "s5"], ["2", "X"])
    merged, report = merge_adatas([a, b], [Path("a.h5ad"), Path("b.h5ad")], options=MergeOptions())
    assert list(merged.obs_names) == ["s1", "s2", "s3", "s4", "s5"]
    np.testing.assert_array_equal(merged.X, np.vstack([a.X, b.X]))
    assert merged.X.dtype == np.float32
    sbs = np.array(SETS) == "SBS96"
    np.testing.assert_array_equal(merged.obs["burden_SBS96"], np.vstack([a.X, b.X])[:, sbs].sum(1))
    assert report.samples == 5 and report.tokens == "merged"
    for part in (a, b):
        for s in part.obs_names:
            pd.testing.assert_frame_equal(events(merged, s), events(part, s))
    assert list(merged.uns["tokens"]["chroms"]) == ["1", "2", "X"] and bins_consistent(merged)
    prov = merged.uns["nanog1"]
    assert prov["skips"] == {"non_pass": 4, "ref_mismatch": 2}
    assert list(prov["inputs"]["path"]) == ["s1.vcf", "s4.vcf"]
    assert prov["skips_per_file"]["non_pass"].tolist() == [2, 2]
    assert merged.uns["nanog1"]["channel_sets_present"] == ["SBS96", "ID83", "SBS6", "ID12"]
    assert merged.uns["nanog1"]["channel_sets"]["DBS78"] == "not_computable"


def test_duplicate_sample_is_an_error_naming_it():
    rng = np.random.default_rng(2)
    a, b = make_part(rng, ["s1", "dup"], ["1"]), make_part(rng, ["dup", "s9"], ["1"])
    with pytest.raises(
        ValueError, match=r"'dup' is given by 2 files \(.*a\.h5ad, .*b\.h5ad\).*--duplicates sum"
    ):
        merge_adatas([a, b], [Path("a.h5ad"), Path("b.h5ad")])


def test_duplicates_sum_adds_counts_and_joins_events():
    rng = np.random.default_rng(3)
    a = make_part(rng, ["s1", "s2", "s3"], ["1", "2"], types=["Lung", "Skin", None])
    b = make_part(rng, ["s3", "s1", "s7"], ["2", "1"], types=["Breast", "Liver", "Skin"])
    merged, report = merge_adatas([a, b], [Path("a"), Path("b")], options=MergeOptions("sum"))
    assert report.samples_summed == 2
    assert list(merged.obs_names) == ["s1", "s2", "s3", "s7"]
    frame = pd.concat([a.to_df(), b.to_df()]).groupby(level=0).sum()
    np.testing.assert_allclose(merged.X, frame.loc[merged.obs_names].to_numpy())
    # the first non-missing annotation wins: s1 keeps 'Lung', s3 (missing in a) takes 'Breast'
    assert merged.obs.loc["s1", "cancer_type"] == "Lung" and merged.obs.loc["s3", "cancer_type"] == "Breast"
    for s in ("s1", "s3"):
        joined = pd.concat([events(a, s), events(b, s)]).sort_values(["chrom", "pos"], kind="stable")
        got = events(merged, s)
        assert len(got) == len(joined)
        assert sorted(map(tuple, got.to_numpy().tolist())) == sorted(map(tuple, joined.to_numpy().tolist()))
        same_contig = got["chrom"].to_numpy()[1:] == got["chrom"].to_numpy()[:-1]
        assert (np.diff(got["pos"].to_numpy())[same_contig] >= 0).all()
    assert bins_consistent(merged)


def test_sample_sheet_joins_and_mismatches_are_errors_never_zero_rows(tmp_path: Path):
    rng = np.random.default_rng(4)
    a = make_part(rng, ["s1", "s2"], ["1"], types=["Lung", "Lung"])
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("sample\tcancer_type\tdonor\ns2\tSkin\td2\ns8\tBreast\td8\n")
    with pytest.raises(
        ValueError, match=r"samples\.tsv: sample 's8' of the sheet is in no part; sample 's1' has no row"
    ):
        merge_adatas([a], [Path("a")], sample_sheet=sheet)
    merged, report = merge_adatas(
        [a], [Path("a")], sample_sheet=sheet, options=MergeOptions(sheet_policy="lenient")
    )
    assert list(merged.obs_names) == ["s1", "s2"]
    assert (report.sheet_only, report.not_in_sheet) == (1, 1) and len(report.notes) == 2
    assert list(merged.obs["cancer_type"].astype(str)) == ["Lung", "Skin"]
    assert merged.obs.loc["s2", "donor"] == "d2" and merged.obs.loc["s1", "no_mutations"] == (
        a.X[0].sum() == 0
    )
    assert isinstance(merged.obs["cancer_type"].dtype, pd.CategoricalDtype)
    np.testing.assert_array_equal(merged.uns["tokens"]["offsets"], a.uns["tokens"]["offsets"])
    sheet.write_text("sample\tcancer_type\ns1\tLiver\ns2\tSkin\n")
    merged, report = merge_adatas([a], [Path("a")], sample_sheet=sheet)
    assert list(merged.obs["cancer_type"].astype(str)) == ["Liver", "Skin"] and report.notes == []


def test_bad_parts_are_named():
    rng = np.random.default_rng(5)
    a = make_part(rng, ["s1"], ["1"])
    from nanog1.genomics.merge import _check_part

    with pytest.raises(ValueError, match="bad.h5ad"):
        _check_part(a[:, ::-1].copy(), Path("bad.h5ad"))


def test_merge_cohort_writes_a_readable_cohort(tmp_path: Path):
    from nanog1.genomics.cohort import read_cohort
    from nanog1.genomics.merge import merge_cohort

    rng = np.random.default_rng(6)
    paths = []
    for i, names in enumerate((["s1", "s2"], ["s3"])):
        path = tmp_path / f"p{i}.h5ad"
        part = make_part(rng, names, ["1", "2"], types=["Lung"] * len(names))
        if i == 1:
            part.uns["nanog1"]["skips_per_file"] = pd.DataFrame({"duplicate": [4]})
        part.write_h5ad(path)
        paths.append(path)
    out = tmp_path / "cohort.h5ad"
    report = merge_cohort(paths, out)
    back = read_cohort(out)
    assert report.samples == 3 and back.n_obs == 3
    np.testing.assert_array_equal(back.X, np.vstack([ad.read_h5ad(p).X for p in paths]))
    parts = back.uns["nanog1"]["parts"]
    assert list(parts["path"]) == [str(p) for p in paths]
    assert list(parts["bytes"]) == [p.stat().st_size for p in paths]
    assert back.uns["nanog1"]["skips_per_file"].to_dict("list") == {
        "non_pass": [2, 0],
        "ref_mismatch": [1, 0],
        "duplicate": [0, 4],
    }
    assert not list(tmp_path.glob(".*"))  # no temp files left behind
    with pytest.raises(ValueError, match="the same file is given twice"):
        merge_cohort([paths[0], paths[1], paths[0]], tmp_path / "twice.h5ad", options=MergeOptions("sum"))


def test_complementary_channel_sets_combine_without_sum_overlapping_ones_do_not():
    rng = np.random.default_rng(6)
    sbs, ids = make_part(rng, ["s1", "s2"], ["1"]), make_part(rng, ["s1", "s3"], ["1"])
    sbs.uns["nanog1"]["channel_sets_present"] = ["SBS96"]
    ids.uns["nanog1"]["channel_sets_present"] = ["ID83"]
    merged, report = merge_adatas([sbs, ids], [Path("sbs.h5ad"), Path("id.h5ad")])
    assert list(merged.obs_names) == ["s1", "s2", "s3"] and report.samples_summed == 1
    np.testing.assert_allclose(merged["s1"].X[0], sbs["s1"].X[0] + ids["s1"].X[0])
    ids.uns["nanog1"]["channel_sets_present"] = ["ID83", "SBS96"]
    with pytest.raises(ValueError, match=r"'s1' is given by 2 files \(sbs\.h5ad, id\.h5ad\)"):
        merge_adatas([sbs, ids], [Path("sbs.h5ad"), Path("id.h5ad")])


def test_measured_sets_complete_across_parts_of_one_sample():
    """A sample's SBS, DBS and ID parts complete each other (PCAWG's three matrices); a sample held only by
    a part ingested without a reference leaves SBS96 unmeasured for the cohort while SBS6 stays measured."""
    def part(names, sets):
        adata = ad.AnnData(np.zeros((len(names), 1), dtype=np.float32))
        adata.obs_names = names
        adata.uns["nanog1"] = {"channel_sets_present": sets}
        return adata

    pcawg = [part(["a", "b"], ["SBS96"]), part(["a", "b"], ["DBS78"]), part(["a", "b"], ["ID83"])]
    assert _measured_sets(pcawg) == ["SBS96", "DBS78", "ID83", "SBS6", "ID12"]
    mixed = [part(["a"], ["SBS96", "DBS78", "ID83"]), part(["b"], ["DBS78", "SBS6", "ID12"])]
    assert _measured_sets(mixed) == ["DBS78", "SBS6", "ID12"]
    assert _measured_sets([part([], ["SBS96"])]) == []
