"""Figures of the Learn page: threshold trade-off, champion vs challenger, drift."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.common import house_layout
from core.learn.drift import PSI_DRIFT, PSI_MODERATE, DriftReport

METRIC_COLORS = {"precision": "#2563eb", "recall": "#16a34a", "f1": "#7c3aed"}
ALARM_COLOR = "#ea580c"


def threshold_figure(curve: pd.DataFrame, chosen: float, alarm_line: float = 1.0) -> go.Figure:
    """Precision, recall and F1 on the labels and alarms a day, against the threshold."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, color in METRIC_COLORS.items():
        fig.add_trace(
            go.Scatter(
                x=curve["threshold"],
                y=curve[name],
                name=name if name != "f1" else "F1",
                line={"color": color, "width": 2},
            ),
            secondary_y=False,
        )
    fig.add_trace(
        go.Scatter(
            x=curve["threshold"],
            y=curve["alarms_per_day"],
            name="alarms a day",
            line={"color": ALARM_COLOR, "dash": "dot"},
        ),
        secondary_y=True,
    )
    # (vline annotations land in the wrong place on log axes: the caption names the lines)
    fig.add_vline(x=alarm_line, line={"color": "#9ca3af", "dash": "dash"})
    fig.add_vline(x=chosen, line={"color": "#111827", "width": 2})
    ticks = [0.25, 0.5, 1, 2, 4]
    shown = [t for t in (chosen, alarm_line) if t > 0]  # a log axis has no 0
    span = [min(ticks[0], *shown) / 1.15, max(ticks[-1], *shown) * 1.15]
    fig.update_xaxes(
        type="log",
        range=np.log10(span).tolist(),  # a line set by an alert budget may lie past the curve
        tickvals=ticks,
        ticktext=[f"{t:g}x" for t in ticks],
        title_text="threshold (multiple of the version's alarm line)",
    )
    fig.update_yaxes(range=[0, 1.02], title_text="on the labels", secondary_y=False)
    fig.update_yaxes(title_text="alarms a day", secondary_y=True, rangemode="tozero")
    return house_layout(fig, 320)


def comparison_figure(before: Mapping[str, float], after: Mapping[str, float], champion: str):
    """Champion (before) vs challenger (after) on the held-out labels."""
    names = ["precision", "recall", "f1"]
    fig = go.Figure()
    for label, values, color in (
        (champion, before, "#9ca3af"),
        ("new version", after, "#7c3aed"),
    ):
        y = [values.get(n) for n in names]
        fig.add_trace(
            go.Bar(
                x=["precision", "recall", "F1"],
                y=[np.nan if v is None else v for v in y],
                name=label,
                marker_color=color,
                text=[f"{v:.2f}" if v is not None and np.isfinite(v) else "–" for v in y],
                textposition="outside",
            )
        )
    fig.update_yaxes(range=[0, 1.1])
    fig.update_layout(barmode="group", hovermode="closest")
    return house_layout(fig, 260)


def drift_figure(report: DriftReport) -> go.Figure:
    """PSI per sensor and for the score, with the moderate and drift lines."""
    table = report.table.sort_values("psi")
    colors = np.where(
        table["psi"] > PSI_DRIFT,
        "#dc2626",
        np.where(table["psi"] > PSI_MODERATE, "#f59e0b", "#16a34a"),
    )
    fig = go.Figure(
        go.Bar(
            x=table["psi"],
            y=table["name"],
            orientation="h",
            marker_color=colors,
            customdata=table[["ks", "status"]],
            hovertemplate="%{y}: PSI %{x:.3f}, KS %{customdata[0]:.2f} (%{customdata[1]})"
            "<extra></extra>",
        )
    )
    for x, text in ((PSI_MODERATE, "moderate"), (PSI_DRIFT, "drift")):
        fig.add_vline(x=x, line={"dash": "dash", "color": "#6b7280"}, annotation_text=text)
    fig.update_xaxes(title_text="PSI against the training window")
    fig.update_layout(hovermode="closest")
    return house_layout(fig, max(220, 26 * len(table) + 80))


def drift_timeline_figure(report: DriftReport) -> go.Figure:
    """PSI of every sensor (and the score) per period: when did the data start to move?"""
    wide = report.timeline.pivot(index="name", columns="period", values="psi")
    # periods as category labels: on a date axis a single period (new data within one day) is
    # a cell 1 ms wide, its ticks reading '23:59:59.9996'
    periods = pd.DatetimeIndex(wide.columns)
    daily = bool((periods == periods.normalize()).all())
    fig = go.Figure(
        go.Heatmap(
            z=wide.to_numpy(),
            x=list(periods.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M")),
            y=list(wide.index),
            zmin=0,
            zmax=max(2 * PSI_DRIFT, float(np.nanmax(wide.to_numpy())) if wide.size else 0),
            colorscale=[[0, "#f0fdf4"], [0.25, "#fde68a"], [1, "#b91c1c"]],
            colorbar={"title": "PSI"},
        )
    )
    fig.update_layout(hovermode="closest", xaxis={"type": "category"})
    return house_layout(fig, max(220, 24 * len(wide) + 80))
