"""Very short training windows (issue 13's pump rig: 400 rows at 1 Hz, then score the rest).

Rig-like recordings come from `bench.short_data` (what they mimic is said there); the figures are
in bench/bench_short.py. These hold the floor: rolling windows short enough for the training
window, and normal rows after a 400-row window mostly calm, beside a static robust z.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.short_data import RIG_SENSORS, TRAIN_ROWS, StaticZ, recording
from core.detect.features import FeatureBuilder, FeatureConfig
from core.detect.model import AnomalyModel, pot_line
from core.types import TS


def _frame(rows: int, interval: str, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-01-01", periods=rows, freq=interval)
    return pd.DataFrame({TS: ts, "a": rng.normal(size=rows), "b": rng.normal(size=rows)})


@pytest.mark.parametrize(
    ("rows", "interval", "window"),
    [
        (400, "1s", 16),  # 15 min would be 900 samples, clipped to 60: 2.5 windows per 400 rows
        (1000, "1s", 40),
        (5000, "1s", 60),  # long enough: the configured window
        (1440, "1min", 15),  # a demo day: unchanged
        (500, "3min", 5),  # Tennessee Eastman's training file: unchanged
    ],
)
def test_rolling_windows_fit_the_training_window(rows, interval, window):
    fb = FeatureBuilder(FeatureConfig()).fit(_frame(rows, interval))
    assert fb.window_ == window
    assert fb.warmup_samples <= max(rows // 10, 2 * window)


def test_a_400_row_window_keeps_most_of_its_rows_to_learn_from():
    frame, _, _ = recording(0)
    pipe = next(iter(AnomalyModel().fit(frame.iloc[:TRAIN_ROWS]).pipelines_.values()))
    assert pipe.features.warmup_samples <= 40, "the warm-up took 120 of the 400 rows"
    assert pipe.train_rows >= 350
    assert np.isfinite(pipe.threshold) and pipe.threshold > pipe.center


def test_normal_rows_after_a_400_row_window_mostly_do_not_alarm():
    """16 rig-like recordings: auto's false alarms on normal rows after training stay at or
    under 10% (14.8% with 60-sample windows), under half a static robust z's, at a better F1."""
    flags, z_flags, truths = [], [], []
    for seed in range(16, 32):
        frame, truth, _ = recording(seed)
        train = frame.iloc[:TRAIN_ROWS]
        out = AnomalyModel().fit(train).score(frame).frame["is_anomaly"].to_numpy()
        flags.append(out[TRAIN_ROWS:])
        z_flags.append(StaticZ().fit(train, list(RIG_SENSORS)).run(frame)[1][TRAIN_ROWS:])
        truths.append(truth[TRAIN_ROWS:])
    truth = np.concatenate(truths)
    ours, static = np.concatenate(flags), np.concatenate(z_flags)
    assert ours[~truth].mean() <= 0.10
    assert ours[~truth].mean() <= 0.5 * static[~truth].mean()
    assert _f1(ours, truth) > _f1(static, truth)


def _f1(flags: np.ndarray, truth: np.ndarray) -> float:
    tp = (flags & truth).sum()
    return float(2 * tp / (flags.sum() + truth.sum()))


def test_isolation_forest_on_a_400_row_window_finds_faults():
    """Its scores are bounded, so the line comes from peaks over threshold: recall 0.23 -> 0.68
    over 32 recordings (bench_short.py) when the exponential rule put it past most faults."""
    flags, truths = [], []
    for seed in range(16, 24):
        frame, truth, _ = recording(seed)
        model = AnomalyModel(detector="iforest").fit(frame.iloc[:TRAIN_ROWS])
        pipe = next(iter(model.pipelines_.values()))
        assert np.isfinite(pipe.threshold) and pipe.threshold > pipe.center
        flags.append(model.score(frame).frame["is_anomaly"].to_numpy()[TRAIN_ROWS:])
        truths.append(truth[TRAIN_ROWS:])
    flag, truth = np.concatenate(flags), np.concatenate(truths)
    assert flag[truth].mean() >= 0.5
    assert flag[~truth].mean() <= 0.2


@pytest.mark.parametrize(
    ("draw", "low", "high"),
    [
        # A bounded tail (uniform on [0, 1]): the line stays near its end, where the exponential
        # rule (median + 2.5 x (q95 - median)) would put it at 1.6, past every score.
        (lambda rng: rng.uniform(0.0, 1.0, 2000), 0.95, 1.05),
        # An exponential tail: as deep as the default rule reaches (1 row in 600, about 6.4).
        (lambda rng: rng.exponential(1.0, 20_000), 5.5, 7.5),
    ],
)
def test_peaks_over_threshold_line_follows_the_tail(draw, low, high):
    line = pot_line(draw(np.random.default_rng(0)))
    assert line is not None and low <= line <= high


def test_peaks_over_threshold_needs_a_tail():
    assert pot_line(np.ones(500)) is None
    assert pot_line(np.arange(50.0)) is None  # 5 peaks above the 90th percentile: too few
