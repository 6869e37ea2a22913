"""The anomaly model: one features + detector pipeline per asset, scores comparable across assets.

``AnomalyModel.fit`` learns, per asset, how its sensors behave when running (stops, the hour after
a restart and the warm-up of rolling windows are kept out), fits the detector on those features,
and calibrates an alarm line on the detector's training scores, smoothed over a few samples: a
quantile with a safety margin (see `DEFAULT_QUANTILE`), and a second, never lower, line for the
settling time after an operating-point change (a setpoint step moves every coupled sensor, and the
slow ones lag). ``score`` maps scores so that 0 is the training median and 1 the alarm line on
every asset; stopped and restarting rows score 0 and never alarm. A pooled pipeline, fitted on a
slice of every asset, scores assets that were not in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.detect.detectors.base import Param
from core.detect.detectors.registry import BaseDetector, make_detector
from core.detect.features import FeatureBuilder, FeatureConfig, FeatureSet, numeric_sensors
from core.detect.machine_state import detect_machine_off, detect_transients, drive_sensors
from core.detect.operating_range import NEW_MODE_LINE, new_mode_rows, training_ranges
from core.detect.windows import lasting_score_lift
from core.errors import ConfigError, DataError
from core.types import ASSET, DEFAULT_ASSET, TS

DEFAULT_QUANTILE = 0.95
"""Default alarm line: the median of smoothed training scores plus ``DEFAULT_MARGIN`` times the
distance from the median to this quantile. Reading the tail at the 95th percentile keeps the line
put when up to 5% of training is faulty; the margin extrapolates it past the 99.9th percentile of
a clean exponential-like tail, leaving room for the optimism of in-sample scores. The rule is
shift- and scale-free, so it suits bounded scores (Isolation Forest) as well as unbounded ones."""
DEFAULT_MARGIN = 2.5
DEFAULT_SMOOTH = 3
"""Scores are averaged over this many samples (trailing) before the threshold applies."""
DEFAULT_STARTUP = "60min"
"""After a stop, rows are neither trained on nor alarmed for this long (at least the features'
warm-up): rolling windows still straddle the stop and temperatures are still settling."""
DEFAULT_SETTLING = "30min"
"""How long after an operating-point change the transient alarm line applies (about two feature
windows: long enough for coupled sensors to settle, short enough not to hide faults)."""
MIN_TRANSIENT_ROWS = 100
"""Settling rows training must hold to calibrate a separate alarm line for transients."""
MIN_TRAIN_ROWS = 50
"""Rows a pipeline must learn from (after warm-up and stops), and the fewest training rows."""
HELD_OUT_ROWS = 20_000
"""Training windows shorter than this (usable rows per asset) calibrate the alarm line on
held-out scores (see `AnomalyModel._held_out_scores`)."""
HELD_OUT_FOLDS = 5
POT_QUANTILE = 0.9
"""Peaks over threshold (`pot_line`): the tail is fitted above this quantile of the scores."""
POT_EXCEEDANCE = 0.0016
"""Share of (clean) rows above the POT line: as deep into the tail as the default rule reaches
on an exponential tail (median + 2.5 x (95th percentile - median): 1 row in 600)."""
MIN_POT_PEAKS = 10
POT_LINE = "peaks over threshold for bounded scores"
"""What `pot_line` bought Isolation Forest, against the default rule (bench/bench_short.py, 32
rig-like recordings trained on 400 rows: false alarms 1.3% -> 12.2%, recall 0.23 -> 0.68, F1
0.38 -> 0.75; the static robust z 33% and 0.69. bench/bench_real.py: Tennessee Eastman false
alarms 0.0% -> 1.0%, DR_18 0.52 -> 0.73; demo plants without drift 0.0% -> 0.8%, faults found
0 -> 8 of 50). Other detectors keep the default rule."""
POOLED = "__pooled__"
"""Key of the fallback pipeline for assets not seen in training."""
THRESHOLD_QUANTILE = Param("threshold_quantile", float, 0.5, 1.0, low_open=True, high_open=True)
_POOLED_ROWS_PER_ASSET = 20_000
_REFERENCE_ROWS = 5_000

Progress = Callable[[float, str], None]


@dataclass
class AssetPipeline:
    """What was learned for one asset: features, detector and the calibrated alarm line."""

    features: FeatureBuilder
    detector: BaseDetector
    center: float
    threshold: float
    train_rows: int
    transient_threshold: float | None = None
    """Alarm line while the process settles after an operating-point change (never below
    ``threshold``); None when training held too few such changes to calibrate it."""
    reference: pd.DataFrame | None = None
    """A thinned copy of the training sensors: what running and stopped look like."""
    range_lo: np.ndarray | None = None
    range_hi: np.ndarray | None = None
    drives: np.ndarray | None = None
    """Each sensor's widened training range (`operating_range.training_ranges`) while running,
    and which sensors drive the machine; None in a model saved before them (no row is then in a
    new operating mode)."""

    def normalise(self, smoothed: np.ndarray, transient: np.ndarray | None = None) -> np.ndarray:
        """Map smoothed detector scores so the training median is 0 and the alarm line is 1."""
        line = np.full(len(smoothed), self.threshold)
        if transient is not None and self.transient_threshold is not None:
            line[transient] = self.transient_threshold
        return np.clip((smoothed - self.center) / (line - self.center), 0.0, None)


@dataclass
class ScoreResult:
    """Scores row-aligned with the scored frame, plus what events and explanations need.

    ``frame`` has ``ts, asset, score, is_anomaly, is_off, new_mode`` in the input's row order;
    ``new_mode`` rows lie in an operating mode training never saw, where only a score past
    `NEW_MODE_LINE` alarms. ``score`` is normalised per asset so 0 is the training median and
    1.0 the alarm line: ``thresholds`` holds that line in score units (1.0 for every asset),
    ``raw_thresholds`` in the detector's own units. Rows where the machine is off, or restarting, score 0. ``sensor_deviation`` has one
    column per sensor: the largest |robust z| among that sensor's features, i.e. how far the
    sensor is from its training self (events rank their top sensors by it).
    """

    frame: pd.DataFrame
    thresholds: dict[str, float]
    sensor_deviation: pd.DataFrame
    interval_seconds: float = 60.0
    detector: str = "auto"
    sensors: list[str] = field(default_factory=list)
    raw_thresholds: dict[str, float] = field(default_factory=dict)


def prepare_frame(frame: pd.DataFrame, sensors: list[str] | None = None) -> pd.DataFrame:
    """Validate a readings frame: a parseable ``ts``, an ``asset`` (added if absent), sensors."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError("Expected a table of readings (a DataFrame).")
    if TS not in frame.columns:
        raise DataError(f"The data has no time column {TS!r}.")
    if len(frame) == 0:
        raise DataError("The data has no rows.")
    out = frame.copy()
    if not pd.api.types.is_datetime64_any_dtype(out[TS]):
        try:
            out[TS] = pd.to_datetime(out[TS])
        except (ValueError, TypeError) as exc:
            raise DataError(f"Column {TS!r} does not hold timestamps: {exc}") from exc
    if out[TS].isna().any():
        raise DataError(f"Column {TS!r} has {int(out[TS].isna().sum())} empty timestamps.")
    if ASSET not in out.columns:
        out[ASSET] = DEFAULT_ASSET
    out[ASSET] = out[ASSET].astype(str)
    if sensors is not None:
        missing = [s for s in sensors if s not in out.columns]
        if missing:
            raise DataError(f"Missing sensor columns: {', '.join(map(str, missing))}.")
        bad = [s for s in sensors if not pd.api.types.is_numeric_dtype(out[s])]
        if bad:
            raise DataError(f"Sensor columns must be numeric: {', '.join(map(str, bad))}.")
    return out


