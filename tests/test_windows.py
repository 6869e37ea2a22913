"""The slow re-centring's spread factor: lasting widening is scaled back, short faults are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.detect.windows import (
    LASTING_SCORE,
    SPREAD_KNEE,
    lasting_score_lift,
    past_spread_factor,
)

DAY = 1440
WINDOW = pd.Timedelta("5D").value


def _minutes(n: int) -> np.ndarray:
    return pd.date_range("2026-01-01", periods=n, freq="1min").to_numpy()


def test_widening_that_lasts_days_is_scaled_back_past_the_knee() -> None:
    rng = np.random.default_rng(0)
    n = 12 * DAY
    dev = rng.normal(0, 1, (n, 1))
    dev[2 * DAY :] *= 10
    factor = past_spread_factor(dev, _minutes(n), WINDOW, np.array([0.6745]))
    assert factor[: 2 * DAY].max() == 1.0  # history as wide as training
    assert 10 / SPREAD_KNEE * 0.8 < factor[-1, 0] < 10 / SPREAD_KNEE * 1.2


def test_a_fault_of_hours_or_a_widening_below_the_knee_leaves_the_scale_alone() -> None:
    rng = np.random.default_rng(1)
    n = 12 * DAY
    dev = rng.normal(0, 1, (n, 2))
    dev[-DAY : -DAY + 360, 0] *= 50  # six hours of a fault
    dev[2 * DAY :, 1] *= 0.9 * SPREAD_KNEE  # operating points a day of training missed
    factor = past_spread_factor(dev, _minutes(n), WINDOW, np.full(2, 0.6745))
    assert (factor == 1.0).all()


def test_without_history_the_factor_is_one() -> None:
    dev = np.full((50, 3), 100.0)
    assert (past_spread_factor(dev, _minutes(50), WINDOW, np.ones(3)) == 1.0).all()
    assert past_spread_factor(dev[:0], _minutes(0), WINDOW, np.ones(3)).shape == (0, 3)


def test_scores_that_run_high_for_days_lift_the_line_and_a_short_burst_does_not() -> None:
    n = 12 * DAY
    score = np.full(n, 0.2)
    score[-DAY : -DAY + 360] = 8.0  # six hours of a fault
    assert (lasting_score_lift(score, _minutes(n), WINDOW) == 1.0).all()
    score[3 * DAY :] = 1.5  # the plant has moved on from training
    score[-DAY : -DAY + 360] = 8.0
    lift = lasting_score_lift(score, _minutes(n), WINDOW)
    assert lift[: 3 * DAY].max() == 1.0
    assert lift[-1] == pytest.approx(1.5 / LASTING_SCORE)
    assert (score / lift)[-DAY + 100] > 2.5  # the fault still stands out
