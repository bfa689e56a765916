"""The encoder trains on a cohort from the project's own simulator (the demo's data path)."""

from __future__ import annotations

import pytest

from nanog1.encoder.config import TrainConfig
from nanog1.encoder.cv import train_val_split
from nanog1.encoder.data import cohort_arrays
from nanog1.encoder.loop import fit
from nanog1.genomics.simulate import simulate_cohort, simulated_anndata

TYPES = ["Lung-SCC", "Skin-Melanoma", "ColoRect-AdenoCA", "Breast-AdenoCA"]


@pytest.mark.slow
def test_multitask_on_simulated_cohort(tmp_path):
    adata = simulated_anndata(simulate_cohort(60, types=TYPES, seed=0))
    for name in ("SBS96", "DBS78", "ID83"):
        adata.obsm[f"exposures_{name}"] = adata.obsm[f"true_exposures_{name}"]
    arrays = cohort_arrays(adata)
    assert arrays.classes == sorted(TYPES) and set(arrays.signature_matrices) == {"SBS96", "DBS78", "ID83"}
    tr, val = train_val_split(arrays.labels, 0.25, seed=0)
    cfg = TrainConfig(task="multitask", epochs=6, hidden=16, layers=1, rank=4, heads=2, batch_size=8, lr=1e-2,
                      warmup_frac=0.05, dropout=0.0)
    result = fit(arrays, cfg, tmp_path, tr, val, resume=False)
    first, last = result.history[0], result.history[-1]
    assert last["train_loss"] < first["train_loss"]
    assert last["loss_exposures"] < first["loss_exposures"]
    assert 0.0 < last["val_exposure_cosine_SBS96"] <= 1.0
