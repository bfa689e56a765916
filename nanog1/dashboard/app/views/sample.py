"""Sample: SBS96/DBS78/ID83 spectra in COSMIC colours and order, signature exposures, predicted type."""

import pandas as pd
import streamlit as st

from nanog1.dashboard import cohort_tables, sample_panels
from nanog1.dashboard.ui import cohort_or_stop, current_config, sample_picker, sync_sample_picker

st.title("Sample")
cfg = current_config()
adata = cohort_or_stop(cfg)
samples = adata.obs_names
wanted = st.query_params.get("sample")
if wanted and wanted not in samples:
    st.warning(f"Sample {wanted!r} is not in {cfg.cohort.name}; showing the first sample instead.")
sync_sample_picker(samples, wanted)
sample = sample_picker(samples, "sample_pick", help="The page URL (?sample=…) links to this sample.")
st.query_params["sample"] = st.session_state["sample_shown"] = sample

obs = adata.obs.loc[sample]
true_type = cohort_tables.cancer_types(adata).loc[sample]
has_prediction = "predicted_type" in adata.obs and pd.notna(obs["predicted_type"])
predicted = str(obs["predicted_type"]) if has_prediction else "–"
st.markdown(f"### {sample}\n**Cancer type:** {true_type} &nbsp;·&nbsp; **predicted:** {predicted}")
cols = st.columns(len(cohort_tables.SET_NAMES))
present = cohort_tables.sets_present(adata)
for col, name in zip(cols, cohort_tables.SET_NAMES, strict=True):
    burden = int(cohort_tables.sample_counts(adata, sample, name).sum())
    col.metric(f"{name} mutations", f"{burden:,}" if name in present else "not measured")
if "no_mutations" in adata.obs and bool(obs["no_mutations"]):
    st.warning("This sample is flagged `no_mutations`: its catalogue is empty.")
sample_panels.left_out(adata, sample)  # calls on contigs the FASTA lacks, as Predict says

st.subheader("Mutational spectra")
sample_panels.spectra(adata, sample, key="sample_scale")

sample_panels.fits(adata, sample)

left, right = st.columns(2)
with left:
    st.subheader("Signature exposures")
    sample_panels.exposures(adata, sample)
with right:
    st.subheader("Predicted cancer type")
    sample_panels.prediction(adata, sample, true_type)

with st.expander("Sample sheet"):
    st.dataframe(adata.obs.loc[[sample]].T.astype(str), width="stretch")
