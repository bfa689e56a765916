"""The cohort AnnData contract in one place: key names, the channel layout, and validating accessors.

Torch-free; the channel layout is derived from `nanog1.genomics.channels.CHANNEL_SETS`, so a set
added there is picked up everywhere. Keys:

* ``X``: float32 samples x `N_CHANNELS` counts, columns in `all_channels()` order; `var['channel_set']`.
* ``obs``: `CANCER_TYPE` (label), `SPLIT` ('train' / 'val' / 'test', written by `nanog1 train`),
  `burden_<set>`, `no_mutations`, and the per-sample token pointers `TOKEN_START` / `TOKEN_COUNT` /
  `TOKEN_TABLE` (below); the encoder adds `predicted_type` / `predicted_type_raw` / `type_confidence` /
  `type_entropy` (`nanog1.encoder.score`; with `key_added='m2'`: `m2_predicted_type`, ...) and
  `nanog1.encoder.predict` also `abstain` / `abstain_reason` / `neighbours`; `DECLARED_UNMEASURED`
  ('not_measured': the sets the user declared unmeasured with `--not-measured`, '+'-joined).
* ``obsm``: `exposures_<set>` (signature fit), `EMBEDDING` ('X_nanog1', `nanog1 embed`),
  `MEASURED_SETS` ('measured_sets': bool DataFrame samples x sets, True where that sample's files
  measured the set exactly; :func:`measured_sets_per_sample`).
* ``uns``: `META` ('nanog1': provenance, `channel_sets` {set: 'exact' | 'not_computable' | 'partial'},
  `channel_sets_present`; an 'exact' set was measured for EVERY sample; a 'partial' set is exact only
  for the samples in `exact_for` and is not used as a whole), `TOKENS` ('tokens': whole-cohort token
  arrays, see `genomics.tokens`), `SIGNATURE_FIT`.

Measured sets are per sample (issue 31): a Strelka2 SNV file alone measures no indels, so its tumour's
ID83/ID12 are unmeasured (never zero indels) while a tumour of the same cohort given by a Mutect2 VCF
keeps its indels. `obsm['measured_sets']` is that record; `uns['nanog1']['channel_sets']` stays the sets
measured for every sample (what readers of the cohort as a whole use), and cohorts written before the
per-sample record fall back to it (:func:`measured_sets_per_sample`).

Per-mutation tokens live once, for the whole cohort, in ``uns['tokens']``; each sample points into
them with ``obs['token_start']`` and ``obs['token_count']``. Those are obs columns, so they move with
their rows: ``adata[mask].copy()`` and reordering keep every tumour's own mutations. The token
arrays carry an id (``uns['tokens']['table_id']``) that each row repeats in ``obs['token_table']``;
a plain ``anndata.concat`` keeps one cohort's arrays under rows of another, and
:func:`token_spans` refuses that loudly (merge cohorts with `nanog1.genomics.merge`, or
:func:`concat_cohorts`). Cohorts written before this layout (offsets in uns only) are converted on
read when their offsets match their rows, and refused otherwise.
"""

from __future__ import annotations

import hashlib
import warnings
from typing import TYPE_CHECKING

import numpy as np

from nanog1.errors import UserError
from nanog1.genomics.channels import CHANNEL_SETS, DERIVED_FROM, EXACT, all_channels

if TYPE_CHECKING:
    import pandas as pd

# --- key names --------------------------------------------------------------------------------------
CANCER_TYPE = "cancer_type"
SPLIT = "split"
SPLITS = ("train", "val", "test")
CHANNEL_SET = "channel_set"
META = "nanog1"
TOKENS = "tokens"
SIGNATURE_FIT = "signature_fit"
EMBEDDING = "X_nanog1"
PREDICTION = "nanog1"
MEASURED_SETS = "measured_sets"
TOKEN_START, TOKEN_COUNT, TOKEN_TABLE = "token_start", "token_count", "token_table"

# --- the channel layout (derived) -------------------------------------------------------------------
SET_NAMES: tuple[str, ...] = tuple(CHANNEL_SETS)
SET_SIZES: tuple[int, ...] = tuple(len(labels) for labels in CHANNEL_SETS.values())
N_CHANNELS: int = sum(SET_SIZES)


