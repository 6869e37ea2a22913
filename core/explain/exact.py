"""Exact contributions, in closed form, for every detector whose maths allows it.

Each function splits a detector's raw score at some rows into ``base + sum(values)`` exactly:

- per-feature limits (``zmax``) and the rolling robust z: the score aggregates per-feature ratios
  ``|x - centre| / spread`` (max, mean or mean of the top 3). With each feature's reference as
  the baseline (a masked feature scores 0), the exact Shapley values of "sum of the k largest"
  have a closed form (`shapley_top_k`), so no sampling is needed.
- PCA: T²/T²lim + SPE/SPElim decomposes per feature (`PCADetector.contributions`).
- Isolation Forest: TreeSHAP of the mean path length E[h(x)], carried through the monotone link
  score = 2^(-E/c) by one factor per row, so the values sum exactly to the score.
- window autoencoder: each feature's share of the window reconstruction error.
- ensembles of those (robust-z normalised, averaged): the normalisation is affine, so members'
  values add up, scaled.

Anything else (LOF, one-class SVM, rank-normalised or max-combined ensembles) is left to
permutation SHAP in `core.explain.methods`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from core.detect.detectors.registry import (
    BaseDetector,
    EnsembleDetector,
    IForestDetector,
    PCADetector,
    RobustZDetector,
    WindowAutoencoderDetector,
    ZMaxDetector,
)

Rows = tuple[np.ndarray, np.ndarray]
"""(stretch index, row index) of each row to split."""
Parts = tuple[np.ndarray, np.ndarray]
"""(values (n, p), base (n,)): base + values.sum(1) is the detector's raw score per row."""

_EXACT_MEMBERS = ("zmax", "robust_z", "pca", "iforest", "autoencoder")
_AGG_K = {"max": 1, "top3": 3}


def average_path_length(n: int) -> float:
    """c(n), the mean path length of an unsuccessful search in a BST of n points (Liu et al.)."""
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (np.log(n - 1.0) + np.euler_gamma) - 2.0 * (n - 1.0) / n


