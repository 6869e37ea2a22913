"""Two analysts at once on one workspace: threads with their own cursors of one connection, as
the app's sessions have, on a real DuckDB file. Each test forces the interleaving that lost data
before (a step of one session lands between two steps of the other)."""

from __future__ import annotations

import threading

import pytest

from core import store
from core.detect.runs import RunConfig, execute_run, list_runs
from core.errors import DataError
from core.synth.demo import load_demo


@pytest.fixture
def workspace(tmp_path):
    con = store.open_workspace(tmp_path / "workspace.duckdb")
    info = load_demo(con, seed=3, n_assets=2, rows_per_asset=4000)
    yield con, info
    con.close()


def _orphans(con) -> dict[str, int]:
    """Rows left behind by a dataset or run that is gone."""
    queries = {
        "runs": "SELECT count(*) FROM runs WHERE dataset_id NOT IN (SELECT id FROM datasets)",
        "scores": "SELECT count(*) FROM run_scores WHERE run_id NOT IN (SELECT id FROM runs)",
        "events": "SELECT count(*) FROM events WHERE run_id NOT IN (SELECT id FROM runs)",
        "models": "SELECT count(*) FROM run_models WHERE run_id NOT IN (SELECT id FROM runs)",
        "explanations": "SELECT count(*) FROM explanations WHERE run_id NOT IN "
        "(SELECT id FROM runs)",
    }
    return {name: con.execute(sql).fetchall()[0][0] for name, sql in queries.items()}


def test_a_dataset_deleted_while_a_run_is_going_gets_no_run(workspace):
    con, info = workspace
    storing, deleted = threading.Event(), threading.Event()

    def progress(fraction: float, message: str) -> None:
        if message == "Storing the run":  # fitted and scored: now the other session deletes
            storing.set()
            assert deleted.wait(60)

    outcome: dict[str, BaseException | None] = {}

    def run() -> None:
        try:
            execute_run(con.cursor(), RunConfig(dataset_id=info.id), progress)
            outcome["run"] = None
        except BaseException as exc:  # noqa: BLE001 - the test reads it below
            outcome["run"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    assert storing.wait(120)
    store.delete_dataset(con.cursor(), info.id)
    deleted.set()
    worker.join(120)
    assert isinstance(outcome["run"], DataError)
    assert "was deleted by another session meanwhile: nothing was stored" in str(outcome["run"])
    assert set(_orphans(con).values()) == {0}, _orphans(con)


def test_two_runs_started_at_once_both_land_whole(workspace):
    con, info = workspace
    start = threading.Barrier(2)
    ids: list[int] = []

    def run() -> None:
        cursor = con.cursor()
        start.wait()
        ids.append(execute_run(cursor, RunConfig(dataset_id=info.id, detector="pca")).id)

    workers = [threading.Thread(target=run) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert sorted(ids) == [r.id for r in reversed(list_runs(con, info.id))]
    assert len(set(ids)) == 2
    counts = con.execute(
        "SELECT r.id, r.n_scores, count(s.ts) FROM runs r JOIN run_scores s ON s.run_id = r.id "
        "GROUP BY ALL"
    ).fetchall()
    assert all(stored == expected for _, expected, stored in counts)


def test_an_explanation_of_a_run_deleted_meanwhile_leaves_no_row(workspace):
    con, info = workspace
    run = execute_run(con, RunConfig(dataset_id=info.id, detector="pca"))
    store.delete_run(con.cursor(), run.id)
    store.save_explanation(con.cursor(), run.id, "event:1", "exact", 1, {}, b"x", 0.1)
    assert _orphans(con)["explanations"] == 0


def _at_once(con, *writes):
    """Run the writes in threads with their own cursors, released together; their results."""
    start = threading.Barrier(len(writes))
    results: list[object] = [None] * len(writes)

    def go(i: int, write) -> None:
        cursor = con.cursor()
        start.wait()
        try:
            results[i] = write(cursor)
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            results[i] = exc

    workers = [threading.Thread(target=go, args=(i, w)) for i, w in enumerate(writes)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    return results


def test_two_uploads_of_one_file_at_once_both_land_under_two_names(workspace, tmp_path):
    """DuckDB checks the unique name only against what committed: both sessions saw 'pump'
    free and the second got a raw constraint error."""
    from core.ingest.pipeline import ingest_file

    con, _ = workspace
    path = tmp_path / "pump.csv"
    path.write_text("time,a\n" + "".join(f"2024-01-01 00:{m:02d},{m}\n" for m in range(60)))
    results = _at_once(con, lambda c: ingest_file(c, path), lambda c: ingest_file(c, path))
    assert sorted(r.dataset.name for r in results) == ["pump", "pump (2)"], results
    results = _at_once(
        con,
        lambda c: load_demo(c, seed=1, n_assets=1, rows_per_asset=1500),
        lambda c: load_demo(c, seed=1, n_assets=1, rows_per_asset=1500),
    )
    assert sorted(r.name for r in results) == ["Demo plant (seed 1)", "Demo plant (seed 1) (2)"]
