"""Figures of the data explorer: stacked sensor plots and the correlation heatmap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.common import Shade, add_shades, house_layout, titles_left
from core.charts.downsample import MAX_POINTS, downsample_xy
from core.types import TS


def sensor_figure(
    frame: pd.DataFrame,
    sensors: Sequence[str],
    shades: Sequence[Shade] = (),
    max_points: int = MAX_POINTS,
) -> go.Figure:
    """One row per sensor on a shared time axis; every trace downsampled to `max_points`."""
    rows = max(len(sensors), 1)
    fig = make_subplots(
        rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.02, subplot_titles=list(sensors)
    )
    x = frame[TS].to_numpy() if len(frame) else np.array([], dtype="datetime64[ns]")
    for i, sensor in enumerate(sensors, start=1):
        y = frame[sensor].to_numpy(dtype=np.float64)
        xs, ys = downsample_xy(x, y, max_points)
        fig.add_trace(
            go.Scatter(x=xs, y=ys, name=sensor, mode="lines", line={"width": 1}),
            row=i,
            col=1,
        )
    titles_left(fig)
    add_shades(fig, shades)
    fig.update_annotations(font_size=11)
    fig.update_layout(showlegend=False)
    return house_layout(fig, height=150 + 150 * rows, top=70 if shades else 30)


def correlation_figure(matrix: pd.DataFrame) -> go.Figure:
    """Pearson correlations between sensors, red = together, blue = opposite."""
    fig = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=list(matrix.columns),
            y=list(matrix.index),
            zmin=-1,
            zmax=1,
            colorscale="RdBu_r",
            text=np.round(matrix.to_numpy(), 2),
            texttemplate="%{text}",
            hovertemplate="%{y} vs %{x}: %{z:.2f}<extra></extra>",
        )
    )
    fig.update_yaxes(autorange="reversed")
    return house_layout(fig, height=120 + 34 * max(len(matrix), 1))
