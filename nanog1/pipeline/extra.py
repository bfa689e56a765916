"""The `extra:` options of a pipeline config, as checked argument lists that never reach a shell.

`extra` is a YAML list of arguments (`[--lr, "0.001"]`) or one string, split as a shell would split it
(`shlex.split`) but never run by one: the rules quote every argument. Each option must be one the nanog1
command accepts and one its rule does not set itself (outputs, seed, tracking store and every setting that
has its own config key), so a config can neither run a command nor move a job's outputs elsewhere. The
allowed names come from the command line itself, so they cannot drift from it.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nanog1.errors import UserError


@dataclass(frozen=True)
class ExtraSlot:
    """One `extra` key: its place in the config, the nanog1 command it feeds, the options its rule sets."""

    key: tuple[str, ...]
    command: tuple[str, ...]
    rule_sets: frozenset[str]


SLOTS: tuple[ExtraSlot, ...] = (
    ExtraSlot(("input", "simulate"), ("simulate",), frozenset(
        {"--n-samples", "--type", "--seed", "--burden-scale", "--maf-fraction", "--catalogues"})),
    ExtraSlot(("ingest",), ("ingest",), frozenset(
        {"--reference", "--out", "--jobs", "--filter", "--on-error", "--sigprofiler-compatible", "--samples",
         "--sheet-policy", "--duplicates", "--max-skip-fraction", "--check-only", "--not-measured"})),
    ExtraSlot(("signatures",), ("signatures", "fit"), frozenset({"--out", "--mlflow"})),
    ExtraSlot(("train",), ("train",), frozenset(
        {"--out", "--task", "--mixer", "--view", "--epochs", "--hidden", "--layers", "--rank", "--heads",
         "--seed", "--experiment", "--tracking-uri", "--resume"})),
    ExtraSlot(("finetune",), ("finetune",), frozenset(
        {"--from", "--out", "--epochs", "--freeze-encoder", "--test-fraction", "--train-fraction", "--seed",
         "--experiment", "--tracking-uri"})),
)


class ExtraOptionError(UserError):
    """An `extra` entry that is not an option its command accepts there; the message names the key."""


def _command_options(command: tuple[str, ...]) -> dict[str, Any]:
    """{option name: click parameter} of `nanog1 <command>` (every spelling, e.g. --out and -o)."""
    import typer

    from nanog1.cli import app

    node = typer.main.get_command(app)
    for name in command:
        node = node.commands[name]
    return {opt: param for param in node.params if param.param_type_name == "option"
            for opt in (*param.opts, *param.secondary_opts)}


def _takes_value(param: Any) -> bool:
    return not (param.is_flag or param.count)


def as_arguments(value: str | list[str] | None) -> list[str]:
    """The argument list of one `extra` value: a list as it is, a string split by shell rules."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as err:
            raise ExtraOptionError(f"cannot split {value!r} into arguments ({err})") from err
    return [str(item) for item in value]


def check_arguments(args: list[str], slot: ExtraSlot) -> list[str]:
    """`args` if every one is an allowed option of the slot's command (or that option's value)."""
    options = _command_options(slot.command)
    allowed = sorted({p.opts[0] for p in options.values()} - slot.rule_sets - {"--help"})
    where = f"config key '{'.'.join(slot.key)}.extra'"
    hint = f"options allowed there: {', '.join(allowed)}"
    i = 0
    while i < len(args):
        name, has_inline_value = args[i].split("=", 1)[0], "=" in args[i]
        param = options.get(name) if name.startswith("-") else None
        if param is None or name == "--help":
            command = f"`nanog1 {' '.join(slot.command)}`"
            raise ExtraOptionError(f"{where}: {args[i]!r} is neither an option of {command} nor the value"
                                   f" of one; {hint}")
        if param.opts[0] in slot.rule_sets:
            shown = name if name == param.opts[0] else f"{name} ({param.opts[0]})"
            raise ExtraOptionError(f"{where}: {shown} is set by the pipeline's rule itself (from the config's"
                                   f" own keys and the rule's outputs); {hint}")
        if _takes_value(param) and not has_inline_value:
            if i + 1 >= len(args):
                raise ExtraOptionError(f"{where}: {name} needs a value")
            i += 1
        i += 1
    return args


def extra_arguments(config: Mapping[str, Any]) -> dict[str, list[str]]:
    """{'ingest': [...], 'train': [...], ...}: every slot's checked argument list (its key's last part)."""
    out: dict[str, list[str]] = {}
    for slot in SLOTS:
        section: Any = config
        for part in slot.key:
            section = section.get(part) or {}
        out[slot.key[-1]] = check_arguments(as_arguments(section.get("extra")), slot)
    return out


def normalise_extra(config: dict[str, Any]) -> None:
    """Replace every `extra` value in `config` by its checked argument list (ExtraOptionError otherwise)."""
    lists = extra_arguments(config)
    for slot in SLOTS:
        section = config
        for part in slot.key:
            section = section.setdefault(part, {})
        section["extra"] = lists[slot.key[-1]]
