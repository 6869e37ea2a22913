"""The detector contract and parameter limits, shared by every detector module.

Subclasses implement ``_fit(X) -> training scores`` and ``_score(X) -> scores`` (higher = more
anomalous); the base validates input and parameters, derives ``threshold_`` from the training
scores, and gives ``score``/``predict`` for free.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from core.errors import ConfigError, DataError

_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class Param:
    """Declared limits of one parameter: the single source for widgets and error messages."""

    name: str
    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    help: str = ""

    def interval(self) -> str:
        """The valid range written like mathematics, e.g. ``(0, 0.5]``."""
        if self.choices is not None:
            return "{" + ", ".join(map(repr, self.choices)) + "}"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{'(' if self.low_open else '['}{lo}, {hi}{')' if self.high_open else ']'}"

    def check(self, value: Any) -> None:
        """Raise ConfigError with the standard message when ``value`` is outside the limits."""
        if self.choices is not None:
            if value not in self.choices:
                raise ConfigError(
                    f"The {self.name!r} parameter must be one of {self.interval()}. "
                    f"Got {value!r} instead."
                )
            return
        ok_type = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        if self.kind is float:
            ok_type = ok_type or isinstance(value, (float, np.floating))
        if not ok_type:
            raise ConfigError(
                f"The {self.name!r} parameter must be {self.kind.__name__} in {self.interval()}. "
                f"Got {value!r} instead."
            )
        too_low = self.low is not None and (
            value < self.low or (self.low_open and value == self.low)
        )
        too_high = self.high is not None and (
            value > self.high or (self.high_open and value == self.high)
        )
        if too_low or too_high or value != value:  # NaN fails every comparison
            raise ConfigError(
                f"The {self.name!r} parameter must be in {self.interval()}. Got {value!r} instead."
            )


CONTAMINATION = Param(
    "contamination", float, 0.0, 0.5, low_open=True, help="share of training rows above threshold"
)


def check_params(limits: dict[str, Param], params: dict[str, Any], accepted: Any = None) -> None:
    """Validate ``params`` against ``limits``; unknown names are errors if ``accepted`` is given."""
    if accepted is not None:
        unknown = sorted(set(params) - set(accepted))
        if unknown:
            raise ConfigError(
                f"Unknown parameter(s) {', '.join(map(repr, unknown))}. "
                f"Valid parameters: {', '.join(sorted(accepted))}."
            )
    for name, value in params.items():
        if name in limits:
            limits[name].check(value)


def as_matrix(X: Any) -> np.ndarray:
    """A finite 2-D float array (float32 stays float32) from a frame or array; 1-D is a column."""
    values = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
    if values.dtype not in (np.float32, np.float64):
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise DataError("Detectors need numbers; the input has non-numeric values.") from exc
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise DataError(f"Detectors need a 2-D table of numbers; got {values.ndim} dimensions.")
    if not np.isfinite(values).all():
        raise DataError("Detectors need finite numbers; the input has NaN or infinite values.")
    return values


def robust_threshold(train_scores: np.ndarray, contamination: float) -> float:
    """The (1 - contamination) quantile of training scores: that share of training is flagged."""
    return float(np.quantile(train_scores, 1.0 - contamination))


class BaseDetector:
    """Base of every detector: validation, threshold and predict come from here."""

    param_limits: ClassVar[dict[str, Param]] = {"contamination": CONTAMINATION}
    row_wise: ClassVar[bool] = True
    """False for detectors whose score of a row depends on earlier rows (no chunking)."""
    bounded: ClassVar[bool] = False
    """True for scores with a finite upper end (Isolation Forest's lie below 0): their tail
    stops short of where an exponential tail would run, so the alarm line is fitted to the tail
    by peaks over threshold instead (`core.detect.model.pot_line`)."""
    contamination: float = 0.005

    @classmethod
    def param_names(cls) -> list[str]:
        """Constructor parameters (keyword-only), as scikit-learn's get_params sees them."""
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def fit(self, X: Any) -> BaseDetector:
        """Fit on (mostly) normal rows; sets ``train_scores_`` and ``threshold_``."""
        check_params(self.param_limits, self.get_params())
        X = as_matrix(X)
        if len(X) < 2:
            raise DataError(f"Need at least 2 training rows to fit a detector; got {len(X)}.")
        self.n_features_in_ = X.shape[1]
        self.train_scores_ = np.asarray(self._fit(X), dtype=np.float64)
        self.threshold_ = robust_threshold(self.train_scores_, self.contamination)
        return self

    def _check_X(self, X: Any) -> np.ndarray:
        if not hasattr(self, "train_scores_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet; call fit() first.")
        X = as_matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise DataError(
                f"Expected {self.n_features_in_} features (as in training); got {X.shape[1]}."
            )
        return X

    def score(self, X: Any) -> np.ndarray:
        """Anomaly score per row; higher = more anomalous. No rows, no scores (scikit-learn's
        estimators refuse an empty matrix; a run's held-out step may ask for none)."""
        X = self._check_X(X)
        if len(X) == 0:
            return np.empty(0, dtype=np.float64)
        if not self.row_wise or len(X) <= _CHUNK_ROWS:
            return np.asarray(self._score(X), dtype=np.float64)
        parts = [self._score(X[i : i + _CHUNK_ROWS]) for i in range(0, len(X), _CHUNK_ROWS)]
        return np.concatenate(parts).astype(np.float64)

    def training_scores(self, X: Any) -> np.ndarray:
        """Scores of every row of the training matrix ``X``, for calibrating alarm lines.

        Usually ``train_scores_``; detectors fitted on a subsample override it so that no row is
        scored by a model that memorised it (which would make the line far too low).
        """
        if len(self.train_scores_) == len(X):
            return self.train_scores_
        return self.score(X)

    def predict(self, X: Any) -> np.ndarray:
        """True where the score exceeds the training threshold."""
        return self.score(X) > self.threshold_

    def _fit(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError
