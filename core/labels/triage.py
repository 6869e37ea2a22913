"""Triage: the review queue of a run and what the Triage page shows of one event.

The queue is a run's events matched to the dataset's current labels (`labels.match_labels`), with
their review status; the views gather readings, scores, labels and modes around an event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.errors import DataError
from core.labels.history import (
    STATUS_TEXT,
    UNREVIEWED,
    as_plain,
    current_labels,
    label_events,
    match_labels,
    update_labels,
)


@dataclass(frozen=True)
class QueueFilter:
    """What the review queue shows; empty tuples mean no filter."""

    assets: tuple[str, ...] = ()
    sensors: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    min_score: float | None = None


QUEUE_COLUMNS = (
    "run_id",
    "event_id",
    "asset",
    "start",
    "end",
    "duration_s",
    "peak_ts",
    "peak_score",
    "severity",
    "top_sensors",
    "status",
    "kind",
    "label_id",
    "label_sensors",
    "comment",
    "reviewed_by",
)


def review_queue(
    con: duckdb.DuckDBPyConnection, run_id: int, flt: QueueFilter | None = None
) -> pd.DataFrame:
    """A run's events with their label status: unreviewed first, then most severe first."""
    from core.detect.runs import get_run, run_events

    run = get_run(con, run_id)
    events = run_events(con, run_id).reset_index(drop=True)
    labels = current_labels(con, run.dataset_id)
    ids = match_labels(events, labels)
    matched = labels.set_index("label_id").reindex(ids)  # all-NaN rows where ids == -1
    queue = events.assign(
        status=matched["verdict"].fillna(UNREVIEWED).to_numpy(),
        kind=[as_plain(k) for k in matched["kind"]],
        label_id=pd.Series(ids, dtype="Int64").mask(ids < 0).array,
        label_sensors=[list(v) if isinstance(v, list) else [] for v in matched["sensors"]],
        comment=[as_plain(c) or "" for c in matched["comment"]],
        reviewed_by=[as_plain(a) or "" for a in matched["updated_by"]],
    )
    queue = filter_queue(queue, flt or QueueFilter())
    order = (queue["status"] != UNREVIEWED).astype(int)
    queue = queue.assign(_order=order).sort_values(
        ["_order", "severity", "peak_score", "event_id"], ascending=[True, False, False, True]
    )
    return queue.drop(columns="_order").reset_index(drop=True)[list(QUEUE_COLUMNS)]


def filter_queue(queue: pd.DataFrame, flt: QueueFilter) -> pd.DataFrame:
    """The rows of a queue that pass the filter, order kept."""
    keep = np.ones(len(queue), dtype=bool)
    if flt.assets:
        keep &= queue["asset"].isin(flt.assets).to_numpy()
    if flt.statuses:
        keep &= queue["status"].isin(flt.statuses).to_numpy()
    if flt.kinds:
        keep &= queue["kind"].isin(flt.kinds).to_numpy()
    if flt.sensors:
        wanted = set(flt.sensors)
        keep &= np.array(
            [
                bool(wanted & (set(a) | set(b)))
                for a, b in zip(queue["top_sensors"], queue["label_sensors"], strict=True)
            ],
            dtype=bool,
        )
    if flt.start is not None:
        keep &= (queue["end"] >= pd.Timestamp(flt.start)).to_numpy()
    if flt.end is not None:
        keep &= (queue["start"] <= pd.Timestamp(flt.end)).to_numpy()
    if flt.min_score is not None:
        keep &= (queue["peak_score"] >= flt.min_score).to_numpy()
    return queue[keep].reset_index(drop=True)


@dataclass(frozen=True)
class ReviewProgress:
    """How far the review of a run is, and what the verdicts say about the detector."""

    n_events: int
    n_reviewed: int
    n_confirmed: int
    n_false_alarm: int
    n_unsure: int

    @property
    def precision(self) -> float | None:
        """Confirmed / (confirmed + false alarms); None before any decisive verdict."""
        decided = self.n_confirmed + self.n_false_alarm
        return self.n_confirmed / decided if decided else None


def review_progress(queue: pd.DataFrame) -> ReviewProgress:
    """Counts of the (unfiltered) queue by status."""
    counts = queue["status"].value_counts()
    return ReviewProgress(
        n_events=len(queue),
        n_reviewed=int((queue["status"] != UNREVIEWED).sum()),
        n_confirmed=int(counts.get("confirmed", 0)),
        n_false_alarm=int(counts.get("false_alarm", 0)),
        n_unsure=int(counts.get("unsure", 0)),
    )


