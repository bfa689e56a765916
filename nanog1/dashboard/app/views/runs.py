"""Runs: MLflow experiments and runs, metrics over epochs, side-by-side comparison, confusion matrices."""

import streamlit as st

from nanog1.dashboard import charts, runs
from nanog1.dashboard.ui import artifact_bytes, client_or_stop, current_config, metric_history, runs_table

st.title("Training runs")
cfg = current_config()
client = client_or_stop(cfg)
st.caption(f"MLflow store: {cfg.tracking_uri}")

exps = runs.experiments(client)
if exps.empty:
    st.info("This MLflow store has no experiments yet: train a model first (`nanog1 train`).")
    st.stop()
labels = dict(zip(exps["experiment_id"], exps["name"], strict=True))
nonempty = [e for e in labels if not runs_table(cfg.tracking_uri, e).empty]
default = nonempty[0] if nonempty else next(iter(labels))
exp_id = st.selectbox("Experiment", list(labels), index=list(labels).index(default),
                      format_func=lambda e: f"{labels[e]} (id {e})", key=f"runs_exp_{cfg.tracking_uri}")
table = runs_table(cfg.tracking_uri, exp_id)
if table.empty:
    st.info(f"Experiment {labels[exp_id]!r} has no runs.")
    st.stop()

st.subheader(f"{len(table)} run(s)")
st.dataframe(table.drop(columns=["run_id"]), hide_index=True, width="stretch")
run_label = dict(zip(table["run_id"], table["run"], strict=True))
# One selection per store and experiment: a shared key kept the old runs, none of which are offered here.
chosen = st.multiselect("Runs to compare", list(run_label), default=list(run_label)[:2],
                        format_func=lambda r: f"{run_label[r]} ({r[:8]})",
                        key=f"runs_chosen_{cfg.tracking_uri}_{exp_id}")
if not chosen:
    st.info("Choose one or more runs to see their metrics.")
    st.stop()

metrics = runs.metric_names(table)
st.subheader("Metrics over epochs")
if metrics:
    shown = st.multiselect("Metrics", metrics, default=metrics[:2], key="runs_metrics")
    cols = st.columns(max(1, min(2, len(shown))))
    for i, metric in enumerate(shown):
        history = metric_history(cfg.tracking_uri, {r: run_label[r] for r in chosen}, metric)
        cols[i % len(cols)].altair_chart(charts.metric_chart(history, metric), width="stretch")
else:
    st.info("These runs logged no metrics.")

st.subheader("Side by side")
st.dataframe(runs.compare_runs(table, chosen).astype(str), width="stretch")

st.subheader("Confusion matrix and other figures")
img_cols = st.columns(len(chosen))
for col, run_id in zip(img_cols, chosen, strict=True):
    with col:
        st.markdown(f"**{run_label[run_id]}**")
        images = runs.image_artifacts(client, run_id)
        if not images:
            st.info("No image artifacts in this run.")
            continue
        preferred = [p for p in images if "confusion" in p.lower()] or images
        path = st.selectbox("Artifact", images, index=images.index(preferred[0]), key=f"runs_art_{run_id}")
        st.image(artifact_bytes(cfg.tracking_uri, run_id, path), caption=path, width="stretch")
