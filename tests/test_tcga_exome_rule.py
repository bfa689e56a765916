"""The tcga-exome ship script's recipe overrides and its seed-means replacement rule
(benchmarks/tcga_exome_ship.py, tcga_exome_package.py), on job files written here."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import tcga_exome_package  # noqa: E402
import tcga_exome_ship  # noqa: E402

CLASSES = np.array(["A", "B", "C"])


def test_recipe_overrides_parse_numbers_and_keep_strings():
    recipe = tcga_exome_ship.recipe_of(["hidden=64", "thin=0.25", "hotspot_key=both", "max_events=8"])
    assert recipe["hidden"] == 64 and recipe["thin"] == 0.25 and recipe["max_events"] == 8
    assert recipe["hotspot_key"] == "both" and tcga_exome_ship.RECIPE["hotspot_key"] == "site"


def _job(folder: Path, job: str, right: float, n: int = 200, seed: int = 0) -> None:
    """A job file whose TEST rows are typed right with share `right` (a one-hot guess)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    guess = np.where(np.arange(n) < round(right * n), labels, (labels + 1) % 3)
    proba = np.full((n, 3), 0.1)
    proba[np.arange(n), guess] = 0.8
    np.savez(folder / f"{job}.npz", proba=proba, labels=labels, role=np.full(n, tcga_exome_ship.TEST),
             barcode=np.array([f"{job}-T{i}" for i in range(n)]), classes=CLASSES)


def _seed(folder: Path, cv: float, m2f: float, f2m: float) -> Path:
    folder.mkdir()
    for k in range(5):
        _job(folder, f"cv{k}", cv, seed=k)
    _job(folder, "mc3_to_firehose", m2f, seed=7)
    _job(folder, "firehose_to_mc3", f2m, seed=8)
    return folder


def test_seed_means_rule_needs_the_cv_gain_on_means_and_seed_zero_and_no_transfer_drop(tmp_path):
    old = [_seed(tmp_path / "o0", 0.50, 0.33, 0.30), _seed(tmp_path / "o1", 0.50, 0.32, 0.28)]
    better = [_seed(tmp_path / "n0", 0.55, 0.33, 0.29), _seed(tmp_path / "n1", 0.54, 0.31, 0.29)]
    rule = tcga_exome_package.seed_means_rule(better, old, 0.0103)
    assert rule["ship"] and abs(rule["cv_gain"]["means"] - 0.045) < 1e-9
    assert abs(rule["seed_spread"] - 0.0103) < 1e-9  # own spread 0.01 < the floor
    # one seed's transfer falls 2 points, the mean (0.320 vs 0.325) half a point: within the bound
    assert abs(rule["transfer_change"]["mc3_to_firehose"] + 0.005) < 1e-9
    paired = tcga_exome_package.paired_intervals(better, old)
    kinds = ("cv", "mc3_to_firehose", "firehose_to_mc3")
    assert set(paired) == {f"seed{i}/{k}" for i in (0, 1) for k in kinds}
    assert paired["seed0/cv"]["top1"][0] > 0 and paired["seed0/mc3_to_firehose"]["top1"] == [0.0, 0.0]
    noisy = [better[0], _seed(tmp_path / "n2", 0.49, 0.33, 0.29)]  # own spread 0.06 > the 0.02 mean gain
    assert not tcga_exome_package.seed_means_rule(noisy, old, 0.0103)["cv_top1_gain_above_seed_spread"]
    worse = [_seed(tmp_path / "w0", 0.56, 0.30, 0.29), _seed(tmp_path / "w1", 0.56, 0.31, 0.29)]
    rule = tcga_exome_package.seed_means_rule(worse, old, 0.0103)
    assert rule["cv_top1_gain_above_seed_spread"] and not rule["ship"]  # MC3 -> Firehose mean -2 points


def test_without_protein_reads_a_cohort_as_a_vcf_would_give_it_and_leaves_the_input():
    import anndata as ad

    from nanog1.genomics.gene_bag import codon_keys

    tokens = {"offsets": np.array([0, 2]), "pos": np.array([5, 9]), "gene": np.array([0, 0]),
              "codon": np.array([0, -1]), "vocab": {"gene": np.array(["KRAS"]), "codon": np.array(["p.G12"])}}
    adata = ad.AnnData(np.zeros((1, 2), dtype=np.float32), uns={"tokens": tokens})
    bare = tcga_exome_package.without_protein(adata)
    assert "codon" not in bare.uns["tokens"] and "codon" not in bare.uns["tokens"]["vocab"]
    assert list(codon_keys(bare.uns["tokens"])) == ["", ""]
    assert list(codon_keys(adata.uns["tokens"])) == ["KRAS:p.G12", ""]  # the input keeps its codons