def queue_table(queue: pd.DataFrame) -> pd.DataFrame:
    """The queue as the page shows it: readable columns, one row per event."""
    return pd.DataFrame(
        {
            "event": queue["event_id"].astype("int64"),
            "status": [STATUS_TEXT.get(s, s) for s in queue["status"]],
            "kind": queue["kind"].fillna(""),
            "asset": queue["asset"],
            "start": queue["start"],
            "end": queue["end"],
            "duration": [format_duration(s) for s in queue["duration_s"]],
            "peak score": queue["peak_score"].round(3),
            "severity": queue["severity"].round(2),
            "top sensors": [", ".join(s) for s in queue["top_sensors"]],
            "comment": queue["comment"],
        }
    )


def format_duration(seconds: float) -> str:
    """'45 s', '12 min', '3 h 05 min', '2 d 4 h'."""
    if seconds is None or not np.isfinite(seconds):
        return "–"
    s = int(round(float(seconds)))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def queue_event(queue: pd.DataFrame, position: int) -> dict[str, Any]:
    """One queue row (position taken modulo the length) as plain values (None: no label)."""
    row = queue.iloc[position % len(queue)].to_dict()
    clean = {
        k: as_plain(v) if k not in ("top_sensors", "label_sensors") else v for k, v in row.items()
    }
    clean["start"], clean["end"] = pd.Timestamp(row["start"]), pd.Timestamp(row["end"])
    clean["comment"] = clean["comment"] or ""
    return clean


def queue_position(queue: pd.DataFrame, event_id: int | None) -> int:
    """Where an event sits in the (filtered) queue; 0 when it is not there (any more)."""
    hits = np.flatnonzero(queue["event_id"].to_numpy() == event_id) if event_id is not None else []
    return int(hits[0]) if len(hits) else 0


SHOWN_FIELDS = ("event_id", "status", "kind", "label_id", "reviewed_by")


def event_snapshot(event: Mapping[str, Any]) -> dict[str, Any]:
    """What an analyst saw of an event: kept when the page draws it, compared when they act."""
    return {k: as_plain(event.get(k)) for k in SHOWN_FIELDS}


def event_changed(shown: Mapping[str, Any] | None, event: Mapping[str, Any]) -> str | None:
    """Why a verdict must not be saved on `event`, or None when it is the event as shown.

    Two analysts share a queue: between drawing the page and a click, another one may have
    reviewed the shown event, so the queue re-sorted. A verdict is for the event the analyst
    looked at (by id, never by position), and only as they saw it.
    """
    if shown is None or dict(shown) == event_snapshot(event):
        return None
    if shown.get("event_id") != event.get("event_id"):
        return (
            f"Event {shown.get('event_id')}, which you were looking at, is no longer in this "
            "view (the queue changed). Nothing was saved: check the event below, then choose."
        )
    now = STATUS_TEXT.get(event["status"], event["status"])
    kind = f" / {event['kind']}" if as_plain(event.get("kind")) else ""
    who = as_plain(event.get("reviewed_by")) or "another analyst"
    return (
        f"{who} changed this event while you were looking at it: it is now {now}{kind}. "
        "Nothing was saved: look again, then choose."
    )


def event_title(event: Mapping[str, Any]) -> str:
    """'p1 · 2026-01-01 10:00:00 → 10:10:00 · 10 min · peak 2.31 · Unreviewed'."""
    start, end = pd.Timestamp(event["start"]), pd.Timestamp(event["end"])
    end_text = end.strftime("%H:%M:%S" if end.date() == start.date() else "%Y-%m-%d %H:%M:%S")
    return (
        f"{event['asset']} · {start:%Y-%m-%d %H:%M:%S} → {end_text} · "
        f"{format_duration(event['duration_s'])} · peak {event['peak_score']:.2f} · "
        f"{STATUS_TEXT.get(event['status'], event['status'])}"
        + (f" / {event['kind']}" if as_plain(event.get("kind")) else "")
    )


def set_event_extent(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    event: Mapping[str, Any],
    start: datetime,
    end: datetime,
    analyst: str,
    kind: str | None = None,
    sensors: Sequence[str] | None = None,
) -> int:
    """Correct an event's extent: move its label, or create a confirmed one over the range."""
    if pd.Timestamp(end) < pd.Timestamp(start):
        raise DataError("The corrected extent must end after it starts.")
    label_id = as_plain(event.get("label_id"))
    if label_id is not None:
        return update_labels(con, [label_id], analyst, {"start_ts": start, "end_ts": end})
    row = pd.DataFrame([{**event, "start": start, "end": end}])
    return label_events(con, dataset_id, row, "confirmed", analyst, kind=kind, sensors=sensors)


