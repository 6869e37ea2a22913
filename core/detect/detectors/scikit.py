"""scikit-learn detectors behind Vigil's detector contract: Isolation Forest, LOF, one-class SVM.

Each keeps its fitted estimator as ``estimator_`` (SHAP's TreeExplainer reads the forest's) and
negates scikit-learn's "higher = more normal" score exactly once, in its ``_score``. scikit-learn
is imported inside ``_fit``: it costs about a second, which the CLI's error paths should not pay.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from core.detect.detectors.base import CONTAMINATION, BaseDetector, Param


class IForestDetector(BaseDetector):
    """Isolation Forest: random splits isolate rare points in few steps. Fast, assumption-free."""

    bounded: ClassVar[bool] = True  # score = -2 ** (-E[h] / c): always in (-1, 0)
    param_limits: ClassVar[dict[str, Param]] = {
        "n_estimators": Param("n_estimators", int, 10, 1000, help="number of trees"),
        "max_samples": Param("max_samples", int, 16, 100_000, help="rows per tree"),
        "contamination": CONTAMINATION,
    }

    def __init__(
        self,
        *,
        n_estimators: int = 100,
        max_samples: int = 256,
        contamination: float = 0.005,
        random_state: int = 0,
        n_jobs: int = 1,
    ):
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination = contamination
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit(self, X: np.ndarray) -> np.ndarray:
        from sklearn.ensemble import IsolationForest  # lazy: scikit-learn costs ~1 s to import

        self.estimator_ = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=min(self.max_samples, len(X)),
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        ).fit(X)
        return self._score(X)

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -self.estimator_.score_samples(X)  # the one place the sign flips


class LOFDetector(BaseDetector):
    """Local Outlier Factor (novelty mode): density relative to neighbours; subsamples big data."""

    param_limits: ClassVar[dict[str, Param]] = {
        "n_neighbors": Param("n_neighbors", int, 2, 500, help="neighbours per point"),
        "max_train": Param("max_train", int, 100, 200_000, help="training rows kept"),
        "contamination": CONTAMINATION,
    }

    def __init__(
        self,
        *,
        n_neighbors: int = 20,
        max_train: int = 10_000,
        contamination: float = 0.005,
        random_state: int = 0,
        n_jobs: int = 1,
    ):
        self.n_neighbors = n_neighbors
        self.max_train = max_train
        self.contamination = contamination
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit(self, X: np.ndarray) -> np.ndarray:
        from sklearn.neighbors import LocalOutlierFactor

        rows = _subsample(len(X), self.max_train, self.random_state)
        self.train_rows_ = rows
        self.estimator_ = LocalOutlierFactor(
            n_neighbors=min(self.n_neighbors, max(1, len(rows) - 1)),
            novelty=True,
            n_jobs=self.n_jobs,
        ).fit(X[rows])
        # Leave-one-out training scores: scoring a training point with score_samples would count
        # the point as its own neighbour and make the threshold far too low.
        return -self.estimator_.negative_outlier_factor_

    def _score(self, X: np.ndarray) -> np.ndarray:
        return -self.estimator_.score_samples(X)

    def training_scores(self, X: Any) -> np.ndarray:
        """Leave-one-out scores for the subsample it was fitted on, novelty scores for the rest."""
        if len(self.train_scores_) == len(X):
            return self.train_scores_
        scores = self.score(X)
        scores[self.train_rows_] = self.train_scores_
        return scores


class OCSVMDetector(BaseDetector):
    """One-class SVM on standardised data; Nystroem + SGDOneClassSVM above ``max_exact`` rows."""

    param_limits: ClassVar[dict[str, Param]] = {
        "nu": Param("nu", float, 0.0, 1.0, low_open=True, help="bound on training outliers"),
        "max_exact": Param("max_exact", int, 10, 50_000, help="rows for the exact kernel SVM"),
        "n_components": Param("n_components", int, 10, 5_000, help="Nystroem features"),
        "contamination": CONTAMINATION,
    }

    def __init__(
        self,
        *,
        nu: float = 0.01,
        gamma: float | None = None,
        max_exact: int = 5_000,
        n_components: int = 300,
        contamination: float = 0.005,
        random_state: int = 0,
    ):
        self.nu = nu
        self.gamma = gamma
        self.max_exact = max_exact
        self.n_components = n_components
        self.contamination = contamination
        self.random_state = random_state

    def _fit(self, X: np.ndarray) -> np.ndarray:
        from sklearn.kernel_approximation import Nystroem
        from sklearn.linear_model import SGDOneClassSVM
        from sklearn.preprocessing import StandardScaler
        from sklearn.svm import OneClassSVM

        self.scaler_ = StandardScaler().fit(X)
        Z = self.scaler_.transform(X)
        gamma = self.gamma or 1.0 / max(Z.shape[1], 1)  # "scale" on unit-variance features
        if len(Z) <= self.max_exact:
            self.kernel_map_ = None
            self.estimator_ = OneClassSVM(nu=self.nu, gamma=gamma).fit(Z)
        else:
            self.kernel_map_ = Nystroem(
                gamma=gamma,
                n_components=min(self.n_components, len(Z)),
                random_state=self.random_state,
            ).fit(Z[_subsample(len(Z), 20_000, self.random_state)])
            self.estimator_ = SGDOneClassSVM(
                nu=self.nu, random_state=self.random_state, max_iter=20, tol=None
            ).fit(self.kernel_map_.transform(Z))
        return self._score(X)

    def _score(self, X: np.ndarray) -> np.ndarray:
        Z = np.clip(self.scaler_.transform(X), -50, 50)
        if self.kernel_map_ is not None:
            Z = self.kernel_map_.transform(Z)
        return -self.estimator_.decision_function(Z)


def _subsample(n: int, limit: int, seed: int) -> np.ndarray:
    """Sorted random row positions, at most ``limit`` of them."""
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))
