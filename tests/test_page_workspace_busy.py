"""The app opened while another Vigil process holds the workspace file: a message, then Retry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.apptest import open_app, shown

ROOT = Path(__file__).resolve().parents[1]
HOLDER = (
    "import sys; from core import store; con = store.open_workspace(sys.argv[1]); "
    "print('holding', flush=True); sys.stdin.read(); con.close()"
)


def test_a_busy_workspace_is_explained_and_retry_opens_it_once_free(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "holding\n"
        monkeypatch.setenv("VIGIL_DB", str(path))
        app = open_app()
        assert not app.exception
        [error] = [shown(e) for e in app.error]
        assert error.startswith(f"The workspace {path} is held by another Vigil process")
        assert f"(PID {holder.pid}," in error
        next(b for b in app.button if b.label == "Retry").click()
        app.run()
        assert not app.exception
        assert [shown(e) for e in app.error] == [error], "still held: the same message"
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    next(b for b in app.button if b.label == "Retry").click()
    app.run()
    assert not app.exception
    assert not app.error
    assert app.title[0].value == "Load data"
    assert any("workspace is empty" in info.value for info in app.info)
