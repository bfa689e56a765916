"""Predict: type new tumours from a file (or a folder of them) on the server with a packaged model or a
trained MLflow run.

Reads only: the input is ingested into a temporary AnnData, a reference FASTA is read through a link in a
scratch folder, and a run's model is copied out of the store; nothing is written beside any of them.
"""

import tempfile
from dataclasses import replace
from pathlib import Path

import streamlit as st

from nanog1.dashboard import cohort_tables, predict_sources, sample_panels
from nanog1.dashboard.ui import current_config, store_client
from nanog1.encoder import predict_notes
from nanog1.encoder.abstention import offered_operating_points
from nanog1.encoder.input_filter import RULES
from nanog1.encoder.predictor import PredictOptions, load_predictor, prediction_table
from nanog1.encoder.prior_shift import ADAPT_PRIORS_HELP, load_record, mix_line
from nanog1.errors import UserError, describe
from nanog1.genomics.channels import NOT_MEASURED_HELP
from nanog1.genomics.skip_policy import (
    MAX_SKIP_DEFAULT,
    MAX_SKIP_HELP,
    ON_ERROR_CHOICES,
    ON_ERROR_DEFAULT,
    ON_ERROR_HELP,
)
from nanog1.schema import SET_GROUPS, parse_not_measured


@st.cache_resource(show_spinner="Loading model…", max_entries=4)
def packaged_model(name: str):
    """A packaged model, read once per server."""
    return load_predictor(name)


@st.cache_resource(show_spinner="Copying the run's model out of the store…", max_entries=4)
def run_model(uri: str, run_id: str, label: str):
    """A trained run's model (model.pt and calibration.json copied into a scratch folder), read once."""
    with tempfile.TemporaryDirectory(prefix="nanog1-app-model-") as tmp:
        folder = predict_sources.fetch_run_model(store_client(uri)[0], uri, run_id, Path(tmp))
        return replace(load_predictor(folder), name=label)


@st.cache_resource(max_entries=4)
def reference_scratch(path: str, size: int, mtime: float) -> tempfile.TemporaryDirectory:
    """A scratch folder per reference FASTA for its index and contig cache, kept while the server runs."""
    return tempfile.TemporaryDirectory(prefix="nanog1-app-reference-")


@st.cache_resource(show_spinner="Reading the input and predicting…", max_entries=8)
def predicted(model_key: tuple, input_key: tuple, reference_key: tuple | None, rule: str | None, point: str,
              not_measured: tuple[str, ...], reading: tuple[str, float], adapt_priors: bool, _model):
    """The inputs' tumours with their predictions (an in-memory AnnData), once per model, version of every
    input file, FILTER rule (None: the model's own), operating point, channel sets declared not measured,
    what to do with bad input (`reading`: on_error, max_skip_fraction) and whether the probabilities are
    adapted to the batch's type mix (`--adapt-priors`, through PredictOptions: the product's path)."""
    reference = Path(reference_key[0]) if reference_key else None
    scratch = Path(reference_scratch(*reference_key).name) if reference_key else None
    options = PredictOptions(filter=rule, operating_point=point, not_measured=not_measured,
                             adapt_priors=adapt_priors)
    paths = [Path(key[0]) for key in input_key]
    on_error, max_skip_fraction = reading
    return predict_sources.predict_inputs(_model, paths, reference, scratch, options, on_error,
                                          max_skip_fraction)


@st.cache_data(show_spinner=False, ttl=30)
def store_models(uri: str) -> tuple[list[predict_sources.ModelChoice], str | None]:
    """Runs of the store that logged a model, and why there are none when it cannot be read (30 s cache)."""
    client, problem = store_client(uri)
    if client is None:
        return [], problem
    try:
        return predict_sources.run_models(client), None
    except Exception as exc:  # a store that opened but cannot list its runs
        return [], f"cannot list the runs of {uri}: {type(exc).__name__}: {exc}"


@st.cache_data(show_spinner=False, ttl=30)
def files_found(roots: tuple[Path, ...]) -> tuple[list[Path], list[Path]]:
    """Input files and FASTAs under `roots`, listed again at most every 30 s."""
    return predict_sources.find_inputs(list(roots)), predict_sources.find_references(list(roots))


def _file_key(path: Path) -> tuple:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime


