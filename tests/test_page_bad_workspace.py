"""A workspace file DuckDB cannot read (damaged, from a newer Vigil, another program's database):
the app and the CLI say so in one message, never a traceback, and change nothing in the file."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from core import store
from core.errors import WorkspaceError
from core.synth import load_demo
from tests.apptest import open_app, shown

ROOT = Path(__file__).resolve().parents[1]
BLOCK = 256 << 10  # DuckDB's block size; blocks start after the 12 kB of file headers
DAMAGED = "is damaged and cannot be read (Corrupt database file: computed checksum"


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "w.duckdb"
    con = store.open_workspace(path)
    load_demo(con, n_assets=1, rows_per_asset=3000)
    con.close()
    return path


def _damaged(demo_file: Path, target: Path, fails) -> Path:
    """A copy of the demo workspace with one block overwritten: the first block whose damage
    makes `fails(con)` raise DuckDB's checksum error (found by trying, as layouts may move)."""
    for block in range(demo_file.stat().st_size // BLOCK):
        shutil.copy(demo_file, target)
        with target.open("r+b") as f:
            f.seek(12288 + block * BLOCK + 64)
            f.write(b"\xff" * 64)
        try:
            con = duckdb.connect(str(target))
        except duckdb.Error:
            continue
        try:
            fails(con)
        except duckdb.Error as exc:
            if str(exc).startswith("Corrupt database file"):
                return target
        finally:
            con.close()
    pytest.fail("no block whose damage fails that read")


def _list(con) -> None:
    store.list_datasets(con)


def _read_readings(con) -> None:
    [info] = store.list_datasets(con)
    con.execute(f"SELECT sum(COLUMNS(* EXCLUDE (ts, asset))) FROM {info.table_name}").fetchall()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_app_on_a_workspace_whose_dataset_list_is_damaged_says_so(
    demo_file, tmp_path, monkeypatch
):
    bad = _damaged(demo_file, tmp_path / "bad.duckdb", _list)
    before = _digest(bad)
    monkeypatch.setenv("VIGIL_DB", str(bad))
    app = open_app()
    assert not app.exception
    [error] = [shown(e) for e in app.error]
    assert error.startswith(f"The workspace {bad} {DAMAGED}"), error
    assert [b.label for b in app.button] == ["Retry"]
    next(b for b in app.button if b.label == "Retry").click()
    app.run()
    assert not app.exception
    assert [shown(e) for e in app.error] == [error]
    assert _digest(bad) == before, "nothing written into the damaged file"


def test_the_app_on_a_workspace_whose_readings_are_damaged_says_so_on_explore(
    demo_file, tmp_path, monkeypatch
):
    bad = _damaged(demo_file, tmp_path / "bad.duckdb", _read_readings)
    monkeypatch.setenv("VIGIL_DB", str(bad))
    app = open_app("pages/explore.py")
    assert not app.exception
    assert [shown(e) for e in app.error][-1].startswith(f"The workspace {bad} {DAMAGED}")


def _newer(demo_file: Path, target: Path) -> Path:
    shutil.copy(demo_file, target)
    con = duckdb.connect(str(target))
    con.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')")
    con.execute("ALTER TABLE datasets RENAME COLUMN quality TO quality_v2")
    con.close()
    return target


def test_the_app_on_a_workspace_from_a_newer_vigil_says_so_and_leaves_it(
    demo_file, tmp_path, monkeypatch
):
    newer = _newer(demo_file, tmp_path / "newer.duckdb")
    before = _digest(newer)
    monkeypatch.setenv("VIGIL_DB", str(newer))
    app = open_app()
    assert not app.exception
    [error] = [shown(e) for e in app.error]
    assert error.startswith(f"{newer} was made by a newer Vigil (workspace schema 99; this Vigil")
    assert _digest(newer) == before


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d, t: _damaged(d, t, _list), DAMAGED),
        (_newer, "was made by a newer Vigil (workspace schema 99; this Vigil knows up to"),
    ],
    ids=["damaged", "newer"],
)
def test_the_cli_on_a_bad_workspace_prints_one_line_and_exits_2(
    demo_file, tmp_path, make, expected
):
    bad = make(demo_file, tmp_path / "bad.duckdb")
    before = _digest(bad)
    done = _cli("datasets", "--db", str(bad))
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and expected in line, line
    assert _digest(bad) == before


def test_another_programs_database_is_refused_and_left_as_it_was(tmp_path):
    """Migrating it would add Vigil's tables to someone else's file."""
    path = tmp_path / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE orders (id INTEGER)")
    con.close()
    with pytest.raises(WorkspaceError) as err:
        store.open_workspace(path)
    assert str(err.value).startswith(
        f"{path} is a DuckDB database of another program (tables orders), not a Vigil workspace."
    )
    con = duckdb.connect(str(path))
    assert con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == [("orders",)]
    con.close()


def test_a_csv_given_as_the_workspace_is_refused_not_opened_in_memory(tmp_path):
    """DuckDB opens `--db readings.csv` as an in-memory view of the CSV: a load there said
    'Loaded' and kept nothing. The CLI refuses it in one line and leaves the file as it was."""
    path = tmp_path / "readings.csv"
    path.write_text("time,a\n2024-01-01 00:00:00,1\n2024-01-01 00:01:00,2\n")
    before = _digest(path)
    done = _cli("ingest", str(path), "--db", str(path))
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line == (
        f"error: {path} is a data file, not a Vigil workspace (DuckDB file): nothing written to "
        "it would be kept. Nothing in it was changed; point Vigil at another file with --db or "
        "VIGIL_DB."
    )
    assert _digest(path) == before


def test_a_truncated_workspace_is_called_damaged(demo_file, tmp_path):
    cut = tmp_path / "cut.duckdb"
    shutil.copy(demo_file, cut)
    with cut.open("r+b") as f:
        f.truncate(20_000)
    with pytest.raises(WorkspaceError, match=r"^The workspace .* is damaged and cannot be read"):
        store.open_workspace(cut)
