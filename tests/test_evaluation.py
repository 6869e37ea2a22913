"""Evaluation metrics on tiny cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.detect.evaluation import compare, evaluate
from core.errors import DataError

START = pd.Timestamp("2026-01-01")


def _ts(i: int) -> pd.Timestamp:
    return START + pd.Timedelta(minutes=i)


def _scored(flags: list[int], n: int = 10, scores=None, off=(), asset: str = "A") -> pd.DataFrame:
    is_anomaly = np.zeros(n, dtype=bool)
    is_anomaly[flags] = True
    score = np.asarray(scores, float) if scores is not None else is_anomaly.astype(float) * 2
    is_off = np.zeros(n, dtype=bool)
    is_off[list(off)] = True
    return pd.DataFrame(
        {
            "ts": [_ts(i) for i in range(n)],
            "asset": asset,
            "score": score,
            "is_anomaly": is_anomaly,
            "is_off": is_off,
        }
    )


def test_point_event_and_delay_metrics_by_hand() -> None:
    # truth: rows 3..5; flags: 4, 5 (inside) and 8 (a false alarm)
    truth = pd.DataFrame({"asset": ["A"], "start": [_ts(3)], "end": [_ts(5)]})
    e = evaluate(_scored([4, 5, 8]), truth)
    assert e.precision == pytest.approx(2 / 3)
    assert e.recall == pytest.approx(2 / 3)
    assert e.f1 == pytest.approx(2 / 3)
    assert e.false_alarm_rate == pytest.approx(1 / 7)  # 1 of 7 normal rows
    assert e.event_recall == 1.0
    assert e.event_precision == 0.5  # runs [4-5] (hits) and [8] (misses)
    assert e.mean_delay_s == 60.0 and e.median_delay_s == 60.0  # start 3 -> first flag 4
    # point-adjusted: the whole window counts as found: TP 3, FP 1 -> P 3/4, R 1
    assert e.point_adjusted_f1 == pytest.approx(2 * 0.75 / 1.75)
    assert (e.n_points, e.n_truth_points, e.n_flagged) == (10, 3, 3)
    assert (e.n_events, e.n_events_found, e.n_predicted_events) == (1, 1, 2)


def test_pr_auc_is_average_precision_of_the_score() -> None:
    truth = pd.DataFrame({"asset": ["A"], "start": [_ts(3)], "end": [_ts(4)]})
    # ranking: row 3 (0.9) true, row 7 (0.8) false, row 4 (0.7) true, the rest 0
    scores = np.zeros(10)
    scores[[3, 7, 4]] = [0.9, 0.8, 0.7]
    e = evaluate(_scored([3], scores=scores), truth)
    assert e.pr_auc == pytest.approx(0.5 * 1.0 + 0.5 * (2 / 3))


def test_missed_events_and_several_assets() -> None:
    truth = pd.DataFrame(
        {
            "asset": ["A", "B"],
            "start": [_ts(2), _ts(6)],
            "end": [_ts(3), _ts(7)],
        }
    )
    scored = pd.concat([_scored([2]), _scored([2], asset="B")], ignore_index=True)
    e = evaluate(scored, truth)
    assert e.event_recall == 0.5  # A's window found, B's missed (B's flag is outside it)
    assert e.n_events_found == 1
    assert e.event_precision == 0.5
    assert e.recall == pytest.approx(1 / 4)


def test_off_rows_are_left_out() -> None:
    truth = pd.DataFrame({"asset": ["A"], "start": [_ts(3)], "end": [_ts(5)]})
    e = evaluate(_scored([3, 4, 5, 8], off=[8, 9]), truth)
    assert e.n_points == 8
    assert e.false_alarm_rate == 0.0
    assert e.precision == 1.0 and e.recall == 1.0 and e.f1 == 1.0


def test_no_flags_gives_zeros_and_nan_delay() -> None:
    truth = pd.DataFrame({"asset": ["A"], "start": [_ts(3)], "end": [_ts(5)]})
    e = evaluate(_scored([]), truth)
    assert e.precision == 0.0 and e.recall == 0.0 and e.f1 == 0.0
    assert math.isnan(e.mean_delay_s)
    assert e.to_dict()["event_recall"] == 0.0


def test_truth_without_asset_applies_to_every_asset() -> None:
    truth = pd.DataFrame({"start": [_ts(3)], "end": [_ts(3)]})
    scored = pd.concat([_scored([3]), _scored([], asset="B")], ignore_index=True)
    e = evaluate(scored, truth)
    assert e.n_truth_points == 2 and e.recall == 0.5


def test_compare_puts_evaluations_side_by_side() -> None:
    truth = pd.DataFrame({"asset": ["A"], "start": [_ts(3)], "end": [_ts(5)]})
    table = compare(
        {"good": evaluate(_scored([3, 4, 5]), truth), "bad": evaluate(_scored([8]), truth)}
    )
    assert list(table.index) == ["good", "bad"]
    assert table.loc["good", "f1"] == 1.0 and table.loc["bad", "f1"] == 0.0
    assert "point_adjusted_f1" in table.columns


def test_missing_columns_are_data_errors() -> None:
    truth = pd.DataFrame({"asset": ["A"], "start": [_ts(3)], "end": [_ts(5)]})
    with pytest.raises(DataError, match="'is_anomaly'"):
        evaluate(_scored([1]).drop(columns=["is_anomaly"]), truth)
    with pytest.raises(DataError, match="'start' and 'end'"):
        evaluate(_scored([1]), truth.drop(columns=["end"]))