def _copy_found(source: str, target: str) -> None:
    picked = st.session_state.get(source)
    if picked:
        st.session_state[target] = picked


def pick_model(cfg) -> tuple[predict_sources.ModelChoice, str]:
    """The model chooser: packaged models, then runs of the session's MLflow store that logged a model."""
    runs, problem = store_models(cfg.tracking_uri)
    choices = predict_sources.packaged_models() + runs
    choice = st.selectbox("Model", choices, format_func=lambda c: c.label, key="predict_model",
                          help="Packaged models (`nanog1 models list`) and finished runs of the MLflow store "
                               "chosen in the sidebar that logged a model.")
    if problem:
        st.caption(f"Trained runs not listed: {problem}")
    return choice, cfg.tracking_uri


def load_choice(choice: predict_sources.ModelChoice, uri: str):
    """The chosen model, from the cache after its first use."""
    if choice.packaged is not None:
        return packaged_model(choice.packaged), ("packaged", choice.packaged)
    return run_model(uri, choice.run_id, choice.name), ("run", uri, choice.run_id)


def pick_input(cfg) -> tuple[str, str]:
    """Text boxes for the input file and the optional FASTA, each with the files found on the server."""
    roots = tuple(dict.fromkeys([Path.cwd() / "results", cfg.cohort.expanduser().parent]))
    found, fastas = files_found(roots)
    if found:
        st.selectbox(f"Input files found under {', '.join(map(str, roots))}", [""] + [str(p) for p in found],
                     key="predict_found", on_change=_copy_found, args=("predict_found", "predict_input"),
                     format_func=lambda p: p or "—", help="Pick one to fill in the path below.")
    text = st.text_input("Input file on the server", key="predict_input",
                         help="VCF/VCF.gz/BCF, MAF, catalogue matrix (SigProfiler layout) or a cohort "
                              ".h5ad; a folder: the input files directly in it, typed as one batch (as "
                              "`nanog1 predict folder/*`).")
    if fastas:
        st.selectbox("Reference FASTAs found", [""] + [str(p) for p in fastas], key="predict_found_ref",
                     on_change=_copy_found, args=("predict_found_ref", "predict_reference"),
                     format_func=lambda p: p or "—")
    reference = st.text_input("Reference FASTA (optional, VCF/BCF/MAF only)", key="predict_reference",
                              help="Without it a VCF gives SBS6, DBS78 and ID12 only (SBS96 and ID83 need "
                                   "the bases around each mutation).")
    return text, reference


def pick_filter(kinds: set[str]) -> str | None:
    """The FILTER rule chooser for VCF/BCF/MAF inputs (`nanog1 predict --filter`): the model's own rule
    (None) unless PASS or all is chosen; other inputs carry counts or were ingested with their own rule."""
    if not kinds & set(predict_sources.CALL_KINDS):
        return None
    names = {None: "the model's own rule", "PASS": "PASS only", "all": "all, PASS and non-PASS"}
    return st.radio("Calls to read (FILTER, as `nanog1 predict --filter`)", [None, *RULES],
                    key="predict_filter", horizontal=True, format_func=names.__getitem__,
                    help="Default: the rule the model was trained with (tcga-exome: all; a model stating "
                         "none: PASS). Another rule is applied and the mismatch stated with the results.")


def pick_reading() -> tuple[str, float]:
    """What to do with bad input (`nanog1 predict --on-error` and `--max-skip-fraction`: the same defaults
    and help, nanog1.genomics.skip_policy): stop at a bad line or file, or skip it and type the rest, and
    the largest share of its calls a file may lose."""
    names = {"stop": "stop at the first bad line or file",
             "skip": "skip bad lines and files, and type the rest"}
    left, right = st.columns(2)
    with left:
        on_error = st.radio("Bad input (as `nanog1 predict --on-error`)", ON_ERROR_CHOICES,
                            key="predict_on_error", index=ON_ERROR_CHOICES.index(ON_ERROR_DEFAULT),
                            format_func=names.__getitem__, help=ON_ERROR_HELP + ".")
    with right:
        limit = st.number_input(f"{predict_sources.SKIP_LIMIT_CONTROL} (as `nanog1 predict "
                                "--max-skip-fraction`)", min_value=0.0, max_value=1.0, value=MAX_SKIP_DEFAULT,
                                step=0.01, format="%.2f", key="predict_max_skip", help=MAX_SKIP_HELP + ".")
    return on_error, float(limit)


