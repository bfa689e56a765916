"""Each packaged model card's `nanog1 train` equivalent parses against the real CLI and rebuilds the
model's own training config (nanog1.train_command)."""

from __future__ import annotations

import shlex

import pytest
import torch
import typer
import yaml

from nanog1.cli import app
from nanog1.encoder import pretrained
from nanog1.encoder.config import TrainConfig, load_config
from nanog1.train_command import BOOKKEEPING, train_command

FIELDS = set(TrainConfig.__dataclass_fields__)


def parsed_config(command: str, config: dict, tmp_path) -> TrainConfig:
    """The TrainConfig `nanog1 train` builds from `command` (its COHORT / RUN / recipe.yaml placeholders
    pointed at files in tmp_path, the YAML holding `config`): click's own parsing, so an option train
    lacks raises."""
    words = shlex.split(command)
    assert words[:2] == ["nanog1", "train"]
    (tmp_path / "cohort.h5ad").write_bytes(b"")
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(config))
    swap = {"COHORT.h5ad": str(tmp_path / "cohort.h5ad"), "RUN": str(tmp_path / "run"),
            "recipe.yaml": str(tmp_path / "recipe.yaml")}
    train = typer.main.get_command(app).commands["train"]
    params = train.make_context("train", [swap.get(w, w) for w in words[2:]]).params
    overrides = {k: v for k, v in params.items() if k in FIELDS}
    return load_config(params["config"], overrides)


def shipped_cards() -> list[str]:
    """The packaged models whose card states a `nanog1 train` equivalent."""
    return [n for n in pretrained.available() if "equivalent" in pretrained.card(n).get("recipe", {})]


def test_some_shipped_card_states_an_equivalent():
    assert "tcga-exome" in shipped_cards()


@pytest.mark.parametrize("name", shipped_cards())
def test_card_equivalent_is_a_real_train_command_for_the_model(name, tmp_path):
    recipe = pretrained.card(name)["recipe"]
    cfg = parsed_config(recipe["equivalent"], recipe.get("equivalent_config", {}), tmp_path)
    saved = torch.load(pretrained.resolve(name) / "model.pt", map_location="cpu", weights_only=True)
    expected = {k: v for k, v in saved["train_config"].items() if k not in BOOKKEEPING}
    assert {k: getattr(cfg, k) for k in expected} == expected
    assert cfg.consequence_shares == bool(saved["encoder_config"].get("consequence_shares"))


def test_an_option_train_lacks_is_refused(tmp_path):
    with pytest.raises(Exception, match="--patience"):
        parsed_config("nanog1 train COHORT.h5ad --out RUN --patience 4", {}, tmp_path)


def test_train_command_uses_flags_switches_and_a_config_file(tmp_path):
    recipe = {"view": "events", "batch_size": 8, "consequence_shares": False, "patience": 3,
              "label_smoothing": 0.1, "register_model": False}
    line = train_command(recipe)
    assert "--batch-size 8" in line.command and "--no-consequence-shares" in line.command
    assert "--config recipe.yaml" in line.command and "--patience" not in line.command
    assert line.config == {"patience": 3, "label_smoothing": 0.1}
    cfg = parsed_config(line.command, line.config, tmp_path)
    assert (cfg.view, cfg.batch_size, cfg.consequence_shares, cfg.patience, cfg.label_smoothing) == (
        "events", 8, False, 3, 0.1)
    assert "--config" not in train_command({"hidden": 16}).command


def test_exome_card_recipe_states_every_setting_away_from_the_defaults(tmp_path):
    """The tcga-exome card (benchmarks/tcga_exome_package.py): a saved config older than consequence_shares
    reads as RECIPE's (off); lr and the loss settings away from TrainConfig's defaults reach the command,
    the --config YAML, the script's --set list and the objective, and the line rebuilds the config."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from tcga_exome_package import card_recipe, recipe_text
    from tcga_exome_ship import RECIPE

    saved = {k: v for k, v in RECIPE.items() if k != "consequence_shares"} | {
        "lr": 0.001, "class_weight_power": 0.5, "label_smoothing": 0.1, "val_fraction": 0.2}
    recipe = card_recipe(saved)
    assert recipe["consequence_shares"] is False and "val_fraction" not in recipe
    text = recipe_text(recipe)
    assert "--lr 0.001" in text["equivalent"] and "--no-consequence-shares" in text["equivalent"]
    assert {"class_weight_power": 0.5, "label_smoothing": 0.1}.items() <= text["equivalent_config"].items()
    assert "--set lr=0.001" in text["command"] and "--set hidden" not in text["command"]
    assert text["objective"] == "class-weighted (type frequency ^ -0.5) cross-entropy, label smoothing 0.1"
    cfg = parsed_config(text["equivalent"], text["equivalent_config"], tmp_path)
    assert {k: getattr(cfg, k) for k in saved if k != "register_model"} == {
        k: v for k, v in saved.items() if k != "register_model"}
