"""Feature engineering for sensor frames: everything a detector sees is built here.

Each feature is standardised with robust statistics of the training data, so its value reads as a
robust z-score ("how unusual is this, in training spreads") and `max |z|` per sensor is a fair
measure of how much that sensor deviates. Feature families (all vectorised, per asset):

- ``raw``: the sensor value, robust-scaled.
- ``mean``/``std``/``min``/``max``/``slope``: trailing rolling statistics over ``window`` samples
  (``std`` in log scale so a stuck sensor, std -> 0, is as visible as a noisy one).
- ``diff``: first difference.
- ``rough``: log of the rolling mean of ``|diff|`` clipped at a training quantile; unlike ``std`` a
  single large step (a speed setpoint change) moves it little, while stuck or noisy sensors do.
- ``fft``: band energies of rolling windows, for fast signals such as vibration.
- ``resid``/``resid_mean``: cross-sensor residuals. Each sensor is predicted from the *other*
  sensors (their values and two exponential moving averages, so first-order lags are captured) by
  a ridge model fitted on training data with a robust refit. A broken coupling shows up as a
  residual even when every value stays in its normal range, and operating-mode changes, which move
  coupled sensors together, do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.errors import ConfigError, DataError
from core.types import ASSET, TS

ALL_FAMILIES = (
    "raw",
    "mean",
    "std",
    "min",
    "max",
    "slope",
    "diff",
    "rough",
    "fft",
    "resid",
    "resid_mean",
)
"""Every feature family FeatureBuilder knows."""
DEFAULT_FAMILIES = ("raw", "rough", "resid")
"""Families on by default: chosen by measurement in bench/bench_detectors.py."""
FAST_SENSOR_HINT = re.compile(r"vib|accel|acc_|acoustic|sound|noise|rms", re.IGNORECASE)
_EPS = 1e-9
_Z_CLIP = 1e3


@dataclass
class FeatureConfig:
    """Which features to build and over which windows.

    Windows are given as durations and converted to samples with the sampling interval (inferred
    from training timestamps when ``interval_seconds`` is None), clipped to
    ``[min_window, max_window]`` samples so slow and fast data both get usable windows.
    """

    families: tuple[str, ...] = DEFAULT_FAMILIES
    window: str = "15min"
    fft_window: int = 32
    fft_bands: int = 3
    fft_sensors: tuple[str, ...] | None = None
    residual_alpha: float = 1e-4
    residual_spans: tuple[float, ...] = (1.0,)
    residual_squares: bool = True
    interval_seconds: float | None = None
    min_window: int = 5
    max_window: int = 240
    rough_clip_quantile: float = 0.98
    max_fit_rows: int = 200_000

    def __post_init__(self) -> None:
        unknown = sorted(set(self.families) - set(ALL_FAMILIES))
        if unknown:
            raise ConfigError(
                f"Unknown feature families {unknown}. Valid families: {', '.join(ALL_FAMILIES)}."
            )
        if self.fft_window < 8 or self.fft_window & (self.fft_window - 1):
            raise ConfigError(
                f"The 'fft_window' parameter must be a power of two >= 8. Got {self.fft_window}."
            )

    def window_samples(self, interval_seconds: float) -> int:
        """The rolling window in samples for data sampled every ``interval_seconds``."""
        seconds = pd.Timedelta(self.window).total_seconds()
        n = int(round(seconds / max(interval_seconds, _EPS)))
        return int(np.clip(n, self.min_window, self.max_window))


@dataclass
class FeatureSet:
    """Features row-aligned with the input frame, and which sensor each feature comes from."""

    values: pd.DataFrame
    sensor_of: dict[str, str] = field(default_factory=dict)


def infer_interval_seconds(ts: pd.Series | np.ndarray, asset: np.ndarray | None = None) -> float:
    """Median spacing between consecutive timestamps (per asset), in seconds; 60 if unknown."""
    t = pd.to_datetime(pd.Series(ts)).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    if asset is not None:
        order = np.lexsort((t, asset))
        t, asset = t[order], asset[order]
        same = asset[1:] == asset[:-1]
    else:
        t = np.sort(t)
        same = np.ones(len(t) - 1, dtype=bool)
    d = np.diff(t)[same] / 1e9 if len(t) > 1 else np.array([])
    d = d[d > 0]
    return float(np.median(d)) if len(d) else 60.0


def numeric_sensors(frame: pd.DataFrame) -> list[str]:
    """Sensor columns of a frame: every numeric column except the time and asset columns."""
    return [
        c
        for c in frame.columns
        if c not in (TS, ASSET)
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]


def _segments(frame: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    """Row order sorted by (asset, ts) and the sorted positions of each asset's rows."""
    n = len(frame)
    ts = frame[TS].to_numpy() if TS in frame else np.arange(n)
    if ASSET in frame:
        codes, _ = pd.factorize(frame[ASSET], sort=False)
        order = np.lexsort((ts, codes))
        sorted_codes = codes[order]
        bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
        pieces = np.split(np.arange(n), bounds)
    else:
        order = np.argsort(ts, kind="stable")
        pieces = [np.arange(n)]
    return order, pieces


