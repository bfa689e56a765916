"""Every training job of the packaged PCAWG model in one call: CV, study hold-outs, the final model, GB.

Reads `ship.npz` (`benchmarks/pcawg_shipped.py export-npz` writes it here; the device machine has
torch, numpy and scikit-learn but no anndata). Each job gives every genome a role (train / val /
test): the 5 stratified CV folds, the 12-project hold-out, leave-one-study-out for every project
whose types PCAWG also drew from another project, and the final model (all genomes, 15 % kept for
early stopping and calibration). GPU jobs run side by side in worker processes (one CUDA context
each); gradient boosting (the `nanog1 baselines` estimator) fits the same train + val genomes of
every job on the CPU cores at the same time. Results are merged after every finished job, so a run
cut short still returns what it finished:

    python benchmarks/pcawg_ship_jobs.py --npz ship.npz --out DIR --gpu-workers 8 --gb-workers 7 \\
        --hidden 64 --rank 16 --epochs 40 --thin 0.5 --set-dropout 0.3

`--seeds N` trains every job with seeds 0..N-1 (the members of an ensemble; `--loso-seeds M` for
the 31 leave-one-study-out jobs). Jobs start in order of need: every seed of the final model, CV and
12-project jobs seed by seed, then leave-one-study-out seed by seed, so a `--budget-s` cut drops the
least needed ones.

Out: `ship_results.npz` and `ship_results_loso_sSEED.npz` (per job and seed, keys `JOB__sSEED__ARRAY`:
probabilities of its val and test genomes, NaN elsewhere, in the full view and with indels / DBS
masked as unmeasured (the test-time views an ensemble may average; chosen later on the val genomes),
the test genomes also without a reference; val and test genomes with only SBS96 measured and without a
reference, for thresholds per measured pattern; gradient boosting's test probabilities as `JOB__gb`),
`ship_info.json` (per-job seconds, epochs, validation history) and `models_final.pt` (weights-only:
{seed: encoder config + state dict}).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

TRAIN, VAL, TEST = 0, 1, 2  # as pcawg_shipped.TRAIN / VAL / TEST (that module needs anndata)
#: Masked views scored on validation genomes too (candidates for test-time view averaging).
VIEWS = ("no_indels", "no_dbs")
#: Inputs that measure fewer sets (an SBS96 matrix alone; a VCF read without a reference): scored on
#: validation genomes too, so a confidence threshold per measured pattern can be fitted there and tested
#: on the test genomes (benchmarks/pcawg_patterns.py).
PATTERNS = ("sbs96_only", "no_reference")


def _gpu_job(npz: str, name: str, recipe: dict, seed: int, deadline: float = float("inf"),
             graphed: bool = False) -> dict | None:
    """Train one job's encoder with `seed`; probabilities of its val + test genomes in every view.
    None when it would start after `deadline` (time.time(); the pool's queued calls cannot be cancelled).
    `graphed`: each training step replayed from a CUDA graph (pcawg_device.train_fold)."""
    if time.time() > deadline:
        return None
    import torch
    from pcawg_device import MASKS, Recipe, load_npz, predict_all, set_padding, train_fold

    torch.set_num_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = load_npz(Path(npz), device)
    roles = data[f"roles_{name}"]
    train, val, test = (np.flatnonzero(roles == r) for r in (TRAIN, VAL, TEST))
    t0 = time.perf_counter()
    model, history = train_fold(data, train, val, Recipe(**(recipe | {"seed": seed})), device=device,
                                log=lambda *_: None, graphed=graphed)
    seconds = time.perf_counter() - t0
    n, k = len(roles), len(data["classes"])
    res = {"proba": np.full((n, k), np.nan, dtype=np.float32)}
    shown = np.concatenate([val, test])
    res["proba"][shown] = predict_all(model, data, shown)[0]
    for mask in MASKS:
        rows = shown if mask in VIEWS + PATTERNS else test
        if len(rows):
            res[f"proba_{mask}"] = np.full((n, k), np.nan, dtype=np.float32)
            res[f"proba_{mask}"][rows] = predict_all(model, data, rows, padding=set_padding(mask))[0]
    if name == "final":
        res["weights"] = {"encoder_config": model.cfg.to_dict(),
                          "state_dict": {p: t.cpu() for p, t in model.state_dict().items()}}
    best = int(np.argmax([h["val_macro_f1"] for h in history]))
    info = {"seconds": seconds, "epochs_run": len(history), "best_epoch": best,
            "val_history": [round(h["val_macro_f1"], 4) for h in history]}
    if "step_graph" in history[-1]:
        info["step_graph"] = {k: v for k, v in history[-1]["step_graph"].items() if k != "reasons"} | {
            "reasons": list(history[-1]["step_graph"]["reasons"].values())}
    return {"name": f"{name}__s{seed}", "kind": "gpu", "arrays": res, "info": info}


def _gb_job(npz: str, name: str) -> dict:
    """Gradient boosting (nanog1.encoder.baselines) on the job's train + val genomes, test probabilities."""
    from threadpoolctl import threadpool_limits

    from nanog1.encoder.baselines import classifiers

    with np.load(npz, allow_pickle=False) as z:
        x, y, roles, k = z["gb_x"], z["labels"], z[f"roles_{name}"], len(z["classes"])
    fit, test = np.flatnonzero(roles != TEST), np.flatnonzero(roles == TEST)
    t0 = time.perf_counter()
    with threadpool_limits(1):
        model = classifiers(0)["gradient_boosting"]().fit(x[fit], y[fit])
        proba = np.full((len(y), k), np.nan, dtype=np.float32)
        proba[np.ix_(test, model.classes_)] = model.predict_proba(x[test])
    seconds = time.perf_counter() - t0
    return {"name": name, "kind": "gb", "arrays": {"gb": proba}, "info": {"gb_seconds": seconds}}


def result_parts(arrays: dict) -> dict[str, list[str]]:
    """File suffix -> keys: CV, hold-out and final jobs in one file, leave-one-study-out one file per seed
    (`_loso_sSEED`; 31 jobs x 4 views of one seed fit the device tool's 16 MiB per file) and one per seed
    for the measured-pattern arrays (`_loso_sSEED_patterns`)."""
    parts: dict[str, list[str]] = {"": []}
    for k in arrays:
        part = f"_loso_s{k.split('__')[1][1:]}" if k.startswith("loso_") else ""
        if part and k.split("__")[-1].removeprefix("proba_") in PATTERNS:
            part += "_patterns"  # the pattern arrays hold val rows too: a file of their own stays small
        parts.setdefault(part, []).append(k)
    return parts


def _save(out: Path, arrays: dict, info: dict, final: dict) -> None:
    """Merged results so far (atomic replace, so a cut-short run leaves a readable file)."""
    for part, keys in result_parts(arrays).items():
        tmp = out / f"ship_results{part}.tmp.npz"  # one file per part: each under the device tool's 16 MiB
        np.savez_compressed(tmp, **{k: arrays[k] for k in keys})
        os.replace(tmp, out / f"ship_results{part}.npz")
    if final:
        import torch

        torch.save(final, out / "models_final.tmp.pt")
        os.replace(out / "models_final.tmp.pt", out / "models_final.pt")
    (out / "ship_info.json").write_text(json.dumps(info, indent=1, default=float))


def job_order(jobs: list[str], seeds: int, loso_seeds: int | None,
              main_start: int = 0, loso_start: int = 0) -> list[tuple[int, str]]:
    """(seed, job) in order of need: final, CV and hold-out jobs seed by seed (from seed `main_start`: an
    earlier run trained the seeds below it), then leave-one-study-out seed by seed from seed `loso_start`."""
    main = sorted((j for j in jobs if not j.startswith("loso_")), key=lambda j: j != "final")
    loso = [j for j in jobs if j.startswith("loso_")]
    loso_seeds = seeds if loso_seeds is None else loso_seeds
    first = [(s, j) for s in range(main_start, seeds) for j in main]
    return first + [(s, j) for s in range(loso_start, loso_seeds) for j in loso]


def main() -> None:
    from pcawg_device import Recipe

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--npz", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--gpu-workers", type=int, default=8)
    ap.add_argument("--gb-workers", type=int, default=7)
    ap.add_argument("--jobs", default="", help="comma-separated job names (default: all in the npz)")
    ap.add_argument("--no-gb", action="store_true")
    ap.add_argument("--budget-s", type=float, default=1e9, help="start no job after this many seconds")
    ap.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per job (ensemble members)")
    ap.add_argument("--loso-seeds", type=int, default=None, help="seeds of leave-one-study-out jobs "
                    "(default: --seeds)")
    ap.add_argument("--main-start-seed", type=int, default=0, help="CV, hold-out and final jobs start at "
                    "this seed (an earlier run trained the ones below)")
    ap.add_argument("--loso-start-seed", type=int, default=0,
                    help="leave-one-study-out jobs start at this seed")
    ap.add_argument("--step-graph", action="store_true", help="replay each training step from a CUDA graph "
                    "(same recipe, fused capturable AdamW; nanog1.core.step_graph)")
    for name, value in vars(Recipe()).items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = ap.parse_args()
    recipe = {k: getattr(args, k) for k in vars(Recipe()) if k != "seed"}
    with np.load(args.npz, allow_pickle=False) as z:
        jobs = [str(j) for j in z["jobs"]]
    if args.jobs:
        jobs = [j for j in jobs if j in args.jobs.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    info: dict = {"recipe": recipe, "seeds": args.seeds, "loso_seeds": args.loso_seeds,
                  "main_start_seed": args.main_start_seed, "step_graph": args.step_graph, "jobs": {},
                  "started": time.time()}
    arrays: dict = {}
    final: dict = {}
    t0 = saved = time.perf_counter()
    ctx = mp.get_context("spawn")  # CUDA in workers needs spawn
    with ProcessPoolExecutor(args.gpu_workers, mp_context=ctx) as gpu, \
         ProcessPoolExecutor(max(args.gb_workers, 1), mp_context=ctx) as cpu:
        deadline = time.time() + args.budget_s
        pending = {gpu.submit(_gpu_job, str(args.npz), j, recipe, s, deadline, args.step_graph)
                   for s, j in job_order(jobs, args.seeds, args.loso_seeds, args.main_start_seed,
                                                  args.loso_start_seed)}
        if not args.no_gb:
            pending |= {cpu.submit(_gb_job, str(args.npz), j) for j in jobs if j != "final"}
        while pending:
            done, pending = wait(pending, timeout=30, return_when=FIRST_COMPLETED)
            for fut in done:
                if fut.cancelled():
                    continue
                try:
                    res = fut.result()
                except Exception as err:  # one failed job must not lose the others
                    print(f"job failed: {err!r}", flush=True)
                    continue
                if res is None:  # reached the budget before it started
                    continue
                if "weights" in res["arrays"]:
                    final[int(res["name"].rsplit("__s", 1)[1])] = res["arrays"].pop("weights")
                arrays |= {f"{res['name']}__{k}": v for k, v in res["arrays"].items()}
                info["jobs"].setdefault(res["name"], {}).update(res["info"])
                line = f"{time.perf_counter() - t0:6.0f}s {res['kind']} {res['name']} {res['info']}"
                print(line[:200], flush=True)
            if done and (not pending or time.perf_counter() - saved > 20):
                saved = time.perf_counter()
                info["elapsed_s"] = saved - t0
                _save(args.out, arrays, info, final)
            if time.perf_counter() - t0 > args.budget_s:
                dropped = sum(fut.cancel() for fut in pending)  # not started: dropped; running ones finish
                if dropped:
                    print(f"budget reached: {dropped} jobs not started", flush=True)
    print(f"all done in {time.perf_counter() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
