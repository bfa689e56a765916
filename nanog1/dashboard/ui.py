"""Streamlit glue shared by every page: the sources sidebar, cached loaders and clear error messages.

Loaders are keyed by path, size and modification time, so a rewritten file is reloaded and an
unchanged one is served from memory on every later visit. Failures become one `st.error` naming
the file, then the page stops: researchers see what is wrong, never a traceback.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import anndata as ad
import pandas as pd
import streamlit as st

from nanog1.dashboard import cohort_tables, runs
from nanog1.dashboard.cohort_tables import CohortError
from nanog1.dashboard.config import DashboardConfig, default_config, discovered_cohorts
from nanog1.dashboard.runs import StoreError

#: Page scripts (dashboard/app/views/), relative to dashboard/app/Home.py (the entry script), for links and
#: st.switch_page.
PAGES = {
    "overview": "views/overview.py",
    "cohort": "views/cohort.py",
    "sample": "views/sample.py",
    "embeddings": "views/embeddings.py",
    "signatures": "views/signatures.py",
    "runs": "views/runs.py",
    "models": "views/models.py",
    "predict": "views/predict.py",
}


def _use_found_cohort() -> None:
    """Sidebar callback: copy the picked results/ cohort (and its sibling MLflow store) into the inputs."""
    picked = st.session_state.get("src_found")
    if picked:
        st.session_state["src_cohort"] = picked
        db = Path(picked).parent / "mlflow.db"
        if db.is_file():
            st.session_state["src_mlflow"] = f"sqlite:///{db}"


def sidebar_config() -> DashboardConfig:
    """Draw the data-source chooser in the sidebar and return this session's sources."""
    base = default_config()
    with st.sidebar:
        st.subheader("Data sources")
        found = discovered_cohorts()
        if found:
            st.selectbox("Cohorts under results/", [""] + found, key="src_found", on_change=_use_found_cohort,
                         format_func=lambda p: f"{Path(p).parent.name}/{Path(p).name}" if p else "—",
                         help="Pick one to fill in the cohort and its pipeline's MLflow store.")
        # A link or reload carries the session's sources in the URL (?cohort=…&store=…).
        st.session_state.setdefault("src_cohort", st.query_params.get("cohort") or str(base.cohort))
        st.session_state.setdefault("src_mlflow", st.query_params.get("store") or base.tracking_uri)
        cohort = st.text_input("Cohort (.h5ad)", key="src_cohort",
                               help="A NanoG1 cohort; default: $NANOG1_COHORT or results/demo/cohort.h5ad")
        uri = st.text_input("MLflow tracking URI", key="src_mlflow",
                            help="e.g. sqlite:///results/demo/mlflow.db; default: $MLFLOW_TRACKING_URI")
        st.caption("Read-only: the dashboard never writes to these.")
    cfg = replace(base, cohort=Path(cohort.strip()).expanduser(), tracking_uri=uri.strip())
    st.session_state["nanog1_config"] = cfg
    _sources_to_url(cfg, base)
    return cfg


def _sources_to_url(cfg: DashboardConfig, base: DashboardConfig) -> None:
    """Put sources that differ from the launch defaults in the URL; drop those that do not."""
    for key, value, default in (("cohort", str(cfg.cohort), str(base.cohort)),
                                ("store", cfg.tracking_uri, base.tracking_uri)):
        if value != default:
            st.query_params[key] = value
        elif key in st.query_params:
            del st.query_params[key]


def current_config() -> DashboardConfig:
    """The sources chosen in the sidebar this run (defaults when a page runs on its own)."""
    return st.session_state.get("nanog1_config") or default_config()


def _file_key(path: Path) -> tuple[str, int, float]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime


@st.cache_resource(show_spinner="Loading cohort…", max_entries=4)
def _cohort(path: str, size: int, mtime: float) -> ad.AnnData:
    return cohort_tables.read_cohort_for_display(path)


def load_cohort(cfg: DashboardConfig) -> ad.AnnData:
    """The session's cohort, loaded once per file version; CohortError when missing or broken."""
    if not cfg.cohort.is_file():
        raise CohortError(f"cohort file not found: {cfg.cohort}")
    return _cohort(*_file_key(cfg.cohort))


def cohort_or_stop(cfg: DashboardConfig) -> ad.AnnData:
    """The session's cohort; on failure shows st.error and stops the page."""
    try:
        return load_cohort(cfg)
    except CohortError as exc:
        st.error(f"Cannot open the cohort. {exc}")
        st.info("Choose another file in the sidebar, or create the demo outputs with `make demo`.")
        st.stop()


@st.cache_data(show_spinner=False, max_entries=8)
def burden_table(_adata: ad.AnnData, key: tuple[str, int, float]) -> pd.DataFrame:
    """Cached per-sample burden table of a cohort (see cohort_tables.burden_table)."""
    return cohort_tables.burden_table(_adata)


def cohort_key(cfg: DashboardConfig) -> tuple[str, int, float]:
    """Cache key of the session's cohort file version."""
    return _file_key(cfg.cohort)


@st.cache_resource(show_spinner="Opening MLflow store…", max_entries=4)
def _client(uri: str):
    return runs.open_store(uri)


def store_client(uri: str):
    """(MLflow client on `uri`, None) or (None, why it cannot be opened): for pages that work without one."""
    try:
        return _client(uri), None
    except StoreError as exc:
        return None, str(exc)


def client_or_stop(cfg: DashboardConfig):
    """An MLflow client on the session's store; shows st.error and stops the page on failure."""
    try:
        return _client(cfg.tracking_uri)
    except StoreError as exc:
        st.error(f"Cannot open the MLflow store. {exc}")
        st.info("Choose another tracking URI in the sidebar, or create the demo outputs with `make demo`.")
        st.stop()


