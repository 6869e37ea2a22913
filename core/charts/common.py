"""Pieces every Vigil chart shares: shaded time stretches and the house layout."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import plotly.graph_objects as go

FAULT_COLOR = "rgba(220, 38, 38, 0.15)"
EVENT_COLOR = "rgba(234, 88, 12, 0.22)"
OFF_COLOR = "rgba(100, 116, 139, 0.18)"
LABEL_COLOR = "rgba(37, 99, 235, 0.18)"


@dataclass(frozen=True)
class Shade:
    """A time stretch drawn behind the traces (a fault, an event, a machine-off period)."""

    start: datetime
    end: datetime
    label: str
    color: str = FAULT_COLOR


def add_shades(fig: go.Figure, shades: Iterable[Shade], legend_once: bool = True) -> go.Figure:
    """Draw each stretch as a full-height rectangle with a hover-free label on the first one."""
    seen: set[str] = set()
    for shade in shades:
        show_text = shade.label not in seen or not legend_once
        seen.add(shade.label)
        fig.add_vrect(
            x0=shade.start,
            x1=shade.end,
            fillcolor=shade.color,
            line_width=0,
            layer="below",
            annotation_text=shade.label if show_text else None,
            annotation_position="top left",
            annotation_font_size=10,
        )
    return fig


def house_layout(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        template="plotly_white",
        hovermode="x unified",
        legend={"orientation": "h", "y": 1.02, "x": 0, "yanchor": "bottom"},
    )
    return fig
