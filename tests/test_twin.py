"""The synthetic twin and its fidelity and privacy report, on the demo plant and real files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import store
from core.detect.evaluation import label_points
from core.errors import DataError
from core.synth.demo import SENSORS, generate_plant, load_demo
from core.synth.fidelity import fidelity_report, window_distances
from core.synth.twin import (
    make_twin,
    twin_of_dataset,
    twin_pair,
    twin_source,
    twin_with_report,
)
from tests.test_fault_copy import normal_plant
from tests.test_ingest import _cli


@pytest.fixture(scope="module")
def demo():
    """The demo plant as shipped (3 pumps, 50,000 rows each) and its twin, made once."""
    plant = generate_plant()
    skip = label_points(plant.readings, plant.faults)[0]
    return plant, skip, make_twin(plant.readings, list(SENSORS), skip, seed=0)


@pytest.fixture(scope="module")
def report(demo):
    plant, skip, twin = demo
    return fidelity_report(plant.readings, twin, list(SENSORS), plant.faults, skip)


@pytest.fixture
def con(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    yield con
    con.close()


def test_the_twin_keeps_the_frame_and_the_stops_and_no_real_value(demo):
    plant, _, twin = demo
    real = plant.readings
    assert list(twin.columns) == list(real.columns)
    assert (twin["ts"].to_numpy() == real["ts"].to_numpy()).all()
    assert (twin["asset"].to_numpy() == real["asset"].to_numpy()).all()
    stopped = (real["speed_rpm"] == 0).to_numpy()
    assert stopped.any() and (twin.loc[stopped, "speed_rpm"] == 0).all(), "same stops"
    running = ~stopped
    for sensor in ("flow_m3h", "motor_temp_c", "ambient_temp_c"):
        same = np.isclose(twin.loc[running, sensor], real.loc[running, sensor], rtol=0, atol=1e-9)
        assert same.mean() < 0.001, f"{sensor}: the twin copies readings"
        lo, hi = real[sensor].min(), real[sensor].max()
        assert twin[sensor].between(lo, hi).all()


def test_the_demo_twin_passes_its_whole_report(report):
    """The thresholds (core.synth.fidelity): KS <= 0.1 per sensor (or the real data's own
    half-to-half KS), correlation change <= 0.1, autocorrelation change <= 0.1 up to an hour,
    train on twin / test on real F1 within 0.05 of train on real, <= 5% of twin windows nearer
    real ones than the closest 5% of real windows, no near copy."""
    failed = [(c.name, c.value) for c in report.checks if not c.passed]
    assert not failed and report.passed
    assert (report.sensors["ks"] <= report.sensors["ks_limit"]).all()
    assert report.f1_real > 0.85 and abs(report.f1_twin - report.f1_real) <= 0.05


def _roughness_at_the_bounds(values: np.ndarray) -> float:
    """Mean step in the outer deciles of a sensor's values over the mean step mid-range."""
    step, at = np.abs(np.diff(values)), values[1:]
    lo, q1, q3, hi = np.quantile(at, [0.1, 0.3, 0.7, 0.9])
    return step[(at < lo) | (at > hi)].mean() / step[(at > q1) & (at < q3)].mean()


