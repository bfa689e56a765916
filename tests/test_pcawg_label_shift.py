"""Thresholds for adapted output in benchmarks/pcawg_label_shift.py: the simulated cohorts are drawn as
before (the model rows' partitions unchanged), and accepted share / top-1 on the accepted with their
bootstrap intervals are counted as stated."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import pcawg_label_shift as ls  # noqa: E402


def test_simulated_partitions_draw_the_report_cohorts_in_its_former_order():
    loso = [f"loso_{i}" for i in range(31)]
    unions, small = ls.simulated_partitions(loso, 410, 3, seed=7)
    rng = np.random.default_rng(7)  # the inline draws `report` made before the function existed
    assert unions == [ls.loso_partitions(loso, rng) for _ in range(3)]
    for size in ls.SMALL_SIZES:
        for cuts in small[size]:
            expected = np.array_split(rng.permutation(410), 410 // size)
            assert all(np.array_equal(a, b) for a, b in zip(cuts, expected, strict=True))
    assert all(sorted(j for g in groups for j in g) == sorted(loso) for groups in unions)


def test_selective_scores_counts_accepted_share_accuracy_and_target():
    correct = np.array([True] * 9 + [False] + [True, False] * 5)  # 20 tumours
    arms = {a: correct for a in ls.ARMS}
    kept = {a: np.arange(20) < 10 for a in ls.ARMS}  # first 10: 9 right
    kept["adapted_new_study"] = np.arange(20) < 16  # 9 + 3 right of 16
    out = ls.selective_scores(arms, kept, draws=200)
    assert out["arms"]["unadapted_in_study"]["accepted"] == 0.5
    assert out["arms"]["unadapted_in_study"]["top1_accepted"] == 0.9
    assert out["arms"]["unadapted_in_study"]["target_met"] is False  # 0.90 on 50 %: coverage short
    assert out["arms"]["adapted_new_study"]["accepted"] == 0.8
    assert out["arms"]["adapted_new_study"]["top1_accepted"] == 12 / 16
    lo, hi = out["arms"]["adapted_new_study"]["accepted_ci95"]
    assert lo < 0.8 < hi
    dlo, dhi = out["paired_ci95"]["adapted_minus_unadapted_new_study"]["accepted"]
    assert 0 <= dlo < dhi  # never fewer accepted in the same resampled tumours
    every = {a: np.ones(20, bool) for a in ls.ARMS}
    full = ls.selective_scores(every, every, draws=50)
    assert full["arms"]["adapted_in_study"]["target_met"] is True
    assert full["arms"]["adapted_in_study"]["draws_meeting_target"] == 1.0
