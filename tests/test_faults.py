"""Fault injection on arbitrary frames: any units, any column names, with or without assets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError, DataError
from core.synth.faults import FAULT_COLUMNS, FAULT_KINDS, inject_faults, robust_spread
from core.types import DEFAULT_ASSET


def random_walk_frame(seed: int = 1, rows: int = 3000, units: tuple[str, ...] = ("A", "B")):
    """Two machines with sensors in very different units; `load` and `power` are coupled."""
    rng = np.random.default_rng(seed)
    parts = []
    for unit in units:
        load = 50 + np.cumsum(rng.normal(0, 0.5, rows))
        parts.append(
            pd.DataFrame(
                {
                    "time": pd.date_range("2025-03-01", periods=rows, freq="10s"),
                    "unit": unit,
                    "load": load,
                    "power": 3.0 * load + rng.normal(0, 0.5, rows),
                    "pressure_pa": 2e5 + np.cumsum(rng.normal(0, 300, rows)),
                    "ratio": 0.5 + 0.01 * np.cumsum(rng.normal(0, 0.05, rows)),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def window(frame, fault, asset_column="unit", ts_column="time"):
    """Boolean row mask of one fault's window, aligned with `frame`."""
    rows = (frame[ts_column] >= fault["start"]) & (frame[ts_column] <= fault["end"])
    if asset_column in frame.columns:
        rows &= frame[asset_column] == fault["asset"]
    return rows.to_numpy()


def windows(result, frame, asset_column="unit", ts_column="time"):
    """Boolean row mask of every fault window of `result`, aligned with `frame`."""
    mask = np.zeros(len(frame), dtype=bool)
    for fault in result.faults.to_dict("records"):
        mask |= window(frame, fault, asset_column, ts_column)
    return mask


def test_fault_kinds_cover_the_contract():
    assert set(FAULT_KINDS) >= {
        "spike",
        "drift",
        "level_shift",
        "stuck",
        "noise_burst",
        "coupling_break",
    }


def test_injects_every_kind_into_a_foreign_frame_and_only_inside_windows():
    frame = random_walk_frame()
    before = frame.copy()
    result = inject_faults(frame, n_faults=6, seed=3, asset_column="unit", ts_column="time")
    pd.testing.assert_frame_equal(frame, before)  # the input is never modified
    faults = result.faults
    assert list(faults.columns) == FAULT_COLUMNS
    assert sorted(faults["asset"].unique()) == ["A", "B"]
    assert (faults.groupby("asset").size() == 6).all()
    assert set(faults["kind"]) == set(FAULT_KINDS)
    sensors = ["load", "power", "pressure_pa", "ratio"]
    inside = windows(result, frame)
    pd.testing.assert_frame_equal(result.readings[~inside], frame[~inside])
    changed = (result.readings[sensors] != frame[sensors]).any(axis=1).to_numpy()
    assert changed[inside].sum() > 0.9 * inside.sum()
    for fault in faults.to_dict("records"):
        assert set(fault["sensors"]) <= set(sensors) and fault["sensors"]
        assert fault["start"] <= fault["end"]


def test_fault_sizes_follow_each_sensors_own_units():
    frame = random_walk_frame()
    scaled = frame.assign(pressure_pa=frame["pressure_pa"] * 1000.0)
    kwargs = dict(n_faults=6, seed=5, asset_column="unit", ts_column="time")
    plain, big = inject_faults(frame, **kwargs), inject_faults(scaled, **kwargs)
    same = ["asset", "start", "end", "kind", "sensors", "magnitude"]  # descriptions show units
    pd.testing.assert_frame_equal(plain.faults[same], big.faults[same])
    diff_plain = (plain.readings["pressure_pa"] - frame["pressure_pa"]).to_numpy()
    diff_big = (big.readings["pressure_pa"] - scaled["pressure_pa"]).to_numpy()
    assert np.abs(diff_plain).max() > 0
    np.testing.assert_allclose(diff_big, 1000.0 * diff_plain, rtol=1e-6, atol=1e-3)


