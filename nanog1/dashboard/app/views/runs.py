"""Runs: MLflow experiments and runs, metrics over epochs, side-by-side comparison, confusion matrices."""

import pandas as pd
import streamlit as st

from nanog1.dashboard import charts, runs
from nanog1.dashboard.ui import (
    artifact_bytes,
    artifact_table,
    client_or_stop,
    current_config,
    metric_history,
    runs_table,
)

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
    shown = st.multiselect("Metrics", metrics, default=runs.default_metrics(metrics),
                           key=f"runs_metrics_{cfg.tracking_uri}_{exp_id}")
    cols = st.columns(max(1, min(2, len(shown))))
    summaries = []
    for i, metric in enumerate(shown):
        history = metric_history(cfg.tracking_uri, {r: run_label[r] for r in chosen}, metric)
        cols[i % len(cols)].altair_chart(charts.metric_chart(history, metric), width="stretch")
        summaries.append(runs.best_and_final(history, metric))
    if summaries:
        st.markdown("**Best and final values**")
        number = st.column_config.NumberColumn(format="%.4g")
        st.dataframe(pd.concat(summaries, ignore_index=True), hide_index=True, width="stretch",
                     column_config={"final": number, "best": number})
else:
    st.info("These runs logged no metrics.")

st.subheader("Side by side")
st.dataframe(runs.compare_runs(table, chosen).astype(str), width="stretch")

for suffix, title, draw in (("confusion.csv", "Confusion matrix", charts.confusion_chart),
                            ("reliability.csv", "Reliability diagram", None)):
    found = {r: runs.csv_artifacts(client, r, suffix) for r in chosen}
    if not any(found.values()):
        continue
    st.subheader(f"{title} (from {suffix})")
    cols = st.columns(len(chosen))
    for col, run_id in zip(cols, chosen, strict=True):
        with col:
            st.markdown(f"**{run_label[run_id]}**")
            if not found[run_id]:
                st.info(f"No {suffix} in this run.")
                continue
            path = st.selectbox("Table", found[run_id], key=f"runs_{suffix}_{run_id}")
            frame = artifact_table(cfg.tracking_uri, run_id, path)
            if draw is not None:
                st.altair_chart(draw(frame), width="content")
            else:
                frame = frame.reset_index()
                model = "model" if "model" in frame else frame.columns[0]
                st.altair_chart(charts.reliability_chart(frame.rename(columns={model: "model"})),
                                width="stretch")

st.subheader("Figures")
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
