"""Altair charts for the dashboard: spectra in COSMIC colours and order, burdens, embeddings, runs."""

from __future__ import annotations

import colorsys
import copy
import functools
import re

import altair as alt
import pandas as pd

from nanog1.genomics.channels import CHANNEL_SETS, DBS_COLORS, ID_COLORS, SBS6, SBS6_COLORS, channel_group
from nanog1.schema import CANCER_TYPE

#: Colour tables by channel set (group label -> COSMIC hex colour), in COSMIC group order.
GROUP_COLORS: dict[str, dict[str, str]] = {
    "SBS96": SBS6_COLORS,
    "DBS78": DBS_COLORS,
    "ID83": ID_COLORS,
    "SBS6": SBS6_COLORS,
    "ID12": {channel_group(c): ID_COLORS[channel_group(c)] for c in CHANNEL_SETS["ID12"]},
}

#: Pixels per cancer type in the burden box plots (boxes and medians are 14 px high) and stacked bars.
BOX_STEP = 26

#: Categorical palette for cancer types (20 distinct colours, repeats beyond that).
TYPE_SCHEME = "tableau20"


def plot_order(channel_set: str) -> list[str]:
    """Channel labels in the order COSMIC plots them.

    DBS78 and ID83 plots follow the table order; SBS96 plots group the table's rows by substitution
    class (six coloured blocks of 16), each block by 5' then 3' base.
    """
    labels = list(CHANNEL_SETS[channel_set])
    if channel_set == "SBS96":
        labels.sort(key=lambda c: (SBS6.index(c[2:5]), c[0], c[-1]))
    return labels


#: Vega expressions turning a channel label into the tick label SigProfiler prints under each bar.
_TICK_LABELS = {
    "SBS96": "substring(datum.label, 0, 1) + substring(datum.label, 2, 3) + substring(datum.label, 6, 7)",
    "DBS78": "substring(datum.label, 3)",
    "ID83": "split(datum.label, ':')[3]",
}
_BAND_PX = 12  # height of the coloured class bands above the bars


def band_labels(channel_set: str) -> dict[str, str]:
    """Short text printed in each class band: 'C>A' for SBS, 'AC>NN' for DBS, '1bp Del C', 'Ins 3', 'MH 4'."""
    out = {}
    for group in GROUP_COLORS[channel_set]:
        parts = group.split(":")
        if channel_set == "DBS78":
            out[group] = f"{group}>NN"
        elif len(parts) == 3 and parts[0] == "1":
            out[group] = f"1bp {parts[1]} {parts[2]}"
        elif len(parts) == 3:
            size = "5+" if parts[0] == "5" else parts[0]
            out[group] = f"MH {size}" if parts[2] == "M" else f"{parts[1]} {size}"
        else:
            out[group] = group
    return out


