"""Plotly figures of an `Explanation`: waterfall of one point, sensor-by-time heatmap, run summary.

Every figure works at two levels: ``"sensor"`` (each sensor's features summed, the default) and
``"feature"``. Red means pushing towards anomalous, blue towards normal, everywhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.common import EVENT_COLOR, house_layout
from core.explain.service import Explanation

TOWARDS_ANOMALY = "#dc2626"
TOWARDS_NORMAL = "#2563eb"
TOTAL = "#475569"
DIVERGING = "RdBu_r"
LEVELS = ("sensor", "feature")
_TITLE = {"size": 14}


def _frame(expl: Explanation, level: str) -> pd.DataFrame:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}; got {level!r}")
    return expl.sensor_values if level == "sensor" else expl.feature_values


def _point_title(expl: Explanation, row: int) -> str:
    r = expl.rows.iloc[row]
    score = "" if pd.isna(r["score"]) else f" · run score {float(r['score']):.2f}x the alarm line"
    return f"{pd.Timestamp(r['ts']):%Y-%m-%d %H:%M} · {r['asset']}{score}"


def _unexplained_label(expl: Explanation, row: int) -> str:
    """Why the values do not reach the run's score at a row, in a few words."""
    if bool(expl.rows["is_off"].iloc[row]):
        return "machine off: scored 0"
    if float(expl.target[row]) <= 0.0 and float(expl.output[row]) < 0.0:
        return "below the training median: scored 0"
    return f"unexplained ({expl.unexplained_share(row):.0%} of the score)"


def contribution_figure(
    expl: Explanation, row: int | None = None, level: str = "sensor", top: int = 10
) -> go.Figure:
    """Waterfall from the base value to the run's score at one point (default: the peak), the
    ``top`` largest contributions by size, the rest summed in one bar, and what the values
    leave unexplained (permutation SHAP, clipped scores) in its own bar: the bars always add
    up to the run's score, the total."""
    row = expl.peak if row is None else row
    row = 0 if row is None else int(row)
    values = _frame(expl, level).iloc[row]
    order = values.abs().sort_values(ascending=False).index
    shown = values[order[:top]]
    rest = values[order[top:]]
    labels = ["base value", *shown.index]
    deltas = [float(expl.base_values[row]), *shown.to_numpy(dtype=float)]
    if len(rest):
        labels.append(f"{len(rest)} other {level}s")
        deltas.append(float(rest.sum()))
    output = float(expl.target[row])
    gap = float(expl.unexplained[row])
    if abs(gap) > 1e-3 * max(abs(output), 1e-3):
        labels.append(_unexplained_label(expl, row))
        deltas.append(gap)
    labels.append(expl.quantity)
    fig = go.Figure(
        go.Waterfall(
            orientation="h",
            y=labels,
            x=[*deltas, output],
            measure=["absolute"] + ["relative"] * (len(deltas) - 1) + ["total"],
            text=[f"{v:+.3g}" for v in deltas] + [f"{output:.3g}"],
            textposition="outside",
            increasing={"marker": {"color": TOWARDS_ANOMALY}},
            decreasing={"marker": {"color": TOWARDS_NORMAL}},
            totals={"marker": {"color": TOTAL}},
            connector={"line": {"color": "#cbd5e1", "width": 1}},
            hovertemplate="%{y}: %{x:.4g}<extra></extra>",
        )
    )
    running = np.cumsum(deltas)
    lo, hi = float(min(running.min(), 0.0)), float(max(running.max(), 0.0))
    pad = 0.18 * (hi - lo or 1.0)  # room for the value labels outside the bars
    house_layout(fig, height=max(300, 30 * len(labels) + 90))
    fig.update_layout(
        title={"text": _point_title(expl, row), "font": _TITLE},
        hovermode="closest",
        showlegend=False,
        margin={"l": 10, "r": 20, "t": 40, "b": 10},
    )
    fig.update_traces(cliponaxis=False)
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(title=expl.quantity, range=[lo - pad, hi + pad])
    return fig


def top_columns(expl: Explanation, level: str = "sensor", top: int = 12) -> list[str]:
    """The ``top`` sensors (or features) by mean |contribution| over the rows in scope."""
    frame = _frame(expl, level)
    mask = expl.in_scope if expl.in_scope.any() else np.ones(len(frame), dtype=bool)
    return list(frame[mask].abs().mean().sort_values(ascending=False).index[:top])


