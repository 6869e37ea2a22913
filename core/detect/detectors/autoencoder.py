"""A window autoencoder: reconstruction error of short sliding windows of every feature.

The deep-model family of the field (convolutional / LSTM autoencoders on sliding windows) with
scikit-learn's ``MLPRegressor`` as the network: each row is judged with the ``window`` rows up
to it, flattened, squeezed through a bottleneck and reconstructed. Normal dynamics reconstruct
well; a broken relation between sensors, or between a sensor and its own recent past, does not.
Each input's squared error is divided by its typical training error, so the score is the mean
standardised error of the window, and `feature_errors` splits it exactly over the features
(explanations use it: no sampling).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from core.detect.detectors.base import CONTAMINATION, BaseDetector, Param

_CLIP = 50.0
"""Inputs are clipped at this robust z before the network: far outliers already score high."""


def sliding_windows(X: np.ndarray, window: int) -> np.ndarray:
    """Row t -> rows t-window+1 .. t flattened (oldest first); the first row repeats before the
    start, so every row has a full window."""
    padded = np.concatenate([np.repeat(X[:1], window - 1, axis=0), X]) if window > 1 else X
    view = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)  # [n, d, window]
    return np.ascontiguousarray(view.transpose(0, 2, 1)).reshape(len(X), -1)


class WindowAutoencoderDetector(BaseDetector):
    """Reconstruction error of sliding windows (rows in time order); per-feature errors."""

    param_limits: ClassVar[dict[str, Param]] = {
        "window": Param("window", int, 1, 64, help="rows per window"),
        "bottleneck": Param("bottleneck", int, 0, 256, help="code size (0: automatic)"),
        "max_iter": Param("max_iter", int, 10, 2000, help="training epochs at most"),
        "max_rows": Param("max_rows", int, 100, 1_000_000, help="training windows at most"),
        "contamination": CONTAMINATION,
    }
    row_wise: ClassVar[bool] = False

    def __init__(
        self,
        *,
        window: int = 8,
        bottleneck: int = 0,
        max_iter: int = 100,
        max_rows: int = 5_000,
        contamination: float = 0.005,
        random_state: int = 0,
    ):
        self.window = window
        self.bottleneck = bottleneck
        self.max_iter = max_iter
        self.max_rows = max_rows
        self.contamination = contamination
        self.random_state = random_state

    def _fit(self, X: np.ndarray) -> np.ndarray:
        from sklearn.neural_network import MLPRegressor  # lazy: scikit-learn is slow to import

        W = self._inputs(X)
        fit_rows = W[:: max(1, int(np.ceil(len(W) / self.max_rows)))]
        code = self.bottleneck or int(np.clip(W.shape[1] // 8, 2, 32))
        hidden = int(np.clip(W.shape[1], 4 * code, 128))
        self.estimator_ = MLPRegressor(
            hidden_layer_sizes=(hidden, code, hidden),
            activation="tanh",
            alpha=1e-3,
            learning_rate_init=1e-3,
            batch_size=min(256, len(fit_rows)),
            max_iter=self.max_iter,
            early_stopping=len(fit_rows) >= 200,
            n_iter_no_change=5,
            random_state=self.random_state,
        )
        with _quiet_convergence():
            self.estimator_.fit(fit_rows, fit_rows)
        error = (W - self.estimator_.predict(W)) ** 2
        self.error_scale_ = np.maximum(np.median(error, axis=0), 1e-6 * (1 + error.mean(axis=0)))
        self.error_scale_ = np.maximum(self.error_scale_, 1e-12)
        return self._score(X)

    def _inputs(self, X: np.ndarray) -> np.ndarray:
        return sliding_windows(np.clip(X.astype(np.float64), -_CLIP, _CLIP), self.window)

    def feature_errors(self, X: Any) -> np.ndarray:
        """Each feature's share of the score, per row: its standardised squared errors over the
        window, so each row sums to the score."""
        X = self._check_X(X)
        return self._feature_errors(X)

    def _feature_errors(self, X: np.ndarray) -> np.ndarray:
        W = self._inputs(X)
        error = (W - self.estimator_.predict(W)) ** 2 / self.error_scale_
        return error.reshape(len(X), self.window, X.shape[1]).sum(axis=1) / W.shape[1]

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self._feature_errors(X).sum(axis=1)


class _quiet_convergence:
    """MLPRegressor warns when it stops at ``max_iter``: a bounded fit is the intent here."""

    def __enter__(self) -> None:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", ConvergenceWarning)

    def __exit__(self, *exc: object) -> None:
        self._catch.__exit__(*exc)
