"""SQL for labels: the append-only label history, the fault-kind taxonomy, operating-mode marks.

A label is never updated in place. Every change appends a full snapshot of the label to
`label_history`; the current labels are the latest snapshot per label id, deleted ones excluded.
Several sessions write through cursors of one connection. A snapshot is built from the state a
transaction read, so appending alone would let two sessions editing one label each erase the
other's field. Every append therefore also moves the label's row in `label_heads` (its newest
seq): DuckDB aborts the later of two transactions changing that row, and `write_with_retry`
re-runs it on the fresh state, a bounded number of times, then raises a `WorkspaceError`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from core.errors import WorkspaceError
from core.store.connection import quote_ident, transaction

T = TypeVar("T")

LABEL_FIELDS = (
    "asset",
    "start_ts",
    "end_ts",
    "verdict",
    "kind",
    "sensors",
    "comment",
    "source",
    "run_id",
    "event_id",
    "deleted",
)
"""The label's state: every history row holds all of them (a snapshot, not a diff)."""

HISTORY_COLUMNS = ("change_id", "label_id", "dataset_id", "action", *LABEL_FIELDS, "analyst")
HISTORY_COLUMNS_UNDO = (*HISTORY_COLUMNS, "undoes")

WRITE_ATTEMPTS = 8
"""Bounded retries of a write transaction that conflicted with another session's write."""

_ONE_WRITER = threading.Lock()
"""Label writes of this process's sessions take turns: they would only collide and retry."""

_CURRENT_SQL = """
    SELECT label_id, dataset_id, asset, start_ts, end_ts, verdict, kind, sensors, comment, source,
           run_id, event_id, analyst AS updated_by, changed_at AS updated_at,
           arg_min(analyst, seq) OVER w AS created_by, min(changed_at) OVER w AS created_at,
           deleted
    FROM label_history
    WHERE {where}
    WINDOW w AS (PARTITION BY label_id)
    QUALIFY row_number() OVER (PARTITION BY label_id ORDER BY seq DESC) = 1
"""


def write_with_retry(
    con: duckdb.DuckDBPyConnection,
    work: Callable[[duckdb.DuckDBPyConnection], T],
    attempts: int = WRITE_ATTEMPTS,
) -> T:
    """Run `work` in a transaction; on a DuckDB write conflict roll back, wait, try again.

    After `attempts` conflicts a `WorkspaceError` says so (nothing of the failed attempt stays).
    Sessions of this process take turns; a conflict then means a writer outside this function.
    """
    for attempt in range(attempts):
        try:
            with _ONE_WRITER, transaction(con):
                return work(con)
        except duckdb.TransactionException as exc:
            if attempt == attempts - 1:
                raise WorkspaceError(
                    f"Could not save the change: {attempts} attempts collided with other "
                    "sessions writing to the workspace at the same time. Nothing was saved; "
                    "please try again."
                ) from exc
            time.sleep(min(0.5, 0.01 * 2**attempt) * (1 + random.random()))
    raise AssertionError("unreachable")  # pragma: no cover


def next_change_id(con: duckdb.DuckDBPyConnection) -> int:
    """A new change id: every row appended by one user action shares it (undo reverts it)."""
    [(change_id,)] = con.execute("SELECT nextval('label_change_seq')").fetchall()  # finished
    return int(change_id)


def next_label_ids(con: duckdb.DuckDBPyConnection, n: int) -> list[int]:
    """Reserve `n` new label ids."""
    if n <= 0:
        return []
    rows = con.execute("SELECT nextval('label_id_seq') FROM range(?)", [int(n)]).fetchall()
    return [int(r[0]) for r in rows]


_HISTORY_SCHEMA = pa.schema(
    [
        ("change_id", pa.int64()),
        ("label_id", pa.int64()),
        ("dataset_id", pa.int32()),
        ("action", pa.string()),
        ("asset", pa.string()),
        ("start_ts", pa.timestamp("us")),
        ("end_ts", pa.timestamp("us")),
        ("verdict", pa.string()),
        ("kind", pa.string()),
        ("sensors", pa.list_(pa.string())),
        ("comment", pa.string()),
        ("source", pa.string()),
        ("run_id", pa.int32()),
        ("event_id", pa.int32()),
        ("deleted", pa.bool_()),
        ("analyst", pa.string()),
        ("undoes", pa.int64()),
    ]
)


