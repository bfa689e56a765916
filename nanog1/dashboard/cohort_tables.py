"""Read a cohort `.h5ad` for display and derive the tables the pages show.

The dashboard only reads: the file is loaded into memory and closed. Anything that breaks the
cohort contract (docs: briefs/cohort_format.md) raises `CohortError` naming the file and the key,
so pages can show one clear message instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.genomics.channels import CHANNEL_SETS
from nanog1.schema import CANCER_TYPE, SET_NAMES, cancer_types
from nanog1.schema import channel_sets_present as sets_present  # noqa: F401  (the views read it here)


class CohortError(UserError):
    """A cohort file that is missing, unreadable or breaks the cohort contract."""


def read_cohort_for_display(path: str | Path) -> ad.AnnData:
    """Load a cohort into memory and check the keys the dashboard relies on."""
    path = Path(path)
    if not path.is_file():
        raise CohortError(f"cohort file not found: {path}")
    try:
        adata = ad.read_h5ad(path)
    except Exception as exc:  # h5py/anndata raise many types for a damaged file
        raise CohortError(f"{path}: not a readable .h5ad file ({type(exc).__name__}: {exc})") from exc
    _check_contract(adata, path)
    return adata


def _check_contract(adata: ad.AnnData, path: Path) -> None:
    if "channel_set" not in adata.var:
        raise CohortError(f"{path}: var['channel_set'] is missing (not a NanoG1 cohort?)")
    unknown = set(adata.var["channel_set"].astype(str)) - set(SET_NAMES)
    if unknown:
        raise CohortError(f"{path}: var['channel_set'] has unknown sets {sorted(unknown)}")
    for name in SET_NAMES:
        cols = adata.var_names[adata.var["channel_set"].astype(str) == name]
        if len(cols) and list(cols) != list(CHANNEL_SETS[name]):
            raise CohortError(f"{path}: {name} columns are not in COSMIC order (nanog1.genomics.channels)")
    for key, frame in adata.obsm.items():
        if isinstance(frame, pd.DataFrame) and not frame.index.equals(adata.obs_names):
            raise CohortError(f"{path}: obsm['{key}'] index does not match obs_names")


def set_counts(adata: ad.AnnData, channel_set: str) -> pd.DataFrame:
    """Samples × channels counts of one set, columns in COSMIC order."""
    mask = (adata.var["channel_set"].astype(str) == channel_set).to_numpy()
    x = adata.X[:, mask]
    dense = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
    return pd.DataFrame(dense, index=adata.obs_names, columns=adata.var_names[mask])


def burden_table(adata: ad.AnnData) -> pd.DataFrame:
    """Per-sample cancer type and burden of each set (from obs['burden_*'], else summed from X)."""
    out = pd.DataFrame({"sample": adata.obs_names, CANCER_TYPE: cancer_types(adata).to_numpy()})
    out.index = adata.obs_names
    if "predicted_type" in adata.obs:
        out["predicted_type"] = cancer_types(adata, "predicted_type").to_numpy()
    for name in SET_NAMES:
        key = f"burden_{name}"
        if key in adata.obs:
            out[key] = adata.obs[key].to_numpy().astype(np.int64)
        else:
            out[key] = set_counts(adata, name).sum(axis=1).round().astype(np.int64).to_numpy()
    if "no_mutations" in adata.obs:
        out["no_mutations"] = adata.obs["no_mutations"].astype(bool).to_numpy()
    return out


def type_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Samples per cancer type, largest first."""
    counts = table[CANCER_TYPE].value_counts()
    return pd.DataFrame({CANCER_TYPE: counts.index.astype(str), "samples": counts.to_numpy()})


