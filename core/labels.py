"""Labels: analysts' verdicts on time ranges of a dataset, kept as an append-only history.

A label belongs to the dataset, not to a run: it survives deleting runs and applies to every later
run, whose events are matched to labels by time overlap on the same asset. Every change appends
snapshots (one change id per user action); the current labels are a query over that history, and
undo appends the inverse of the analyst's last change.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.errors import DataError
from core.store import labels as label_store

VERDICTS = ("confirmed", "false_alarm", "unsure")
UNREVIEWED = "unreviewed"
STATUSES = (UNREVIEWED, *VERDICTS)
STATUS_TEXT = {
    UNREVIEWED: "Unreviewed",
    "confirmed": "Confirmed",
    "false_alarm": "False alarm",
    "unsure": "Unsure",
}
SOURCES = ("detector", "analyst", "similar", "import")
EDITABLE = ("asset", "start_ts", "end_ts", "verdict", "kind", "sensors", "comment")


@dataclass(frozen=True)
class LabelDraft:
    """A label to create: what the analyst says about one asset over one time range."""

    asset: str
    start: datetime
    end: datetime
    verdict: str
    kind: str | None = None
    sensors: tuple[str, ...] = ()
    comment: str = ""
    source: str = "analyst"
    run_id: int | None = None
    event_id: int | None = None


@dataclass(frozen=True)
class UndoResult:
    """What an undo reverted."""

    change_id: int
    label_ids: list[int]
    description: str


@dataclass(frozen=True)
class ImportResult:
    """Outcome of an all-or-nothing label import."""

    n_imported: int
    n_skipped: int
    change_id: int | None = None

    @property
    def description(self) -> str:
        skipped = f" ({self.n_skipped} already present, skipped)" if self.n_skipped else ""
        return f"Imported {self.n_imported} label(s){skipped}."


# --- normalisation -------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """DuckDB/pandas values as plain Python (None for NULL/NaN/NaT, tuples for lists)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).to_pydatetime()
    if isinstance(value, list | tuple | np.ndarray):
        return tuple(str(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _state(row: Mapping[str, Any]) -> dict[str, Any]:
    """The comparable label state of a history/current row."""
    state = {f: _clean(row.get(f)) for f in label_store.LABEL_FIELDS}
    state["sensors"] = state["sensors"] or ()
    state["comment"] = state["comment"] or ""
    state["deleted"] = bool(state["deleted"])
    return state


def _check_verdict(verdict: str) -> str:
    if verdict not in VERDICTS:
        raise DataError(f"Unknown verdict {verdict!r}; use one of {', '.join(VERDICTS)}.")
    return verdict


def _check_draft(draft: LabelDraft, assets: Sequence[str], sensors: Sequence[str]) -> None:
    _check_verdict(draft.verdict)
    if draft.asset not in assets:
        raise DataError(f"The dataset has no asset {draft.asset!r}.")
    unknown = [s for s in draft.sensors if s not in sensors]
    if unknown:
        raise DataError(f"The dataset has no sensor {unknown[0]!r}.")
    if pd.Timestamp(draft.end) < pd.Timestamp(draft.start):
        raise DataError(f"A label must end after it starts ({draft.start} > {draft.end}).")
    if draft.source not in SOURCES:
        raise DataError(f"Unknown label source {draft.source!r}.")


def _kind(kind: str | None) -> str | None:
    return (kind or "").strip() or None


# --- writing: one change id per action, all or nothing -------------------------------------


Build = Callable[[duckdb.DuckDBPyConnection, int], list[dict[str, Any]]]


def _commit(con: duckdb.DuckDBPyConnection, build: Build) -> tuple[int, list[dict[str, Any]]]:
    """Reserve a change id, build its rows inside the transaction, append them (with retry)."""

    def work(c: duckdb.DuckDBPyConnection) -> tuple[int, list[dict[str, Any]]]:
        change_id = label_store.next_change_id(c)
        rows = build(c, change_id)
        label_store.append_history(c, rows)
        return change_id, rows

    return label_store.write_with_retry(con, work)


def _create_rows(
    con: duckdb.DuckDBPyConnection,
    change_id: int,
    dataset_id: int,
    drafts: Sequence[LabelDraft],
    analyst: str,
    action: str = "create",
) -> list[dict[str, Any]]:
    ids = label_store.next_label_ids(con, len(drafts))
    return [
        {
            "change_id": change_id,
            "label_id": label_id,
            "dataset_id": dataset_id,
            "action": action,
            "asset": d.asset,
            "start_ts": pd.Timestamp(d.start).to_pydatetime(),
            "end_ts": pd.Timestamp(d.end).to_pydatetime(),
            "verdict": d.verdict,
            "kind": _kind(d.kind),
            "sensors": [str(s) for s in d.sensors],
            "comment": d.comment or "",
            "source": d.source,
            "run_id": d.run_id,
            "event_id": d.event_id,
            "deleted": False,
            "analyst": analyst,
        }
        for label_id, d in zip(ids, drafts, strict=True)
    ]


def _update_rows(
    con: duckdb.DuckDBPyConnection,
    change_id: int,
    label_ids: Iterable[int],
    changes: Mapping[str, Any],
    analyst: str,
    action: str = "update",
) -> list[dict[str, Any]]:
    ids = list(dict.fromkeys(int(i) for i in label_ids))
    states = {int(r["label_id"]): r for r in label_store.latest_states(con, ids)}
    rows = []
    for label_id in ids:
        row = states.get(label_id)
        if row is None or row["deleted"]:
            raise DataError(f"Label #{label_id} does not exist any more (it was deleted).")
        old = _state(row)
        new = {**old, **{k: _clean(v) for k, v in changes.items()}}
        new["sensors"] = new["sensors"] or ()
        new["comment"] = new["comment"] or ""
        if action == "delete":
            new["deleted"] = True
        if new == old:
            continue
        if new["end_ts"] < new["start_ts"]:
            raise DataError(f"Label #{label_id} would end before it starts.")
        new["sensors"] = list(new["sensors"])
        rows.append(
            {
                **new,
                "change_id": change_id,
                "label_id": label_id,
                "dataset_id": int(row["dataset_id"]),
                "action": action,
                "analyst": analyst,
            }
        )
    return rows


def _check_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise DataError(f"A label has no editable field {sorted(unknown)[0]!r}.")
    out = dict(changes)
    if "verdict" in out:
        _check_verdict(out["verdict"])
    if "kind" in out:
        out["kind"] = _kind(out["kind"])
    if "sensors" in out:
        out["sensors"] = tuple(str(s) for s in out["sensors"] or ())
    for key in ("start_ts", "end_ts"):
        if key in out:
            out[key] = pd.Timestamp(out[key]).to_pydatetime()
    return out


def create_labels(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    drafts: Sequence[LabelDraft],
    analyst: str,
) -> list[int]:
    """Create labels in one change; returns their ids."""
    if not drafts:
        return []
    info = store.get_dataset(con, dataset_id)
    for d in drafts:
        _check_draft(d, info.assets, info.sensors)
    _, rows = _commit(con, lambda c, cid: _create_rows(c, cid, dataset_id, drafts, analyst))
    return [int(r["label_id"]) for r in rows]


def update_labels(
    con: duckdb.DuckDBPyConnection,
    label_ids: Sequence[int],
    analyst: str,
    changes: Mapping[str, Any],
) -> int:
    """Change fields (`EDITABLE`) of several labels in one change; returns the change id."""
    checked = _check_changes(changes)
    change_id, _ = _commit(con, lambda c, cid: _update_rows(c, cid, label_ids, checked, analyst))
    return change_id


def delete_labels(con: duckdb.DuckDBPyConnection, label_ids: Sequence[int], analyst: str) -> int:
    """Delete labels in one change (their history stays; undo brings them back)."""
    change_id, _ = _commit(
        con, lambda c, cid: _update_rows(c, cid, label_ids, {}, analyst, action="delete")
    )
    return change_id


def label_events(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    events: pd.DataFrame,
    verdict: str,
    analyst: str,
    kind: str | None = None,
    sensors: Sequence[str] | None = None,
    comment: str | None = None,
) -> int:
    """Give queue events a verdict in one change: update their labels or create them.

    `events` are rows of `review_queue`. A new label spans the event, names its run and event and
    records `sensors` (default: the event's top deviating sensors). `kind` is stored as given (a
    verdict other than confirmed usually passes None); `comment=None` keeps existing comments.
    """
    _check_verdict(verdict)
    changes: dict[str, Any] = {"verdict": verdict, "kind": _kind(kind)}
    if sensors is not None:
        changes["sensors"] = tuple(sensors)
    if comment is not None:
        changes["comment"] = comment
    labelled = events[events["label_id"].notna()]
    fresh = events[events["label_id"].isna()]
    drafts = [
        LabelDraft(
            asset=str(e["asset"]),
            start=e["start"],
            end=e["end"],
            verdict=verdict,
            kind=kind,
            sensors=tuple(sensors if sensors is not None else e["top_sensors"]),
            comment=comment or "",
            source="detector",
            run_id=int(e["run_id"]),
            event_id=int(e["event_id"]),
        )
        for e in fresh.to_dict("records")
    ]
    if drafts:
        info = store.get_dataset(con, dataset_id)
        for d in drafts:
            _check_draft(d, info.assets, info.sensors)

    def build(c: duckdb.DuckDBPyConnection, cid: int) -> list[dict[str, Any]]:
        ids = [int(i) for i in labelled["label_id"]]
        return _update_rows(c, cid, ids, changes, analyst) + _create_rows(
            c, cid, dataset_id, drafts, analyst
        )

    change_id, _ = _commit(con, build)
    return change_id


def undo_last(con: duckdb.DuckDBPyConnection, dataset_id: int, analyst: str) -> UndoResult | None:
    """Revert the analyst's last change in the dataset by appending its inverse.

    Returns None when there is nothing to undo. Refuses (`DataError`) when another change touched
    the same labels since, so an undo never silently overwrites someone else's work.
    """
    found: dict[str, Any] = {}

    def build(c: duckdb.DuckDBPyConnection, cid: int) -> list[dict[str, Any]]:
        target = label_store.last_undoable_change(c, dataset_id, analyst)
        if target is None:
            return []
        entries = label_store.change_rows(c, target)
        produced = {r["seq"]: r for r in label_store.history_rows(c, [e["seq"] for e in entries])}
        prev_seqs = [e["prev_seq"] for e in entries if e["prev_seq"] is not None]
        previous = {r["seq"]: r for r in label_store.history_rows(c, prev_seqs)}
        current = {
            r["label_id"]: r for r in label_store.latest_states(c, [e["label_id"] for e in entries])
        }
        rows = []
        for e in entries:
            now, made = current[e["label_id"]], produced[e["seq"]]
            if _state(now) != _state(made):
                raise DataError(
                    f"Cannot undo: label #{e['label_id']} was changed by {now['updated_by']} "
                    "after your change. Edit it directly instead."
                )
            if e["prev_seq"] is None:
                restored = {**_state(made), "deleted": True}
            else:
                restored = _state(previous[e["prev_seq"]])
            restored["sensors"] = list(restored["sensors"])
            rows.append(
                {
                    **restored,
                    "change_id": cid,
                    "label_id": int(e["label_id"]),
                    "dataset_id": dataset_id,
                    "action": "undo",
                    "analyst": analyst,
                    "undoes": target,
                }
            )
        found.update(target=target, actions={produced[e["seq"]]["action"] for e in entries})
        return rows

    _, rows = _commit(con, build)
    if not found:
        return None
    ids = [int(r["label_id"]) for r in rows]
    what = "/".join(sorted(found["actions"]))
    return UndoResult(
        change_id=found["target"],
        label_ids=ids,
        description=f"Undid {what} of {len(ids)} label(s) (change #{found['target']}).",
    )


# --- reading ---------------------------------------------------------------------------------


def current_labels(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    asset: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """The dataset's current labels (one row per label id, deleted excluded)."""
    frame = label_store.read_labels(con, dataset_id, asset, start, end)
    frame["sensors"] = [list(v) for v in frame["sensors"]]
    return frame


def get_label(con: duckdb.DuckDBPyConnection, label_id: int) -> dict[str, Any]:
    """One label's current state; `DataError` if it does not exist or was deleted."""
    rows = label_store.latest_states(con, [int(label_id)])
    if not rows or rows[0]["deleted"]:
        raise DataError(f"There is no label #{label_id} (any more).")
    return {**rows[0], "sensors": list(rows[0]["sensors"])}


def _describe(row: Mapping[str, Any]) -> str:
    """One line saying what a history row changed (from -> to)."""
    action = row["action"]
    if _clean(row["prev_verdict"]) is None:  # the label's first row
        return (
            f"{STATUS_TEXT.get(row['verdict'], row['verdict'])}"
            f"{' / ' + row['kind'] if _clean(row['kind']) else ''} on {row['asset']} "
            f"{_fmt_ts(row['start_ts'])} – {_fmt_ts(row['end_ts'])}; "
            f"sensors {', '.join(_clean(row['sensors']) or ()) or '–'}"
        )
    parts = []
    for f in label_store.LABEL_FIELDS:
        old, new = _clean(row[f"prev_{f}"]), _clean(row[f])
        if old == new or (f == "comment" and (old or "") == (new or "")):
            continue
        if f == "deleted":
            parts.append("deleted" if new else "restored")
            continue
        parts.append(f"{f.removesuffix('_ts')}: {_fmt_value(old)} → {_fmt_value(new)}")
    text = "; ".join(parts) or "no change"
    return f"undo of change #{int(row['undoes'])}: {text}" if action == "undo" else text


def _fmt_ts(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def _fmt_value(value: Any) -> str:
    if value is None or value == "" or value == ():
        return "–"
    if isinstance(value, tuple):
        return ", ".join(value)
    if isinstance(value, datetime):
        return _fmt_ts(value)
    return STATUS_TEXT.get(value, str(value)) if isinstance(value, str) else str(value)


def audit_log(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    label_id: int | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Who changed which label, from what to what, when; newest first (the `limit` newest)."""
    hist = label_store.read_label_history(con, dataset_id, label_id, limit)
    return pd.DataFrame(
        {
            "when": hist["changed_at"],
            "analyst": hist["analyst"],
            "label": hist["label_id"].astype("int64"),
            "change": hist["change_id"].astype("int64"),
            "action": hist["action"],
            "what": [_describe(r) for r in hist.to_dict("records")],
        }
    )


# --- events of runs vs labels --------------------------------------------------------------


def _as_us(column: pd.Series) -> np.ndarray:
    return column.to_numpy("datetime64[us]").astype(np.int64)


def match_labels(events: pd.DataFrame, labels: pd.DataFrame) -> np.ndarray:
    """For each event, the id of its label (or -1): the label made from that very event, else
    the label on the same asset overlapping it most (a later run's events inherit verdicts)."""
    out = np.full(len(events), -1, dtype=np.int64)
    if events.empty or labels.empty:
        return out
    ev_asset, lab_asset = events["asset"].to_numpy(str), labels["asset"].to_numpy(str)
    for asset in np.intersect1d(ev_asset, lab_asset):  # per asset: small overlap matrices
        ev, lab = events[ev_asset == asset], labels[lab_asset == asset]
        overlap = np.minimum(_as_us(ev["end"])[:, None], _as_us(lab["end_ts"])[None, :])
        overlap -= np.maximum(_as_us(ev["start"])[:, None], _as_us(lab["start_ts"])[None, :])
        score = np.where(overlap >= 0, overlap.astype(np.float64), -np.inf)
        if "run_id" in ev:
            own = np.ones_like(score, dtype=bool)
            for col in ("run_id", "event_id"):
                mine = ev[col].to_numpy(np.float64)[:, None]
                own &= mine == lab[col].to_numpy(np.float64, na_value=np.nan)[None, :]
            score[own] = np.inf
        best = score.argmax(axis=1)
        found = score[np.arange(len(ev)), best] > -np.inf
        rows = np.flatnonzero(ev_asset == asset)
        out[rows[found]] = lab["label_id"].to_numpy(np.int64)[best[found]]
    return out
    ev_start = events["start"].to_numpy("datetime64[us]").astype(np.int64)
    ev_end = events["end"].to_numpy("datetime64[us]").astype(np.int64)
    lab_start = labels["start_ts"].to_numpy("datetime64[us]").astype(np.int64)
    lab_end = labels["end_ts"].to_numpy("datetime64[us]").astype(np.int64)
    overlap = np.minimum(ev_end[:, None], lab_end[None, :]) - np.maximum(
        ev_start[:, None], lab_start[None, :]
    )
    same_asset = events["asset"].to_numpy(str)[:, None] == labels["asset"].to_numpy(str)[None, :]
    score = np.where(same_asset & (overlap >= 0), overlap.astype(np.float64), -np.inf)
    if "run_id" in events and "run_id" in labels:
        own = (
            events["run_id"].to_numpy(np.float64)[:, None]
            == labels["run_id"].to_numpy(np.float64, na_value=np.nan)[None, :]
        ) & (
            events["event_id"].to_numpy(np.float64)[:, None]
            == labels["event_id"].to_numpy(np.float64, na_value=np.nan)[None, :]
        )
        score = np.where(own, np.inf, score)
    best = score.argmax(axis=1)
    found = score[np.arange(len(events)), best] > -np.inf
    out[found] = labels["label_id"].to_numpy(np.int64)[best[found]]
    return out


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
    from core.runs import get_run, run_events

    run = get_run(con, run_id)
    events = run_events(con, run_id).reset_index(drop=True)
    labels = current_labels(con, run.dataset_id)
    ids = match_labels(events, labels)
    matched = labels.set_index("label_id").reindex(ids)  # all-NaN rows where ids == -1
    queue = events.assign(
        status=matched["verdict"].fillna(UNREVIEWED).to_numpy(),
        kind=[_clean(k) for k in matched["kind"]],
        label_id=pd.Series(ids, dtype="Int64").mask(ids < 0).array,
        label_sensors=[list(v) if isinstance(v, list) else [] for v in matched["sensors"]],
        comment=[_clean(c) or "" for c in matched["comment"]],
        reviewed_by=[_clean(a) or "" for a in matched["updated_by"]],
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
        k: _clean(v) if k not in ("top_sensors", "label_sensors") else v for k, v in row.items()
    }
    clean["start"], clean["end"] = pd.Timestamp(row["start"]), pd.Timestamp(row["end"])
    clean["comment"] = clean["comment"] or ""
    return clean


def queue_position(queue: pd.DataFrame, event_id: int | None) -> int:
    """Where an event sits in the (filtered) queue; 0 when it is not there (any more)."""
    hits = np.flatnonzero(queue["event_id"].to_numpy() == event_id) if event_id is not None else []
    return int(hits[0]) if len(hits) else 0


def event_title(event: Mapping[str, Any]) -> str:
    """'p1 · 2026-01-01 10:00:00 → 10:10:00 · 10 min · peak 2.31 · Unreviewed'."""
    start, end = pd.Timestamp(event["start"]), pd.Timestamp(event["end"])
    end_text = end.strftime("%H:%M:%S" if end.date() == start.date() else "%Y-%m-%d %H:%M:%S")
    return (
        f"{event['asset']} · {start:%Y-%m-%d %H:%M:%S} → {end_text} · "
        f"{format_duration(event['duration_s'])} · peak {event['peak_score']:.2f} · "
        f"{STATUS_TEXT.get(event['status'], event['status'])}"
        + (f" / {event['kind']}" if _clean(event.get("kind")) else "")
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
    label_id = _clean(event.get("label_id"))
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
    from core.modes import list_modes

    info = store.get_dataset(con, dataset_id)
    chosen = [s for s in sensors if s in info.sensors][:MAX_CHART_SENSORS] or info.sensors[:1]
    readings = store.read_readings(con, info, asset=asset, sensors=chosen, start=start, end=end)
    scores, threshold = pd.DataFrame(columns=["ts", "score", "is_anomaly"]), None
    if run_id is not None:
        from core.runs import ALARM_LINE  # stored scores are normalised: 1.0 is the alarm line

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
    from core.runs import get_run

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


# --- fault-kind taxonomy ---------------------------------------------------------------------


def fault_kinds(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The workspace's editable fault-kind taxonomy."""
    return label_store.read_fault_kinds(con)


def set_fault_kinds(con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> list[str]:
    """Replace the taxonomy (order kept, blanks and duplicates dropped); labels keep their kind."""
    clean = list(dict.fromkeys(n.strip() for n in names if n and n.strip()))
    if not clean:
        raise DataError("The fault taxonomy needs at least one kind.")
    label_store.write_with_retry(con, lambda c: label_store.replace_fault_kinds(c, clean))
    return clean


# --- import / export -------------------------------------------------------------------------

EXPORT_COLUMNS = ("asset", "start", "end", "verdict", "kind", "sensors", "comment")
REQUIRED_COLUMNS = ("asset", "start", "end", "verdict")
SENSOR_SEPARATOR = ";"
MAX_REPORTED_ERRORS = 20


def export_frame(con: duckdb.DuckDBPyConnection, dataset_id: int) -> pd.DataFrame:
    """The dataset's current labels in the exchange format (`EXPORT_COLUMNS`)."""
    labels = current_labels(con, dataset_id)
    return pd.DataFrame(
        {
            "asset": labels["asset"],
            "start": labels["start_ts"],
            "end": labels["end_ts"],
            "verdict": labels["verdict"],
            "kind": labels["kind"],
            "sensors": labels["sensors"],
            "comment": labels["comment"],
        },
        columns=list(EXPORT_COLUMNS),
    )


def export_labels(con: duckdb.DuckDBPyConnection, dataset_id: int, fmt: str = "csv") -> bytes:
    """The current labels as CSV (sensors joined with ';') or Parquet (a list column)."""
    frame = export_frame(con, dataset_id)
    buffer = io.BytesIO()
    if fmt == "csv":
        frame = frame.assign(sensors=[SENSOR_SEPARATOR.join(s) for s in frame["sensors"]])
        frame.to_csv(buffer, index=False, date_format="%Y-%m-%d %H:%M:%S.%f")
    elif fmt == "parquet":
        frame.to_parquet(buffer, index=False)
    else:
        raise DataError(f"Unknown export format {fmt!r}; use csv or parquet.")
    return buffer.getvalue()


def _read_label_file(data: bytes, filename: str) -> pd.DataFrame:
    suffix = filename.lower().rsplit(".", 1)[-1]
    try:
        if suffix == "csv":
            frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
        elif suffix in ("parquet", "pq"):
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            raise DataError(f"{filename}: import labels from a .csv or .parquet file.")
    except (ValueError, OSError) as exc:
        raise DataError(f"{filename} cannot be read as a label file: {exc}") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{filename} has no column {missing[0]!r}; a label file needs "
            f"{', '.join(REQUIRED_COLUMNS)} (optional: kind, sensors, comment)."
        )
    if frame.empty:
        raise DataError(f"{filename} holds no labels.")
    return frame.reset_index(drop=True)


def _text(value: Any) -> str:
    value = _clean(value)
    return "" if value is None else str(value).strip()


def _sensor_list(value: Any) -> list[str]:
    value = _clean(value)
    if value is None:
        return []
    if isinstance(value, tuple):
        return [v.strip() for v in value if v.strip()]
    return [v.strip() for v in str(value).split(SENSOR_SEPARATOR) if v.strip()]


def _parse_times(column: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(column.map(_text).replace("", None), errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def validate_label_file(
    frame: pd.DataFrame, assets: Sequence[str], sensors: Sequence[str], kinds: Sequence[str]
) -> tuple[list[LabelDraft], list[str]]:
    """Drafts for the good rows and one message per bad row ('row 3: ...', data rows from 1)."""
    starts, ends = _parse_times(frame["start"]), _parse_times(frame["end"])
    known_kinds = {k.lower(): k for k in kinds}
    drafts, errors = [], []
    for i, row in enumerate(frame.to_dict("records")):
        problems = []
        asset = _text(row["asset"])
        if asset not in assets:
            problems.append(f"asset {asset!r} is not in the dataset")
        if pd.isna(starts[i]):
            problems.append(f"start {_text(row['start'])!r} is not a time")
        if pd.isna(ends[i]):
            problems.append(f"end {_text(row['end'])!r} is not a time")
        if not (pd.isna(starts[i]) or pd.isna(ends[i])) and ends[i] < starts[i]:
            problems.append("end is before start")
        verdict = _text(row["verdict"]).lower().replace(" ", "_").replace("-", "_")
        if verdict not in VERDICTS:
            problems.append(
                f"verdict {_text(row['verdict'])!r} is not one of {', '.join(VERDICTS)}"
            )
        kind = _text(row.get("kind"))
        if kind and kind.lower() not in known_kinds:
            problems.append(f"kind {kind!r} is not in the taxonomy (add it first)")
        names = _sensor_list(row.get("sensors"))
        unknown = [s for s in names if s not in sensors]
        if unknown:
            problems.append(f"sensor {unknown[0]!r} is not in the dataset")
        if problems:
            errors.append(f"row {i + 1}: " + "; ".join(problems))
            continue
        drafts.append(
            LabelDraft(
                asset=asset,
                start=starts[i].to_pydatetime(),
                end=ends[i].to_pydatetime(),
                verdict=verdict,
                kind=known_kinds.get(kind.lower()) if kind else None,
                sensors=tuple(names),
                comment=_text(row.get("comment")),
                source="import",
            )
        )
    return drafts, errors


def _label_key(asset: str, start: Any, end: Any, verdict: str, kind: Any) -> tuple:
    return (asset, pd.Timestamp(start), pd.Timestamp(end), verdict, _clean(kind) or None)


def import_labels(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    data: bytes,
    filename: str,
    analyst: str,
) -> ImportResult:
    """Import a CSV/Parquet label file all or nothing: any bad row rejects the whole file.

    Rows identical to a current label (asset, start, end, verdict, kind) are skipped, so importing
    the same file twice adds nothing.
    """
    info = store.get_dataset(con, dataset_id)
    frame = _read_label_file(data, filename)
    drafts, errors = validate_label_file(frame, info.assets, info.sensors, fault_kinds(con))
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        more = len(errors) - len(shown)
        raise DataError(
            f"{filename}: {len(errors)} of {len(frame)} rows are invalid, nothing was imported "
            "(rows count data rows from 1). "
            + " | ".join(shown)
            + (f" | ... and {more} more." if more else "")
        )
    skipped: list[int] = []

    def build(c: duckdb.DuckDBPyConnection, cid: int) -> list[dict[str, Any]]:
        existing = label_store.read_labels(c, dataset_id)
        seen = {
            _label_key(r["asset"], r["start_ts"], r["end_ts"], r["verdict"], r["kind"])
            for r in existing.to_dict("records")
        }
        fresh = []
        for d in drafts:
            key = _label_key(d.asset, d.start, d.end, d.verdict, d.kind)
            if key in seen:
                skipped.append(1)
                continue
            seen.add(key)
            fresh.append(d)
        return _create_rows(c, cid, dataset_id, fresh, analyst, action="import")

    skipped.clear()
    change_id, rows = _commit(con, build)
    return ImportResult(
        n_imported=len(rows), n_skipped=len(skipped), change_id=change_id if rows else None
    )
