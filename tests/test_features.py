"""Features and machine state on a small toy plant with physically coupled sensors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.detect.features import ALL_FAMILIES, FeatureBuilder, FeatureConfig
from core.detect.machine_state import detect_machine_off, drive_sensors
from core.errors import ConfigError, DataError
from core.types import ASSET, TS

SENSORS = ["speed", "flow", "pressure", "current", "temp", "vibration"]


def toy_plant(n: int = 4000, seed: int = 0, start: str = "2026-01-01") -> pd.DataFrame:
    """A pump on a speed setpoint that steps every few hours; sensors follow it physically.

    Flow ~ speed, pressure ~ speed², current ~ speed³ (affinity laws), temperature lags the
    current, vibration ~ speed. One-minute samples.
    """
    rng = np.random.default_rng(seed)
    hold = rng.integers(150, 400, size=n // 150 + 2)
    levels = rng.choice([1000.0, 1200.0, 1450.0], size=len(hold))
    command = np.repeat(levels, hold)[:n]
    speed = np.convolve(np.r_[np.full(2, command[0]), command], np.ones(3) / 3, mode="valid")
    current = 5.0 + 1e-8 * speed**3
    temp = pd.Series(current).ewm(span=40, adjust=False).mean().to_numpy() + 20.0
    frame = pd.DataFrame(
        {
            TS: pd.date_range(start, periods=n, freq="1min"),
            "speed": speed + rng.normal(0, 2.0, n),
            "flow": 0.1 * speed + rng.normal(0, 0.5, n),
            "pressure": 2e-6 * speed**2 + rng.normal(0, 0.02, n),
            "current": current + rng.normal(0, 0.2, n),
            "temp": temp + rng.normal(0, 0.1, n),
            "vibration": 1e-3 * speed * (1 + rng.normal(0, 0.05, n)),
        }
    )
    return frame


@pytest.fixture(scope="module")
def plant() -> pd.DataFrame:
    return toy_plant()


@pytest.fixture(scope="module")
def builder(plant: pd.DataFrame) -> FeatureBuilder:
    return FeatureBuilder().fit(plant.iloc[:2000])


def test_features_are_row_aligned_and_mapped_to_sensors(
    plant: pd.DataFrame, builder: FeatureBuilder
) -> None:
    data = plant.iloc[2000:]
    fs = builder.transform(data)
    assert len(fs.values) == len(data)
    assert fs.values.index.equals(data.index)
    assert fs.values.dtypes.eq(np.float32).all()
    assert np.isfinite(fs.values.to_numpy()).all()
    assert set(fs.sensor_of) == set(fs.values.columns)
    assert set(fs.sensor_of.values()) == set(SENSORS)  # every sensor has features
    assert fs.sensor_of["flow__resid"] == "flow"


def test_row_order_does_not_change_a_row_s_features(
    plant: pd.DataFrame, builder: FeatureBuilder
) -> None:
    data = plant.iloc[2000:2600]
    shuffled = data.sample(frac=1.0, random_state=3)
    expected = builder.transform(data).values
    got = builder.transform(shuffled).values
    pd.testing.assert_frame_equal(got.loc[expected.index], expected)


def test_assets_are_featurised_separately(plant: pd.DataFrame, builder: FeatureBuilder) -> None:
    a = plant.iloc[2000:2500].assign(**{ASSET: "A"})
    b = plant.iloc[2500:3000].assign(**{ASSET: "B", TS: a[TS].to_numpy()})  # same times
    both = pd.concat([b, a])
    alone = builder.transform(b).values
    together = builder.transform(both).values
    pd.testing.assert_frame_equal(together.loc[alone.index], alone)


@pytest.mark.parametrize(
    ("window", "interval", "samples"),
    [("15min", 60, 15), ("15min", 300, 5), ("15min", 1, 60), ("1h", 60, 60)],
)
def test_windows_are_samples_derived_from_the_interval(
    window: str, interval: float, samples: int
) -> None:
    assert FeatureConfig(window=window).window_samples(interval) == samples


def test_interval_is_inferred_from_timestamps(builder: FeatureBuilder) -> None:
    assert builder.interval_seconds_ == 60.0
    assert builder.window_ == 15


def test_every_family_builds(plant: pd.DataFrame) -> None:
    config = FeatureConfig(families=ALL_FAMILIES, fft_sensors=("vibration",), fft_window=16)
    fs = FeatureBuilder(config).fit(plant.iloc[:1000]).transform(plant.iloc[1000:1300])
    kinds = {name.split("__", 1)[1] for name in fs.values.columns}
    expected = {"raw", "mean", "std", "min", "max", "slope", "diff", "rough", "resid"}
    assert expected | {"resid_mean", "fft0", "fft1", "fft2"} <= kinds
    assert {fs.sensor_of[f"vibration__fft{b}"] for b in range(3)} == {"vibration"}


def test_residual_reacts_to_a_coupling_break_while_raw_values_stay_in_range(
    plant: pd.DataFrame, builder: FeatureBuilder
) -> None:
    data = plant.iloc[2000:].copy()
    typical_speed = plant["speed"].iloc[:2000].median()
    away = data.index[(data["speed"] - typical_speed).abs() > 150][:80]
    assert len(away) == 80  # flow should be 15+ m3/h off its median here...
    data.loc[away, "flow"] = plant["flow"].iloc[:2000].median()  # ...it reads a normal value
    fs = builder.transform(data).values
    inside = fs.loc[away]
    outside = fs.drop(index=away)
    assert inside["flow__raw"].abs().max() < 3  # every reading is in its normal range
    assert inside["flow__resid"].abs().median() > 8  # but the coupling says otherwise
    assert outside["flow__resid"].abs().quantile(0.99) < 5


def test_bad_configuration_and_input() -> None:
    with pytest.raises(ConfigError, match="Unknown feature families"):
        FeatureConfig(families=("raw", "wavelets"))
    with pytest.raises(ConfigError, match="power of two"):
        FeatureConfig(fft_window=30)
    with pytest.raises(ConfigError, match="not a duration"):
        FeatureConfig(window="soon")
    fb = FeatureBuilder().fit(toy_plant(n=300))
    with pytest.raises(DataError, match="Missing sensor columns: temp"):
        fb.transform(toy_plant(n=50).drop(columns=["temp"]))


def test_single_sensor_gets_no_residuals() -> None:
    frame = toy_plant(n=500)[[TS, "temp"]]
    fs = FeatureBuilder().fit(frame).transform(frame)
    assert set(fs.values.columns) == {"temp__raw", "temp__rough"}


# -- machine state -----------------------------------------------------------------------------
def _with_stop(frame: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    stopped = frame.copy()
    for name in ("speed", "flow", "current", "vibration"):
        stopped.loc[first:last, name] = 0.0
    stopped.loc[first:last, "pressure"] = 0.01
    return stopped


def test_machine_off_is_found_from_drive_sensors() -> None:
    frame = _with_stop(toy_plant(n=1500), 600, 799)
    # pressure falls to 0.01 bar, near zero next to its running level: a drive signal too
    expected_drives = {"speed", "flow", "current", "vibration", "pressure"}
    assert set(drive_sensors(frame, SENSORS)) == expected_drives
    off = detect_machine_off(frame, SENSORS)
    expected = np.zeros(len(frame), dtype=bool)
    expected[600:800] = True
    np.testing.assert_array_equal(off, expected)


def test_a_short_dropout_or_one_sensor_at_zero_is_not_a_stop() -> None:
    frame = _with_stop(toy_plant(n=1500), 600, 799)
    frame.loc[1000:1001, ["speed", "flow", "current", "vibration"]] = 0.0  # 2 samples
    frame.loc[1200:1300, "flow"] = 0.0  # a flow sensor failing alone
    off = detect_machine_off(frame, SENSORS, min_points=5)
    assert off[600:800].all()
    assert not off[1000:1002].any()
    assert not off[1200:1301].any()


def test_one_unnamed_sensor_dropping_to_zero_is_not_a_stop() -> None:
    rng = np.random.default_rng(1)
    value = 80 + rng.normal(0, 3, 2000)
    value[900:1000] = 1.0  # NAB-like: a temperature collapsing is a fault, not a stop
    frame = pd.DataFrame({TS: pd.date_range("2026-01-01", periods=2000, freq="5min"), "v": value})
    assert not detect_machine_off(frame, ["v"]).any()


def test_machine_off_uses_a_reference_and_respects_assets() -> None:
    reference = _with_stop(toy_plant(n=1500), 600, 799)
    later = toy_plant(n=400, seed=2)
    later = _with_stop(later, 100, 199).assign(**{ASSET: "A"})
    other = toy_plant(n=400, seed=3).assign(**{ASSET: "B"})
    frame = pd.concat([later, other], ignore_index=True)
    off = detect_machine_off(frame, SENSORS, reference=reference)
    assert off[100:200].all() and off.sum() == 100


def test_reconstruction_attribution_names_the_faulty_sensor(
    plant: pd.DataFrame, builder: FeatureBuilder
) -> None:
    data = plant.iloc[2500:2560].copy()
    data["pressure"] += 0.4  # pressure reads high; the sensors it is predicted from are fine
    fs = builder.transform(data).values
    resid_z = fs[[f"{s}__resid" for s in SENSORS]].to_numpy()
    contribution = builder.residual_attribution(data[SENSORS].to_numpy(), resid_z)
    assert contribution.shape == (len(data), len(SENSORS))
    assert (contribution.argmax(axis=1) == SENSORS.index("pressure")).all()


def test_unnamed_sensors_at_zero_after_a_stopless_reference_are_a_fault_not_a_stop() -> None:
    """Training never stopped and names no drive: zeros in new data must alarm, not be hidden."""
    rng = np.random.default_rng(4)
    ts = pd.date_range("2026-01-01", periods=1200, freq="3min")
    values = 50 + rng.normal(0, 1, (1200, 3))
    frame = pd.DataFrame({TS: ts, "xmv_1": values[:, 0], "xmv_2": values[:, 1], "x": values[:, 2]})
    later = frame.copy()
    later.loc[600:900, ["xmv_1", "xmv_2"]] = 0.0  # two valves closing together
    later.loc[200:400, ["xmv_1", "xmv_2"]] = 0.3
    assert not detect_machine_off(later, ["xmv_1", "xmv_2", "x"], reference=frame).any()


def test_residual_squares_stay_inside_the_training_range() -> None:
    """A parabola fitted on a day of operating points must not explode past them: the squares a
    residual model sees are those of values held inside the training range."""
    plant = toy_plant(n=3 * 1440)
    fitted = FeatureBuilder().fit(plant.iloc[:1440])
    later = plant.iloc[1440:].copy()
    later["speed"] *= 3.0  # far beyond anything training saw
    z = fitted._scaled(later[fitted.sensors_].to_numpy(dtype=float))
    p = len(SENSORS)
    squares = fitted._design(z)[:, p : 2 * p]
    bound = np.maximum(fitted.square_lo_**2, fitted.square_hi_**2)
    assert z[:, 0].max() > 2 * fitted.square_hi_[0]
    assert (squares <= bound + 1e-9).all()
    assert np.isfinite(fitted.transform(later).values.to_numpy()).all()
    legacy = FeatureBuilder().fit(plant.iloc[:1440])
    del legacy.square_lo_  # a model saved before the clip squares inside +-20
    assert legacy._design(z)[:, p : 2 * p].max() > bound.max()


def test_lasting_widening_from_drift_is_scaled_back_while_a_fault_still_stands_out() -> None:
    """Drift moves a residual model's operating point (its squares), so re-centring alone
    leaves residuals many times wider than training for days: the rows alarm by the thousand.
    Widening that lasts over half the re-centring window is scaled back; a three-hour fault
    on top of it is still many times the drifted rows' size."""
    n = 12 * 1440
    plant = toy_plant(n=n, seed=3)
    ramp = np.clip((np.arange(n) - 1440) / (n - 1440), 0, 1)
    aged = plant.copy()
    aged["current"] += ramp * 3 * plant["current"].iloc[:1440].std()
    aged["speed"] += ramp * 150
    aged.loc[n - 300 : n - 120, "current"] += 4 * plant["current"].iloc[:1440].std()
    late, fault = slice(n - 2 * 1440, n - 400), slice(n - 280, n - 130)
    sizes = {}
    for rescale in (True, False):
        fitted = FeatureBuilder(FeatureConfig(rescale=rescale)).fit(aged.iloc[:1440])
        resid = fitted.transform(aged).values.abs()
        sizes[rescale] = resid.iloc[late].median(), resid["current__resid"].iloc[fault].median()
    normal, at_fault = sizes[True]
    assert sizes[False][0].max() > 8  # the flood without the scale
    assert normal.filter(like="__resid").max() < min(5.0, 0.5 * sizes[False][0].max())
    assert at_fault > 5 * normal["current__resid"]
