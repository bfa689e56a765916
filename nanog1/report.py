"""The pipeline's short report: a Markdown page with PNG plots of one evaluated cohort and its run.

Plots: the confusion matrix of predicted against true cancer type, a 2-D PCA of the encoder embeddings
coloured by type, and the mean signature exposures per type. Each file is written atomically; the
Markdown last, so its presence means the report is whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from nanog1.errors import UserError
from nanog1.genomics.cohort import open_h5ad
from nanog1.io import atomic_write_text, atomic_write_with, check_writable
from nanog1.schema import CANCER_TYPE, SPLIT, recorded_channel_sets, scored_held_out


@dataclass
class ReportResult:
    """Where the report went and which sections it holds."""

    markdown: Path
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _save_figure(fig, path: Path) -> Path:
    """savefig atomically (nanog1.io), then close the figure."""
    import matplotlib.pyplot as plt

    try:
        atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png"))
    finally:
        plt.close(fig)
    return path


def _evaluated_rows(adata: ad.AnnData) -> tuple[np.ndarray, str]:
    """Samples to score: the held-out ones the run's metrics score too (`scored_held_out`: split 'test',
    a type the model has a class in obsm['proba_type'] for), else every labelled one."""
    labelled = adata.obs[CANCER_TYPE].notna().to_numpy() & adata.obs["predicted_type"].notna().to_numpy()
    if SPLIT in adata.obs:
        proba = adata.obsm.get("proba_type")
        classes = list(proba.columns) if isinstance(proba, pd.DataFrame) else None
        held = scored_held_out(adata.obs[SPLIT], adata.obs[CANCER_TYPE], classes) & labelled
        if held.any():
            return held, ("held-out test samples (obs['split'] == 'test': never trained on, nor used to "
                          "pick the epoch, temperature or abstention threshold; types the model has "
                          "no class for not scored)")
    if SPLIT in adata.obs:
        return labelled, "all labelled samples (NOT held out: training samples included)"
    return labelled, ("all labelled samples (NOT known to be held out: the cohort has no split column, so "
                      "whether the model saw them in training is not known)")


def confusion_table(truth: pd.Series, predicted: pd.Series) -> pd.DataFrame:
    """Counts of (true type, predicted type), rows and columns over the union of types, sorted."""
    from sklearn.metrics import confusion_matrix

    labels = sorted(set(truth.astype(str)) | set(predicted.astype(str)))
    counts = confusion_matrix(truth.astype(str), predicted.astype(str), labels=labels)
    index = pd.Index(labels, name="true")
    return pd.DataFrame(counts, index=index, columns=pd.Index(labels, name="predicted"))


def plot_confusion(table: pd.DataFrame, path: Path) -> Path:
    """Row-normalised confusion matrix as a heat map, counts written in the cells."""
    import matplotlib.pyplot as plt

    counts = table.to_numpy()
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    n = len(table)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * n, 0.8 + 0.45 * n))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), table.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), table.index, fontsize=8)
    for i, j in zip(*np.nonzero(counts), strict=True):
        ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=7,
                color="white" if share[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted type")
    ax.set_ylabel("true type")
    return _save_figure(fig, path)


def pca_2d(X: np.ndarray) -> np.ndarray:
    """The first two principal components (scikit-learn PCA; zeros padded for a 1-D embedding)."""
    from sklearn.decomposition import PCA

    k = min(2, X.shape[1], X.shape[0])
    coords = PCA(n_components=k, random_state=0).fit_transform(np.asarray(X, dtype=np.float64))
    return np.pad(coords, ((0, 0), (0, 2 - k)))


def plot_embedding(coords: np.ndarray, labels: pd.Series, path: Path) -> Path:
    """Scatter of the 2-D embedding, one colour per cancer type."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.5))
    cmap = plt.get_cmap("tab20")
    names = sorted(labels.astype(str).unique())
    for i, name in enumerate(names):
        rows = (labels.astype(str) == name).to_numpy()
        ax.scatter(coords[rows, 0], coords[rows, 1], s=10, color=cmap(i % 20), label=name, alpha=0.8)
    ax.set_xlabel("PC 1 of X_nanog1")
    ax.set_ylabel("PC 2 of X_nanog1")
    ax.legend(fontsize=7, markerscale=1.5, bbox_to_anchor=(1.01, 1), loc="upper left", frameon=False)
    return _save_figure(fig, path)


