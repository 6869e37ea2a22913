"""Vectorised window arithmetic for features: rolling sums and statistics, EWMA, spectra.

Pure functions over time-ordered (rows x columns) arrays; no Python loops over rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.types import out_of_range_limit

EPS = 1e-9
STAT_ROWS = 100_000
"""Robust statistics (medians, quantiles) are taken on at most this many evenly spaced rows."""


def thin(a: np.ndarray, limit: int = STAT_ROWS) -> np.ndarray:
    """Evenly spaced rows of ``a``, at most ``limit``: robust statistics do not need them all."""
    return a if len(a) <= limit else a[:: int(np.ceil(len(a) / limit))]


def out_of_range_limits(a: np.ndarray) -> np.ndarray:
    """Per column, the |value| beyond which a reading is out of range (`out_of_range_limit` of
    the larger of |10th| and |90th| percentile of its finite values)."""
    finite = thin(np.where(np.isfinite(a), a, np.nan))
    typical = []
    for column in finite.T:
        column = column[~np.isnan(column)]
        q = np.quantile(column, [0.1, 0.9], method="lower") if len(column) else None
        typical.append(None if q is None else float(np.abs(q).max()))
    return np.array([out_of_range_limit(t) for t in typical])


def without_out_of_range(a: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` with out-of-range readings (inf included) as NaN, and where they were."""
    bad = ~np.isnan(a) & ~(np.abs(a) <= limits)
    return (np.where(bad, np.nan, a) if bad.any() else a), bad