def test_frame_without_asset_column_is_one_asset():
    frame = random_walk_frame(units=("A",)).drop(columns="unit")
    result = inject_faults(frame, n_faults=4, seed=0, ts_column="time")
    assert list(result.readings.columns) == list(frame.columns)
    assert (result.faults["asset"] == DEFAULT_ASSET).all()
    assert len(result.faults) == 4


def test_faults_do_not_overlap_and_keep_out_of_protected_rows():
    frame = random_walk_frame(rows=6000)
    protect = np.asarray(frame["time"] < pd.Timestamp("2025-03-01 08:00"))
    result = inject_faults(
        frame, n_faults=10, seed=2, asset_column="unit", ts_column="time", protect=protect
    )
    assert len(result.faults) == 20
    assert (result.faults["start"] >= pd.Timestamp("2025-03-01 08:00")).all()
    for _, group in result.faults.groupby("asset"):
        group = group.sort_values("start")
        assert (group["start"].iloc[1:].to_numpy() > group["end"].iloc[:-1].to_numpy()).all()


def test_protect_stretches_per_asset_and_time_zones():
    frame = random_walk_frame(rows=4000)
    frame["time"] = frame["time"].dt.tz_localize("Europe/Berlin")
    stretch = pd.DataFrame(
        {
            "unit": ["A"],
            "start": [pd.Timestamp("2025-02-28 00:00", tz="UTC")],
            "end": [pd.Timestamp("2025-03-01 09:00", tz="UTC")],
        }
    )
    result = inject_faults(
        frame, n_faults=6, seed=4, asset_column="unit", ts_column="time", protect=stretch
    )
    on_a = result.faults[result.faults["asset"] == "A"]
    assert len(on_a) == 6
    assert (on_a["start"] > pd.Timestamp("2025-03-01 09:00", tz="UTC")).all()
    on_b = result.faults[result.faults["asset"] == "B"]  # the stretch is A's only
    assert (on_b["start"] < pd.Timestamp("2025-03-01 09:00", tz="UTC")).any()
    assert str(result.faults["start"].dt.tz) == "Europe/Berlin"


def test_same_seed_same_faults_other_seed_other_faults():
    frame = random_walk_frame()
    kwargs = dict(asset_column="unit", ts_column="time")
    first, again = inject_faults(frame, seed=9, **kwargs), inject_faults(frame, seed=9, **kwargs)
    pd.testing.assert_frame_equal(first.readings, again.readings)
    pd.testing.assert_frame_equal(first.faults, again.faults)
    other = inject_faults(frame, seed=10, **kwargs)
    assert not first.faults["start"].equals(other.faults["start"])


def _spike(diff, dirty, clean, in_range):
    assert np.abs(diff).min() >= 3.5


def _drift(diff, dirty, clean, in_range):
    assert np.abs(diff[-1]) >= 1.4
    assert np.abs(diff[0]) < np.abs(diff[-1]) / 5  # starts small: a ramp, not a step


def _level_shift(diff, dirty, clean, in_range):
    assert np.ptp(diff) < 1e-9
    assert np.abs(diff).min() >= 0.9


def _stuck(diff, dirty, clean, in_range):
    assert np.ptp(dirty) == 0
    assert np.ptp(clean) > 0


def _noise_burst(diff, dirty, clean, in_range):
    assert np.std(diff) >= 0.25


def _coupling_break(diff, dirty, clean, in_range):
    assert np.abs(diff).max() >= 0.5
    assert in_range  # each value stays plausible; only the relationship breaks