def _band_rows(channel_set: str, order: list[str]) -> pd.DataFrame:
    """One row per class: its middle channel (where the label sits), label and width in channels."""
    groups = pd.Series([channel_group(c) for c in order], index=order)
    labels = band_labels(channel_set)
    rows = []
    for group, members in groups.groupby(groups, sort=False):
        names = list(members.index)
        rows.append({"channel": names[len(names) // 2], "group": group, "label": labels[group],
                     "width": len(names)})
    return pd.DataFrame(rows)


def spectrum_chart(spectrum: pd.DataFrame, channel_set: str, value: str = "count", title: str = "",
                   height: int = 260, y_title: str | None = None, bands: bool = True,
                   tick_labels: bool = True) -> alt.LayerChart | alt.Chart:
    """One spectrum as SigProfiler draws it: bars in COSMIC order and colours, coloured class bands
    with their names above, and the short context (ACA, CA, repeat length) under each bar.

    `spectrum` has a `channel` column and the `value` column (plus any columns for the tooltip).
    """
    groups = GROUP_COLORS[channel_set]
    order = plot_order(channel_set)
    data = spectrum.assign(group=spectrum["channel"].map(channel_group))
    axis = alt.Axis(labelExpr=_TICK_LABELS.get(channel_set, "datum.label"), labelFont="monospace",
                    labelFontSize=8, labelAngle=-90, labelOverlap=False, labelPadding=2, ticks=False,
                    labels=tick_labels)
    x = alt.X("channel:N", sort=order, scale=alt.Scale(domain=order), title=None, axis=axis)
    colour = alt.Color("group:N", scale=alt.Scale(domain=list(groups), range=list(groups.values())),
                       legend=None)
    tooltip = [alt.Tooltip("channel:N")] + [
        alt.Tooltip(f"{c}:Q", format=",.0f" if c in ("count", "sample", "reconstruction") else ".3f")
        for c in data.columns if c not in ("channel", "group") and pd.api.types.is_numeric_dtype(data[c])]
    y_title = y_title or ("mutations" if value == "count" else value)
    bars = alt.Chart(data).mark_bar().encode(x=x, y=alt.Y(f"{value}:Q", title=y_title), color=colour,
                                             tooltip=tooltip)
    if not bands:
        return bars.properties(height=height, title=title)
    band_data = data[["channel", "group"]].assign(label=data["group"].map(band_labels(channel_set)))
    band = alt.Chart(band_data).mark_rect().encode(
        x=x, y=alt.value(-_BAND_PX - 4), y2=alt.value(-4), color=colour, tooltip=["label:N"])
    rows = _band_rows(channel_set, order)
    text = alt.Chart(rows[rows["width"] >= 3]).mark_text(fontSize=10, fontWeight="bold", dy=-_BAND_PX - 12,
                                                         align="center").encode(
        x=x, y=alt.value(0), text="label:N")
    return alt.layer(bars, band, text, title=alt.TitleParams(title, offset=24)).properties(height=height)


#: Stands for every number of a spectrum while its chart is built once as a template (see spectrum_spec).
_PLACEHOLDER = -123456.5


def spectrum_spec(spectrum: pd.DataFrame, channel_set: str, title: str = "", **layout) -> dict:
    """The Vega-Lite spec of `spectrum_chart(spectrum, channel_set, title=title, **layout)`, without
    building the chart: the chart is built once per layout and columns (Altair takes 0.1–0.3 s a chart)
    and each spectrum only swaps in its rows and title, so picking another sample stays quick."""
    template, names = _spectrum_template(tuple(spectrum.columns), channel_set, tuple(sorted(layout.items())))
    rows = alt.utils.sanitize_pandas_dataframe(spectrum.assign(group=spectrum["channel"].map(channel_group)))
    spec = copy.deepcopy(template)  # callers (Streamlit) may edit the spec they are given
    spec["datasets"].update(dict.fromkeys(names, rows.to_dict("records")))
    spec["title"] = {**spec["title"], "text": title} if isinstance(spec.get("title"), dict) else title
    return spec


@functools.lru_cache(maxsize=64)
def _spectrum_template(columns: tuple[str, ...], channel_set: str, layout: tuple) -> tuple[dict, list[str]]:
    """spectrum_chart's spec for a placeholder spectrum, and the names of the datasets holding its rows."""
    channels = list(CHANNEL_SETS[channel_set])
    placeholder = pd.DataFrame({c: channels if c == "channel" else _PLACEHOLDER for c in columns})
    spec = spectrum_chart(placeholder, channel_set, title="", **dict(layout)).to_dict()
    # an empty dataset (SBS6's band labels: no class is 3 channels wide) holds no placeholder to swap
    names = [name for name, rows in spec["datasets"].items() if rows and _PLACEHOLDER in rows[0].values()]
    return spec, names


def fit_chart(frame: pd.DataFrame, channel_set: str, similarity: float) -> alt.VConcatChart:
    """Sample, reconstruction and residual (sample − reconstruction) stacked on one channel axis."""
    sample = spectrum_chart(frame, channel_set, value="sample", height=150, tick_labels=False,
                            title=f"sample vs reconstruction · cosine {similarity:.3f}")
    recon = spectrum_chart(frame, channel_set, value="reconstruction", height=110, bands=False,
                           tick_labels=False)
    residual = spectrum_chart(frame, channel_set, value="residual", height=110, bands=False)
    return alt.vconcat(sample, recon, residual, spacing=6).resolve_scale(x="shared")


def type_count_chart(counts: pd.DataFrame) -> alt.Chart:
    """Horizontal bars: samples per cancer type, largest first."""
    return (
        alt.Chart(counts)
        .mark_bar()
        .encode(
            y=alt.Y("cancer_type:N", sort="-x", title=None, axis=alt.Axis(labelOverlap=False)),
            x=alt.X("samples:Q", title="samples"),
            tooltip=["cancer_type:N", "samples:Q"],
        )
        .properties(height=80 + 24 * len(counts))
    )


def burden_chart(boxes: pd.DataFrame, outliers: pd.DataFrame, channel_set: str, types: list[str],
                 show_types: bool = True) -> alt.LayerChart:
    """Box plots of one set's burden per cancer type on a log scale, from precomputed statistics
    (see cohort_tables.burden_boxes). `types` fixes the row order so panels side by side line up.
    """
    colour = {"SBS96": "#E32926", "DBS78": "#0366CC", "ID83": "#FE8002"}.get(channel_set, "#4C78A8")
    y = alt.Y("cancer_type:N", title=None, scale=alt.Scale(domain=types),
              axis=alt.Axis(labels=show_types, ticks=show_types, labelOverlap=False))
    x_scale = alt.Scale(type="log")
    tooltip = ["cancer_type:N", "n:Q"] + [alt.Tooltip(f"{c}:Q", format=",.0f") for c in
                                          ("low", "q1", "median", "q3", "high")]
    base = alt.Chart(boxes)
    whisker = base.mark_rule(color=colour).encode(
        y=y, x=alt.X("low:Q", scale=x_scale, title="mutations (log)", axis=alt.Axis(tickCount=4, grid=False)),
        x2="high:Q", tooltip=tooltip)
    box = base.mark_bar(size=14, color=colour).encode(y=y, x="q1:Q", x2="q3:Q", tooltip=tooltip)
    median = base.mark_tick(color="#222222", size=14, thickness=2).encode(y=y, x="median:Q", tooltip=tooltip)
    dots = alt.Chart(outliers).mark_point(color=colour, size=16).encode(
        y=y, x=alt.X("burden:Q", scale=x_scale), tooltip=["sample:N", "cancer_type:N", "burden:Q"])
    # A fixed step per type: a total height is shared out by the renderer and left 1-3 types squashed.
    return alt.layer(whisker, box, median, dots, title=channel_set).properties(height=alt.Step(BOX_STEP))


#: Colour of samples the model abstained on ("uncertain") or whose type is unknown.
UNCERTAIN_GREY = "#B8B8B8"
_GREY_LABELS = ("uncertain", "unknown")


def category_colours(categories) -> tuple[list[str], list[str]]:
    """(domain, range) for categorical colours: Tableau 20 up to 20 types, distinct colours beyond,
    and grey for 'uncertain' and 'unknown' so abstentions never look like a type."""
    import matplotlib

    names = sorted(str(c) for c in categories)
    named = [c for c in names if c not in _GREY_LABELS]
    tab20 = [matplotlib.colors.to_hex(rgb) for rgb in matplotlib.colormaps["tab20"].colors]
    palette = tab20 if len(named) <= 20 else distinct_colors(len(named))
    greys = [c for c in names if c in _GREY_LABELS]
    return named + greys, palette[:len(named)] + [UNCERTAIN_GREY] * len(greys)


def embedding_chart(points: pd.DataFrame, color: str, quantitative: bool, highlight: str | None = None,
                    axis_titles: tuple[str, str] = ("component 1", "component 2"),
                    height: int = 560, prefix: str = "") -> alt.LayerChart:
    """Scatter of projected samples (x, y), static-friendly for notebooks (the dashboard's browsable
    map is `embedding_map.map_figure`, WebGL): wheel zooms, drag pans, shift-drag selects a region
    (`brush`), a click picks a sample (`pick`), a click on a legend entry keeps that type in view
    (shift-click adds types); `highlight` rings one sample. `prefix` names the selections apart
    (`{prefix}pick`, …) so that two maps can stand side by side in one chart."""
    pick = alt.selection_point(name=f"{prefix}pick", fields=["sample"], on="click")
    drag = "[pointerdown[{}event.shiftKey], window:pointerup] > window:pointermove!"
    brush = alt.selection_interval(name=f"{prefix}brush", encodings=["x", "y"], on=drag.format(""))
    zoom = alt.selection_interval(name=f"{prefix}zoom", bind="scales", translate=drag.format("!"))
    params = [pick, brush, zoom]
    if quantitative:
        colour = alt.Color(f"{color}:Q", scale=alt.Scale(scheme="viridis"), title=color)
        opacity = alt.value(0.8)
    else:
        domain, colours = category_colours(points[color].unique())
        types = alt.selection_point(name=f"{prefix}types", fields=[color], bind="legend")
        params.append(types)
        colour = alt.Color(f"{color}:N", scale=alt.Scale(domain=domain, range=colours), title=color,
                           legend=alt.Legend(symbolLimit=0, columns=1 if len(domain) <= 24 else 2))
        opacity = alt.condition(types, alt.value(0.85), alt.value(0.05))
    tooltip = [c for c in ("sample", CANCER_TYPE, "predicted_type", "burden_SBS96") if c in points]
    if color not in tooltip:
        tooltip.append(color)
    size = 40 if len(points) <= 2000 else 12
    x = alt.X("x:Q", title=axis_titles[0], scale=alt.Scale(zero=False))
    y = alt.Y("y:Q", title=axis_titles[1], scale=alt.Scale(zero=False))
    dots = (alt.Chart(points).mark_circle(size=size)
            .encode(x=x, y=y, color=colour, opacity=opacity, tooltip=tooltip).add_params(*params))
    ring = points[points["sample"] == highlight] if highlight else points.iloc[:0]
    mark = alt.Chart(ring).mark_point(size=420, filled=False, color="#111111", strokeWidth=3).encode(x=x, y=y)
    label = alt.Chart(ring).mark_text(dy=-18, fontWeight="bold", fontSize=13).encode(x=x, y=y,
                                                                              text="sample:N")
    return alt.layer(dots, mark, label).properties(height=height)


def exposure_heatmap(long: pd.DataFrame, relative: bool) -> alt.Chart:
    """Heatmap of mean exposure per cancer type (rows) and signature (columns)."""
    title = "mean fraction of mutations" if relative else "mean mutations attributed"
    return (
        alt.Chart(long)
        .mark_rect()
        .encode(
            x=alt.X("signature:N", sort=signature_order(long["signature"].unique()),
                    axis=alt.Axis(labelAngle=-90, labelOverlap=False, labelFontSize=9)),
            y=alt.Y("cancer_type:N", title="cancer type", axis=alt.Axis(labelOverlap=False)),
            color=alt.Color("value:Q", scale=alt.Scale(scheme="blues"), title=title),
            tooltip=["cancer_type:N", "signature:N", alt.Tooltip("value:Q", format=".3g")],
        )
        .properties(height=alt.Step(BOX_STEP))
    )


def signature_order(names) -> list[str]:
    """Signature names in COSMIC's natural order: SBS1, SBS2, …, SBS7a, SBS7b, …, SBS10a, …, SBS40."""
    def key(name: str) -> tuple:
        match = re.fullmatch(r"([A-Za-z]+)(\d+)(.*)", name)
        return (match.group(1), int(match.group(2)), match.group(3)) if match else (name, 0, "")
    return sorted(map(str, names), key=key)


def distinct_colors(n: int) -> list[str]:
    """`n` different hex colours, neighbours far apart: hues by the golden angle in three lightness bands.

    Qualitative schemes stop at 20 colours; a cohort fit to COSMIC v3 has 40–80 active signatures,
    and a repeated colour makes two signatures read as one.
    """
    bands = ((0.45, 0.80), (0.68, 0.70), (0.28, 0.75))  # (lightness, saturation)
    out: list[str] = []
    for i in range(n):
        lightness, saturation = bands[i % len(bands)]
        hue = (i * 0.381966) % 1.0
        r, g, b = colorsys.hls_to_rgb(hue, lightness, saturation)
        colour = f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"
        out.append(colour if colour not in out else f"#{(int(colour[1:], 16) + i) % 0xFFFFFF:06x}")
    return out


def exposure_stack(long: pd.DataFrame) -> alt.Chart:
    """Stacked bars: each cancer type's mean signature composition, normalised to 1.

    Every signature gets its own colour and a legend entry (in COSMIC order, below the bars).
    """
    names = signature_order(long["signature"].unique())
    legend = alt.Legend(orient="bottom", columns=10, symbolLimit=0, labelLimit=90, symbolType="square",
                        title="signature")
    return (
        alt.Chart(long.assign(signature_rank=long["signature"].map({n: i for i, n in enumerate(names)})))
        .mark_bar()
        .encode(
            y=alt.Y("cancer_type:N", title="cancer type", axis=alt.Axis(labelOverlap=False)),
            x=alt.X("value:Q", stack="normalize", title="share of attributed mutations"),
            color=alt.Color("signature:N", sort=names,
                            scale=alt.Scale(domain=names, range=distinct_colors(len(names))), legend=legend),
            order=alt.Order("signature_rank:Q"),
            tooltip=["cancer_type:N", "signature:N", alt.Tooltip("value:Q", format=".3g")],
        )
        .properties(height=alt.Step(BOX_STEP))
    )


def probability_chart(proba: pd.DataFrame, true_type: str | None) -> alt.Chart:
    """Horizontal bars of predicted type probabilities; the true type (if known) is highlighted."""
    data = proba.assign(is_true=proba[CANCER_TYPE] == (true_type or ""))
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            y=alt.Y("cancer_type:N", sort="-x", title=None),
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("is_true:N", scale=alt.Scale(domain=[True, False], range=["#E32926", "#4C78A8"]),
                            legend=alt.Legend(title="true type")),
            tooltip=["cancer_type:N", alt.Tooltip("probability:Q", format=".3f")],
        )
    )


