"""SQL for model versions: the version records with their skops bytes, and promotions.

A version is written once and never updated. Which version is a dataset's active model is the
latest row of the append-only `model_promotions` table, so the promotion history is the audit.
Listing versions never reads the model bytes; only `read_version_model` does.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from core.store.connection import decode_row, json_dumps, transaction
from core.store.turns import dataset_turn

VERSION_COLUMNS = (
    "id",
    "dataset_id",
    "parent_id",
    "origin",
    "detector",
    "params",
    "training",
    "features",
    "sensors",
    "assets",
    "threshold",
    "objective",
    "budget_per_day",
    "semi_supervised",
    "label_ids",
    "label_seqs",
    "label_watermark",
    "metrics",
    "versions",
    "run_id",
    "notes",
    "created_by",
    "created_at",
    "model_sha256",
    "model_bytes",
)
_JSON_COLUMNS = ("params", "training", "features", "metrics", "versions")


def next_version_id(con: duckdb.DuckDBPyConnection) -> int:
    """Reserve the id of a new model version."""
    return int(con.execute("SELECT nextval('model_version_seq')").fetchone()[0])


def insert_version(con: duckdb.DuckDBPyConnection, record: dict[str, Any], model: bytes) -> None:
    """Insert one version record (JSON columns as Python objects) with its model bytes."""
    columns = [c for c in VERSION_COLUMNS if c != "created_at" or record.get(c) is not None]
    values = [json_dumps(record[c]) if c in _JSON_COLUMNS else record.get(c) for c in columns] + [
        model
    ]
    marks = ", ".join("?" for _ in values)
    con.execute(
        f"INSERT INTO model_versions ({', '.join(columns)}, model) VALUES ({marks})", values
    )


def _record(row: tuple) -> dict[str, Any]:
    lists = ("sensors", "assets", "label_ids", "label_seqs")
    return decode_row(VERSION_COLUMNS, row, _JSON_COLUMNS, lists)


def list_versions(con: duckdb.DuckDBPyConnection, dataset_id: int) -> list[dict[str, Any]]:
    """Version records of a dataset (without model bytes), newest first."""
    rows = con.execute(
        f"SELECT {', '.join(VERSION_COLUMNS)} FROM model_versions WHERE dataset_id = ? "
        "ORDER BY id DESC",
        [dataset_id],
    ).fetchall()
    return [_record(r) for r in rows]


def get_version(con: duckdb.DuckDBPyConnection, version_id: int) -> dict[str, Any] | None:
    """One version record (without model bytes), or None."""
    row = con.execute(
        f"SELECT {', '.join(VERSION_COLUMNS)} FROM model_versions WHERE id = ?", [version_id]
    ).fetchone()
    return None if row is None else _record(row)


def read_version_model(con: duckdb.DuckDBPyConnection, version_id: int) -> bytes | None:
    """The skops bytes of a version, or None when there is no such version."""
    row = con.execute("SELECT model FROM model_versions WHERE id = ?", [version_id]).fetchone()
    return None if row is None else bytes(row[0])


def save_version(
    con: duckdb.DuckDBPyConnection, record: dict[str, Any], model: bytes, promote_by: str | None
) -> None:
    """Store a version (and, when ``promote_by`` is given, promote it) all or nothing, in its
    dataset's turn."""
    with dataset_turn(con, record["dataset_id"]), transaction(con):
        insert_version(con, record, model)
        if promote_by is not None:
            insert_promotion(con, record["dataset_id"], record["id"], promote_by, "")


def set_version_run(con: duckdb.DuckDBPyConnection, version_id: int, run_id: int) -> None:
    """Link a version to the run holding its scores on its own dataset (set once, at creation)."""
    con.execute(
        "UPDATE model_versions SET run_id = ? WHERE id = ? AND run_id IS NULL", [run_id, version_id]
    )


def insert_promotion(
    con: duckdb.DuckDBPyConnection, dataset_id: int, version_id: int, analyst: str, comment: str
) -> None:
    """Append a promotion: from now on the version is the dataset's active model."""
    con.execute(
        "INSERT INTO model_promotions (dataset_id, version_id, promoted_by, comment) "
        "VALUES (?, ?, ?, ?)",
        [dataset_id, version_id, analyst, comment],
    )


def active_version_id(con: duckdb.DuckDBPyConnection, dataset_id: int) -> int | None:
    """The dataset's active model: its latest promotion, or None."""
    row = con.execute(
        "SELECT version_id FROM model_promotions WHERE dataset_id = ? "
        "ORDER BY promoted_at DESC, rowid DESC LIMIT 1",
        [dataset_id],
    ).fetchone()
    return None if row is None else int(row[0])


def read_promotions(con: duckdb.DuckDBPyConnection, dataset_id: int) -> pd.DataFrame:
    """Every promotion of a dataset, newest first (who made which version active, when)."""
    return con.execute(
        "SELECT version_id, promoted_by, promoted_at, comment FROM model_promotions "
        "WHERE dataset_id = ? ORDER BY promoted_at DESC, rowid DESC",
        [dataset_id],
    ).df()
