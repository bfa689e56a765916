"""What `nanog1 predict` writes: a TSV table, a JSON document and a one-page report per tumour
(Markdown beside a PNG of its mutational spectrum). Files are written atomically, group-readable."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from nanog1.encoder.predict_notes import (
    call_counts,
    input_warnings,
    left_out_phrase,
    operating_point_line,
    reading_line,
)
from nanog1.io import atomic_write_text

#: Per-tumour reports are written for batches up to this size unless asked otherwise.
REPORT_LIMIT = 50


def _calls_block(adata: ad.AnnData) -> dict | None:
    """predictions.json's calls block (predict_notes.call_counts), with 'left_out_of_context' where calls on
    contigs the reference lacks were left out of an SBS96/ID83 that stayed exact (left_out_phrase)."""
    counts = call_counts(adata)
    left_out = left_out_phrase(adata)
    return {**counts, "left_out_of_context": left_out} if counts is not None and left_out else counts


def write_outputs(
    adata: ad.AnnData, table: pd.DataFrame, out: Path, reports: bool | None = None
) -> list[Path]:
    """predictions.tsv, predictions.json and (for small batches, or when asked) <sample>.report.md/.png.

    A rerun into the same folder leaves exactly this run's outputs: the reports of the tumours the previous
    predictions.json lists, and which this run did not rewrite, are removed (stale reports would look
    current); other files in the folder are never touched. Those this run will not write are removed before
    anything is written: a run killed while writing a thousand reports has already replaced
    predictions.json, so its rerun could no longer tell the earlier run's reports apart."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = _previous_reports(out)
    writes_reports = reports if reports is not None else adata.n_obs <= REPORT_LIMIT
    planned = {path for stem in report_stems(adata.obs_names) for path in _report_paths(out / stem)}
    for stale in previous - (planned if writes_reports else set()):
        stale.unlink(missing_ok=True)
    written = [atomic_write_text(out / "predictions.tsv", table.to_csv(sep="\t"))]
    doc = {
        "model": adata.uns.get("nanog1_predict", {}),
        "calls": _calls_block(adata),
        "exposures": adata.uns.get("nanog1_predict_exposures", {}),
        "tumours": [_record(adata, table, i) for i in range(adata.n_obs)],
    }
    written.append(atomic_write_text(out / "predictions.json", json.dumps(doc, indent=1, default=_plain)))
    if writes_reports:
        for i, stem in enumerate(report_stems(adata.obs_names)):
            written += tumour_report(adata, table, i, out / stem)
    for stale in previous - set(written):
        stale.unlink(missing_ok=True)
    return written


def reports_note(n_tumours: int, reports: bool | None = None) -> str:
    """What the closing line says when the per-tumour reports were left out by default (a batch over
    REPORT_LIMIT tumours), so that their absence is not a surprise; '' when they were written or refused."""
    if reports is None and n_tumours > REPORT_LIMIT:
        return f"no per-tumour reports ({n_tumours} tumours, over {REPORT_LIMIT}: --reports writes them)"
    return ""


def written_line(out: Path, written: list[Path]) -> str:
    """'wrote typed/: predictions.tsv, predictions.json, 3 tumour reports (.report.md and .spectrum.png)':
    what `write_outputs` wrote into `out`, by name, the per-tumour reports counted. The closing line named
    predictions.tsv alone, so the JSON and the reports beside it went unnoticed."""
    md = sum(p.name.endswith(".report.md") for p in written)
    png = sum(p.name.endswith(".spectrum.png") for p in written)
    parts = [p.name for p in written if not p.name.endswith((".report.md", ".spectrum.png"))]
    if md and md == png:
        parts.append(f"{md:,} tumour report{'s' if md != 1 else ''} (.report.md and .spectrum.png)")
    else:
        parts += [f"{md:,} tumour report(s) (.report.md)"] if md else []
        parts += [f"{png:,} spectrum plot(s) (.spectrum.png)"] if png else []
    return f"wrote {Path(out)}/: {', '.join(parts)}"


def _previous_reports(out: Path) -> set[Path]:
    """The report files a previous `predict` into `out` may have written: one .report.md and one
    .spectrum.png per tumour its predictions.json lists (empty if there is none or it cannot be read)."""
    try:
        tumours = json.loads((out / "predictions.json").read_text()).get("tumours", [])
        stems = set(report_stems([t["sample"] for t in tumours]))
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return set()
    return {path for stem in stems for path in _report_paths(out / stem)}


