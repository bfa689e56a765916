"""Small model folders for the prediction tests: a random-weight encoder with a real calibration file.

Its out-of-distribution rule is fitted on the profiles of the types it was "trained" on, so an unseen
type is flagged whatever the weights say. `reads` limits the channel sets the model reads (the others are
padding), to make a model that does not fit an input.
"""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import torch


def write_model_folder(folder: Path, seen: ad.AnnData, reads: tuple[str, ...] | None = None) -> Path:
    """model.pt, calibration.json and reference.npz in `folder`, for the types of `seen` (obs cancer_type)."""
    from nanog1.encoder.abstention import AbstentionRule
    from nanog1.encoder.calibration import ood_reference
    from nanog1.encoder.config import TrainConfig
    from nanog1.encoder.model import N_CHANNELS, MutationEncoder, MutationEncoderConfig
    from nanog1.encoder.pretrained import export_reference
    from nanog1.genomics.channels import set_slice

    folder.mkdir(parents=True, exist_ok=True)
    classes = sorted(seen.obs["cancer_type"].astype(str).unique())
    torch.manual_seed(0)
    ecfg = MutationEncoderConfig(hidden=8, layers=1, rank=2, heads=2, n_types=len(classes))
    padding = torch.zeros(N_CHANNELS, dtype=torch.bool)
    if reads is not None:
        padding[:] = True
        for name in reads:
            padding[set_slice(name)] = False
    torch.save(
        {
            "encoder_config": ecfg.to_dict(),
            "state_dict": MutationEncoder(ecfg).state_dict(),
            "classes": classes,
            "channel_padding": padding,
            "signature_names": {},
            "train_config": TrainConfig(hidden=8, layers=1, rank=2, heads=2).to_dict(),
        },
        folder / "model.pt",
    )
    labels = np.array([classes.index(t) for t in seen.obs["cancer_type"].astype(str)])
    ood = ood_reference(np.asarray(seen.X, dtype=np.float64), labels, 0.3, 0)
    rule = AbstentionRule(confidence_threshold=0.0, ood=ood)
    (folder / "calibration.json").write_text(json.dumps({"temperature": 1.0, "abstention": rule.to_dict()}))
    seen = seen.copy()
    seen.obs["project_code"] = "SIM"
    export_reference(np.random.default_rng(0).normal(size=(seen.n_obs, 8)), seen, folder)
    return folder


def add_prior_record(folder: Path, seen: ad.AnnData, alpha: float = 5.0, min_tumours: int = 10) -> Path:
    """Give a model folder's calibration.json a neutral prior-adaptation record (`predict --adapt-priors`):
    zero bias, a uniform training mix over `seen`'s types."""
    classes = sorted(seen.obs["cancer_type"].astype(str).unique())
    k = len(classes)
    calib = json.loads((folder / "calibration.json").read_text())
    calib["prior_adaptation"] = {"classes": classes, "bias": [0.0] * k, "training_prior": [1.0 / k] * k,
                                 "alpha": alpha, "min_tumours": min_tumours, "fitted_on": "test"}
    (folder / "calibration.json").write_text(json.dumps(calib))
    return folder


def lacking_indels(seed: int, without: str | None = "Breast") -> tuple[ad.AnnData, np.ndarray]:
    """A generated cohort (less the type `without`) whose even tumours measured no indels (ID83 and ID12
    zero and declared not measured), and that mask."""
    import pandas as pd

    from nanog1.genomics.channels import EXACT, PARTIAL, set_slice
    from tests.training_cohort import make_cohort

    adata = make_cohort(n_per_type=6, seed=seed, tokens=False)
    if without is not None:
        adata = adata[adata.obs["cancer_type"].astype(str) != without].copy()
    lacking = np.arange(adata.n_obs) % 2 == 0
    for name in ("ID83", "ID12"):
        adata.X[np.ix_(lacking, np.arange(adata.n_vars)[set_slice(name)])] = 0
    adata.uns["nanog1"] = {"channel_sets": {"SBS96": EXACT, "DBS78": EXACT, "ID83": PARTIAL}}
    sets = {"SBS96": True, "DBS78": True, "ID83": ~lacking, "SBS6": True, "ID12": ~lacking}
    adata.obsm["measured_sets"] = pd.DataFrame(sets, index=adata.obs_names)
    return adata, lacking