def mean_exposures(exposures: pd.DataFrame, types: pd.Series, top: int = 12) -> pd.DataFrame:
    """Mean share of each signature per cancer type (rows: types), the `top` signatures overall kept."""
    share = exposures.div(exposures.sum(axis=1).replace(0, np.nan), axis=0).fillna(0.0)
    by_type = share.groupby(types.astype(str).to_numpy()).mean()
    keep = by_type.mean(axis=0).sort_values(ascending=False).index[:top]
    return by_type[keep]


def plot_exposures(table: pd.DataFrame, path: Path, title: str) -> Path:
    """Stacked bars of the mean signature shares per type."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.5 + 0.5 * len(table), 4.5))
    bottom = np.zeros(len(table))
    cmap = plt.get_cmap("tab20")
    for i, sig in enumerate(table.columns):
        ax.bar(table.index, table[sig], bottom=bottom, color=cmap(i % 20), label=sig)
        bottom += table[sig].to_numpy()
    ax.set_ylabel("mean share of mutations")
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=60, labelsize=8)
    ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left", frameon=False)
    return _save_figure(fig, path)


def packaged_model_name(run_dir: Path) -> str | None:
    """The name of the packaged model whose folder `run_dir` is (`report --run pcawg-catalogue`), None for
    a training run folder: the report then says which model it read and why it shows no metrics.json."""
    from nanog1.encoder import pretrained

    folder = Path(run_dir).resolve()
    return folder.name if folder.parent == pretrained.ROOT else None


def _metrics_lines(run_dir: Path) -> list[str]:
    """The run's metrics.json as a Markdown table; one that is not a JSON object (a half-written or
    hand-edited file) is a UserError naming it, as `nanog1 models show RUN` says, not a decoder traceback."""
    path = Path(run_dir) / "metrics.json"
    packaged = packaged_model_name(run_dir)
    if not path.exists() and packaged:
        return [f"`{packaged}` is a packaged model: it has no metrics.json (a training run's record); its "
                f"cross-validated metrics are in its model card: `nanog1 models show {packaged}`."]
    if not path.exists():
        return [f"No metrics file at `{path}`."]
    try:
        saved = json.loads(path.read_text())
        metrics = {**{k: v for k, v in saved.items() if k != "metrics"}, **saved.get("metrics", {})}
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, TypeError, ValueError) as err:
        raise UserError(f"{path}: not a readable metrics.json ({err})") from None
    rows = [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
            for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    return ["| metric | value |", "| --- | --- |", *rows]


def _cohort_lines(adata: ad.AnnData) -> list[str]:
    lines = [f"- samples: {adata.n_obs}"]
    if CANCER_TYPE in adata.obs:
        counts = adata.obs[CANCER_TYPE].astype(str).value_counts()
        lines.append(f"- cancer types: {len(counts)} ({', '.join(f'{k} {v}' for k, v in counts.items())})")
    recorded = recorded_channel_sets(adata)  # None: no ingest record, every burden column shown
    measured = recorded if recorded is not None else ["SBS96", "DBS78", "ID83"]
    shown = [s for s in ("SBS96", "DBS78", "ID83") if s in measured]
    shown += [d for d, src in (("SBS6", "SBS96"), ("ID12", "ID83")) if d in measured and src not in measured]
    for name in shown:
        col = f"burden_{name}"
        if col in adata.obs:
            lines.append(f"- median {name} burden: {float(adata.obs[col].median()):.0f}")
    unmeasured = [s for s in ("SBS96", "DBS78", "ID83") if s not in measured]
    if unmeasured:  # not a burden of 0: the cohort's record says these were never computed
        lines.append(f"- not measured (e.g. ingested without a reference): {', '.join(unmeasured)}")
    return lines


def write_report(cohort: Path, run_dir: Path, out_dir: Path) -> ReportResult:
    """Write report.md and its PNGs for an evaluated, embedded cohort and its run (or packaged model)."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir = Path(out_dir)
    adata = open_h5ad(cohort)  # a VCF or a damaged file given as the cohort: one error naming it
    metrics = _metrics_lines(run_dir)  # read before any folder is made
    check_writable(out_dir, folder=True)  # -o naming a file: one error, not mkdir's FileExistsError
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ReportResult(markdown=out_dir / "report.md")
    packaged = packaged_model_name(run_dir)
    source = f"packaged model `{packaged}`" if packaged else f"run folder `{run_dir}`"
    md = ["# NanoG1 pipeline report", "", f"Cohort `{cohort}`, {source}.", "", "## Cohort", ""]
    md += _cohort_lines(adata) + ["", "## Training metrics", ""] + metrics + [""]
    md += _confusion_section(adata, out_dir, result)
    md += _embedding_section(adata, out_dir, result)
    md += _exposure_section(adata, out_dir, result)
    atomic_write_text(result.markdown, "\n".join(md) + "\n")
    return result


