"""Retraining stores its version and the run holding its scores together or not at all."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from core import store
from core.learn import retraining as learning
from tests.label_data import store_frame
from tests.test_learning import add_labels, toy_frame

ROOT = Path(__file__).resolve().parents[1]
SPANS = [("p1", 400, 410, "confirmed"), ("p2", 500, 510, "false_alarm")]


def _labelled_workspace(path: Path) -> tuple[duckdb.DuckDBPyConnection, int]:
    con = store.open_workspace(path)
    info = store_frame(con, toy_frame(n=900, faults=[("p1", 400, 410, "temp", 8.0)]))
    add_labels(con, info, SPANS)
    return con, info.id


def _dangling(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Runs naming a version that does not exist, and versions naming a run that does not."""
    versions = dict(con.execute("SELECT id, run_id FROM model_versions").fetchall())
    runs = dict(con.execute("SELECT id, params FROM runs WHERE detector = 'version'").fetchall())
    named = {r: json.loads(p)["version_id"] for r, p in runs.items()}
    found = [f"run {r} names missing v{v}" for r, v in named.items() if v not in versions]
    found += [f"v{v} names missing run {r}" for v, r in versions.items() if r not in runs]
    return found


def test_a_failing_version_step_leaves_no_run(tmp_path):
    """The version insert fails (no analyst: created_by is NOT NULL) after the run's scores are
    built: the run must not stay behind naming a version that never existed."""
    con, dataset_id = _labelled_workspace(tmp_path / "w.duckdb")
    with pytest.raises(duckdb.ConstraintException, match="created_by"):
        learning.retrain(con, learning.RetrainConfig(dataset_id), None)
    assert store.list_runs(con, dataset_id) == []
    assert con.execute("SELECT count(*) FROM model_versions").fetchone()[0] == 0
    result = learning.retrain(con, learning.RetrainConfig(dataset_id), "tester")
    assert [r["id"] for r in store.list_runs(con, dataset_id)] == [result.version.run_id]
    assert _dangling(con) == []
    con.close()


RETRAINER = textwrap.dedent(
    """
    import sys
    from core import store
    from core.learn import RetrainConfig, retrain

    con = store.open_workspace(sys.argv[1])
    dataset_id = int(sys.argv[2])

    def report(fraction, message):
        if message.startswith("Saving"):
            print("saving", flush=True)

    while True:
        retrain(con, RetrainConfig(dataset_id), "killed", progress=report)
        print("saved", flush=True)
    """
)
KILLS = 8
SCORES_BYTES = 20_000


def _retrainer(path: Path, dataset_id: int) -> subprocess.Popen:
    """A second process retraining the dataset in a loop (it prints "saving", then "saved")."""
    return subprocess.Popen(
        [sys.executable, "-c", RETRAINER, str(path), str(dataset_id)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_scores(wal: Path, timeout: float = 30.0) -> None:
    """Return as soon as the write-ahead log has grown by a run's scores (tens of kB; the ids a
    retrain reserves first add only bytes): the instant a commit of the scores landed."""

    def size() -> int:
        return wal.stat().st_size if wal.exists() else 0

    before, deadline = size(), time.monotonic() + timeout
    while size() < before + SCORES_BYTES:
        assert time.monotonic() < deadline, "the retrain never committed its scores"


def test_a_retrain_killed_at_any_moment_never_leaves_a_run_without_its_version(tmp_path):
    """kill -9 a process retraining in a loop while it saves: half the time the instant its
    write-ahead log first grows (when the run alone used to be committed), half at a random
    moment after its progress says saving started. The file never holds half a version."""
    path = tmp_path / "w.duckdb"
    con, dataset_id = _labelled_workspace(path)
    con.close()
    rng = random.Random(14)
    for kill in range(KILLS):
        child = _retrainer(path, dataset_id)
        assert child.stdout.readline() == "saving\n", child.stderr.read()
        if kill % 2 == 0:
            _wait_for_scores(Path(f"{path}.wal"))
        else:
            time.sleep(rng.uniform(0, 0.08))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        assert child.returncode == -signal.SIGKILL
        con = store.open_workspace(path)
        assert _dangling(con) == [], f"after kill {kill + 1}"
        con.close()
    # the kills above may all land before a commit on a loaded machine: one retrain that
    # finishes, then a kill as the next one saves, keeps the test from passing on nothing
    child = _retrainer(path, dataset_id)
    lines = [child.stdout.readline() for _ in range(3)]
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    assert lines == ["saving\n", "saved\n", "saving\n"], child.stderr.read()
    con = store.open_workspace(path)
    assert _dangling(con) == [], "after the last kill"
    assert con.execute("SELECT count(*) FROM model_versions").fetchone()[0] >= 1, "none saved"
    con.close()