def pick_not_measured() -> tuple[str, ...]:
    """The channel sets the calls did not measure (`nanog1 predict --not-measured`), as groups of the sets
    of one kind of call (a set and its folded set go together, so the groups are every choice there is):
    the set names, in layout order (schema.parse_not_measured); UserError for all of them."""
    groups = st.multiselect("Not measured by the caller (as `nanog1 predict --not-measured`)",
                            list(SET_GROUPS), key="predict_not_measured",
                            format_func=lambda g: f"{g} ({'+'.join(SET_GROUPS[g])})",
                            placeholder="none: every kind of call was called", help=NOT_MEASURED_HELP + ".")
    return parse_not_measured(groups)


def _point_label(point: dict) -> str:
    """An operating point in plain words, with its threshold and what it gave on other studies' tumours."""
    measured = next(iter(point["transfer"].values()), None)
    gave = (f"; on other studies {float(measured['top1_accepted']):.2f} accuracy on "
            f"{float(measured['coverage']):.0%} of tumours" if measured else "")
    if point["name"] == "in-study":
        return (f"Tumour from a study like the model's training data (in-study, threshold "
                f"{point['threshold']:.3f}{gave})")
    return (f"Tumour from a new study/cohort: stricter, fewer tumours typed (new-study, threshold "
            f"{point['threshold']:.3f}{gave})")


def pick_operating_point(model) -> str:
    """The operating-point chooser (`nanog1 predict --operating-point`), shown only when the model's
    calibration offers more than one point (abstention.offered_operating_points); else 'in-study'."""
    points = {p["name"]: p for p in offered_operating_points(model.calibration, model.name)}
    if len(points) < 2:
        return "in-study"
    return st.radio("Where the tumours come from (abstention threshold, as `nanog1 predict "
                    "--operating-point`)", list(points), key="predict_point",
                    format_func=lambda name: _point_label(points[name]),
                    help="in-study: threshold fitted on the model's own validation tumours; on tumours of "
                         "other studies it accepts more at lower accuracy. new-study: threshold fitted on "
                         "tumours of studies the model was not trained on; with the batch's type mix "
                         "adapted (below), a model whose record has one uses a new-study threshold fitted "
                         "for adapted output instead.")


#: the Predict page's checkbox for `nanog1 predict --adapt-priors`
ADAPT_PRIORS_CONTROL = "Adapt to this batch's type mix (as `nanog1 predict --adapt-priors`)"


def pick_adapt_priors(model) -> bool:
    """The `nanog1 predict --adapt-priors` checkbox (its help in the command line's words), shown only when
    the model's calibration holds a prior-adaptation record (read by prior_shift.load_record, as predict
    reads it); a record that does not fit the model is said instead of the checkbox. Too small a batch is
    refused by predict itself, in its words, once the input's tumours are counted."""
    if model.calibration.get("prior_adaptation") is None:
        return False
    try:
        record = load_record(model.name, model.folder, model.calibration, list(model.saved["classes"]))
    except UserError as exc:
        st.caption(f"Adapting to the batch's type mix is not offered: {exc}")
        return False
    return st.checkbox(ADAPT_PRIORS_CONTROL, key="predict_adapt_priors",
                       help=f"{ADAPT_PRIORS_HELP}. This model: a batch of at least "
                            f"{int(record.get('min_tumours', 1))} tumours.")


def adapted_mix(adata) -> dict | None:
    """What `--adapt-priors` did in this run (uns['nanog1_predict']['prior_adaptation']); None: not asked."""
    done = adata.uns.get("nanog1_predict", {}).get("prior_adaptation") or {}
    return done if "estimated_type_mix" in done else None


