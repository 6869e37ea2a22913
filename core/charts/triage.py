"""Figures of the triage page: the labelling chart (box-select a time range) and match thumbnails."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.charts.common import EVENT_COLOR, LABEL_COLOR, OFF_COLOR
from core.charts.detection import SCORE_FLOOR
from core.charts.downsample import downsample_xy
from core.labels.history import STATUS_TEXT
from core.labels.similar import SimilarResult
from core.labels.triage import LabelView
from core.types import TS

CHART_POINTS = 2000
"""Points per trace on the labelling chart (min/max preserving)."""
VERDICT_COLORS = {
    "confirmed": "rgba(220, 38, 38, 0.16)",
    "false_alarm": "rgba(100, 116, 139, 0.16)",
    "unsure": "rgba(202, 138, 4, 0.18)",
}
MODE_COLOR = OFF_COLOR
SCORE_COLOR = "#7c3aed"


def _axis(row: int) -> str:
    return "" if row == 1 else str(row)


def _stretch(x0: Any, x1: Any, fill: str, outline: str | None = None) -> dict[str, Any]:
    """A full-height rectangle behind every row (rows share the x axis)."""
    line = {"width": 1, "color": outline, "dash": "dot"} if outline else {"width": 0}
    return {
        "type": "rect",
        "xref": "x",
        "yref": "paper",
        "x0": x0,
        "x1": x1,
        "y0": 0,
        "y1": 1,
        "fillcolor": fill,
        "line": line,
        "layer": "below",
    }


def _tag(x: Any, text: str) -> dict[str, Any]:
    return {
        "x": x,
        "xref": "x",
        "y": 1.0,
        "yref": "paper",
        "text": text,
        "showarrow": False,
        "xanchor": "left",
        "yanchor": "bottom",
        "font": {"size": 10},
    }


def label_view_figure(view: LabelView) -> go.Figure:
    """Stacked sensors and the anomaly score over the window, with the event, labels and operating
    modes shaded. Drag horizontally to select a time range (`dragmode='select'`).

    Built as one layout dict (no `make_subplots`/`add_vrect`): about 8x faster, and the page
    redraws it on every selection.
    """
    has_score = not view.scores.empty
    names = [*view.sensors, "anomaly score"] if has_score else list(view.sensors)
    shown = {"anomaly score": "anomaly score (log scale)"}
    rows, gap = max(len(names), 1), 0.04
    height = (1 - gap * (rows - 1)) / rows
    x = view.readings[TS].to_numpy() if len(view.readings) else np.array([], "datetime64[us]")
    traces, shapes, notes = [], [], []
    layout: dict[str, Any] = {}
    for row, name in enumerate(names, start=1):
        n = _axis(row)
        top = 1 - (row - 1) * (height + gap)
        layout[f"xaxis{n}"] = {
            "anchor": f"y{n}",
            "matches": None if row == 1 else "x",
            "showticklabels": row == rows,
            "range": [view.start, view.end],
        }
        layout[f"yaxis{n}"] = {"domain": [max(0.0, top - height), top], "anchor": f"x{n}"}
        notes.append(
            {
                "text": f"<b>{shown.get(name, name)}</b>",
                "x": 0,
                "xref": "paper",
                "y": top,
                "yref": "paper",
                "xanchor": "left",
                "yanchor": "top",
                "showarrow": False,
                "font": {"size": 11},
                "bgcolor": "rgba(255,255,255,0.7)",
            }
        )
        if name == "anomaly score" and has_score:  # log scale: one spike must not flatten the rest
            sx = view.scores["ts"].to_numpy()
            sy = np.maximum(view.scores["score"].to_numpy(np.float64), SCORE_FLOOR)
            color = SCORE_COLOR
            layout[f"yaxis{n}"]["type"] = "log"
        else:
            sx, sy, color = x, view.readings[name].to_numpy(np.float64), None
        xs, ys = downsample_xy(sx, sy, CHART_POINTS)
        line = {"width": 1.2, **({"color": color} if color else {})}
        traces.append(
            go.Scatter(x=xs, y=ys, name=name, mode="lines", line=line, xaxis=f"x{n}", yaxis=f"y{n}")
        )
    if has_score and view.threshold is not None:
        n = _axis(rows)
        shapes.append(
            {
                "type": "line",
                "xref": f"x{n} domain",
                "x0": 0,
                "x1": 1,
                "yref": f"y{n}",
                "y0": view.threshold,
                "y1": view.threshold,
                "line": {"dash": "dash", "color": "#dc2626", "width": 1},
            }
        )
    for mark in view.modes.to_dict("records"):
        shapes.append(_stretch(mark["start_ts"], mark["end_ts"], MODE_COLOR))
        notes.append(_tag(mark["start_ts"], mark["mode"]))
    for label in view.labels.to_dict("records"):
        text = f"#{label['label_id']} {STATUS_TEXT.get(label['verdict'], label['verdict'])}"
        if label.get("kind"):
            text += f" · {label['kind']}"
        shapes.append(
            _stretch(
                label["start_ts"],
                label["end_ts"],
                VERDICT_COLORS.get(label["verdict"], LABEL_COLOR),
            )
        )
        notes.append(_tag(label["start_ts"], text))
    if view.focus is not None:
        shapes.append(_stretch(*view.focus, EVENT_COLOR, "rgba(234, 88, 12, 0.8)"))
    layout.update(
        height=60 + 130 * rows,
        margin={"l": 10, "r": 10, "t": 24, "b": 10},
        template="plotly_white",
        hovermode="x unified",
        showlegend=False,
        dragmode="select",
        selectdirection="h",
        shapes=shapes,
        annotations=notes,
    )
    return go.Figure(data=traces, layout=layout)


def thumbnail_figure(result: SimilarResult, index: int) -> go.Figure:
    """One match next to the query: each sensor z-normalised, the query dotted grey behind."""
    window = result.windows[index]
    steps = np.arange(result.length)
    fig = go.Figure()
    palette = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#0891b2", "#be123c"]
    for k, sensor in enumerate(result.sensors):
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=result.query[:, k],
                mode="lines",
                line={"width": 1, "color": "rgba(100,116,139,0.6)", "dash": "dot"},
                hoverinfo="skip",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=window[:, k],
                mode="lines",
                name=sensor,
                line={"width": 1.3, "color": palette[k % len(palette)]},
            )
        )
    match = result.matches.iloc[index]
    fig.update_layout(
        height=150,
        margin={"l": 4, "r": 4, "t": 24, "b": 4},
        template="plotly_white",
        showlegend=False,
        title={
            "text": f"#{int(match['rank'])} {match['asset']} · r={match['correlation']:.2f}",
            "font": {"size": 11},
        },
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def match_table(result: SimilarResult) -> pd.DataFrame:
    """The matches as the page lists them."""
    m = result.matches
    return pd.DataFrame(
        {
            "rank": m["rank"],
            "asset": m["asset"],
            "start": m["start"],
            "end": m["end"],
            "similarity (r)": m["correlation"].round(3),
            "distance": m["distance"].round(2),
            "already labelled": m["status"],
        }
    )
