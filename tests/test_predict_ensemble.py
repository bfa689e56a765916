"""Packaged ensembles (issue 31): model.pt holds member 0 as any model and, under `ensemble`, the other
members' weights-only state dicts and the test-time views; `predict` averages the log-probabilities of
every member in every view, then applies the one temperature of calibration.json."""

from __future__ import annotations

import json

import numpy as np
import torch

from nanog1.encoder.calibration import apply_temperature, logits_from_proba, softmax
from nanog1.encoder.embedding import apply_model
from nanog1.encoder.ensemble import VIEWS, view_padding
from nanog1.encoder.predictor import PredictOptions, load_predictor, predict
from nanog1.genomics.channels import set_slice
from tests.predict_models import write_model_folder
from tests.training_cohort import make_cohort

FAST = PredictOptions(neighbours=0, exposures=False)


def _ensemble_folder(tmp_path, views: list[str], temperature: float = 0.7):
    """A model folder with three random-weight members, `views` and a temperature != 1."""
    from nanog1.encoder.model import MutationEncoder, MutationEncoderConfig

    folder = write_model_folder(tmp_path / "ens", make_cohort(n_per_type=10, seed=4, tokens=False))
    saved = torch.load(folder / "model.pt", weights_only=True)
    cfg = MutationEncoderConfig(**saved["encoder_config"])
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append(MutationEncoder(cfg).state_dict())
    saved["ensemble"] = {"members": states, "views": views, "seeds": [0, 1, 2]}
    torch.save(saved, folder / "model.pt")
    calib = json.loads((folder / "calibration.json").read_text())
    (folder / "calibration.json").write_text(json.dumps(calib | {"temperature": temperature}))
    return folder, [saved["state_dict"], *states], cfg


def _by_hand(adata, folder, states, cfg, views):
    """softmax(mean over members x views of log p) with the temperature, each member run on its own."""
    from nanog1.encoder.model import MutationEncoder

    saved = torch.load(folder / "model.pt", weights_only=True)
    logps = []
    for view in views:
        masked = {**saved, "channel_padding": saved["channel_padding"] | torch.from_numpy(view_padding(view))}
        for state in states:
            net = MutationEncoder(cfg)
            net.load_state_dict(state)
            pred, _, _ = apply_model(adata, folder, loaded=(net.eval(), masked))
            logps.append(logits_from_proba(pred.proba))
    return apply_temperature(softmax(np.mean(logps, axis=0)), 0.7)


def test_members_and_views_are_averaged_in_log_space(tmp_path):
    views = ["full", "no_dbs"]
    folder, states, cfg = _ensemble_folder(tmp_path, views)
    loaded = load_predictor(folder)
    assert len(loaded.members) == 2 and loaded.views == tuple(views)
    adata = make_cohort(n_per_type=4, seed=9, tokens=False)
    out = predict(adata, loaded, FAST, copy=True)
    np.testing.assert_allclose(out.obsm["proba_type"].to_numpy(), _by_hand(adata, folder, states, cfg, views),
                               rtol=1e-4, atol=1e-6)
    assert out.uns["nanog1_predict"]["ensemble_members"] == 3
    assert out.uns["nanog1_predict"]["views"] == views
    # member 0 alone in the full view gives other probabilities: the members are really used
    single = _by_hand(adata, folder, states[:1], cfg, ["full"])
    assert np.abs(out.obsm["proba_type"].to_numpy() - single).max() > 1e-3


def test_a_view_that_masks_everything_measured_is_skipped(tmp_path):
    """A DBS78-only cohort: the no_dbs view would leave nothing, so only the full view is averaged."""
    from nanog1.genomics.cohort import channel_set_status, with_derived_sets

    folder, states, cfg = _ensemble_folder(tmp_path, ["full", "no_dbs"])
    adata = make_cohort(n_per_type=4, seed=9, tokens=False)
    x = np.asarray(adata.X, dtype=np.float64).copy()
    keep = np.zeros(x.shape[1], dtype=bool)
    keep[set_slice("DBS78")] = True
    x[:, ~keep] = 0
    adata.X = x
    adata.uns["nanog1"]["channel_sets"] = channel_set_status(["DBS78"])
    adata.uns["nanog1"]["channel_sets_present"] = with_derived_sets(["DBS78"])
    out = predict(adata, folder, FAST, copy=True)
    assert out.uns["nanog1_predict"]["channel_sets_scored"] == ["DBS78"]
    expected = _by_hand(adata, folder, states, cfg, ["full"])
    np.testing.assert_allclose(out.obsm["proba_type"].to_numpy(), expected, rtol=1e-4, atol=1e-6)


def test_the_packaged_model_ships_what_its_card_says():
    """pcawg-catalogue: the members and views in model.pt are those of the card, which records how the
    views were chosen (validation genomes) and the decision to ship the ensemble."""
    from nanog1.encoder import pretrained

    saved = torch.load(pretrained.resolve("pcawg-catalogue") / "model.pt", weights_only=True)
    card = pretrained.card("pcawg-catalogue")
    ens = card["ensemble"]
    members = 1 + len(saved.get("ensemble", {}).get("members", []))
    assert members == ens["members"] and saved.get("ensemble", {}).get("views", ["full"]) == ens["views"]
    assert set(ens["views"]) <= set(VIEWS) and "validation genomes" in ens["views_chosen_on"]
    assert ens["decision"]["ship_ensemble"] == (ens["kind"] == "ensemble")