def scored_held_out(split, types: pd.Series, classes) -> np.ndarray:
    """THE held-out samples that every test_* / eval_* metric and the pipeline report score (one rule,
    issue 27): obs['split'] == 'test' and a known type that is one of the model's `classes` (a type
    it has no class for cannot be scored, so it is never counted). `classes` None: any known type."""
    held = np.asarray(split).astype(str) == "test"
    known = types.notna().to_numpy()
    if classes is not None:
        known &= types.astype(object).astype(str).isin([str(c) for c in classes]).to_numpy()
    return held & known


class SchemaError(UserError):
    """A cohort that breaks the contract; the message says which key and what is wrong."""


def burden_key(channel_set: str) -> str:
    """obs column of one set's mutation burden."""
    return f"burden_{channel_set}"


def exposures_key(channel_set: str) -> str:
    """obsm key of one set's fitted exposures."""
    return f"exposures_{channel_set}"


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x)


def with_derived_sets(present: list[str]) -> list[str]:
    """The exact sets, in layout order: those measured plus every derived set whose source was measured."""
    got = {str(p) for p in present}
    got |= {d for d, src in DERIVED_FROM.items() if src in got}
    return [name for name in SET_NAMES if name in got]


def recorded_channel_sets(adata) -> list[str] | None:
    """The channel sets the cohort's own record says it measured (layout order); None without a record.

    ``uns['nanog1']['channel_sets']`` ({set: 'exact' | 'not_computable'}) wins; else
    ``uns['nanog1']['channel_sets_present']``. Derived sets whose source was measured count as measured.
    """
    meta = adata.uns.get(META) or {}
    status = meta.get("channel_sets") if hasattr(meta, "get") else None
    if status is not None and len(status):
        return with_derived_sets([str(k) for k, v in dict(status).items() if str(v) == EXACT])
    listed = meta.get("channel_sets_present") if hasattr(meta, "get") else None
    if listed is None:
        return None
    return with_derived_sets([str(s) for s in np.atleast_1d(np.asarray(listed, dtype=object))])


def channel_sets_present(adata) -> list[str]:
    """The channel sets this cohort measured exactly, in layout order: the one rule every reader uses.

    The cohort's record decides (:func:`recorded_channel_sets`); a recorded empty list gives [] (nothing
    measured), never a guess. Only a cohort with no record at all (not written by `nanog1 ingest`)
    counts the sets that hold any mutation, with a warning: an all-zero set may be a measured zero or a
    set never called.
    """
    recorded = recorded_channel_sets(adata)
    if recorded is not None:
        return recorded
    if adata.n_vars != N_CHANNELS:
        raise SchemaError(f"cohort has {adata.n_vars} channels; the layout has {N_CHANNELS} "
                          f"({'+'.join(SET_NAMES)}): re-ingest it or conform it")
    totals = np.split(_dense(adata.X).sum(axis=0), np.cumsum(SET_SIZES)[:-1])
    present = [name for name, t in zip(SET_NAMES, totals, strict=True) if float(t.sum()) > 0]
    warnings.warn("cohort has no uns['nanog1']['channel_sets'] record; treating sets with no counts at all "
                  f"as unmeasured (measured: {'+'.join(present) or 'none'})", stacklevel=2)
    return present


def channel_padding(adata) -> np.ndarray:
    """Bool [N_CHANNELS]: True for the channels of sets the cohort did not measure (the model masks them).

    Refuses a cohort that measured no set at all (there would be nothing to read).
    """
    present = set(channel_sets_present(adata))
    if not present:
        raise SchemaError(f"the cohort measured none of the channel sets {', '.join(SET_NAMES)} "
                          "(uns['nanog1']['channel_sets'] marks none exact): re-ingest it")
    return np.concatenate([np.full(n, name not in present) for name, n in zip(SET_NAMES, SET_SIZES,
                                                                                strict=True)])