def robust_center_scale(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column medians and robust spreads (IQR/1.349, falling back to std, then 1)."""
    a = thin(a)
    q25, med, q75 = np.nanpercentile(a, [25, 50, 75], axis=0)
    tiny = EPS * (1 + np.abs(med))
    scale = (q75 - q25) / 1.349
    scale = np.where(scale > tiny, scale, np.nanstd(a, axis=0))
    scale = np.where(scale > tiny, scale, 1.0)
    return np.nan_to_num(med), scale


def window_counts(n: int, w: int) -> np.ndarray:
    """Samples inside a trailing window of ``w`` at each row (fewer at the start)."""
    return np.minimum(np.arange(1, n + 1), w).astype(np.float64)[:, None]


def rolling_sum(a: np.ndarray, w: int) -> np.ndarray:
    """Trailing sum over ``w`` rows (fewer at the start), via cumulative sums."""
    c = np.cumsum(a, axis=0, dtype=np.float64)
    out = np.empty_like(c)
    out[:w] = c[:w]
    np.subtract(c[w:], c[:-w], out=out[w:])
    return out


def ewma(a: np.ndarray, span: float) -> np.ndarray:
    """Exponential moving average down the rows, started at the first row (pandas adjust=False)."""
    from scipy.signal import lfilter  # lazy: scipy.signal is slow to import

    alpha = 2.0 / (span + 1.0)
    zi = (1.0 - alpha) * a[:1]
    return lfilter([alpha], [1.0, alpha - 1.0], a, axis=0, zi=zi)[0]


def rolling_stats(z: np.ndarray, w: int, families: set[str]) -> dict[str, np.ndarray]:
    """Trailing mean, log-std, min, max and least-squares slope of each column."""
    n = len(z)
    out: dict[str, np.ndarray] = {}
    counts = window_counts(n, w)
    s1 = rolling_sum(z, w)
    if "mean" in families:
        out["mean"] = s1 / counts
    if "std" in families:
        var = np.clip(rolling_sum(z * z, w) - s1 * s1 / counts, 0.0, None)
        out["std"] = np.log(np.sqrt(var / np.maximum(counts - 1, 1)) + 1e-3)
    if "min" in families or "max" in families:
        roll = pd.DataFrame(z).rolling(w, min_periods=1)
        if "min" in families:
            out["min"] = roll.min().to_numpy()
        if "max" in families:
            out["max"] = roll.max().to_numpy()
    if "slope" in families:
        j = np.arange(n, dtype=np.float64)[:, None]
        start = j - counts + 1
        sjx = rolling_sum(z * j, w) - start * s1  # sum of (position in window) * x
        denom = np.maximum(counts * (counts * counts - 1) / 12.0, EPS)
        slope = (sjx - (counts - 1) / 2.0 * s1) / denom
        slope[counts[:, 0] < 2] = 0.0
        out["slope"] = slope
    return out


def fft_bands(x: np.ndarray, length: int, bands: int) -> np.ndarray:
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


RECENTER_BUCKETS = 48
"""The re-centring window is split into this many time buckets."""


def past_median_baseline(x: np.ndarray, ts: np.ndarray, window_ns: int) -> np.ndarray:
    """Per row of time-ordered ``x``: the median, per column, of the bucket medians over the
    ``window_ns`` of time before the row's bucket (`RECENTER_BUCKETS` buckets aligned on the
    clock). Buckets with no rows count as 0, the training centre, so the baseline only moves
    once most of the window has moved: a change that lasts less than half the window (any
    fault the detector should see) barely shifts it; slow drift is followed with a lag of about
    half the window. Aligned on the clock, it is the same for a stretch with a window of
    history before it as for the whole series (explanations rebuild it that way).
    """
    return _past_bucket_median(x, ts, window_ns, np.zeros(x.shape[1:]))


SPREAD_KNEE = 4.0
"""Features are scaled back only past this many times their training width: operating points a
short training window missed widen features up to about this much without false alarms, and
faults are found on those features. Measured in bench/bench_real.py (demo plants trained on one
day, drifting by one robust spread, seeds 101-103): false alarms 5.3% without, 0.4% with a knee
of 1 (faults found 40 -> 28 of 50), 0.8% with 2 (38), 2.5% with 3 (40), 3.8% with 4 (40), 4.7% with
5 (40); on seeds 104-108, 14.6% without (67 of 83), 6.0% with 3 (57), 7.8% with 4 (62), where
raising the line alone to 7.8% finds about 59. Without drift (seeds 101-108): 3.2% (106 of 133)
without, 2.8% with 4 (105), 2.6% with 3 (104)."""


def past_spread_factor(
    dev: np.ndarray, ts: np.ndarray, window_ns: int, typical: np.ndarray
) -> np.ndarray:
    """Per row of time-ordered re-centred features ``dev``: how far beyond `SPREAD_KNEE` times
    their training width (``typical``: each feature's median absolute value there) they have
    been over the window before the row's bucket, never below 1. Buckets with no rows count as
    training.

    Re-centring takes a drift's offset out, but not what drift does inside nonlinear features:
    a residual model's squares turn a sensor drifted by a spread into an error that changes
    with the operating point. Dividing by this factor lets such lasting widening become the
    new normal as the offset does, while a fault shorter than half the window barely moves it.
    """
    typical = np.maximum(np.asarray(typical, dtype=np.float64), 1e-9)
    past = _past_bucket_median(np.abs(dev), ts, window_ns, typical)
    return np.maximum(past / (SPREAD_KNEE * typical), 1.0)


def _past_bucket_median(
    x: np.ndarray, ts: np.ndarray, window_ns: int, empty: np.ndarray
) -> np.ndarray:
    """The rolling median of clock-aligned bucket medians over the window before each row's
    bucket; buckets without rows hold ``empty``."""
    n = len(x)
    if n == 0:
        return np.zeros_like(x)
    width = max(1, window_ns // RECENTER_BUCKETS)
    bucket = ts.astype("datetime64[ns]").astype(np.int64) // width
    first, last = int(bucket[0]), int(bucket[-1])
    k = RECENTER_BUCKETS
    medians = np.tile(empty, (last - first + 1 + k, 1)).astype(np.float64)
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    for lo, hi in zip(starts, np.r_[starts[1:], n], strict=True):
        medians[int(bucket[lo]) - first + k] = np.median(x[lo:hi], axis=0)
    past = pd.DataFrame(medians).rolling(k, min_periods=k).median().shift(1).to_numpy()
    return past[bucket - first + k]


LASTING_SCORE = 0.5
"""Scores (alarm line 1, training median 0) whose median over the re-centring window before a row
lies above this raise that row's line with them (`lasting_score_lift`). Measured in
bench/bench_real.py (demo plants trained on one day, drifting by one robust spread, seeds
104-108, with `SPREAD_KNEE` 4): false alarms 7.8% without, 4.5% with 0.5 (faults found 62 of 83
both), 5.3% with 0.6; raising the line alone to 4.5% finds about 50."""


def lasting_score_lift(score: np.ndarray, ts: np.ndarray, window_ns: int) -> np.ndarray:
    """Per row of time-ordered scores: how far the median score of the window before the row's
    bucket lies above `LASTING_SCORE`, never below 1; buckets with no rows count as 0.

    When an asset's scores have run at half the line for days, the model no longer fits the
    plant as it now runs (operating points a short training window missed, ageing the features
    cannot follow): every row alarms a little. Dividing scores by the lift keeps alarms for
    what stands out from those days, as re-centring does for features; a fault shorter than
    half the window barely moves it."""
    past = _past_bucket_median(np.asarray(score, np.float64)[:, None], ts, window_ns, np.zeros(1))
    return np.maximum(past[:, 0] / LASTING_SCORE, 1.0)
