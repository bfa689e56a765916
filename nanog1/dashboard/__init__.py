"""Data loading, projections and charts behind the Streamlit dashboard in `nanog1/dashboard/app/`.

Everything here except `ui` and `sample_panels` is free of Streamlit, so it can be tested and reused in
notebooks; `ui` holds the cached loaders and the shared sidebar that every page calls, `sample_panels`
draws one tumour for the Sample and Predict pages.

The public API (`__all__`, for notebooks and user code; the modules behind it may move):
tables on a cohort AnnData (`read_cohort_for_display`, `sets_present`, `cancer_types`, `burden_table`,
`type_counts`, `burden_boxes`, `set_counts`, `sample_spectrum`, `exposures`, `exposure_by_type`),
Altair charts of those tables (`spectrum_chart`, `type_count_chart`, `burden_chart`, `embedding_chart`,
`exposure_heatmap`, `metric_chart`) and `enable_offline_charts` (draws them in Jupyter without internet,
with the Vega libraries NanoG1 ships), the dashboard's Plotly map of samples (`map_figure`,
`selected_samples`), 2-D projections (`project`, `ProjectionConfig`) and the MLflow store
(`open_store`, `experiments`, `metric_history`). Imported on first use.
"""

from nanog1.exports import lazy_attributes

_API = {
    **dict.fromkeys(("read_cohort_for_display", "sets_present", "cancer_types", "burden_table", "type_counts",
                     "burden_boxes", "set_counts", "sample_spectrum", "exposures", "exposure_by_type"),
                    "nanog1.dashboard.cohort_tables"),
    **dict.fromkeys(("spectrum_chart", "type_count_chart", "burden_chart", "embedding_chart",
                     "exposure_heatmap", "metric_chart"), "nanog1.dashboard.charts"),
    "enable_offline_charts": "nanog1.dashboard.notebook_charts",
    **dict.fromkeys(("map_figure", "selected_samples"), "nanog1.dashboard.embedding_map"),
    **dict.fromkeys(("project", "ProjectionConfig"), "nanog1.dashboard.projection"),
    **dict.fromkeys(("open_store", "experiments", "metric_history"), "nanog1.dashboard.runs"),
}
__all__ = sorted(_API)

__getattr__ = lazy_attributes(__name__, _API)
