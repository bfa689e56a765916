"""Cohort: samples per cancer type and mutation burden per channel set, with filters."""

import streamlit as st

from nanog1.dashboard import cohort_tables
from nanog1.dashboard.ui import burden_table, chart, cohort_key, cohort_or_stop, current_config, open_sample
from nanog1.schema import CANCER_TYPE

st.title("Cohort")
cfg = current_config()
adata = cohort_or_stop(cfg)
table = burden_table(adata, cohort_key(cfg))
present = cohort_tables.sets_present(adata)
st.caption(f"{cfg.cohort} · {adata.n_obs:,} samples · measured: {', '.join(present) or 'none'}")

with st.expander("Filters", expanded=True):
    f1, f2, f3 = st.columns([3, 1, 1])
    all_types = sorted(table[CANCER_TYPE].unique())
    chosen = f1.multiselect("Cancer types (none = all)", all_types, key="cohort_types")
    min_sbs = f2.number_input("Min SBS96 burden", min_value=0, value=0, step=10, key="cohort_min_sbs")
    hide_empty = f3.toggle("Hide no-mutation samples", value=True, key="cohort_hide_empty",
                           disabled="no_mutations" not in table)

view = table
if chosen:
    view = view[view[CANCER_TYPE].isin(chosen)]
view = view[view["burden_SBS96"] >= min_sbs]
if hide_empty and "no_mutations" in view:
    view = view[~view["no_mutations"]]

a, b, c, d = st.columns(4)
dropped = len(table) - len(view)
a.metric("Samples shown", f"{len(view):,}", delta=f"-{dropped:,} filtered" if dropped else None,
         delta_color="off")
b.metric("Cancer types", view[CANCER_TYPE].nunique())
c.metric("Median SBS96 burden", f"{view['burden_SBS96'].median():,.0f}" if len(view) else "–")
d.metric("Unknown type", int((view[CANCER_TYPE] == "unknown").sum()))
if view.empty:
    st.warning("No sample passes the filters.")
    st.stop()

left, right = st.columns([1, 3])
with left:
    st.subheader("Samples per cancer type")
    chart("type_count_chart", cohort_tables.type_counts(view))
with right:
    st.subheader("Mutation burden per channel set")
    missing = [s for s in cohort_tables.SET_NAMES if s not in present]
    if missing:
        st.caption(f"Not measured in this cohort: {', '.join(missing)} (their columns are zeros).")
    panels = st.columns([1.5] + [1] * (len(present) - 1) if present else [1])
    types = sorted(view[CANCER_TYPE].unique())
    for i, (panel, name) in enumerate(zip(panels, present, strict=False)):
        boxes, outliers = cohort_tables.burden_boxes(view, name)
        with panel:
            if boxes.empty:
                st.info(f"{name}: no sample with mutations.")
                continue
            chart("burden_chart", boxes, outliers, name, types, show_types=i == 0)
            zeros = int((view[f"burden_{name}"] <= 0).sum())
            if zeros:
                st.caption(f"{zeros:,} sample(s) with 0 {name} mutations are not drawn on the log scale.")
    st.caption("Boxes: quartiles of log10 burden; whiskers: furthest sample within 1.5 IQR; dots: beyond.")

st.subheader("Samples")
st.caption("Select a row to open its Sample page.")
event = st.dataframe(view, hide_index=True, on_select="rerun", selection_mode="single-row",
                     key="cohort_table", width="stretch", height=320)
if event.selection.rows:
    open_sample(str(view.iloc[event.selection.rows[0]]["sample"]))