def measured_sets_per_sample(adata) -> pd.DataFrame:
    """Bool DataFrame samples x `SET_NAMES`: True where that sample measured the set exactly (the one rule
    per sample, beside :func:`recorded_channel_sets` for the cohort as a whole).

    ``obsm['measured_sets']`` decides where present (written by `nanog1 ingest` and `nanog1 cohort merge`);
    a cohort written before it falls back to its cohort-wide record: the sets exact for every sample, and a
    'partial' set for the samples its ``uns['nanog1']['exact_for']`` lists. The sets the cohort measured
    for every sample are always measured for each, and a derived set (SBS6, ID12) wherever its source was.
    """
    import pandas as pd

    from nanog1.genomics.channels import PARTIAL

    n = adata.n_obs
    table = np.zeros((n, len(SET_NAMES)), dtype=bool)
    meta = adata.uns.get(META) or {}
    record = adata.obsm[MEASURED_SETS] if MEASURED_SETS in adata.obsm else None
    if record is not None:
        frame = record if isinstance(record, pd.DataFrame) else pd.DataFrame(np.asarray(record))
        for j, name in enumerate(SET_NAMES):
            if name in frame.columns:
                table[:, j] = np.asarray(frame[name], dtype=bool)
    else:
        status = dict(meta.get("channel_sets") or {}) if hasattr(meta, "get") else {}
        exact_for = dict(meta.get("exact_for") or {}) if hasattr(meta, "get") else {}
        names = np.asarray(adata.obs_names, dtype=str)
        for name, ids in exact_for.items():
            if str(status.get(name)) == PARTIAL and str(name) in SET_NAMES:
                table[:, SET_NAMES.index(str(name))] = np.isin(names, np.asarray(ids, dtype=str))
    whole = recorded_channel_sets(adata)
    if whole is None:
        whole = channel_sets_present(adata) if n else []
    table[:, [SET_NAMES.index(s) for s in whole]] = True
    for derived, source in DERIVED_FROM.items():
        table[:, SET_NAMES.index(derived)] |= table[:, SET_NAMES.index(source)]
    return pd.DataFrame(table, index=adata.obs_names.copy(), columns=list(SET_NAMES))


def channel_padding_per_sample(adata) -> np.ndarray:
    """Bool [n_obs, N_CHANNELS]: True for the channels of the sets each sample did not measure (what the
    models key-pad per tumour; :func:`measured_sets_per_sample`)."""
    measured = measured_sets_per_sample(adata).to_numpy(dtype=bool)
    return np.repeat(~measured, SET_SIZES, axis=1)


#: obs column: the sets declared not measured for that tumour ('+'-joined, '' = none) by `--not-measured`
#: (`nanog1.genomics.measured_sets.declare_not_measured`); an obs column, so it moves with its row (subsets,
#: merges).
DECLARED_UNMEASURED = "not_measured"
#: Why those sets are masked, in predict's per-tumour note.
DECLARED_WHY = "declared not measured (--not-measured)"
#: `--not-measured` groups: the sets of one kind of call. A set and the set folded from it (SBS96 / SBS6,
#: ID83 / ID12) count the same calls, so naming either declares both unmeasured.
SET_GROUPS = {"substitutions": ("SBS96", "SBS6"), "doublets": ("DBS78",), "indels": ("ID83", "ID12")}


def parse_not_measured(value) -> tuple[str, ...]:
    """`--not-measured` (comma-separated set names or groups, or a list of them) as set names in layout order,
    each with its kind's other set (SBS96 <-> SBS6, ID83 <-> ID12). Names are case-insensitive; an unknown
    one, or all of them (nothing left to read), is one UserError listing the valid names."""
    if value is None:
        return ()
    parts = [value] if isinstance(value, str) else [str(v) for v in value]
    items = [item for part in parts for item in part.split(",")]
    names = [i.strip() for i in items if i.strip()]
    by_lower = {n.lower(): (n,) for n in SET_NAMES} | {g: sets for g, sets in SET_GROUPS.items()}
    valid = ", ".join([*SET_NAMES, *(f"{g} ({'+'.join(s)})" for g, s in SET_GROUPS.items())])
    declared: set[str] = set()
    for name in names:
        sets = by_lower.get(name.lower())
        if sets is None:
            raise UserError(f"--not-measured {name!r}: not a channel set; valid: {valid}")
        for s in sets:
            declared |= {s, *next(g for g in SET_GROUPS.values() if s in g)}
    if declared == set(SET_NAMES):
        raise UserError(f"--not-measured {','.join(names)}: declares every channel set unmeasured, so "
                        "nothing would be left to read; name only the sets the calls lack")
    return tuple(n for n in SET_NAMES if n in declared)


#: What each set counts, in words (a sentence about unmeasured sets names the kind of mutation first).
SET_KINDS = {"SBS96": "substitutions", "SBS6": "substitutions", "DBS78": "doublets", "ID83": "indels",
             "ID12": "indels"}


def describe_sets(sets) -> str:
    """'indels (ID83+ID12)', 'doublets (DBS78) and indels (ID83+ID12)': the sets grouped by kind."""
    kinds: dict[str, list[str]] = {}
    for name in SET_NAMES:
        if name in set(map(str, sets)):
            kinds.setdefault(SET_KINDS.get(name, name), []).append(name)
    return " and ".join(f"{kind} ({'+'.join(names)})" for kind, names in kinds.items())


