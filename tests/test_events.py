"""Events: flagged rows merged across short gaps, split otherwise, ranked, attributed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.detect.events import EVENT_COLUMNS, extract_events, severity
from core.detect.model import ScoreResult
from core.errors import DataError

START = pd.Timestamp("2026-01-01")


def _result(flags_by_asset: dict[str, list[int]], n: int = 40, peaks=None) -> ScoreResult:
    """A scored run: one row per minute per asset; flagged rows score 2 (or their peak)."""
    frames, devs = [], []
    for asset, flagged in flags_by_asset.items():
        score = np.zeros(n)
        score[flagged] = 2.0
        for row, value in (peaks or {}).get(asset, {}).items():
            score[row] = value
        frames.append(
            pd.DataFrame(
                {
                    "ts": START + pd.to_timedelta(np.arange(n), "min"),
                    "asset": asset,
                    "score": score,
                    "is_anomaly": score > 1.0,
                    "is_off": False,
                }
            )
        )
        dev = np.zeros((n, 3))
        dev[flagged, 1] = 6.0  # "temp" deviates most on flagged rows
        dev[flagged, 2] = 4.0  # "flow" a little less
        dev[flagged, 0] = 1.0  # "speed" barely
        devs.append(pd.DataFrame(dev, columns=["speed", "temp", "flow"]))
    frame = pd.concat(frames, ignore_index=True)
    return ScoreResult(frame, {a: 1.0 for a in flags_by_asset}, pd.concat(devs, ignore_index=True))


def test_short_gaps_merge_and_long_gaps_split() -> None:
    # rows 5-7, gap of 2, rows 10-11 -> one event; gap of 6 -> a second event at 18-19
    events = extract_events(_result({"A": [5, 6, 7, 10, 11, 18, 19]}), 60.0, max_gap_points=3)
    assert list(events.columns) == EVENT_COLUMNS
    assert len(events) == 2
    first = events.sort_values("start").iloc[0]
    assert first["start"] == START + pd.Timedelta(minutes=5)
    assert first["end"] == START + pd.Timedelta(minutes=11)
    assert first["n_points"] == 5  # flagged rows, not the gap
    assert first["duration_s"] == 7 * 60  # 5..11 inclusive
    tight = extract_events(_result({"A": [5, 6, 7, 10, 11]}), 60.0, max_gap_points=1)
    assert len(tight) == 2


def test_assets_never_merge_and_min_points_drops_blips() -> None:
    result = _result({"A": [5, 6, 7], "B": [6, 7, 30]})
    events = extract_events(result, 60.0)
    assert sorted(events["asset"]) == ["A", "B", "B"]
    assert len(extract_events(result, 60.0, min_points=2)) == 2


def test_events_are_ranked_by_severity_with_peak_and_duration() -> None:
    peaks = {"A": {3: 5.0, 30: 3.0}}
    # event 1: one row at 5.0; event 2: rows 10-19 at 2.0; event 3: row 30 at 3.0
    result = _result({"A": [3, *range(10, 20), 30]}, peaks=peaks)
    events = extract_events(result, 60.0, max_gap_points=0)
    assert list(events["event_id"]) == [1, 2, 3]
    assert list(events["severity"]) == sorted(events["severity"], reverse=True)
    expected = severity(np.array([2.0, 5.0, 3.0]), np.array([600.0, 60.0, 60.0]), 60.0)
    np.testing.assert_allclose(events["severity"], expected)  # 2*log2(11) > 5 > 3
    assert events.iloc[1]["peak_ts"] == START + pd.Timedelta(minutes=3)
    assert events.iloc[1]["peak_score"] == 5.0


def test_severity_of_a_single_sample_at_the_line_is_one() -> None:
    assert severity(np.array([1.0]), np.array([60.0]), 60.0)[0] == pytest.approx(1.0)
    assert severity(np.array([1.0]), np.array([180.0]), 60.0)[0] == pytest.approx(2.0)


def test_top_sensors_most_deviating_first() -> None:
    events = extract_events(_result({"A": [5, 6, 7]}), 60.0)
    row = events.iloc[0]
    assert row["top_sensors"] == ["temp", "flow"]  # speed is below half of temp's deviation
    assert row["sensor_scores"] == {"speed": 1.0, "temp": 6.0, "flow": 4.0}


def test_no_flags_means_no_events_and_bad_interval_is_an_error() -> None:
    events = extract_events(_result({"A": []}), 60.0)
    assert events.empty and list(events.columns) == EVENT_COLUMNS
    with pytest.raises(DataError, match="interval must be positive"):
        extract_events(_result({"A": [1]}), 0.0)
