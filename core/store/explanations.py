"""SQL for the explanation cache: one row per (run, scope, method) with compact Parquet values.

Explanations are costly (seconds to minutes for model-agnostic SHAP) and never change for a given
run, so each one is computed once, when an analyst first opens it, and kept here. ``scope`` is
``event:<id>`` or ``run``; ``payload`` holds the values as Parquet bytes and ``meta`` what they
mean (JSON). ``version`` is the explanation format: a row of another version is a cache miss.
`read_asset_stretch` and `count_readings_before` are the reads of a readings table that
explanations need beyond `read_readings` (fast arrays; row numbers for FFT frame alignment).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import numpy as np

from core.store.connection import quote_ident
from core.store.turns import dataset_turn, run_dataset
from core.types import ASSET, TS, DatasetInfo


def save_explanation(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    scope: str,
    method: str,
    version: int,
    meta: dict[str, Any],
    payload: bytes,
    elapsed_s: float,
) -> None:
    """Store (or replace) one explanation, in its run's dataset's turn: it is a cache, so for a
    run another session deleted meanwhile nothing is stored (no stray rows)."""
    dataset_id = run_dataset(con, run_id)
    if dataset_id is None:
        return
    with dataset_turn(con, dataset_id, must_exist=False):
        if run_dataset(con, run_id) is None:
            return
        con.execute(
            "INSERT OR REPLACE INTO explanations "
            "(run_id, scope, method, version, created_at, elapsed_s, meta, payload) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                int(run_id),
                scope,
                method,
                int(version),
                datetime.now(),
                float(elapsed_s),
                json.dumps(meta, allow_nan=False),
                payload,
            ],
        )


def load_explanation(
    con: duckdb.DuckDBPyConnection, run_id: int, scope: str, method: str, version: int
) -> tuple[dict[str, Any], bytes] | None:
    """(meta, payload) of a stored explanation of this version, or None (a cache miss)."""
    row = con.execute(
        "SELECT CAST(meta AS VARCHAR), payload FROM explanations "
        "WHERE run_id = ? AND scope = ? AND method = ? AND version = ?",
        [int(run_id), scope, method, int(version)],
    ).fetchone()
    if row is None:
        return None
    return json.loads(row[0]), bytes(row[1])


def list_explanations(con: duckdb.DuckDBPyConnection, run_id: int) -> list[dict[str, Any]]:
    """What is cached for a run: scope, method, version, when, how long it took and its size."""
    rows = con.execute(
        "SELECT scope, method, version, created_at, elapsed_s, octet_length(payload) "
        "FROM explanations WHERE run_id = ? ORDER BY created_at",
        [int(run_id)],
    ).fetchall()
    keys = ("scope", "method", "version", "created_at", "elapsed_s", "bytes")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def count_readings_before(
    con: duckdb.DuckDBPyConnection, info: DatasetInfo, asset: str, ts: Any
) -> int:
    """Row number of the first reading at or after ``ts`` within its asset: explanations rebuild
    features on a stretch of readings, and FFT frames are aligned to the asset's first row."""
    table = quote_ident(info.table_name)
    return int(
        con.execute(
            f"SELECT count(*) FROM {table} WHERE {quote_ident(ASSET)} = ? AND {quote_ident(TS)} < ?",
            [asset, ts],
        ).fetchone()[0]
    )


def read_asset_stretch(
    con: duckdb.DuckDBPyConnection,
    info: DatasetInfo,
    asset: str,
    sensors: Sequence[str],
    start: Any,
    end: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps and sensor values (rows x sensors, NaN for NULL) of one asset in [start, end],
    in time order, as arrays: explanations read long stretches, and skipping the asset column and
    the DataFrame conversion of `read_readings` halves the time."""
    cols = ", ".join(quote_ident(c) for c in sensors)
    ts_col = quote_ident(TS)
    result = con.execute(
        f"SELECT {ts_col}, {cols} FROM {quote_ident(info.table_name)} "
        f"WHERE {quote_ident(ASSET)} = ? AND {ts_col} BETWEEN ? AND ? ORDER BY {ts_col}",
        [asset, start, end],
    ).fetchnumpy()
    stamps = np.asarray(result[TS], dtype="datetime64[us]")
    values = np.empty((len(stamps), len(sensors)))
    for j, name in enumerate(sensors):
        values[:, j] = np.ma.filled(np.ma.asarray(result[name], dtype=np.float64), np.nan)
    return stamps, values


def delete_explanations(con: duckdb.DuckDBPyConnection, run_id: int) -> None:
    """Forget every cached explanation of a run (when the run is deleted)."""
    con.execute("DELETE FROM explanations WHERE run_id = ?", [int(run_id)])