def robust_z_reference(det: RobustZDetector, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trailing median and spread each row is judged against, as ``RobustZDetector._score``."""
    med = pd.DataFrame(X).rolling(det.window, min_periods=1).median().shift(1).bfill().to_numpy()
    mad = pd.DataFrame(np.abs(X - med)).rolling(det.window, min_periods=1).median()
    mad = mad.shift(1).bfill().to_numpy()
    return med, np.maximum(1.4826 * mad, det.min_mad_share * det.train_mad_)


def is_exact(name: str, params: dict[str, Any] | None = None) -> bool:
    """Whether a registry detector (with these parameters) has an exact decomposition."""
    params = params or {}
    if name in _EXACT_MEMBERS:
        return True
    if name not in ("auto", "ensemble"):
        return False
    members = params.get("members", ("zmax", "pca"))
    return (
        params.get("norm", "robust_z") == "robust_z"
        and params.get("combine", "mean") == "mean"
        and all(m in _EXACT_MEMBERS for m in members)
    )


def is_exact_detector(det: BaseDetector) -> bool:
    """`is_exact` for a fitted detector."""
    if isinstance(det, EnsembleDetector):
        return (
            det.norm == "robust_z"
            and det.combine == "mean"
            and all(is_exact_detector(d) for d in det.detectors_.values())
        )
    return isinstance(
        det,
        (ZMaxDetector, RobustZDetector, PCADetector, IForestDetector, WindowAutoencoderDetector),
    )


def shapley_top_k(ratios: np.ndarray, k: int) -> np.ndarray:
    """Exact Shapley values of f(S) = sum of the k largest ratios in S (absent features are 0).

    Layer-cake: f(S) = integral over u of min(k, #{i in S: r_i > u}); at level u the players
    above it are symmetric, so each gets min(k, a) / a of the slice (a = how many are above).
    k = 1 is the airport game (Littlechild & Owen); k = p gives every feature its own ratio.
    Each row sums to the sum of its k largest ratios.
    """
    r = np.asarray(ratios, dtype=np.float64)
    n, p = r.shape
    k = int(min(max(k, 1), p))
    order = np.argsort(r, axis=1, kind="stable")
    ascending = np.take_along_axis(r, order, axis=1)
    gaps = np.diff(ascending, axis=1, prepend=0.0)
    above = p - np.arange(p, dtype=np.float64)  # players at or above each sorted level
    phi_sorted = np.cumsum(gaps * (np.minimum(above, k) / above), axis=1)
    out = np.empty_like(r)
    np.put_along_axis(out, order, phi_sorted, axis=1)
    return out


def _aggregate_shapley(ratios: np.ndarray, agg: str) -> np.ndarray:
    """Shapley values of the detector's row aggregation (max, mean or top 3) of ``ratios``."""
    p = ratios.shape[1]
    if agg == "mean" and p > 1:
        return ratios.astype(np.float64) / p
    k = 1 if p == 1 else _AGG_K[agg]
    return shapley_top_k(ratios, k) / min(k, p)


def gather_rows(mats: list[np.ndarray], rows: Rows) -> np.ndarray:
    """Rows ``mats[w][t]`` for each (w, t) in ``rows``, with one fancy index instead of a loop."""
    starts = np.cumsum([0] + [len(m) for m in mats[:-1]]).astype(np.int64)
    return np.concatenate(mats)[starts[rows[0]] + rows[1]]


def _per_stretch(
    mats: list[np.ndarray], rows: Rows, whole: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``whole(stretch)`` for detectors that judge a row by the rows before it, picked at rows."""
    done = [whole(m) if (rows[0] == w).any() else None for w, m in enumerate(mats)]
    return np.stack([done[w][t] for w, t in zip(*rows, strict=True)]).reshape(len(rows[0]), -1)


def split_score(det: BaseDetector, mats: list[np.ndarray], rows: Rows, tree: Any = None) -> Parts:
    """Exact (values, base) of ``det``'s raw score at ``rows`` of the feature stretches ``mats``.

    ``tree`` builds the TreeExplainer of an Isolation Forest (kept warm by the caller).
    """
    n, p = len(rows[0]), mats[0].shape[1]
    zero = np.zeros(n)
    if isinstance(det, EnsembleDetector):
        values, base = np.zeros((n, p)), np.zeros(n)
        for name, member in det.detectors_.items():
            v, b = split_score(member, mats, rows, tree)
            centre, scale = det.norms_[name]
            values += v / scale
            base += (b - centre) / scale
        m = len(det.detectors_)
        return values / m, base / m
    if isinstance(det, ZMaxDetector):
        X = gather_rows(mats, rows).astype(np.float64)
        return _aggregate_shapley(np.abs(X - det.center_) / det.limit_, det.agg), zero
    if isinstance(det, RobustZDetector):

        def ratios(Xw: np.ndarray) -> np.ndarray:
            Xw = Xw.astype(np.float64)
            med, spread = robust_z_reference(det, Xw)
            return np.abs(Xw - med) / spread

        return _aggregate_shapley(_per_stretch(mats, rows, ratios), det.agg), zero
    if isinstance(det, PCADetector):
        parts = det.contributions(gather_rows(mats, rows).astype(np.float64))
        values = parts.t2 / det.t2_limit_
        if det.spe_limit_ is not None:
            values = values + parts.spe / det.spe_limit_
        return values, zero
    if isinstance(det, WindowAutoencoderDetector):
        return _per_stretch(mats, rows, det.feature_errors), zero
    if isinstance(det, IForestDetector):
        return _forest_parts(det, gather_rows(mats, rows), tree(det))
    raise TypeError(f"{type(det).__name__} has no exact decomposition")


def _forest_parts(det: IForestDetector, X: np.ndarray, explainer: Any) -> Parts:
    """TreeSHAP path shortening per feature, carried to score units: score = 2^(-E/c) is
    monotone in E, so each row's values are scaled by (score - base) / shortening."""
    c = average_path_length(int(det.estimator_.max_samples_))
    mean_path = float(np.ravel(explainer.expected_value)[0])
    base = 2.0 ** (-mean_path / c)
    parts = [
        explainer.shap_values(X[i : i + 500], check_additivity=False) for i in range(0, len(X), 500)
    ]
    shortening = -np.concatenate(parts) if parts else np.zeros(X.shape)
    total = shortening.sum(axis=1)
    score = det.score(X)
    slope = base * np.log(2.0) / c  # d score / d shortening at the base: the limit as total -> 0
    tiny = np.abs(total) < 1e-12
    factor = np.where(tiny, slope, (score - base) / np.where(tiny, 1.0, total))
    return shortening * factor[:, None], np.full(len(X), base)


def smoothed_parts(
    det: BaseDetector,
    mats: list[np.ndarray],
    picks: Rows,
    k: int,
    tree: Any = None,
) -> Parts:
    """Exact parts of the trailing mean over ``k`` rows of the raw score at each pick (what the
    run's score is made of), the mean taken over the rows that exist within the stretch; each
    row is split once, however many picks' trailing windows hold it."""
    w, t = (np.asarray(a, dtype=np.int64) for a in picks)
    lags = t[:, None] - np.arange(max(k, 1))[None, :]  # (n, k)
    valid = lags >= 0
    width = int(t.max(initial=0)) + 1
    keys = np.repeat(w, lags.shape[1]).reshape(lags.shape) * width + np.clip(lags, 0, None)
    unique, inverse = np.unique(keys, return_inverse=True)
    values, base = split_score(det, mats, (unique // width, unique % width), tree)
    inverse = inverse.reshape(lags.shape)
    weight = valid / valid.sum(axis=1, keepdims=True)
    return np.einsum("nk,nkp->np", weight, values[inverse]), (weight * base[inverse]).sum(axis=1)
