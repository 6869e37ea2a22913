"""Feature engineering for sensor frames: everything a detector sees is built here.

Each feature is standardised with robust statistics of the training data, so its value reads as a
robust z-score ("how unusual is this, in training spreads") and the largest |z| among a sensor's
features is a fair measure of how far that sensor is from its training self. Families (all
vectorised over rows, computed per asset in time order):

- ``raw``: the sensor value, robust-scaled.
- ``mean``/``std``/``min``/``max``/``slope``: trailing rolling statistics over ``window`` samples
  (``std`` in log scale, so a stuck sensor, std -> 0, is as visible as a noisy one).
- ``diff``: first difference.
- ``rough``: log of the rolling mean of ``|diff|``, each difference clipped at a training quantile:
  a stuck or noisy sensor moves it a lot, one large step (a setpoint change) barely.
- ``fft``: log band energies of rolling, Hann-windowed frames, for fast signals such as vibration.
- ``resid``/``resid_mean``: cross-sensor residuals. Each sensor is predicted from the *other*
  sensors (their values, squares and an exponential moving average, so curved couplings like the
  pump affinity laws and first-order lags fit) by ridge regression on training data, refitted
  without outlying rows. A broken coupling shows up as a residual even when every value stays in
  its normal range, while an operating-mode change, which moves coupled sensors together, does not.

Defaults (``DEFAULT_FAMILIES``) were chosen by measurement in ``bench/bench_detectors.py``: rolling
level statistics (``std``, ``slope``, ``mean``) and spectra react to every setpoint step and cost
more false alarms than they find faults; residuals and roughness do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.detect.windows import (
    EPS,
    STAT_ROWS,
    ewma,
    fft_bands,
    out_of_range_limits,
    past_median_baseline,
    past_spread_factor,
    robust_center_scale,
    rolling_stats,
    rolling_sum,
    thin,
    window_counts,
    without_out_of_range,
)
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
"""Families on by default (see the module docstring for why)."""
FAST_SENSOR_HINT = re.compile(r"vib|accel|acoustic|sound|noise", re.IGNORECASE)
"""Names of fast signals that get spectral features when ``fft`` is on."""
_Z_CLIP = 1e3
RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
"""Ridge strengths tried for residual models (relative to the mean Gram diagonal); the weakest
one is the strength used before cross-validation chose it."""
DEFAULT_RECENTER: str | None = "5D"
"""Measured in bench/bench_real.py (demo plants trained on one day, then every sensor drifting by
half a robust spread over two weeks): false alarms 9.4% without, 4.5% with, the same faults found;
Tennessee Eastman unchanged (its 48-hour test files are shorter than half the window). A change
that lasts over 2.5 days becomes the new normal; a steady degradation still shows, as the change
of the last 2.5 days."""
TYPICAL_FLOOR = 0.3
"""Least training width (median |z|; 0.67 for a normal feature) a feature's lasting widening is
measured against: one flat for most of training would otherwise be scaled back by any lasting
movement."""
RIDGE_FOLDS = 5
"""Contiguous time blocks for choosing the ridge strength and for out-of-fold residuals."""
TRAINING_WINDOWS = 25
"""Rolling windows a training segment must hold at least: shorter segments get shorter windows
(`short_training_window`). Measured in bench/bench_short.py (rig-like 1 Hz recordings trained on
400 rows; windows 60 -> 16 samples): `auto` false alarms 15.7% -> 9.4%, F1 0.709 -> 0.749 on
seeds 0-31, and 14.1% -> 7.7%, 0.639 -> 0.696 on fresh seeds 32-63 (caps of 20 and 12 samples:
8.5% / 0.701 and 8.2% / 0.703 on 0-31); `pca` and `autoencoder` gain too, `iforest` loses recall
(F1 0.43 -> 0.38, mended by its own line: `model.POT_LINE`). Tennessee Eastman and the demo plants
keep their windows (5 and 15 samples, far under the cap): bench_real.py unchanged."""


@dataclass
class FeatureConfig:
    """Which features to build and over which windows.

    Windows are durations converted to samples with the sampling interval (inferred from training
    timestamps when ``interval_seconds`` is None), clipped to ``[min_window, max_window]`` samples
    so slow and fast data both get usable windows, and shortened when training is short
    (`short_training_window`).
    """

    families: tuple[str, ...] = DEFAULT_FAMILIES
    window: str = "15min"
    min_window: int = 5
    max_window: int = 60
    fft_window: int = 32
    fft_bands: int = 3
    fft_sensors: tuple[str, ...] | None = None
    residual_alphas: tuple[float, ...] = RIDGE_ALPHAS
    residual_spans: tuple[float, ...] = (1.0,)
    residual_squares: bool = True
    rough_clip_quantile: float = 0.98
    interval_seconds: float | None = None
    recenter: str | None = DEFAULT_RECENTER
    """Window of the slow re-centring of every feature (e.g. '7D'), or None for none: each
    feature is measured from the median of its past window (`past_median_baseline`), so slow
    drift of a baseline is followed while any change shorter than half the window is not."""
    rescale: bool = True
    """With ``recenter``: features that have lasted wider than in training over that window
    are scaled back by it (`windows.past_spread_factor`)."""

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
        duration_seconds(self.window, "window", "15min")
        if self.recenter is not None:
            duration_seconds(self.recenter, "re-centring window", "5D")

    def window_samples(self, interval_seconds: float) -> int:
        """The rolling window in samples for data sampled every ``interval_seconds``."""
        seconds = pd.Timedelta(self.window).total_seconds()
        n = int(round(seconds / max(interval_seconds, EPS)))
        return int(np.clip(n, self.min_window, self.max_window))


def rescaled(features: FeatureBuilder) -> bool:
    """Whether a fitted builder scales lasting widening back (`windows.past_spread_factor`):
    off in a model saved before, or without re-centring."""
    cfg = features.config
    on = getattr(cfg, "rescale", False) and getattr(cfg, "recenter", None) is not None
    return bool(on and getattr(features, "feature_typical_", None) is not None)


def short_training_window(window: int, train_rows: int, min_window: int) -> int:
    """The rolling window in samples, shortened so training holds `TRAINING_WINDOWS` of them.

    Fast data trained on a few minutes (400 rows at 1 Hz) got 60-sample windows: the warm-up
    took 120 of the 400 rows, a single brief event in training spread over a fifth of the rest
    (lifting the held-out alarm line), and the features' spreads came from a handful of
    independent windows. Longer training windows are left alone.
    """
    return int(max(min_window, min(window, train_rows // TRAINING_WINDOWS)))


def duration_seconds(value: str, what: str, example: str) -> float:
    """A positive duration such as '15min' in seconds; ConfigError naming ``what`` otherwise."""
    try:
        seconds = pd.Timedelta(value).total_seconds()
    except ValueError as exc:
        raise ConfigError(f"The {what} {value!r} is not a duration like {example!r}.") from exc
    if seconds <= 0:
        raise ConfigError(f"The {what} must be positive. Got {value!r} instead.")
    return seconds


@dataclass
class FeatureSet:
    """Features row-aligned with the input frame, and which sensor each feature comes from."""

    values: pd.DataFrame
    sensor_of: dict[str, str] = field(default_factory=dict)


def infer_interval_seconds(ts: pd.Series | np.ndarray, asset: np.ndarray | None = None) -> float:
    """Median spacing between consecutive timestamps (within each asset), in seconds; 60 if none."""
    t = pd.to_datetime(pd.Series(ts)).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    if asset is not None:
        order = np.lexsort((t, asset))
        t, asset = t[order], np.asarray(asset)[order]
        same = asset[1:] == asset[:-1]
    else:
        t = np.sort(t)
        same = np.ones(max(len(t) - 1, 0), dtype=bool)
    d = np.diff(t)[same] / 1e9 if len(t) > 1 else np.array([])
    d = d[d > 0]
    return float(np.median(d)) if len(d) else 60.0


def numeric_sensors(frame: pd.DataFrame) -> list[str]:
    """Sensor columns of a frame: every numeric, non-boolean column but the time and asset."""
    return [
        c
        for c in frame.columns
        if c not in (TS, ASSET)
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]


def _segments(frame: pd.DataFrame) -> tuple[np.ndarray, list[np.ndarray]]:
    """Row order sorted by (asset, ts), and each asset's positions in that sorted order."""
    n = len(frame)
    ts = frame[TS].to_numpy() if TS in frame else np.arange(n)
    if ASSET not in frame:
        return np.argsort(ts, kind="stable"), [np.arange(n)]
    codes, _ = pd.factorize(frame[ASSET], sort=False)
    order = np.lexsort((ts, codes))
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return order, np.split(np.arange(n), bounds)


