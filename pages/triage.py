"""Triage: review a run's events, label them or a box-selected range, find similar, audit."""

import streamlit as st

from core import labels
from pages import ui
from pages.triage_common import FLASH, Desk, apply
from pages.triage_queue import review_queue
from pages.triage_tabs import browse_and_mark, import_export, labels_and_audit

con = ui.workspace()
info = ui.sidebar(con)
st.title("Triage")
if info is None:
    st.info("No dataset yet. Load the demo plant or a file on the **Load data** page.")
    st.stop()
analyst, kinds = ui.analyst_name(), labels.fault_kinds(con)
desk = Desk(con, info, analyst, kinds)
notice = st.container()  # always there, so the tabs below keep their place (and open tab)
if flash := st.session_state.pop(FLASH, None):
    {"success": notice.success, "info": notice.info, "warning": notice.warning}.get(
        flash[0], notice.error
    )(ui.plain(flash[1]))
if analyst == ui.ANONYMOUS:
    st.caption(
        f"Your verdicts are saved as “{ui.ANONYMOUS}”: enter your name under **Analyst** in the "
        "sidebar so the audit trail says who decided."
    )
if st.button("Undo my last label change", icon=":material/undo:", key="triage_undo"):
    apply("Undone.", lambda: labels.undo_last(con, info.id, analyst), "Nothing to undo.")
queue_tab, chart_tab, labels_tab, io_tab = st.tabs(
    ["Review queue", "Label the chart", "Labels & audit", "Import / export"]
)
with queue_tab:
    active_run = review_queue(desk)
with chart_tab:
    browse_and_mark(desk, active_run)
with labels_tab:
    labels_and_audit(desk)
with io_tab:
    import_export(desk)
