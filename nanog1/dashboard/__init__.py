"""Data loading, projections and charts behind the Streamlit dashboard in `nanog1/dashboard/app/`.

Everything here except `ui` is free of Streamlit, so it can be tested and reused in notebooks;
`ui` holds the cached loaders and the shared sidebar that every page calls.
"""