def test_a_bounded_sensor_moves_slowly_near_its_bounds_in_the_twin_too():
    """A valve wandering between its stops (85 + 10 tanh of a slow wander, as in the demo)
    hardly moves near a stop. A Gaussian surrogate moved it as fast everywhere (ratio 0.95
    against the real 0.53), and a detector trained on that twin took the real valve's calm
    spells near its stops for a stuck sensor (the F1 gap of 0.09-0.17)."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(1)
    n, a = 20_000, np.exp(-1 / 480)
    wander = lfilter([1], [1, -a], rng.standard_normal(n) * np.sqrt(1 - a * a))
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-01", periods=n, freq="1min"),
            "asset": "V-1",
            "speed_rpm": 1480 + 1.5 * rng.standard_normal(n),
            "valve_position_pct": 85 + 10 * np.tanh(wander) + 0.2 * rng.standard_normal(n),
        }
    )
    real = _roughness_at_the_bounds(frame["valve_position_pct"].to_numpy())
    assert real < 0.6, "the real valve is calmer near its stops"
    for seed in range(3):
        twin = make_twin(frame, ["speed_rpm", "valve_position_pct"], seed=seed)
        ratio = _roughness_at_the_bounds(twin["valve_position_pct"].to_numpy())
        assert abs(np.log(ratio / real)) < np.log(1.6), (seed, ratio, real)


def test_the_privacy_check_catches_a_twin_that_copies_the_plant(demo):
    plant, skip, _ = demo
    real = plant.readings[plant.readings["asset"] == "P-101"].reset_index(drop=True)
    leaky = real.copy()
    rng = np.random.default_rng(0)
    for sensor in SENSORS:
        leaky[sensor] = leaky[sensor] + rng.normal(0, 1e-3 * real[sensor].std(), len(real))
    twin_d, real_d = window_distances(real, leaky, list(SENSORS))
    assert (twin_d < 0.5 * real_d.min()).mean() > 0.99, "every window is a near copy"
    honest_d, _ = window_distances(real, demo[2].iloc[: len(real)], list(SENSORS))
    assert (honest_d < 0.5 * real_d.min()).sum() == 0


def test_a_stored_twin_carries_ground_truth_only_when_asked(con):
    info = load_demo(con, seed=3, n_assets=2, rows_per_asset=3000)
    plain = twin_of_dataset(con, info.id, seed=1)
    assert plain.faults.empty and len(plain.truth) == len(store.read_ground_truth(con, info.id))
    carried = twin_of_dataset(con, info.id, seed=1, with_faults=True)
    truth = store.read_ground_truth(con, info.id)
    assert len(carried.faults) == len(truth)
    assert (carried.faults["asset"].to_numpy() == truth["asset"].to_numpy()).all()
    inside = label_points(carried.readings, carried.faults)[0]
    changed = ~np.isclose(
        carried.readings[info.sensors].to_numpy(), carried.clean[info.sensors].to_numpy()
    ).all(axis=1)
    assert changed.any() and not (changed & ~inside).any(), "faults only inside their windows"
    made, report = twin_with_report(con, info.id, seed=1)
    assert made.name == f"Twin of {info.name}" and not made.has_ground_truth
    assert "no real readings" in made.quality.notes[-1]
    assert len(report.checks) == 6


@pytest.mark.parametrize(
    ("make", "layout", "source_file"),
    [
        (
            lambda con: load_demo(con, seed=3, n_assets=1, rows_per_asset=2000),
            "demo",
            "demo:seed=3",
        ),
        (lambda con: normal_plant(con, n=1500), "wide", "pumps.csv"),
    ],
)
def test_a_stored_twin_records_what_it_is_and_where_it_came_from(con, make, layout, source_file):
    """Not "demo" (the twin of the demo plant is not the demo plant, nor a file): layout
    "twin", its source and seed in the source file, and a note saying which source (what it
    was) and which seed; the report finds the pair from either side."""
    info = make(con)
    made, _ = twin_with_report(con, info.id, seed=4)
    stored = store.get_dataset(con, made.id)
    assert (stored.layout, stored.source_file) == ("twin", f"twin:dataset={info.id}:seed=4")
    assert stored.quality.notes == [
        f"Synthetic twin of {info.name!r} (dataset {info.id}, {layout} layout, from "
        f"{source_file}; seed 4): no real readings."
    ]
    assert twin_source(stored) == (info.id, 4) and twin_source(info) is None
    for side in (info, stored):
        assert [d.id for d in twin_pair(con, side)] == [info.id, made.id]
    store.delete_dataset(con, info.id)
    assert twin_pair(con, stored) is None, "a twin whose source is gone has no pair"


def test_a_source_without_faults_is_graded_on_injected_ones(con):
    info = load_demo(con, seed=4, n_assets=1, rows_per_asset=4000)
    clean = store.read_readings(con, info)
    plain = pd.DataFrame(clean)
    twin = make_twin(plain, info.sensors, seed=2)
    empty = pd.DataFrame(columns=["asset", "start", "end"])
    report = fidelity_report(plain, twin, info.sensors, empty)
    assert 0 < report.f1_real <= 1 and 0 <= report.f1_twin <= 1


@pytest.mark.parametrize(
    ("rows", "share_faulty", "message"),
    [
        (400, 0.0, "has 400 rows; a twin needs at least 500"),
        (800, 0.6, "too few normal rows to learn from"),
    ],
)
def test_a_twin_of_too_little_data_is_refused(rows, share_faulty, message):
    frame = generate_plant(n_assets=1, rows_per_asset=800, faults_per_asset=0).readings
    frame = frame.iloc[:rows]
    exclude = np.arange(rows) < share_faulty * rows
    with pytest.raises(DataError, match=message):
        make_twin(frame, list(SENSORS), exclude)


def test_asking_for_faults_the_source_does_not_have_writes_nothing(con, tmp_path):
    info = load_demo(con, seed=3, n_assets=1, rows_per_asset=2000)
    copy = twin_of_dataset(con, info.id)
    twin_frame = copy.readings.assign(asset="P-101")
    from tests.label_data import store_frame

    plain = store_frame(con, twin_frame, name="no truth")
    before = [d.id for d in store.list_datasets(con)]
    with pytest.raises(DataError, match="has no ground truth for the twin to carry"):
        twin_with_report(con, plain.id, with_faults=True)
    assert [d.id for d in store.list_datasets(con)] == before


def test_cli_twin_writes_parquet_reports_and_exits_2_on_bad_requests(tmp_path):
    db = tmp_path / "ws.duckdb"
    con = store.open_workspace(db)
    load_demo(con, seed=5, n_assets=1, rows_per_asset=3000, name="plant")
    con.close()
    out = tmp_path / "twin.parquet"
    done = _cli("twin", "--dataset", "plant", "--out", str(out), "--store", "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "3,000 rows written" in done.stdout and "Twin 'Twin of plant' stored" in done.stdout
    twin = pd.read_parquet(out)
    assert len(twin) == 3000 and list(twin.columns[:2]) == ["ts", "asset"]
    checked = _cli("twin", "--dataset", "plant", "--out", str(out), "--report", "--db", str(db))
    assert checked.returncode in (0, 1), checked.stderr
    lines = [ln for ln in checked.stdout.splitlines() if ln.startswith(("pass", "FAIL"))]
    assert len(lines) == 6
    assert checked.returncode == (1 if any(ln.startswith("FAIL") for ln in lines) else 0)
    bad = [
        (["--dataset", "nope", "--out", str(out)], "error: There is no dataset 'nope'"),
        (["--dataset", "plant", "--out", str(tmp_path / "t.csv")], "error: The twin is written"),
        (["--dataset", "plant"], "error: Say where the twin goes"),
        (["--dataset", "plant", "--out", str(tmp_path / "no" / "t.parquet")], "error: Folder"),
    ]
    for args, start in bad:
        failed = _cli("twin", *args, "--db", str(db))
        assert failed.returncode == 2, failed.stderr
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(start), lines
    assert not (tmp_path / "t.csv").exists() and not (tmp_path / "no").exists()
    con = store.open_workspace(db)
    assert len(store.list_datasets(con)) == 2, "only the good --store run stored a twin"
    con.close()
