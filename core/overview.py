"""The stakeholder overview: per asset, what the latest run found and what analysts decided."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from core import labels, runs, triage
from core.runs import RunSummary
from core.types import DatasetInfo

ATTENTION = "needs attention"
WATCH = "watch"
HEALTHY = "healthy"


@dataclass(frozen=True)
class Overview:
    """What a plant manager reads: headline numbers, asset health, the open events that matter."""

    dataset: DatasetInfo
    run: RunSummary | None
    kpis: list[tuple[str, str]]
    assets: pd.DataFrame
    top_open: pd.DataFrame
    queue: pd.DataFrame


def _asset_health(info: DatasetInfo, queue: pd.DataFrame) -> pd.DataFrame:
    """One row per asset; status is 'needs attention' with a confirmed fault or an open event of
    above-median severity, 'watch' with any other open event, else 'healthy'."""
    cut = float(queue["severity"].median()) if len(queue) else 0.0
    rows = []
    for asset in info.assets:
        mine = queue[queue["asset"] == asset]
        open_ = mine[mine["status"] == labels.UNREVIEWED]
        confirmed = int((mine["status"] == "confirmed").sum())
        if confirmed or (len(open_) and open_["severity"].max() > cut):
            status = ATTENTION
        elif len(open_):
            status = WATCH
        else:
            status = HEALTHY
        rows.append(
            {
                "asset": asset,
                "status": status,
                "events": len(mine),
                "open": len(open_),
                "confirmed faults": confirmed,
                "false alarms": int((mine["status"] == "false_alarm").sum()),
                "last event": mine["end"].max() if len(mine) else pd.NaT,
            }
        )
    return pd.DataFrame(rows)


def dataset_overview(
    con: duckdb.DuckDBPyConnection, info: DatasetInfo, run_id: int | None = None
) -> Overview:
    """The overview of a dataset for one run (default: its latest)."""
    all_runs = runs.list_runs(con, info.id)
    run = next((r for r in all_runs if r.id == run_id), all_runs[0] if all_runs else None)
    if run is None:
        empty = pd.DataFrame()
        return Overview(info, None, [], _asset_health(info, _empty_queue()), empty, empty)
    queue = triage.review_queue(con, run.id)
    progress = triage.review_progress(queue)
    precision = progress.precision
    kpis = [
        ("Assets", str(len(info.assets))),
        ("Events found", f"{progress.n_events:,}"),
        ("Reviewed", f"{progress.n_reviewed:,} of {progress.n_events:,}"),
        ("Confirmed faults", f"{progress.n_confirmed:,}"),
        ("Detector precision", f"{precision:.0%}" if precision is not None else "not yet"),
    ]
    open_events = queue[queue["status"] == labels.UNREVIEWED]
    top_open = open_events.sort_values("severity", ascending=False).head(5)
    return Overview(info, run, kpis, _asset_health(info, queue), top_open, queue)


def events_export(overview: Overview) -> pd.DataFrame:
    """The run's events with the analysts' verdicts, ready for CSV."""
    q = overview.queue
    if q.empty:
        return pd.DataFrame(columns=["asset", "start", "end", "severity", "status"])
    return pd.DataFrame(
        {
            "event": q["event_id"],
            "asset": q["asset"],
            "start": q["start"],
            "end": q["end"],
            "peak_score": q["peak_score"].round(3),
            "severity": q["severity"].round(3),
            "top_sensors": [";".join(s) for s in q["top_sensors"]],
            "status": q["status"],
            "kind": q["kind"],
            "comment": q["comment"],
        }
    )


def _empty_queue() -> pd.DataFrame:
    return pd.DataFrame(columns=["asset", "status", "severity", "end"])