def cancer_types(adata, column: str = CANCER_TYPE) -> pd.Series:
    """One label per sample, 'unknown' where the column is absent or NaN."""
    if column not in adata.obs:
        import pandas as pd  # here, not at import: the GPU benchmark machines have torch but no pandas

        return pd.Series("unknown", index=adata.obs_names, name=column)
    col = adata.obs[column]
    return col.astype(object).where(col.notna(), "unknown").astype(str)


def require_labels(adata, column: str = CANCER_TYPE, name: str = "cohort") -> pd.Series:
    """obs[column] with at least one known label; a clear error otherwise."""
    if column not in adata.obs or not adata.obs[column].notna().any():
        raise SchemaError(f"{name}: obs['{column}'] is missing or empty: this command needs labelled samples")
    return adata.obs[column]


def check_layout(adata, name: str = "cohort") -> None:
    """Refuse a cohort whose var is not the channel layout (names and order of `all_channels()`)."""
    if CHANNEL_SET not in adata.var:
        raise SchemaError(f"{name}: var['{CHANNEL_SET}'] is missing (not a NanoG1 cohort?)")
    expected = [label for _, label in all_channels()]
    if list(map(str, adata.var_names)) != expected:
        raise SchemaError(f"{name}: channels are not the layout of nanog1.genomics.channels "
                          f"({adata.n_vars} columns, {N_CHANNELS} expected in {'+'.join(SET_NAMES)} order)")


# --- per-mutation tokens ----------------------------------------------------------------------------
def _n_tokens(tokens) -> int:
    return len(tokens["channel"])


def table_id(tokens) -> str:
    """A content id of token arrays (offsets, channels, positions): the same arrays give the same id."""
    h = hashlib.blake2b(digest_size=8)
    for key in ("offsets", "channel", "pos"):
        if key in tokens:
            h.update(np.ascontiguousarray(np.asarray(tokens[key])).tobytes())
    return h.hexdigest()


def attach_tokens(adata, tokens: dict) -> None:
    """Store whole-cohort `tokens` (ragged, `offsets` in `adata`'s row order); point each row at its span."""
    offsets = np.asarray(tokens["offsets"], dtype=np.int64)
    if len(offsets) != adata.n_obs + 1:
        raise SchemaError(f"tokens have offsets for {len(offsets) - 1} samples, the cohort has {adata.n_obs}")
    if offsets[0] != 0 or np.any(np.diff(offsets) < 0) or offsets[-1] != _n_tokens(tokens):
        raise SchemaError("token offsets are not a ragged index of the token arrays")
    tokens = dict(tokens)
    tokens["table_id"] = table_id(tokens)
    adata.uns[TOKENS] = tokens
    adata.obs[TOKEN_START] = offsets[:-1]
    adata.obs[TOKEN_COUNT] = np.diff(offsets)
    import pandas as pd

    adata.obs[TOKEN_TABLE] = pd.Categorical([tokens["table_id"]] * adata.n_obs)


def upgrade_tokens(adata, name: str = "cohort") -> None:
    """Convert a cohort written with offsets only (older layout) to per-row pointers, or refuse."""
    tokens = adata.uns.get(TOKENS)
    if tokens is None or TOKEN_START in adata.obs:
        return
    offsets = np.asarray(tokens["offsets"], dtype=np.int64)
    if len(offsets) != adata.n_obs + 1:
        raise SchemaError(f"{name}: uns['tokens'] holds offsets for {len(offsets) - 1} samples but "
                          f"the cohort has {adata.n_obs} (an older cohort, subset after it was written): "
                          "re-ingest it")
    attach_tokens(adata, tokens)


