"""Training coverage: later data outside the training window's ranges is named, per asset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import store
from core.detect import RunConfig, coverage_warning, execute_run, run_coverage
from core.detect.coverage import asset_coverage
from tests.apptest import open_app, shown
from tests.label_data import T0, store_frame


def _pump(n: int, later_speed: float, seed: int = 0, asset: str = "P-1") -> pd.DataFrame:
    """Speed, flow and temperature a minute apart; from row n // 2 on the speed setpoint is
    ``later_speed`` (flow follows it, temperature does not care)."""
    rng = np.random.default_rng(seed)
    speed = np.where(np.arange(n) < n // 2, 1000.0, later_speed) + rng.normal(0, 2, n)
    return pd.DataFrame(
        {
            "ts": pd.date_range(T0, periods=n, freq="1min"),
            "asset": asset,
            "speed": speed,
            "flow": 0.1 * speed + rng.normal(0, 0.5, n),
            "temp": 40 + rng.normal(0, 0.3, n),
        }
    )


def test_a_setpoint_the_window_never_saw_is_named():
    frame = _pump(2000, later_speed=700.0)
    train = np.arange(2000) < 600
    flags = np.arange(2000) >= 1500  # the run flagged the second half of the new setpoint
    found = asset_coverage("P-1", frame, train, np.zeros(2000, bool), flags)
    assert found.outside == pytest.approx(1000 / 1400, abs=0.01)
    assert found.flagged == pytest.approx(0.5, abs=0.01)
    assert found.sensors[:2] == ["speed", "flow"] and "temp" not in found.sensors
    message = coverage_warning([found])
    assert "P-1: 71% of its later rows (speed, flow), 50% of them flagged" in message
    assert "train on a longer window" in message


def test_covered_data_and_stopped_rows_raise_no_warning():
    frame = _pump(2000, later_speed=1000.0)
    off = np.zeros(2000, bool)
    frame.loc[1200:1300, ["speed", "flow"]] = 0.0  # a stop: not an operating point to cover
    off[1200:1301] = True
    found = asset_coverage("P-1", frame, np.arange(2000) < 600, off, np.zeros(2000, bool))
    assert found.outside < 0.02 and coverage_warning([found]) is None


def test_a_run_and_the_detect_page_say_it(tmp_path, monkeypatch):
    path = tmp_path / "w.duckdb"
    con = store.open_workspace(path)
    frame = pd.concat([_pump(3000, 700.0, asset="P-1"), _pump(3000, 1000.0, 1, asset="P-2")])
    info = store_frame(con, frame.reset_index(drop=True), "pumps")
    run = execute_run(con, RunConfig(info.id))  # trains on the first 30%: one setpoint
    items = {c.asset: c for c in run_coverage(con, run.id)}
    assert items["P-1"].outside > 0.6 and items["P-2"].outside < 0.05
    con.close()
    monkeypatch.setenv("VIGIL_DB", str(path))
    at = open_app("pages/detect.py")
    assert not at.exception
    [warning] = [shown(w) for w in at.warning if "did not cover" in shown(w)]
    assert "P-1: " in warning and "P-2" not in warning


def test_score_warns_when_the_training_file_misses_the_data_setpoint(tmp_path):
    import subprocess
    import sys

    frame = _pump(3000, 700.0).drop(columns="asset").rename(columns={"ts": "timestamp"})
    frame.iloc[:1000].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[1000:].to_csv(tmp_path / "data.csv", index=False)
    frame.iloc[1000:1500].to_csv(tmp_path / "same.csv", index=False)  # still the old setpoint
    for data, warned in (("data.csv", True), ("same.csv", False)):
        done = subprocess.run(
            [sys.executable, "-m", "core", "score", "--train", str(tmp_path / "train.csv"),
             "--data", str(tmp_path / data), "--out", str(tmp_path / "out.csv")],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert ("warning: The training window did not cover" in done.stderr) is warned
        if warned:
            assert "main: 75% of its later rows (speed, flow)" in done.stderr


def test_a_new_operating_mode_is_named_in_the_warning():
    """Speed and the flow that follows it beyond training together: a new operating mode."""
    frame = _pump(2000, later_speed=700.0)
    train = np.arange(2000) < 600
    found = asset_coverage("P-1", frame, train, np.zeros(2000, bool), np.zeros(2000, bool))
    assert found.new_mode == pytest.approx(1000 / 1400, abs=0.01)
    assert "71% in a new operating mode" in coverage_warning([found])
    assert "10 times the alarm line" in coverage_warning([found])
    frame["flow"] = 100 + np.random.default_rng(1).normal(0, 0.5, 2000)  # flow does not follow
    alone = asset_coverage("P-1", frame, train, np.zeros(2000, bool), train)
    assert alone.outside > 0.6 and alone.new_mode == 0.0  # the speed reading alone: a fault
    assert "new operating mode" not in coverage_warning([alone])