def append_history(con: duckdb.DuckDBPyConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append label snapshots (dicts with `HISTORY_COLUMNS`, optionally `undoes`) in one
    INSERT from an Arrow table (a bulk action of hundreds of labels stays one statement)."""
    if not rows:
        return
    table = pa.Table.from_pylist(
        [{c: row.get(c) for c in HISTORY_COLUMNS_UNDO} for row in rows], schema=_HISTORY_SCHEMA
    )
    view = f"_label_rows_{id(table)}"
    cols = ", ".join(HISTORY_COLUMNS_UNDO)
    con.register(view, table)
    try:
        added = con.execute(
            f"INSERT INTO label_history ({cols}) SELECT {cols} FROM {quote_ident(view)} "
            "RETURNING label_id, seq"
        ).fetchall()
    finally:
        con.unregister(view)
    _move_heads(con, added)


def _move_heads(con: duckdb.DuckDBPyConnection, added: Sequence[tuple[int, int]]) -> None:
    """Point each label's head at its new newest seq. An UPDATE (never an upsert, which DuckDB
    does not check) so that a concurrent change of the same label is a write-write conflict."""
    newest: dict[int, int] = {}
    for label_id, seq in added:
        newest[int(label_id)] = max(int(seq), newest.get(int(label_id), 0))
    heads = pa.table({"label_id": list(newest), "seq": list(newest.values())})
    view = f"_label_heads_{id(heads)}"
    con.register(view, heads)
    try:
        con.execute(
            f"UPDATE label_heads SET seq = n.seq FROM {quote_ident(view)} n "
            "WHERE label_heads.label_id = n.label_id"
        )
        con.execute(
            f"INSERT INTO label_heads SELECT n.label_id, n.seq FROM {quote_ident(view)} n "
            "ANTI JOIN label_heads h ON h.label_id = n.label_id"
        )
    finally:
        con.unregister(view)


def read_labels(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    asset: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """The current labels of a dataset (latest snapshot per id, deleted excluded), by start.

    `start`/`end` keep labels overlapping that stretch.
    """
    outer, params = ["NOT deleted"], [dataset_id]
    if asset is not None:
        outer.append("asset = ?")
        params.append(asset)
    if end is not None:
        outer.append("start_ts <= ?")
        params.append(end)
    if start is not None:
        outer.append("end_ts >= ?")
        params.append(start)
    sql = (
        f"SELECT * EXCLUDE (deleted) FROM ({_CURRENT_SQL.format(where='dataset_id = ?')}) "
        f"WHERE {' AND '.join(outer)} ORDER BY asset, start_ts, label_id"
    )
    return con.execute(sql, params).df()


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def latest_states(con: duckdb.DuckDBPyConnection, label_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The latest snapshot of each given label, deleted ones included (for edits and undo)."""
    ids = [int(i) for i in label_ids] or [-1]
    return _dicts(
        con.execute(
            _CURRENT_SQL.format(where="list_contains(?, label_id)") + " ORDER BY label_id", [ids]
        )
    )