def token_spans(adata) -> tuple[np.ndarray, np.ndarray]:
    """Each row's (start, count) into the whole-cohort token arrays, checked; SchemaError when they are not
    this cohort's (no pointers, another cohort's arrays, or spans outside them)."""
    tokens = adata.uns.get(TOKENS)
    if tokens is None:
        raise SchemaError("cohort has no uns['tokens'] (event tokens come from `nanog1 ingest` of VCF/MAF)")
    if TOKEN_START not in adata.obs or TOKEN_COUNT not in adata.obs:
        offsets = np.asarray(tokens["offsets"], dtype=np.int64)
        if len(offsets) != adata.n_obs + 1:
            raise SchemaError(f"cohort tokens have no per-sample pointers (obs['token_start']) and "
                              f"offsets for {len(offsets) - 1} samples, not {adata.n_obs}: an older cohort "
                              "subset after it was written; re-ingest it")
        return offsets[:-1], np.diff(offsets)  # the older layout, whole cohort in written order
    ident = str(tokens.get("table_id", ""))
    if TOKEN_TABLE in adata.obs:
        other = set(map(str, adata.obs[TOKEN_TABLE].unique())) - {ident}
        if other:
            raise SchemaError(f"rows point into token arrays {sorted(other)} but uns['tokens'] holds "
                              f"{ident!r} (cohorts concatenated with anndata.concat?): merge them with "
                              "nanog1.schema.concat_cohorts")
    start = adata.obs[TOKEN_START].to_numpy(dtype=np.int64)
    count = adata.obs[TOKEN_COUNT].to_numpy(dtype=np.int64)
    if len(start) and (start.min() < 0 or count.min() < 0 or (start + count).max() > _n_tokens(tokens)):
        raise SchemaError(f"obs['token_start'/'token_count'] point outside the {_n_tokens(tokens)} tokens")
    return start, count


def token_rows(adata) -> tuple[np.ndarray, np.ndarray]:
    """Indices into the token arrays of every row's tokens, in row order, and the compact offsets."""
    start, count = token_spans(adata)
    offsets = np.concatenate(([0], np.cumsum(count))).astype(np.int64)
    if not len(start) or offsets[-1] == 0:
        return np.zeros(0, dtype=np.int64), offsets
    within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], count)
    return np.repeat(start, count) + within, offsets


def is_per_token(key: str) -> bool:
    """Whether uns['tokens'][key] holds one value per token (not a table such as contigs or names)."""
    return key not in ("offsets", "table_id", "chroms", "vocab") and not key.startswith("sig_names_")


def row_tokens(adata) -> dict:
    """This AnnData's tokens as a compact ragged dict in row order (`offsets` + each per-token array);
    tables that are not per token (contigs, vocabularies, signature names) are passed through."""
    index, offsets = token_rows(adata)
    out = {key: (np.asarray(value)[index] if is_per_token(key) else value)
           for key, value in adata.uns[TOKENS].items() if key not in ("offsets", "table_id")}
    out["offsets"] = offsets
    return out


def concat_cohorts(adatas: list, **kwargs):
    """`anndata.concat` of cohorts that keeps each row's tokens: the token arrays are concatenated and
    every row re-pointed. Token vocabularies (contigs, vocab tables) must be equal; merge cohorts with
    different references with `nanog1.genomics.merge`."""
    import anndata as ad

    tables = [a.uns.get(TOKENS) for a in adatas]
    merged = ad.concat(adatas, **kwargs)
    if all(t is None for t in tables):
        return merged
    if any(t is None for t in tables):
        raise SchemaError("some cohorts have tokens and some do not: cannot concatenate their tokens")
    first = tables[0]
    for t in tables[1:]:
        if list(map(str, t.get("chroms", []))) != list(map(str, first.get("chroms", []))):
            raise SchemaError("cohorts' tokens name different contigs: merge them with nanog1.genomics.merge")
    parts = [row_tokens(a) for a in adatas]
    per_token = [k for k in parts[0] if is_per_token(k)]
    tokens = {k: v for k, v in first.items() if k not in per_token and k not in ("offsets", "table_id")}
    for key in per_token:
        tokens[key] = np.concatenate([p[key] for p in parts])
    counts = np.concatenate([np.diff(p["offsets"]) for p in parts])
    tokens["offsets"] = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    attach_tokens(merged, tokens)
    return merged


def require_anndata(adata, who: str) -> None:
    """Refuse anything but an AnnData in one line naming what was given: a path (read it first with
    `nanog1.encoder.read_inputs` or `anndata.read_h5ad`) or another object such as a DataFrame. Here, at
    the edge, so the fitting room (no encoder imports) and the encoder share it."""
    import os

    import anndata as ad

    if isinstance(adata, ad.AnnData):
        return
    if isinstance(adata, (str, os.PathLike)):
        raise UserError(f"{who}: give an AnnData cohort, not the path {str(adata)!r} (read it first: "
                        "nanog1.encoder.read_inputs(path) or anndata.read_h5ad(path))")
    raise UserError(f"{who}: give an AnnData cohort, not a {type(adata).__name__}")
