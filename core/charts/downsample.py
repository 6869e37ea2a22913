"""Min/max-preserving downsampling, so a 1M-row series reaches the browser as a few thousand points
without hiding the spikes an analyst is looking for (MinMaxLTTB from `tsdownsample`)."""

from __future__ import annotations

import numpy as np
from tsdownsample import MinMaxLTTBDownsampler, NaNMinMaxLTTBDownsampler

MAX_POINTS = 4000
"""Default points per trace: below the ~5,000 the browser stays responsive with."""


def _as_numeric_x(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.datetime64):
        return x.astype("datetime64[ns]").view(np.int64)
    return x


def downsample_indices(x: np.ndarray, y: np.ndarray, n_out: int = MAX_POINTS) -> np.ndarray:
    """Indices of the points to keep (all of them when the series is already short).

    `x` must be sorted ascending; NaNs in `y` are kept where they mark gaps.
    """
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    if n <= n_out or n_out < 4:
        return np.arange(n)
    xs = _as_numeric_x(x)
    n_out = n_out - (n_out % 2)
    sampler = NaNMinMaxLTTBDownsampler() if np.isnan(y).any() else MinMaxLTTBDownsampler()
    idx = sampler.downsample(xs, y, n_out=n_out)
    return np.asarray(idx, dtype=np.int64)


def downsample_xy(
    x: np.ndarray, y: np.ndarray, n_out: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """The downsampled (x, y) pair of one trace."""
    idx = downsample_indices(x, y, n_out)
    return np.asarray(x)[idx], np.asarray(y)[idx]