def show_input(adata) -> None:
    """How the input's calls were read (counts, skips by reason, FILTER rule) and every warning of the run,
    worded as `nanog1 predict` words them (nanog1.encoder.predict_notes)."""
    st.markdown(f"**Input:** {predict_notes.reading_line(adata)}.")
    skips = predict_notes.skip_table(adata)
    if len(skips):
        st.caption("Calls skipped while reading, by reason")
        st.table(skips)
    unreadable = (predict_notes.call_counts(adata) or {}).get("unreadable_files", [])
    if unreadable:  # as predictions.json's calls.unreadable_files: which tumours went untyped
        listed = "\n".join(f"- `{path}`" for path in unreadable)
        st.warning(f"{len(unreadable)} file(s) could not be read and were skipped (unreadable_file); their "
                   f"tumours are not typed:\n{listed}", icon="⚠️")
    for notice in predict_notes.notices(adata):
        st.warning(notice.text[0].upper() + notice.text[1:], icon="⚠️")
    st.markdown(f"**Abstention:** {predict_notes.operating_point_line(adata)}.")
    done = adapted_mix(adata)
    if done is not None:  # as `nanog1 predict --adapt-priors` closes: the batch's estimated type mix
        st.markdown(f"**Type mix:** {mix_line(done)}.")


def show_result(adata, label: str, path: Path) -> None:
    """How the input (a file or a folder) was read and what to beware of, the summary table of every tumour,
    then one in full."""
    table = prediction_table(adata)
    st.success(f"{adata.n_obs} tumour(s) in {path.name}, predicted by {label}.")
    show_input(adata)
    st.dataframe(table[["predicted_type", "type_1", "p_1", "type_2", "p_2", "type_3", "p_3", "abstain",
                        "abstain_reason", "mutations", "channel_sets"]], width="stretch")
    adapted = " adapted to this batch's estimated type mix" if adapted_mix(adata) is not None else ""
    st.caption(f"type_k / p_k: the top 3 types with their calibrated probabilities{adapted}; research use "
               "only, not a diagnosis.")
    samples = list(adata.obs_names)
    sample = st.selectbox("Tumour", samples, key="predict_sample") if len(samples) > 1 else samples[0]
    st.markdown(f"### {sample}")
    known = cohort_tables.cancer_types(adata).loc[sample]
    left, right = st.columns(2)
    with left:
        st.subheader("Predicted cancer type")
        sample_panels.prediction(adata, sample, None if known == "unknown" else known, top=3)
        if "neighbours" in adata.obs:
            st.caption(f"Nearest reference tumours (embedding cosine): {adata.obs.loc[sample, 'neighbours']}")
    with right:
        st.subheader("Signature exposures")
        sample_panels.exposures(adata, sample)
        st.caption("COSMIC v3.4 exposures; interval: 95 % bootstrap range of the fitted mutations.")
    st.subheader("Mutational spectra")
    sample_panels.spectra(adata, sample, key="predict_scale")
    sample_panels.fits(adata, sample)


st.title("Predict")
st.caption("Type new tumours from a file (or a folder of them) on this server. Reads only: the input is "
           "ingested into memory, nothing is written beside it or into results/.")
cfg = current_config()
choice, uri = pick_model(cfg)
text, reference_text = pick_input(cfg)
try:
    path = Path(text.strip()).expanduser() if text.strip() else None
    paths = predict_sources.check_inputs(text) if path else []
    kinds = predict_sources.input_kinds(paths)
    reference = predict_sources.check_reference(reference_text, kinds) if path else None
except UserError as exc:
    st.error(f"Cannot use this input. {exc}")
    st.stop()
if path is None:
    st.info("Choose an input file above (or type its path), then press Predict.")
    st.stop()
rule = pick_filter(kinds)
reading = pick_reading()
try:
    declared = pick_not_measured()
except UserError as exc:
    st.error(f"Cannot use these sets. {exc}")
    st.stop()
try:
    model, model_key = load_choice(choice, uri)
except Exception as exc:  # shown in one line, as below
    st.error(f"Cannot load {choice.name}. {describe(exc) or f'{type(exc).__name__}: {exc}'}")
    st.stop()
point = pick_operating_point(model)
adapt = pick_adapt_priors(model)
keys = (tuple(map(_file_key, paths)), _file_key(reference) if reference else None, rule, point, declared,
        reading, adapt)
if st.button("Predict", type="primary"):
    st.session_state["predict_asked"] = (choice, *keys)
if st.session_state.get("predict_asked") != (choice, *keys):
    st.stop()
try:
    adata = predicted(model_key, *keys, model)
except Exception as exc:  # shown in one line: the researcher needs the file and the reason, not a traceback
    message = describe(exc) or f"{type(exc).__name__}: {exc}"
    st.error(f"Cannot predict {path.name} with {choice.name}. {message}")
    st.stop()
show_result(adata, choice.name, path)