def _confusion_section(adata, out_dir: Path, result: ReportResult) -> list[str]:
    md = ["## Cancer type: confusion matrix", ""]
    if not {CANCER_TYPE, "predicted_type"} <= set(adata.obs):
        result.notes.append("no predictions (obs['predicted_type']) in the cohort")
        return md + ["The cohort has no `predicted_type`: nothing to score.", ""]
    rows, which = _evaluated_rows(adata)
    truth, pred = adata.obs[CANCER_TYPE][rows], adata.obs["predicted_type"][rows]
    table = confusion_table(truth, pred)
    result.figures.append(plot_confusion(table, out_dir / "confusion_matrix.png"))
    return md + [_headline(adata, rows, which), "", "![confusion matrix](confusion_matrix.png)", ""]


def _headline(adata, rows: np.ndarray, which: str) -> str:
    """Accuracy on the accepted samples, coverage, and accuracy on all (abstentions scored by top-1)."""
    truth = adata.obs[CANCER_TYPE][rows].astype(str).to_numpy()
    shown = adata.obs["predicted_type"][rows].astype(str).to_numpy()
    raw_col = "predicted_type_raw" if "predicted_type_raw" in adata.obs else "predicted_type"
    raw = adata.obs[raw_col][rows].astype(str).to_numpy()
    accepted = shown != "uncertain"
    n = int(rows.sum())
    if not n:
        return f"Scored on 0 {which}."
    on_accepted = float((truth == shown)[accepted].mean()) if accepted.any() else float("nan")
    on_all = float((truth == raw).mean())
    return (f"Scored on {n} {which}: accuracy on accepted {on_accepted:.3f} at coverage "
            f"{accepted.mean():.3f} ({int(accepted.sum())} of {n} accepted; the rest abstained as "
            f"'uncertain'); top-1 accuracy on all {n}, abstentions included, {on_all:.3f}.")


def _embedding_section(adata, out_dir: Path, result: ReportResult) -> list[str]:
    md = ["## Embeddings", ""]
    if "X_nanog1" not in adata.obsm:
        result.notes.append("no embeddings (obsm['X_nanog1']) in the cohort")
        return md + ["The cohort has no `X_nanog1` embedding.", ""]
    labels = adata.obs[CANCER_TYPE] if CANCER_TYPE in adata.obs else pd.Series(["?"] * adata.n_obs)
    coords = pca_2d(np.asarray(adata.obsm["X_nanog1"]))
    labels = labels.astype(object).where(labels.notna(), "unknown").astype(str)
    result.figures.append(plot_embedding(coords, labels, out_dir / "embedding.png"))
    return md + [f"PCA of the {adata.obsm['X_nanog1'].shape[1]}-d encoder embedding, coloured by type.", "",
                 "![embedding](embedding.png)", ""]


def _exposure_section(adata, out_dir: Path, result: ReportResult) -> list[str]:
    md = ["## Signature exposures by cancer type", ""]
    keys = [k for k in ("exposures_SBS96", "exposures_DBS78", "exposures_ID83") if k in adata.obsm]
    if not keys or CANCER_TYPE not in adata.obs:
        result.notes.append("no signature exposures (obsm['exposures_*']) in the cohort")
        return md + ["The cohort has no fitted exposures.", ""]
    for key in keys:
        exposures = pd.DataFrame(adata.obsm[key], index=adata.obs_names)
        table = mean_exposures(exposures, adata.obs[CANCER_TYPE].astype(str))
        name = f"{key}.png"
        result.figures.append(plot_exposures(table, out_dir / name, key.removeprefix("exposures_")))
        md += [f"![{key}]({name})", ""]
    return md