def read_label_history(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    label_id: int | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """History rows of a dataset (or one label), newest first (the `limit` newest), each with
    the label's previous state in `prev_*` columns."""
    prev = ", ".join(f"lag({f}) OVER w AS prev_{f}" for f in LABEL_FIELDS)
    where, params = ["dataset_id = ?"], [dataset_id]
    if label_id is not None:
        where.append("label_id = ?")
        params.append(int(label_id))
    return con.execute(
        f"SELECT seq, change_id, label_id, action, analyst, changed_at, undoes, "
        f"{', '.join(LABEL_FIELDS)}, {prev} "
        f"FROM label_history WHERE {' AND '.join(where)} "
        "WINDOW w AS (PARTITION BY label_id ORDER BY seq) ORDER BY seq DESC LIMIT ?",
        [*params, limit],
    ).df()


def last_undoable_change(
    con: duckdb.DuckDBPyConnection, dataset_id: int, analyst: str
) -> int | None:
    """The analyst's newest change in the dataset that is neither an undo nor undone yet."""
    row = con.execute(
        "SELECT max(change_id) FROM label_history h "
        "WHERE dataset_id = ? AND analyst = ? AND undoes IS NULL AND NOT EXISTS ("
        "  SELECT 1 FROM label_history u WHERE u.undoes = h.change_id)",
        [dataset_id, analyst],
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def change_rows(con: duckdb.DuckDBPyConnection, change_id: int) -> list[dict[str, Any]]:
    """The rows of one change, each with the seq of the same label's previous row (or NULL)."""
    return _dicts(
        con.execute(
            "SELECT * FROM ("
            "  SELECT seq, change_id, label_id, dataset_id, lag(seq) OVER ("
            "    PARTITION BY label_id ORDER BY seq) AS prev_seq "
            "  FROM label_history WHERE label_id IN ("
            "    SELECT label_id FROM label_history WHERE change_id = ?)"
            ") WHERE change_id = ? ORDER BY seq",
            [change_id, change_id],
        )
    )


def history_rows(con: duckdb.DuckDBPyConnection, seqs: Sequence[int]) -> list[dict[str, Any]]:
    """History rows by seq (full snapshots), in seq order."""
    ids = [int(s) for s in seqs] or [-1]
    return _dicts(
        con.execute(
            f"SELECT seq, {', '.join(HISTORY_COLUMNS)} FROM label_history "
            "WHERE list_contains(?, seq) ORDER BY seq",
            [ids],
        )
    )


# --- fault-kind taxonomy ---


def read_fault_kinds(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The workspace's fault kinds in their display order."""
    rows = con.execute("SELECT name FROM fault_kinds ORDER BY position, name").fetchall()
    return [r[0] for r in rows]


def replace_fault_kinds(con: duckdb.DuckDBPyConnection, names: Sequence[str]) -> None:
    """Replace the taxonomy with `names` in that order (call inside a transaction)."""
    con.execute("DELETE FROM fault_kinds")
    con.executemany(
        "INSERT INTO fault_kinds (name, position) VALUES (?, ?)",
        [[n, i] for i, n in enumerate(names)],
    )


# --- operating modes ---


def insert_mode(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    asset: str,
    start: datetime,
    end: datetime,
    mode: str,
    analyst: str,
    comment: str = "",
) -> int:
    """Record one operating-mode stretch; returns its id."""
    row = con.execute(
        "INSERT INTO operating_modes (dataset_id, asset, start_ts, end_ts, mode, comment, analyst) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        [dataset_id, asset, start, end, mode, comment, analyst],
    ).fetchone()
    return int(row[0])


def mark_mode_deleted(con: duckdb.DuckDBPyConnection, mode_id: int, analyst: str) -> int:
    """Soft-delete a mode mark (the row stays, with who and when); returns rows affected."""
    row = con.execute(
        "UPDATE operating_modes SET deleted_at = current_localtimestamp(), deleted_by = ? "
        "WHERE id = ? AND deleted_at IS NULL RETURNING id",
        [analyst, int(mode_id)],
    ).fetchall()
    return len(row)


def read_modes(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    asset: str | None = None,
    include_deleted: bool = False,
) -> pd.DataFrame:
    """Mode marks of a dataset (id, asset, start_ts, end_ts, mode, comment, analyst, ...)."""
    where, params = ["dataset_id = ?"], [dataset_id]
    if asset is not None:
        where.append("asset = ?")
        params.append(asset)
    if not include_deleted:
        where.append("deleted_at IS NULL")
    return con.execute(
        "SELECT id, asset, start_ts, end_ts, mode, comment, analyst, created_at, deleted_at, "
        f"deleted_by FROM operating_modes WHERE {' AND '.join(where)} ORDER BY asset, start_ts",
        params,
    ).df()
