"""SQL for datasets: their metadata, their readings tables and their ground truth."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

import duckdb
import pandas as pd

from core.errors import DataError
from core.store.connection import quote_ident, transaction
from core.store.runs import delete_runs_of_dataset
from core.store.turns import dataset_turn
from core.types import ASSET, TS, DatasetInfo, QualityReport

T = TypeVar("T")

_DATASET_COLUMNS = (
    "id, name, table_name, source_file, sha256, layout, n_rows, sensors, assets, "
    "time_start, time_end, interval_seconds, loaded_at, quality"
)


def next_dataset_id(con: duckdb.DuckDBPyConnection) -> int:
    """Reserve the id of a new dataset (its readings table is named after it)."""
    return int(con.execute("SELECT nextval('dataset_id_seq')").fetchone()[0])


def readings_table_name(dataset_id: int) -> str:
    return f"readings_{int(dataset_id)}"


def unique_dataset_name(con: duckdb.DuckDBPyConnection, wanted: str) -> str:
    """`wanted`, or `wanted (2)`, `wanted (3)`... so a second upload of a file keeps both."""
    taken = {r[0] for r in con.execute("SELECT name FROM datasets").fetchall()}
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted} ({n})" in taken:
        n += 1
    return f"{wanted} ({n})"


def with_unique_name(write: Callable[[], T], attempts: int = 3) -> T:
    """Run a write that stores a new dataset under `unique_dataset_name`; when another session
    committed a dataset of the same name first, run it again (it then takes 'name (2)').

    DuckDB checks the unique name only at commit, against what committed meanwhile: two
    sessions loading `pump.csv` at once both see 'pump' free, and the second commit fails."""
    for attempt in range(attempts):
        try:
            return write()
        except (duckdb.TransactionException, duckdb.ConstraintException) as exc:
            if not name_taken_meanwhile(exc) or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def name_taken_meanwhile(exc: BaseException) -> bool:
    """A write refused because another session committed the same dataset name first (seen
    on the insert, or on the commit when the other committed in between)."""
    return isinstance(exc, duckdb.TransactionException | duckdb.ConstraintException) and (
        "duplicate key" in str(exc).lower()
    )


def insert_dataset(con: duckdb.DuckDBPyConnection, info: DatasetInfo) -> None:
    """Record a dataset whose readings table already exists (call inside a transaction)."""
    con.execute(
        f"INSERT INTO datasets ({_DATASET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            info.id,
            info.name,
            info.table_name,
            info.source_file,
            info.sha256,
            info.layout,
            info.n_rows,
            list(info.sensors),
            list(info.assets),
            info.time_start,
            info.time_end,
            info.interval_seconds,
            info.loaded_at,
            json.dumps(info.quality.to_dict()),
        ],
    )


def create_readings_from_frame(
    con: duckdb.DuckDBPyConnection, table_name: str, frame: pd.DataFrame
) -> None:
    """Create a readings table from a frame with `ts`, `asset` and numeric sensor columns."""
    view = f"_frame_{table_name}"
    con.register(view, frame)
    try:
        con.execute(
            f"CREATE TABLE {quote_ident(table_name)} AS SELECT * FROM {quote_ident(view)} "
            f"ORDER BY {quote_ident(ASSET)}, {quote_ident(TS)}"
        )
    finally:
        con.unregister(view)


def insert_ground_truth(
    con: duckdb.DuckDBPyConnection, dataset_id: int, faults: pd.DataFrame
) -> None:
    """Store injected faults (asset, start, end, kind, sensors, magnitude, description)."""
    rows = [
        [
            dataset_id,
            str(f["asset"]),
            pd.Timestamp(f["start"]).to_pydatetime(),
            pd.Timestamp(f["end"]).to_pydatetime(),
            str(f["kind"]),
            [str(s) for s in f["sensors"]],
            float(f.get("magnitude", float("nan"))),
            str(f.get("description", "")),
        ]
        for f in faults.to_dict("records")
    ]
    if rows:
        con.executemany("INSERT INTO ground_truth VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)


def add_dataset_from_frame(
    con: duckdb.DuckDBPyConnection,
    info: DatasetInfo,
    frame: pd.DataFrame,
    faults: pd.DataFrame | None = None,
) -> DatasetInfo:
    """Store a whole dataset (readings, metadata, ground truth) all or nothing."""
    with transaction(con):
        create_readings_from_frame(con, info.table_name, frame)
        insert_dataset(con, info)
        if faults is not None and len(faults):
            insert_ground_truth(con, info.id, faults)
    return get_dataset(con, info.id)


def _row_to_info(row: tuple, has_gt: bool) -> DatasetInfo:
    quality = row[13]
    quality = json.loads(quality) if isinstance(quality, str) else (quality or {})
    return DatasetInfo(
        id=row[0],
        name=row[1],
        table_name=row[2],
        source_file=row[3],
        sha256=row[4],
        layout=row[5],
        n_rows=int(row[6]),
        sensors=list(row[7]),
        assets=list(row[8]),
        time_start=row[9],
        time_end=row[10],
        interval_seconds=row[11],
        loaded_at=row[12],
        quality=QualityReport.from_dict(quality),
        has_ground_truth=has_gt,
    )


def list_datasets(con: duckdb.DuckDBPyConnection) -> list[DatasetInfo]:
    """Every dataset, newest first."""
    rows = con.execute(
        f"SELECT {_DATASET_COLUMNS}, "
        "EXISTS (SELECT 1 FROM ground_truth g WHERE g.dataset_id = d.id) "
        "FROM datasets d ORDER BY loaded_at DESC, id DESC"
    ).fetchall()
    return [_row_to_info(r[:14], bool(r[14])) for r in rows]


def get_dataset(con: duckdb.DuckDBPyConnection, key: int | str) -> DatasetInfo:
    """A dataset by id or by name; `DataError` if there is none."""
    column = "id" if isinstance(key, int) else "name"
    row = con.execute(
        f"SELECT {_DATASET_COLUMNS}, "
        "EXISTS (SELECT 1 FROM ground_truth g WHERE g.dataset_id = d.id) "
        f"FROM datasets d WHERE {column} = ?",
        [key],
    ).fetchone()
    if row is None:
        raise DataError(f"There is no dataset {key!r} in this workspace.")
    return _row_to_info(row[:14], bool(row[14]))


def delete_dataset(con: duckdb.DuckDBPyConnection, dataset_id: int) -> None:
    """Remove a dataset with its readings, ground truth, runs, explanations and model versions,
    all or nothing. Its labels and operating-mode marks stay in their append-only history: an
    analyst's verdicts are never destroyed as a side effect."""
    with dataset_turn(con, dataset_id, must_exist=False):
        info = get_dataset(con, dataset_id)
        with transaction(con):
            _delete_dataset(con, dataset_id, info.table_name)


