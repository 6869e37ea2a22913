"""Anomaly detectors with one interface, and the registry the app and CLI pick them from.

Contract (after PyOD and scikit-learn): a keyword-only ``__init__`` that only stores parameters;
``fit(X)`` validates, fits, and sets ``train_scores_`` and ``threshold_``; ``score(X)`` returns one
float per row, higher = more anomalous (a scikit-learn score is negated exactly once, in the
detector that wraps it); ``predict(X)`` is ``score(X) > threshold_``. Each parameter's limits are
declared once (a class's ``param_limits``, shared with `DetectorSpec.params`) and drive both the
app's widgets and the validation messages. Adding a detector = one class + one registry entry +
one parametrised test case.

Measured quality of each detector: bench/bench_detectors.py; `auto` is explained at `AUTO_MEMBERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from core.detect.detectors.autoencoder import WindowAutoencoderDetector
from core.detect.detectors.base import CONTAMINATION, BaseDetector, Param, check_params
from core.detect.detectors.pca import PCADetector
from core.detect.detectors.scikit import IForestDetector, LOFDetector, OCSVMDetector
from core.errors import ConfigError

__all__ = [
    "DETECTORS",
    "AUTO_MEMBERS",
    "BaseDetector",
    "DetectorSpec",
    "EnsembleDetector",
    "IForestDetector",
    "LOFDetector",
    "OCSVMDetector",
    "PCADetector",
    "Param",
    "RobustZDetector",
    "WindowAutoencoderDetector",
    "ZMaxDetector",
    "make_detector",
    "params_from_text",
]


class RobustZDetector(BaseDetector):
    """Per-feature robust z against a trailing rolling median/MAD baseline (rows in time order).

    The baseline follows slow normal change, so the detector sees sudden departures (spikes,
    bursts, the onset of shifts). Spreads never fall below a share of the training MAD, so a quiet
    stretch cannot turn noise into alarms.
    """

    param_limits: ClassVar[dict[str, Param]] = {
        "window": Param("window", int, 3, 100_000, help="baseline length in samples"),
        "agg": Param("agg", str, choices=("max", "mean", "top3"), help="row aggregation"),
        "min_mad_share": Param("min_mad_share", float, 0.0, 10.0),
        "contamination": CONTAMINATION,
    }
    row_wise: ClassVar[bool] = False

    def __init__(
        self,
        *,
        window: int = 60,
        agg: str = "top3",
        min_mad_share: float = 0.5,
        contamination: float = 0.005,
    ):
        self.window = window
        self.agg = agg
        self.min_mad_share = min_mad_share
        self.contamination = contamination

    def _fit(self, X: np.ndarray) -> np.ndarray:
        med = np.median(X, axis=0)
        self.train_mad_ = 1.4826 * np.median(np.abs(X - med), axis=0)
        self.train_mad_ = np.where(self.train_mad_ > 1e-9, self.train_mad_, 1.0)
        return self._score(X)

    def _score(self, X: np.ndarray) -> np.ndarray:
        roll = pd.DataFrame(X).rolling(self.window, min_periods=1)
        med = roll.median().shift(1).bfill().to_numpy()
        mad = (
            pd.DataFrame(np.abs(X - med))
            .rolling(self.window, min_periods=1)
            .median()
            .shift(1)
            .bfill()
            .to_numpy()
        )
        spread = np.maximum(1.4826 * mad, self.min_mad_share * self.train_mad_)
        z = np.abs(X - med) / spread
        return _aggregate(z, self.agg)


class ZMaxDetector(BaseDetector):
    """Per-feature control limits: each feature against its own training spread, worst one wins.

    Every feature gets a limit, the ``quantile`` of its absolute deviation from the training
    median; the score is the largest deviation/limit ratio in the row. Unlike sum-of-squares
    statistics it does not dilute a single sensor's fault among many quiet features.
    """

    param_limits: ClassVar[dict[str, Param]] = {
        "quantile": Param("quantile", float, 0.5, 1.0, high_open=True, help="per-feature limit"),
        "agg": Param("agg", str, choices=("max", "mean", "top3"), help="row aggregation"),
        "contamination": CONTAMINATION,
    }

    def __init__(self, *, quantile: float = 0.9, agg: str = "max", contamination: float = 0.005):
        self.quantile = quantile
        self.agg = agg
        self.contamination = contamination

    def _fit(self, X: np.ndarray) -> np.ndarray:
        thin = X[:: max(1, len(X) // 100_000)]  # per-feature quantiles need not see every row
        self.center_ = np.median(thin, axis=0)
        dev = np.abs(thin - self.center_)
        limit = np.quantile(dev, self.quantile, axis=0)
        fallback = dev.max(axis=0)
        limit = np.where(limit > 1e-9, limit, fallback)
        self.limit_ = np.where(limit > 1e-9, limit, 1.0)
        return self._score(X)

    def ratios(self, X: Any) -> np.ndarray:
        """Each feature's |deviation| / limit: the score is their row maximum (explanations)."""
        X = self._check_X(X)
        return np.abs(X - self.center_.astype(X.dtype)) / self.limit_.astype(X.dtype)

    def _score(self, X: np.ndarray) -> np.ndarray:
        dev = np.abs(X - self.center_.astype(X.dtype)) / self.limit_.astype(X.dtype)
        return _aggregate(dev, self.agg)


