"""Pipeline configs: load a YAML config, apply overrides and validate it against the JSON schema.

The same schema (nanog1/workflow/schema/config.schema.yaml) is enforced by the Snakefile's `validate`;
checking it here first lets `nanog1 pipeline run` fail before Snakemake starts, with a message naming the
bad key and what the schema expects there.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from nanog1.errors import UserError
from nanog1.io import read_yaml_mapping
from nanog1.pipeline.extra import ExtraOptionError, normalise_extra
from nanog1.resources import resource_path

#: The folder holding the Snakefile, the configs and the schema (package data: nanog1/workflow/).
PIPELINES_DIR = resource_path("workflow")
SCHEMA_PATH = PIPELINES_DIR / "schema" / "config.schema.yaml"


class ConfigError(UserError):
    """A pipeline config that does not match the schema; the message names the key."""


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping, with an error naming the file (and line) when it is not one."""
    try:
        return read_yaml_mapping(path, "a pipeline config: a YAML mapping of keys to values")
    except ConfigError:
        raise
    except UserError as err:
        raise ConfigError(str(err)) from err


def deep_update(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of `base` with `overrides` merged in, nested mappings merged key by key."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_update(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(item: str) -> dict[str, Any]:
    """Turn 'train.epochs=3' into {'train': {'epochs': 3}} (the value is parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. train.epochs=3")
    key, raw = item.split("=", 1)
    value: Any = yaml.safe_load(raw) if raw else ""
    for part in reversed(key.strip().split(".")):
        value = {part: value}
    return value


def _validator(schema: dict[str, Any]):
    """A Draft 2020-12 validator that also fills in the schema's defaults (as Snakemake's `validate`)."""
    from jsonschema import Draft202012Validator, validators

    check_properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, sub) -> Iterator[Any]:
        if isinstance(instance, dict):
            for name, prop in properties.items():
                if "default" in prop:
                    instance.setdefault(name, copy.deepcopy(prop["default"]))
        yield from check_properties(validator, properties, instance, sub)

    return validators.extend(Draft202012Validator, {"properties": set_defaults})(schema)


def _describe(error: Any, schema: dict[str, Any]) -> str:
    """One line naming the key at fault and what the schema expects there."""
    path = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        keys = ", ".join(f"'{'.'.join(filter(None, [path, k]))}'" for k in extra)
        return f"unknown config key {keys}; allowed keys here: {', '.join(allowed)}"
    if error.validator == "required":
        return f"config key '{path or '<top>'}' misses a required key: {error.message}"
    expected = error.schema.get("description") or error.message
    where = path or "<top>"
    return f"config key '{where}' = {error.instance!r} is invalid ({error.message}); expected {expected}"


def validate_config(config: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Validate a config and return a copy with the schema's defaults filled in; ConfigError otherwise."""
    schema = load_yaml(SCHEMA_PATH)
    filled = copy.deepcopy(config)
    errors = sorted(_validator(schema).iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:
        lines = "\n".join(f"  - {_describe(e, schema)}" for e in errors)
        raise ConfigError(f"{source}: invalid pipeline config\n{lines}")
    _check_inputs(filled, source)
    try:
        normalise_extra(filled)
    except ExtraOptionError as err:
        raise ConfigError(f"{source}: {err}") from err
    return filled


def _check_inputs(config: dict[str, Any], source: str) -> None:
    """Cross-key rules a JSON schema states poorly: each input mode needs its own keys. A reference is
    optional in mode files, as in `nanog1 ingest`: without it, SBS6/DBS78/ID12 and the MAF's tokens."""
    inp = config["input"]
    if inp["mode"] in ("files", "matrix") and not inp.get("files"):
        mode = inp["mode"]
        raise ConfigError(f"{source}: config key 'input.files' must list the input files for mode {mode!r}")
    _check_predict_filter(config, source)
    _check_not_measured(config, source)


def _check_not_measured(config: dict[str, Any], source: str) -> None:
    """ingest.not_measured (a list or a comma-separated string of channel sets or groups, `nanog1 ingest
    --not-measured`): the names are checked now, not when the first ingest job runs."""
    from nanog1.errors import UserError
    from nanog1.schema import parse_not_measured

    try:
        parse_not_measured(config["ingest"].get("not_measured") or [])
    except UserError as err:
        raise ConfigError(f"{source}: config key 'ingest.not_measured': {err}") from None


def _check_predict_filter(config: dict[str, Any], source: str) -> None:
    """predict.filter PASS / all names the FILTER rule the typed calls must be read with; the pipeline
    reads its input files once (ingest.filter), so the two must agree when it ingests them (mode files).
    A cohort given as is (mode cohort) is checked by `nanog1 predict --filter` when the rule runs."""
    rule, ingested = config["predict"].get("filter", "model"), config["ingest"]["filter"]
    ingests = config["input"]["mode"] == "files"
    if config["predict"]["enabled"] and ingests and rule not in ("model", ingested):
        raise ConfigError(f"{source}: config key 'predict.filter' = {rule!r} but 'ingest.filter' = "
                          f"{ingested!r}: the cohort is ingested once, so set ingest.filter to the rule "
                          "predict should read (or predict.filter: model to type the cohort as ingested)")


def shipped_configs() -> list[str]:
    """Names of the configs shipped with the package (`demo`, `pcawg`), usable in place of a path."""
    return sorted(p.stem for p in PIPELINES_DIR.glob("*.yaml"))


def find_config(name_or_path: str | Path) -> Path:
    """The config file at `name_or_path`, else the shipped config of that name (`demo`, `demo.yaml`)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    shipped = PIPELINES_DIR / f"{path.name.removesuffix('.yaml')}.yaml"
    if path.name == str(name_or_path) and shipped.is_file():
        return shipped
    raise ConfigError(f"{name_or_path}: no such config file, nor a shipped config"
                      f" (shipped: {', '.join(shipped_configs())})")


def write_shipped_config(name: str, out: Path | None = None, force: bool = False) -> Path:
    """Copy the shipped config `name` (`demo`, `pcawg`) to `out` (default `./NAME.yaml`), atomically, as
    the starting point of one's own pipeline; an existing file is kept unless `force`."""
    from nanog1.io import atomic_write_bytes

    source = PIPELINES_DIR / f"{name.removesuffix('.yaml')}.yaml"
    if "/" in name or not source.is_file():
        raise ConfigError(f"{name}: not a shipped config (shipped: {', '.join(shipped_configs())})")
    out = Path(out) if out is not None else Path(source.name)
    if out.exists() and not force:
        raise ConfigError(f"{out}: already exists; give another --out, or --force to overwrite it")
    return atomic_write_bytes(out, source.read_bytes())


def shipped_profiles() -> list[str]:
    """Names of the Snakemake profiles shipped with the package (`default`, `slurm`)."""
    return sorted(p.name for p in (PIPELINES_DIR / "profiles").iterdir() if (p / "config.yaml").is_file())


def find_profile(name_or_path: str | Path) -> Path:
    """The Snakemake profile folder at `name_or_path`, else the shipped profile of that name (`slurm`)."""
    path = Path(name_or_path).expanduser()
    if (path / "config.yaml").is_file():
        return path
    shipped = PIPELINES_DIR / "profiles" / path.name
    if path.name == str(name_or_path) and (shipped / "config.yaml").is_file():
        return shipped
    raise ConfigError(f"{name_or_path}: no such Snakemake profile folder (with a config.yaml), nor a shipped"
                      f" profile (shipped: {', '.join(shipped_profiles())})")


def load_config(path: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Load a pipeline YAML, apply 'key.sub=value' overrides and validate; defaults filled in."""
    config = load_yaml(path)
    for item in overrides or []:
        config = deep_update(config, parse_override(item))
    return validate_config(config, source=str(path))