def labels_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Current labels as the page lists them."""
    return pd.DataFrame(
        {
            "label": frame["label_id"].astype("int64"),
            "asset": frame["asset"],
            "start": frame["start_ts"],
            "end": frame["end_ts"],
            "verdict": [STATUS_TEXT.get(v, v) for v in frame["verdict"]],
            "kind": frame["kind"].fillna(""),
            "sensors": [", ".join(s) for s in frame["sensors"]],
            "comment": frame["comment"],
            "source": frame["source"],
            "updated by": frame["updated_by"],
            "updated": frame["updated_at"],
        }
    )


# --- what the triage chart shows -----------------------------------------------------------

MIN_CONTEXT_SAMPLES = 60
"""Context shown before and after an event: its own duration, at least this many samples."""
MAX_CHART_SENSORS = 4


@dataclass(frozen=True)
class LabelView:
    """One asset over one time window: readings, score and threshold, labels and mode marks."""

    asset: str
    sensors: list[str]
    start: datetime
    end: datetime
    readings: pd.DataFrame
    scores: pd.DataFrame
    threshold: float | None
    labels: pd.DataFrame
    modes: pd.DataFrame
    focus: tuple[datetime, datetime] | None = None


def label_view(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    asset: str,
    sensors: Sequence[str],
    start: datetime,
    end: datetime,
    run_id: int | None = None,
    focus: tuple[datetime, datetime] | None = None,
) -> LabelView:
    """Everything the triage chart needs for one asset and window, in one call."""
    from core.detect.modes import list_modes

    info = store.get_dataset(con, dataset_id)
    chosen = [s for s in sensors if s in info.sensors][:MAX_CHART_SENSORS] or info.sensors[:1]
    readings = store.read_readings(con, info, asset=asset, sensors=chosen, start=start, end=end)
    scores, threshold = pd.DataFrame(columns=["ts", "score", "is_anomaly"]), None
    if run_id is not None:
        from core.detect.runs import (
            ALARM_LINE,  # stored scores are normalised: 1.0 is the alarm line
        )

        scores = store.read_run_scores(con, run_id, asset=asset, start=start, end=end)
        threshold = ALARM_LINE
    return LabelView(
        asset=asset,
        sensors=chosen,
        start=start,
        end=end,
        readings=readings,
        scores=scores,
        threshold=threshold,
        labels=current_labels(con, dataset_id, asset=asset, start=start, end=end),
        modes=list_modes(con, dataset_id, asset=asset, start=start, end=end),
        focus=focus,
    )


def event_sensors(event: Mapping[str, Any], info_sensors: Sequence[str]) -> list[str]:
    """Sensors involved in a queue event: its label's, else its top deviating ones."""
    for key in ("label_sensors", "top_sensors"):
        names = [s for s in (event.get(key) or []) if s in info_sensors]
        if names:
            return names
    return list(info_sensors[:3])


def event_window(
    event: Mapping[str, Any], interval_seconds: float | None
) -> tuple[datetime, datetime]:
    """The event with context: its own duration before and after, at least 60 samples."""
    start, end = pd.Timestamp(event["start"]), pd.Timestamp(event["end"])
    step = float(interval_seconds or 1.0)
    pad = max((end - start).total_seconds(), MIN_CONTEXT_SAMPLES * step)
    delta = pd.Timedelta(seconds=pad)
    return (start - delta).to_pydatetime(), (end + delta).to_pydatetime()


def event_view(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    event: Mapping[str, Any],
    sensors: Sequence[str] | None = None,
) -> LabelView:
    """The detail chart of one queue event: involved sensors and the score around it."""
    from core.detect.runs import get_run

    info = store.get_dataset(con, get_run(con, run_id).dataset_id)
    start, end = event_window(event, info.interval_seconds)
    chosen = list(sensors) if sensors else event_sensors(event, info.sensors)
    focus = (
        pd.Timestamp(event["start"]).to_pydatetime(),
        pd.Timestamp(event["end"]).to_pydatetime(),
    )
    return label_view(con, info.id, str(event["asset"]), chosen, start, end, run_id, focus)


def selected_range(box: Sequence[Mapping[str, Any]] | None) -> tuple[datetime, datetime] | None:
    """The time range of a Plotly box selection (`event["selection"]["box"]`), or None."""
    if not box:
        return None
    xs = box[-1].get("x") or []
    if len(xs) < 2:
        return None
    values = []
    for x in xs:
        if isinstance(x, int | float):
            values.append(pd.Timestamp(x, unit="ms"))
        else:
            values.append(pd.Timestamp(str(x)))
    lo, hi = min(values), max(values)
    return lo.to_pydatetime(), hi.to_pydatetime()
