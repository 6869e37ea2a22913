"""A full disk under the workspace: one clear line (CLI, exit 2) or message (app), nothing written.

The disk is really full: a small tmpfs mounted for the test (needs root, else those cases are
skipped), or a file-size limit (`RLIMIT_FSIZE`, EFBIG) on a child process, which works anywhere.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from core import store
from core.errors import WorkspaceError
from core.ingest import ingest_file
from core.labels import history as labels
from core.labels.history import LabelDraft
from tests.apptest import open_app, shown
from tests.label_data import at, make_dataset

ROOT = Path(__file__).resolve().parents[1]
FULL = "is full: nothing was written. Free space and retry."


@dataclass
class Disk:
    """A small real filesystem: `fill()` takes every free byte, `free()` gives them back."""

    root: Path

    @property
    def filler(self) -> Path:
        return self.root / "filler"

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (1 << 16, 1):  # big chunks, then the last bytes one by one
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * size):
                        pass
        finally:
            os.close(fd)
        assert shutil.disk_usage(self.root).free == 0

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@pytest.fixture
def disk(tmp_path) -> Iterator[Disk]:
    """A 12 MB tmpfs of its own (skipped where this process may not mount one)."""
    root = tmp_path / "disk"
    root.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(root)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield Disk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], check=True)


def _big_csv(path: Path, rows: int = 300_000) -> Path:
    """A wide CSV that needs more room than the small disk has (~20 MB in the workspace)."""
    sensors = ", ".join(f"random() AS s{i}" for i in range(10))
    duckdb.sql(
        f"COPY (SELECT TIMESTAMP '2026-01-01' + INTERVAL (range) MINUTE AS ts, {sensors} "
        f"FROM range({rows})) TO '{path}' (HEADER)"
    )
    return path


def _small_workspace(path: Path) -> None:
    con = store.open_workspace(path)
    make_dataset(con, n=100)
    con.close()


def _contents(path: Path) -> tuple[list[str], set[str]]:
    con = store.open_workspace(path)
    try:
        return [d.name for d in store.list_datasets(con)], store.table_names(con)
    finally:
        con.close()


def _cli(*args: str, limit: int | None = None) -> subprocess.CompletedProcess:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=cap if limit is not None else None,
    )


def _one_clear_line(done: subprocess.CompletedProcess, workspace: Path, what: str) -> None:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: The {what} {workspace} "), lines[0]
    assert "Traceback" not in done.stderr


def test_cli_ingest_onto_a_disk_that_fills_up_says_so_and_writes_nothing(disk, tmp_path):
    workspace = disk.root / "w.duckdb"
    _small_workspace(workspace)
    before = _contents(workspace)
    big = _big_csv(tmp_path / "big.csv")

    done = _cli("ingest", str(big), "--db", str(workspace))
    _one_clear_line(done, workspace, "disk holding the workspace")
    assert FULL in done.stderr
    assert _contents(workspace) == before
    assert sorted(p.name for p in disk.root.iterdir() if p.name.endswith(".tmp")) == []


def test_cli_ingest_past_the_file_size_limit_says_so_and_writes_nothing(tmp_path):
    """EFBIG, the same refusal without root: the child may not grow any file past its size."""
    workspace = tmp_path / "w.duckdb"
    _small_workspace(workspace)
    before = _contents(workspace)
    big = _big_csv(tmp_path / "big.csv")

    done = _cli("ingest", str(big), "--db", str(workspace), limit=workspace.stat().st_size)
    _one_clear_line(done, workspace, "workspace")
    assert "reached the largest file size" in done.stderr
    assert _contents(workspace) == before
    assert _cli("ingest", str(big), "--db", str(workspace)).returncode == 0, "the file is sound"


def test_labelling_on_a_full_disk_is_a_clear_error_not_a_collision(disk):
    workspace = disk.root / "w.duckdb"
    con = store.open_workspace(workspace)
    info = make_dataset(con, n=100)
    disk.fill()
    draft = LabelDraft("p1", at(1), at(2), "confirmed", comment="x" * 5000)
    with pytest.raises(WorkspaceError) as err:
        labels.create_labels(con, info.id, [draft], "ann")
    assert str(err.value) == f"The disk holding the workspace {workspace} {FULL}"
    disk.free()
    assert labels.current_labels(con, info.id).empty, "nothing of the refused change"
    [label] = labels.create_labels(con, info.id, [draft], "ann")
    assert labels.get_label(con, label)["comment"] == draft.comment, "and the retry is saved"
    con.close()


def test_a_new_workspace_on_a_full_disk_is_refused_and_leaves_no_file(disk):
    disk.fill()
    workspace = disk.root / "new.duckdb"
    with pytest.raises(WorkspaceError, match="disk holding the workspace .* is full"):
        store.open_workspace(workspace)
    assert sorted(p.name for p in disk.root.iterdir()) == ["filler"]


def test_the_app_loading_the_demo_onto_a_full_disk_shows_the_error(disk, monkeypatch):
    workspace = disk.root / "w.duckdb"
    _small_workspace(workspace)
    monkeypatch.setenv("VIGIL_DB", str(workspace))
    app = open_app()
    disk.fill()
    next(b for b in app.button if b.label == "Load the demo plant").click()
    app.run()
    assert not app.exception
    assert [shown(e) for e in app.error] == [f"The disk holding the workspace {workspace} {FULL}"]
    assert app.dataframe[0].value["name"].tolist() == ["toy"], "the datasets as they were"


def test_a_disk_filling_during_a_checkpoint_says_the_workspace_must_be_reopened(disk):
    """DuckDB folds its log into the file once the log passes `checkpoint_threshold` (16 MB by
    default; 1 kB here, so that a label's commit does it): with no room for that, DuckDB
    invalidates the connection. The user is told so, and the file reopens with what it held
    before (the refused label is not in it)."""
    workspace = disk.root / "w.duckdb"
    con = store.open_workspace(workspace)
    info = make_dataset(con, n=100)
    con.execute("SET checkpoint_threshold = '1kB'")
    disk.fill()
    os.truncate(disk.filler, disk.filler.stat().st_size - (64 << 10))  # room for the log only
    draft = LabelDraft("p1", at(1), at(2), "confirmed")
    with pytest.raises(WorkspaceError, match="must be reopened. Free space and retry."):
        labels.create_labels(con, info.id, [draft], "ann")
    with pytest.raises(duckdb.FatalException) as later:  # any call on this connection now
        store.list_datasets(con)
    assert "must be reopened" in str(store.write_refused(later.value)), "what CLI and app say"
    con.close()
    disk.free()
    assert _contents(workspace)[0] == ["toy"]
    con = store.open_workspace(workspace)
    assert labels.current_labels(con, info.id).empty
    con.close()


W = "/data/w.duckdb"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            duckdb.IOException(f'IO Error: Could not write file "{W}": No space left on device'),
            f"The disk holding the workspace {W} {FULL}",
        ),
        (
            duckdb.TransactionException(
                f'TransactionContext Error: Failed to commit: Could not write file "{W}.wal": '
                "Disk quota exceeded"
            ),
            f"The disk holding the workspace {W} {FULL}",
        ),
        (
            duckdb.IOException(f'IO Error: Could not write file "{W}": File too large'),
            f"The workspace {W} reached the largest file size allowed here: nothing was written."
            " Raise the limit (ulimit -f) or move the workspace to another disk.",
        ),
        (
            duckdb.IOException(f'IO Error: Could not write file "{W}": Input/output error'),
            f"Cannot write the workspace {W} (Input/output error): nothing was written.",
        ),
        (duckdb.TransactionException("TransactionContext Error: Conflict on update!"), None),
        (duckdb.IOException('IO Error: No files found that match the pattern "x.csv"'), None),
        (
            duckdb.IOException(
                'IO Error: Could not write file "/big/t/duckdb_temp_9_0_storage_S96K-0.tmp": '
                "No space left on device"
            ),
            "The disk holding the temporary folder /big/t is full: a large step spilling there "
            "had no room, so nothing was written. Free space and retry.",
        ),
        (
            duckdb.IOException(
                f'IO Error: Could not write file "{W}.tmp/duckdb_temp_9_0_storage_S96K-0.tmp": '
                "No space left on device"
            ),
            f"The disk holding the workspace {W} {FULL}",
        ),
        (
            duckdb.OutOfMemoryException(
                "Out of Memory Error: failed to offload data block of size 256.0 KiB "
                "(3.4 MiB/3.5 MiB used).\nThis limit was set by the 'max_temp_directory_size'"
            ),
            "The disk holding the workspace's temporary files is full: this step needed more "
            "memory than allowed and had no room to spill to disk, so nothing was written. "
            "Free space beside the workspace (or in DuckDB's temp_directory) and retry.",
        ),
        (duckdb.OutOfMemoryException("Out of Memory Error: could not allocate block"), None),
        (OSError(28, "No space left on device"), None),
    ],
)
def test_which_errors_are_a_refused_write(error, expected):
    """DuckDB's texts (seen for ENOSPC and EFBIG above; other errno strings fill the same
    pattern); conflicts (retried) and every other error are left alone."""
    refused = store.write_refused(error)
    assert (None if refused is None else str(refused)) == expected


def test_the_app_whose_connection_duckdb_gave_up_on_reopens_the_workspace(disk, monkeypatch):
    """A load whose checkpoint finds the disk full invalidates the app's shared connection: the
    page says so and stops with Retry (no traceback); once space is freed, Retry reopens."""
    from pages import ui  # the app's cached connection, to make it checkpoint at every commit

    workspace = disk.root / "w.duckdb"
    _small_workspace(workspace)
    monkeypatch.setenv("VIGIL_DB", str(workspace))
    app = open_app()
    ui._connection(str(workspace)).execute("SET checkpoint_threshold = '1kB'")
    disk.fill()
    os.truncate(disk.filler, disk.filler.stat().st_size - (64 << 10))
    rows = "".join(f"2026-01-01 00:{m:02d},{m}\n" for m in range(60))
    app.file_uploader[0].set_value(("tiny.csv", f"time,flow\n{rows}".encode(), "text/csv"))
    app.run()
    next(b for b in app.button if b.label == "Load file").click()
    app.run()
    assert not app.exception
    [error] = [shown(e) for e in app.error]
    assert error.endswith("must be reopened. Free space and retry."), error
    disk.free()
    next(b for b in app.button if b.label == "Retry").click()
    app.run()
    assert not app.exception
    assert not app.error
    assert app.dataframe[0].value["name"].tolist() == ["toy"]


SPILL_FULL = (
    "The disk holding the workspace's temporary files is full: this step needed more memory"
)


def _short_of_memory(con: duckdb.DuckDBPyConnection, temp: Path) -> None:
    """Little memory (a real DuckDB limit), so a big load spills to `temp`, the full disk."""
    con.execute("SET memory_limit = '64MB'")
    con.execute(f"SET temp_directory = '{temp}'")


def test_an_ingest_spilling_to_a_full_disk_says_so_and_writes_nothing(disk, tmp_path):
    """DuckDB sizes its spill room by the free space (none): 'failed to offload data block'."""
    workspace = tmp_path / "w.duckdb"
    _small_workspace(workspace)
    big = _big_csv(tmp_path / "big.csv")
    con = store.open_workspace(workspace)
    _short_of_memory(con, disk.root)
    disk.fill()
    with pytest.raises(WorkspaceError) as err:
        ingest_file(con, big)
    assert str(err.value).startswith(SPILL_FULL), err.value
    assert [d.name for d in store.list_datasets(con)] == ["toy"]
    con.execute("SET memory_limit = '1GB'")
    assert ingest_file(con, big).dataset.n_rows == 300_000, "with memory, the same load works"
    con.close()


def test_a_spill_the_disk_refuses_midway_names_the_temporary_folder(disk, tmp_path):
    """With the spill room set by hand, the write itself fails: the message names the folder
    (not a workspace that is not full)."""
    workspace = tmp_path / "w.duckdb"
    _small_workspace(workspace)
    big = _big_csv(tmp_path / "big.csv")
    con = store.open_workspace(workspace)
    _short_of_memory(con, disk.root)
    con.execute("SET max_temp_directory_size = '1GiB'")
    disk.fill()
    with pytest.raises(WorkspaceError) as err:
        ingest_file(con, big)
    assert str(err.value) == (
        f"The disk holding the temporary folder {disk.root} is full: a large step spilling "
        "there had no room, so nothing was written. Free space and retry."
    )
    assert [d.name for d in store.list_datasets(con)] == ["toy"]
    con.close()


def _load_big_file_in_app(app, tmp_path: Path) -> str:
    """Upload and load the big CSV on the Data page; the one error it shows (no traceback)."""
    data = _big_csv(tmp_path / "big.csv").read_bytes()
    app.file_uploader[0].set_value(("big.csv", data, "text/csv"))
    app.run()
    next(b for b in app.button if b.label == "Load file").click()
    app.run(timeout=120)
    assert not app.exception
    [error] = [shown(e) for e in app.error]
    return error


def test_the_app_loading_a_file_that_spills_onto_a_full_disk_shows_one_message(
    disk, tmp_path, monkeypatch
):
    from pages import ui  # the app's cached connection, given little memory

    workspace = tmp_path / "w.duckdb"
    _small_workspace(workspace)
    monkeypatch.setenv("VIGIL_DB", str(workspace))
    app = open_app()
    _short_of_memory(ui._connection(str(workspace)), disk.root)
    disk.fill()
    error = _load_big_file_in_app(app, tmp_path)
    assert error.startswith(SPILL_FULL), error
    assert app.dataframe[0].value["name"].tolist() == ["toy"]


def test_the_app_loading_a_file_too_big_for_the_memory_says_so(tmp_path, monkeypatch):
    """No room to spill at all (temp_directory off) and little memory: DuckDB's out-of-memory
    error is one message, not a traceback, and nothing is written."""
    from pages import ui

    workspace = tmp_path / "w.duckdb"
    _small_workspace(workspace)
    monkeypatch.setenv("VIGIL_DB", str(workspace))
    app = open_app()
    cached = ui._connection(str(workspace))
    cached.execute("SET memory_limit = '64MB'")
    cached.execute("SET temp_directory = ''")
    error = _load_big_file_in_app(app, tmp_path)
    assert error.startswith("Not enough memory for this step (Out of Memory Error: "), error
    assert error.endswith(
        "nothing was written. Close other programs, or load the data in smaller files, and retry."
    )
    assert app.dataframe[0].value["name"].tolist() == ["toy"]