def burden_boxes(table: pd.DataFrame, channel_set: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Box-plot statistics of one set's burden per cancer type, computed here so the browser draws
    a few rows instead of every sample.

    Quartiles and whiskers are taken on log10(burden) (the plot's scale), whiskers reaching the
    furthest sample within 1.5 IQR; zero-burden samples are left out (they have no place on a log
    axis). Returns (boxes: cancer_type, n, q1, median, q3, low, high; outliers: sample, cancer_type,
    burden).
    """
    data = table.loc[table[f"burden_{channel_set}"] > 0, ["sample", CANCER_TYPE, f"burden_{channel_set}"]]
    data = data.rename(columns={f"burden_{channel_set}": "burden"})
    rows, outliers = [], []
    for cancer_type, group in data.groupby(CANCER_TYPE, sort=True):
        logs = np.log10(group["burden"].to_numpy(dtype=np.float64))
        q1, med, q3 = np.percentile(logs, [25, 50, 75])
        reach = 1.5 * (q3 - q1)
        inside = logs[(logs >= q1 - reach) & (logs <= q3 + reach)]
        rows.append({CANCER_TYPE: cancer_type, "n": len(logs), "q1": 10**q1, "median": 10**med,
                     "q3": 10**q3, "low": 10 ** inside.min(), "high": 10 ** inside.max()})
        outliers.append(group[(logs < q1 - reach) | (logs > q3 + reach)])
    boxes = pd.DataFrame(rows, columns=[CANCER_TYPE, "n", "q1", "median", "q3", "low", "high"])
    out = pd.concat(outliers) if outliers else data.iloc[:0]
    return boxes, out.reset_index(drop=True)


#: At most this many sample names are offered in a picker at once: a list the browser draws instantly
#: at any cohort size; typing in the search box narrows it.
PICKER_LIMIT = 200


def sample_matches(names: pd.Index, query: str, limit: int = PICKER_LIMIT) -> tuple[list[str], int]:
    """Sample names containing `query` (any case; an exact name first), at most `limit` of them, and how
    many names match in all. An empty query matches every name.

    The pickers offer these few names instead of the whole cohort: 13,000 options in one widget took
    seconds per choice in the browser.
    """
    query = query.strip()
    if not query:
        return [str(n) for n in names[:limit]], len(names)
    hits = names[names.str.contains(query, case=False, regex=False)]
    shown = [str(n) for n in hits[:limit]]
    if query in hits and query not in shown[:1]:
        shown = [query] + [n for n in shown if n != query][: limit - 1]
    return shown, len(hits)


def sample_counts(adata: ad.AnnData, sample: str, channel_set: str) -> pd.Series:
    """One sample's counts of one set (indexed by channel): reads one row, not the whole matrix."""
    mask = (adata.var["channel_set"].astype(str) == channel_set).to_numpy()
    row = adata.X[adata.obs_names.get_loc(sample)]
    row = row.toarray().ravel() if hasattr(row, "toarray") else np.asarray(row).ravel()
    return pd.Series(row[mask], index=adata.var_names[mask], name=sample)


def sample_spectrum(adata: ad.AnnData, sample: str, channel_set: str) -> pd.DataFrame:
    """One sample's spectrum of one set: channel, count and fraction, in COSMIC order."""
    row = sample_counts(adata, sample, channel_set)
    total = float(row.sum())
    return pd.DataFrame({
        "channel": row.index.astype(str),
        "count": row.to_numpy(dtype=np.float64),
        "fraction": row.to_numpy(dtype=np.float64) / total if total > 0 else 0.0,
    })


def exposures(adata: ad.AnnData, channel_set: str) -> pd.DataFrame | None:
    """obsm['exposures_<set>'] as a DataFrame (samples × signatures), or None when not fitted."""
    frame = adata.obsm.get(f"exposures_{channel_set}")
    if frame is None:
        return None
    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(np.asarray(frame), index=adata.obs_names)
    return frame


def exposure_by_type(expo: pd.DataFrame, types: pd.Series, relative: bool) -> pd.DataFrame:
    """Mean exposure per cancer type and signature, long form (cancer_type, signature, value).

    With `relative`, each sample's exposures are first turned into fractions of its attributed
    mutations, so large-burden samples do not dominate a type's profile.
    """
    values = expo.astype(np.float64)
    if relative:
        totals = values.sum(axis=1).replace(0.0, np.nan)
        values = values.div(totals, axis=0).fillna(0.0)
    means = values.groupby(types.reindex(values.index).to_numpy()).mean()
    means.index.name = CANCER_TYPE
    long = means.reset_index().melt(id_vars=CANCER_TYPE, var_name="signature", value_name="value")
    return long


def probabilities(adata: ad.AnnData, sample: str) -> pd.DataFrame | None:
    """Predicted type probabilities of one sample, highest first, or None without predictions."""
    frame = adata.obsm.get("proba_type")
    if frame is None:
        return None
    if not isinstance(frame, pd.DataFrame):
        return None
    row = frame.loc[sample].astype(np.float64).sort_values(ascending=False)
    return pd.DataFrame({CANCER_TYPE: row.index.astype(str), "probability": row.to_numpy()})


def provenance_table(record: object, prefix: str = "") -> pd.DataFrame:
    """A nested provenance record (`uns[...]`: dicts, lists, arrays, scalars) as rows of (field, value).

    Nested keys are joined with dots; short lists of scalars stay on one row, so a reader scans a
    table instead of a JSON tree or a DataFrame repr.
    """
    rows: list[tuple[str, str]] = []

    def walk(value: object, key: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{key}.{k}" if key else str(k))
            return
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, pd.DataFrame):
            for i, row in value.iterrows():
                walk(row.to_dict(), f"{key}[{i}]")
            return
        if isinstance(value, list | tuple) and any(isinstance(v, dict | list | tuple) for v in value):
            for i, v in enumerate(value):
                walk(v, f"{key}[{i}]")
            return
        if isinstance(value, list | tuple):
            value = ", ".join(map(str, value))
        rows.append((key or "value", str(value)))

    walk(record, prefix)
    return pd.DataFrame(rows, columns=["field", "value"])
