"""Users' own labels: 0/1 columns named like ground truth are kept as labelled windows, never as
sensors (core, CLI, the upload dialog, and runs graded against them). Real DuckDB files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from core import store
from core.detect.runs import RunConfig, execute_run
from core.errors import DataError
from core.ingest import ingest_file, label_choice
from tests.apptest import open_app
from tests.test_features import toy_plant

ROOT = Path(__file__).resolve().parents[1]


def skab_like(n: int = 1100, faults: tuple[tuple[int, int], ...] = ((700, 760),)) -> pd.DataFrame:
    """A pump rig as the public testbeds export it: sensors, then `anomaly` and `changepoint`."""
    frame = toy_plant(n=n, seed=3).rename(columns={"ts": "datetime"})
    frame["anomaly"] = 0.0
    frame["changepoint"] = 0.0
    for start, end in faults:
        frame.loc[start:end, "current"] += 6.0
        frame.loc[start:end, "anomaly"] = 1.0
        frame.loc[[start, end], "changepoint"] = 1.0
    return frame


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "rig.csv", sep: str = ";") -> Path:
    path = tmp_path / name
    frame.to_csv(path, sep=sep, index=False)
    return path


def test_label_columns_become_ground_truth_not_sensors(workspace, tmp_path):
    frame = skab_like(faults=((300, 359), (700, 760)))
    result = ingest_file(workspace, write(tmp_path, frame))
    info = result.dataset
    assert info.sensors == ["speed", "flow", "pressure", "current", "temp", "vibration"]
    assert "anomaly" not in store.read_readings(workspace, info).columns
    truth = store.read_ground_truth(workspace, info.id)
    anomaly = truth[truth["kind"] == "anomaly"]
    times = pd.to_datetime(frame["datetime"])
    assert list(anomaly["start"]) == [times[300], times[700]]
    assert list(anomaly["end"]) == [times[359], times[760]]
    assert (truth["kind"] == "changepoint").sum() == 4  # single-row windows
    assert any("'anomaly' holds 0/1 ground truth" in w for w in result.warnings)
    assert store.get_dataset(workspace, info.id).has_ground_truth


def test_a_column_named_like_a_label_but_not_0_1_stays_a_sensor(workspace, tmp_path):
    frame = skab_like().assign(target=lambda f: f["speed"] / 10)  # a setpoint named "target"
    info = ingest_file(workspace, write(tmp_path, frame)).dataset
    assert "target" in info.sensors and "anomaly" not in info.sensors


def test_the_user_chooses_label_columns_or_none(workspace, tmp_path):
    path = write(tmp_path, skab_like().rename(columns={"anomaly": "state"}))
    chosen = ingest_file(workspace, path, name="chosen", labels=["state"]).dataset
    assert "state" not in chosen.sensors and "changepoint" in chosen.sensors
    none = ingest_file(workspace, path, name="none", labels=[]).dataset
    assert {"state", "changepoint"} <= set(none.sensors)
    assert not store.get_dataset(workspace, none.id).has_ground_truth


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["nope"], "has no numeric column 'nope' to read as labels"),
        (["speed"], "column 'speed' cannot be labels: it holds"),
    ],
)
def test_bad_label_choices_are_refused_and_write_nothing(workspace, tmp_path, labels, message):
    with pytest.raises(DataError, match=message):
        ingest_file(workspace, write(tmp_path, skab_like()), labels=labels)
    assert store.list_datasets(workspace) == []
    tables = workspace.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    assert not any(t[0].startswith("readings_") for t in tables)


def test_label_choice_reads_what_the_user_typed():
    assert label_choice("") is None and label_choice("  ") is None
    assert label_choice("None") == []
    assert label_choice(" anomaly, changepoint ,") == ["anomaly", "changepoint"]


def test_a_run_is_graded_against_the_files_labels(workspace, tmp_path):
    frame = skab_like(n=6000, faults=((5000, 5060),))
    info = ingest_file(workspace, write(tmp_path, frame)).dataset
    run = execute_run(workspace, RunConfig(dataset_id=info.id))
    assert run.evaluation is not None, "ground truth from the file grades the run"
    assert run.evaluation["n_events"] >= 1


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=ROOT,
        env=env, timeout=60,
    )  # fmt: skip


def test_cli_labels_flag(tmp_path):
    path = write(tmp_path, skab_like().rename(columns={"anomaly": "state"}))
    db = str(tmp_path / "ws.duckdb")
    done = _cli("ingest", str(path), "--db", db, "--labels", "state")
    assert done.returncode == 0, done.stderr
    # named columns are exactly the labels: `changepoint` was not named, so it stays a sensor
    assert "7 sensors" in done.stdout and "'state' holds 0/1 ground truth" in done.stdout
    bad = _cli("ingest", str(path), "--db", db, "--labels", "flow")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "'flow' cannot be labels" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_upload_dialog_takes_label_columns(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_DB", str(tmp_path / "workspace.duckdb"))
    app = open_app()
    data = skab_like().rename(columns={"anomaly": "state"}).to_csv(sep=";", index=False)
    app.file_uploader[0].set_value(("rig.csv", data.encode(), "text/csv"))
    app.text_input(key="upload_labels").set_value("state")
    app.run()
    next(b for b in app.button if b.label == "Load file").click()
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any("'state' holds 0/1 ground truth" in w.value for w in app.warning)
    con = store.open_workspace(tmp_path / "workspace.duckdb")
    try:
        (info,) = store.list_datasets(con)
        assert "state" not in info.sensors and "changepoint" in info.sensors
        assert info.has_ground_truth and len(store.read_ground_truth(con, info.id)) == 1
    finally:
        con.close()


def test_upload_dialog_refuses_a_label_column_that_is_not_0_1(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_DB", str(tmp_path / "workspace.duckdb"))
    app = open_app()
    data = skab_like().to_csv(sep=";", index=False)
    app.file_uploader[0].set_value(("rig.csv", data.encode(), "text/csv"))
    app.text_input(key="upload_labels").set_value("flow")
    app.run()
    next(b for b in app.button if b.label == "Load file").click()
    app.run()
    assert not app.exception
    assert any("'flow' cannot be labels" in e.value for e in app.error)
    con = store.open_workspace(tmp_path / "workspace.duckdb")
    try:
        assert store.list_datasets(con) == []
    finally:
        con.close()
