"""Signatures: fitted exposures by cancer type (heatmap, stacked bars) and the COSMIC reference viewer."""

import pandas as pd
import streamlit as st

from nanog1.dashboard import cohort_tables
from nanog1.dashboard.ui import chart, cohort_or_stop, current_config

_SET_OF_FILE = {"_SBS_": "SBS96", "_DBS_": "DBS78", "_ID_": "ID83"}


@st.cache_data(show_spinner="Reading reference signatures…")
def reference_table(name: str) -> tuple[str, pd.DataFrame]:
    """(channel set, channels × signatures) of one COSMIC table shipped with SigProfilerAssignment."""
    from nanog1.genomics.signatures import read_signatures, reference_dir

    channel_set = next(s for frag, s in _SET_OF_FILE.items() if frag in name)
    path = next(reference_dir().glob(f"*/{name}"))
    return channel_set, read_signatures(path, channel_set)


def default_reference(names: list[str], fit: dict) -> int:
    """Index of the table matching the cohort's fit provenance (COSMIC version, build), else v3.4 GRCh37."""
    version, build = fit.get("cosmic_version", "3.4"), fit.get("genome_build", "GRCh37")
    wanted = f"COSMIC_v{version}_SBS_{build}.txt"
    return names.index(wanted) if wanted in names else 0


st.title("Signatures")
cfg = current_config()
adata = cohort_or_stop(cfg)
fit = adata.uns.get("signature_fit", {})
fit = fit if isinstance(fit, dict) else {}

st.subheader("Exposures by cancer type")
fitted = [s for s in cohort_tables.SET_NAMES if cohort_tables.exposures(adata, s) is not None]
if not fitted:
    st.info("No signature exposures in this cohort (obsm['exposures_*'] absent): run signature fitting.")
else:
    if fit:
        st.caption("Fit: " + ", ".join(f"{k} = {v}" for k, v in fit.items() if not isinstance(v, dict)))
    c1, c2, c3 = st.columns(3)
    channel_set = c1.selectbox("Channel set", fitted, key="sig_set")
    relative = c2.toggle("Per-sample fractions", value=True, key="sig_relative",
                         help="Average each sample's signature shares: high-burden samples do not dominate.")
    view = c3.radio("View", ["heatmap", "stacked bars"], horizontal=True, key="sig_view")
    expo = cohort_tables.exposures(adata, channel_set)
    long = cohort_tables.exposure_by_type(expo, cohort_tables.cancer_types(adata), relative)
    active = long.groupby("signature")["value"].max()
    long = long[long["signature"].isin(active[active > 0].index)]
    if view == "heatmap":
        chart("exposure_heatmap", long, relative)
    else:
        chart("exposure_stack", long)
    st.caption(f"{long['signature'].nunique()} of {expo.shape[1]} signatures are active in some type.")
    cosine = adata.obs.get(f"fit_cosine_{channel_set}")
    if cosine is not None:
        by_type = cosine.groupby(cohort_tables.cancer_types(adata).to_numpy()).median()
        st.dataframe(by_type.rename("median reconstruction cosine").to_frame().T, width="stretch")

st.divider()
st.subheader("Reference signature viewer")
try:
    from nanog1.genomics.signatures import list_references

    names = [n for n in list_references() if "_exome" not in n]
except (ImportError, OSError) as exc:
    st.info(f"Reference signatures are unavailable in this installation ({exc}).")
    st.stop()
r1, r2 = st.columns([2, 1])
table_name = r1.selectbox("COSMIC table", names, index=default_reference(names, fit), key="sig_table")
try:
    ref_set, reference = reference_table(table_name)
except (ValueError, OSError, StopIteration) as exc:
    st.error(f"Cannot read {table_name}: {exc}")
    st.stop()
signature = r2.selectbox("Signature", list(reference.columns), key="sig_name")
profile = pd.DataFrame({"channel": reference.index.astype(str), "fraction": reference[signature].to_numpy()})
profile["count"] = profile["fraction"]
chart("spectrum_chart", profile, ref_set, value="fraction", title=f"{signature} · {table_name}")
st.caption("COSMIC reference signatures (Alexandrov et al. 2020), as shipped with SigProfilerAssignment.")