def _rolling_sum(a: np.ndarray, w: int) -> np.ndarray:
    """Trailing sum over ``w`` rows (fewer at the start), via cumulative sums."""
    c = np.cumsum(a, axis=0, dtype=np.float64)
    out = c.copy()
    out[w:] -= c[:-w]
    return out


def _rolling_stats(z: np.ndarray, w: int, families: set[str]) -> dict[str, np.ndarray]:
    """Trailing mean, log-std, min, max and least-squares slope of each column."""
    n = len(z)
    out: dict[str, np.ndarray] = {}
    counts = np.minimum(np.arange(1, n + 1), w).astype(np.float64)[:, None]
    s1 = _rolling_sum(z, w)
    mean = s1 / counts
    if "mean" in families:
        out["mean"] = mean
    if "std" in families:
        s2 = _rolling_sum(z * z, w)
        var = np.clip(s2 - s1 * mean, 0.0, None) / np.maximum(counts - 1, 1)
        out["std"] = np.log(np.sqrt(var) + 1e-3)
    if "min" in families or "max" in families:
        roll = pd.DataFrame(z).rolling(w, min_periods=1)
        if "min" in families:
            out["min"] = roll.min().to_numpy()
        if "max" in families:
            out["max"] = roll.max().to_numpy()
    if "slope" in families:
        j = np.arange(n, dtype=np.float64)[:, None]
        start = j - counts + 1
        sjx = _rolling_sum(z * j, w) - start * s1
        denom = counts * (counts * counts - 1) / 12.0
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (sjx - (counts - 1) / 2.0 * s1) / denom
        slope[counts[:, 0] < 2] = 0.0
        out["slope"] = slope
    return out


