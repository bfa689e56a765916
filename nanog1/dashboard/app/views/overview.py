"""Home: what is loaded (cohort, provenance, MLflow store) and where to go next."""

import streamlit as st

from nanog1.dashboard import cohort_tables
from nanog1.dashboard.runs import StoreError
from nanog1.dashboard.ui import PAGES, burden_table, cohort_key, current_config, load_cohort, recent_runs
from nanog1.schema import CANCER_TYPE

#: Provenance records a cohort may carry in .uns, with their display names.
UNS_SECTIONS = (("nanog1", "Provenance"), ("signature_fit", "Signature fit"), ("nanog1_model", "Model"))

st.title("NanoG1 dashboard")
st.caption("Mutational catalogues, signatures, embeddings and training runs of a NanoG1 cohort.")
cfg = current_config()

left, right = st.columns(2)
with left:
    st.subheader("Cohort")
    st.code(str(cfg.cohort), language=None)
    try:
        adata = load_cohort(cfg)
    except cohort_tables.CohortError as exc:
        adata = None
        st.error(f"Cannot open the cohort. {exc}")
        st.info("Choose another file in the sidebar, or create the demo outputs with `make demo`.")
    if adata is not None:
        table = burden_table(adata, cohort_key(cfg))
        a, b = st.columns(2)
        a.metric("Samples", f"{adata.n_obs:,}")
        b.metric("Cancer types", table[CANCER_TYPE].nunique())
        fitted = [s for s in cohort_tables.SET_NAMES if f"exposures_{s}" in adata.obsm]
        st.markdown(
            f"- channel sets measured: **{', '.join(cohort_tables.sets_present(adata)) or 'none'}**\n"
            f"- signature exposures: **{', '.join(fitted) or 'not fitted'}**\n"
            f"- predictions: **{'yes' if 'predicted_type' in adata.obs else 'none'}**\n"
            f"- embeddings: **{'yes' if 'X_nanog1' in adata.obsm else 'none'}**"
        )
        for key, label in UNS_SECTIONS:
            if key in adata.uns:
                with st.expander(f"{label} (uns['{key}'])"):
                    st.dataframe(cohort_tables.provenance_table(adata.uns[key]), hide_index=True,
                                 width="stretch")
with right:
    st.subheader("Training runs")
    st.code(cfg.tracking_uri, language=None)
    try:
        latest = recent_runs(cfg.tracking_uri)
    except StoreError as exc:
        latest = None
        st.warning(f"Cannot open the MLflow store. {exc}")
    if latest is not None and latest.empty:
        st.info("No training runs in this store yet: train a model first (`nanog1 train`).")
    elif latest is not None:
        st.caption("Newest runs, with their final metrics:")
        st.dataframe(latest, hide_index=True, width="stretch")
    st.page_link(PAGES["runs"], label="Open the Runs page", icon=":material/monitoring:")

st.divider()
st.subheader("Pages")
cols = st.columns(3)
links = [("cohort", "Cohort: samples per type, burdens, filters"),
         ("sample", "Sample: spectra, exposures, prediction"),
         ("embeddings", "Embeddings: PCA / UMAP map of samples"),
         ("signatures", "Signatures: exposures by type, COSMIC reference"),
         ("runs", "Runs: MLflow metrics and confusion matrices"),
         ("models", "Text & vision models")]
for i, (page, label) in enumerate(links):
    cols[i % 3].page_link(PAGES[page], label=label)