_KIND_CHECKS = {
    "spike": _spike,
    "drift": _drift,
    "level_shift": _level_shift,
    "stuck": _stuck,
    "noise_burst": _noise_burst,
    "coupling_break": _coupling_break,
}


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_each_kind_changes_its_sensor_in_its_own_way(kind):
    frame = random_walk_frame(rows=4000)
    result = inject_faults(
        frame, kinds=[kind], n_faults=3, seed=1, asset_column="unit", ts_column="time"
    )
    assert len(result.faults) == 6
    assert set(result.faults["kind"]) == {kind}
    for fault in result.faults.to_dict("records"):
        (sensor,) = fault["sensors"]
        asset = frame.loc[frame["unit"] == fault["asset"], sensor]
        rows = window(frame, fault)
        clean = frame.loc[rows, sensor].to_numpy()
        dirty = result.readings.loc[rows, sensor].to_numpy()
        in_range = bool(asset.min() <= dirty.min() and dirty.max() <= asset.max())
        _KIND_CHECKS[kind]((dirty - clean) / robust_spread(asset), dirty, clean, in_range)


def test_stuck_holds_the_last_reading_before_the_fault():
    frame = random_walk_frame(units=("A",))
    result = inject_faults(
        frame, kinds=["stuck"], n_faults=2, seed=7, asset_column="unit", ts_column="time"
    )
    for fault in result.faults.to_dict("records"):
        (sensor,) = fault["sensors"]
        first = int(np.flatnonzero((frame["time"] == fault["start"]).to_numpy())[0])
        assert result.readings[sensor].iloc[first] == frame[sensor].iloc[first - 1]


def test_integer_sensors_become_float_and_no_faults_means_a_plain_copy():
    frame = random_walk_frame(units=("A",)).assign(count=lambda f: np.arange(len(f)) % 97)
    result = inject_faults(frame, n_faults=0, asset_column="unit", ts_column="time")
    assert result.faults.empty and list(result.faults.columns) == FAULT_COLUMNS
    assert result.readings["count"].dtype == np.float64
    np.testing.assert_array_equal(result.readings["count"], frame["count"])


def test_robust_spread_ignores_outliers_and_falls_back_when_mad_is_zero():
    rng = np.random.default_rng(0)
    values = rng.normal(10, 2, 20_000)
    values[:200] = 1e6  # 1 % wild outliers barely move it
    assert robust_spread(values) == pytest.approx(2, rel=0.05)
    assert robust_spread(np.array([1, 2, 3, 4, 5, 6, 100.0])) == pytest.approx(2 * 1.4826)  # MAD
    assert robust_spread(np.r_[np.zeros(60), np.ones(40)]) == pytest.approx(1 / 1.349)  # IQR
    assert robust_spread(np.full(10, 3.0)) == 0
    assert robust_spread(np.array([np.nan, np.nan])) == 0


def _independent_noise() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "time": pd.date_range("2025-01-01", periods=2000, freq="1min"),
            "x": rng.normal(size=2000),
            "y": rng.normal(size=2000),
        }
    )


@pytest.mark.parametrize(
    ("make_frame", "kwargs", "error", "message"),
    [
        (random_walk_frame, {"kinds": ["melt"]}, ConfigError, "Unknown fault kind 'melt'"),
        (random_walk_frame, {"kinds": []}, ConfigError, "at least one fault kind"),
        (random_walk_frame, {"n_faults": -1}, ConfigError, "'n_faults' parameter must be >= 0"),
        (random_walk_frame, {"sensors": ["nope"]}, DataError, "no sensor column 'nope'"),
        (random_walk_frame, {"sensors": ["unit"]}, DataError, "'unit' is not numeric"),
        (random_walk_frame, {"ts_column": "stamp"}, DataError, "no time column 'stamp'"),
        (random_walk_frame, {"n_faults": 400}, ConfigError, "Not enough normal rows"),
        (random_walk_frame, {"protect": np.ones(3)}, ConfigError, "has 3 values"),
        (
            random_walk_frame,
            {"protect": pd.DataFrame({"start": []})},
            ConfigError,
            "no 'end' column",
        ),
        (_independent_noise, {"kinds": ["coupling_break"]}, DataError, "no pair of sensors"),
    ],
)
def test_errors_name_the_bad_value(make_frame, kwargs, error, message):
    with pytest.raises(error, match=message):
        inject_faults(make_frame(), **({"asset_column": "unit", "ts_column": "time"} | kwargs))