def _aggregate(z: np.ndarray, how: str) -> np.ndarray:
    """Row-wise combination of per-feature scores."""
    if how == "max" or z.shape[1] == 1:
        return z.max(axis=1)
    if how == "mean":
        return z.mean(axis=1)
    k = min(3, z.shape[1])
    return np.partition(z, -k, axis=1)[:, -k:].mean(axis=1)


class EnsembleDetector(BaseDetector):
    """Several detectors, each score normalised on its own training scores, then averaged.

    ``norm="robust_z"`` maps a member's score to (s - median) / IQR of its training scores, so big
    departures keep their size; ``norm="rank"`` maps it to the surprisal of its training rank,
    -log10(share of training scores at or above it): bounded by log10(n + 1), so one member
    cannot dominate, but everything beyond the training maximum ties.
    """

    param_limits: ClassVar[dict[str, Param]] = {
        "norm": Param("norm", str, choices=("robust_z", "rank"), help="score normalisation"),
        "combine": Param("combine", str, choices=("mean", "max"), help="how members combine"),
        "contamination": CONTAMINATION,
    }

    def __init__(
        self,
        *,
        members: tuple[str, ...] = ("zmax", "pca"),
        norm: str = "robust_z",
        combine: str = "mean",
        contamination: float = 0.005,
        member_params: dict[str, dict[str, Any]] | None = None,
    ):
        self.members = members
        self.norm = norm
        self.combine = combine
        self.contamination = contamination
        self.member_params = member_params

    def _fit(self, X: np.ndarray) -> np.ndarray:
        if isinstance(self.members, str) or not all(isinstance(m, str) for m in self.members):
            raise ConfigError("The 'members' parameter must be a list of detector names.")
        nested = [m for m in self.members if m in ("ensemble", "auto")]
        if nested or not self.members:
            raise ConfigError(
                "An ensemble needs at least one member, and members cannot be ensembles "
                f"themselves. Got {list(self.members)!r} instead."
            )
        params = self.member_params or {}
        self.detectors_ = {m: make_detector(m, **params.get(m, {})).fit(X) for m in self.members}
        raw = {m: d.training_scores(X) for m, d in self.detectors_.items()}
        self.norms_ = {m: _norm_stats(s) for m, s in raw.items()}
        self.sorted_train_ = {m: np.sort(s) for m, s in raw.items()}
        return self._combine(raw)

    def member_scores(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Normalised score of every member (what the ensemble averages)."""
        X = self._check_X(X)
        return {m: self._normalise(m, d.score(X)) for m, d in self.detectors_.items()}

    def _normalise(self, name: str, s: np.ndarray) -> np.ndarray:
        if self.norm == "rank":
            ref = self.sorted_train_[name]
            at_or_above = len(ref) - np.searchsorted(ref, s, side="left") + 1
            return -np.log10(at_or_above / (len(ref) + 1))
        center, scale = self.norms_[name]
        return (s - center) / scale

    def _combine(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        parts = np.column_stack([self._normalise(m, s) for m, s in raw.items()])
        return parts.max(axis=1) if self.combine == "max" else parts.mean(axis=1)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self._combine({m: d.score(X) for m, d in self.detectors_.items()})


def _norm_stats(scores: np.ndarray) -> tuple[float, float]:
    center = float(np.median(scores))
    q25, q75 = np.percentile(scores, [25, 75])
    scale = float(q75 - q25) or float(np.std(scores)) or 1.0
    return center, scale


# -- registry ----------------------------------------------------------------------------------
AUTO_MEMBERS: tuple[str, ...] = ("zmax", "pca")
"""What `auto` averages (robust-z normalised), chosen by measurement in bench/bench_detectors.py.
Per-feature limits (``zmax``) catch one sensor going wrong without diluting it among quiet
features; PCA (T² + SPE) catches several features moving together in an unusual way. On the demo
plants ``zmax`` alone is as good as the pair, but on real NAB data it finds 1 of 4 anomalies where
the pair finds all 4; PCA alone finds them too but raises more false alarms on the plants.
Isolation Forest, LOF, one-class SVM and rolling z-scores were clearly weaker on both. On
Tennessee Eastman (bench/bench_real.py) the pair detects 0.946 of the 18 detectable faults' rows at
0.2% false alarms, against 0.866 at 14.9% for the classical PCA T² + SPE monitor; LOF and the
window autoencoder come close, at up to 4x the false alarms."""


def _auto(**params: Any) -> BaseDetector:
    params.setdefault("members", AUTO_MEMBERS)
    return EnsembleDetector(**params)


@dataclass(frozen=True)
class DetectorSpec:
    """A detector as the app and CLI see it: name, what it is for, and its parameter limits."""

    name: str
    label: str
    description: str
    factory: Callable[..., BaseDetector]
    params: dict[str, Param] = field(default_factory=dict)


DETECTORS: dict[str, DetectorSpec] = {
    spec.name: spec
    for spec in [
        DetectorSpec(
            "auto",
            "Automatic (recommended)",
            "Per-feature limits (max z) and PCA (T² + SPE), each normalised on its training "
            "scores and averaged: the combination measured best across plants and real data.",
            _auto,
            EnsembleDetector.param_limits,
        ),
        DetectorSpec(
            "iforest",
            "Isolation Forest",
            "Isolates rare combinations with random splits; fast and assumption-free.",
            IForestDetector,
            IForestDetector.param_limits,
        ),
        DetectorSpec(
            "lof",
            "Local Outlier Factor",
            "Compares each point's local density with its neighbours'; good for clustered modes.",
            LOFDetector,
            LOFDetector.param_limits,
        ),
        DetectorSpec(
            "ocsvm",
            "One-class SVM",
            "Learns a smooth boundary around normal data (kernel approximation on big data).",
            OCSVMDetector,
            OCSVMDetector.param_limits,
        ),
        DetectorSpec(
            "pca",
            "PCA (T² + SPE)",
            "Learns how sensors move together; flags breaks of that structure (SPE) and unusual "
            "operating points (Hotelling T²). Explains itself per feature.",
            PCADetector,
            PCADetector.param_limits,
        ),
        DetectorSpec(
            "autoencoder",
            "Window autoencoder",
            "A small neural network learns to reconstruct short windows of every feature; "
            "the reconstruction error flags dynamics it has not seen. Explains itself per "
            "feature (its share of the error).",
            WindowAutoencoderDetector,
            WindowAutoencoderDetector.param_limits,
        ),
        DetectorSpec(
            "zmax",
            "Per-feature limits (max z)",
            "Each feature against its own training limits; the worst feature decides. Sensitive "
            "to faults of a single sensor, and says which one.",
            ZMaxDetector,
            ZMaxDetector.param_limits,
        ),
        DetectorSpec(
            "robust_z",
            "Rolling robust z-score",
            "Each feature against its own rolling median and MAD: simple, transparent baseline.",
            RobustZDetector,
            RobustZDetector.param_limits,
        ),
        DetectorSpec(
            "ensemble",
            "Ensemble",
            "Average of several detectors' normalised scores (rank or robust z).",
            EnsembleDetector,
            EnsembleDetector.param_limits,
        ),
    ]
}


def make_detector(name: str, **params: Any) -> BaseDetector:
    """Build a registered detector, validating parameters against their declared limits."""
    spec = DETECTORS.get(name)
    if spec is None:
        raise ConfigError(
            f"Unknown detector {name!r}. Valid detectors: {', '.join(sorted(DETECTORS))}."
        )
    accepted = EnsembleDetector.param_names() if name == "auto" else spec.factory.param_names()
    check_params(spec.params, params, accepted)
    return spec.factory(**params)


def params_from_text(name: str, items: list[str]) -> dict[str, Any]:
    """Detector parameters typed as ``NAME=VALUE`` (the CLI's ``--param``), converted to the
    types their declared limits say and checked against them."""
    spec = DETECTORS.get(name)
    if spec is None:
        make_detector(name)  # the standard unknown-detector message
    params: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"A detector parameter is written NAME=VALUE. Got {item!r} instead.")
        limit = spec.params.get(key)
        if limit is None:
            valid = ", ".join(sorted(spec.params)) or "none"
            raise ConfigError(
                f"Unknown parameter {key!r} for detector {name!r}. Valid parameters: {valid}."
            )
        try:
            params[key] = text.strip() if limit.kind is str else limit.kind(text.strip())
        except ValueError:
            raise ConfigError(
                f"The {key!r} parameter must be {limit.kind.__name__} in {limit.interval()}. "
                f"Got {text.strip()!r} instead."
            ) from None
    make_detector(name, **params)  # limits checked once, with the standard messages
    return params
