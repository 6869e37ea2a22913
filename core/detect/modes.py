"""Operating modes an analyst marks by hand: machine off, start-up, maintenance.

Such stretches are neither normal behaviour to learn from nor anomalies to alarm on. Runs use
`mode_mask` to keep them out of training and alarms; the triage charts shade them. Marks belong to
the dataset and are never erased: removing one records who removed it and when.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.errors import DataError
from core.store import labels as label_store

MODES = ("machine off", "start-up", "maintenance")


def add_mode(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    asset: str,
    start: datetime,
    end: datetime,
    mode: str,
    analyst: str,
    comment: str = "",
) -> int:
    """Mark one stretch of an asset as an operating mode; returns the mark's id."""
    if mode not in MODES:
        raise DataError(f"Unknown operating mode {mode!r}; use one of {', '.join(MODES)}.")
    info = store.get_dataset(con, dataset_id)
    if asset not in info.assets:
        raise DataError(f"Dataset {info.name!r} has no asset {asset!r}.")
    lo, hi = pd.Timestamp(start), pd.Timestamp(end)
    if hi < lo:
        raise DataError(f"A mode mark must end after it starts ({lo} > {hi}).")
    return label_store.write_with_retry(
        con,
        lambda c: label_store.insert_mode(
            c, dataset_id, asset, lo.to_pydatetime(), hi.to_pydatetime(), mode, analyst, comment
        ),
    )


def remove_mode(con: duckdb.DuckDBPyConnection, mode_id: int, analyst: str) -> None:
    """Retire a mark (kept in the table with who removed it and when)."""
    n = label_store.write_with_retry(
        con, lambda c: label_store.mark_mode_deleted(c, mode_id, analyst)
    )
    if not n:
        raise DataError(f"There is no operating-mode mark #{mode_id} (or it was removed).")


def list_modes(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    asset: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Current marks (id, asset, start_ts, end_ts, mode, comment, analyst, created_at), those
    overlapping [start, end] when given."""
    marks = label_store.read_modes(con, dataset_id, asset)
    keep = np.ones(len(marks), dtype=bool)
    if start is not None:
        keep &= (marks["end_ts"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (marks["start_ts"] <= pd.Timestamp(end)).to_numpy()
    cols = ["id", "asset", "start_ts", "end_ts", "mode", "comment", "analyst", "created_at"]
    return marks.loc[keep, cols].reset_index(drop=True)


def modes_table(marks: pd.DataFrame) -> pd.DataFrame:
    """Mode marks as the page lists them."""
    return pd.DataFrame(
        {
            "mark": marks["id"],
            "asset": marks["asset"],
            "start": marks["start_ts"],
            "end": marks["end_ts"],
            "mode": marks["mode"],
            "comment": marks["comment"],
            "marked by": marks["analyst"],
            "marked at": marks["created_at"],
        }
    )


def intervals_mask(starts: np.ndarray, ends: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """True where `ts` lies in any closed interval [start, end] (vectorised, any overlap)."""
    ts = np.asarray(ts, dtype="datetime64[us]")
    if len(starts) == 0 or len(ts) == 0:
        return np.zeros(len(ts), dtype=bool)
    order = np.argsort(starts, kind="stable")
    s = np.asarray(starts, dtype="datetime64[us]")[order]
    e = np.maximum.accumulate(np.asarray(ends, dtype="datetime64[us]")[order])
    idx = np.searchsorted(s, ts, side="right") - 1
    inside = idx >= 0
    inside[inside] = ts[inside] <= e[idx[inside]]
    return inside


def mode_mask(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    asset: str,
    ts: np.ndarray | pd.Series | Sequence[datetime],
    modes: Sequence[str] | None = None,
) -> np.ndarray:
    """True for each timestamp of `asset` inside a marked stretch (of `modes`, default all).

    For runs: drop these rows from training and never alarm on them.
    """
    marks = label_store.read_modes(con, dataset_id, asset)
    if modes is not None:
        marks = marks[marks["mode"].isin(list(modes))]
    return intervals_mask(
        marks["start_ts"].to_numpy("datetime64[us]"),
        marks["end_ts"].to_numpy("datetime64[us]"),
        np.asarray(pd.DatetimeIndex(ts), dtype="datetime64[us]"),
    )
