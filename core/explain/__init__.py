"""Explain: why an event scored high, per sensor and over time (exact contributions or SHAP).

Explanations are cached per run and event in the workspace.
"""

from core.explain.service import (
    RUN_SCOPE,
    Explanation,
    cached_explanation,
    event_options,
    event_scope,
    explain_event,
    explain_run,
    members_text,
    method_text,
    point_labels,
    top_sensors_text,
)

__all__ = [
    "Explanation",
    "RUN_SCOPE",
    "cached_explanation",
    "event_options",
    "event_scope",
    "explain_event",
    "explain_run",
    "members_text",
    "method_text",
    "point_labels",
    "top_sensors_text",
]