def smooth_scores(scores: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` samples (fewer at the start), ignoring NaN."""
    if window <= 1:
        return scores
    return pd.Series(scores).rolling(window, min_periods=1).mean().to_numpy()


class AnomalyModel:
    """Fit on normal(ish) history, score new data; one pipeline per asset plus a pooled one."""

    def __init__(
        self,
        detector: str = "auto",
        params: dict[str, Any] | None = None,
        threshold_quantile: float | None = None,
        feature_config: FeatureConfig | None = None,
        *,
        smooth: int = DEFAULT_SMOOTH,
        margin: float = DEFAULT_MARGIN,
        startup: str = DEFAULT_STARTUP,
        transients: bool = True,
        settling: str = DEFAULT_SETTLING,
        new_modes: bool = True,
        lift: bool = True,
    ):
        self.detector = detector
        self.params = dict(params or {})
        self.threshold_quantile = threshold_quantile
        self.feature_config = feature_config or FeatureConfig()
        self.smooth = smooth
        self.margin = margin
        self.startup = startup
        self.transients = transients
        self.settling = settling
        self.new_modes = new_modes
        self.lift = lift
        # Fail fast on a bad configuration, before any data is read.
        make_detector(detector, **self.params)
        if threshold_quantile is not None:
            THRESHOLD_QUANTILE.check(threshold_quantile)

    # -- fitting -------------------------------------------------------------------------------
    def fit(
        self,
        train: pd.DataFrame,
        progress: Progress | None = None,
        exclude: np.ndarray | None = None,
        taught: np.ndarray | None = None,
    ) -> AnomalyModel:
        """Learn one pipeline per asset of ``train`` (``ts``, optional ``asset``, sensors).

        ``exclude`` (per row of ``train``) marks rows not to learn from, e.g. confirmed
        anomalies: they stay in the frame so rolling features around them see contiguous time,
        but neither scaling, detector nor alarm line learns from them. ``taught`` marks rows
        from outside the training window that an analyst called normal (false alarms): always
        learnt from, never held out when the alarm line is drawn (see `_held_out_scores`).
        """
        frame = prepare_frame(train)
        skip = np.zeros(len(frame), dtype=bool) if exclude is None else np.asarray(exclude, bool)
        extra = np.zeros(len(frame), dtype=bool) if taught is None else np.asarray(taught, bool)
        for name, flags in (("exclude", skip), ("taught", extra)):
            if len(flags) != len(frame):
                raise DataError(f"{name} has {len(flags)} flags for {len(frame)} training rows.")
        self.sensors_ = numeric_sensors(frame)
        if not self.sensors_:
            raise DataError("The training data has no numeric sensor columns.")
        self.lifts_ = bool(self.lift)  # a model saved before lifts never lifts its scores
        groups = _asset_groups(frame)
        self.pipelines_: dict[str, AssetPipeline] = {}
        for i, (asset, rows) in enumerate(groups.items()):
            _report(progress, i / (len(groups) + 1), f"Fitting {asset}")
            self.pipelines_[asset] = self._fit_pipeline(frame.iloc[rows], skip[rows], extra[rows])
        if len(groups) == 1:
            self.pooled_ = next(iter(self.pipelines_.values()))
        else:
            _report(progress, len(groups) / (len(groups) + 1), "Fitting the pooled fallback")
            head = np.concatenate([r[:_POOLED_ROWS_PER_ASSET] for r in groups.values()])
            self.pooled_ = self._fit_pipeline(frame.iloc[head], skip[head], extra[head])
        first = next(iter(self.pipelines_.values()))
        self.interval_seconds_ = first.features.interval_seconds_
        _report(progress, 1.0, "Fitted")
        return self

    def _fit_pipeline(
        self, sub: pd.DataFrame, skip: np.ndarray, taught: np.ndarray
    ) -> AssetPipeline:
        """Features and detector for one asset's (or the pooled) training rows, not learning
        from ``skip`` rows; ``taught`` rows are never held out."""
        asset = sub[ASSET].iloc[0]
        if (~skip).sum() < MIN_TRAIN_ROWS:
            raise DataError(
                f"Asset {asset!r} has {int((~skip).sum())} training rows; at least "
                f"{MIN_TRAIN_ROWS} needed. Choose a longer training window."
            )
        off = detect_machine_off(sub, self.sensors_)
        if off.mean() > 0.9:
            off = np.zeros(len(sub), dtype=bool)  # mostly "off" means the heuristic misfired
        kept = sub[self.sensors_][~skip]
        reference = kept.iloc[:: max(1, len(kept) // _REFERENCE_ROWS)]
        features = FeatureBuilder(self.feature_config, sensors=self.sensors_)
        X = features.fit_transform(sub, mask=~off & ~skip).values.to_numpy()
        guard = _restart_guard(sub, off, self._guard_samples(features))
        usable = ~off & ~_warmup_mask(sub, features) & ~guard & ~skip
        if usable.sum() < MIN_TRAIN_ROWS:  # a restart late in training: learn from its guard
            usable = ~off & ~_warmup_mask(sub, features) & ~skip
        if usable.sum() < MIN_TRAIN_ROWS:
            raise DataError(
                f"Asset {asset!r}: of its {len(sub)} training rows only {int(usable.sum())} can "
                f"be learnt from once stopped rows and the first {features.warmup_samples} (the "
                "rolling features filling up) are left out; at least "
                f"{MIN_TRAIN_ROWS} needed. Choose a longer training window."
            )
        detector = make_detector(self.detector, **self.params).fit(X[usable])
        raw = np.full(len(sub), np.nan)
        raw[usable] = self._held_out_scores(X, usable, sub, detector, taught[usable])
        # The line reads the whole window, skipped rows scored too: the quantile rule is built
        # to shrug off a few % of anomalies, so removing labelled ones leaves the alarm load
        # alone (measured: calibrating on the cleaned rows alone tripled one asset's false
        # alarms); labels move the line through threshold tuning instead.
        calibrate = usable | (~off & ~_warmup_mask(sub, features) & ~guard & skip)
        if (calibrate & skip).any():
            raw[calibrate & skip] = detector.score(X[calibrate & skip])
        smoothed = _smooth_in_time(raw, sub, self.smooth)
        med = float(np.nanmedian(smoothed[usable]))
        bounded = detector.bounded
        threshold = self._line(smoothed[calibrate], med, bounded)
        settling = calibrate & self._transients(sub, features)
        transient_threshold = None
        if self.transients and settling.sum() >= MIN_TRANSIENT_ROWS:
            transient_threshold = max(threshold, self._line(smoothed[settling], med, bounded))
        running = sub[self.sensors_].to_numpy(dtype=np.float64)[~off & ~skip]
        lo, hi = training_ranges(running)
        drives = np.isin(self.sensors_, drive_sensors(sub, self.sensors_))
        return AssetPipeline(
            features,
            detector,
            med,
            threshold,
            int(usable.sum()),
            transient_threshold,
            reference,
            lo,
            hi,
            drives,
        )

    def _held_out_scores(
        self,
        X: np.ndarray,
        usable: np.ndarray,
        sub: pd.DataFrame,
        detector: BaseDetector,
        taught: np.ndarray,
    ) -> np.ndarray:
        """Training scores for the alarm line, for the ``usable`` rows.

        On a short training window a detector's scores on its own training rows are optimistic:
        it has seen every one of them, and nothing of the operating points and slow changes the
        next days bring, so a line drawn on them sits under new normal data (on Tennessee
        Eastman's 500 training rows it flagged most new normal rows). Below `HELD_OUT_ROWS`
        rows each row is scored instead by a detector fitted without its contiguous time block
        (blocked cross-validation), which is what the line will face. Longer windows use the
        in-sample scores, where the two agree and the refits would only cost time.

        ``taught`` rows (per usable row) are in every fold's fit and scored in-sample: an
        analyst said they are normal, and held out, each block of them is a mode no other block
        knows, whose scores lifted the line 60-fold and silenced real faults (measured on an
        aged demo plant: 15 faults found became 6).
        """
        n = int(usable.sum())
        if n >= HELD_OUT_ROWS or n < 10 * HELD_OUT_FOLDS:
            return detector.training_scores(X[usable])
        Xu = X[usable]
        by_time = np.argsort(sub[TS].to_numpy()[usable], kind="stable")
        out = np.empty(n)
        if taught.any():
            out[taught] = detector.score(Xu[taught])
        window = by_time[~taught[by_time]]  # held out in time order, as it will be met
        if len(window) < 10 * HELD_OUT_FOLDS:
            out[window] = detector.score(Xu[window])
            return out
        for block in np.array_split(window, HELD_OUT_FOLDS):
            rest = by_time[~np.isin(by_time, block)]
            refit = make_detector(self.detector, **self.params).fit(Xu[rest])
            out[block] = refit.score(Xu[block])
        return out

    def _line(self, smoothed: np.ndarray, med: float, bounded: bool = False) -> float:
        """The alarm line in raw detector units (see DEFAULT_QUANTILE; `pot_line` for a
        detector whose scores are ``bounded``)."""
        pot = pot_line(smoothed) if bounded and self.threshold_quantile is None else None
        if pot is not None and pot > med:
            line = pot
        elif self.threshold_quantile is None:
            line = med + self.margin * (float(np.nanquantile(smoothed, DEFAULT_QUANTILE)) - med)
        else:
            line = float(np.nanquantile(smoothed, self.threshold_quantile))
        if not line > med:
            line = med + (float(np.nanstd(smoothed)) or 1.0)
        return line

    def _transients(self, sub: pd.DataFrame, features: FeatureBuilder) -> np.ndarray:
        """Rows settling after an operating-point change (setpoint step), in ``sub``'s order."""
        if not self.transients:
            return np.zeros(len(sub), dtype=bool)
        order = np.argsort(sub[TS].to_numpy(), kind="stable")
        values = sub[self.sensors_].to_numpy(dtype=np.float64)[order]
        hold = self._samples(self.settling, features)
        sorted_mask = detect_transients(
            values, hold, center=features.center_, scale=1.349 * features.scale_
        )
        mask = np.zeros(len(sub), dtype=bool)
        mask[order] = sorted_mask
        return mask

    def _new_mode(self, sub: pd.DataFrame, pipe: AssetPipeline) -> np.ndarray:
        """Rows of ``sub`` (its order) in an operating mode the asset's training never saw.

        The model can hardly judge such rows, and scored like any other they flooded whole runs
        (demo plants whose first day missed a speed setpoint: see `operating_range`), so only
        gross departures alarm there (`NEW_MODE_LINE`); the stretches are reported as a new
        operating mode instead (`new_mode` column, `coverage`). Off with ``new_modes=False``,
        and for a model saved before the ranges.
        """
        if not getattr(self, "new_modes", True) or pipe.range_lo is None or pipe.drives is None:
            return np.zeros(len(sub), dtype=bool)
        order = np.argsort(sub[TS].to_numpy(), kind="stable")
        values = sub[self.sensors_].to_numpy(dtype=np.float64)[order]
        settle = self._guard_samples(pipe.features)
        mask = np.zeros(len(sub), dtype=bool)
        mask[order] = new_mode_rows(values, pipe.range_lo, pipe.range_hi, pipe.drives, settle)
        return mask

    def _lift(self, sub: pd.DataFrame, score: np.ndarray) -> np.ndarray:
        """Per row of one asset, what its score is divided by: the lasting level of the scores
        before it (`windows.lasting_score_lift`); 1 without re-centring or in a model saved
        before lifts."""
        window = getattr(self.feature_config, "recenter", None)
        if not getattr(self, "lifts_", False) or window is None or len(score) == 0:
            return np.ones(len(score))
        ts = pd.to_datetime(sub[TS]).to_numpy(dtype="datetime64[ns]")
        order = np.argsort(ts, kind="stable")
        lift = np.empty(len(score))
        lift[order] = lasting_score_lift(score[order], ts[order], pd.Timedelta(window).value)
        return lift

    def _guard_samples(self, features: FeatureBuilder) -> int:
        return max(features.warmup_samples, self._samples(self.startup, features))

    @staticmethod
    def _samples(duration: str, features: FeatureBuilder) -> int:
        seconds = pd.Timedelta(duration).total_seconds()
        return max(1, int(round(seconds / features.interval_seconds_)))

    # -- scoring -------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "pipelines_"):
            raise RuntimeError("AnomalyModel is not fitted yet; call fit() first.")

    def pipeline_for(self, asset: str) -> AssetPipeline:
        """The asset's own pipeline, or the pooled fallback for an asset unseen in training."""
        self._check_fitted()
        return self.pipelines_.get(str(asset), self.pooled_)

    def transform(self, frame: pd.DataFrame) -> FeatureSet:
        """Features of ``frame`` (row-aligned) from each asset's pipeline, for explainers."""
        self._check_fitted()
        data = prepare_frame(frame, self.sensors_)
        parts, sensor_of = [], {}
        for asset, rows in _asset_groups(data).items():
            fs = self.pipeline_for(asset).features.transform(data.iloc[rows])
            parts.append(fs.values)
            sensor_of.update(fs.sensor_of)
        values = pd.concat(parts).reindex(data.index) if len(parts) > 1 else parts[0]
        return FeatureSet(values, sensor_of)

    def score(self, data: pd.DataFrame, progress: Progress | None = None) -> ScoreResult:
        """Score every row of ``data``; the result keeps ``data``'s row order."""
        self._check_fitted()
        frame = prepare_frame(data, self.sensors_)
        n = len(frame)
        score = np.zeros(n)
        is_off = np.zeros(n, dtype=bool)
        new_mode = np.zeros(n, dtype=bool)
        lift = np.ones(n)
        deviation = np.zeros((n, len(self.sensors_)), dtype=np.float32)
        thresholds: dict[str, float] = {}
        raw_thresholds: dict[str, float] = {}
        groups = _asset_groups(frame)
        for i, (asset, rows) in enumerate(groups.items()):
            _report(progress, i / len(groups), f"Scoring {asset}")
            pipe = self.pipeline_for(asset)
            sub = frame.iloc[rows]
            fs = pipe.features.transform(sub)
            X = fs.values.to_numpy()
            raw = pipe.detector.score(X)
            settling = self._transients(sub, pipe.features)
            s = pipe.normalise(_smooth_in_time(raw, sub, self.smooth), settling)
            off = detect_machine_off(sub, self.sensors_, reference=pipe.reference)
            quiet = off | _restart_guard(sub, off, self._guard_samples(pipe.features))
            s[quiet | _warmup_mask(sub, pipe.features)] = 0.0
            lift[rows] = self._lift(sub, s)
            s /= lift[rows]
            score[rows], is_off[rows] = s, off
            new_mode[rows] = self._new_mode(sub, pipe) & ~off
            dev = _sensor_deviation(X, list(fs.values.columns), fs.sensor_of, self)
            _attribute_residuals(dev, sub, X, s > 1.0, pipe.features)
            deviation[rows] = dev
            thresholds[asset] = 1.0
            raw_thresholds[asset] = pipe.threshold
        _report(progress, 1.0, "Scored")
        out = pd.DataFrame(
            {
                TS: frame[TS].to_numpy(),
                ASSET: frame[ASSET].to_numpy(),
                "score": score,
                "is_anomaly": (score > np.where(new_mode, NEW_MODE_LINE, 1.0)) & ~is_off,
                "is_off": is_off,
                "new_mode": new_mode,
                "lift": lift,
            }
        )
        dev = pd.DataFrame(deviation, columns=self.sensors_)
        return ScoreResult(
            out,
            thresholds,
            dev,
            self.interval_seconds_,
            self.detector,
            list(self.sensors_),
            raw_thresholds,
        )


def pot_line(scores: np.ndarray) -> float | None:
    """Alarm line by peaks over threshold: a generalised Pareto fitted to the scores above their
    `POT_QUANTILE`, read at `POT_EXCEEDANCE`; None when the tail is too thin to fit.

    For bounded scores (Isolation Forest). The default rule extrapolates the 95th percentile as
    if the tail were exponential, which suits unbounded scores, but a bounded score's tail ends
    (a negative shape): on 400-row training windows the line sat past every held-out score and
    past most faults (`POT_LINE` has the figures). The shape is held in [-0.5, 0]: never a
    heavier tail than exponential (a short window's largest scores are too few to say so), and
    not past -0.5, where the fit stops being regular.
    """
    from scipy import stats  # lazy: scipy.stats costs ~0.3 s to import

    x = np.asarray(scores, dtype=np.float64)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return None
    u = float(np.quantile(x, POT_QUANTILE))
    y = x[x > u] - u
    if len(y) < MIN_POT_PEAKS or not np.ptp(y) > 0:
        return None
    shape, _, scale = stats.genpareto.fit(y, floc=0)
    if not -0.5 <= shape <= 0.0:
        shape = float(np.clip(shape, -0.5, 0.0))
        _, _, scale = stats.genpareto.fit(y, fc=shape, floc=0)
    tail = POT_EXCEEDANCE / (len(y) / len(x))
    return u + float(stats.genpareto.ppf(1.0 - tail, shape, scale=scale))


def _report(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(float(min(max(fraction, 0.0), 1.0)), message)


def _asset_groups(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row positions of each asset, in order of first appearance."""
    codes, uniques = pd.factorize(frame[ASSET], sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    return {str(u): rows for u, rows in zip(uniques, np.split(order, bounds), strict=True)}


def _smooth_in_time(raw: np.ndarray, sub: pd.DataFrame, window: int) -> np.ndarray:
    """Smooth scores along time order (rows may come unsorted), returned in row order."""
    ts = sub[TS].to_numpy()
    order = np.argsort(ts, kind="stable")
    out = np.empty_like(raw, dtype=np.float64)
    out[order] = smooth_scores(raw[order], window)
    return out


def _warmup_mask(sub: pd.DataFrame, features: FeatureBuilder) -> np.ndarray:
    """The first rows in time order, whose rolling windows are still filling up."""
    order = np.argsort(sub[TS].to_numpy(), kind="stable")
    mask = np.zeros(len(sub), dtype=bool)
    mask[order[: features.warmup_samples]] = True
    return mask


def _restart_guard(sub: pd.DataFrame, off: np.ndarray, samples: int) -> np.ndarray:
    """The ``samples`` rows after each stop (kept out of training and alarms)."""
    order = np.argsort(sub[TS].to_numpy(), kind="stable")
    off_sorted = off[order]
    idx = np.arange(len(off_sorted))
    last_off = np.maximum.accumulate(np.where(off_sorted, idx, -1))
    guard = (last_off >= 0) & ~off_sorted & (idx - last_off <= samples)
    out = np.zeros(len(off), dtype=bool)
    out[order] = guard
    return out


def _sensor_deviation(
    X: np.ndarray, names: list[str], sensor_of: dict[str, str], model: AnomalyModel
) -> np.ndarray:
    """Per sensor, the largest |robust z| among its features (features are robust z already)."""
    out = np.zeros((len(X), len(model.sensors_)), dtype=np.float32)
    index = {s: i for i, s in enumerate(model.sensors_)}
    cols: dict[int, list[int]] = {}
    for j, name in enumerate(names):
        cols.setdefault(index[sensor_of[name]], []).append(j)
    for i, js in cols.items():
        out[:, i] = np.abs(X[:, js]).max(axis=1)
    return out


def _attribute_residuals(
    dev: np.ndarray, sub: pd.DataFrame, X: np.ndarray, flagged: np.ndarray, fb: FeatureBuilder
) -> None:
    """On flagged rows, judge residuals by reconstruction, not by each sensor's own residual.

    A faulty sensor leaks into the residuals of the sensors it helps predict; reconstruction-based
    contributions (`FeatureBuilder.residual_attribution`) undo that leak, so events name the
    sensor that went wrong. Done for flagged rows only: it costs sensors² work per row.
    """
    if not flagged.any() or "resid" not in fb.families_:
        return
    rows = np.flatnonzero(flagged)
    resid_cols = [fb.feature_names_.index(f"{s}__resid") for s in fb.sensors_]
    other_cols = {
        i: [
            j
            for j, n in enumerate(fb.feature_names_)
            if fb.sensor_of_[n] == s and j not in resid_cols
        ]
        for i, s in enumerate(fb.sensors_)
    }
    raw = sub[fb.sensors_].to_numpy(dtype=np.float64)[rows]
    contribution = fb.residual_attribution(raw, X[np.ix_(rows, resid_cols)])
    for i, cols in other_cols.items():
        own = np.abs(X[np.ix_(rows, cols)]).max(axis=1) if cols else 0.0
        dev[rows, i] = np.maximum(own, contribution[:, i])


def check_threshold_quantile(value: float | None) -> None:
    """ConfigError unless ``value`` is None or in (0.5, 1)."""
    if value is not None:
        THRESHOLD_QUANTILE.check(value)


__all__ = [
    "AnomalyModel",
    "AssetPipeline",
    "ConfigError",
    "ScoreResult",
    "check_threshold_quantile",
    "prepare_frame",
]
