"""A deterministic synthetic plant of pumps with physically coupled sensors and labelled faults.

Real plants rarely come with labelled failures, so the demo gives every user data whose truth is
known: centrifugal pumps on variable-speed motors (affinity laws, pump and system curves, motor
current from hydraulic power, first-order thermal lags, daily ambient cycle), with setpoint
changes, machine stops, slow drifts and sensor noise, and faults from `core.synth.faults`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.detect.features import duration_seconds
from core.errors import ConfigError
from core.synth.faults import check_seed, inject_faults
from core.types import ASSET, TS, DatasetInfo, QualityReport

SENSORS = (
    "speed_rpm",
    "flow_m3h",
    "valve_position_pct",
    "suction_pressure_bar",
    "discharge_pressure_bar",
    "motor_current_a",
    "motor_temp_c",
    "bearing_temp_c",
    "vibration_rms_mm_s",
    "ambient_temp_c",
)
# Where each fault kind is most plausible on a pump; other kinds may hit any sensor.
DEMO_KIND_SENSORS = {
    "drift": ("bearing_temp_c", "motor_temp_c", "vibration_rms_mm_s", "suction_pressure_bar"),
    "coupling_break": ("flow_m3h", "motor_current_a", "discharge_pressure_bar"),
    "stuck": ("flow_m3h", "discharge_pressure_bar", "motor_temp_c", "bearing_temp_c"),
    "noise_burst": ("vibration_rms_mm_s", "flow_m3h", "motor_current_a", "discharge_pressure_bar"),
}
# Which way a drift goes on a pump: wear heats and shakes, a clogging strainer starves suction.
DEMO_DRIFT_DIRECTIONS = {
    "bearing_temp_c": 1,
    "motor_temp_c": 1,
    "vibration_rms_mm_s": 1,
    "suction_pressure_bar": -1,
}
MIN_ROWS = 500
_SPEED_LEVELS = np.array([0.7, 0.8, 0.9, 1.0])  # VFD setpoints, share of rated speed
_G = 9.81


@dataclass(frozen=True, eq=False)
class DemoPlant:
    """Readings (ts, asset, sensors...), injected faults, and when each machine was stopped."""

    readings: pd.DataFrame
    faults: pd.DataFrame
    machine_off: pd.DataFrame


@dataclass(frozen=True)
class _Pump:
    """Nameplate of one pump set, drawn per asset so the assets differ like real ones do."""

    rated_rpm: float
    q_bep: float  # m3/h at rated speed
    h0: float  # shut-off head at rated speed, m
    h_static: float  # m
    eta_max: float
    motor_rise: float  # K at rated current
    bearing_rise: float  # K at rated speed
    vib_rated: float  # mm/s at rated speed
    tau_motor: float  # s
    tau_bearing: float  # s


def _draw_pump(rng: np.random.Generator) -> _Pump:
    h0 = rng.uniform(40, 70)
    return _Pump(
        rated_rpm=float(rng.choice([1480.0, 2960.0])),
        q_bep=rng.uniform(150, 300),
        h0=h0,
        h_static=0.15 * h0,
        eta_max=rng.uniform(0.74, 0.82),
        motor_rise=rng.uniform(35, 50),
        bearing_rise=rng.uniform(15, 25),
        vib_rated=rng.uniform(2.0, 3.5),
        tau_motor=rng.uniform(30, 45) * 60,
        tau_bearing=rng.uniform(15, 25) * 60,
    )


def _slow(rng: np.random.Generator, n: int, tau_rows: float) -> np.ndarray:
    """Unit-variance AR(1) noise with time constant `tau_rows`: slow, realistic wander."""
    from scipy.signal import lfilter  # scipy.signal takes ~1.3 s to import: only when generating

    a = np.exp(-1.0 / max(tau_rows, 1.0))
    e = rng.standard_normal(n) * np.sqrt(1 - a * a)
    return lfilter([1.0], [1.0, -a], e, zi=[a * rng.standard_normal()])[0]


def _lag(x: np.ndarray, tau_rows: float) -> np.ndarray:
    """First-order lag (a thermal mass), starting in steady state."""
    from scipy.signal import lfilter, lfilter_zi

    a = np.exp(-1.0 / tau_rows)
    b, den = [1 - a], [1.0, -a]
    return lfilter(b, den, x, zi=lfilter_zi(b, den) * x[0])[0]


def _ramp(x: np.ndarray, rows: int) -> np.ndarray:
    """Linear ramps between steps (a moving average), exactly zero where x was zero long enough."""
    if rows <= 1:
        return x.copy()
    padded = np.concatenate([np.full(rows - 1, x[0]), x])
    return np.convolve(padded, np.ones(rows) / rows, mode="valid")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of every run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1, strict=True))


def _schedule(rng: np.random.Generator, n: int, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Speed command (share of rated) with setpoint steps hours apart and a few stops."""
    hold = rng.uniform(2 * 3600, 10 * 3600, size=int(n * dt / 7200) + 2) / dt
    steps = rng.integers(1, len(_SPEED_LEVELS), size=hold.size)
    levels = _SPEED_LEVELS[np.cumsum(steps) % len(_SPEED_LEVELS)]
    command = np.repeat(levels, np.maximum(1, hold.astype(int)))[:n]
    off = np.zeros(n, dtype=bool)
    n_off = max(1, round(n * dt / (9 * 86400)))
    width = n // n_off
    for k in range(n_off):
        length = min(int(rng.uniform(3600, 8 * 3600) / dt), n // (8 * n_off))
        lo = k * width + width // 10
        first = int(rng.integers(lo, max(lo + 1, (k + 1) * width - width // 10 - length)))
        off[first : first + length] = True
    command = np.where(off, 0.0, command)
    speed = _ramp(command, max(1, round(180 / dt)))
    return speed, speed == 0.0


def _hydraulics(pump: _Pump, n: np.ndarray, valve: np.ndarray) -> tuple[np.ndarray, ...]:
    """Operating point where the pump curve meets the valve-throttled system curve."""
    a = 0.2 * pump.h0 / pump.q_bep**2
    k_system = (0.8 * pump.h0 - pump.h_static) * 0.9**2 / pump.q_bep**2 / valve**2
    flow = np.sqrt(np.maximum(pump.h0 * n**2 - pump.h_static, 0.0) / (a + k_system))
    head = pump.h0 * n**2 - a * flow**2
    q_rel = flow / (pump.q_bep * np.maximum(n, 0.05))
    eta = np.clip(pump.eta_max * (1 - 0.8 * (q_rel - 1) ** 2), 0.2, pump.eta_max)
    power = 1000 * _G * flow / 3600 * head / eta  # shaft power, W
    return flow, head, power, q_rel


def _asset_frame(
    rng: np.random.Generator, ts: pd.DatetimeIndex, dt: float, name: str, ambient: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray]:
    """One pump set's sensors; returns the frame and the stopped mask."""
    n_rows = len(ts)
    pump = _draw_pump(rng)
    n, stopped = _schedule(rng, n_rows, dt)
    n = n * (1 + 0.002 * _slow(rng, n_rows, 7200 / dt))
    valve = 0.85 + 0.1 * np.tanh(_slow(rng, n_rows, 8 * 3600 / dt))
    flow, head, power, q_rel = _hydraulics(pump, n, valve)
    amps_per_watt = 1 / (np.sqrt(3) * 400 * 0.86 * 0.94)  # 400 V, power factor, motor efficiency
    i_load = _hydraulics(pump, np.ones(1), np.full(1, 0.9))[2][0] * amps_per_watt
    running = np.minimum(1.0, n / 0.1)
    current = 0.3 * i_load * running + power * amps_per_watt  # no-load current + load
    i_rated = 1.3 * i_load
    tank = 1.2 + 0.15 * _slow(rng, n_rows, 6 * 3600 / dt)
    suction = tank - 0.3 * (flow / pump.q_bep) ** 2
    amb = ambient + rng.uniform(-1.0, 1.0)
    motor = _lag(amb + pump.motor_rise * (current / i_rated) ** 2, pump.tau_motor / dt)
    bearing_in = amb + pump.bearing_rise * (0.3 * n + 0.7 * n**2) + 0.1 * (motor - amb)
    bearing = _lag(bearing_in, pump.tau_bearing / dt)
    vib = pump.vib_rated * n**2 * (1 + 0.35 * (q_rel - 1) ** 2) * running
    noise = rng.standard_normal((13, n_rows))
    flow_read = flow * (1 + 0.008 * noise[1]) + 0.3 * noise[2]
    sensors = {
        "speed_rpm": np.where(stopped, 0.0, n * pump.rated_rpm + 1.5 * noise[0]),
        "flow_m3h": np.where(flow_read < 0.01 * pump.q_bep, 0.0, flow_read),
        "valve_position_pct": 100 * valve + 0.2 * noise[3],
        "suction_pressure_bar": suction + 0.01 * noise[4],
        "discharge_pressure_bar": suction + head * _G / 100 + 0.015 * noise[5],
        "motor_current_a": np.maximum(0.0, current * (1 + 0.005 * noise[6]) + 0.2 * noise[7]),
        "motor_temp_c": motor + 0.1 * noise[8],
        "bearing_temp_c": bearing + 0.1 * noise[9],
        "vibration_rms_mm_s": np.abs(vib * (1 + 0.04 * noise[10]) + 0.02 * noise[11]),
        "ambient_temp_c": amb + 0.1 * noise[12],
    }
    frame = pd.DataFrame({TS: ts, ASSET: name, **{k: sensors[k] for k in SENSORS}})
    return frame, stopped


def _ambient(rng: np.random.Generator, ts: pd.DatetimeIndex, dt: float) -> np.ndarray:
    """Hall temperature: a daily cycle peaking mid-afternoon plus weather over days."""
    hours = (ts - ts.normalize()).total_seconds().to_numpy() / 3600
    daily = 5.0 * np.sin(2 * np.pi * (hours - 9) / 24)
    return 20.0 + daily + 2.5 * _slow(rng, len(ts), 2 * 86400 / dt)


def generate_plant(
    seed: int = 7,
    n_assets: int = 3,
    rows_per_asset: int = 50_000,
    interval: str = "1min",
    start: str = "2026-01-01",
    faults_per_asset: int = 6,
) -> DemoPlant:
    """A plant of `n_assets` pumps, identical for a given seed; `faults_per_asset=0` is clean.

    The clean signals depend only on the seed (and each asset only on its index), so the clean
    and the faulty plant of one seed differ exactly inside the injected fault windows.
    """
    if n_assets < 1:
        raise ConfigError(f"The 'n_assets' parameter must be >= 1. Got {n_assets} instead.")
    check_seed(seed)
    if rows_per_asset < MIN_ROWS:
        raise ConfigError(
            f"The 'rows_per_asset' parameter must be >= {MIN_ROWS}. Got {rows_per_asset} instead."
        )
    dt = duration_seconds(interval, "interval", "1min")
    ts = pd.date_range(start, periods=rows_per_asset, freq=pd.Timedelta(seconds=dt))
    root = np.random.SeedSequence(seed)
    plant_seq, fault_seq = root.spawn(2)
    ambient = _ambient(np.random.default_rng(plant_seq), ts, dt)
    frames, stops = [], []
    for i, child in enumerate(plant_seq.spawn(n_assets)):
        name = f"P-{101 + i}"
        frame, stopped = _asset_frame(np.random.default_rng(child), ts, dt, name, ambient)
        frames.append(frame)
        stops += [(name, ts[a], ts[b]) for a, b in _runs(stopped)]
    readings = pd.concat(frames, ignore_index=True)
    machine_off = pd.DataFrame(stops, columns=[ASSET, "start", "end"])
    # Keep faults off the stops, the coast-down before them and the warm-up after them.
    protect = machine_off.assign(
        start=machine_off["start"] - pd.Timedelta(minutes=10),
        end=machine_off["end"] + pd.Timedelta(minutes=90),
    )
    result = inject_faults(
        readings,
        n_faults=faults_per_asset,
        seed=int(fault_seq.generate_state(1)[0]),
        protect=protect,
        kind_sensors=DEMO_KIND_SENSORS,
        directions=DEMO_DRIFT_DIRECTIONS,
    )
    return DemoPlant(result.readings, result.faults, machine_off)


def frame_sha256(frame: pd.DataFrame) -> str:
    """Fingerprint of a readings frame: column names, timestamps, assets and sensor values."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    for column in frame.columns:
        values = frame[column]
        if column == TS:
            data = values.to_numpy(dtype="datetime64[ns]").view("int64").tobytes()
        elif pd.api.types.is_numeric_dtype(values):
            data = values.to_numpy(dtype="float64").tobytes()
        else:
            data = "\x1f".join(values.astype(str)).encode()
        digest.update(data)
    return digest.hexdigest()


def _quality_report(
    frame: pd.DataFrame, sensors: list[str], interval_seconds: float, notes: list[str]
) -> QualityReport:
    """What the quality page shows for the demo, measured on the frame rather than assumed."""
    steps = frame.groupby(ASSET, sort=False)[TS].diff().dt.total_seconds().dropna()
    gaps = steps[steps > 1.5 * interval_seconds]
    stats = frame[sensors].agg(["min", "max"])
    return QualityReport(
        n_rows=len(frame),
        n_duplicate_timestamps=int(frame.duplicated([ASSET, TS]).sum()),
        n_gaps=len(gaps),
        largest_gap_seconds=float(gaps.max()) if len(gaps) else None,
        n_non_monotonic=int((steps <= 0).sum()),
        constant_sensors=[s for s in sensors if stats.at["min", s] == stats.at["max", s]],
        nan_share={s: round(float(frame[s].isna().mean()), 6) for s in sensors},
        notes=notes,
    )


def load_demo(
    con: duckdb.DuckDBPyConnection,
    seed: int = 7,
    n_assets: int = 3,
    rows_per_asset: int = 50_000,
    name: str | None = None,
) -> DatasetInfo:
    """Generate the demo plant and store it with its ground truth, all or nothing."""
    plant = generate_plant(seed=seed, n_assets=n_assets, rows_per_asset=rows_per_asset)
    return store_plant(con, plant, (name or "").strip() or f"Demo plant (seed {seed})", seed)


def store_plant(
    con: duckdb.DuckDBPyConnection, plant: DemoPlant, name: str, seed: int, note: str = ""
) -> DatasetInfo:
    """Store a generated plant (readings, faults as ground truth) as a dataset, all or nothing."""
    frame, faults = plant.readings, plant.faults
    sensors = [c for c in frame.columns if c not in (TS, ASSET)]
    interval = (frame[TS].iloc[1] - frame[TS].iloc[0]).total_seconds()  # rows are asset-major
    dataset_id = store.next_dataset_id(con)
    kinds = ", ".join(sorted(faults["kind"].unique()))
    notes = [
        f"Synthetic plant (seed {seed}): {len(faults)} injected faults ({kinds}) stored as "
        f"ground truth; the pumps also stop {len(plant.machine_off)} times, which is normal."
        + (f" {note}" if note else "")
    ]
    info = DatasetInfo(
        id=dataset_id,
        name=name,
        table_name=store.readings_table_name(dataset_id),
        source_file=f"demo:seed={seed}",
        sha256=frame_sha256(frame),
        layout="demo",
        n_rows=len(frame),
        sensors=sensors,
        assets=sorted(frame[ASSET].unique().tolist()),
        time_start=frame[TS].min().to_pydatetime(),
        time_end=frame[TS].max().to_pydatetime(),
        interval_seconds=interval,
        loaded_at=datetime.now(),
        quality=_quality_report(frame, sensors, interval, notes),
        has_ground_truth=len(faults) > 0,
    )
    return store.with_unique_name(
        lambda: store.add_dataset_from_frame(
            con, replace(info, name=store.unique_dataset_name(con, name)), frame, faults
        )
    )
