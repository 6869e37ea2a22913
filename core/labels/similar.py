"""Find look-alikes of a labelled window anywhere in the dataset (every asset).

The distance is the z-normalised Euclidean distance over the involved sensors, summed over sensors
(d^2 = sum_k d_k^2), so shape matters and level and scale do not. Each sensor's distance profile
comes from MASS: sliding dot products by FFT convolution and sliding means/stds by cumulative
sums, so the cost is O(n log n) per sensor with no Python loop over positions. Trivial matches
(windows overlapping the query) and matches overlapping a better match are excluded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from scipy.signal import fftconvolve

from core import store
from core.errors import DataError
from core.types import ASSET, TS

MIN_WINDOW = 8
"""Shorter queries (a one-sample spike) are widened to this many samples around their centre."""
DEFAULT_MATCHES = 8


@dataclass(frozen=True)
class SimilarResult:
    """The query window and its best non-overlapping matches, best first.

    `matches` has rank, asset, start, end, distance, correlation (mean Pearson correlation with
    the query over the sensors, 1 = same shape), label_id and status (of a label overlapping it).
    `query` and `windows` hold the z-normalised samples (length x sensors) for thumbnails.
    """

    asset: str
    start: datetime
    end: datetime
    sensors: list[str]
    length: int
    matches: pd.DataFrame
    query: np.ndarray
    windows: list[np.ndarray]
    n_windows: int
    elapsed_s: float


def sliding_mean_std(x: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std of every length-m window of each column of `x` (n, k)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)  # centring keeps the cumulative sums precise
    zero = np.zeros((1, x.shape[1]))
    c1 = np.concatenate([zero, np.cumsum(x, axis=0)])
    c2 = np.concatenate([zero, np.cumsum(x * x, axis=0)])
    mean = (c1[m:] - c1[:-m]) / m
    var = (c2[m:] - c2[:-m]) / m - mean * mean
    return mean, np.sqrt(np.maximum(var, 0.0))


def _constant_tol(x: np.ndarray) -> np.ndarray:
    """Per-column std below which a window counts as constant (a stuck sensor)."""
    scale = np.nanstd(x, axis=0)
    return np.where(scale > 0, scale * 1e-6, 1e-12)


def distance_profile(query: np.ndarray, series: np.ndarray) -> np.ndarray:
    """Multivariate z-normalised distance of `query` (m, k) to every window of `series` (n, k).

    Returns n - m + 1 distances; windows holding a NaN get +inf. A constant window against a
    constant query is at distance 0, against a varying one at sqrt(m) per sensor (as in stumpy).
    """
    query = np.asarray(query, dtype=np.float64)
    series = np.asarray(series, dtype=np.float64)
    m, n = len(query), len(series)
    if n < m:
        return np.full(0, np.inf)
    nan = np.isnan(series)
    filled = np.where(nan, np.nanmean(series, axis=0, keepdims=True), series)
    filled = np.nan_to_num(filled)
    tol = _constant_tol(filled)
    q = query - query.mean(axis=0, keepdims=True)
    q_std = q.std(axis=0)
    t = filled - filled.mean(axis=0, keepdims=True)
    _, t_std = sliding_mean_std(t, m)
    dots = fftconvolve(t, q[::-1], mode="valid", axes=0)  # (n - m + 1, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = dots / (m * q_std * t_std)  # q is centred, so dots = sum q (t - mean t)
    d2 = np.clip(2.0 * m * (1.0 - corr), 0.0, 4.0 * m)
    q_flat, t_flat = q_std <= tol, t_std <= tol
    d2 = np.where(q_flat & t_flat, 0.0, np.where(q_flat | t_flat, float(m), d2))
    dist = np.sqrt(d2.sum(axis=1))
    nan_count = np.concatenate([[0], np.cumsum(nan.any(axis=1))])
    dist[(nan_count[m:] - nan_count[:-m]) > 0] = np.inf
    return dist


def pick_matches(
    profile: np.ndarray, k: int, exclusion: int, banned: np.ndarray | None = None
) -> np.ndarray:
    """Indices of the `k` best windows, none within `exclusion` of a better one or banned."""
    work = profile.astype(np.float64, copy=True)
    if banned is not None:
        work[banned] = np.inf
    picked = []
    for _ in range(k):  # a loop over matches, not positions
        i = int(np.argmin(work)) if len(work) else 0
        if not len(work) or not np.isfinite(work[i]):
            break
        picked.append(i)
        work[max(0, i - exclusion + 1) : i + exclusion] = np.inf
    return np.array(picked, dtype=np.int64)


def _znorm(window: np.ndarray) -> np.ndarray:
    std = window.std(axis=0)
    return (window - window.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _query_rows(ts: np.ndarray, start: Any, end: Any) -> tuple[int, int]:
    """First row and length of the query inside one asset's timestamps (widened if short)."""
    lo = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(start), "us"), side="left"))
    hi = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(end), "us"), side="right"))
    m = hi - lo
    if m < MIN_WINDOW:
        centre = (lo + hi) // 2
        lo = max(0, min(centre - MIN_WINDOW // 2, len(ts) - MIN_WINDOW))
        m = min(MIN_WINDOW, len(ts))
    return lo, m


def find_similar(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    asset: str,
    start: datetime,
    end: datetime,
    sensors: list[str],
    k: int = DEFAULT_MATCHES,
    skip_modes: bool = True,
) -> SimilarResult:
    """The `k` windows of the dataset (all assets) most like [start, end] of `asset`.

    `skip_modes` leaves out windows touching an operating-mode mark (machine off, ...).
    """
    from core.detect.modes import mode_mask
    from core.labels.history import STATUS_TEXT, UNREVIEWED, current_labels, match_labels

    started = time.perf_counter()
    info = store.get_dataset(con, dataset_id)
    if not sensors:
        raise DataError("Choose at least one sensor to compare.")
    frame = store.read_readings(con, info, sensors=sensors)
    assets = frame[ASSET].to_numpy(str)
    ts = frame[TS].to_numpy("datetime64[us]")
    values = frame[list(sensors)].to_numpy(np.float64)
    names, first = np.unique(assets, return_index=True)  # rows come ordered by asset, ts
    order = np.argsort(first)
    names, first = names[order], first[order]
    bounds = dict(zip(names, zip(first, np.r_[first[1:], len(frame)], strict=True), strict=True))
    if asset not in bounds:
        raise DataError(f"Dataset {info.name!r} has no readings for asset {asset!r}.")
    a0, a1 = bounds[asset]
    q_lo, m = _query_rows(ts[a0:a1], start, end)
    if m < 3:
        raise DataError("The window to search for holds fewer than 3 readings.")
    query = values[a0 + q_lo : a0 + q_lo + m]
    if np.isnan(query).any():
        query = pd.DataFrame(query).interpolate(limit_direction="both").to_numpy()

    segments, row_of = [], []
    for name, (lo, hi) in bounds.items():
        prof = distance_profile(query, values[lo:hi])
        if name == asset:
            prof[max(0, q_lo - m + 1) : q_lo + m] = np.inf  # trivial matches overlap the query
        if skip_modes and len(prof):  # machine off / start-up / maintenance is not a look-alike
            marked = mode_mask(con, dataset_id, str(name), ts[lo:hi])
            inside = np.concatenate([[0], np.cumsum(marked)])
            prof[(inside[m:] - inside[:-m]) > 0] = np.inf
        # an inf gap of m after each asset keeps a match's exclusion zone inside its asset
        segments += [prof, np.full(m, np.inf)]
        row_of += [lo + np.arange(len(prof)), np.full(m, -1)]
    profile = np.concatenate(segments)
    picked = pick_matches(profile, k, exclusion=m)
    rows, dists = np.concatenate(row_of)[picked], profile[picked]

    hits = pd.DataFrame(
        {
            "rank": np.arange(1, len(rows) + 1),
            "asset": assets[rows],
            "start": pd.to_datetime(ts[rows]),
            "end": pd.to_datetime(ts[rows + m - 1]),
            "distance": dists,
            "correlation": 1.0 - dists**2 / (2.0 * m * len(sensors)),
        }
    )
    labels = current_labels(con, dataset_id)
    ids = match_labels(hits, labels)
    verdict = dict(zip(labels["label_id"], labels["verdict"], strict=True))
    hits["label_id"] = pd.array([i if i >= 0 else None for i in ids], dtype="Int64")
    hits["status"] = [STATUS_TEXT[verdict.get(i, UNREVIEWED)] for i in ids]
    return SimilarResult(
        asset=asset,
        start=pd.Timestamp(ts[a0 + q_lo]).to_pydatetime(),
        end=pd.Timestamp(ts[a0 + q_lo + m - 1]).to_pydatetime(),
        sensors=list(sensors),
        length=m,
        matches=hits,
        query=_znorm(query),
        windows=[_znorm(values[r : r + m]) for r in rows],
        n_windows=int(np.isfinite(profile).sum()),
        elapsed_s=time.perf_counter() - started,
    )


def label_matches(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    result: SimilarResult,
    ranks: list[int],
    label: dict[str, Any],
    analyst: str,
) -> list[int]:
    """Give the chosen matches the query's label (verdict, kind, sensors) in one change."""
    from core.labels.history import LabelDraft, create_labels

    chosen = result.matches[result.matches["rank"].isin(ranks)]
    drafts = [
        LabelDraft(
            asset=str(m["asset"]),
            start=m["start"].to_pydatetime(),
            end=m["end"].to_pydatetime(),
            verdict=str(label["verdict"]),
            kind=label.get("kind"),
            sensors=tuple(result.sensors),
            comment=f"similar to label #{label['label_id']} (r={m['correlation']:.2f})",
            source="similar",
        )
        for m in chosen.to_dict("records")
    ]
    return create_labels(con, dataset_id, drafts, analyst)
