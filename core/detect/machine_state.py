"""Is the machine running? Stopped stretches are kept out of training and out of alarms.

A stopped pump or motor is not an anomaly, but to a detector trained on running data it looks like
one. The heuristics are name-agnostic: a *drive* sensor (speed, current, power, flow...) is one
whose values split into a cluster at zero and a running cluster well away from it. The machine is
off when every drive sensor sits in its zero cluster for at least ``min_points`` samples. A single
such sensor only counts when its name says it is a drive signal (speed, current...), since one
unnamed sensor dropping to zero is as likely a fault; names also pick drive sensors when the data
has no stop to learn from.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

DRIVE_HINT = re.compile(r"speed|rpm|current|amp|power|kw|load|torque|freq|hz", re.IGNORECASE)
"""Sensor names that usually read (near) zero when a machine stops."""
_ZERO_BAND = 0.05
"""A value is 'at zero' when |x| <= 5% of the sensor's running level (its 99th |x| percentile)."""


def _near_zero(values: np.ndarray, level: np.ndarray) -> np.ndarray:
    return np.abs(values) <= _ZERO_BAND * level


def _running_level(values: np.ndarray) -> np.ndarray:
    """Typical running magnitude of each column: 99th percentile of |x| (ignores spikes)."""
    with np.errstate(all="ignore"):
        level = np.nanpercentile(np.abs(values), 99, axis=0)
    return np.nan_to_num(level, nan=0.0)


def drive_sensors(frame: pd.DataFrame, sensors: Sequence[str]) -> list[str]:
    """Sensors that behave like a drive signal: a zero cluster next to a distinct running one."""
    values = frame[list(sensors)].to_numpy(dtype=np.float64)
    level = _running_level(values)
    chosen = []
    for i, name in enumerate(sensors):
        col = values[:, i]
        col = col[np.isfinite(col)]
        if level[i] <= 0 or col.size < 10:
            continue
        zero = _near_zero(col, level[i])
        middle = (np.abs(col) > 0.15 * level[i]) & (np.abs(col) < 0.35 * level[i])
        share_zero, share_middle = zero.mean(), middle.mean()
        bimodal = 0.001 <= share_zero <= 0.6 and share_middle < 0.5 * share_zero + 0.01
        if bimodal:
            chosen.append(name)
    named = [s for s in sensors if DRIVE_HINT.search(str(s))]
    if len(chosen) == 1 and chosen[0] not in named:
        # One unnamed sensor dipping to zero is as likely a fault as a stop: not enough evidence.
        chosen = []
    if not chosen:
        # No stop in this data: fall back to names, which matter only for later data.
        chosen = named
    return chosen


def _runs_at_least(mask: np.ndarray, min_points: int) -> np.ndarray:
    """Keep only runs of True that last at least ``min_points`` samples (vectorised RLE)."""
    if min_points <= 1 or not mask.any():
        return mask
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    long = (ends - starts) >= min_points
    delta = np.zeros(len(mask) + 1, dtype=np.int64)
    np.add.at(delta, starts[long], 1)
    np.add.at(delta, ends[long], -1)
    return np.cumsum(delta[:-1]) > 0


def detect_machine_off(
    frame: pd.DataFrame,
    sensors: Sequence[str],
    *,
    reference: pd.DataFrame | None = None,
    min_points: int = 5,
) -> np.ndarray:
    """Boolean mask, row-aligned with ``frame``: True where the machine is stopped.

    Drive sensors and their running levels are learned from ``reference`` (e.g. training data)
    when given, else from ``frame``. Rows must be in time order within each
    asset for the ``min_points`` run filter to mean "consecutive samples"; with an ``asset``
    column each asset is filtered on its own.
    """
    sensors = [s for s in sensors if s in frame.columns]
    n = len(frame)
    if n == 0 or not sensors:
        return np.zeros(n, dtype=bool)
    ref = frame if reference is None else reference
    # A reference that never stopped and names no drive sensor gives no licence to call a stop:
    # several unnamed sensors falling to zero in new data is a fault to alarm on (a closing
    # valve in Tennessee Eastman fault 18 was silenced as "machine off" when it was).
    drives = drive_sensors(ref, sensors)
    if not drives:
        return np.zeros(n, dtype=bool)
    level = _running_level(ref[drives].to_numpy(dtype=np.float64))
    values = frame[drives].to_numpy(dtype=np.float64)
    usable = level > 0
    if not usable.any():
        return np.zeros(n, dtype=bool)
    off = _near_zero(values[:, usable], level[usable]).all(axis=1)
    if "asset" not in frame.columns:
        return _runs_at_least(off, min_points)
    # Runs must not continue across assets: filter each asset's rows in their own order.
    out = np.zeros(n, dtype=bool)
    codes = pd.factorize(frame["asset"])[0]
    order = np.argsort(codes, kind="stable")
    sorted_off = off[order]
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    pieces = np.split(np.arange(n), bounds)
    filtered = np.concatenate([_runs_at_least(sorted_off[p], min_points) for p in pieces])
    out[order] = filtered
    return out


def detect_transients(
    values: np.ndarray,
    hold: int,
    *,
    center: np.ndarray,
    scale: np.ndarray,
    lag: int = 3,
    step: float = 0.25,
    min_share: float = 0.3,
) -> np.ndarray:
    """Rows within ``hold`` samples after an operating-point change (rows in time order).

    A change is a *coordinated* move: at least ``max(2, min_share x sensors)`` sensors shift by
    more than ``step`` robust spreads (``scale``, e.g. the training IQR) within ``lag`` samples.
    Setpoint steps and restarts move most coupled sensors at once; a faulty sensor moves alone,
    so a sensor fault does not count as a change.
    """
    n, p = values.shape
    if n == 0 or p < 2:
        return np.zeros(n, dtype=bool)
    z = (values - center) / scale
    z = pd.DataFrame(z).ffill().bfill().rolling(3, min_periods=1).mean().to_numpy()
    before = np.vstack([np.repeat(z[:1], lag, axis=0), z[:-lag]])[:n]  # fewer rows than lag too
    moved = np.abs(z - before) > step
    starts = moved.sum(axis=1) >= max(2, int(np.ceil(min_share * p)))
    idx = np.arange(n)
    last = np.maximum.accumulate(np.where(starts, idx, -(10**12)))
    return idx - last <= hold
