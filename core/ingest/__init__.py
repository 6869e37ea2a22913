"""Ingest: users' files (CSV, Parquet, Excel; wide or long) -> a readings table in the workspace.

Also what a loaded dataset looks like (summary, quality report, sensor views) for Explore.
"""

from core.ingest.explore import (
    datasets_table,
    quality_items,
    sensor_quality_table,
    sensor_view,
    slider_step,
    summary_items,
    time_range_text,
)
from core.ingest.pipeline import (
    ingest_file,
)
from core.ingest.uploads import (
    NO_LABELS,
    ingest_upload,
    label_choice,
    uploaded_copy,
)

__all__ = [
    "uploaded_copy",
    "NO_LABELS",
    "label_choice",
    "datasets_table",
    "ingest_file",
    "ingest_upload",
    "quality_items",
    "sensor_quality_table",
    "sensor_view",
    "slider_step",
    "summary_items",
    "time_range_text",
]
