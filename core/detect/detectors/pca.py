"""PCA monitoring (Hotelling T² + Q/SPE), the workhorse of multivariate process monitoring.

T² measures how far a row sits inside the learned subspace (an unusual operating point), SPE how
far it sits off it (a broken relation between features). The score is Yue & Qin's combined index:
each statistic divided by its training 99th percentile, then summed, so both count equally.
Fitting is robust: after a first fit, rows whose combined index is extreme are dropped and the
model refitted, so a few faults in training do not bend the subspace towards them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from core.detect.detectors.base import CONTAMINATION, BaseDetector, Param

_LIMIT_QUANTILE = 0.99
_STAT_ROWS = 100_000


@dataclass
class PCAContributions:
    """Per-feature shares of each statistic: each row of ``spe`` sums to SPE, of ``t2`` to T²."""

    spe: np.ndarray
    t2: np.ndarray
    spe_total: np.ndarray
    t2_total: np.ndarray


class PCADetector(BaseDetector):
    """PCA with Hotelling T² and SPE, combined; per-feature contributions for explanations."""

    param_limits: ClassVar[dict[str, Param]] = {
        "variance": Param("variance", float, 0.0, 1.0, low_open=True, high_open=True),
        "trim": Param("trim", float, 0.0, 0.2, high_open=True),
        "contamination": CONTAMINATION,
    }

    def __init__(
        self,
        *,
        variance: float = 0.7,
        max_components: int | None = None,
        trim: float = 0.02,
        contamination: float = 0.005,
        random_state: int = 0,
    ):
        self.variance = variance
        self.max_components = max_components
        self.trim = trim
        self.contamination = contamination
        self.random_state = random_state

    # -- fitting -------------------------------------------------------------------------------
    def _fit(self, X: np.ndarray) -> np.ndarray:
        keep = np.ones(len(X), dtype=bool)
        rounds = 2 if self.trim > 0 and len(X) > 50 else 1
        for round_ in range(rounds):
            self._fit_rows(X[keep])
            t2, spe = self._statistics(X)
            self._set_limits(t2[keep], spe[keep])
            combined = self._combine(t2, spe)
            if round_ + 1 < rounds:
                keep = combined <= np.quantile(combined, 1.0 - self.trim)
        return combined

    def _fit_rows(self, X: np.ndarray) -> None:
        thin = X[:: max(1, len(X) // _STAT_ROWS)]  # robust centre/scale need not see every row
        q25, self.center_, q75 = np.percentile(thin, [25, 50, 75], axis=0)
        scale = (q75 - q25) / 1.349
        std = thin.std(axis=0)
        scale = np.where(scale > 1e-9, scale, std)
        self.scale_ = np.where(scale > 1e-9, scale, 1.0)
        Z = (X - self.center_) / self.scale_
        self.mean_ = Z.mean(axis=0)
        p = X.shape[1]
        cap = p if p == 1 else p - 1
        if self.max_components is not None:
            cap = min(cap, self.max_components)
        from sklearn.decomposition import PCA  # lazy: scikit-learn costs ~1 s to import

        with np.errstate(invalid="ignore", divide="ignore"):  # constant training: no variance
            full = PCA(svd_solver="covariance_eigh").fit(Z - self.mean_)
        ratio = np.cumsum(full.explained_variance_ratio_)
        k = int(np.searchsorted(ratio, self.variance) + 1)
        k = int(np.clip(k, 1, cap))
        self.estimator_ = full
        self.n_components_ = k
        self.components_ = full.components_[:k].T  # (p, k)
        eig = full.explained_variance_[:k]
        self.eigenvalues_ = np.maximum(eig, 1e-6 * max(float(eig.max()), 1e-12))

    def _set_limits(self, t2: np.ndarray, spe: np.ndarray) -> None:
        self.t2_limit_ = max(float(np.quantile(t2, _LIMIT_QUANTILE)), 1e-12)
        spe_limit = float(np.quantile(spe, _LIMIT_QUANTILE))
        self.spe_limit_ = spe_limit if spe_limit > 1e-12 else None

    # -- statistics ----------------------------------------------------------------------------
    def _centered(self, X: np.ndarray) -> np.ndarray:
        shift = (self.center_ + self.mean_ * self.scale_).astype(X.dtype)
        return (X - shift) / self.scale_.astype(X.dtype)

    def _statistics(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Z = self._centered(X)
        t = Z @ self.components_.astype(Z.dtype)
        t2 = np.einsum("ij,ij->i", t / self.eigenvalues_.astype(Z.dtype), t, dtype=np.float64)
        # SPE = |z|² - |t|², as the components are orthonormal: no reconstruction needed.
        spe = np.einsum("ij,ij->i", Z, Z, dtype=np.float64)
        spe -= np.einsum("ij,ij->i", t, t, dtype=np.float64)
        return t2, np.maximum(spe, 0.0)

    def _combine(self, t2: np.ndarray, spe: np.ndarray) -> np.ndarray:
        if self.spe_limit_ is None:
            return t2 / self.t2_limit_
        return t2 / self.t2_limit_ + spe / self.spe_limit_

    def _score(self, X: np.ndarray) -> np.ndarray:
        return self._combine(*self._statistics(X))

    def statistics(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Hotelling T² and SPE of every row (in the detector's standardised space)."""
        return self._statistics(self._check_X(X))

    def contributions(self, X: Any) -> PCAContributions:
        """Per-feature contributions to SPE (squared residuals) and to T².

        T² uses the complete decomposition ``T² = ||D^½ z||²`` with ``D = P Λ⁻¹ Pᵀ``: each feature
        gets ``(D^½ z)_j²``, non-negative and summing exactly to T² (Alcala & Qin, 2009).
        """
        Z = self._centered(self._check_X(X).astype(np.float64))
        t = Z @ self.components_
        resid = Z - t @ self.components_.T
        half = (self.components_ / np.sqrt(self.eigenvalues_)) @ self.components_.T
        t2c = (Z @ half) ** 2
        spec = resid * resid
        return PCAContributions(spe=spec, t2=t2c, spe_total=spec.sum(1), t2_total=t2c.sum(1))
