"""Writes that need a dataset to exist take turns with its deletion.

DuckDB does not see a dataset's deletion and a new run of that dataset committed at the same
moment as a conflict: the run would land on a dataset that is gone (with its scores, events and
model). This process is the workspace's only writer (DuckDB locks the file), so a lock per
dataset here is enough: a run, a version, a batch or an explanation is stored under its
dataset's lock, and checks inside it that the dataset is still there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from core.errors import DataError

_LOCKS: dict[int, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock(dataset_id: int) -> threading.RLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(int(dataset_id), threading.RLock())


@contextmanager
def dataset_turn(
    con: duckdb.DuckDBPyConnection, dataset_id: int, must_exist: bool = True
) -> Iterator[None]:
    """Hold the dataset's turn; start the write's transaction inside it, so the write sees a
    deletion that committed first. With `must_exist`, a dataset deleted meanwhile is a
    `DataError` and nothing is written."""
    with _lock(dataset_id):
        if must_exist:
            found = con.execute("SELECT 1 FROM datasets WHERE id = ?", [int(dataset_id)]).fetchall()
            if not found:
                raise DataError(
                    f"Dataset #{int(dataset_id)} was deleted by another session meanwhile: "
                    "nothing was stored."
                )
        yield


def run_dataset(con: duckdb.DuckDBPyConnection, run_id: int) -> int | None:
    """The dataset a run belongs to, or None when the run is gone."""
    row = con.execute("SELECT dataset_id FROM runs WHERE id = ?", [int(run_id)]).fetchone()
    return None if row is None else int(row[0])