def _delete_dataset(con: duckdb.DuckDBPyConnection, dataset_id: int, table: str) -> None:
    con.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")
    delete_runs_of_dataset(con, dataset_id)
    con.execute("DELETE FROM model_promotions WHERE dataset_id = ?", [dataset_id])
    con.execute("DELETE FROM model_versions WHERE dataset_id = ?", [dataset_id])
    con.execute("DELETE FROM ground_truth WHERE dataset_id = ?", [dataset_id])
    con.execute("DELETE FROM datasets WHERE id = ?", [dataset_id])


def _check_sensors(info: DatasetInfo, sensors: Sequence[str] | None) -> list[str]:
    if sensors is None:
        return list(info.sensors)
    unknown = [s for s in sensors if s not in info.sensors]
    if unknown:
        raise DataError(f"Dataset {info.name!r} has no sensor {unknown[0]!r}.")
    return list(sensors)


def read_readings(
    con: duckdb.DuckDBPyConnection,
    info: DatasetInfo,
    asset: str | None = None,
    sensors: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Readings as a frame (ts, asset, sensors...) ordered by asset and time, optionally filtered."""
    cols = _check_sensors(info, sensors)
    select = ", ".join(quote_ident(c) for c in [TS, ASSET, *cols])
    where, params = [], []
    if asset is not None:
        where.append(f"{quote_ident(ASSET)} = ?")
        params.append(asset)
    if start is not None:
        where.append(f"{quote_ident(TS)} >= ?")
        params.append(start)
    if end is not None:
        where.append(f"{quote_ident(TS)} <= ?")
        params.append(end)
    sql = f"SELECT {select} FROM {quote_ident(info.table_name)}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {quote_ident(ASSET)}, {quote_ident(TS)}"
    return con.execute(sql, params).df()


def read_ground_truth(con: duckdb.DuckDBPyConnection, dataset_id: int) -> pd.DataFrame:
    """Injected faults of a dataset: asset, start, end, kind, sensors, magnitude, description."""
    return con.execute(
        'SELECT asset, start_ts AS start, end_ts AS "end", kind, sensors, magnitude, description '
        "FROM ground_truth WHERE dataset_id = ? ORDER BY asset, start_ts",
        [dataset_id],
    ).df()


def sensor_correlation(
    con: duckdb.DuckDBPyConnection, info: DatasetInfo, asset: str, sensors: Sequence[str]
) -> pd.DataFrame:
    """Pearson correlation matrix of the sensors of one asset, computed inside DuckDB."""
    cols = _check_sensors(info, sensors)
    pairs = [(a, b) for i, a in enumerate(cols) for b in cols[i:]]
    exprs = ", ".join(f"corr({quote_ident(a)}, {quote_ident(b)})" for a, b in pairs)
    if not pairs:
        return pd.DataFrame()
    row = con.execute(
        f"SELECT {exprs} FROM {quote_ident(info.table_name)} WHERE {quote_ident(ASSET)} = ?",
        [asset],
    ).fetchone()
    matrix = pd.DataFrame(1.0, index=cols, columns=cols)
    for (a, b), value in zip(pairs, row, strict=True):
        matrix.loc[a, b] = matrix.loc[b, a] = value if value is not None else float("nan")
    return matrix


def asset_row_counts(con: duckdb.DuckDBPyConnection, info: DatasetInfo) -> dict[str, int]:
    rows = con.execute(
        f"SELECT {quote_ident(ASSET)}, count(*) FROM {quote_ident(info.table_name)} "
        f"GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def asset_time_ranges(
    con: duckdb.DuckDBPyConnection, info: DatasetInfo
) -> dict[str, tuple[datetime, datetime]]:
    """First and last reading time of each asset."""
    t = quote_ident(TS)
    rows = con.execute(
        f"SELECT {quote_ident(ASSET)}, min({t}), max({t}) FROM {quote_ident(info.table_name)} "
        "GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def append_readings(
    con: duckdb.DuckDBPyConnection, target: DatasetInfo, source: DatasetInfo
) -> None:
    """Copy every reading of ``source`` into ``target``'s table (same sensors; call inside a
    transaction) and record ``target``'s new extent."""
    cols = ", ".join(quote_ident(c) for c in [TS, ASSET, *target.sensors])
    con.execute(
        f"INSERT INTO {quote_ident(target.table_name)} ({cols}) "
        f"SELECT {cols} FROM {quote_ident(source.table_name)}"
    )
    con.execute(
        f"UPDATE datasets SET n_rows = (SELECT count(*) FROM {quote_ident(target.table_name)}), "
        "time_start = least(time_start, ?), time_end = greatest(time_end, ?), quality = ? "
        "WHERE id = ?",
        [source.time_start, source.time_end, json.dumps(target.quality.to_dict()), target.id],
    )