def _report_paths(stem: Path) -> tuple[Path, Path]:
    """A tumour's one-page report and its spectrum PNG. Suffixes are appended, not swapped in: a sample
    named like 'SP1.1' and 'SP1.2' keeps its whole name (with_suffix would write both to SP1.report.md)."""
    return stem.parent / f"{stem.name}.report.md", stem.parent / f"{stem.name}.spectrum.png"


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _safe(name: str) -> str:
    """A sample name as a file name: letters, digits, '.', '_' and '-' kept, the rest '_', no leading dot (a
    hidden file: '../x' gave '.._x.report.md', which `ls` does not show)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in str(name)).lstrip(".") or "_"


def report_stems(samples) -> list[str]:
    """Each tumour's report file stem, in order: its safe name, and '-2', '-3', ... after a name an earlier
    tumour's already took (as spelled, or differing in case only, for case-insensitive file systems):
    'T 1' and 'T_1' both make 'T_1', and the second report would otherwise overwrite the first."""
    stems: list[str] = []
    taken: set[str] = set()
    for sample in samples:
        base = stem = _safe(sample)
        k = 1
        while stem.lower() in taken:
            k += 1
            stem = f"{base}-{k}"
        taken.add(stem.lower())
        stems.append(stem)
    return stems


def _record(adata: ad.AnnData, table: pd.DataFrame, i: int) -> dict:
    row = table.iloc[i]
    proba = adata.obsm["proba_type"].iloc[i]
    rec = {
        "sample": str(adata.obs_names[i]),
        "predicted_type": row["predicted_type"],
        "top": [
            {"type": str(t), "probability": float(proba[t])}
            for t in proba.sort_values(ascending=False).index[:3]
        ],
        "abstain": bool(row["abstain"]),
        "abstain_reason": row["abstain_reason"],
        "mutations": int(row["mutations"]),
        **({"events_not_read": int(row["events_not_read"])} if "events_not_read" in row else {}),
        "nearest_reference": str(row.get("nearest_reference", "")),
        "exposures": {},
    }
    for name in adata.uns.get("nanog1_predict_exposures", {}).get("sets", []):
        point, lo, hi = (adata.obsm[f"exposures_{name}{s}"].iloc[i] for s in ("", "_lo", "_hi"))
        if point.isna().all():  # this tumour did not measure the set (issue 31): absent, never zeros
            rec["exposures"][name] = None
            rec.setdefault("exposures_not_measured", []).append(name)
            continue
        rec["exposures"][name] = {
            s: {"mutations": float(point[s]), "lo": float(lo[s]), "hi": float(hi[s])}
            for s in point.index
            if point[s] > 0
        }
    return rec


def tumour_report(adata: ad.AnnData, table: pd.DataFrame, i: int, stem: Path) -> list[Path]:
    """One page: type probabilities, abstention, neighbours, exposures, and the spectrum PNG."""
    rec = _record(adata, table, i)
    md_path, png = _report_paths(stem)
    spectrum_png(adata, i, png)
    lines = [
        f"# NanoG1 tumour report: {rec['sample']}",
        "",
        "Research use only; not a diagnosis.",
        "",
        f"- Model: `{adata.uns.get('nanog1_predict', {}).get('model', '')}`; channel sets scored: "
        f"{_scored_line(adata, i)}",
        f"- Mutations: {rec['mutations']}; input: {reading_line(adata, rec['sample'])}",
        *_mismatch_line(adata),
        f"- Predicted type: **{rec['predicted_type']}**"
        + (f" (abstained: {rec['abstain_reason']})" if rec["abstain"] else ""),
        f"- Abstention: {operating_point_line(adata)}",
        *_priors_line(adata),
        "",
        "| rank | type | calibrated probability |",
        "|--:|:--|--:|",
        *[f"| {k + 1} | {t['type']} | {t['probability']:.3f} |" for k, t in enumerate(rec["top"])],
        "",
        f"Nearest reference tumours (embedding cosine): {rec['nearest_reference'] or 'n/a'}",
        "",
    ]
    for name, sigs in rec["exposures"].items():
        if sigs is None:
            lines += [f"Signature exposures, {name}: not measured for this tumour (its input did not measure "
                      f"{name}; no exposures fitted, none reported as zero)", ""]
            continue
        lines += [f"Signature exposures, {name} (mutations, bootstrap 95 % interval):", ""]
        lines += [f"- {s}: {v['mutations']:.0f} [{v['lo']:.0f}–{v['hi']:.0f}]" for s, v in sigs.items()]
        lines += [] if sigs else [f"- none (no {name} mutation attributed)"]
        lines.append("")
    lines.append(f"![spectrum]({png.name})")
    md = atomic_write_text(md_path, "\n".join(lines) + "\n")
    return [md, png]


def _priors_line(adata: ad.AnnData) -> list[str]:
    """The report's line on `--adapt-priors` (the batch's estimated type mix), none when not asked for."""
    done = adata.uns.get("nanog1_predict", {}).get("prior_adaptation", {})
    if not done or "estimated_type_mix" not in done:
        return []
    from nanog1.encoder.prior_shift import mix_line

    return [f"- Probabilities: {mix_line(done)}"]


def _scored_line(adata: ad.AnnData, i: int) -> str:
    """The sets tumour `i` was scored with (its own, issue 31; the cohort's for an older annotation)."""
    if "channel_sets_scored" in adata.obs:
        return str(adata.obs["channel_sets_scored"].iloc[i])
    return "+".join(adata.uns.get("nanog1_predict", {}).get("channel_sets_scored", []))


def _mismatch_line(adata: ad.AnnData) -> list[str]:
    return [f"- **{n.text}**" for n in input_warnings(adata)]


def grouped_order(labels: tuple[str, ...] | list[str]) -> list[int]:
    """Channel indices with each colour group's channels together (stable): SBS96 is stored by 5' base,
    so its C>A ... T>G classes interleave unless reordered as COSMIC plots them."""
    from nanog1.genomics.channels import channel_group

    groups = [channel_group(lab) for lab in labels]
    first = {g: k for k, g in reversed(list(enumerate(groups)))}
    return sorted(range(len(labels)), key=lambda k: first[groups[k]])


def group_ticks(labels: tuple[str, ...] | list[str]) -> tuple[list[float], list[str]]:
    """x positions (each run's centre) and names of the runs of channels sharing a COSMIC colour group
    (C>A ... T>G for SBS96/SBS6, AC ... TT for DBS78, 1:Del:C ... 5:Del:M for ID83/ID12): the spectrum's
    axis labels, so a reader can tell which bars are which."""
    from nanog1.genomics.channels import channel_group

    ticks: list[float] = []
    names: list[str] = []
    start = 0
    groups = [channel_group(lab) for lab in labels]
    for k, group in enumerate(groups):
        if k + 1 == len(groups) or groups[k + 1] != group:
            ticks.append((start + k) / 2)
            names.append(group)
            start = k + 1
    return ticks, names


def spectrum_png(adata: ad.AnnData, i: int, path: Path) -> None:
    """Bar plot of the tumour's measured sets in COSMIC colours (SBS96 or SBS6, DBS78, ID83 or ID12)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from nanog1.genomics.channels import CHANNEL_SETS, channel_color, set_slice
    from nanog1.io import atomic_write_with
    from nanog1.schema import measured_sets_per_sample

    row = measured_sets_per_sample(adata).iloc[i]  # this tumour's own measured sets (issue 31)
    measured = [name for name in CHANNEL_SETS if row[name]] or list(CHANNEL_SETS)
    shown = [s for s in ("SBS96", "DBS78", "ID83") if s in measured]
    shown += [d for d, src in (("SBS6", "SBS96"), ("ID12", "ID83")) if d in measured and src not in measured]
    x = np.asarray(adata.X[i].toarray() if hasattr(adata.X, "toarray") else adata.X[i]).ravel()
    fig, axes = plt.subplots(len(shown) or 1, 1, figsize=(10, 1.8 * max(len(shown), 1)), squeeze=False)
    for ax, name in zip(axes[:, 0], shown, strict=False):
        order = grouped_order(CHANNEL_SETS[name])
        labels = [CHANNEL_SETS[name][k] for k in order]
        values = x[set_slice(name)][order]
        ax.bar(range(len(labels)), values, color=[channel_color(lab) for lab in labels], width=0.8)
        ax.set_ylabel(name)
        ax.set_xlim(-1, len(labels))
        ticks, names = group_ticks(labels)
        ax.set_xticks(ticks, names, fontsize=7, rotation=0 if len(names) <= 10 else 45)
    axes[0, 0].set_title(str(adata.obs_names[i]))
    fig.tight_layout()
    atomic_write_with(path, lambda p: fig.savefig(p, dpi=90, format="png"))
    plt.close(fig)