def heatmap_figure(expl: Explanation, level: str = "sensor", top: int = 12) -> go.Figure:
    """Contributions of the top sensors (rows) over time (columns), the run score above; the
    event is shaded and its peak marked, context before and after left clear."""
    columns = top_columns(expl, level, top)
    frame = _frame(expl, level)[columns]
    ts = pd.to_datetime(expl.rows["ts"])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.25, 0.75])
    fig.add_trace(
        go.Scatter(
            x=ts,
            y=expl.rows["score"],
            mode="lines+markers",
            marker={"size": 4},
            line={"color": TOTAL, "width": 1.5},
            name="run score",
            hovertemplate="%{x|%Y-%m-%d %H:%M}<br>score %{y:.2f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    limit = float(np.nanquantile(np.abs(frame.to_numpy()), 0.99)) if frame.size else 1.0
    fig.add_trace(
        go.Heatmap(
            x=ts,
            y=columns,
            z=frame.to_numpy().T,
            zmid=0.0,
            zmin=-limit or None,
            zmax=limit or None,
            colorscale=DIVERGING,
            colorbar={"title": {"text": "contribution", "side": "right"}, "len": 0.75, "y": 0.38},
            hovertemplate="%{x|%Y-%m-%d %H:%M}<br>%{y}: %{z:.3g}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    if expl.window is not None:
        start, end = expl.window
        fig.add_vrect(x0=start, x1=end, fillcolor=EVENT_COLOR, line_width=0, layer="below", row=1)
        for edge in (start, end):
            fig.add_vline(x=edge, line={"color": "#ea580c", "width": 1, "dash": "dot"}, row="all")
    if expl.peak is not None:
        fig.add_vline(x=ts.iloc[expl.peak], line={"color": "#0f172a", "width": 1}, row="all")
    house_layout(fig, height=190 + 26 * len(columns))
    fig.update_layout(
        title={"text": "Contributions over the event (shaded) and its context", "font": _TITLE},
        hovermode="closest",
        showlegend=False,
        margin={"t": 60},
    )
    fig.update_yaxes(autorange="reversed", row=2, col=1)
    fig.update_yaxes(title="score", row=1, col=1)
    return fig


def importance_figure(expl: Explanation, level: str = "sensor", top: int = 15) -> go.Figure:
    """Global importance: mean |contribution| per sensor, over flagged and over normal points."""
    frame = _frame(expl, level).abs()
    flagged = expl.in_scope
    order = frame.mean().sort_values(ascending=False).index[:top]
    fig = go.Figure()
    groups = [("flagged points", flagged, TOWARDS_ANOMALY), ("normal points", ~flagged, TOTAL)]
    for name, mask, color in groups:
        if mask.any():
            fig.add_trace(
                go.Bar(
                    y=list(order),
                    x=frame[mask][order].mean().to_numpy(),
                    orientation="h",
                    name=f"{name} ({int(mask.sum())})",
                    marker_color=color,
                    hovertemplate="%{y}: %{x:.3g}<extra>" + name + "</extra>",
                )
            )
    house_layout(fig, height=max(300, 24 * len(order) + 130))
    fig.update_layout(
        title={"text": "Importance: mean |contribution|", "font": _TITLE},
        barmode="group",
        hovermode="closest",
        margin={"t": 80},
        legend={"y": 1.0},
    )
    fig.update_yaxes(autorange="reversed", automargin=True)
    fig.update_xaxes(title=f"mean |contribution| ({expl.quantity})")
    return fig


def beeswarm_figure(
    expl: Explanation, level: str = "sensor", top: int = 12, seed: int = 0
) -> go.Figure:
    """Every sampled point's contribution per sensor (a strip per sensor), coloured by how far
    the sensor was from normal there (max |robust z| of its features; the feature's z at the
    feature level)."""
    columns = top_columns(expl, level, top)
    frame = _frame(expl, level)
    if level == "sensor":
        colour, colour_title, cmid = expl.sensor_deviation, "max |z|", None
    else:
        colour = pd.DataFrame(expl.data.astype(np.float64), columns=expl.features)
        colour_title, cmid = "feature z", 0.0
    rng = np.random.default_rng(seed)
    xs, ys, cs, texts = [], [], [], []
    when = pd.to_datetime(expl.rows["ts"]).dt.strftime("%Y-%m-%d %H:%M")
    label = when + " · " + expl.rows["asset"].astype(str)
    for k, name in enumerate(columns):
        xs.append(frame[name].to_numpy())
        ys.append(k + rng.uniform(-0.3, 0.3, len(frame)))
        cs.append(colour[name].to_numpy())
        texts.append((label + " · " + name).to_numpy())
    c = np.concatenate(cs) if cs else np.zeros(0)
    cmax = float(np.nanquantile(np.abs(c), 0.95)) if len(c) else 1.0
    fig = go.Figure(
        go.Scattergl(
            x=np.concatenate(xs) if xs else [],
            y=np.concatenate(ys) if ys else [],
            mode="markers",
            text=np.concatenate(texts) if texts else [],
            marker={
                "size": 6,
                "opacity": 0.75,
                "color": c,
                "colorscale": DIVERGING if cmid is not None else "Viridis",
                "cmin": -cmax if cmid is not None else 0.0,
                "cmax": cmax or 1.0,
                "colorbar": {"title": {"text": colour_title}},
            },
            hovertemplate="%{text}<br>contribution %{x:.3g}<extra></extra>",
        )
    )
    fig.add_vline(x=0, line={"color": "#94a3b8", "width": 1})
    house_layout(fig, height=max(300, 30 * len(columns) + 130))
    fig.update_layout(
        title={
            "text": "Each sampled point, coloured by how far the sensor was from normal",
            "font": _TITLE,
        },
        hovermode="closest",
        showlegend=False,
        margin={"t": 80},
    )
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(range(len(columns))),
        ticktext=columns,
        autorange="reversed",
        automargin=True,
    )
    fig.update_xaxes(title=f"contribution ({expl.quantity})", zeroline=False)
    return fig