def _fft_bands(x: np.ndarray, length: int, bands: int) -> np.ndarray:
    """Log band energies of Hann-windowed frames (hop length/4), held until the next frame."""
    n = len(x)
    out = np.full((n, bands), np.nan)
    if n < length:
        return out
    hop = max(length // 4, 1)
    frames = np.lib.stride_tricks.sliding_window_view(x, length)[::hop]
    frames = (frames - frames.mean(axis=1, keepdims=True)) * np.hanning(length)
    power = np.abs(np.fft.rfft(frames, axis=1))[:, 1:] ** 2
    edges = np.linspace(0, power.shape[1], bands + 1).astype(int)[:-1]
    energy = np.add.reduceat(power, edges, axis=1)
    frame_end = np.arange(len(frames)) * hop + length - 1
    idx = np.searchsorted(frame_end, np.arange(n), side="right") - 1
    valid = idx >= 0
    out[valid] = np.log(energy[idx[valid]] + 1e-6)
    return out


def _robust_center_scale(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column medians and robust spreads (IQR/1.349, falling back to std, then 1)."""
    med = np.nanmedian(a, axis=0)
    q25, q75 = np.nanpercentile(a, [25, 75], axis=0)
    scale = (q75 - q25) / 1.349
    std = np.nanstd(a, axis=0)
    scale = np.where(scale > _EPS * (1 + np.abs(med)), scale, std)
    scale = np.where(scale > _EPS * (1 + np.abs(med)), scale, 1.0)
    return np.nan_to_num(med), scale


class FeatureBuilder:
    """Learns scaling, residual models and feature spreads on training data; builds features.

    ``fit`` takes a frame with ``ts``, optional ``asset`` and numeric sensor columns (normally one
    asset; several are handled segment by segment with pooled statistics). ``transform`` returns a
    `FeatureSet` row-aligned with its input.
    """

    def __init__(self, config: FeatureConfig | None = None, *, sensors: list[str] | None = None):
        self.config = config or FeatureConfig()
        self.sensors = sensors

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame, mask: np.ndarray | None = None) -> FeatureBuilder:
        """Learn everything from ``train``; ``mask`` marks rows usable as normal (e.g. machine on)."""
        cfg = self.config
        self.sensors_ = list(self.sensors) if self.sensors is not None else numeric_sensors(train)
        if not self.sensors_:
            raise DataError("No numeric sensor columns to build features from.")
        if len(train) < 2 * cfg.min_window:
            raise DataError(
                f"Training data has {len(train)} rows; at least {2 * cfg.min_window} are needed."
            )
        asset = train[ASSET].to_numpy() if ASSET in train else None
        self.interval_seconds_ = cfg.interval_seconds or (
            infer_interval_seconds(train[TS], asset) if TS in train else 60.0
        )
        self.window_ = cfg.window_samples(self.interval_seconds_)
        self.families_ = set(cfg.families)
        if len(self.sensors_) < 2:
            self.families_ -= {"resid", "resid_mean"}
        self._resid = bool(self.families_ & {"resid", "resid_mean"})
        mask = np.ones(len(train), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)

        raw = train[self.sensors_].to_numpy(dtype=np.float64)
        usable = mask & np.isfinite(raw).all(axis=1)
        fit_rows = raw[usable] if usable.any() else raw
        self.center_, self.scale_ = _robust_center_scale(fit_rows)
        self.fft_sensors_ = self._pick_fft_sensors()

        # Stage 1: residual models need scaled values and their moving averages.
        order, pieces = _segments(train)
        z_sorted = self._scaled(raw[order])
        mask_sorted = mask[order]
        if self._resid:
            design = np.concatenate([self._design(z_sorted[p]) for p in pieces])
            self._fit_residuals(design, z_sorted, mask_sorted)
        if "rough" in self.families_:
            d = np.abs(np.diff(z_sorted, axis=0))
            d = d[mask_sorted[1:] & mask_sorted[:-1]] if mask_sorted.sum() > 2 else d
            self.rough_clip_ = np.maximum(np.nanquantile(d, cfg.rough_clip_quantile, axis=0), 1e-6)
        # Stage 2: feature spreads, from rows past the warm-up of each segment.
        feats, names, sensor_of = self._features_sorted(z_sorted, pieces)
        warm = np.zeros(len(train), dtype=bool)
        for p in pieces:
            warm[p[: self._warmup()]] = True
        keep = mask_sorted & ~warm
        if keep.sum() < 10:
            keep = mask_sorted if mask_sorted.sum() >= 10 else np.ones(len(train), dtype=bool)
        rows = feats[keep]
        if len(rows) > cfg.max_fit_rows:
            rows = rows[:: int(np.ceil(len(rows) / cfg.max_fit_rows))]
        self.feature_center_, self.feature_scale_ = _robust_center_scale(rows)
        self.feature_names_, self.sensor_of_ = names, sensor_of
        return self

    def _pick_fft_sensors(self) -> list[str]:
        if "fft" not in self.families_:
            return []
        if self.config.fft_sensors is not None:
            return [s for s in self.config.fft_sensors if s in self.sensors_]
        return [s for s in self.sensors_ if FAST_SENSOR_HINT.search(s)]

    def _warmup(self) -> int:
        w = self.window_
        if self.fft_sensors_:
            w = max(w, self.config.fft_window)
        if self._resid:
            w = max(w, 2 * self.window_)
        return w

    def _scaled(self, raw: np.ndarray) -> np.ndarray:
        """Robust z of raw values; gaps are carried forward (then back, then the median)."""
        z = (raw - self.center_) / self.scale_
        if np.isnan(z).any():
            z = pd.DataFrame(z).ffill().bfill().fillna(0.0).to_numpy()
        return z

    def _design(self, z: np.ndarray) -> np.ndarray:
        """Predictors for residual models: values (and squares) plus exponential averages."""
        df = pd.DataFrame(z)
        parts = [z]
        if self.config.residual_squares:
            parts.append(np.clip(z, -20, 20) ** 2)
        for span in self.config.residual_spans:
            parts.append(df.ewm(span=span * self.window_, adjust=False).mean().to_numpy())
        return np.concatenate(parts, axis=1)

    def _fit_residuals(self, design: np.ndarray, z: np.ndarray, mask: np.ndarray) -> None:
        """Ridge of each sensor on the other sensors' predictors; refit without outlying rows."""
        p = len(self.sensors_)
        rows = np.flatnonzero(mask)
        rows = rows[self._warmup() :] if len(rows) > 4 * self._warmup() else rows
        step = max(1, int(np.ceil(len(rows) / self.config.max_fit_rows)))
        rows = rows[::step]
        a, y = design[rows], z[rows]
        keep = np.ones(len(rows), dtype=bool)
        for refit in range(3):
            coef, intercept = self._ridge(a[keep], y[keep], p)
            resid = y - (a @ coef + intercept)
            med = np.median(resid[keep], axis=0)
            mad = 1.4826 * np.median(np.abs(resid[keep] - med), axis=0) + 1e-6
            if refit == 2:
                break
            keep = (np.abs(resid - med) / mad < 5.0).all(axis=1)
            if keep.sum() < max(20, 0.5 * len(rows)):
                keep = np.ones(len(rows), dtype=bool)
        self.resid_center_, self.resid_scale_ = med, mad
        self.resid_coef_, self.resid_intercept_ = coef, intercept

    def _ridge(self, a: np.ndarray, y: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        """One ridge fit per target on a shared Gram matrix, excluding the target's own columns."""
        mu_a, mu_y = a.mean(axis=0), y.mean(axis=0)
        ac, yc = a - mu_a, y - mu_y
        gram = ac.T @ ac
        cross = ac.T @ yc
        ridge = self.config.residual_alpha * np.trace(gram) / max(len(gram), 1) + 1e-9
        coef = np.zeros((a.shape[1], p))
        own = np.arange(a.shape[1]) % p
        for j in range(p):
            cols = np.flatnonzero(own != j)
            g = gram[np.ix_(cols, cols)] + ridge * np.eye(len(cols))
            coef[cols, j] = np.linalg.solve(g, cross[cols, j])
        return coef, mu_y - mu_a @ coef

    # -- transforming --------------------------------------------------------------------------
    def _features_sorted(
        self, z: np.ndarray, pieces: list[np.ndarray]
    ) -> tuple[np.ndarray, list[str], dict[str, str]]:
        """Unstandardised features of sorted rows, computed segment by segment."""
        blocks = [self._segment_features(z[p]) for p in pieces]
        names = [name for name, _, _ in blocks[0]]
        sensor_of = {name: sensor for name, sensor, _ in blocks[0]}
        values = np.concatenate(
            [np.column_stack([v for _, _, v in b]) for b in blocks], axis=0
        ).astype(np.float64)
        return values, names, sensor_of

    def _residuals(self, z: np.ndarray) -> np.ndarray:
        """Each sensor minus its prediction from the other sensors."""
        return z - (self._design(z) @ self.resid_coef_ + self.resid_intercept_)

    def _segment_features(self, z: np.ndarray) -> list[tuple[str, str, np.ndarray]]:
        fam, w, sensors = self.families_, self.window_, self.sensors_
        cols: list[tuple[str, str, np.ndarray]] = []

        def add(kind: str, arr: np.ndarray) -> None:
            cols.extend((f"{s}__{kind}", s, arr[:, i]) for i, s in enumerate(sensors))

        r = self._residuals(z) if self._resid else None
        if "raw" in fam:
            add("raw", z)
        for kind, arr in _rolling_stats(z, w, fam).items():
            add(kind, arr)
        if "diff" in fam:
            add("diff", np.vstack([np.zeros((1, z.shape[1])), np.diff(z, axis=0)]))
        if "rough" in fam:
            d = np.abs(np.vstack([np.zeros((1, z.shape[1])), np.diff(z, axis=0)]))
            clipped = np.minimum(d, self.rough_clip_)
            counts = np.minimum(np.arange(1, len(z) + 1), w)[:, None]
            add("rough", np.log(_rolling_sum(clipped, w) / counts + 1e-3 * self.rough_clip_))
        for s in self.fft_sensors_:
            i = sensors.index(s)
            bands = _fft_bands(z[:, i], self.config.fft_window, self.config.fft_bands)
            cols.extend((f"{s}__fft{b}", s, bands[:, b]) for b in range(bands.shape[1]))
        if r is not None:
            if "resid" in fam:
                add("resid", r)
            if "resid_mean" in fam:
                counts = np.minimum(np.arange(1, len(z) + 1), w)[:, None]
                add("resid_mean", _rolling_sum(r, w) / counts)
        return cols

    def transform(self, frame: pd.DataFrame) -> FeatureSet:
        """Standardised features, row-aligned with ``frame`` (any row order, any assets)."""
        if not hasattr(self, "feature_names_"):
            raise RuntimeError("FeatureBuilder is not fitted yet; call fit() first.")
        missing = [s for s in self.sensors_ if s not in frame.columns]
        if missing:
            raise DataError(f"Missing sensor columns: {', '.join(map(str, missing))}.")
        if len(frame) == 0:
            empty = pd.DataFrame(columns=self.feature_names_, dtype=np.float32)
            return FeatureSet(empty, dict(self.sensor_of_))
        order, pieces = _segments(frame)
        raw = frame[self.sensors_].to_numpy(dtype=np.float64)[order]
        feats, names, sensor_of = self._features_sorted(self._scaled(raw), pieces)
        feats -= self.feature_center_
        feats /= self.feature_scale_
        np.nan_to_num(feats, copy=False, nan=0.0, posinf=_Z_CLIP, neginf=-_Z_CLIP)
        np.clip(feats, -_Z_CLIP, _Z_CLIP, out=feats)
        values = np.empty_like(feats, dtype=np.float32)
        values[order] = feats
        return FeatureSet(pd.DataFrame(values, columns=names, index=frame.index), sensor_of)
