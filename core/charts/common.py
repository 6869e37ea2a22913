"""Pieces every Vigil chart shares: shaded time stretches and the house layout."""

from __future__ import annotations

from collections.abc import Iterable

import plotly.graph_objects as go

from core.types import FAULT_COLOR, Shade

__all__ = ["EVENT_COLOR", "FAULT_COLOR", "LABEL_COLOR", "OFF_COLOR", "Shade", "add_shades"]

EVENT_COLOR = "rgba(234, 88, 12, 0.22)"
OFF_COLOR = "rgba(100, 116, 139, 0.18)"
NEW_MODE_COLOR = "rgba(234, 179, 8, 0.14)"
LABEL_COLOR = "rgba(37, 99, 235, 0.18)"


def add_shades(fig: go.Figure, shades: Iterable[Shade]) -> go.Figure:
    """Draw each stretch behind every panel; label it once, above the top panel, so stacked
    sensor plots stay readable."""
    for shade in shades:
        fig.add_vrect(
            x0=shade.start, x1=shade.end, fillcolor=shade.color, line_width=0, layer="below"
        )
        fig.add_annotation(
            x=shade.start,
            y=1.0,
            xref="x",
            yref="paper",
            text=shade.label,
            showarrow=False,
            xanchor="left",
            yanchor="bottom",
            font={"size": 9, "color": "#7f1d1d"},
            textangle=-30,
        )
    return fig


def house_layout(fig: go.Figure, height: int, top: int = 30) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": top, "b": 10},
        template="plotly_white",
        hovermode="x unified",
        legend={"orientation": "h", "y": 1.02, "x": 0, "yanchor": "bottom"},
    )
    return fig


def titles_left(fig: go.Figure) -> go.Figure:
    """Put `make_subplots`' panel titles at the left edge (centred, they collide with the fault
    and event labels drawn above the top panel). Call before adding other annotations."""
    for note in fig.layout.annotations:
        note.update(x=0.0, xanchor="left", bgcolor="rgba(255,255,255,0.7)")
    return fig
