"""Opening the workspace: one DuckDB file, migrated on open, with errors a user can act on."""

from __future__ import annotations

import json
import math
import os
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from core.errors import WorkspaceError
from core.store.migrations import migrate

ENV_VAR = "VIGIL_DB"
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "vigil.duckdb"


def default_workspace_path() -> Path:
    """The workspace file: $VIGIL_DB if set, else data/vigil.duckdb beside the project."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_PATH


def open_workspace(path: str | os.PathLike[str] | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) and migrate the workspace; this process becomes its writer.

    DuckDB lets one process hold a file read-write; a second one gets a lock error, which is
    turned into a `WorkspaceError` that says which file is busy.
    """
    target = Path(path) if path is not None else default_workspace_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(f"Cannot create the workspace folder {target.parent}: {exc}") from exc
    try:
        con = duckdb.connect(str(target))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WorkspaceError(
                f"The workspace {target} is open in another Vigil process (the app or a CLI "
                "command). Close it, or point this one at another file with --db or VIGIL_DB."
            ) from exc
        raise WorkspaceError(f"Cannot open the workspace {target}: {exc}") from exc
    except duckdb.Error as exc:
        raise WorkspaceError(f"{target} is not a Vigil workspace (DuckDB file): {exc}") from exc
    migrate(con)
    return con


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB so any user column name is harmless (quotes doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


_OPEN: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
"""Connections (cursors) inside a `transaction` now: a nested one joins the outer."""


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: a failure inside rolls everything back, so no half-written data remains.

    Nested in another `transaction` of the same connection it joins that one, so writes made of
    smaller all-or-nothing writes (a version and its run) commit once, together.
    """
    if con in _OPEN:
        yield con
        return
    con.begin()
    _OPEN.add(con)
    try:
        yield con
    except BaseException:
        _OPEN.discard(con)
        con.rollback()
        raise
    _OPEN.discard(con)
    con.commit()


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Names of the tables in the workspace (tests use it to prove nothing was left behind)."""
    rows = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    return {r[0] for r in rows}


def decode_row(
    columns: Sequence[str],
    row: Sequence[Any],
    json_columns: Sequence[str] = (),
    list_columns: Sequence[str] = (),
) -> dict[str, Any]:
    """A fetched row as a dict: JSON columns parsed, list columns never None."""
    record = dict(zip(columns, row, strict=True))
    for c in json_columns:
        if isinstance(record[c], str):
            record[c] = json.loads(record[c])
    for c in list_columns:
        record[c] = list(record[c] or [])
    return record


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: such numbers (e.g. no delay measured) are stored as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def json_dumps(value: Any) -> str:
    """Strict JSON for a JSON column: NaN and infinities become null, numpy numbers floats."""
    return json.dumps(_finite(value), allow_nan=False, default=float)