def metric_chart(history: pd.DataFrame, metric: str) -> alt.Chart:
    """Lines of one metric over steps (epochs), one line per run."""
    return (
        alt.Chart(history, title=metric)
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title="step (epoch)"),
            y=alt.Y("value:Q", title=metric, scale=alt.Scale(zero=False)),
            color=alt.Color("run:N"),
            tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".4g")],
        )
    )


def confusion_chart(table: pd.DataFrame) -> alt.LayerChart:
    """Confusion counts (rows true, columns predicted) as a heatmap with the counts written in; hover
    gives the count and its share of the true type."""
    long = table.rename_axis(index="true", columns="predicted").stack().rename("count").reset_index()
    long["share of true type"] = long["count"] / long.groupby("true")["count"].transform("sum").replace(0, 1)
    order = [str(c) for c in table.index]
    base = alt.Chart(long).encode(
        x=alt.X("predicted:N", sort=order, axis=alt.Axis(labelAngle=-45, labelOverlap=False)),
        y=alt.Y("true:N", sort=order, axis=alt.Axis(labelOverlap=False)))
    cells = base.mark_rect().encode(
        color=alt.Color("share of true type:Q", scale=alt.Scale(scheme="blues", domain=[0, 1])),
        tooltip=["true:N", "predicted:N", alt.Tooltip("count:Q", format=",d"),
                 alt.Tooltip("share of true type:Q", format=".1%")])
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text("count:Q", format="d"),
        color=alt.condition("datum['share of true type'] > 0.5", alt.value("white"), alt.value("#222222")))
    # Steps, not a total size: the renderer's fit-to-width squashed a fixed width to a sliver.
    return alt.layer(cells, text).properties(width=alt.Step(34), height=alt.Step(26))


def reliability_chart(table: pd.DataFrame) -> alt.LayerChart:
    """Reliability diagram: accuracy against mean confidence per bin, one line per model (e.g.
    uncalibrated and temperature-scaled), dot size = samples in the bin, the diagonal = calibrated."""
    data = table.dropna(subset=["confidence", "accuracy"])
    diagonal = alt.Chart(pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]})).mark_line(
        color="#999999", strokeDash=[4, 4]).encode(x="x:Q", y="y:Q")
    lines = alt.Chart(data).mark_line(point=False).encode(
        x=alt.X("confidence:Q", scale=alt.Scale(domain=[0, 1]), title="mean confidence"),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), title="accuracy"), color="model:N")
    dots = alt.Chart(data).mark_circle().encode(
        x="confidence:Q", y="accuracy:Q", color="model:N", size=alt.Size("count:Q", title="samples"),
        tooltip=["model:N", alt.Tooltip("lower:Q", format=".2f"), alt.Tooltip("upper:Q", format=".2f"),
                 alt.Tooltip("confidence:Q", format=".3f"), alt.Tooltip("accuracy:Q", format=".3f"),
                 alt.Tooltip("count:Q", format=",d")])
    return alt.layer(diagonal, lines, dots).properties(height=320)
