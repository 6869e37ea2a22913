"""SQL for detection runs: the run record, its per-timestamp scores and its events.

A run is written with `save_run` inside one transaction, so a failure never leaves a run without
its scores or events. Scores and events are inserted from registered frames (one statement each),
not row by row.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import suppress
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import DataError
from core.store.connection import decode_row, json_dumps, quote_ident, transaction
from core.store.turns import dataset_turn, run_dataset

RUN_COLUMNS = (
    "id",
    "dataset_id",
    "assets",
    "detector",
    "detector_used",
    "params",
    "training",
    "threshold_quantile",
    "thresholds",
    "status",
    "created_at",
    "duration_s",
    "n_scores",
    "n_events",
    "versions",
    "evaluation",
)
_JSON_COLUMNS = ("params", "training", "thresholds", "versions", "evaluation")

SCORE_COLUMNS = ("ts", "asset", "score", "is_anomaly", "is_off", "new_mode", "lift")
EVENT_COLUMNS = (
    "event_id",
    "asset",
    "start_ts",
    "end_ts",
    "peak_ts",
    "peak_score",
    "duration_s",
    "n_points",
    "severity",
    "top_sensors",
    "sensor_scores",
)

_SCORES_SCHEMA = pa.schema(
    [
        ("asset", pa.string()),
        ("ts", pa.timestamp("us")),
        ("score", pa.float64()),
        ("is_anomaly", pa.bool_()),
        ("is_off", pa.bool_()),
        ("new_mode", pa.bool_()),
        ("lift", pa.float64()),
    ]
)
_EVENTS_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("asset", pa.string()),
        ("start_ts", pa.timestamp("us")),
        ("end_ts", pa.timestamp("us")),
        ("peak_ts", pa.timestamp("us")),
        ("peak_score", pa.float64()),
        ("duration_s", pa.float64()),
        ("n_points", pa.int64()),
        ("severity", pa.float64()),
        ("top_sensors", pa.list_(pa.string())),
        ("sensor_scores", pa.string()),
    ]
)


def next_run_id(con: duckdb.DuckDBPyConnection) -> int:
    """Reserve the id of a new run."""
    return int(con.execute("SELECT nextval('run_id_seq')").fetchone()[0])


def _scores_table(scores: pd.DataFrame) -> pa.Table:
    """The scores in the column types of `run_scores` (NaN scores become NULL)."""
    return pa.table(
        {
            "asset": scores["asset"].astype(str).to_numpy(dtype=object),
            "ts": pd.to_datetime(scores["ts"]).to_numpy(dtype="datetime64[us]"),
            "score": scores["score"].to_numpy(dtype="float64"),
            "is_anomaly": scores["is_anomaly"].fillna(False).to_numpy(dtype=bool),
            "is_off": scores["is_off"].fillna(False).to_numpy(dtype=bool),
            "new_mode": (
                scores["new_mode"].fillna(False).to_numpy(dtype=bool)
                if "new_mode" in scores
                else np.zeros(len(scores), dtype=bool)
            ),
            "lift": (
                scores["lift"].fillna(1.0).to_numpy(dtype="float64")
                if "lift" in scores
                else np.ones(len(scores))
            ),
        },
        schema=_SCORES_SCHEMA,
    )


def _jsonable(mapping: Any) -> str:
    """`sensor_scores` as JSON text (numpy floats turned into plain floats)."""
    return json_dumps({str(k): float(v) for k, v in dict(mapping or {}).items()})


def _events_table(events: pd.DataFrame) -> pa.Table:
    """Events in the column types of `events`; `events` has the `extract_events` columns."""

    def times(col: str) -> Any:
        return pd.to_datetime(events[col]).to_numpy(dtype="datetime64[us]")

    return pa.table(
        {
            "event_id": events["event_id"].to_numpy(dtype="int64"),
            "asset": events["asset"].astype(str).to_numpy(dtype=object),
            "start_ts": times("start"),
            "end_ts": times("end"),
            "peak_ts": times("peak_ts"),
            "peak_score": events["peak_score"].to_numpy(dtype="float64"),
            "duration_s": events["duration_s"].to_numpy(dtype="float64"),
            "n_points": events["n_points"].to_numpy(dtype="int64"),
            "severity": events["severity"].to_numpy(dtype="float64"),
            "top_sensors": [[str(s) for s in v] for v in events["top_sensors"]],
            "sensor_scores": [_jsonable(v) for v in events["sensor_scores"]],
        },
        schema=_EVENTS_SCHEMA,
    )


def _insert_registered(
    con: duckdb.DuckDBPyConnection, view: str, table: pa.Table, sql: str, params: list
) -> None:
    """Run one INSERT ... SELECT over an Arrow table registered as `view`.

    After a failed statement the transaction is aborted and even `unregister` fails; the original
    error is the one worth seeing (the rollback drops the view).
    """
    con.register(view, table)
    try:
        con.execute(sql, params)
    except BaseException:
        with suppress(duckdb.Error):
            con.unregister(view)
        raise
    con.unregister(view)


def insert_run_scores(con: duckdb.DuckDBPyConnection, run_id: int, scores: pd.DataFrame) -> None:
    """Bulk-insert per-timestamp scores (ts, asset, score, is_anomaly, is_off, new_mode, lift)
    of a run."""
    view = f"_run_scores_{int(run_id)}"
    _insert_registered(
        con,
        view,
        _scores_table(scores),
        "INSERT INTO run_scores (run_id, asset, ts, score, is_anomaly, is_off, new_mode, lift) "
        f"SELECT ?, asset, ts, score, is_anomaly, is_off, new_mode, lift FROM {quote_ident(view)}",
        [run_id],
    )


def insert_events(con: duckdb.DuckDBPyConnection, run_id: int, events: pd.DataFrame) -> None:
    """Bulk-insert the events of a run (the frame `core.detect.events.extract_events` returns)."""
    if events.empty:
        return
    view = f"_run_events_{int(run_id)}"
    cols = ", ".join(EVENT_COLUMNS)
    select = ", ".join(
        "CAST(sensor_scores AS JSON)" if c == "sensor_scores" else c for c in EVENT_COLUMNS
    )
    _insert_registered(
        con,
        view,
        _events_table(events),
        f"INSERT INTO events (run_id, {cols}) SELECT ?, {select} FROM {quote_ident(view)}",
        [run_id],
    )


def insert_run(con: duckdb.DuckDBPyConnection, record: dict[str, Any]) -> None:
    """Insert the run record; JSON columns are given as Python objects."""
    values = [
        json_dumps(record[c]) if c in _JSON_COLUMNS and record.get(c) is not None else record.get(c)
        for c in RUN_COLUMNS
    ]
    placeholders = ", ".join("?" for _ in RUN_COLUMNS)
    con.execute(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({placeholders})", values)


def save_run(
    con: duckdb.DuckDBPyConnection,
    record: dict[str, Any],
    scores: pd.DataFrame,
    events: pd.DataFrame,
    model: bytes | None = None,
) -> None:
    """Store a whole run (record, scores, events and its fitted model's bytes) all or nothing,
    in its dataset's turn (a dataset deleted meanwhile gets no run)."""
    with dataset_turn(con, record["dataset_id"]), transaction(con):
        insert_run(con, record)
        insert_run_scores(con, record["id"], scores)
        insert_events(con, record["id"], events)
        if model is not None:
            con.execute(
                "INSERT INTO run_models (run_id, model_sha256, model_bytes, model) "
                "VALUES (?, ?, ?, ?)",
                [record["id"], hashlib.sha256(model).hexdigest(), len(model), model],
            )


def read_run_model(con: duckdb.DuckDBPyConnection, run_id: int) -> bytes | None:
    """The skops bytes of a run's fitted model, or None (runs stored before models were kept)."""
    row = con.execute("SELECT model FROM run_models WHERE run_id = ?", [run_id]).fetchone()
    return None if row is None else bytes(row[0])


def _row_to_record(row: tuple) -> dict[str, Any]:
    return decode_row(RUN_COLUMNS, row, _JSON_COLUMNS, ("assets",))


def list_runs(con: duckdb.DuckDBPyConnection, dataset_id: int) -> list[dict[str, Any]]:
    """Run records of a dataset, newest first."""
    rows = con.execute(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE dataset_id = ? "
        "ORDER BY created_at DESC, id DESC",
        [dataset_id],
    ).fetchall()
    return [_row_to_record(r) for r in rows]


def get_run(con: duckdb.DuckDBPyConnection, run_id: int) -> dict[str, Any] | None:
    """One run record, or None."""
    row = con.execute(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = ?", [run_id]
    ).fetchone()
    return None if row is None else _row_to_record(row)


def get_runs(con: duckdb.DuckDBPyConnection, run_ids: list[int]) -> list[dict[str, Any]]:
    """Several run records, in the order of `run_ids` (unknown ids are skipped)."""
    if not run_ids:
        return []
    rows = con.execute(
        f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE list_contains(?, id)",
        [[int(i) for i in run_ids]],
    ).fetchall()
    by_id = {r[0]: _row_to_record(r) for r in rows}
    return [by_id[i] for i in run_ids if i in by_id]


def delete_run(con: duckdb.DuckDBPyConnection, run_id: int) -> None:
    """Remove a run with its scores, events and cached explanations, all or nothing."""
    dataset_id = run_dataset(con, run_id)
    if dataset_id is None:
        return
    with dataset_turn(con, dataset_id, must_exist=False), transaction(con):
        con.execute("DELETE FROM explanations WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM run_models WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM events WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM run_scores WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM runs WHERE id = ?", [run_id])


def delete_runs_of_dataset(con: duckdb.DuckDBPyConnection, dataset_id: int) -> None:
    """Remove every run of a dataset (for deleting the dataset itself; call inside its
    transaction)."""
    ids = "SELECT id FROM runs WHERE dataset_id = ?"
    con.execute(f"DELETE FROM explanations WHERE run_id IN ({ids})", [dataset_id])
    con.execute(f"DELETE FROM run_models WHERE run_id IN ({ids})", [dataset_id])
    con.execute(f"DELETE FROM events WHERE run_id IN ({ids})", [dataset_id])
    con.execute(f"DELETE FROM run_scores WHERE run_id IN ({ids})", [dataset_id])
    con.execute("DELETE FROM runs WHERE dataset_id = ?", [dataset_id])


def read_run_scores(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    asset: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Scores of a run (`SCORE_COLUMNS`) ordered by asset, time."""
    where, params = ["run_id = ?"], [run_id]
    if asset is not None:
        where.append("asset = ?")
        params.append(asset)
    if start is not None:
        where.append("ts >= ?")
        params.append(start)
    if end is not None:
        where.append("ts <= ?")
        params.append(end)
    return con.execute(
        f"SELECT {', '.join(SCORE_COLUMNS)} FROM run_scores WHERE {' AND '.join(where)} "
        "ORDER BY asset, ts",
        params,
    ).df()


def count_run_scores(con: duckdb.DuckDBPyConnection, run_id: int) -> int:
    return int(
        con.execute("SELECT count(*) FROM run_scores WHERE run_id = ?", [run_id]).fetchone()[0]
    )


def read_events(
    con: duckdb.DuckDBPyConnection, run_id: int, asset: str | None = None
) -> pd.DataFrame:
    """Events of a run, most severe first (columns as `extract_events`, plus `run_id`)."""
    where, params = ["run_id = ?"], [run_id]
    if asset is not None:
        where.append("asset = ?")
        params.append(asset)
    frame = con.execute(
        'SELECT run_id, event_id, asset, start_ts AS start, end_ts AS "end", peak_ts, '
        "peak_score, duration_s, n_points, severity, top_sensors, "
        "CAST(sensor_scores AS VARCHAR) AS sensor_scores "
        f"FROM events WHERE {' AND '.join(where)} "
        "ORDER BY severity DESC, peak_score DESC, event_id",
        params,
    ).df()
    frame["top_sensors"] = [list(v) for v in frame["top_sensors"]]
    frame["sensor_scores"] = [json.loads(v) if v else {} for v in frame["sensor_scores"]]
    return frame


def append_to_run(
    con: duckdb.DuckDBPyConnection, run_id: int, scores: pd.DataFrame, events: pd.DataFrame
) -> pd.DataFrame:
    """Add scores of new rows and their events to a stored run, all or nothing; the events get
    ids after the run's last. Returns them as stored."""
    dataset_id = run_dataset(con, run_id)
    if dataset_id is None:
        raise DataError(f"Run #{run_id} was deleted by another session meanwhile.")
    with dataset_turn(con, dataset_id), transaction(con):
        [(last,)] = con.execute(
            "SELECT coalesce(max(event_id), 0) FROM events WHERE run_id = ?", [run_id]
        ).fetchall()
        events = events.assign(event_id=events["event_id"] + int(last)) if len(events) else events
        insert_run_scores(con, run_id, scores)
        insert_events(con, run_id, events)
        con.execute(
            "UPDATE runs SET n_scores = n_scores + ?, n_events = n_events + ? WHERE id = ?",
            [len(scores), len(events), run_id],
        )
    return events
