"""Appending a batch to a dataset: scored by the model in use, its events queued, all or nothing.

A demo plant is cut in two: the first part is the dataset a run was made on, the rest arrives
later as a CSV batch. Everything runs on a real DuckDB workspace file.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pandas as pd
import pytest

from core import store
from core.detect import RunConfig, execute_run
from core.detect.model import AnomalyModel
from core.detect.runs import prepare
from core.errors import DataError
from core.labels import triage
from core.learn.batches import append_batch
from core.synth.demo import DemoPlant, generate_plant, store_plant
from core.types import ASSET, TS
from tests.apptest import open_app, shown

FIRST = 4_000


@pytest.fixture(scope="module")
def plant() -> DemoPlant:
    return generate_plant(seed=11, n_assets=2, rows_per_asset=6_000)


def _part(plant: DemoPlant, first: bool) -> pd.DataFrame:
    parts = []
    for _, rows in plant.readings.groupby(ASSET, sort=False):
        rows = rows.sort_values(TS)
        parts.append(rows.iloc[:FIRST] if first else rows.iloc[FIRST:])
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def workspace(tmp_path, plant):
    con = store.open_workspace(tmp_path / "w.duckdb")
    head = DemoPlant(_part(plant, True), plant.faults.iloc[:0], plant.machine_off)
    info = store_plant(con, head, "pumps", 11)
    run = execute_run(con, RunConfig(info.id))
    yield con, info, run
    con.close()


def _batch_csv(tmp_path, frame: pd.DataFrame, name: str = "tomorrow.csv"):
    path = tmp_path / name
    frame.rename(columns={TS: "timestamp"}).to_csv(path, index=False)
    return path


def _state(con, info, run_id: int) -> tuple:
    return (
        store.get_dataset(con, info.id).n_rows,
        store.get_run(con, run_id)["n_scores"],
        len(store.read_events(con, run_id)),
        [d.name for d in store.list_datasets(con)],
    )


def test_a_batch_is_scored_by_the_model_in_use_and_queued(workspace, plant, tmp_path):
    con, info, run = workspace
    before = store.read_events(con, run.id)
    _, _, train, _ = prepare(con, RunConfig(info.id))  # the run's window, before the batch
    done = append_batch(con, info.id, _batch_csv(tmp_path, _part(plant, False)))
    assert done.run_id == run.id and done.n_rows == 4_000
    assert done.dataset.n_rows == 12_000 and done.dataset.time_end > info.time_end
    stored = store.get_run(con, run.id)
    assert stored["n_scores"] == run.n_scores + 4_000
    events = store.read_events(con, run.id)
    assert len(events) == len(before) + len(done.events) and events["event_id"].is_unique
    assert len(done.events) > 0, "the batch holds injected faults"
    assert done.events["event_id"].min() > before["event_id"].max()
    queue = triage.review_queue(con, run.id)
    assert set(done.events["event_id"]) <= set(queue["event_id"])
    # the batch's scores are what scoring everything with the run's model gives
    full = AnomalyModel().fit(train).score(store.read_readings(con, done.dataset)).frame
    scores = store.read_run_scores(con, run.id)
    merged = full.merge(scores, on=[TS, ASSET], suffixes=("_full", "_run"))
    late = merged[merged[TS] > pd.Timestamp(info.time_end)]
    assert len(late) == 4_000
    assert np.allclose(late["score_full"], late["score_run"], rtol=1e-6, atol=1e-9)
    assert (late["is_anomaly_full"] == late["is_anomaly_run"]).all()
    assert "__batch" not in " ".join(d.name for d in store.list_datasets(con))


def test_a_drifted_sensor_is_named(workspace, plant, tmp_path):
    con, info, _ = workspace
    later = _part(plant, False)
    later["bearing_temp_c"] += 15.0
    done = append_batch(con, info.id, _batch_csv(tmp_path, later))
    top = done.drift.iloc[0]
    assert (top["name"], top["status"]) == ("bearing_temp_c", "drifted") and top["psi"] > 5
    assert "bearing_temp_c" in done.drifted
    assert done.drift.set_index("name")["ks"].idxmax() == "bearing_temp_c"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="flow_m3h"), "lacks 'flow_m3h'"),
        (lambda f: f.assign(spare=1.0), "has 'spare' that the dataset does not"),
        (lambda f: f.assign(asset="P-999"), "holds asset 'P-999', which 'pumps' does not"),
        (
            lambda f: f.assign(ts=f[TS] - pd.Timedelta(hours=2)),
            "not after the dataset's last reading",
        ),
    ],
)
def test_a_bad_batch_changes_nothing(workspace, plant, tmp_path, change, message):
    con, info, run = workspace
    before = _state(con, info, run.id)
    with pytest.raises(DataError, match=message):
        append_batch(con, info.id, _batch_csv(tmp_path, change(_part(plant, False))))
    assert _state(con, info, run.id) == before


def test_no_model_yet_is_refused(tmp_path, plant):
    con = store.open_workspace(tmp_path / "w.duckdb")
    info = store_plant(
        con, DemoPlant(_part(plant, True), plant.faults.iloc[:0], plant.machine_off), "p", 1
    )
    with pytest.raises(DataError, match="has no model yet: run a detector first"):
        append_batch(con, info.id, _batch_csv(tmp_path, _part(plant, False)))
    assert store.get_dataset(con, info.id).n_rows == 8_000


def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True, timeout=300
    )


def test_the_cli_appends_or_refuses_with_one_line(workspace, plant, tmp_path):
    con, info, run = workspace
    path = tmp_path / "w.duckdb"
    before = _state(con, info, run.id)
    con.close()
    late = _part(plant, False)
    bad = _batch_csv(tmp_path, late.drop(columns="flow_m3h"), "bad.csv")
    done = _cli("append", bad, "--dataset", "pumps", "--db", path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "error: bad.csv lacks 'flow_m3h': a batch needs the dataset's sensors, no more, no fewer."
    ]
    con = store.open_workspace(path)
    assert _state(con, info, run.id) == before
    con.close()
    done = _cli("append", _batch_csv(tmp_path, late), "--dataset", str(info.id), "--db", path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Appended 4,000 rows to 'pumps', scored with run #1's model")
    assert "review queue" in done.stdout


def test_the_load_data_page_appends_and_says_what_it_found(workspace, plant, tmp_path, monkeypatch):
    con, info, run = workspace
    path = tmp_path / "w.duckdb"
    con.close()
    monkeypatch.setenv("VIGIL_DB", str(path))
    app = open_app()
    data = _part(plant, False).rename(columns={TS: "timestamp"}).to_csv(index=False).encode()
    uploader = next(u for u in app.file_uploader if u.label == "Newer readings")
    uploader.set_value(("tomorrow.csv", data, "text/csv"))
    app.run()
    app.button(key="append_go").click()
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    [message] = [shown(s) for s in app.success if "Appended" in shown(s)]
    assert "Appended 4,000 rows to 'pumps'" in message and "review queue" in message
    con = store.open_workspace(path)
    assert store.get_dataset(con, info.id).n_rows == 12_000
    con.close()
    # the same file again overlaps what is there now: refused on screen, nothing changed
    uploader = next(u for u in app.file_uploader if u.label == "Newer readings")
    uploader.set_value(("tomorrow.csv", data, "text/csv"))
    app.run()
    app.button(key="append_go").click()
    app.run()
    assert not app.exception
    assert any("not after the dataset's last reading" in shown(e) for e in app.error)
    con = store.open_workspace(path)
    assert store.get_dataset(con, info.id).n_rows == 12_000
    con.close()


def test_two_sessions_appending_the_same_batch_add_it_once(workspace, plant, tmp_path):
    """Two app sessions (cursors on one connection, as the app runs them) press Append on the
    same file at once: one batch lands, the other is refused as overlapping, never doubled."""
    con, info, run = workspace
    path = _batch_csv(tmp_path, _part(plant, False))
    outcomes: list[object] = []
    start = threading.Barrier(2)

    def session() -> None:
        cursor = con.cursor()
        start.wait()
        try:
            outcomes.append(append_batch(cursor, info.id, path))
        except Exception as exc:  # what the page would show
            outcomes.append(exc)
        finally:
            cursor.close()

    threads = [threading.Thread(target=session) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], DataError), outcomes
    assert "not after the dataset's last reading" in str(errors[0])
    assert store.get_dataset(con, info.id).n_rows == 12_000
    assert store.get_run(con, run.id)["n_scores"] == run.n_scores + 4_000
