"""A synthetic twin of a plant: same sensors, assets, sampling, operating modes and stops, and no
real stretch of values, so plant data can be shared, taught and graded without leaking it.

Per asset the readings are split into a *level* and a *residual*. The level is the median of each
operating mode (running rows clustered with k-means, stops their own mode), held over the
source's mode schedule and passed through a first-order lag per sensor (fitted: temperatures
follow a step slowly, speed at once), plus whatever part of the residual moves with it (least
squares on the levels: a lag's misfit, a mode whose mean is not its median). The residual
(readings minus level) is replaced by a multivariate Fourier surrogate of its Gaussian copula:
each sensor's residual is mapped to normal scores through its ranks, every frequency keeps its
amplitude in every sensor and gets one random phase shared by all sensors, and the result is read
back through the sensor's own quantiles (amplitude-adjusted surrogates, Schreiber and Schmitz
2000; shared phases: Prichard and Theiler, 1994). So each sensor's spectrum (hence
autocorrelation), the cross-spectra (hence the correlation matrix) and each sensor's distribution
are kept while the sequence of values is new. Reading back through the quantiles keeps what a
plain Gaussian surrogate loses: a bounded sensor (a valve wandering between its stops) moves
slowly near its bounds and fast in between, so its roughness depends on where it is; a detector
trained on a Gaussian twin took the real valve's calm spells near its stops for a stuck sensor.
Rows the analysts or the ground truth mark as faulty are left out of the model, so the twin is
normal operation; sensors that read one constant value while the machine is stopped do so in the
twin, and every sensor stays within its source range.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.detect.evaluation import label_points
from core.detect.machine_state import detect_machine_off, drive_sensors
from core.errors import ConfigError, DataError
from core.synth.fault_copy import store_copy
from core.synth.faults import FAULT_COLUMNS
from core.synth.fidelity import FidelityReport, Progress, fidelity_report
from core.synth.transplant import apply_shape, fault_shape, known_faults
from core.types import ASSET, TS, DatasetInfo

MIN_TWIN_ROWS = 500
"""Rows an asset needs before its modes, lags and spectrum can be learnt (the demo's minimum)."""
MAX_MODES = 6
_LAGS = (0, 1, 2, 3, 5, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192)
"""Candidate time constants (rows) of a sensor's response to a mode change."""
_MIN_MODE_RUN = 10
"""Mode runs shorter than this (rows) are the ramp between two modes, not a mode of their own."""
_FIT_ROWS = 5_000
_TRANSITION_ROWS = 5
_OUTLIER_SPREADS = 6.0
_NOISE_ROWS = 15
_LOUDNESS_BINS = 10
"""Deciles of a sensor's slow part, each with the loudness of its fast part (see
`copula_surrogate`)."""
_ELBOW = 0.7
"""Modes stop at the k after which one more cluster explains less than 30% of what is left."""


def make_twin(
    frame: pd.DataFrame,
    sensors: Sequence[str],
    exclude: np.ndarray | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """A synthetic twin of ``frame`` (ts, asset, sensors; asset-major, time-ordered rows).

    ``exclude`` marks rows (faults, confirmed anomalies) not to learn from; the twin keeps the
    timestamps, assets, missing cells and stop schedule of ``frame``, and nothing else of it.
    """
    sensors = list(sensors)
    skip = np.zeros(len(frame), bool) if exclude is None else np.asarray(exclude, bool)
    rng = np.random.default_rng(seed)
    out = frame[[TS, ASSET, *sensors]].copy()
    for asset, rows in _asset_rows(frame).items():
        if len(rows) < MIN_TWIN_ROWS:
            raise DataError(
                f"Asset {asset!r} has {len(rows)} rows; a twin needs at least {MIN_TWIN_ROWS} "
                "per asset to learn its modes and spectrum."
            )
        sub = frame.iloc[rows]
        values = sub[sensors].to_numpy(dtype=np.float64)
        if (skip[rows] | np.isnan(values).all(axis=1)).mean() > 0.5:
            raise DataError(
                f"Asset {asset!r} has too few normal rows to learn from: more than half of them "
                "are marked faulty or empty."
            )
        twin = _asset_twin(sub, values, sensors, skip[rows], rng)
        out.loc[out.index[rows], sensors] = twin
    return out


def _asset_rows(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    codes, names = pd.factorize(frame[ASSET].astype(str), sort=False)
    return {str(n): np.flatnonzero(codes == k) for k, n in enumerate(names)}


def _asset_twin(
    sub: pd.DataFrame,
    values: np.ndarray,
    sensors: list[str],
    skip: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One asset's twin values, row-aligned with ``values``."""
    missing = np.isnan(values)
    filled = pd.DataFrame(values).ffill().bfill().fillna(0.0).to_numpy()
    off = detect_machine_off(sub, sensors)
    drives = [sensors.index(s) for s in drive_sensors(sub, sensors)]
    modes = _modes(filled, off, skip, drives, rng)
    level = _level(filled, modes, skip)
    for j in range(level.shape[1]):
        level[:, j] = _best_lag(filled[:, j], level[:, j], ~skip)
    residual = filled - level
    residual[skip | _near_changes(modes, _TRANSITION_ROWS)] = np.nan
    residual[_outlying(residual)] = np.nan
    # What moves with the level belongs to it: left in the residual, its tie to the mode
    # schedule would be lost by the surrogate and change every correlation with a slow sensor.
    shift = _level_part(residual, level, np.isfinite(residual).all(axis=1))
    level, residual = level + shift, residual - shift
    residual = pd.DataFrame(residual).interpolate(limit_direction="both").fillna(0.0).to_numpy()
    fresh = _per_mode_noise(copula_surrogate(residual, rng), residual, modes)
    # The real residual is uncorrelated with the level now; so is the twin's (not by chance).
    twin = level + fresh - _level_part(fresh, level, np.ones(len(fresh), bool))
    normal = ~skip & ~missing.any(axis=1)
    for j in range(twin.shape[1]):
        stopped = values[off & normal, j]
        if stopped.size and np.ptp(stopped) == 0:
            twin[off, j] = stopped[0]  # a stopped pump reads exactly zero rpm, also in the twin
        seen = values[normal, j]
        if seen.size:
            twin[:, j] = _fold(twin[:, j], seen.min(), seen.max())
    twin[missing] = np.nan
    return twin


def _level_part(x: np.ndarray, level: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The zero-mean part of ``x`` that moves with the level (least squares on ``rows``)."""
    lv = level - level[rows].mean(axis=0)
    xc = np.where(np.isfinite(x), x, 0.0) - np.nanmean(x[rows], axis=0)
    coef = np.linalg.lstsq(lv[rows], xc[rows], rcond=None)[0]
    return lv @ coef


def _fold(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Values past the source's range mirrored back inside it: clipping them would hold a
    slowly wandering sensor flat at its bound for hours (a stuck-sensor fault)."""
    x = np.where(x < lo, 2 * lo - x, x)
    x = np.where(x > hi, 2 * hi - x, x)
    return np.clip(x, lo, hi)


def _modes(
    values: np.ndarray,
    off: np.ndarray,
    skip: np.ndarray,
    drives: list[int],
    rng: np.random.Generator,
) -> np.ndarray:
    """Operating mode per row: -1 stopped, else a k-means cluster of the running rows' drive
    sensors (speed, current, flow: what sets a machine's operating point; all sensors if none),
    with short runs (ramps between modes) merged into the mode before them."""
    from sklearn.cluster import KMeans

    running = ~off
    modes = np.full(len(values), -1)
    if running.sum() < 2 * MAX_MODES:
        return modes
    cols = values[:, drives] if drives else values
    center = np.median(cols[running], axis=0)
    scale = np.std(cols[running], axis=0)
    z = (cols - center) / np.where(scale > 0, scale, 1.0)
    fit_rows = np.flatnonzero(running & ~skip)
    fit_rows = fit_rows[:: max(1, fit_rows.size // _FIT_ROWS)]
    state = int(rng.integers(1 << 31))
    fits = [
        KMeans(n_clusters=k, n_init=3, random_state=state).fit(z[fit_rows])
        for k in range(1, MAX_MODES + 2)
    ]
    chosen = fits[-2]
    for fit, more in zip(fits[:-1], fits[1:], strict=True):
        if more.inertia_ > _ELBOW * fit.inertia_:
            chosen = fit
            break
    modes[running] = chosen.predict(z[running])
    return _merge_short_runs(modes, _MIN_MODE_RUN)


def _merge_short_runs(modes: np.ndarray, min_run: int) -> np.ndarray:
    """Runs shorter than ``min_run`` rows take the mode before them (the first run is kept)."""
    out = modes.copy()
    edges = np.flatnonzero(np.diff(out)) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [len(out)]])
    for a, b in zip(starts[1:], ends[1:], strict=True):
        if b - a < min_run and out[a] != -1:
            out[a:b] = out[a - 1]
    return out


def _near_changes(modes: np.ndarray, rows: int) -> np.ndarray:
    """Rows within ``rows`` of a mode change: the ramp a mode step and a lag only approximate.
    Left in, their misfit would be spread over the whole twin as broadband noise."""
    change = np.zeros(len(modes), bool)
    change[1:] = modes[1:] != modes[:-1]
    near = np.convolve(change, np.ones(2 * rows + 1), mode="same") > 0
    return near


def _outlying(residual: np.ndarray) -> np.ndarray:
    """Residual cells more than `_OUTLIER_SPREADS` robust spreads from the median: bursts a
    Fourier surrogate would smear into noise everywhere (kept out, then interpolated)."""
    with np.errstate(all="ignore"):
        med = np.nanmedian(residual, axis=0)
        mad = 1.4826 * np.nanmedian(np.abs(residual - med), axis=0)
        return np.abs(residual - med) > _OUTLIER_SPREADS * np.where(mad > 0, mad, np.inf)


def _level(values: np.ndarray, modes: np.ndarray, skip: np.ndarray) -> np.ndarray:
    """Each row's mode median (from rows learnt from; all the mode's rows if none are)."""
    level = np.empty_like(values)
    for mode in np.unique(modes):
        rows = modes == mode
        learn = rows & ~skip
        level[rows] = np.median(values[learn if learn.any() else rows], axis=0)
    return level


def _lag(x: np.ndarray, tau: float) -> np.ndarray:
    """First-order lag of time constant ``tau`` rows, starting in steady state."""
    if tau <= 0:
        return x.copy()
    from scipy.signal import lfilter, lfilter_zi

    a = np.exp(-1.0 / tau)
    b, den = [1 - a], [1.0, -a]
    return lfilter(b, den, x, zi=lfilter_zi(b, den) * x[0])[0]


def _best_lag(x: np.ndarray, level: np.ndarray, use: np.ndarray) -> np.ndarray:
    """The level lagged by the time constant that follows ``x`` best on the ``use`` rows."""
    candidates = [_lag(level, tau) for tau in _LAGS]
    errors = [float(np.mean((x[use] - c[use]) ** 2)) for c in candidates]
    return candidates[int(np.argmin(errors))]


def _per_mode_noise(fresh: np.ndarray, residual: np.ndarray, modes: np.ndarray) -> np.ndarray:
    """Give each mode its own sensor noise: the surrogate's fast part (what a short moving
    average does not keep) is rescaled per mode and sensor to the real fast part's spread
    (noise that grows with the reading, e.g. 1% of flow, is louder at a high operating point)."""
    from scipy.ndimage import uniform_filter1d

    slow_real = uniform_filter1d(residual, _NOISE_ROWS, axis=0, mode="nearest")
    slow_twin = uniform_filter1d(fresh, _NOISE_ROWS, axis=0, mode="nearest")
    fast_real, fast_twin = residual - slow_real, fresh - slow_twin
    out = fresh.copy()
    for mode in np.unique(modes):
        rows = modes == mode
        want, have = fast_real[rows].std(axis=0), fast_twin[rows].std(axis=0)
        gain = np.where(have > 0, want / np.where(have > 0, have, 1.0), 1.0)
        out[rows] = slow_twin[rows] + fast_twin[rows] * gain
    return out


def fourier_surrogate(residual: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A new series with the same amplitude spectrum per column and the same cross-spectra:
    one random phase per frequency, shared by all columns (mean and Nyquist term kept real)."""
    n = residual.shape[0]
    spectrum = np.fft.rfft(residual, axis=0)
    phases = np.exp(1j * rng.uniform(0, 2 * np.pi, spectrum.shape[0]))
    phases[0] = 1.0
    if n % 2 == 0:
        phases[-1] = rng.choice([-1.0, 1.0])
    return np.fft.irfft(spectrum * phases[:, None], n=n, axis=0)


def copula_surrogate(residual: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A multivariate Fourier surrogate of the residual's slow part (a short moving average) in
    its Gaussian copula, read back through each column's quantiles, plus its fast part with the
    loudness the real fast part has at that quantile of the slow part.

    The slow part keeps its distribution; the fast part (noise, quick steps of a wander) keeps
    how it depends on where the sensor is: a valve between its stops moves quickly mid-range
    and hardly at all near a stop. Slow and fast parts share one set of phases, so their
    cross-spectra stay. Slow values are interpolated between sorted real ones.
    """
    from scipy.ndimage import uniform_filter1d
    from scipy.special import ndtr, ndtri

    n, m = residual.shape
    slow = uniform_filter1d(residual, _NOISE_ROWS, axis=0, mode="nearest")
    ranks = slow.argsort(axis=0, kind="stable").argsort(axis=0, kind="stable")
    normal = ndtri((ranks + 0.5) / n)
    fresh = fourier_surrogate(np.hstack([normal, residual - slow]), rng)
    share = ndtr(fresh[:, :m] / normal.std(axis=0))
    pos = share * (n - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    w = pos - lo
    cols = np.arange(m)
    ordered = np.sort(slow, axis=0)
    level = ordered[lo, cols] * (1 - w) + ordered[hi, cols] * w
    real_bin = np.minimum(ranks * _LOUDNESS_BINS // n, _LOUDNESS_BINS - 1)
    twin_bin = np.minimum((share * _LOUDNESS_BINS).astype(int), _LOUDNESS_BINS - 1)
    return level + _loudness(residual - slow, real_bin, fresh[:, m:], twin_bin)


def _loudness(
    real: np.ndarray, real_bin: np.ndarray, twin: np.ndarray, twin_bin: np.ndarray
) -> np.ndarray:
    """``twin`` rescaled so its spread in each bin matches ``real``'s in the same bin."""
    out = twin.copy()
    for j in range(real.shape[1]):
        for b in range(_LOUDNESS_BINS):
            mine, theirs = twin_bin[:, j] == b, real_bin[:, j] == b
            have = twin[mine, j].std() if mine.sum() > 1 else 0.0
            if have > 0 and theirs.sum() > 1:
                out[mine, j] *= real[theirs, j].std() / have
    return out


@dataclass(frozen=True, eq=False)
class TwinResult:
    """A dataset's twin, what it was learnt from, and the faults it carries (if asked)."""

    source: DatasetInfo
    real: pd.DataFrame
    readings: pd.DataFrame
    clean: pd.DataFrame
    """The twin before any fault was carried into it (what the report measures)."""
    truth: pd.DataFrame
    """The source's known faults (ground truth, confirmed labels): kept out of the model and
    what the report grades detectors on."""
    faults: pd.DataFrame
    """Ground truth the twin carries: the source's injected faults, reshaped into the twin at
    the same place, when asked; empty otherwise."""
    seed: int


def twin_of_dataset(
    con: duckdb.DuckDBPyConnection, dataset_id: int | str, seed: int = 0, with_faults: bool = False
) -> TwinResult:
    """The twin of a stored dataset, learnt from its normal rows; with ``with_faults`` the
    source's ground-truth faults are transplanted into the twin where they were."""
    info = store.get_dataset(con, dataset_id)
    real = store.read_readings(con, info)
    truth = known_faults(con, info)
    exclude = label_points(real, truth)[0] if len(truth) else None
    clean = make_twin(real, info.sensors, exclude, seed)
    readings = clean.copy() if with_faults else clean
    records = []
    if with_faults:
        if not info.has_ground_truth:
            raise DataError(
                f"Dataset {info.name!r} has no ground truth for the twin to carry; make the "
                "twin without it."
            )
        normal = ~exclude & ~detect_machine_off(real, info.sensors)
        for fault in store.read_ground_truth(con, info.id).itertuples():
            sensors = [s for s in fault.sensors if s in info.sensors]
            shape = fault_shape(
                real, info.sensors, normal, fault.asset, fault.start, fault.end, sensors,
                fault.kind, f"the source's {fault.kind} at {fault.start}",
            )  # fmt: skip
            ts = real.loc[real[ASSET] == fault.asset, TS].to_numpy(dtype="datetime64[ns]")
            first = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(fault.start), "ns")))
            records.append(apply_shape(readings, shape, fault.asset, first, np.ones(len(sensors))))
    faults = pd.DataFrame.from_records(records, columns=FAULT_COLUMNS)
    return TwinResult(info, real, readings, clean, truth, faults, seed)


TWIN_LAYOUT = "twin"
"""The layout a stored twin records: generated, not loaded from a file (nor the demo plant)."""
_TWIN_SOURCE = re.compile(r"twin:dataset=(\d+):seed=(\d+)")


def store_twin(
    con: duckdb.DuckDBPyConnection, twin: TwinResult, name: str | None = None
) -> DatasetInfo:
    """Store a twin as a new dataset (all or nothing) beside its source: layout "twin", its
    source file ``twin:dataset=<source id>:seed=<seed>`` (how `twin_source` finds the source)
    and a note naming the source, what it was and the seed."""
    info = twin.source
    carried = f" carrying its {len(twin.faults)} injected faults" if len(twin.faults) else ""
    note = (
        f"Synthetic twin of {info.name!r} (dataset {info.id}, {info.layout} layout, from "
        f"{info.source_file}; seed {twin.seed}){carried}: no real readings."
    )
    blank = replace(info, layout=TWIN_LAYOUT, quality=replace(info.quality, notes=[]))
    wanted = (name or "").strip() or f"Twin of {info.name}"
    source = f"twin:dataset={info.id}:seed={twin.seed}"
    return store_copy(con, blank, twin.readings, twin.faults, wanted, source, note)


def twin_source(info: DatasetInfo) -> tuple[int, int] | None:
    """(source dataset id, seed) of a stored twin; None for any other dataset."""
    found = _TWIN_SOURCE.fullmatch(info.source_file) if info.layout == TWIN_LAYOUT else None
    return (int(found[1]), int(found[2])) if found else None


def twin_pair(
    con: duckdb.DuckDBPyConnection, info: DatasetInfo
) -> tuple[DatasetInfo, DatasetInfo] | None:
    """(source, twin) for a dataset: itself and its newest stored twin, or its source and
    itself when it is a twin; None when it has neither (or its source was deleted)."""
    datasets = store.list_datasets(con)
    mine = twin_source(info)
    if mine is not None:
        source = next((d for d in datasets if d.id == mine[0]), None)
        return None if source is None else (source, info)
    twins = [d for d in datasets if (twin_source(d) or (None,))[0] == info.id]
    return (info, max(twins, key=lambda d: d.id)) if twins else None


def stored_twin_report(
    con: duckdb.DuckDBPyConnection,
    source: DatasetInfo,
    twin: DatasetInfo,
    progress: Progress | None = None,
) -> FidelityReport:
    """The fidelity and privacy report of a stored twin against its stored source (the faults
    a twin carries are kept out of what its detector learns from, as the source's are)."""
    real = store.read_readings(con, source)
    readings = store.read_readings(con, twin)
    if len(readings) != len(real) or not (readings[TS].to_numpy() == real[TS].to_numpy()).all():
        raise DataError(
            f"Dataset {twin.name!r} no longer lines up with its source {source.name!r} row by "
            "row (rows were appended to one of them): make the twin again."
        )
    carried = store.read_ground_truth(con, twin.id) if twin.has_ground_truth else None
    twin_skip = label_points(readings, carried)[0] if carried is not None else None
    truth = known_faults(con, source)
    return fidelity_report(
        real, readings, source.sensors, truth, twin_exclude=twin_skip, progress=progress
    )


def check_twin_path(path: Path) -> Path:
    """Refuse a twin file name before any work is done: Parquet, in a folder that exists."""
    path = Path(path)
    if path.suffix.lower() != ".parquet":
        raise ConfigError(f"The twin is written as Parquet: name the file *.parquet, not {path}.")
    if not path.parent.is_dir():
        raise ConfigError(f"Folder {path.parent} does not exist.")
    return path


def write_twin(twin: TwinResult, path: Path) -> Path:
    """Write the twin's readings to a Parquet file, whole or not at all (a temporary file is
    renamed into place)."""
    path = check_twin_path(path)
    partial = path.with_name(f".{path.name}.partial")
    try:
        twin.readings.to_parquet(partial, index=False)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def twin_report(twin: TwinResult, progress: Progress | None = None) -> FidelityReport:
    """The fidelity and privacy report of a twin against its source."""
    info = twin.source
    return fidelity_report(twin.real, twin.clean, info.sensors, twin.truth, progress=progress)


def twin_with_report(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int | str,
    seed: int = 0,
    with_faults: bool = False,
    progress: Progress | None = None,
) -> tuple[DatasetInfo, FidelityReport]:
    """Make a dataset's twin, measure it, then store it: what the Load data button does. A bad
    request raises before anything is written."""
    if progress is not None:
        progress(0.0, "Learning modes, lags and spectra")
    twin = twin_of_dataset(con, dataset_id, seed, with_faults)

    def measured(fraction: float, message: str) -> None:
        if progress is not None:
            progress(0.1 + 0.85 * fraction, message)

    report = twin_report(twin, measured)
    if progress is not None:
        progress(0.95, "Storing the twin")
    return store_twin(con, twin), report
