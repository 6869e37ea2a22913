"""Inject labelled faults into any wide frame of readings (the demo plant or a user's normal data).

Labelled failures are rare in industry, so Vigil makes its own: realistic faults with exact ground
truth, sized in each sensor's own robust spread so they work on any units. Faults never overlap,
keep a margin from each other and from `protect` stretches (e.g. machine-off periods), and record
the sensors they change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError
from core.types import ASSET, DEFAULT_ASSET, TS


def check_seed(seed: int) -> None:
    """A random seed numpy accepts (non-negative), refused in words otherwise."""
    if seed < 0:
        raise ConfigError(f"The 'seed' parameter must be >= 0. Got {seed} instead.")


FAULT_KINDS = ("spike", "drift", "level_shift", "stuck", "noise_burst", "coupling_break")
"""Every kind `inject_faults` knows."""
FAULT_COLUMNS = ["asset", "start", "end", "kind", "sensors", "magnitude", "description"]

# Duration range in minutes (spike: in samples, a spike is short whatever the sampling rate).
_DURATION = {
    "spike": (1, 3),
    "drift": (120, 360),
    "level_shift": (30, 180),
    "stuck": (30, 180),
    "noise_burst": (10, 60),
    "coupling_break": (30, 180),
}
# Size range in robust spreads: big enough to find, small enough that a per-sensor limit misses
# some (a stuck sensor has no size: it holds its last reading).
_SIZE = {
    "spike": (4.0, 7.0),
    "drift": (1.5, 2.5),
    "level_shift": (1.0, 2.0),
    "noise_burst": (0.4, 0.8),
    "coupling_break": (1.0, 2.0),
}
_MIN_PARTNER_CORR = 0.6
_CANDIDATES = 16


@dataclass(frozen=True, eq=False)
class InjectionResult:
    """A faulty copy of the readings and the ground truth of what was injected where."""

    readings: pd.DataFrame
    faults: pd.DataFrame


@dataclass(eq=False)
class _Asset:
    """One asset's time-ordered view of the frame while faults are being placed."""

    name: str
    ts: np.ndarray
    dt: float
    data: dict[str, np.ndarray]
    free: np.ndarray
    margin: int
    spread: dict[str, float] = field(default_factory=dict)
    stamps: pd.api.extensions.ExtensionArray | None = None  # timestamps as given (time zone kept)
    directions: dict[str, int] = field(default_factory=dict)
    corr: pd.DataFrame | None = None


