"""NanoG1 dashboard entry script: shared sidebar, then the chosen page (started by `nanog1 app`).

Page scripts live in views/ beside it (not pages/, which Streamlit would also list as a second navigation).
"""

import streamlit as st

from nanog1.dashboard.ui import PAGES, sidebar_config

st.set_page_config(page_title="NanoG1", page_icon=":material/genetics:", layout="wide")

navigation = st.navigation(
    {
        "Cohorts": [
            st.Page(PAGES["overview"], title="Home", icon=":material/home:", url_path="home", default=True),
            st.Page(PAGES["cohort"], title="Cohort", icon=":material/bar_chart:", url_path="cohort"),
            st.Page(PAGES["sample"], title="Sample", icon=":material/science:", url_path="sample"),
            st.Page(PAGES["embeddings"], title="Embeddings", icon=":material/scatter_plot:",
                    url_path="embeddings"),
            st.Page(PAGES["signatures"], title="Signatures", icon=":material/stacked_bar_chart:",
                    url_path="signatures"),
        ],
        "Models": [
            st.Page(PAGES["predict"], title="Predict", icon=":material/online_prediction:",
                    url_path="predict"),
            st.Page(PAGES["runs"], title="Runs", icon=":material/monitoring:", url_path="runs"),
            st.Page(PAGES["models"], title="Text & vision", icon=":material/smart_toy:", url_path="models"),
        ],
    }
)
sidebar_config()
navigation.run()
