"""Overview: what a plant manager needs in one screen, plus exports and a shareable report."""

import streamlit as st

from core import labels
from core.charts.overview import alarms_history_figure, events_timeline
from core.share import dataset_overview, events_csv, model_story, report_files
from pages import ui

con = ui.workspace()
info = ui.sidebar(con)
st.title("Overview")
if info is None:
    st.info("No dataset yet. Load the demo plant or a file on the **Load data** page.")
    st.page_link("pages/data.py", label="Go to Load data", icon=":material/upload_file:")
    st.stop()

overview = dataset_overview(con, info)
if overview.run is None:
    st.info(
        f"No detection run on {ui.plain(info.name)} yet. Run a detector on the **Detect** page."
    )
    st.page_link("pages/detect.py", label="Go to Detect", icon=":material/radar:")
    st.stop()

st.caption(f"{ui.plain(info.name)} · {ui.plain(overview.run.label)}")
for column, (label, value) in zip(st.columns(len(overview.kpis)), overview.kpis, strict=True):
    column.metric(label, value)

st.subheader("Asset health")
st.dataframe(overview.assets, hide_index=True, width="stretch")
st.subheader("What the analysts' labels changed")
story = model_story(con, info)
if story is None:
    st.caption(
        "No model trained from labels yet: analysts review events on **Triage**, then retrain on "
        "**Learn**; every version is compared here with the first unsupervised run."
    )
else:
    for column, (label, value, change) in zip(st.columns(4), story.kpis(), strict=True):
        column.metric(label, value, delta=change, delta_color="inverse")
    st.plotly_chart(alarms_history_figure(story.history), key="overview_learning")
    st.caption(
        "Alarms a day: events of each model's run over the whole dataset (grey: the first "
        "unsupervised run; dark: the model in use). Held-out F1 (on hover): on labels the "
        "version never learned from."
    )
st.subheader("Events over time")
st.plotly_chart(events_timeline(overview.queue), key="overview_timeline")
st.subheader("Most severe open events")
if overview.top_open.empty:
    st.success("Every event of this run has been reviewed.")
else:
    st.dataframe(labels.queue_table(overview.top_open), hide_index=True, width="stretch")

st.subheader("Share")
events_col, labels_col, report_col = st.columns(3)
events_col.download_button(
    "Events with verdicts (CSV)",
    events_csv(overview),
    file_name=f"vigil-events-run{overview.run.id}.csv",
    mime="text/csv",
    icon=":material/table:",
)
labels_col.download_button(
    "Labels (CSV)",
    labels.export_labels(con, info.id, "csv"),
    file_name=f"vigil-labels-{info.id}.csv",
    mime="text/csv",
    icon=":material/label:",
)
report_key = (info.id, overview.run.id)
if report_col.button(
    "Prepare the report (PDF and HTML)",
    icon=":material/summarize:",
    help="Explains the most severe events and draws every chart: a few seconds the first time.",
):
    with report_col.status("Preparing the report…", expanded=True) as status:
        bar = st.progress(0.0)
        files = ui.guarded(
            lambda: report_files(con, info, ui.analyst_name(), progress=bar.progress)
        )
        status.update(
            label="Report ready" if files else "No report",
            state="complete" if files else "error",
            expanded=not files,  # a failure keeps its reason in view
        )
    if files:
        st.session_state[ui.OVERVIEW_REPORT] = (report_key, files)
prepared = st.session_state.get(ui.OVERVIEW_REPORT)
if prepared is not None and prepared[0] == report_key:
    for fmt, mime in (("pdf", "application/pdf"), ("html", "text/html")):
        report_col.download_button(
            f"Report ({fmt.upper()})",
            prepared[1][fmt],
            file_name=f"vigil-report-{info.id}.{fmt}",
            mime=mime,
            icon=":material/download:",
            on_click="ignore",
        )
