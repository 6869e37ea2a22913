"""Operating ranges of training: where each sensor went, and rows of a mode training never saw.

A model knows only the operating points its training window held. Rows where several sensors at
once lie beyond anything training saw are a new operating mode (a speed setpoint the first day
never ran, a hot week), not a fault of one part: scored as alarms they flood the review queue
with thousands of rows no threshold can calm. `new_mode_rows` finds them so that a run reports
each such stretch as a new operating mode, and alarms there only past `NEW_MODE_LINE`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TAIL = 0.005
"""Training ranges run from this quantile to its mirror, so a few odd training rows do not
stretch them."""
WIDEN = 0.5
"""Each range is widened by this share of its width on both sides: slow drift the features'
re-centring absorbs stays inside."""
NEW_MODE_SENSORS = 2
"""Sensors (a drive sensor among them) that must lie outside their ranges together for a row to be
in a new operating mode: a faulty transmitter moves its own reading alone; driving the machine
somewhere new moves the sensors coupled to the drive with it. 3 instead of 2: the same on demo
plants without drift, 5.9% instead of 5.3% false alarms at one spread of drift, as many faults."""
NEW_MODE_LINE = 10.0
"""In a new operating mode a row alarms only past this many alarm lines: a gross departure is
still a fault, the rest is the model not knowing the mode. Measured on demo plants trained on one
day (seeds 101-108, no drift; bench/bench_real.py --seeds ... --drift 0): false alarms 5.4% ->
3.2%, faults found 107 -> 106 of 133; muting new modes outright also gave 3.2% but found 100;
lines of 3, 5 and 30 found 106, 106 and 103 at 3.8%, 3.4% and 3.2%."""


def training_ranges(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the widened range of the training ``values`` (rows x sensors, NaN ignored);
    an empty table gives no range (NaN, nothing is outside)."""
    if len(values) == 0:
        nan = np.full(values.shape[1], np.nan)
        return nan, nan
    lo, hi = np.nanquantile(values, TAIL, axis=0), np.nanquantile(values, 1 - TAIL, axis=0)
    pad = WIDEN * (hi - lo)
    return lo - pad, hi + pad


def outside(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per cell, whether the value lies beyond its sensor's range (NaN compares False)."""
    with np.errstate(invalid="ignore"):
        return (values < lo) | (values > hi)


def new_mode_rows(
    values: np.ndarray, lo: np.ndarray, hi: np.ndarray, drives: np.ndarray, settle: int = 0
) -> np.ndarray:
    """Rows of time-ordered ``values`` in an operating mode training never saw, and the
    ``settle`` rows after each such stretch (features are still full of it).

    A new mode is where a drive sensor (``drives``, per sensor: speed, a setpoint; see
    `machine_state.drive_sensors`) and `NEW_MODE_SENSORS` sensors in all lie outside their
    ranges at once: the machine was driven somewhere new and its coupled sensors followed.
    Without a drive sensor it is never a new mode: many sensors beyond their ranges is what a
    plant-wide fault looks like too (Tennessee Eastman's step faults)."""
    n = len(values)
    drives = np.asarray(drives, dtype=bool)
    if values.shape[1] < NEW_MODE_SENSORS or n == 0 or not drives.any():
        return np.zeros(n, dtype=bool)
    beyond = outside(values, lo, hi)
    rows = (beyond.sum(axis=1) >= NEW_MODE_SENSORS) & beyond[:, drives].any(axis=1)
    if settle > 0 and rows.any():
        idx = np.arange(n)
        last = np.maximum.accumulate(np.where(rows, idx, -settle - 1))
        rows = idx - last <= settle
    return rows


def row_lines(frame: pd.DataFrame) -> np.ndarray:
    """Each scored row's alarm line in multiples of its model's: `NEW_MODE_LINE` in a new
    operating mode, 1 elsewhere (and everywhere for a frame without a ``new_mode`` column)."""
    if "new_mode" not in frame:
        return np.ones(len(frame))
    mode = frame["new_mode"].fillna(False).to_numpy(dtype=bool)
    return np.where(mode, NEW_MODE_LINE, 1.0)
