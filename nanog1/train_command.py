"""The `nanog1 train` command line that reproduces a training config: for model cards.

A packaged model's card states how to retrain it with the CLI. Written by hand, such a command drifts
from the CLI (it once listed `--patience` and `--dropout`, which `nanog1 train` does not have), so the
command is generated here from the real typer command's options: a config key with an option of the
same name becomes that flag (a boolean as its on/off spelling), every other key goes into the YAML
mapping that `nanog1 train --config` reads (`nanog1.encoder.config.load_config`: YAML first, flags on top).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

import typer

#: config keys that are run bookkeeping (MLflow), not part of the model's recipe
BOOKKEEPING = ("register_model", "experiment")


@dataclass
class TrainCommand:
    """`command` (a shell line) plus `config`, the YAML mapping its `--config FILE` must hold (empty: no
    --config needed)."""

    command: str
    config: dict = field(default_factory=dict)


def train_options() -> dict:
    """`nanog1 train`'s options (click parameters, as typer builds them) by parameter name (batch_size ->
    --batch-size), read from the typer app."""
    from nanog1.cli import app

    train = typer.main.get_command(app).commands["train"]
    return {p.name: p for p in train.params if p.param_type_name == "option"}


def train_command(
    recipe: dict, cohort: str = "COHORT.h5ad", out: str = "RUN", config_file: str = "recipe.yaml"
) -> TrainCommand:
    """The `nanog1 train` line for `recipe` (TrainConfig keys -> values): flags where train has one, the
    rest in the `--config` YAML mapping. Keys in BOOKKEEPING are left out."""
    options = train_options()
    words, rest = ["nanog1", "train", cohort, "--out", out], {}
    for key, value in recipe.items():
        if key in BOOKKEEPING:
            continue
        option = options.get(key)
        if option is None or option.hidden:
            rest[key] = value
        elif isinstance(value, bool):
            words.append(_switch(option, value))
        else:
            words += [option.opts[0], str(value)]
    if rest:
        words[5:5] = ["--config", config_file]
    return TrainCommand(" ".join(shlex.quote(w) for w in words), rest)


def _switch(option, value: bool) -> str:
    """A boolean option's spelling for `value`: --x for True, --no-x for False."""
    if not option.secondary_opts:
        if not value:
            raise ValueError(f"{option.opts[0]} has no off spelling")
        return option.opts[0]
    return option.opts[0] if value else option.secondary_opts[0]
