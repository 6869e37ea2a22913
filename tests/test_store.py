"""The workspace store on a real DuckDB file: migrations, datasets, quoting, all-or-nothing."""

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pytest

from core import store
from core.errors import DataError
from core.store.migrations import MIGRATIONS
from core.types import DatasetInfo, QualityReport

WEIRD = ['flow "main"', "x; DROP TABLE datasets; --", "temp °C", "select"]


def _frame(sensors: list[str], n: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"ts": pd.date_range("2026-01-01", periods=n, freq="1min"), "asset": ["p1"] * n}
    )
    for s in sensors:
        frame[s] = rng.normal(size=n)
    return frame


def _add(con, name: str, sensors: list[str], faults: pd.DataFrame | None = None) -> DatasetInfo:
    frame = _frame(sensors)
    ds_id = store.next_dataset_id(con)
    info = DatasetInfo(
        id=ds_id,
        name=store.unique_dataset_name(con, name),
        table_name=store.readings_table_name(ds_id),
        source_file="test.csv",
        sha256="0" * 64,
        layout="wide",
        n_rows=len(frame),
        sensors=sensors,
        assets=["p1"],
        time_start=frame["ts"].min().to_pydatetime(),
        time_end=frame["ts"].max().to_pydatetime(),
        interval_seconds=60.0,
        loaded_at=datetime(2026, 1, 2),
        quality=QualityReport(n_rows=len(frame), nan_share={s: 0.0 for s in sensors}),
    )
    return store.add_dataset_from_frame(con, info, frame, faults)


def test_blank_workspace_is_migrated_to_latest(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    assert store.schema_version(con) == max(v for v, _, _ in MIGRATIONS)
    assert store.list_datasets(con) == []


def test_reopening_applies_nothing_twice(tmp_path):
    path = tmp_path / "w.duckdb"
    store.open_workspace(path).close()
    con = duckdb.connect(str(path))
    assert store.migrate(con) == []


def test_older_workspace_is_upgraded(tmp_path):
    """A file at schema version 1 gets every later migration on open, its data intact."""
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())"
    )
    MIGRATIONS[0][2](con)
    con.execute("INSERT INTO schema_migrations (version, name) VALUES (1, 'datasets')")
    _add(con, "old", ["a"])
    con.close()
    con = store.open_workspace(path)
    assert store.schema_version(con) == max(v for v, _, _ in MIGRATIONS)
    assert [d.name for d in store.list_datasets(con)] == ["old"]


def test_dataset_round_trip_keeps_weird_names_verbatim(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    info = _add(con, "weird", WEIRD)
    assert info.sensors == WEIRD
    frame = store.read_readings(con, info, asset="p1", sensors=WEIRD[:2])
    assert list(frame.columns) == ["ts", "asset", *WEIRD[:2]]
    assert len(frame) == 50
    assert {"datasets", info.table_name} <= store.table_names(con)


def test_read_filters_by_time_and_rejects_unknown_sensor(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    info = _add(con, "d", ["a", "b"])
    window = store.read_readings(
        con, info, start=datetime(2026, 1, 1, 0, 10), end=datetime(2026, 1, 1, 0, 19)
    )
    assert len(window) == 10
    assert window["ts"].is_monotonic_increasing
    with pytest.raises(DataError, match="no sensor 'zzz'"):
        store.read_readings(con, info, sensors=["zzz"])


def test_names_are_made_unique_and_lookup_by_name_or_id(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    first = _add(con, "pumps", ["a"])
    second = _add(con, "pumps", ["a"])
    assert second.name == "pumps (2)"
    assert store.get_dataset(con, "pumps").id == first.id
    assert store.get_dataset(con, second.id).name == "pumps (2)"
    with pytest.raises(DataError, match="no dataset"):
        store.get_dataset(con, 999)


def test_ground_truth_and_delete(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    faults = pd.DataFrame(
        [
            {
                "asset": "p1",
                "start": pd.Timestamp("2026-01-01 00:05"),
                "end": pd.Timestamp("2026-01-01 00:09"),
                "kind": "spike",
                "sensors": ["a"],
                "magnitude": 5.0,
                "description": "test",
            }
        ]
    )
    info = _add(con, "gt", ["a"], faults)
    assert info.has_ground_truth
    truth = store.read_ground_truth(con, info.id)
    assert truth.loc[0, "kind"] == "spike" and list(truth.loc[0, "sensors"]) == ["a"]
    store.delete_dataset(con, info.id)
    assert store.list_datasets(con) == []
    assert store.read_ground_truth(con, info.id).empty
    assert info.table_name not in store.table_names(con)


def test_failed_add_leaves_nothing_behind(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    first = _add(con, "one", ["a"])
    bad_faults = pd.DataFrame([{"asset": "p1", "start": "not a time", "end": None}])
    with pytest.raises(Exception):  # noqa: B017 - any failure must roll back
        _add(con, "two", ["a"], bad_faults)
    assert [d.id for d in store.list_datasets(con)] == [first.id]
    leftovers = {t for t in store.table_names(con) if t.startswith("readings_")}
    assert leftovers == {first.table_name}


def test_correlation_matrix_is_symmetric_with_unit_diagonal(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    info = _add(con, "c", ["a", 'b"q'])
    matrix = store.sensor_correlation(con, info, "p1", ["a", 'b"q'])
    assert matrix.shape == (2, 2)
    assert np.allclose(np.diag(matrix), 1.0)
    assert matrix.loc["a", 'b"q'] == pytest.approx(matrix.loc['b"q', "a"])


def test_quote_ident_doubles_quotes():
    assert store.quote_ident('a"b') == '"a""b"'


def test_deleting_a_dataset_removes_its_runs_but_keeps_labels(tmp_path):
    from core.detect.runs import RunConfig, execute_run, list_runs
    from core.labels import history as labels
    from core.labels import triage
    from core.synth.demo import load_demo

    con = store.open_workspace(tmp_path / "w.duckdb")
    info = load_demo(con, seed=5, n_assets=1, rows_per_asset=8000)  # enough to find events
    keep = load_demo(con, seed=6, n_assets=1, rows_per_asset=2000)
    run = execute_run(con, RunConfig(dataset_id=info.id))
    kept_run = execute_run(con, RunConfig(dataset_id=keep.id))
    queue = triage.review_queue(con, run.id)
    labels.label_events(con, info.id, queue.iloc[:1], "confirmed", "ana", kind="spike")
    store.delete_dataset(con, info.id)
    assert list_runs(con, info.id) == []
    assert [r.id for r in list_runs(con, keep.id)] == [kept_run.id]
    assert store.read_run_scores(con, run.id).empty
    history = labels.audit_log(con, info.id)
    assert len(history) == 1, "an analyst's verdict survives the dataset's deletion"
