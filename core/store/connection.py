"""Opening the workspace: one DuckDB file, migrated on open, with errors a user can act on."""

from __future__ import annotations

import json
import math
import os
import re
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb

from core.errors import WorkspaceError
from core.store.migrations import migrate, unknown_schema

ENV_VAR = "VIGIL_DB"
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "vigil.duckdb"


def default_workspace_path() -> Path:
    """The workspace file: $VIGIL_DB if set, else data/vigil.duckdb beside the project."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else DEFAULT_PATH


def open_workspace(
    path: str | os.PathLike[str] | None = None, *, create: bool = True
) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) and migrate the workspace; this process becomes its writer.

    With ``create=False`` a missing file is a `WorkspaceError` and nothing is made: a command
    that reads a workspace, given a mistyped path, would otherwise make an empty one there.

    DuckDB lets one process hold a file read-write; a second one gets a lock error, which is
    turned into a `WorkspaceError` that says which file is busy. A new file that cannot be
    written (a full disk) is removed again, so nothing half-made stays behind.
    """
    target = Path(path) if path is not None else default_workspace_path()
    if not create and not target.exists():
        raise WorkspaceError(
            f"No workspace at {target}: there is no such file. Give --db the file of an existing "
            "workspace, or make one with the ingest or demo command."
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceError(f"Cannot create the workspace folder {target.parent}: {exc}") from exc
    existed = target.exists()
    try:
        con = duckdb.connect(str(target))
    except duckdb.Error as exc:
        _forget_if_refused(target, existed, exc)
        raise _open_failure(target, exc) from exc
    try:
        refusal = unknown_schema(con)
        if refusal is None:
            migrate(con)
    except duckdb.Error as exc:
        with suppress(duckdb.Error):
            con.close()
        _forget_if_refused(target, existed, exc)
        raise (write_refused(exc) or unreadable(exc, target) or exc) from exc
    if refusal is not None:
        con.close()
        raise WorkspaceError(
            f"{target} {refusal}. Nothing in it was changed; point Vigil at another file with "
            "--db or VIGIL_DB."
        )
    return con


def _open_failure(target: Path, exc: duckdb.Error) -> WorkspaceError:
    """Why `duckdb.connect` refused the file, in words a user can act on."""
    refused = write_refused(exc) or unreadable(exc, target)
    if refused is not None:
        return refused
    if isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower():
        holder = _LOCK_HOLDER.search(str(exc))
        who = f" (PID {holder['pid']}, {holder['program']})" if holder else ""
        return WorkspaceError(
            f"The workspace {target} is held by another Vigil process{who}: the app or a CLI "
            "command; one process writes a workspace at a time. Wait for it to finish or close "
            "it, then retry; or point this one at another file with --db or VIGIL_DB."
        )
    if isinstance(exc, duckdb.IOException):
        return WorkspaceError(f"Cannot open the workspace {target}: {exc}")
    return WorkspaceError(f"{target} is not a Vigil workspace (DuckDB file): {exc}")


_LOCK_HOLDER = re.compile(r"lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")
"""DuckDB names the holder: 'Conflicting lock is held in /usr/bin/python3 (PID 42) by ...'."""


def _forget_if_refused(target: Path, existed: bool, exc: duckdb.Error) -> None:
    """Remove the file this call began creating when the disk refused to write it."""
    if existed or write_refused(exc) is None:
        return
    for leftover in (target, Path(f"{target}.wal")):
        with suppress(OSError):
            leftover.unlink(missing_ok=True)


_WRITE_FAILED = re.compile(r'Could not write file "(?P<file>[^"]+)": (?P<reason>[^"\n]+)')


def write_refused(exc: BaseException) -> WorkspaceError | None:
    """A DuckDB error saying the disk refused a write (full, over quota, over the file size
    limit), as one line a user can act on; None for any other error."""
    if not isinstance(exc, duckdb.Error):
        return None
    if isinstance(exc, duckdb.OutOfMemoryException) and _NO_SPILL_ROOM in str(exc):
        return WorkspaceError(
            "The disk holding the workspace's temporary files is full: this step needed more "
            "memory than allowed and had no room to spill to disk, so nothing was written. "
            "Free space beside the workspace (or in DuckDB's temp_directory) and retry."
        )
    found = _WRITE_FAILED.search(str(exc))
    if found is None:
        return None
    spill = _spill_folder(found["file"])
    if spill is not None:
        return WorkspaceError(
            f"The disk holding the temporary folder {spill} is full: a large step spilling "
            "there had no room, so nothing was written. Free space and retry."
        )
    where = _workspace_of(found["file"])
    reason = found["reason"].strip().rstrip(".")
    lowered = reason.lower()
    if isinstance(exc, duckdb.FatalException):  # DuckDB gave up on the file until reopened
        return WorkspaceError(
            f"The workspace {where} could not be written ({reason}) while saving: this change "
            "was not saved and the workspace must be reopened. Free space and retry."
        )
    if "no space left" in lowered or "quota" in lowered:
        return WorkspaceError(
            f"The disk holding the workspace {where} is full: nothing was written. "
            "Free space and retry."
        )
    if "file too large" in lowered:
        return WorkspaceError(
            f"The workspace {where} reached the largest file size allowed here: nothing was "
            "written. Raise the limit (ulimit -f) or move the workspace to another disk."
        )
    return WorkspaceError(f"Cannot write the workspace {where} ({reason}): nothing was written.")


def unreadable(exc: BaseException, workspace: object = None) -> WorkspaceError | None:
    """A DuckDB error saying the workspace file is damaged (a block's checksum is wrong, the
    file ends early), as one line a user can act on; None for any other error."""
    if not isinstance(exc, duckdb.Error):
        return None
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if not (text.startswith("Corrupt database file") or _SHORT_READ.search(text)):
        return None
    which = f"The workspace {workspace}" if workspace is not None else "The workspace"
    return WorkspaceError(
        f"{which} is damaged and cannot be read ({text}). Nothing was changed; restore it from "
        "a backup, or point Vigil at another file with --db or VIGIL_DB."
    )


_SHORT_READ = re.compile(r"Could not read (enough bytes )?from file|Could not read enough bytes")
"""DuckDB's words for a file that ends before its own blocks do (truncated)."""


def duckdb_failure(exc: BaseException, workspace: object = None) -> WorkspaceError | None:
    """What the CLI and the app say for a DuckDB error a user must act on (a full disk, a
    damaged file, too little memory); None for every other error, which stays a real exception."""
    refused = write_refused(exc) or unreadable(exc, workspace) or collided(exc)
    if refused is None and isinstance(exc, duckdb.OutOfMemoryException):
        first = str(exc).strip().splitlines()[0]
        return WorkspaceError(
            f"Not enough memory for this step ({first}): nothing was written. Close other "
            "programs, or load the data in smaller files, and retry."
        )
    return refused


def collided(exc: BaseException) -> WorkspaceError | None:
    """A write that met another session's uncommitted change of the same rows (DuckDB's
    write-write conflict) as one line: DuckDB rolled it back, so trying again is safe."""
    if not isinstance(exc, duckdb.TransactionException | duckdb.ConstraintException):
        return None
    text = str(exc)
    if "duplicate key" in text.lower():
        return WorkspaceError(
            "Another session stored a dataset of the same name at the same moment, so nothing "
            "of this one was stored. Try again."
        )
    if isinstance(exc, duckdb.ConstraintException) or (
        "Conflict on" not in text and "write-write conflict" not in text
    ):
        return None
    return WorkspaceError(
        "Another session was changing the same data at the same moment, so this step was undone "
        "and nothing of it was saved. Try again."
    )


_NO_SPILL_ROOM = "failed to offload data block"
"""DuckDB's words when a spill finds its temp folder's disk (max_temp_directory_size) full."""


def _spill_folder(file: str) -> str | None:
    """The temporary folder of a DuckDB spill file set apart from the workspace (its own
    temp_directory); None for the workspace's files and its default spill folder `X.tmp`."""
    path = Path(file)
    if not path.name.startswith("duckdb_temp") or path.parent.suffix == ".tmp":
        return None
    return str(path.parent)


def _workspace_of(file: str) -> str:
    """The workspace file a DuckDB file belongs to (its log `X.wal`, its spill folder `X.tmp`)."""
    path = Path(file)
    if path.suffix == ".wal":
        return str(path.with_suffix(""))
    if path.name.startswith("duckdb_temp") and path.parent.suffix == ".tmp":
        return str(path.parent.with_suffix(""))
    return str(path)


def quote_ident(name: str) -> str:
    """Quote an identifier for DuckDB so any user column name is harmless (quotes doubled)."""
    return '"' + str(name).replace('"', '""') + '"'


_OPEN: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()
"""Connections (cursors) inside a `transaction` now: a nested one joins the outer."""


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: a failure inside rolls everything back, so no half-written data remains.

    Nested in another `transaction` of the same connection it joins that one, so writes made of
    smaller all-or-nothing writes (a version and its run) commit once, together. A write the
    disk refuses is a `WorkspaceError` saying so (write-write conflicts stay DuckDB's, to retry).
    """
    if con in _OPEN:
        yield con
        return
    try:
        con.begin()  # an earlier statement's commit can fail here
    except duckdb.Error as exc:
        raise (write_refused(exc) or exc) from exc
    _OPEN.add(con)
    try:
        yield con
    except BaseException as exc:
        _OPEN.discard(con)
        con.rollback()
        refused = write_refused(exc)
        if refused is not None:
            raise refused from exc
        raise
    _OPEN.discard(con)
    try:
        con.commit()
    except duckdb.Error as exc:
        raise (write_refused(exc) or exc) from exc


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
