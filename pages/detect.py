"""Detect: run a detector on the active dataset, see its score and events, compare runs."""

import streamlit as st

from core import detect
from core.charts.detection import comparison_figure, detection_figure, events_table
from pages import ui


def param_widget(detector: str, p: detect.ParamOption):
    """A widget whose range is the parameter's declared limits (an empty default stays empty)."""
    kw = {"key": f"detect_{detector}_{p.name}", "help": p.help or None}
    if p.kind == "choice":
        return st.selectbox(p.label, p.choices, index=p.choices.index(p.default), **kw)
    return st.number_input(p.label, placeholder=p.placeholder, **p.number_args(), **kw)


def training_widget(info) -> detect.TrainingWindow:
    kinds = detect.TRAINING_LABELS
    kind = st.selectbox("Training window", list(kinds), format_func=kinds.get, key="detect_window")
    if kind == "first_fraction":
        share = st.slider(
            "Share of each asset taken as normal", 5, 95, 30, 5, format="%d%%", key="detect_share"
        )
        value = share / 100
    elif kind == "first_rows":
        value = st.number_input(
            "Rows per asset", detect.MIN_TRAINING_ROWS, None, 1000, 100, key="detect_rows"
        )
    elif kind == "until":
        value = st.datetime_input(
            "Train until", detect.default_until(info), info.time_start, info.time_end
        )
    else:
        others = detect.reference_options(ui.datasets(con), info)
        value = st.selectbox("Reference dataset", list(others), format_func=others.get)
    return detect.TrainingWindow(kind, value)


con = ui.workspace()
info = ui.sidebar(con)
st.title("Detect")
if info is None:
    st.info("No dataset yet. Load the demo plant or a file on the **Load data** page.")
    st.page_link("pages/data.py", label="Go to Load data", icon=":material/upload_file:")
    st.stop()

past = detect.list_runs(con, info.id)
options = {d.name: d for d in detect.detector_options()}
with st.expander(f"New run on {ui.plain(info.name)}", expanded=not past, icon=":material/tune:"):
    left, middle, right = st.columns(3)
    assets = left.multiselect(  # keyed by dataset: another dataset's assets are not options
        "Assets", info.assets, default=info.assets, key=f"detect_assets_{info.id}"
    )
    name = left.selectbox(
        "Detector", list(options), format_func=lambda n: options[n].label, key="detect_detector"
    )
    left.caption(options[name].description)
    with middle:
        params = {p.name: param_widget(name, p) for p in options[name].params}
    with right:
        window = training_widget(info)
        quantile = param_widget("all", detect.threshold_option())
    if st.button("Run detector", type="primary", icon=":material/play_arrow:", key="detect_go"):
        config = detect.RunConfig(info.id, assets, name, params, window, quantile)
        with st.status("Running the detector…", expanded=True) as status:
            bar = st.progress(0.0)
            done = ui.guarded(
                lambda: detect.execute_run(con, config, lambda f, m: bar.progress(f, m))
            )
            state = "complete" if done else "error"
            status.update(label=ui.plain(detect.run_outcome(done)), state=state, expanded=not done)
        if done:
            st.session_state["detect_run"] = done.id
            past = detect.list_runs(con, info.id)

if not past:
    st.info("No runs yet on this dataset: choose the settings above and press **Run detector**.")
    st.stop()
labels = {r.id: r.label for r in past}
if st.session_state.get("detect_run") not in labels:
    st.session_state["detect_run"] = past[0].id
left, middle, right = st.columns([2, 1, 2])
run_id = left.selectbox("Run", list(labels), format_func=labels.get, key="detect_run")
run = next(r for r in past if r.id == run_id)
asset = middle.selectbox("Asset", run.assets, key=f"detect_asset_{run_id}")
sensors = right.multiselect(
    "Sensors", info.sensors, key="detect_sensors", placeholder="those events blame most"
)
st.caption(detect.describe_run(run))
coverage = st.session_state.setdefault(f"detect_coverage_{run_id}", None)
if coverage is None:  # once per run and session: it reads the run's readings
    coverage = ui.guarded(lambda: detect.coverage_warning(detect.run_coverage(con, run_id))) or ""
    st.session_state[f"detect_coverage_{run_id}"] = coverage
if coverage:
    st.warning(ui.plain(coverage), icon=":material/explore_off:")
with st.popover(f"Delete run #{run_id}", icon=":material/delete:"):
    st.write("Its scores and events go too. This cannot be undone.")
    if st.button("Delete", type="primary", key="detect_delete") and ui.guarded(
        lambda: detect.delete_run(con, run_id)
    ):
        st.rerun()
metrics = detect.headline_metrics(run)
for column, (label, value) in zip(st.columns(len(metrics) or 1), metrics, strict=False):
    column.metric(label, value, help=detect.METRIC_HELP.get(label))
if not metrics:
    st.caption("No ground truth for this dataset, so no metrics to show.")

view = detect.run_view(con, run_id, asset, sensors or None)
st.plotly_chart(detection_figure(view), key="detect_chart")
st.caption(
    "Score 1 is the alarm line. Orange: events · grey: machine off · yellow: a new operating mode "
    "(only scores past 10 alarm there) · red outline: known faults."
)
st.subheader(f"Events ({run.n_events}, most severe first)")
events = events_table(detect.run_events(con, run_id))
if events.empty:
    st.info("This run flagged no events: try a lower threshold quantile or another detector.")
else:
    st.dataframe(events, hide_index=True, height=min(36 + 35 * len(events), 320))

st.subheader("Compare runs")
chosen = st.multiselect(  # keyed by the newest run: a new run starts a fresh comparison
    "Runs",
    list(labels),
    list(labels)[:2],
    format_func=labels.get,
    key=f"detect_compare_{past[0].id}",
)
if chosen:
    table = detect.compare_runs(con, chosen)
    st.dataframe(table, hide_index=True)
    if any(r.evaluation for r in past if r.id in chosen):
        st.plotly_chart(comparison_figure(table), key="detect_compare_chart")
