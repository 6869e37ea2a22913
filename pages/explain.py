"""Explain: which sensors made an event score high, point by point, and what drives a whole run."""

import streamlit as st

from core import detect, explain
from core.charts import explain as charts
from pages import ui

LINK = "explain_event"  # other pages set (run_id, event_id) here, then st.switch_page(this page)
LEVELS = {"sensor": "Per sensor (its features summed)", "feature": "Per feature"}


def obtain(run_id: int, scope: str, compute, label: str) -> explain.Explanation | None:
    """The cached explanation, or compute it with a status box and a progress bar."""
    hit = ui.guarded(lambda: explain.cached_explanation(con, run_id, scope))
    if hit is not None:
        return hit
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0)
        expl = ui.guarded(lambda: compute(lambda f, m: bar.progress(f, text=m)))
        done = f"Explained in {expl.elapsed_s:.1f} s (cached from now on)" if expl else label
        status.update(label=done, state="complete" if expl else "error", expanded=not expl)
    return expl


def header(expl: explain.Explanation, title: str, k: int) -> str:
    """Top sensors, what the values mean, notes; returns the level picked."""
    st.markdown(f"**{title}:** {ui.plain(explain.top_sensors_text(expl, k=k))}")
    for note in expl.notes:
        st.warning(ui.plain(note), icon=":material/info:")
    st.caption(f"**{ui.plain(expl.quantity)}** · {ui.plain(expl.description)}")
    return st.radio(
        "Level", list(LEVELS), format_func=LEVELS.get, horizontal=True,
        label_visibility="collapsed", key="explain_level",
    )  # fmt: skip


def event_view(run_id: int) -> None:
    options = explain.event_options(detect.run_events(con, run_id))
    if not options:
        st.info("This run found no events. The **Whole run** tab still explains its scores.")
        return
    if st.session_state.get("explain_event_id") not in options:
        st.session_state.pop("explain_event_id", None)
    event_id = st.selectbox("Event", list(options), format_func=options.get, key="explain_event_id")
    compute = lambda p: explain.explain_event(con, run_id, event_id, progress=p)  # noqa: E731
    expl = obtain(run_id, explain.event_scope(event_id), compute, f"Explaining #{event_id}…")
    if expl is None:
        return
    level = header(expl, "Top sensors over the event", 3)
    left, right = st.columns([2, 3])
    labels = explain.point_labels(expl)
    point = left.select_slider(
        "Point", range(len(labels)), expl.peak, labels.__getitem__,
        key=f"explain_point_{run_id}_{event_id}",
    )  # fmt: skip
    left.plotly_chart(charts.contribution_figure(expl, point, level), key="explain_waterfall")
    left.markdown(explain.method_text(expl, point))
    if explain.members_text(expl, point):
        left.caption(explain.members_text(expl, point))
    right.plotly_chart(charts.heatmap_figure(expl, level), key="explain_heatmap")


def run_view(run_id: int) -> None:
    compute = lambda p: explain.explain_run(con, run_id, progress=p)  # noqa: E731
    expl = obtain(run_id, explain.RUN_SCOPE, compute, f"Explaining run #{run_id} on a sample…")
    if expl is not None:
        level = header(expl, "Sensors driving its alarms", 5)
        left, right = st.columns(2)
        left.plotly_chart(charts.importance_figure(expl, level), key="explain_importance")
        right.plotly_chart(charts.beeswarm_figure(expl, level), key="explain_swarm")


con = ui.workspace()
link = st.session_state.pop(LINK, None)
linked = ui.guarded(lambda: detect.get_run(con, int(link[0]))) if link is not None else None
if linked is not None:  # set before the widgets exist, so they show the linked run and event
    st.session_state["explain_run"], st.session_state["explain_event_id"] = map(int, link)
    ui.set_active_dataset(linked.dataset_id)
info = ui.sidebar(con)
st.title("Explain")
if info is None:
    st.info("No dataset yet. Load the demo plant or a file on the **Load data** page.")
    st.page_link("pages/data.py", label="Go to Load data", icon=":material/upload_file:")
    st.stop()
names = {r.id: r.label for r in detect.list_runs(con, info.id)}
if not names:
    st.info(
        f"No detection run on {ui.plain(info.name)} yet: run a detector, then explain its events."
    )
    st.page_link("pages/detect.py", label="Go to Detect", icon=":material/radar:")
    st.stop()
if st.session_state.get("explain_run") not in names:
    st.session_state.pop("explain_run", None)
run_id = st.selectbox("Run", list(names), format_func=names.get, key="explain_run")
event_tab, run_tab = st.tabs(["This event", "Whole run"], key="explain_tab", on_change="rerun")
if event_tab.open:
    with event_tab:
        event_view(run_id)
if run_tab.open:
    with run_tab:
        run_view(run_id)