def _sorted_times(frame: pd.DataFrame, order: np.ndarray) -> np.ndarray | None:
    if TS not in frame:
        return None
    return pd.to_datetime(frame[TS]).to_numpy(dtype="datetime64[ns]")[order]


def _blocks(n: int, k: int) -> list[np.ndarray] | None:
    """``k`` contiguous held-out masks over ``n`` rows (None when too few rows to split)."""
    if n < 10 * k:
        return None
    edges = np.linspace(0, n, k + 1).astype(int)
    return [
        (np.arange(n) >= lo) & (np.arange(n) < hi)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]


class FeatureBuilder:
    """Learns scaling, residual models and feature spreads on training data; builds features.

    ``fit`` takes a frame with ``ts``, optional ``asset`` and numeric sensor columns (normally one
    asset; several are handled segment by segment with pooled statistics) and an optional mask of
    rows fit to learn from (e.g. machine running). ``transform`` returns a `FeatureSet`
    row-aligned with its input, in any row order.
    """

    def __init__(self, config: FeatureConfig | None = None, *, sensors: list[str] | None = None):
        self.config = config or FeatureConfig()
        self.sensors = sensors

    # -- fitting -------------------------------------------------------------------------------
    def fit(self, train: pd.DataFrame, mask: np.ndarray | None = None) -> FeatureBuilder:
        """Learn scaling, residual models and feature spreads from ``train`` (rows in ``mask``)."""
        self._fit(train, mask)
        return self

    def fit_transform(self, train: pd.DataFrame, mask: np.ndarray | None = None) -> FeatureSet:
        """`fit`, then the training features, computing them once."""
        feats, order, pieces = self._fit(train, mask)
        return self._finish(feats, order, pieces, train.index, _sorted_times(train, order))

    def _fit(
        self, train: pd.DataFrame, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
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
        order, pieces = _segments(train)
        self.window_ = short_training_window(
            cfg.window_samples(self.interval_seconds_), len(train) // len(pieces), cfg.min_window
        )
        self.families_ = set(cfg.families)
        if len(self.sensors_) < 2:
            self.families_ -= {"resid", "resid_mean"}  # nothing to predict a lone sensor from
        self.fft_sensors_ = self._pick_fft_sensors()
        mask = np.ones(len(train), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)

        raw = train[self.sensors_].to_numpy(dtype=np.float64)[order]
        self.value_limit_ = out_of_range_limits(raw)
        raw, _ = without_out_of_range(raw, self.value_limit_)
        mask = mask[order]
        usable = mask & np.isfinite(raw).all(axis=1)
        self.center_, self.scale_ = robust_center_scale(raw[usable] if usable.any() else raw)
        z = self._scaled(raw)
        zu = z[usable] if usable.any() else z
        lo, hi = zu.min(axis=0), zu.max(axis=0)
        self.square_lo_, self.square_hi_ = lo - 0.5 * (hi - lo), hi + 0.5 * (hi - lo)
        warm = np.zeros(len(train), dtype=bool)
        for p in pieces:
            warm[p[: self.warmup_samples]] = True
        learn = mask & ~warm
        if learn.sum() < 10:
            learn = mask if mask.sum() >= 10 else np.ones(len(train), dtype=bool)

        oof = None
        if self._has_residuals:
            design = np.concatenate([self._design(z[p]) for p in pieces])
            held_out = self._fit_residuals(design[learn], z[learn])
            if held_out is not None:
                oof = np.full(z.shape, np.nan)
                oof[learn] = held_out
        if "rough" in self.families_:
            d = np.abs(np.diff(z, axis=0))[learn[1:] & learn[:-1]]
            d = thin(d) if len(d) else np.abs(np.diff(z, axis=0))
            self.rough_clip_ = np.maximum(np.quantile(d, cfg.rough_clip_quantile, axis=0), 1e-6)
        feats, names, sensor_of = self._features_sorted(z, pieces, oof)
        sample = thin(feats[learn])
        self.feature_center_, self.feature_scale_ = robust_center_scale(sample)
        typical = np.nanmedian(np.abs((sample - self.feature_center_) / self.feature_scale_), 0)
        self.feature_typical_ = np.maximum(np.nan_to_num(typical, nan=1.0), TYPICAL_FLOOR)
        self.feature_names_, self.sensor_of_ = names, sensor_of
        return feats, order, pieces

    def _clipped(self, z: np.ndarray) -> np.ndarray:
        """z held inside its training range (widened by half its width on each side), for the
        squares of residual models.

        Squares fit curved couplings (the pump affinity laws) across the operating points
        training held, but a parabola fitted on a day of them explodes past them: an operating
        point beyond training read as a broken coupling on every sensor. Measured in
        bench/bench_real.py (demo plants trained on one day, then drifting by one robust
        spread): false alarms 8.9% -> 8.3%, faults found 35 -> 40 of 50; Tennessee Eastman and
        the 10-day windows of bench/bench_detectors.py unchanged (unwidened, TEP lost 0.004 of
        detection rate). A model saved before: +-20.
        """
        lo = getattr(self, "square_lo_", None)
        if lo is None:
            return np.clip(z, -20.0, 20.0)
        return np.clip(z, lo, self.square_hi_)

    @property
    def _has_residuals(self) -> bool:
        return bool(self.families_ & {"resid", "resid_mean"})

    @property
    def warmup_samples(self) -> int:
        """Rows at the start of a series (or after a stop) whose windows are still filling."""
        w = self.window_
        if self.fft_sensors_:
            w = max(w, self.config.fft_window)
        if self._has_residuals and self.config.residual_spans:
            w = max(w, int(2 * max(self.config.residual_spans) * self.window_))
        return w

    def _warmup(self) -> int:
        """Alias of `warmup_samples` (kept for callers written against the first version)."""
        return self.warmup_samples

    def _pick_fft_sensors(self) -> list[str]:
        if "fft" not in self.families_:
            return []
        if self.config.fft_sensors is not None:
            return [s for s in self.config.fft_sensors if s in self.sensors_]
        return [s for s in self.sensors_ if FAST_SENSOR_HINT.search(str(s))]

    def _scaled(self, raw: np.ndarray) -> np.ndarray:
        """Robust z of raw values; gaps and out-of-range readings (one 1e300 would swamp every
        rolling sum after it) are carried forward (then back, then the median)."""
        limit = getattr(self, "value_limit_", None)  # None: a model saved before the limits
        if limit is not None:
            raw, _ = without_out_of_range(raw, limit)
        z = (raw - self.center_) / self.scale_
        if np.isnan(z).any():
            z = pd.DataFrame(z).ffill().bfill().fillna(0.0).to_numpy()
        return z

    def _design(self, z: np.ndarray) -> np.ndarray:
        """Predictors for residual models: values, squares and exponential moving averages."""
        parts = [z]
        if self.config.residual_squares:
            parts.append(self._clipped(z) ** 2)
        parts += [ewma(z, span * self.window_) for span in self.config.residual_spans]
        return np.concatenate(parts, axis=1)

    def _fit_residuals(self, design: np.ndarray, z: np.ndarray) -> np.ndarray | None:
        """Ridge of each sensor on the other sensors' predictors; refit twice without rows whose
        residuals are outlying (faults in training must not teach the model).

        Each sensor's ridge strength is chosen by blocked cross-validation (`RIDGE_ALPHAS`):
        with many sensors and a short window a near-unregularised fit learns the noise, its
        in-sample residuals are far smaller than those of new data, and every new row looks
        broken. Returns the out-of-fold residuals of the rows given (each predicted by a model
        that never saw its block), which is what new data's residuals look like; None when the
        rows were too many to keep (thinned), where in-sample and out-of-sample agree anyway.
        """
        a, y = thin(design, 2 * STAT_ROWS), thin(z, 2 * STAT_ROWS)
        folds = _blocks(len(a), RIDGE_FOLDS)
        self.resid_alpha_ = self._choose_alphas(a, y, folds)
        keep = np.ones(len(a), dtype=bool)
        for refit in range(3):
            coef, intercept = self._ridge(a[keep], y[keep], self.resid_alpha_)
            resid = y - (a @ coef + intercept)
            med = np.median(resid[keep], axis=0)
            mad = 1.4826 * np.median(np.abs(resid[keep] - med), axis=0) + 1e-6
            if refit == 2:
                break
            keep = (np.abs(resid - med) / mad < 5.0).all(axis=1)
            if keep.sum() < max(20, len(a) // 2):
                keep = np.ones(len(a), dtype=bool)
        self.resid_coef_, self.resid_intercept_ = coef, intercept
        if len(a) != len(design) or folds is None:
            return None
        oof = np.empty_like(y)
        for held in folds:
            fit = keep & ~held
            c, b = self._ridge(a[fit], y[fit], self.resid_alpha_)
            oof[held] = y[held] - (a[held] @ c + b)
        return oof

    def _choose_alphas(
        self, a: np.ndarray, y: np.ndarray, folds: list[np.ndarray] | None
    ) -> np.ndarray:
        """Per target, the ridge strength with the least blocked cross-validated error."""
        if folds is None:
            return np.full(y.shape[1], min(self.config.residual_alphas))
        error = np.zeros((len(self.config.residual_alphas), y.shape[1]))
        for held in folds:
            for i, alpha in enumerate(self.config.residual_alphas):
                c, b = self._ridge(a[~held], y[~held], np.full(y.shape[1], alpha))
                error[i] += ((y[held] - (a[held] @ c + b)) ** 2).sum(axis=0)
        return np.asarray(self.config.residual_alphas)[np.argmin(error, axis=0)]

    def _ridge(
        self, a: np.ndarray, y: np.ndarray, alphas: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One ridge fit per target on a shared Gram matrix, leaving out the target's own columns
        (its value, square and averages), so no sensor explains itself. ``alphas`` per target,
        relative to the mean diagonal of the Gram matrix (so the scale of the data drops out)."""
        p = y.shape[1]
        mu_a, mu_y = a.mean(axis=0), y.mean(axis=0)
        ac, yc = a - mu_a, y - mu_y
        gram, cross = ac.T @ ac, ac.T @ yc
        unit = np.trace(gram) / max(len(gram), 1) + 1e-9
        coef = np.zeros((a.shape[1], p))
        own = np.arange(a.shape[1]) % p
        for j in range(p):  # one small solve per sensor, not per row
            cols = np.flatnonzero(own != j)
            g = gram[np.ix_(cols, cols)] + (alphas[j] * unit + 1e-9) * np.eye(len(cols))
            coef[cols, j] = np.linalg.solve(g, cross[cols, j])
        return coef, mu_y - mu_a @ coef

    def _residuals(self, z: np.ndarray) -> np.ndarray:
        """Each sensor minus its prediction from the other sensors (design blocks one by one,
        never the whole design matrix at once)."""
        p, coef = z.shape[1], self.resid_coef_
        pred = z @ coef[:p] + self.resid_intercept_
        k = p
        if self.config.residual_squares:
            pred += (self._clipped(z) ** 2) @ coef[k : k + p]
            k += p
        for span in self.config.residual_spans:
            pred += ewma(z, span * self.window_) @ coef[k : k + p]
            k += p
        return z - pred

    def residual_attribution(self, raw: np.ndarray, resid_z: np.ndarray) -> np.ndarray:
        """Reconstruction-based contribution of each sensor to the residuals of a few rows.

        A fault in one sensor also moves the residuals of the sensors it helps predict, sometimes
        more (in their own, smaller spreads) than its own. For each sensor k this asks how much
        of the rows' residual energy is explained by k alone being off: with ``g_k`` the change of
        all standardised residuals ``u`` per unit change of sensor k (the model's Jacobian at the
        row), the contribution is ``|g_k . u| / |g_k|``, in robust-z units. For a fault in one
        sensor that sensor ranks first (Cauchy-Schwarz), up to the linearisation. ``raw``: the
        rows' sensor values; ``resid_z``: their standardised ``resid`` features.
        """
        p = len(self.sensors_)
        if "resid" not in self.families_ or len(raw) == 0:
            return np.zeros((len(raw), p))
        z = self._scaled(np.asarray(raw, dtype=np.float64))
        u = np.asarray(resid_z, dtype=np.float64)
        names = [f"{s}__resid" for s in self.sensors_]
        spread = self.feature_scale_[[self.feature_names_.index(n) for n in names]]
        # Two hypotheses on how long the fault has lasted: a blip (moving averages have moved by
        # their first weight) or a lasting fault (they have caught up); each sensor keeps its best.
        best = np.zeros((len(z), p))
        for settled in (False, True):
            jac = self._residual_jacobian(z, settled) / spread[None, :, None]
            dot = np.abs(np.einsum("mjk,mj->mk", jac, u))
            best = np.maximum(best, dot / np.maximum(np.sqrt((jac * jac).sum(axis=1)), 1e-12))
        return best

    def _residual_jacobian(self, z: np.ndarray, settled: bool) -> np.ndarray:
        """d residual_j / d z_k at each row, as [row, j, k]."""
        p, coef = len(self.sensors_), self.resid_coef_
        deriv = np.broadcast_to(coef[:p], (len(z), p, p)).copy()  # d pred_j / d z_k at [m, k, j]
        k = p
        if self.config.residual_squares:
            c = self._clipped(z)
            slope = 2.0 * c * (c == z)
            deriv += slope[:, :, None] * coef[k : k + p][None]
            k += p
        for span in self.config.residual_spans:
            weight = 1.0 if settled else 2.0 / (span * self.window_ + 1.0)
            deriv += weight * coef[k : k + p][None]
            k += p
        return np.eye(p)[None] - np.transpose(deriv, (0, 2, 1))

    # -- transforming --------------------------------------------------------------------------
    def _features_sorted(
        self, z: np.ndarray, pieces: list[np.ndarray], oof: np.ndarray | None = None
    ) -> tuple[np.ndarray, list[str], dict[str, str]]:
        """Unstandardised features of time-sorted rows, computed segment by segment. ``oof``:
        out-of-fold training residuals (NaN where none) to use instead of in-sample ones, so
        training features, their spreads and the detector see residuals as new data has them."""
        names: list[str] = []
        sensor_of: dict[str, str] = {}
        out: np.ndarray | None = None
        for p in pieces:
            blocks = self._segment_features(z[p], None if oof is None else oof[p])
            if out is None:
                for kind, sensors, _ in blocks:
                    for s in sensors:
                        name = f"{s}__{kind}"
                        names.append(name)
                        sensor_of[name] = s
                out = np.empty((len(z), len(names)))
            col = 0
            for _, _, values in blocks:
                out[p, col : col + values.shape[1]] = values
                col += values.shape[1]
        assert out is not None
        return out, names, sensor_of

    def _segment_features(
        self, z: np.ndarray, oof: np.ndarray | None = None
    ) -> list[tuple[str, list[str], np.ndarray]]:
        """Feature blocks (kind, sensors, values[n, k]) of one asset's time-ordered rows."""
        fam, w, sensors = self.families_, self.window_, self.sensors_
        blocks: list[tuple[str, list[str], np.ndarray]] = []
        if "raw" in fam:
            blocks.append(("raw", sensors, z))
        blocks += [(kind, sensors, arr) for kind, arr in rolling_stats(z, w, fam).items()]
        if "diff" in fam or "rough" in fam:
            d = np.diff(z, axis=0, prepend=z[:1])
            if "diff" in fam:
                blocks.append(("diff", sensors, d))
            if "rough" in fam:
                clipped = np.minimum(np.abs(d), self.rough_clip_)
                mean_abs = rolling_sum(clipped, w) / window_counts(len(z), w)
                blocks.append(("rough", sensors, np.log(mean_abs + 1e-3 * self.rough_clip_)))
        for s in self.fft_sensors_:
            bands = fft_bands(z[:, sensors.index(s)], self.config.fft_window, self.config.fft_bands)
            blocks += [(f"fft{b}", [s], bands[:, b : b + 1]) for b in range(bands.shape[1])]
        if self._has_residuals:
            r = self._residuals(z)
            if oof is not None:
                r = np.where(np.isnan(oof), r, oof)
            if "resid" in fam:
                blocks.append(("resid", sensors, r))
            if "resid_mean" in fam:
                blocks.append(("resid_mean", sensors, rolling_sum(r, w) / window_counts(len(z), w)))
        return blocks

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
        feats, _, _ = self._features_sorted(self._scaled(raw), pieces)
        return self._finish(feats, order, pieces, frame.index, _sorted_times(frame, order))

    def _finish(
        self,
        feats: np.ndarray,
        order: np.ndarray,
        pieces: list[np.ndarray],
        index: pd.Index,
        ts: np.ndarray | None,
    ) -> FeatureSet:
        """Standardise time-sorted features (re-centred when configured) and put them back in
        the frame's row order."""
        feats -= self.feature_center_
        feats /= self.feature_scale_
        np.nan_to_num(feats, copy=False, nan=0.0, posinf=_Z_CLIP, neginf=-_Z_CLIP)
        if self.config.recenter is not None and ts is not None:
            window = pd.Timedelta(self.config.recenter).value
            rescale = rescaled(self)
            for p in pieces:
                feats[p] -= past_median_baseline(feats[p], ts[p], window)
                if rescale:
                    feats[p] /= past_spread_factor(feats[p], ts[p], window, self.feature_typical_)
        np.clip(feats, -_Z_CLIP, _Z_CLIP, out=feats)
        values = np.empty(feats.shape, dtype=np.float32)
        values[order] = feats
        frame = pd.DataFrame(values, columns=self.feature_names_, index=index, copy=False)
        return FeatureSet(frame, dict(self.sensor_of_))
