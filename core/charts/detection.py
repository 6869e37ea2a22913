"""Figures of the Detect page: sensors + anomaly score with events, and runs side by side.

Every trace is downsampled (min/max preserving) before it reaches the browser, and shaded
stretches are merged when there are too many to draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.common import EVENT_COLOR, NEW_MODE_COLOR, OFF_COLOR, house_layout, titles_left
from core.charts.downsample import MAX_POINTS, downsample_xy
from core.detect.operating_range import NEW_MODE_LINE
from core.detect.run_chart import RunView
from core.types import TS

SCORE_COLOR = "#0F766E"
THRESHOLD_COLOR = "#DC2626"
TRUTH_LINE = "rgba(220, 38, 38, 0.9)"
SCORE_FLOOR = 0.01
"""Scores are drawn on a log axis; zeros (machine off) are drawn at this floor."""
MAX_SHADES = 300
"""Above this many stretches of one kind, neighbours are merged (the browser slows down)."""
MAX_LABELS = 8
"""Text labels per kind of stretch; more would hide the traces."""

Interval = tuple[pd.Timestamp, pd.Timestamp]


def flag_intervals(ts: pd.Series, flags: pd.Series) -> list[Interval]:
    """Contiguous stretches where `flags` is true, as (first ts, last ts) pairs."""
    values = np.asarray(flags, dtype=bool)
    if not values.any():
        return []
    padded = np.concatenate([[False], values, [False]]).astype(np.int8)
    edges = np.diff(padded)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    times = pd.to_datetime(pd.Series(ts)).reset_index(drop=True)
    return [(times[s], times[e]) for s, e in zip(starts, ends, strict=True)]


def merge_intervals(intervals: list[Interval], max_n: int = MAX_SHADES) -> list[Interval]:
    """At most `max_n` stretches: the closest neighbours are merged first."""
    if len(intervals) <= max_n:
        return intervals
    ordered = sorted(intervals)
    pairs = zip(ordered[:-1], ordered[1:], strict=True)
    gaps = np.array([(b[0] - a[1]).total_seconds() for a, b in pairs])
    join = np.zeros(len(gaps), dtype=bool)
    join[np.argsort(gaps, kind="stable")[: len(ordered) - max_n]] = True
    merged = [ordered[0]]
    for (start, end), joined in zip(ordered[1:], join, strict=True):
        if joined:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _shade(start, end, **style) -> dict:
    """A stretch spanning every subplot (paper y, shared time x)."""
    return dict(
        type="rect", xref="x", yref="paper", x0=start, x1=end, y0=0, y1=1, layer="below", **style
    )


def _label(at, text: str, color: str) -> dict:
    return dict(
        x=at,
        xref="x",
        y=1.0,
        yref="paper",
        text=text,
        showarrow=False,
        xanchor="left",
        yanchor="top",
        font={"size": 10, "color": color},
    )


def _legend_swatch(fig: go.Figure, name: str, color: str, line: str | None = None) -> None:
    """A legend entry for a kind of shaded stretch (shapes have no legend of their own)."""
    fig.add_trace(
        go.Scatter(
            x=[None],
            y=[None],
            mode="markers",
            name=name,
            marker={
                "symbol": "square",
                "size": 12,
                "color": color,
                "line": {"color": line or color, "width": 2 if line else 0},
            },
            hoverinfo="skip",
        )
    )


def _spread(labels: list[dict], ts: pd.Series, parts: int = 10) -> list[dict]:
    """Drop labels closer than 1/`parts` of the time span to the previous one (no overprint)."""
    if len(ts) < 2:
        return labels
    gap = (pd.Timestamp(ts.iloc[-1]) - pd.Timestamp(ts.iloc[0])) / parts
    kept: list[dict] = []
    for label in sorted(labels, key=lambda a: pd.Timestamp(a["x"])):
        if not kept or pd.Timestamp(label["x"]) - pd.Timestamp(kept[-1]["x"]) >= gap:
            kept.append(label)
    return kept


def _widest(intervals: list[Interval], n: int) -> list[Interval]:
    return sorted(intervals, key=lambda iv: iv[1] - iv[0], reverse=True)[:n]


def _add_stretches(fig: go.Figure, view: RunView) -> None:
    """Shade off stretches and events, outline known faults: one layout update for all of them
    (adding shapes one by one is quadratic in plotly)."""
    shapes, labels = [], []
    off = merge_intervals(flag_intervals(view.scores[TS], view.scores["is_off"]))
    shapes += [_shade(a, b, fillcolor=OFF_COLOR, line_width=0) for a, b in off]
    labels += [_label(a, "machine off", "#475569") for a, _ in _widest(off, MAX_LABELS)]
    if off:
        _legend_swatch(fig, "machine off", OFF_COLOR)
    if "new_mode" in view.scores:  # a higher alarm line there: say why scores pass 1 silently
        new = merge_intervals(flag_intervals(view.scores[TS], view.scores["new_mode"]))
        shapes += [_shade(a, b, fillcolor=NEW_MODE_COLOR, line_width=0) for a, b in new]
        labels += [_label(a, "new operating mode", "#a16207") for a, _ in _widest(new, 2)]
        if new:
            _legend_swatch(fig, f"new operating mode (line x{NEW_MODE_LINE:g})", NEW_MODE_COLOR)

    starts, ends = pd.to_datetime(view.events["start"]), pd.to_datetime(view.events["end"])
    events = merge_intervals(list(zip(starts, ends, strict=True)))
    # the outline keeps a one-point event visible
    shapes += [
        _shade(a, b, fillcolor=EVENT_COLOR, line={"color": EVENT_COLOR, "width": 2})
        for a, b in events
    ]
    if events:
        _legend_swatch(fig, "event", EVENT_COLOR)

    if not view.truth.empty:
        truth = view.truth.sort_values("start").head(MAX_SHADES)
        outline = {"color": TRUTH_LINE, "width": 1.5, "dash": "dot"}
        shapes += [
            _shade(a, b, fillcolor="rgba(0,0,0,0)", line=outline)
            for a, b in zip(truth["start"], truth["end"], strict=True)
        ]
        labels += [
            _label(a, str(k), TRUTH_LINE)
            for a, k in zip(truth["start"][: MAX_LABELS * 2], truth["kind"], strict=False)
        ]
        _legend_swatch(fig, "ground-truth fault", "rgba(0,0,0,0)", line=TRUTH_LINE)
    fig.update_layout(
        shapes=list(fig.layout.shapes) + shapes,
        annotations=list(fig.layout.annotations) + _spread(labels, view.scores[TS]),
    )


def detection_figure(view: RunView, max_points: int = MAX_POINTS) -> go.Figure:
    """Sensors and the anomaly score of one asset on a shared time axis.

    Events are shaded orange, machine-off stretches grey, ground-truth faults outlined red.
    """
    n = len(view.sensors) + 1
    fig = make_subplots(
        rows=n,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        row_heights=[1.0] * (n - 1) + [1.4],
        subplot_titles=[*view.sensors, "anomaly score (log scale)"],
    )
    titles_left(fig)
    x = view.readings[TS].to_numpy()
    for i, sensor in enumerate(view.sensors, start=1):
        xs, ys = downsample_xy(x, view.readings[sensor].to_numpy(dtype=np.float64), max_points)
        fig.add_trace(
            go.Scatter(x=xs, y=ys, name=sensor, mode="lines", line={"width": 1}, showlegend=False),
            row=i,
            col=1,
        )
    sx = view.scores[TS].to_numpy()
    xs, ys = downsample_xy(sx, view.scores["score"].to_numpy(dtype=np.float64), max_points)
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=np.maximum(ys, SCORE_FLOOR),
            name="score",
            mode="lines",
            line={"width": 1, "color": SCORE_COLOR},
        ),
        row=n,
        col=1,
    )
    if view.threshold is not None and len(sx):
        fig.add_trace(
            go.Scatter(
                x=[sx[0], sx[-1]],
                y=[view.threshold, view.threshold],
                name=f"alarm line ({view.threshold:g})",
                mode="lines",
                line={"color": THRESHOLD_COLOR, "dash": "dash", "width": 1.5},
                hoverinfo="skip",
            ),
            row=n,
            col=1,
        )
    if not view.events.empty:
        fig.add_trace(
            go.Scatter(
                x=view.events["peak_ts"],
                y=np.maximum(view.events["peak_score"].to_numpy(dtype=np.float64), SCORE_FLOOR),
                name="event peak",
                mode="markers",
                marker={"color": "#EA580C", "size": 7, "symbol": "triangle-down"},
                customdata=view.events[["event_id", "severity"]].to_numpy(),
                hovertemplate="event %{customdata[0]} · severity %{customdata[1]:.2f}"
                "<extra></extra>",
            ),
            row=n,
            col=1,
        )
    # a log axis keeps the alarm line readable beside peaks tens of times above it
    fig.update_yaxes(type="log", row=n, col=1)
    _add_stretches(fig, view)
    fig.update_annotations(font_size=11)
    return house_layout(fig, height=130 + 140 * n)


def _duration(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def events_table(events: pd.DataFrame) -> pd.DataFrame:
    """Events as an analyst reads them: most severe first, durations in words, sensors joined."""
    if events.empty:
        return pd.DataFrame(
            columns=["event", "asset", "start", "end", "duration", "peak score", "severity"]
            + ["top sensors"]
        )
    return pd.DataFrame(
        {
            "event": events["event_id"].astype(int),
            "asset": events["asset"],
            "start": events["start"],
            "end": events["end"],
            "duration": [_duration(s) for s in events["duration_s"]],
            "peak score": events["peak_score"].round(3),
            "severity": events["severity"].round(2),
            "top sensors": [", ".join(map(str, s)) for s in events["top_sensors"]],
        }
    ).reset_index(drop=True)


COMPARE_METRICS = (
    "f1",
    "precision",
    "recall",
    "event_recall",
    "event_precision",
    "false_alarm_rate",
    "pr_auc",
    "median_delay_s",
)
"""What the comparison chart shows; the table beside it has every metric."""


def comparison_figure(table: pd.DataFrame, metrics: Sequence[str] = COMPARE_METRICS) -> go.Figure:
    """One small bar chart per metric, one bar per run (metrics have different scales)."""
    shown = [m for m in metrics if m in table.columns]
    cols = min(4, max(len(shown), 1))
    rows = max(1, -(-len(shown) // cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=shown or ["no metrics"])
    for i, metric in enumerate(shown):
        values = table[metric].astype(float)
        fig.add_trace(
            go.Bar(
                x=table["run"],
                y=values,
                name=metric,
                marker_color=SCORE_COLOR,
                text=["n/a" if np.isnan(v) else f"{v:.3g}" for v in values],
                textposition="auto",
                showlegend=False,
            ),
            row=i // cols + 1,
            col=i % cols + 1,
        )
    fig.update_annotations(font_size=11)
    house_layout(fig, height=60 + 200 * rows)
    fig.update_layout(hovermode="closest")
    return fig
