"""Sample: SBS96/DBS78/ID83 spectra in COSMIC colours and order, signature exposures, predicted type."""

import pandas as pd
import streamlit as st

from nanog1.dashboard import charts, cohort_tables, fit_view, prediction_view
from nanog1.dashboard.ui import cohort_or_stop, current_config, reference_signatures, sync_sample_picker
from nanog1.genomics.channels import DERIVED_FROM

st.title("Sample")
cfg = current_config()
adata = cohort_or_stop(cfg)
samples = list(adata.obs_names)
wanted = st.query_params.get("sample")
if wanted and wanted not in samples:
    st.warning(f"Sample {wanted!r} is not in {cfg.cohort.name}; showing the first sample instead.")
sync_sample_picker(samples, wanted)
sample = st.selectbox("Sample", samples, key="sample_pick",
                      help="Type to search; the page URL (?sample=…) links to this sample.")
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

st.subheader("Mutational spectra")
scale = st.radio("Scale", ["count", "fraction"], horizontal=True, key="sample_scale")
for name in cohort_tables.SET_NAMES:
    if DERIVED_FROM.get(name) in present:
        continue  # SBS6 / ID12 are folds of the SBS96 / ID83 spectra drawn here
    if name not in present:
        st.info(f"{name}: not measured in this cohort.")
        continue
    spectrum = cohort_tables.sample_spectrum(adata, sample, name)
    total = int(spectrum["count"].sum())
    st.altair_chart(charts.spectrum_chart(spectrum, name, value=scale, title=f"{name} · {total:,} mutations"),
                    width="stretch")

fit_meta = adata.uns.get("signature_fit", {})
fit_meta = fit_meta if isinstance(fit_meta, dict) else {}
for name in cohort_tables.SET_NAMES:
    expo = cohort_tables.exposures(adata, name)
    if expo is None or name not in present:
        continue
    counts = cohort_tables.sample_counts(adata, sample, name)
    try:
        reference = reference_signatures(name, str(fit_meta.get("cosmic_version", "3.4")),
                                         str(fit_meta.get("genome_build", "GRCh37")))
        frame = fit_view.reconstruction(counts, expo.loc[sample].astype(float), reference)
    except (KeyError, ValueError, OSError) as exc:
        st.info(f"{name}: cannot rebuild the fit from the COSMIC reference ({exc}).")
        continue
    similarity = fit_view.cosine(frame["sample"], frame["reconstruction"])
    for flag in fit_view.fit_flags(float(counts.sum()), similarity if counts.sum() > 0 else None):
        st.warning(f"{name}: {flag}.")
    with st.expander(f"{name} fit: sample vs reconstruction vs residual · cosine {similarity:.3f}",
                     expanded=name == "SBS96"):
        st.altair_chart(charts.fit_chart(frame, name, similarity), width="stretch")
        st.caption("Reconstruction: the fitted exposures times the COSMIC reference profiles "
                   f"(v{fit_meta.get('cosmic_version', '3.4')}, {fit_meta.get('genome_build', 'GRCh37')}); "
                   "residual: sample − reconstruction.")

left, right = st.columns(2)
with left:
    st.subheader("Signature exposures")
    fitted = False
    for name in cohort_tables.SET_NAMES:
        expo = cohort_tables.exposures(adata, name)
        if expo is None:
            continue
        fitted = True
        row = expo.loc[sample].astype(float)
        row = row[row > 0].sort_values(ascending=False)
        cosine = adata.obs.get(f"fit_cosine_{name}")
        note = f" · reconstruction cosine {float(cosine.loc[sample]):.3f}" if cosine is not None else ""
        st.markdown(f"**{name}**: {len(row)} active signature(s){note}")
        if len(row):
            frame = pd.DataFrame({"signature": row.index.astype(str), "mutations": row.to_numpy(),
                                  "share": row.to_numpy() / row.sum()})
            lo, hi = adata.obsm.get(f"exposures_{name}_lo"), adata.obsm.get(f"exposures_{name}_hi")
            if lo is not None and hi is not None:  # bootstrap intervals (nanog1 signatures fit --bootstrap)
                frame["interval"] = [f"{lo.loc[sample, s]:.0f} – {hi.loc[sample, s]:.0f}" for s in row.index]
                frame["presence"] = adata.obsm[f"exposures_{name}_presence"].loc[sample, row.index].to_numpy()
            low = adata.obs.get(f"fit_low_burden_{name}")
            if low is not None and bool(low.loc[sample]):
                st.warning(f"{name}: burden too low or fit unstable under resampling; read loosely.")
            st.dataframe(frame, hide_index=True, width="stretch",
                         column_config={"share": st.column_config.ProgressColumn(format="%.2f", min_value=0,
                                                                                  max_value=1)})
    if not fitted:
        st.info("No signature exposures in this cohort (obsm['exposures_*'] absent): run signature fitting.")
with right:
    st.subheader("Predicted cancer type")
    proba = cohort_tables.probabilities(adata, sample)
    if proba is None:
        st.info("No predictions in this cohort (obsm['proba_type'] absent): run evaluation.")
    else:
        why = prediction_view.explain(obs, proba,
                                      prediction_view.abstention_threshold(adata.uns.get("nanog1_model")))
        if why is not None:
            (st.warning if why.shown == prediction_view.UNCERTAIN else st.markdown)(why.sentence())
            if why.ood:
                st.caption("OOD: this tumour's profile is unlike every type the model was trained on.")
        st.altair_chart(charts.probability_chart(proba.head(10), true_type), width="stretch")
        st.caption("Top 10 calibrated type probabilities; red marks the sample's recorded type.")

with st.expander("Sample sheet"):
    st.dataframe(adata.obs.loc[[sample]].T.astype(str), width="stretch")
