"""The packaged PCAWG model's jobs and reports (benchmarks/pcawg_ship_jobs.py, pcawg_device.py,
pcawg_ship_metrics.py, pcawg_ship_report.py): job order, the graphed training step on the CPU, result
files, merging runs, the seed decision, the transfer threshold."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import pcawg_device  # noqa: E402
import pcawg_ship_jobs  # noqa: E402


def test_job_order_starts_main_jobs_at_a_seed_and_loso_at_zero():
    jobs = ["cv0", "cv1", "transfer12", "final", "loso_A", "loso_B"]
    order = pcawg_ship_jobs.job_order(jobs, 5, 2, main_start=4)
    assert order[:4] == [(4, "final"), (4, "cv0"), (4, "cv1"), (4, "transfer12")]
    assert order[4:] == [(0, "loso_A"), (0, "loso_B"), (1, "loso_A"), (1, "loso_B")]
    assert len(pcawg_ship_jobs.job_order(jobs, 2, None)) == 12  # default: every seed of every job
    later = pcawg_ship_jobs.job_order(jobs, 5, 4, main_start=5, loso_start=1)  # LOSO seeds 1-3 only
    assert later == [(s, j) for s in (1, 2, 3) for j in ("loso_A", "loso_B")]


def _tiny_data(n: int = 48, seed: int = 0) -> dict:
    from nanog1.schema import N_CHANNELS

    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    counts = rng.poisson(2.0, (n, N_CHANNELS)).astype(np.float32)
    for c in range(3):  # each type its own peak, so training can learn
        counts[labels == c, c * 5 : c * 5 + 5] += 20
    data = {"counts": counts, "labels": labels, "classes": np.array(["a", "b", "c"])}
    for s, k in (("SBS96", 4), ("DBS78", 2), ("ID83", 3)):
        data[f"expo_{s}"] = rng.dirichlet(np.ones(k), n).astype(np.float32)
    data["counts_t"] = torch.from_numpy(counts)
    data["labels_t"] = torch.from_numpy(labels).long()
    data["expo_t"] = {s: torch.from_numpy(data[f"expo_{s}"]) for s in pcawg_device.SETS}
    return data


def test_graphed_path_trains_as_the_eager_one_on_the_cpu():
    """On the CPU GraphedStep runs the step eagerly: same draws, same weights as the eager loop."""
    data = _tiny_data()
    recipe = pcawg_device.Recipe(hidden=16, layers=1, rank=4, heads=2, epochs=3, batch=16, thin=0.5,
                                 set_dropout=0.3, patience=5)
    train, val = np.arange(36), np.arange(36, 48)
    m_eager, h_eager = pcawg_device.train_fold(data, train, val, recipe, log=lambda *_: None)
    m_graph, h_graph = pcawg_device.train_fold(data, train, val, recipe, log=lambda *_: None, graphed=True)
    assert [h["loss"] for h in h_eager] == pytest.approx([h["loss"] for h in h_graph], abs=1e-6)
    for (name, a), b in zip(m_eager.state_dict().items(), m_graph.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
    stats = h_graph[-1]["step_graph"]
    assert stats["captured"] == 0 and stats["eager"] == 3 * 3  # 3 epochs x 3 batches, none captured on CPU
    assert "step_graph" not in h_eager[-1]


def test_draw_batch_thins_and_masks_only_in_training():
    data = _tiny_data()
    recipe = pcawg_device.Recipe(thin=0.5, set_dropout=0.9)
    idx = torch.arange(40)
    torch.manual_seed(0)
    train = pcawg_device.draw_batch(data, idx, recipe, True)
    assert (train["counts"] <= data["counts_t"][idx]).all() and train["counts"].sum() < data["counts_t"].sum()
    assert train["padding"].any()
    test = pcawg_device.draw_batch(data, idx, recipe, False)
    assert torch.equal(test["counts"], data["counts_t"][idx]) and "padding" not in test


def test_result_parts_split_loso_by_seed():
    arrays = {"cv0__s4__proba": 1, "final__s4__proba": 2, "loso_BRCA-UK__s0__proba": 3,
              "loso_BRCA-UK__s1__proba_no_dbs": 4, "loso_OV-AU__s1__proba": 5,
              "loso_OV-AU__s1__proba_sbs96_only": 6, "cv0__s0__proba_sbs96_only": 7}
    assert pcawg_ship_jobs.result_parts(arrays) == {
        "": ["cv0__s4__proba", "final__s4__proba", "cv0__s0__proba_sbs96_only"],
        "_loso_s0": ["loso_BRCA-UK__s0__proba"],
        "_loso_s1": ["loso_BRCA-UK__s1__proba_no_dbs", "loso_OV-AU__s1__proba"],
        "_loso_s1_patterns": ["loso_OV-AU__s1__proba_sbs96_only"]}


def test_merge_earlier_fills_missing_seeds_and_reads_old_keys_as_seed_0():
    from pcawg_ship_metrics import common_seeds, job_seed, keep_seeds, merge_earlier

    assert job_seed("cv0__s4__proba_no_dbs") == ("cv0", 4, "proba_no_dbs")
    assert job_seed("loso_OV-AU__proba") == ("loso_OV-AU", 0, "proba")
    assert job_seed("cv0__gb") == ("cv0", None, "gb")
    new = {"cv0__s4__proba": "new4", "loso_A__s0__proba": "new0", "loso_A__s0__proba_no_dbs": "new0d"}
    ens = {"cv0__s0__proba": "ens0", "cv0__s1__proba": "ens1", "cv0__s4__proba": "stale4"}
    old = {"cv0__proba": "old0", "loso_A__proba": "old0", "loso_A__proba_no_dbs": "old0d", "loso_A__gb": "gb",
           "loso_B__proba": "oldB"}
    merged = merge_earlier(merge_earlier(new, ens), old)
    assert merged["cv0__s4__proba"] == "new4" and merged["cv0__s0__proba"] == "ens0"  # first run wins a seed
    assert merged["loso_A__s0__proba"] == "new0" and merged["loso_A__s0__proba_no_dbs"] == "new0d"
    assert merged["loso_A__gb"] == "gb" and merged["loso_B__s0__proba"] == "oldB"  # only the old run has B
    assert common_seeds(merged, ["cv0", "loso_A"]) == [0]
    kept = keep_seeds(merged, "cv", [0])
    assert "cv0__s1__proba" not in kept and "cv0__s0__proba" in kept and "loso_A__gb" in kept


def _metrics(cv: float, t12: tuple, loso: tuple, seeds: dict) -> dict:
    def kind(top1, f1, n):
        return {"models": {"ensemble": {"scores": {"top1": top1, "macro_f1": f1}}}, "seeds_per_job": [n]}

    return {"cv_5fold": kind(cv, 0.7, seeds["cv"]), "transfer_12_projects": kind(*t12, seeds["t12"]),
            "leave_one_study_out": kind(*loso, seeds["loso"])}


def test_seed_decision_needs_better_cv_and_measured_transfer():
    from pcawg_ship_report import seed_decision

    four = _metrics(0.83, (0.69, 0.69), (0.69, 0.64), {"cv": 4, "t12": 4, "loso": 4})
    five = _metrics(0.84, (0.70, 0.69), (0.69, 0.64), {"cv": 5, "t12": 5, "loso": 5})
    assert seed_decision(five, four)["ship_more_seeds"]
    worse = _metrics(0.84, (0.70, 0.68), (0.69, 0.64), {"cv": 5, "t12": 5, "loso": 5})
    assert seed_decision(worse, four) == {"cv_top1_better": True, "transfer12_not_worse": False,
                                          "loso_not_worse": True, "ship_more_seeds": False}
    same_loso = _metrics(0.84, (0.70, 0.69), (0.69, 0.64), {"cv": 5, "t12": 5, "loso": 4})
    verdict = seed_decision(same_loso, four)
    assert verdict["loso_not_worse"] is None and not verdict["ship_more_seeds"]  # not measured: no ship


def test_transfer_threshold_reaches_the_target_on_the_genomes_it_was_fitted_on():
    from pcawg_ship_report import accepted, coverage_accuracy, transfer_threshold

    rng = np.random.default_rng(0)
    outs = []
    for _ in range(3):
        conf = rng.uniform(0.3, 1.0, 200)
        labels = np.zeros(200, dtype=int)
        right = rng.uniform(size=200) < conf  # right about as often as confident
        proba = np.stack([np.where(right, conf, 1 - conf), np.where(right, 1 - conf, conf)], 1)
        outs.append({"proba": proba, "labels": labels, "ood": np.zeros(200, dtype=bool)})
    t = transfer_threshold(outs)
    res = coverage_accuracy(outs, [accepted(o, t) for o in outs])
    assert res["top1_accepted"] >= 0.9 and 0.05 < res["coverage"] < 0.9 and res["n"] == 600
    outs[0]["ood"][:] = True  # out-of-distribution tumours are never accepted
    assert coverage_accuracy(outs, [accepted(o, t) for o in outs])["coverage"] < res["coverage"]


def test_pooled_predictions_average_seeds_on_each_jobs_test_genomes():
    from pcawg_ship_report import more_seeds_ci, pooled_predictions

    labels = np.array([0, 1, 0, 1, 0, 1])
    ship = {"labels": labels, "jobs": np.array(["cv0", "cv1", "transfer12"]),
            "roles_cv0": np.array([2, 2, 1, 1, 0, 0]), "roles_cv1": np.array([1, 1, 2, 2, 0, 0]),
            "roles_transfer12": np.array([1, 1, 0, 0, 2, 2])}
    right = np.eye(2)[labels] * 0.8 + 0.1  # every genome typed right
    wrong = 1.0 - right
    results = {}
    for job in ("cv0", "cv1", "transfer12"):
        results[f"{job}__s0__proba"] = right
        results[f"{job}__s1__proba"] = np.where(np.arange(6)[:, None] < 3, wrong * 0.9 + 0.05, right)
    pred, y = pooled_predictions(results, ship, "cv", [0])
    assert y.tolist() == [0, 1, 0, 1] and (pred == y).all()  # cv0's test rows 0, 1, then cv1's 2, 3
    pred, _ = pooled_predictions(results, ship, "cv", [0, 1])  # mean log-probability: confident seed 0 wins
    assert (pred == y).all()
    ci = more_seeds_ci(results, ship, 1, 2, draws=20)
    assert ci["cv_5fold"]["top1"] == [0.0, 0.0] and ci["transfer_12_projects"]["top1"] == [0.0, 0.0]


def test_more_seeds_ci_covers_loso_only_when_every_split_has_the_larger_count():
    from pcawg_ship_report import more_seeds_ci

    labels = np.array([0, 1, 0, 1])
    roles = np.array([2, 2, 1, 1])
    ship = {"labels": labels, "jobs": np.array(["cv0", "transfer12", "loso_A", "loso_B"]),
            **{f"roles_{j}": roles for j in ("cv0", "transfer12", "loso_A", "loso_B")}}
    right = np.eye(2)[labels] * 0.8 + 0.1
    results = {f"{j}__s{s}__proba": right for j in ("cv0", "transfer12", "loso_A") for s in (0, 1)}
    results["loso_B__s0__proba"] = right
    assert "leave_one_study_out" not in more_seeds_ci(results, ship, 1, 2, draws=10)  # loso_B has seed 0 only
    results["loso_B__s1__proba"] = 1.0 - right  # the second seed is wrong, and confident
    ci = more_seeds_ci(results, ship, 1, 2, draws=10)["leave_one_study_out"]
    assert ci["top1"][1] <= 0.0  # the pair of seeds is never better than seed 0 alone on LOSO


def test_package_scores_loso_with_the_ensemble_once_every_split_has_its_seeds():
    from pcawg_shipped import loso_model, ship_decision, targets_line

    def kind(seeds, **models):
        return {"seeds_per_job": [seeds], "models": {m: {"scores": {"top1": v[0], "macro_f1": v[1]}}
                                                     for m, v in models.items()}}

    metrics = {"cv_5fold": kind(5, single=(0.79, 0.73), ensemble=(0.83, 0.78)),
               "transfer_12_projects": kind(5, single=(0.66, 0.66), ensemble=(0.70, 0.69)),
               "leave_one_study_out": kind(5, single=(0.65, 0.61), ensemble=(0.64, 0.60),
                                           single_shipped_views=(0.69, 0.64))}
    assert loso_model(metrics) == "ensemble"
    assert ship_decision(metrics)["loso_not_worse"] is False  # the ensemble row decides, not seed 0's
    metrics["leave_one_study_out"]["seeds_per_job"] = [1]  # LOSO trained with seed 0 only
    assert loso_model(metrics) == "single_shipped_views" and ship_decision(metrics)["ship_ensemble"]
    metrics["shipped_model"] = {"operating_points": {"new_study": {"transfer": {
        "leave_one_study_out_nested": {"coverage": 0.52, "top1_accepted": 0.90}}}}}
    line = targets_line({"top1": 0.833}, {"top1": 0.701, "macro_f1": 0.651}, {"top1": 0.76, "macro_f1": 0.69},
                        metrics)
    assert "top-1 >= 0.75 MISSED" in line and "tumours MISSED" in line and "macro-F1 >= 0.60 met" in line
    metrics["shipped_model"]["operating_points"]["new_study"]["transfer"]["leave_one_study_out_nested"][
        "coverage"] = 0.71
    assert "tumours met" in targets_line({"top1": 0.833}, {"top1": 0.76, "macro_f1": 0.651},
                                         {"top1": 0.76, "macro_f1": 0.69}, metrics)
