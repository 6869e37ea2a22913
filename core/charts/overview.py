"""The stakeholder's timeline: every event of a run per asset, coloured by the analysts' verdict."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.charts.common import house_layout

VERDICT_COLORS = {
    "unreviewed": "#f97316",
    "confirmed": "#dc2626",
    "false_alarm": "#94a3b8",
    "unsure": "#eab308",
}


def events_timeline(queue: pd.DataFrame) -> go.Figure:
    """One bar per event (start to end) on the asset's row; very short events stay visible."""
    if queue.empty:
        fig = go.Figure()
        fig.add_annotation(text="No events", showarrow=False, x=0.5, y=0.5, xref="paper")
        return house_layout(fig, height=200)
    frame = queue.assign(
        end_shown=queue["end"].where(
            queue["end"] - queue["start"] > pd.Timedelta(minutes=30),
            queue["start"] + pd.Timedelta(minutes=30),
        ),
        top=[", ".join(s[:3]) for s in queue["top_sensors"]],
    )
    fig = px.timeline(
        frame,
        x_start="start",
        x_end="end_shown",
        y="asset",
        color="status",
        color_discrete_map=VERDICT_COLORS,
        hover_data={"event_id": True, "severity": ":.1f", "top": True, "end_shown": False},
    )
    fig.update_yaxes(title=None, categoryorder="category descending")
    fig.update_xaxes(title=None)
    n_assets = frame["asset"].nunique()
    return house_layout(fig, height=140 + 60 * n_assets)


def alarms_history_figure(history: pd.DataFrame) -> go.Figure:
    """Alarms a day of the unsupervised run and of every version since (the one in use darker),
    labels and held-out F1 on hover: what the analysts' verdicts bought."""
    colors = [
        "#94a3b8" if i == 0 else ("#0f766e" if in_use else "#5eead4")
        for i, in_use in enumerate(history["in use"])
    ]
    f1 = [f"{v:.2f}" if pd.notna(v) else "not graded" for v in history["held-out F1"]]
    fig = go.Figure(
        go.Bar(
            x=history["model"],
            y=history["alarms a day"],
            marker_color=colors,
            text=[f"{v:.1f}" for v in history["alarms a day"]],
            textposition="outside",
            customdata=list(zip(history["labels"], f1, strict=True)),
            hovertemplate="%{x}<br>%{y:.2f} alarms a day<br>%{customdata[0]} labels"
            "<br>held-out F1 %{customdata[1]}<extra></extra>",
        )
    )
    fig.update_yaxes(title="alarms a day", rangemode="tozero")
    fig.update_xaxes(title=None, type="category")
    return house_layout(fig, height=280)
