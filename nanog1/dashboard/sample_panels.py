"""One tumour drawn the same way wherever the dashboard shows it (the Sample and Predict pages).

Spectra in COSMIC colours and order, the signature fit (sample vs reconstruction vs residual, flags),
signature exposures with their bootstrap intervals, and the predicted type explained against the
abstention rule, each read from a cohort AnnData.
"""

from __future__ import annotations

import anndata as ad
import pandas as pd
import streamlit as st

from nanog1.dashboard import cohort_tables, fit_view, prediction_view
from nanog1.dashboard.ui import chart
from nanog1.genomics.channels import DERIVED_FROM


def spectra(adata: ad.AnnData, sample: str, key: str) -> None:
    """The sample's measured spectra (SBS6 / ID12 only where SBS96 / ID83 are absent), count or fraction."""
    scale = st.radio("Scale", ["count", "fraction"], horizontal=True, key=key)
    present = cohort_tables.sets_present(adata)
    for name in cohort_tables.SET_NAMES:
        if DERIVED_FROM.get(name) in present:
            continue  # SBS6 / ID12 are folds of the SBS96 / ID83 spectra drawn here
        if name not in present:
            st.info(f"{name}: not measured in this cohort.")
            continue
        spectrum = cohort_tables.sample_spectrum(adata, sample, name)
        total = int(spectrum["count"].sum())
        title = f"{name} · {total:,} mutations"
        chart("spectrum_chart", spectrum, name, value=scale, title=title)


def left_out_sentence(adata: ad.AnnData, sample: str) -> str:
    """'3 call(s) on MT, GL000220.1 left out of SBS96 (0.99 % of its 303 substitutions, within the 1 %
    tolerance; their SBS6 class is counted).': the calls of this tumour on contigs the reference FASTA lacks,
    too few to cost it SBS96/ID83, in the words of the Predict page's Input line and `nanog1 predict`
    (predict_notes.left_out_phrase on uns['nanog1']['left_out_of_context']), so that an exact-looking SBS96
    does not hide them; '' for a tumour without such calls."""
    from nanog1.encoder.predict_notes import left_out_phrase

    phrase = left_out_phrase(adata, sample)
    return f"{phrase}." if phrase else ""


def left_out(adata: ad.AnnData, sample: str) -> None:
    """The tumour's calls left out of SBS96/ID83 for lack of their contig in the FASTA (`left_out_sentence`),
    shown only where it has some."""
    sentence = left_out_sentence(adata, sample)
    if sentence:
        st.info(sentence)


def exposures(adata: ad.AnnData, sample: str) -> None:
    """Active signatures of each fitted set: mutations, share and, when bootstrapped, the 95 % interval."""
    fitted = False
    for name in cohort_tables.SET_NAMES:
        expo = cohort_tables.exposures(adata, name)
        if expo is None:
            continue
        fitted = True
        row = expo.loc[sample].astype(float)
        if row.isna().all():  # `predict` fits a set per tumour; NaN: this tumour did not measure it
            st.markdown(f"**{name}**: not measured for this tumour (no exposures fitted, none read as zero)")
            continue
        row = row[row > 0].sort_values(ascending=False)
        cosine = adata.obs.get(f"fit_cosine_{name}")
        note = f" · reconstruction cosine {float(cosine.loc[sample]):.3f}" if cosine is not None else ""
        st.markdown(f"**{name}**: {len(row)} active signature(s){note}")
        if len(row):
            low = adata.obs.get(f"fit_low_burden_{name}")
            if low is not None and bool(low.loc[sample]):
                st.warning(f"{name}: burden too low or fit unstable under resampling; read loosely.")
            st.dataframe(_exposure_frame(adata, sample, name, row), hide_index=True, width="stretch",
                         column_config={"share": st.column_config.ProgressColumn(format="%.2f", min_value=0,
                                                                                  max_value=1)})
    if not fitted:
        st.info("No signature exposures in this cohort (obsm['exposures_*'] absent): run signature fitting.")


def _exposure_frame(adata: ad.AnnData, sample: str, name: str, row: pd.Series) -> pd.DataFrame:
    frame = pd.DataFrame({"signature": row.index.astype(str), "mutations": row.to_numpy(),
                          "share": row.to_numpy() / row.sum()})
    lo, hi = adata.obsm.get(f"exposures_{name}_lo"), adata.obsm.get(f"exposures_{name}_hi")
    if lo is not None and hi is not None:  # bootstrap intervals (`signatures fit --bootstrap`, `predict`)
        frame["interval"] = [f"{lo.loc[sample, s]:.0f} – {hi.loc[sample, s]:.0f}" for s in row.index]
        presence = adata.obsm.get(f"exposures_{name}_presence")
        if presence is not None:
            frame["presence"] = presence.loc[sample, row.index].to_numpy()
    return frame


def prediction(adata: ad.AnnData, sample: str, true_type: str | None, top: int = 10) -> None:
    """The call with its calibrated confidence against the abstention threshold (and why it abstained),
    then the `top` calibrated type probabilities."""
    proba = cohort_tables.probabilities(adata, sample)
    if proba is None:
        st.info("No predictions in this cohort (obsm['proba_type'] absent): run evaluation.")
        return
    obs = adata.obs.loc[sample]
    why = prediction_view.explain(obs, proba, prediction_view.tumour_threshold(obs, adata.uns))
    if why is not None:
        (st.warning if why.shown == prediction_view.UNCERTAIN else st.markdown)(why.sentence())
        if why.ood:
            st.caption("OOD: this tumour's profile is unlike every type the model was trained on.")
    chart("probability_chart", proba.head(top), true_type)
    st.caption(f"Top {top} calibrated type probabilities" + ("; red marks the sample's recorded type."
                                                               if true_type else "."))


def fits(adata: ad.AnnData, sample: str) -> None:
    """Per fitted set: sample vs reconstruction vs residual with the cosine; low-burden and poor-fit flags."""
    from nanog1.dashboard.ui import reference_signatures

    fit_meta = adata.uns.get("signature_fit", {})
    fit_meta = fit_meta if isinstance(fit_meta, dict) else {}
    version, build = str(fit_meta.get("cosmic_version", "3.4")), str(fit_meta.get("genome_build", "GRCh37"))
    present = cohort_tables.sets_present(adata)
    for name in cohort_tables.SET_NAMES:
        expo = cohort_tables.exposures(adata, name)
        if expo is None or name not in present:
            continue
        counts = cohort_tables.sample_counts(adata, sample, name)
        try:
            reference = reference_signatures(name, version, build)
            frame = fit_view.reconstruction(counts, expo.loc[sample].astype(float), reference)
        except (KeyError, ValueError, OSError) as exc:
            st.info(f"{name}: cannot rebuild the fit from the COSMIC reference ({exc}).")
            continue
        similarity = fit_view.cosine(frame["sample"], frame["reconstruction"])
        for flag in fit_view.fit_flags(float(counts.sum()), similarity if counts.sum() > 0 else None):
            st.warning(f"{name}: {flag}.")
        with st.expander(f"{name} fit: sample vs reconstruction vs residual · cosine {similarity:.3f}",
                         expanded=name == "SBS96"):
            chart("fit_chart", frame, name, similarity)
            st.caption("Reconstruction: the fitted exposures times the COSMIC reference profiles "
                       f"(v{version}, {build}); residual: sample − reconstruction.")
