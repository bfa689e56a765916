"""Embeddings: PCA or UMAP of obsm['X_nanog1'] coloured by type, burden or signature, browsed like cellxgene:
zoom, pan, legend to hide or isolate types, lasso to a sample list, click to open a sample."""

import numpy as np
import pandas as pd
import streamlit as st

from nanog1.dashboard import cohort_tables, embedding_map
from nanog1.dashboard.projection import METHODS, ProjectionConfig, project_with_titles
from nanog1.dashboard.ui import (
    burden_table,
    cohort_key,
    cohort_or_stop,
    current_config,
    open_sample,
    sample_picker,
)
from nanog1.schema import CANCER_TYPE


@st.cache_data(show_spinner="Projecting embeddings…", max_entries=8)
def coordinates(_x: np.ndarray, key: tuple, config: ProjectionConfig) -> tuple[np.ndarray, tuple[str, str]]:
    """Projected coordinates and axis titles, cached per cohort file version and projection settings."""
    return project_with_titles(_x, config)


@st.cache_resource(show_spinner=False, max_entries=16)
def map_figure(key: tuple, method: str, n_neighbors: int, colour_by: str, highlight: str | None,
               selected: tuple[str, ...], _points: pd.DataFrame, _quantitative: bool,
               _titles: tuple[str, str]):
    """The map, built once per cohort version, projection, colour, found sample and kept selection:
    building 13,000 points into Plotly traces takes about half a second, and a lasso or a click reruns
    the page."""
    return embedding_map.map_figure(_points, colour_by, _quantitative, highlight, _titles, selected=selected)


st.title("Embeddings")
cfg = current_config()
adata = cohort_or_stop(cfg)
if "X_nanog1" not in adata.obsm:
    st.info("This cohort has no embeddings (obsm['X_nanog1'] absent): run `nanog1 embed` on it first.")
    st.stop()

table = burden_table(adata, cohort_key(cfg))
c1, c2, c3 = st.columns([1, 1, 2])
method = c1.radio("Projection", METHODS, horizontal=True, key="emb_method")
n_neighbors = c2.slider("UMAP neighbours", 5, 50, 15, disabled=method != "UMAP", key="emb_neighbors")
colour_options = [CANCER_TYPE] + (["predicted_type"] if "predicted_type" in table else [])
colour_options += ["log10 SBS96 burden"]
signatures: dict[str, pd.DataFrame] = {}
for name in cohort_tables.SET_NAMES:
    expo = cohort_tables.exposures(adata, name)
    if expo is not None:
        signatures.update({f"{sig} ({name})": expo[[sig]] for sig in expo.columns})
colour_by = c3.selectbox("Colour by", colour_options + list(signatures), key="emb_colour")
if method == "UMAP":
    st.caption("UMAP: the first run after installing compiles umap-learn's kernels (up to a minute on 2 "
               "cores) and keeps them on disk for later servers; each result is cached per cohort and "
               "setting.")

x = np.asarray(adata.obsm["X_nanog1"])
try:
    xy, titles = coordinates(x, cohort_key(cfg), ProjectionConfig(method=method, n_neighbors=n_neighbors))
except ValueError as exc:
    st.error(f"Cannot project the embeddings: {exc}")
    st.stop()

points = table.assign(x=xy[:, 0], y=xy[:, 1])
points["log10 SBS96 burden"] = np.log10(points["burden_SBS96"].clip(lower=0) + 1)
if colour_by in signatures:
    points[colour_by] = signatures[colour_by].iloc[:, 0].astype(float).to_numpy()
quantitative = colour_by not in (CANCER_TYPE, "predicted_type")

highlight = sample_picker(adata.obs_names, "emb_find", label="Find a sample", search_label="Search samples",
                          optional=True, help="Rings the sample on the map.")
st.caption(f"{method} of {x.shape[1]}-dimensional embeddings of {len(points):,} samples. Wheel: zoom · drag: "
           "pan · lasso or box tool (bar above the map): list the samples inside · double-click: reset the "
           "view · click a point: open its Sample page · click a legend entry: hide that type "
           "(double-click: show it alone).")
# A new colour, search or projection draws a new chart (Streamlit has no selection for it): the samples
# listed so far stay listed and drawn selected until a new lasso, a deselect or "Clear the selection".
view = (cohort_key(cfg), method, n_neighbors, colour_by, highlight)
memory = st.session_state.setdefault("emb_selection", {})
live = embedding_map.selected_samples(st.session_state.get("emb_chart", {}).get("selection"))
chosen_names, kept = embedding_map.carried_selection(memory, view, live)
figure = map_figure(view[0], method, n_neighbors, colour_by, highlight, kept, points, quantitative, titles)
event = st.plotly_chart(figure, on_select="rerun", selection_mode=("points", "lasso", "box"), key="emb_chart",
                        config=embedding_map.CONFIG, width="stretch")
selection = event.selection if event is not None else {}
clicked = embedding_map.selected_samples(selection)
if clicked and not (selection.get("lasso") or selection.get("box")):
    open_sample(clicked[0])  # a click on one point
if highlight and st.button(f"Open {highlight}'s Sample page"):
    open_sample(str(highlight))

if chosen_names:
    inside = points.loc[chosen_names]
    st.subheader(f"{len(inside):,} samples selected")
    if not clicked:
        st.caption("Kept from the map before the last colour, search or projection change: a new lasso "
                   "replaces it.")
        st.button("Clear the selection", key="emb_clear", on_click=memory.update, kwargs={"kept": ()})
    st.caption(", ".join(f"{t}: {n}" for t, n in inside[CANCER_TYPE].value_counts().items()))
    shown = [c for c in ("sample", CANCER_TYPE, "predicted_type", "burden_SBS96") if c in inside]
    chosen = st.dataframe(inside[shown], hide_index=True, on_select="rerun", selection_mode="single-row",
                          key="emb_region", width="stretch", height=280)
    st.download_button("Download the sample list (.csv)", inside[shown].to_csv(index=False),
                       file_name="selected_samples.csv", mime="text/csv")
    if chosen.selection.rows:
        open_sample(str(inside.iloc[chosen.selection.rows[0]]["sample"]))
