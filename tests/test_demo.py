"""The demo plant: deterministic, physically coupled, with faults that are really there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import store
from core.errors import ConfigError
from core.synth.demo import MIN_ROWS, SENSORS, frame_sha256, generate_plant, load_demo
from core.synth.faults import FAULT_COLUMNS, FAULT_KINDS, robust_spread
from core.types import ASSET, TS

ROOT = Path(__file__).resolve().parents[1]
ROWS = 3000


@pytest.fixture(scope="module")
def plant():
    return generate_plant(seed=11, rows_per_asset=ROWS)


@pytest.fixture(scope="module")
def clean():
    return generate_plant(seed=11, rows_per_asset=ROWS, faults_per_asset=0)


def in_window(frame: pd.DataFrame, asset: str, start, end) -> np.ndarray:
    return ((frame[ASSET] == asset) & (frame[TS] >= start) & (frame[TS] <= end)).to_numpy()


def test_same_seed_same_plant_other_seed_other_plant(plant):
    again = generate_plant(seed=11, rows_per_asset=ROWS)
    pd.testing.assert_frame_equal(plant.readings, again.readings)
    pd.testing.assert_frame_equal(plant.faults, again.faults)
    pd.testing.assert_frame_equal(plant.machine_off, again.machine_off)
    other = generate_plant(seed=12, rows_per_asset=ROWS)
    assert not np.allclose(plant.readings["flow_m3h"], other.readings["flow_m3h"])
    assert not plant.faults["start"].equals(other.faults["start"])


def test_shape_columns_and_regular_time_axis(plant):
    readings = plant.readings
    assert list(readings.columns) == [TS, ASSET, *SENSORS]
    assert 8 <= len(SENSORS) <= 10
    assert len(readings) == 3 * ROWS
    assert readings.groupby(ASSET).size().to_dict() == {"P-101": ROWS, "P-102": ROWS, "P-103": ROWS}
    assert readings[TS].min() == pd.Timestamp("2026-01-01")
    steps = readings.groupby(ASSET)[TS].diff().dropna()
    assert (steps == pd.Timedelta(minutes=1)).all()
    assert not readings[list(SENSORS)].isna().any().any()
    assert list(plant.faults.columns) == FAULT_COLUMNS
    assert list(plant.machine_off.columns) == [ASSET, "start", "end"]


def test_an_asset_does_not_depend_on_how_many_assets_there_are(clean):
    alone = generate_plant(seed=11, n_assets=1, rows_per_asset=ROWS, faults_per_asset=0)
    first = clean.readings[clean.readings[ASSET] == "P-101"].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone.readings, first)


def test_physical_couplings_hold_while_running(clean):
    for asset, g in clean.readings.groupby(ASSET):
        run = g[g["speed_rpm"] > 0.6 * g["speed_rpm"].max()]
        head = run["discharge_pressure_bar"] - run["suction_pressure_bar"]
        hydraulic = run["flow_m3h"] * head
        assert run["flow_m3h"].corr(run["speed_rpm"]) > 0.9, asset
        assert head.corr(run["speed_rpm"] ** 2) > 0.9, asset
        assert run["motor_current_a"].corr(hydraulic) > 0.9, asset
        assert run["vibration_rms_mm_s"].corr(run["speed_rpm"] ** 2) > 0.9, asset
        rise = run["motor_temp_c"] - run["ambient_temp_c"]
        assert rise.median() > 10, asset
        assert rise.corr(run["motor_current_a"] ** 2) > 0.5, asset  # lagged, yet clearly tied


def test_operating_modes_change_and_ambient_has_a_daily_cycle():
    plant = generate_plant(seed=3, n_assets=1, rows_per_asset=10_000, faults_per_asset=0)
    g = plant.readings
    levels = (g["speed_rpm"] / g["speed_rpm"].max()).round(1)
    assert levels[levels > 0].nunique() >= 3
    by_hour = g.groupby(g[TS].dt.hour)["ambient_temp_c"].mean()
    assert by_hour.loc[14:16].mean() - by_hour.loc[2:4].mean() > 5


def test_machine_off_stretches_are_idle_and_cool_down(clean):
    off = clean.machine_off
    assert set(off[ASSET]) == {"P-101", "P-102", "P-103"}
    for stop in off.to_dict("records"):
        rows = clean.readings[in_window(clean.readings, stop[ASSET], stop["start"], stop["end"])]
        assert (rows["speed_rpm"] == 0).all() and (rows["flow_m3h"] == 0).all()
        assert rows["motor_current_a"].max() < 1.5
        assert rows["vibration_rms_mm_s"].max() < 0.2
        rise = (rows["motor_temp_c"] - rows["ambient_temp_c"]).to_numpy()
        if len(rows) >= 60:
            assert rise[-5:].mean() < 0.6 * rise[:5].mean()


def test_faults_avoid_each_other_and_machine_off(plant):
    for asset, faults in plant.faults.groupby("asset"):
        faults = faults.sort_values("start")
        assert len(faults) == 6
        assert (faults["start"].iloc[1:].to_numpy() > faults["end"].iloc[:-1].to_numpy()).all()
        stops = plant.machine_off[plant.machine_off[ASSET] == asset]
        for stop in stops.to_dict("records"):
            clear = (faults["end"] < stop["start"]) | (faults["start"] > stop["end"])
            assert clear.all(), (asset, stop)


def test_faults_change_only_their_sensors_inside_their_windows(plant, clean):
    sensors = list(SENSORS)
    touched = pd.DataFrame(False, index=plant.readings.index, columns=sensors)
    for fault in plant.faults.to_dict("records"):
        rows = in_window(plant.readings, fault["asset"], fault["start"], fault["end"])
        touched.loc[rows, fault["sensors"]] = True
        for sensor in fault["sensors"]:
            assert sensor in sensors
            dirty = plant.readings.loc[rows, sensor].to_numpy()
            true = clean.readings.loc[rows, sensor].to_numpy()
            asset = clean.readings.loc[clean.readings[ASSET] == fault["asset"], sensor]
            _assert_visible(fault["kind"], (dirty - true) / robust_spread(asset), dirty, true)
    differs = plant.readings[sensors].to_numpy() != clean.readings[sensors].to_numpy()
    assert not (differs & ~touched.to_numpy()).any()


def _assert_visible(kind: str, diff: np.ndarray, dirty: np.ndarray, true: np.ndarray) -> None:
    """Each kind leaves its own mark against the clean signal (sizes in robust spreads)."""
    if kind == "spike":
        assert np.abs(diff).min() > 2.5
    elif kind == "drift":
        assert np.abs(diff[-1]) > 1.0 and np.abs(diff[0]) < np.abs(diff[-1]) / 5
    elif kind == "level_shift":
        assert np.abs(diff).min() > 0.7 and np.ptp(diff) < 1e-9
    elif kind == "stuck":
        assert np.ptp(dirty) == 0 and np.ptp(true) > 0
    elif kind == "noise_burst":
        assert np.std(diff) > 0.2
    else:
        assert kind == "coupling_break"
        assert np.abs(diff).max() > 0.5


def test_default_plant_has_every_fault_kind():
    """The one default-size check: what the app and the CLI ship."""
    plant = generate_plant()
    assert len(plant.readings) == 150_000
    assert set(plant.faults["kind"]) == set(FAULT_KINDS)
    assert (plant.faults.groupby("asset").size() == 6).all()
    assert (plant.machine_off.groupby(ASSET).size() >= 2).all()
    duration = plant.faults["end"] - plant.faults["start"]
    assert duration.max() <= pd.Timedelta(hours=6)
    assert duration[plant.faults["kind"] == "drift"].min() >= pd.Timedelta(hours=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_assets": 0}, "'n_assets' parameter must be >= 1"),
        ({"rows_per_asset": MIN_ROWS - 1}, f"'rows_per_asset' parameter must be >= {MIN_ROWS}"),
        ({"interval": "often"}, "not a duration"),
        ({"interval": "-1min"}, "must be positive"),
    ],
)
def test_bad_parameters_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        generate_plant(**kwargs)


def test_load_demo_stores_readings_and_ground_truth(tmp_path):
    con = store.open_workspace(tmp_path / "ws.duckdb")
    try:
        info = load_demo(con, seed=5, n_assets=2, rows_per_asset=1500)
        second = load_demo(con, seed=5, n_assets=2, rows_per_asset=1500)
        named = load_demo(con, seed=6, n_assets=1, rows_per_asset=1500, name="Pumps")
        plant = generate_plant(seed=5, n_assets=2, rows_per_asset=1500)
        stored = store.get_dataset(con, info.id)
        truth = store.read_ground_truth(con, info.id)
        readings = store.read_readings(con, stored)
    finally:
        con.close()
    assert stored.name == "Demo plant (seed 5)" and second.name == "Demo plant (seed 5) (2)"
    assert named.name == "Pumps" and named.assets == ["P-101"]
    assert (stored.layout, stored.n_rows, stored.interval_seconds) == ("demo", 3000, 60.0)
    assert stored.sensors == list(SENSORS) and stored.assets == ["P-101", "P-102"]
    assert stored.has_ground_truth and stored.table_name == store.readings_table_name(info.id)
    assert stored.time_start == pd.Timestamp("2026-01-01").to_pydatetime()
    assert stored.sha256 == frame_sha256(plant.readings) == second.sha256 != named.sha256
    assert stored.quality.n_rows == 3000 and stored.quality.n_gaps == 0
    assert stored.quality.nan_share == {s: 0.0 for s in SENSORS}
    assert "12 injected faults" in stored.quality.notes[0]
    assert len(truth) == len(plant.faults) == 12
    assert truth["kind"].tolist() == plant.faults["kind"].tolist()
    assert [list(s) for s in truth["sensors"]] == plant.faults["sensors"].tolist()
    np.testing.assert_allclose(truth["magnitude"], plant.faults["magnitude"])
    np.testing.assert_allclose(readings[list(SENSORS)], plant.readings[list(SENSORS)])
    assert (readings[TS].to_numpy() == plant.readings[TS].to_numpy()).all()


def test_cli_demo_exits_zero_and_fills_the_workspace(tmp_path):
    db = tmp_path / "cli.duckdb"
    proc = subprocess.run(
        [sys.executable, "-m", "core", "demo", "--db", str(db), "--rows", "5000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "15,000 rows" in proc.stdout
    con = store.open_workspace(db)
    try:
        info = store.get_dataset(con, "Demo plant (seed 7)")
        assert len(store.read_ground_truth(con, info.id)) == 18
    finally:
        con.close()


def test_cli_demo_if_empty_adds_the_plant_once(tmp_path):
    """`make run` loads the demo only into an empty workspace, never a second copy."""
    db = tmp_path / "run.duckdb"
    cmd = [sys.executable, "-m", "core", "demo", "--db", str(db), "--rows", "2000", "--if-empty"]
    first = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    second = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert "already holds data" in second.stdout
    con = store.open_workspace(db)
    try:
        assert len(store.list_datasets(con)) == 1
    finally:
        con.close()
