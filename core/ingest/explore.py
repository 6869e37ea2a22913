"""What the data explorer shows: a window of sensors, its shaded faults, and quality tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from core import store
from core.types import FAULT_COLOR, DatasetInfo, Shade


@dataclass(frozen=True)
class SensorView:
    """Readings of one asset over a time window, and the ground-truth faults inside it."""

    frame: pd.DataFrame
    sensors: list[str]
    shades: list[Shade]


def sensor_view(
    con: duckdb.DuckDBPyConnection,
    info: DatasetInfo,
    asset: str,
    sensors: Sequence[str],
    start: datetime | None = None,
    end: datetime | None = None,
) -> SensorView:
    """Fetch a window; faults injected in a demo plant come along as shaded stretches."""
    frame = store.read_readings(con, info, asset=asset, sensors=sensors, start=start, end=end)
    shades: list[Shade] = []
    if info.has_ground_truth:
        truth = store.read_ground_truth(con, info.id)
        truth = truth[truth["asset"] == asset]
        if start is not None:
            truth = truth[truth["end"] >= pd.Timestamp(start)]
        if end is not None:
            truth = truth[truth["start"] <= pd.Timestamp(end)]
        shades = [
            Shade(r["start"], r["end"], str(r["kind"]), FAULT_COLOR)
            for r in truth.to_dict("records")
        ]
    return SensorView(frame=frame, sensors=list(sensors), shades=shades)


def summary_items(info: DatasetInfo) -> list[tuple[str, str]]:
    """Headline facts of a dataset as (label, value) pairs."""
    interval = info.interval_seconds
    return [
        ("Rows", f"{info.n_rows:,}"),
        ("Sensors", str(len(info.sensors))),
        ("Assets", str(len(info.assets))),
        ("Sampling", _human_seconds(interval) if interval else "irregular"),
        ("Span", _human_seconds(_span_seconds(info)) if _span_seconds(info) else "-"),
    ]


def time_range_text(info: DatasetInfo) -> str:
    """'2026-01-01 00:00 → 2026-02-04 17:19', or a dash for an empty dataset."""
    if info.time_start is None or info.time_end is None:
        return "-"
    return f"{info.time_start:%Y-%m-%d %H:%M} → {info.time_end:%Y-%m-%d %H:%M}"


def _span_seconds(info: DatasetInfo) -> float:
    if info.time_start is None or info.time_end is None:
        return 0.0
    return (info.time_end - info.time_start).total_seconds()


def quality_items(info: DatasetInfo) -> list[tuple[str, str]]:
    """The file-level findings of the quality report."""
    q = info.quality
    gap = f" (largest {_human_seconds(q.largest_gap_seconds)})" if q.largest_gap_seconds else ""
    return [
        ("Duplicate timestamps", f"{q.n_duplicate_timestamps:,}"),
        ("Gaps", f"{q.n_gaps:,}{gap if q.n_gaps else ''}"),
        ("Out-of-order rows", f"{q.n_non_monotonic:,}"),
        ("Out-of-range values (treated as missing)",
         "; ".join(o.describe() for o in q.out_of_range) or "none"),
        ("Empty sensors", ", ".join(q.empty_sensors + q.unusable_sensors) or "none"),
        ("Constant sensors", ", ".join(q.constant_sensors) or "none"),
        ("Ignored columns", ", ".join(q.ignored_columns) or "none"),
    ]  # fmt: skip


def sensor_quality_table(info: DatasetInfo) -> pd.DataFrame:
    """One row per sensor: share of missing values, out-of-range readings (counted in the
    missing share), and whether it never changes."""
    q = info.quality
    constant = set(q.constant_sensors)
    out_of_range = {o.sensor: o.count for o in q.out_of_range}
    return pd.DataFrame(
        {
            "sensor": info.sensors,
            "missing": [q.nan_share.get(s, 0.0) for s in info.sensors],
            "out of range": [out_of_range.get(s, 0) for s in info.sensors],
            "constant": [s in constant for s in info.sensors],
        }
    )


def datasets_table(datasets: Sequence[DatasetInfo]) -> pd.DataFrame:
    """The workspace's datasets for display."""
    return pd.DataFrame(
        [
            {
                "name": d.name,
                "source": d.source_file,
                "layout": d.layout,
                "rows": d.n_rows,
                "sensors": len(d.sensors),
                "assets": len(d.assets),
                "from": d.time_start,
                "to": d.time_end,
                "ground truth": d.has_ground_truth,
                "loaded": d.loaded_at,
            }
            for d in datasets
        ]
    )


def _human_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:g} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def slider_step(info: DatasetInfo) -> timedelta:
    """A time-slider step fine enough to zoom to a few hundred samples, coarse enough to drag."""
    if info.time_start is None or info.time_end is None:
        return timedelta(minutes=1)
    span = (info.time_end - info.time_start).total_seconds()
    step = max(info.interval_seconds or 1.0, span / 1000)
    return timedelta(seconds=max(1, int(step)))