def robust_spread(values: np.ndarray) -> float:
    """Scale of a sensor that outliers and operating modes barely move: MAD, else IQR, else std."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0
    med = np.median(v)
    mad = 1.4826 * float(np.median(np.abs(v - med)))
    if mad > 0:
        return mad
    q25, q75 = np.percentile(v, [25, 75])
    iqr = float(q75 - q25) / 1.349
    return iqr if iqr > 0 else float(np.std(v))


def inject_faults(
    frame: pd.DataFrame,
    sensors: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    n_faults: int = 6,
    seed: int = 0,
    asset_column: str = ASSET,
    ts_column: str = TS,
    protect: pd.DataFrame | np.ndarray | pd.Series | None = None,
    *,
    kind_sensors: Mapping[str, Sequence[str]] | None = None,
    directions: Mapping[str, int] | None = None,
    margin: str = "30min",
) -> InjectionResult:
    """Inject `n_faults` faults per asset into a copy of `frame`.

    Parameters
    ----------
    frame : wide readings, one row per (asset, time); without `asset_column` it is one asset.
    sensors : numeric columns that may be faulted (default: every numeric column).
    kinds : fault kinds to draw from (default: `FAULT_KINDS`); they are cycled so that every kind
        appears once the plant has as many faults as there are kinds.
    n_faults : faults per asset.
    seed : everything is deterministic per seed.
    protect : stretches never touched: a frame with `start`, `end` (and optionally the asset
        column), or a boolean mask aligned with `frame`.
    kind_sensors : preferred sensors per kind (e.g. drift on temperatures), within `sensors`.
    directions : +1 or -1 per sensor where physics fixes the way a drift goes (a worn bearing
        heats up, a clogging strainer lowers suction); other drifts go up four times in five.
    margin : quiet time kept between faults and around protected stretches.

    Returns
    -------
    InjectionResult whose `faults` has one row per fault: asset, start and end (timestamps of the
    first and last faulty sample), kind, sensors changed, magnitude (signed size in robust
    spreads of the sensor; for stuck, the mean deviation from the true signal) and a description.
    """
    kinds = _check_kinds(kinds)
    if n_faults < 0:
        raise ConfigError(f"The 'n_faults' parameter must be >= 0. Got {n_faults} instead.")
    names = _check_sensors(frame, sensors, asset_column, ts_column)
    out = frame.copy()
    for name in names:
        out[name] = out[name].astype("float64")
    if n_faults == 0 or frame.empty:
        return InjectionResult(out, pd.DataFrame(columns=FAULT_COLUMNS))
    rng = np.random.default_rng(seed)
    stamps = _timestamps(frame, ts_column)
    ts = _axis(stamps, stamps.dt.tz)
    values = {n: out[n].to_numpy(dtype=float, copy=True) for n in names}
    stretches = _normalise_protect(protect, len(frame), stamps.dt.tz)
    cycle = [str(k) for k in rng.permutation(kinds)]
    records: list[dict] = []
    for i, (asset_name, rows) in enumerate(_asset_rows(frame, asset_column, ts)):
        free = ~_protected(stretches, rows, ts[rows], asset_name, asset_column)
        asset = _make_asset(values, asset_name, rows, ts[rows], free, margin, n_faults)
        asset.stamps = stamps.array[rows]
        asset.directions = dict(directions or {})
        for k in range(n_faults):
            kind = cycle[(i * n_faults + k) % len(cycle)]
            records.append(_inject_one(asset, kind, kinds, names, kind_sensors, rng))
        for name in names:
            values[name][rows] = asset.data[name]
    for name in names:
        out[name] = values[name]
    faults = pd.DataFrame.from_records(records, columns=FAULT_COLUMNS)
    return InjectionResult(out, faults.sort_values(["asset", "start"], ignore_index=True))


def _check_kinds(kinds: Sequence[str] | None) -> list[str]:
    chosen = list(FAULT_KINDS if kinds is None else kinds)
    for kind in chosen:
        if kind not in FAULT_KINDS:
            raise ConfigError(f"Unknown fault kind {kind!r}; choose from {', '.join(FAULT_KINDS)}.")
    if not chosen:
        raise ConfigError("Choose at least one fault kind.")
    return chosen


def _check_sensors(
    frame: pd.DataFrame, sensors: Sequence[str] | None, asset_column: str, ts_column: str
) -> list[str]:
    if ts_column not in frame.columns:
        raise DataError(f"The frame has no time column {ts_column!r}.")
    if sensors is None:
        skip = {asset_column, ts_column}
        names = [
            c
            for c in frame.columns
            if c not in skip
            and pd.api.types.is_numeric_dtype(frame[c])
            and not pd.api.types.is_bool_dtype(frame[c])
        ]
    else:
        names = list(sensors)
    for name in names:
        if name not in frame.columns:
            raise DataError(f"The frame has no sensor column {name!r}.")
        if not pd.api.types.is_numeric_dtype(frame[name]):
            raise DataError(f"Sensor column {name!r} is not numeric; faults need numbers.")
    if not names:
        raise DataError("The frame has no numeric sensor column to inject faults into.")
    return names


def _timestamps(frame: pd.DataFrame, ts_column: str) -> pd.Series:
    try:
        ts = pd.to_datetime(frame[ts_column])
    except (ValueError, TypeError) as exc:
        raise DataError(f"Column {ts_column!r} does not hold timestamps: {exc}") from exc
    if ts.isna().any():
        raise DataError(f"Column {ts_column!r} has empty timestamps.")
    return ts


def _axis(values: pd.Series, tz: object) -> np.ndarray:
    """Timestamps as naive UTC nanoseconds, so frames and protect tables compare in any zone."""
    ts = pd.to_datetime(values)
    if ts.dt.tz is None and tz is not None:
        ts = ts.dt.tz_localize(tz)
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.to_numpy(dtype="datetime64[ns]")


def _asset_rows(
    frame: pd.DataFrame, asset_column: str, ts: np.ndarray
) -> list[tuple[str, np.ndarray]]:
    """Row positions of each asset, in time order."""
    if asset_column not in frame.columns:
        return [(DEFAULT_ASSET, np.argsort(ts, kind="stable"))]
    codes, uniques = pd.factorize(frame[asset_column].astype(str), sort=True)
    groups = []
    for k, name in enumerate(uniques):
        rows = np.flatnonzero(codes == k)
        groups.append((str(name), rows[np.argsort(ts[rows], kind="stable")]))
    return groups


def _make_asset(
    values: dict[str, np.ndarray],
    name: str,
    rows: np.ndarray,
    times: np.ndarray,
    free: np.ndarray,
    margin: str,
    n_faults: int,
) -> _Asset:
    """The asset's time-ordered data; the margin shrinks when the series is short."""
    steps = np.diff(times).astype("int64") / 1e9
    dt = float(np.median(steps)) if steps.size else 60.0
    if not dt > 0:
        raise DataError(f"Asset {name!r} has duplicate timestamps; cannot place faults.")
    gap = min(_rows(pd.Timedelta(margin), dt), int(free.sum()) // (8 * n_faults))
    data = {n: v[rows] for n, v in values.items()}
    asset = _Asset(name, times, dt, data, free, gap)
    asset.spread = {n: robust_spread(v[free]) for n, v in data.items()}
    return asset


def _normalise_protect(
    protect: pd.DataFrame | np.ndarray | pd.Series | None, n_rows: int, tz: object
) -> np.ndarray | pd.DataFrame | None:
    """Check `protect` once: a boolean row mask, or stretches on the frame's time axis."""
    if protect is None:
        return None
    if not isinstance(protect, pd.DataFrame):
        flags = np.asarray(protect, dtype=bool)
        if flags.shape != (n_rows,):
            raise ConfigError(f"The protect mask has {flags.size} values for {n_rows} rows.")
        return flags
    missing = sorted({"start", "end"} - set(protect.columns))
    if missing:
        raise ConfigError(
            f"The protect table has no {missing[0]!r} column; it needs 'start' and 'end'."
        )
    return protect.assign(start=_axis(protect["start"], tz), end=_axis(protect["end"], tz))


def _protected(
    protect: np.ndarray | pd.DataFrame | None,
    rows: np.ndarray,
    times: np.ndarray,
    asset_name: str,
    asset_column: str,
) -> np.ndarray:
    """Which of the asset's (time-ordered) rows must never be faulted."""
    if protect is None:
        return np.zeros(len(rows), dtype=bool)
    if isinstance(protect, np.ndarray):
        return protect[rows]
    mask = np.zeros(len(rows), dtype=bool)
    if asset_column in protect.columns:
        protect = protect[protect[asset_column].astype(str) == asset_name]
    firsts = np.searchsorted(times, protect["start"].to_numpy(dtype="datetime64[ns]"))
    lasts = np.searchsorted(times, protect["end"].to_numpy(dtype="datetime64[ns]"), "right")
    for lo, hi in zip(firsts, lasts, strict=True):
        mask[lo:hi] = True
    return mask


def _rows(duration: pd.Timedelta, dt: float) -> int:
    return max(1, round(duration.total_seconds() / dt))


def _inject_one(
    asset: _Asset,
    kind: str,
    kinds: list[str],
    names: list[str],
    kind_sensors: Mapping[str, Sequence[str]] | None,
    rng: np.random.Generator,
) -> dict:
    """Place and apply one fault; coupling_break falls back to another kind without a pair."""
    usable = [n for n in names if asset.spread[n] > 0]
    if not usable:
        raise DataError(f"Every sensor of asset {asset.name!r} is constant; nothing to fault.")
    preferred = [n for n in (kind_sensors or {}).get(kind, ()) if n in usable]
    candidates = preferred or usable
    if kind == "coupling_break":
        record = _coupling_break(asset, candidates, usable, rng)
        if record is not None:
            return record
        others = [k for k in kinds if k != "coupling_break"]
        if not others:
            raise DataError(
                f"Asset {asset.name!r} has no pair of sensors correlated above "
                f"{_MIN_PARTNER_CORR}, so a coupling break cannot be injected."
            )
        kind = str(rng.choice(others))
        preferred = [n for n in (kind_sensors or {}).get(kind, ()) if n in usable]
        candidates = preferred or usable
    sensor = str(rng.choice(candidates))
    return _APPLY[kind](asset, sensor, rng)


def _duration(asset: _Asset, kind: str, rng: np.random.Generator) -> int:
    """Rows of a fault: drawn from the kind's range, shrunk if the series is short."""
    lo, hi = _DURATION[kind]
    if kind == "spike":
        return int(rng.integers(lo, hi + 1))
    minutes = rng.uniform(lo, hi)
    cap = max(2, int(asset.free.sum()) // 40)
    return int(min(_rows(pd.Timedelta(minutes=minutes), asset.dt), cap))


def _place(
    asset: _Asset,
    length: int,
    rng: np.random.Generator,
    score: Callable[[int], float] | None = None,
) -> int:
    """A start whose window (plus margin) is all free; the best-scoring of a few if asked."""
    m = asset.margin
    padded = np.concatenate([np.zeros(m, bool), asset.free, np.zeros(m, bool)])
    cs = np.concatenate([[0], np.cumsum(padded)])
    width = length + 2 * m
    starts = np.flatnonzero(cs[width:] - cs[:-width] == width)
    starts = starts[starts >= 1]  # keep one sample before the fault (a stuck sensor holds it)
    if starts.size == 0:
        raise ConfigError(
            f"Not enough normal rows in asset {asset.name!r} to place another fault of "
            f"{length} rows; ask for fewer faults or give more rows."
        )
    picks = rng.choice(starts, size=min(_CANDIDATES, starts.size), replace=False)
    start = int(picks[0]) if score is None else int(max(picks, key=score))
    asset.free[max(0, start - m) : start + length + m] = False
    return start


def _record(
    asset: _Asset, kind: str, sensors: list[str], a: int, n: int, size: float, text: str
) -> dict:
    return {
        "asset": asset.name,
        "start": asset.stamps[a],
        "end": asset.stamps[a + n - 1],
        "kind": kind,
        "sensors": sensors,
        "magnitude": round(float(size), 3),
        "description": f"{text} for {_human(n * asset.dt)}",
    }


def _human(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1:
        return f"{seconds:.0f} s"
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def _signed_size(kind: str, rng: np.random.Generator, p_up: float = 0.5) -> float:
    lo, hi = _SIZE[kind]
    return rng.uniform(lo, hi) * (1.0 if rng.random() < p_up else -1.0)


def _spike(asset: _Asset, sensor: str, rng: np.random.Generator) -> dict:
    n = _duration(asset, "spike", rng)
    a = _place(asset, n, rng)
    size = _signed_size("spike", rng)
    delta = size * asset.spread[sensor]
    asset.data[sensor][a : a + n] += delta
    return _record(asset, "spike", [sensor], a, n, size, f"Spike of {delta:+.3g} on {sensor}")


def _drift(asset: _Asset, sensor: str, rng: np.random.Generator) -> dict:
    n = _duration(asset, "drift", rng)
    a = _place(asset, n, rng)
    size = _signed_size("drift", rng, p_up=0.8)  # wear and fouling mostly push readings up
    if sensor in asset.directions:
        size = abs(size) * (1.0 if asset.directions[sensor] >= 0 else -1.0)
    delta = size * asset.spread[sensor]
    asset.data[sensor][a : a + n] += delta * np.linspace(1 / n, 1, n)
    return _record(asset, "drift", [sensor], a, n, size, f"{sensor} drifts to {delta:+.3g}")


def _level_shift(asset: _Asset, sensor: str, rng: np.random.Generator) -> dict:
    n = _duration(asset, "level_shift", rng)
    a = _place(asset, n, rng)
    size = _signed_size("level_shift", rng)
    delta = size * asset.spread[sensor]
    asset.data[sensor][a : a + n] += delta
    return _record(asset, "level_shift", [sensor], a, n, size, f"{sensor} offset by {delta:+.3g}")


def _stuck(asset: _Asset, sensor: str, rng: np.random.Generator) -> dict:
    """Flatline at the last reading, placed where the true signal moves the most."""
    x = asset.data[sensor]
    n = _duration(asset, "stuck", rng)
    a = _place(
        asset, n, rng, score=lambda s: float(np.nanmax(x[s : s + n]) - np.nanmin(x[s : s + n]))
    )
    held = x[:a][np.isfinite(x[:a])]
    value = held[-1] if held.size else float(np.nanmedian(x))
    size = float(np.nanmean(np.abs(x[a : a + n] - value))) / asset.spread[sensor]
    x[a : a + n] = value
    return _record(asset, "stuck", [sensor], a, n, size, f"{sensor} stuck at {value:.4g}")


def _noise_burst(asset: _Asset, sensor: str, rng: np.random.Generator) -> dict:
    n = _duration(asset, "noise_burst", rng)
    a = _place(asset, n, rng)
    size = abs(_signed_size("noise_burst", rng))
    scale = size * asset.spread[sensor]
    asset.data[sensor][a : a + n] += rng.normal(0.0, scale, n)
    return _record(
        asset, "noise_burst", [sensor], a, n, size, f"Noise (sd {scale:.3g}) on {sensor}"
    )


def _correlations(asset: _Asset, usable: list[str]) -> pd.DataFrame:
    if asset.corr is None:
        rows = np.flatnonzero(asset.free)
        rows = rows[:: max(1, rows.size // 20_000)]
        table = pd.DataFrame({n: asset.data[n][rows] for n in usable})
        asset.corr = table.corr().abs().fillna(0.0)
    return asset.corr


def _coupling_break(
    asset: _Asset, candidates: list[str], usable: list[str], rng: np.random.Generator
) -> dict | None:
    """Move one sensor away from what its most correlated partner implies, staying in range."""
    corr = _correlations(asset, usable)
    for sensor in rng.permutation(candidates):
        sensor = str(sensor)
        partners = corr[sensor].drop(sensor).sort_values(ascending=False)
        if partners.empty or partners.iloc[0] < _MIN_PARTNER_CORR:
            continue
        return _apply_coupling_break(asset, sensor, str(partners.index[0]), rng)
    return None


def _apply_coupling_break(
    asset: _Asset, sensor: str, partner: str, rng: np.random.Generator
) -> dict:
    x, s = asset.data[sensor], asset.spread[sensor]
    lo, hi = np.nanpercentile(x[asset.free], [1, 99])
    med = float(np.nanmedian(x[asset.free]))
    n = _duration(asset, "coupling_break", rng)

    def room(start: int) -> float:
        """How far the window's mean can move towards the middle and beyond, staying in range."""
        mean = float(np.nanmean(x[start : start + n]))
        return hi - mean if mean < med else mean - lo

    a = _place(asset, n, rng, score=room)
    going_up = float(np.nanmean(x[a : a + n])) < med
    delta = min(abs(_signed_size("coupling_break", rng)) * s, 0.8 * room(a))
    delta = delta if going_up else -delta
    edge = max(1, n // 10)
    shape = np.minimum(1.0, np.minimum(np.arange(1, n + 1), np.arange(n, 0, -1)) / edge)
    x[a : a + n] += delta * shape
    text = f"{sensor} moves {delta:+.3g} while {partner} does not follow"
    return _record(asset, "coupling_break", [sensor], a, n, delta / s, text)


_APPLY: dict[str, Callable[[_Asset, str, np.random.Generator], dict]] = {
    "spike": _spike,
    "drift": _drift,
    "level_shift": _level_shift,
    "stuck": _stuck,
    "noise_burst": _noise_burst,
}
