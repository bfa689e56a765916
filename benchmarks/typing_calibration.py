"""PCAWG: expected calibration error of out-of-fold type probabilities before/after temperature scaling.

Logistic regression on SBS96 profiles (+ log burden), 5-fold out-of-fold probabilities; the temperature
of each fold is fitted on the other folds' predictions (`crossfit_calibration`), so 'after' is held out.
Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/typing_calibration.py [PCAWG_DIR]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nanog1.encoder.calibration import crossfit_calibration, fit_temperature, logits_from_proba
from nanog1.genomics.signatures_pcawg import pcawg_typing_features


def main(pcawg_dir: Path) -> None:
    x, y = pcawg_typing_features(pcawg_dir)
    print(f"{len(y)} genomes, {y.max() + 1} types")
    print(f"{'C':>6} {'top1':>6} {'T':>6} {'ECE before':>11} {'ECE after':>10} {'ratio':>6} {'s':>5}")
    for c in (1.0, 10.0, 100.0):
        t0 = time.perf_counter()
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
        proba = cross_val_predict(
            model, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=0), method="predict_proba"
        )
        before, after = crossfit_calibration(proba, y, folds=5, seed=0)
        t = fit_temperature(logits_from_proba(proba), y)
        top1 = float((proba.argmax(1) == y).mean())
        print(
            f"{c:6g} {top1:6.3f} {t:6.2f} {before:11.4f} {after:10.4f} {after / before:6.2f} "
            f"{time.perf_counter() - t0:5.1f}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("../shared/data/pcawg7"))
