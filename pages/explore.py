"""Explore: the dataset's summary and quality report, sensor plots with zoom, correlations."""

import streamlit as st

from core import ingest, store
from core.charts.explorer import correlation_figure, sensor_figure
from pages import ui

con = ui.workspace()
info = ui.sidebar(con)
st.title("Explore")
if info is None:
    st.info("No dataset yet. Load the demo plant or a file on the **Load data** page.")
    st.page_link("pages/data.py", label="Go to Load data", icon=":material/upload_file:")
    st.stop()

st.caption(
    f"{ui.plain(info.name)} · from {ui.plain(info.source_file)} · {ingest.time_range_text(info)}"
)
for column, (label, value) in zip(st.columns(5), ingest.summary_items(info), strict=True):
    column.metric(label, value)

left, right = st.columns([1, 3])
asset = left.selectbox("Asset", info.assets, key="explore_asset")
sensors = right.multiselect(
    "Sensors",
    info.sensors,
    default=info.sensors[: min(4, len(info.sensors))],
    key=f"explore_sensors_{info.id}",  # by dataset: another one's sensors are not options
)
start, end = info.time_start, info.time_end
if start is not None and end is not None and start < end:
    start, end = st.slider(
        "Time window (narrow it to see every sample)",
        min_value=start,
        max_value=end,
        value=(start, end),
        step=ingest.slider_step(info),
        format="YYYY-MM-DD HH:mm",
        key="explore_window",
    )

if not sensors:
    st.info("Pick at least one sensor to plot.")
else:
    view = ingest.sensor_view(con, info, asset, sensors, start, end)
    st.plotly_chart(sensor_figure(view.frame, view.sensors, view.shades), key="explore_chart")
    st.caption(
        f"{len(view.frame):,} readings in the window; each trace is downsampled to at most "
        "4,000 points with peaks kept. Drag on the chart to zoom; shaded: known faults."
    )

quality_tab, corr_tab = st.tabs(["Quality report", "Correlations"])
with quality_tab:
    for label, value in ingest.quality_items(info):
        st.markdown(f"**{label}:** {ui.plain(value)}")
    for note in info.quality.notes:
        st.caption(note)
    st.dataframe(
        ingest.sensor_quality_table(info),
        hide_index=True,
        column_config={"missing": st.column_config.ProgressColumn("missing", format="percent")},
    )
with corr_tab:
    corr_sensors = sensors or info.sensors
    matrix = store.sensor_correlation(con, info, asset, corr_sensors)
    st.plotly_chart(correlation_figure(matrix), key="explore_corr")
