"""Labels: analysts' verdicts on time ranges of a dataset, kept as an append-only history.

A label belongs to the dataset, not to a run: it survives deleting runs and applies to every later
run, whose events are matched to labels by time overlap on the same asset. Every change appends
snapshots (one change id per user action); the current labels are a query over that history, and
undo appends the inverse of the analyst's last change.
"""

from __future__ import annotations

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


# --- normalisation -------------------------------------------------------------------------


def as_plain(value: Any) -> Any:
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
    state = {f: as_plain(row.get(f)) for f in label_store.LABEL_FIELDS}
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


def commit_change(con: duckdb.DuckDBPyConnection, build: Build) -> tuple[int, list[dict[str, Any]]]:
    """Reserve a change id, build its rows inside the transaction, append them (with retry)."""

    def work(c: duckdb.DuckDBPyConnection) -> tuple[int, list[dict[str, Any]]]:
        change_id = label_store.next_change_id(c)
        rows = build(c, change_id)
        label_store.append_history(c, rows)
        return change_id, rows

    return label_store.write_with_retry(con, work)


def creation_rows(
    con: duckdb.DuckDBPyConnection,
    change_id: int,
    dataset_id: int,
    drafts: Sequence[LabelDraft],
    analyst: str,
    action: str = "create",
) -> list[dict[str, Any]]:
    """History rows that create one new label per draft (for `commit_change`'s builders)."""
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
        new = {**old, **{k: as_plain(v) for k, v in changes.items()}}
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
    _, rows = commit_change(con, lambda c, cid: creation_rows(c, cid, dataset_id, drafts, analyst))
    return [int(r["label_id"]) for r in rows]


def update_labels(
    con: duckdb.DuckDBPyConnection,
    label_ids: Sequence[int],
    analyst: str,
    changes: Mapping[str, Any],
) -> int:
    """Change fields (`EDITABLE`) of several labels in one change; returns the change id."""
    checked = _check_changes(changes)
    change_id, _ = commit_change(
        con, lambda c, cid: _update_rows(c, cid, label_ids, checked, analyst)
    )
    return change_id


def delete_labels(con: duckdb.DuckDBPyConnection, label_ids: Sequence[int], analyst: str) -> int:
    """Delete labels in one change (their history stays; undo brings them back)."""
    change_id, _ = commit_change(
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

    `events` are rows of `triage.review_queue`. A new label spans the event, names its run and event and
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
        return _update_rows(c, cid, ids, changes, analyst) + creation_rows(
            c, cid, dataset_id, drafts, analyst
        )

    change_id, _ = commit_change(con, build)
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

    _, rows = commit_change(con, build)
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
    if as_plain(row["prev_verdict"]) is None:  # the label's first row
        return (
            f"{STATUS_TEXT.get(row['verdict'], row['verdict'])}"
            f"{' / ' + row['kind'] if as_plain(row['kind']) else ''} on {row['asset']} "
            f"{_fmt_ts(row['start_ts'])} – {_fmt_ts(row['end_ts'])}; "
            f"sensors {', '.join(as_plain(row['sensors']) or ()) or '–'}"
        )
    parts = []
    for f in label_store.LABEL_FIELDS:
        old, new = as_plain(row[f"prev_{f}"]), as_plain(row[f])
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
