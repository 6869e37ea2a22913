"""The stakeholder overview: per asset, what the model in use found and what analysts decided,
and what their labels changed (`model_story`: alarms a day before and after learning)."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from core.detect import runs
from core.detect.runs import RunSummary
from core.labels import history as labels
from core.labels import triage
from core.labels.files import csv_bytes
from core.learn import versions
from core.learn.versions import VersionSummary
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
    """The overview of a dataset for one run (default: `core.learn.versions.run_in_use`)."""
    all_runs = runs.list_runs(con, info.id)
    if run_id is None:
        run_id = versions.run_in_use(con, info.id)
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


@dataclass(frozen=True)
class ModelStory:
    """What the analysts' labels changed: the first unsupervised run against every version.

    ``history`` has one row per model, oldest first: the unsupervised run, then each version
    with its labels, alarms a day (events of its run over the dataset's time span) and F1 on
    held-out labels (labels it never learned from; NaN when none could be graded)."""

    baseline: RunSummary
    in_use: VersionSummary | None
    n_confirmed: int
    n_false_alarm: int
    history: pd.DataFrame

    def alarms_per_day(self, model: str) -> float:
        rows = self.history[self.history["model"] == model]
        return float(rows["alarms a day"].iloc[0]) if len(rows) else float("nan")

    @property
    def baseline_name(self) -> str:
        return f"run #{self.baseline.id} (unsupervised)"

    @property
    def in_use_name(self) -> str | None:
        return f"v{self.in_use.id}" if self.in_use is not None else None

    def kpis(self) -> list[tuple[str, str, str | None]]:
        """(label, value, change against the unsupervised run) for the headline numbers."""
        before = self.alarms_per_day(self.baseline_name)
        labelled = [
            ("Confirmed by analysts", str(self.n_confirmed), None),
            ("Labelled false alarms", str(self.n_false_alarm), None),
        ]
        if self.in_use_name is None:
            return [
                ("Model in use", "unsupervised", None),
                ("Alarms a day", f"{before:.1f}", None),
                *labelled,
            ]
        now = self.alarms_per_day(self.in_use_name)
        change = f"{now - before:+.1f} ({(now - before) / before:+.0%})" if before > 0 else None
        return [
            ("Model in use", self.in_use_name, None),
            ("Alarms a day", f"{now:.1f}", change),
            *labelled,
        ]


def model_story(con: duckdb.DuckDBPyConnection, info: DatasetInfo) -> ModelStory | None:
    """The story, or None before any version or unsupervised run exists."""
    all_versions = versions.list_versions(con, info.id)
    plain = [r for r in runs.list_runs(con, info.id) if r.detector != "version"]
    if not all_versions or not plain:
        return None
    baseline = min(plain, key=lambda r: r.id)
    days = max((info.time_end - info.time_start).total_seconds() / 86_400, 1 / 24)
    rows = [
        {
            "model": f"run #{baseline.id} (unsupervised)",
            "created": baseline.created_at,
            "labels": 0,
            "alarms a day": baseline.n_events / days,
            "held-out F1": float("nan"),
            "in use": False,
        }
    ]
    for v in sorted(all_versions, key=lambda v: v.id):
        n_events = runs.get_run(con, v.run_id).n_events if v.run_id is not None else 0
        held = v.metrics.get("held_out") or {}
        graded = held.get("n_labels", 0) and held.get("n_confirmed", 0)
        rows.append(
            {
                "model": f"v{v.id}",
                "created": v.created_at,
                "labels": len(v.label_ids),
                "alarms a day": n_events / days,
                "held-out F1": float(held["f1"]) if graded else float("nan"),
                "in use": v.active,
            }
        )
    current = labels.current_labels(con, info.id)
    counts = current["verdict"].value_counts() if len(current) else pd.Series(dtype=int)
    return ModelStory(
        baseline=baseline,
        in_use=next((v for v in all_versions if v.active), None),
        n_confirmed=int(counts.get("confirmed", 0)),
        n_false_alarm=int(counts.get("false_alarm", 0)),
        history=pd.DataFrame(rows),
    )


def events_csv(overview: Overview) -> bytes:
    """`events_export` as CSV, safe to open in a spreadsheet (formulas in comments defused)."""
    return csv_bytes(events_export(overview))


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
