"""The Embeddings page's map of samples as a browser (cellxgene-like), drawn by Plotly in WebGL.

WebGL (`Scattergl`) keeps 13,000 points responsive where an SVG chart draws one element per point;
a small cohort is drawn in SVG, where a lasso is cheaper (`WEBGL_FROM`).
One trace per type gives the legend for free: a click hides a type, a double-click shows it alone.
The wheel zooms, a drag pans, a click on a point picks that sample, and the mode bar's lasso and box
tools select regions that come back to the page (Streamlit's `on_select`) as a list of samples;
Streamlit lets clicks pick points only while the drag pans, so panning is the starting tool.
"uncertain" and "unknown" are grey (`charts.category_colours`); a searched sample is ringed and named.
Streamlit draws a new chart whenever the figure changes (its element id hashes the figure), which would
drop a lasso on every colour change or search: `carried_selection` keeps the listed samples instead, and
the new map shows them selected (`selectedpoints`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from nanog1.dashboard.charts import category_colours
from nanog1.schema import CANCER_TYPE

#: Columns shown on hover when the table has them, in this order.
HOVER = ("sample", CANCER_TYPE, "predicted_type", "burden_SBS96")

#: From this many points the map draws in WebGL (`Scattergl`); below, in SVG (`Scatter`), where a lasso
#: restyles a few hundred elements instead of redrawing a WebGL canvas on every mouse move (the larger
#: cost on a small cohort, and all of it where the browser renders WebGL in software).
WEBGL_FROM = 2000

#: Plotly options: the wheel zooms, double-click resets, no logo; the mode bar offers pan, lasso, box.
#: WebGL draws at one canvas pixel per screen pixel (`plotGlPixelRatio`, Plotly's default 2): a lasso
#: redraws the canvas on every mouse move, and a browser without a GPU (a VM, a remote desktop, headless
#: Chromium) rasterises each redraw in software, where 4x the pixels made a 13,000-point lasso about twice
#: as slow (BENCHMARKS.md, issue 29). On a high-DPI screen the 4-px markers are a little softer.
CONFIG = {"scrollZoom": True, "displaylogo": False, "doubleClick": "reset", "plotGlPixelRatio": 1,
          "modeBarButtonsToRemove": ["autoScale2d", "toggleSpikelines", "hoverClosestGl2d"]}


def _hover(points: pd.DataFrame, colour: str) -> tuple[np.ndarray, str]:
    """customdata (sample first) and the hover template naming each column."""
    cols = [c for c in HOVER if c in points] + ([colour] if colour not in HOVER else [])
    template = "<br>".join(f"{c}: %{{customdata[{i}]}}" for i, c in enumerate(cols)) + "<extra></extra>"
    return points[cols].astype(str).to_numpy(), template


def _selected(part: pd.DataFrame, selected: tuple[str, ...]) -> list[int] | None:
    """Positions of the `selected` samples in one trace (None: no selection, every point plain)."""
    return np.flatnonzero(part["sample"].isin(selected)).tolist() if selected else None


def map_figure(points: pd.DataFrame, colour: str, quantitative: bool, highlight: str | None = None,
               axis_titles: tuple[str, str] = ("component 1", "component 2"), height: int = 600,
               selected: tuple[str, ...] = ()) -> go.Figure:
    """Scatter of projected samples (`points`: sample, x, y and the `colour` column).

    Categorical colours make one trace per category (legend order = `category_colours` order, greys
    last); a quantitative colour is one trace with a viridis colour bar. Every point's customdata
    starts with its sample name, which is what a selection reads back. `selected` samples are drawn
    selected (the others dimmed), as after a lasso.
    """
    size = 7 if len(points) < WEBGL_FROM else 4
    scatter = go.Scattergl if len(points) >= WEBGL_FROM else go.Scatter
    fig = go.Figure()
    if quantitative:
        data, template = _hover(points, colour)
        fig.add_trace(scatter(
            x=points["x"], y=points["y"], mode="markers", name=colour, customdata=data,
            hovertemplate=template, showlegend=False, selectedpoints=_selected(points, selected),
            marker={"size": size, "color": points[colour].astype(float), "colorscale": "Viridis",
                    "colorbar": {"title": {"text": colour}}, "opacity": 0.85}))
    else:
        labels = points[colour].astype(str)
        for name, hex_colour in zip(*category_colours(labels.unique()), strict=True):
            part = points[labels.to_numpy() == name]
            data, template = _hover(part, colour)
            fig.add_trace(scatter(
                x=part["x"], y=part["y"], mode="markers", name=f"{name} ({len(part):,})", legendgroup=name,
                customdata=data, hovertemplate=template, selectedpoints=_selected(part, selected),
                marker={"size": size, "color": hex_colour, "opacity": 0.85}))
    ring = points[points["sample"] == highlight] if highlight else points.iloc[:0]
    if len(ring):
        fig.add_trace(go.Scatter(
            x=ring["x"], y=ring["y"], mode="markers+text", text=ring["sample"], textposition="top center",
            textfont={"size": 14, "color": "#111111"}, name=f"found: {highlight}", hoverinfo="skip",
            customdata=ring[["sample"]].to_numpy(),
            marker={"size": 22, "symbol": "circle-open", "color": "#111111", "line": {"width": 3}}))
    fig.update_layout(
        height=height, dragmode="pan", hovermode="closest", uirevision="map",
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"title": {"text": f"{colour}: click hides, double-click isolates"}, "itemsizing": "constant"},
        xaxis={"title": {"text": axis_titles[0]}, "zeroline": False},
        yaxis={"title": {"text": axis_titles[1]}, "zeroline": False})
    return fig


def selected_samples(selection: dict | None) -> list[str]:
    """Names of the samples a lasso, box or click selected (customdata[0] of each point), in order, once."""
    points = (selection or {}).get("points", [])
    names = [p["customdata"][0] for p in points if p.get("customdata")]
    return list(dict.fromkeys(names))


def carried_selection(memory: dict, view: tuple, live: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """The samples to list, and those the map must draw selected, across rebuilds of the map.

    `view` names the map drawn (cohort first, then projection, colour, found sample); `live` is the chart's
    selection as the run starts (the session state of the chart drawn last). When the view changes,
    Streamlit starts a new chart with no selection (`live` was the old chart's), so the samples listed
    so far are kept (same cohort only) and drawn selected on the new map; a lasso on it replaces them.
    A live selection emptied on the same map (a deselect) clears the kept one too.
    `memory` (the page's session state) holds: view, kept, listed, live.
    """
    if memory.get("view") != view:
        same_cohort = bool(memory.get("view")) and memory["view"][0] == view[0]
        memory.update(view=view, kept=tuple(memory.get("listed", ())) if same_cohort else (), live=False)
        live = []
    elif memory.get("live") and not live:
        memory["kept"] = ()
    memory["live"] = bool(live)
    listed = live or list(memory["kept"])
    memory["listed"] = listed
    return listed, memory["kept"]
