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

Out: `ship_results.npz` (per job: calibrated-later probabilities of val and test genomes, NaN
elsewhere; test probabilities with indels / DBS masked as unmeasured; GB test probabilities),
`ship_info.json` (per-job seconds, epochs, validation history) and `model_final.pt` (weights-only).
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


def _gpu_job(npz: str, name: str, recipe: dict, out: str) -> dict:
    """Train one job's encoder; probabilities of its val + test genomes (and masked test variants)."""
    import torch
    from pcawg_device import MASKS, Recipe, load_npz, predict_all, set_padding, train_fold

    torch.set_num_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    data = load_npz(Path(npz), device)
    roles = data[f"roles_{name}"]
    train, val, test = (np.flatnonzero(roles == r) for r in (TRAIN, VAL, TEST))
    t0 = time.perf_counter()
    model, history = train_fold(data, train, val, Recipe(**recipe), device=device, log=lambda *_: None)
    seconds = time.perf_counter() - t0
    n, k = len(roles), len(data["classes"])
    res = {"proba": np.full((n, k), np.nan, dtype=np.float32)}
    shown = np.concatenate([val, test])
    res["proba"][shown] = predict_all(model, data, shown)[0]
    if len(test):
        for mask in MASKS:
            res[f"proba_{mask}"] = np.full((n, k), np.nan, dtype=np.float32)
            res[f"proba_{mask}"][test] = predict_all(model, data, test, padding=set_padding(mask))[0]
    if name == "final":
        torch.save(
            {"encoder_config": model.cfg.to_dict(),
             "state_dict": {p: t.cpu() for p, t in model.state_dict().items()}},
            Path(out) / "model_final.pt",
        )
    best = int(np.argmax([h["val_macro_f1"] for h in history]))
    info = {"seconds": seconds, "epochs_run": len(history), "best_epoch": best,
            "val_history": [round(h["val_macro_f1"], 4) for h in history]}
    return {"name": name, "kind": "gpu", "arrays": res, "info": info}


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


def _save(out: Path, arrays: dict, info: dict) -> None:
    """Merged results so far (atomic replace, so a cut-short run leaves a readable file)."""
    tmp = out / "ship_results.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, out / "ship_results.npz")
    (out / "ship_info.json").write_text(json.dumps(info, indent=1, default=float))


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
    for name, value in vars(Recipe()).items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = ap.parse_args()
    recipe = {k: getattr(args, k) for k in vars(Recipe())}
    with np.load(args.npz, allow_pickle=False) as z:
        jobs = [str(j) for j in z["jobs"]]
    if args.jobs:
        jobs = [j for j in jobs if j in args.jobs.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    info: dict = {"recipe": recipe, "jobs": {}, "started": time.time()}
    arrays: dict = {}
    t0 = time.perf_counter()
    ctx = mp.get_context("spawn")  # CUDA in workers needs spawn
    with ProcessPoolExecutor(args.gpu_workers, mp_context=ctx) as gpu, \
         ProcessPoolExecutor(args.gb_workers, mp_context=ctx) as cpu:
        pending = {gpu.submit(_gpu_job, str(args.npz), j, recipe, str(args.out)) for j in jobs}
        if not args.no_gb:
            pending |= {cpu.submit(_gb_job, str(args.npz), j) for j in jobs if j != "final"}
        while pending:
            done, pending = wait(pending, timeout=30, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    res = fut.result()
                except Exception as err:  # one failed job must not lose the others
                    print(f"job failed: {err!r}", flush=True)
                    continue
                arrays |= {f"{res['name']}__{k}": v for k, v in res["arrays"].items()}
                info["jobs"].setdefault(res["name"], {}).update(res["info"])
                line = f"{time.perf_counter() - t0:6.0f}s {res['kind']} {res['name']} {res['info']}"
                print(line[:200], flush=True)
            if done:
                info["elapsed_s"] = time.perf_counter() - t0
                _save(args.out, arrays, info)
            if time.perf_counter() - t0 > args.budget_s:
                for fut in pending:
                    fut.cancel()  # not started yet: dropped; running ones finish
    print(f"all done in {time.perf_counter() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
