"""What the Triage page's parts share: the desk they work at, flash messages, the chart."""

from collections.abc import Callable
from typing import NamedTuple

import duckdb
import streamlit as st

from core import labels
from core.charts.triage import label_view_figure
from core.errors import CoreError
from core.types import DatasetInfo

VERDICT_BUTTONS = {"confirmed": "Confirm", "false_alarm": "False alarm", "unsure": "Unsure"}
FLASH, GEN, CURRENT, FOUND = "triage_flash", "triage_generation", "triage_event", "triage_found"
SHOWN = "triage_shown"  # the event as the last drawing of the page showed it
NO_KIND = "not set"


class Desk(NamedTuple):
    """The workspace, dataset, analyst and fault kinds every part of the page works with."""

    con: duckdb.DuckDBPyConnection
    info: DatasetInfo
    analyst: str
    kinds: list[str]


def apply(done: str, action: Callable[[], object], nothing: str | None = None) -> None:
    """Run a core write, keep its outcome to show after the refresh, then refresh the page.
    ``nothing``: what to say (as news, not success) when the write returns None."""
    try:
        result = action()
    except CoreError as exc:
        st.session_state[FLASH] = ("error", str(exc))
    else:
        if result is None and nothing is not None:
            st.session_state[FLASH] = ("info", nothing)
        else:
            st.session_state[FLASH] = ("success", getattr(result, "description", done))
        st.session_state[GEN] = st.session_state.get(GEN, 0) + 1  # rows moved: reset selections
    st.rerun()


def chart_range(key: str, view: labels.LabelView) -> tuple | None:
    """Draw the labelling chart; return the box-selected time range, if any.

    The figure must not depend on the selection: a changed figure clears it in the browser.
    """
    event = st.plotly_chart(
        label_view_figure(view), key=key, on_select="rerun", selection_mode="box"
    )
    return labels.selected_range(event["selection"]["box"] if event else None)


def time_slider(desk: Desk, label: str, key: str) -> tuple:
    info = desk.info
    span = (info.time_start, info.time_end)
    return st.slider(label, *span, span, format="YYYY-MM-DD HH:mm", key=key)


def picked_rows(table, name: str) -> list[int]:
    """Draw a table whose rows can be ticked; the ticks reset whenever rows moved (`GEN`)."""
    return st.dataframe(
        table,
        hide_index=True,
        key=f"{name}_{st.session_state.get(GEN, 0)}",
        on_select="rerun",
        selection_mode="multi-row",
    )["selection"]["rows"]