@st.cache_data(show_spinner=False, ttl=30)
def runs_table(uri: str, experiment_id: str) -> pd.DataFrame:
    """Runs of one experiment, refreshed at most every 30 s."""
    return runs.runs_table(_client(uri), experiment_id)


@st.cache_data(show_spinner=False, ttl=30)
def recent_runs(uri: str) -> pd.DataFrame:
    """The store's newest runs with their final metrics, refreshed at most every 30 s."""
    return runs.recent_runs(_client(uri))


@st.cache_data(show_spinner=False, ttl=30)
def metric_history(uri: str, run_labels: dict[str, str], metric: str) -> pd.DataFrame:
    """Metric history of the chosen runs, refreshed at most every 30 s."""
    return runs.metric_history(_client(uri), run_labels, metric)


@st.cache_data(show_spinner=False, ttl=300)
def artifact_bytes(uri: str, run_id: str, artifact_path: str) -> bytes:
    """The bytes of one run artifact (copied through a scratch folder, never written back)."""
    with tempfile.TemporaryDirectory(prefix="nanog1-app-") as tmp:
        return runs.fetch_artifact(uri, run_id, artifact_path, Path(tmp)).read_bytes()


@st.cache_data(show_spinner="Reading reference signatures…", max_entries=8)
def reference_signatures(channel_set: str, cosmic_version: str, genome_build: str) -> pd.DataFrame:
    """The COSMIC table (channels × signatures) a cohort was fitted with, read once per server."""
    from nanog1.genomics.signatures import load_reference

    return load_reference(channel_set=channel_set, cosmic_version=cosmic_version, genome_build=genome_build)


@st.cache_data(show_spinner=False, ttl=300)
def artifact_table(uri: str, run_id: str, artifact_path: str) -> pd.DataFrame:
    """A CSV artifact of a run as a DataFrame (first column as index when it is unnamed or 'true')."""
    import io

    frame = pd.read_csv(io.BytesIO(artifact_bytes(uri, run_id, artifact_path)))
    first = frame.columns[0]
    if first.startswith("Unnamed") or first == "true":
        frame = frame.set_index(first)
        frame.index.name = "true" if first == "true" else None
    return frame


@st.cache_data(show_spinner=False, max_entries=512)
def _vega_spec(build: str, args: tuple, kwargs: dict) -> dict:
    from nanog1.dashboard import charts

    return getattr(charts, build)(*args, **kwargs).to_dict()


def chart(build: str, *args, where=None, width: str = "stretch", **kwargs) -> None:
    """Draw `charts.<build>(*args, **kwargs)` in `where` (default: here), its Vega-Lite spec cached per
    arguments: Altair spends 0.1–0.3 s building and validating each chart, on every rerun otherwise.
    Spectra fill a template built once per layout (`charts.spectrum_spec`): new samples are quick too."""
    from nanog1.dashboard import charts

    if build == "spectrum_chart":
        spec = charts.spectrum_spec(*args, **kwargs)
    else:
        spec = _vega_spec(build, args, kwargs)
    (where or st).vega_lite_chart(spec, width=width)


def open_sample(sample: str) -> None:
    """Switch to the Sample page showing `sample`."""
    st.switch_page(PAGES["sample"], query_params={"sample": sample})


def sync_sample_picker(samples: pd.Index, wanted: str | None) -> None:
    """Point the Sample page's picker (key `sample_pick`) at `?sample=` when the URL changed from outside.

    The picker keeps one key, so every choice sticks; only a link, a reload or another page's
    `open_sample` (a `?sample=` that differs from what the page last showed) moves it.
    """
    state = st.session_state
    if wanted in samples and (wanted != state.get("sample_shown") or "sample_pick" not in state):
        state["sample_pick"] = wanted
    elif state.get("sample_pick") not in samples:  # first visit, another cohort, or back from a page
        shown = state.get("sample_shown")
        state["sample_pick"] = shown if shown in samples else samples[0]


def _pick_exact_name(key: str, names: pd.Index) -> None:
    """Search-box callback: a typed full sample name is chosen at once (no second click)."""
    query = st.session_state.get(f"{key}_query", "").strip()
    if query in names:
        st.session_state[key] = query


def sample_picker(names: pd.Index, key: str, label: str = "Sample", search_label: str = "Search samples",
                  optional: bool = False, help: str | None = None) -> str | None:
    """A search box and a picker over the names it matches: scales to any cohort size.

    The picker (session key `key`) lists at most `cohort_tables.PICKER_LIMIT` names containing the
    search text, always with the current choice; a full name typed in the search box is picked at
    once. `optional` starts with nothing chosen (returns None until a choice).
    """
    search, pick = st.columns(2)
    query = search.text_input(search_label, key=f"{key}_query", placeholder="part of a name, then Enter",
                              on_change=_pick_exact_name, args=(key, names))
    options, total = cohort_tables.sample_matches(names, query)
    current = st.session_state.get(key)
    if current is not None and current not in options and current in names:
        options = [current] + options
    if query.strip() and not total:
        search.caption(f"No sample name contains {query.strip()!r}.")
    elif query.strip() and total > len(options):
        search.caption(f"{total:,} names match; the first {cohort_tables.PICKER_LIMIT} are listed: "
                       "type more of a name to narrow them.")
    return pick.selectbox(label, options, key=key, index=None if optional else 0, help=help,
                        placeholder="choose a sample" if optional else None)
