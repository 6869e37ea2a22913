"""Rows of an operating mode training never saw: found, reported, and not a flood of alarms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.detect.model import AnomalyModel
from core.detect.operating_range import NEW_MODE_LINE, new_mode_rows, training_ranges


def pump(levels: list[tuple[float, int]], seed: int = 0) -> pd.DataFrame:
    """A pump held at speed setpoints (level, minutes) in turn, sensors following physically."""
    rng = np.random.default_rng(seed)
    command = np.concatenate([np.full(n, v) for v, n in levels])
    n = len(command)
    speed = pd.Series(command).rolling(3, min_periods=1).mean().to_numpy()
    current = 5.0 + 1e-8 * speed**3
    return pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-01", periods=n, freq="1min"),
            "speed": speed + rng.normal(0, 2.0, n),
            "flow": 0.1 * speed + rng.normal(0, 0.5, n),
            "pressure": 2e-6 * speed**2 + rng.normal(0, 0.02, n),
            "current": current + rng.normal(0, 0.2, n),
            "temp": pd.Series(current).ewm(span=40).mean().to_numpy() + 20 + rng.normal(0, 0.1, n),
        }
    )


def test_new_mode_needs_a_drive_sensor_and_another_sensor_outside() -> None:
    train = np.column_stack([np.linspace(0, 1, 200)] * 4)
    lo, hi = training_ranges(train)  # [-0.5, 1.5] per sensor after widening
    rows = np.array(
        [
            [0.5, 0.5, 0.5, 0.5],  # inside
            [3.0, 3.0, 3.0, 0.5],  # driven somewhere new, coupled sensors follow
            [0.5, 3.0, 3.0, 3.0],  # three outside but not the drive: a fault
            [3.0, 0.5, 0.5, 0.5],  # the drive alone: a fault of the drive sensor
            [3.0, 3.0, 0.5, 0.5],  # the drive and one coupled sensor
        ]
    )
    drives = np.array([True, False, False, False])
    assert new_mode_rows(rows, lo, hi, drives).tolist() == [False, True, False, False, True]
    assert not new_mode_rows(rows, lo, hi, np.zeros(4, bool)).any()  # no drive: never
    settled = new_mode_rows(rows[[0, 1, 0, 0, 0]], lo, hi, drives, settle=2)
    assert settled.tolist() == [False, True, True, True, False]


@pytest.fixture(scope="module")
def scored() -> tuple[pd.DataFrame, dict[bool, pd.DataFrame]]:
    """One day at 1000 and 1200 rpm, then a day that also runs at 1350 rpm (never trained on)
    and a coupling break at a known speed."""
    day = [(1000.0, 300), (1200.0, 300)] * 2 + [(1000.0, 240)]
    later = [(1200.0, 300), (1350.0, 400), (1000.0, 300), (1200.0, 440)]
    data = pump(day + later)
    train, test = data.iloc[:1440], data.iloc[1440:].reset_index(drop=True)
    test.loc[1200:1260, "current"] += 3.0  # in range, but not what speed implies
    out = {on: AnomalyModel(new_modes=on).fit(train).score(test).frame for on in (True, False)}
    return test, out


def test_an_unseen_speed_is_a_new_mode_not_a_flood(scored) -> None:
    test, out = scored
    fast = (test["speed"] > 1320).to_numpy()
    mode = out[True]["new_mode"].to_numpy()
    assert mode[fast].all() and not mode[:250].any()
    assert out[False]["is_anomaly"].to_numpy()[fast].mean() > 0.5  # it flooded before
    on = out[True]
    assert on["is_anomaly"].to_numpy()[fast].mean() < 0.05
    np.testing.assert_array_equal(
        on["is_anomaly"], (on["score"] > np.where(mode, NEW_MODE_LINE, 1.0)) & ~on["is_off"]
    )


def test_a_fault_at_a_known_speed_still_alarms(scored) -> None:
    _, out = scored
    flagged = out[True]["is_anomaly"].to_numpy()
    assert flagged[1205:1260].mean() > 0.5
    assert not out[True]["new_mode"].to_numpy()[1200:1260].any()


def test_a_version_keeps_the_new_mode_line() -> None:
    """A retrained version re-normalises the run's score; new-mode rows keep their higher line."""
    from core.detect.model import ScoreResult
    from core.learn.learned_model import ScoredParts

    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-01", periods=3, freq="1min"),
            "asset": "p1",
            "score": 0.0,
            "is_anomaly": False,
            "is_off": False,
            "new_mode": [False, True, True],
        }
    )
    result = ScoreResult(frame, {"p1": 1.0}, pd.DataFrame(), 60.0, "auto", [])
    combined = np.array([3.0, 3.0, 2 * NEW_MODE_LINE])
    scored = ScoredParts(result, combined, None, combined).normalised(threshold=1.0)
    assert scored.frame["is_anomaly"].tolist() == [True, False, True]


def test_new_mode_rows_are_stored_and_shaded_on_the_run_chart(workspace) -> None:
    """A stored run keeps which rows were in a new mode; its chart shades and names them, so a
    score above the line of 1 with no event there is explained."""
    from core import store
    from core.charts.common import NEW_MODE_COLOR
    from core.charts.detection import detection_figure
    from core.detect.run_chart import run_view
    from core.detect.runs import RunConfig, TrainingWindow, execute_run
    from tests.label_data import store_frame

    day = [(1000.0, 300), (1200.0, 300)] * 2 + [(1000.0, 240)]
    frame = pump(day + [(1200.0, 300), (1350.0, 400), (1000.0, 300)]).assign(asset="p1")
    info = store_frame(workspace, frame)
    window = TrainingWindow("first_rows", 1440)
    run = execute_run(workspace, RunConfig(dataset_id=info.id, training=window))
    scores = store.read_run_scores(workspace, run.id)
    fast = (frame["speed"] > 1320).to_numpy()
    assert scores["new_mode"].to_numpy()[fast].mean() > 0.9
    assert not scores["new_mode"].to_numpy()[:1440].any()
    shapes = detection_figure(run_view(workspace, run.id)).layout.shapes
    assert any(s.fillcolor == NEW_MODE_COLOR for s in shapes)
    names = [a.text for a in detection_figure(run_view(workspace, run.id)).layout.annotations]
    assert "new operating mode" in names


def test_a_versions_threshold_preview_keeps_the_new_mode_line(workspace) -> None:
    """The Threshold tab's preview at the version's own line alarms where the version alarms:
    a new operating mode's scores above 1 (but under 10) are not counted as alarms."""
    from core import store
    from core.detect.runs import RunConfig, TrainingWindow, execute_run
    from core.labels.points import label_points
    from core.learn import retraining as learning
    from core.learn.thresholds import ThresholdPreview
    from tests.label_data import store_frame
    from tests.test_learning import add_labels

    day = [(1000.0, 300), (1200.0, 300)] * 2 + [(1000.0, 240)]
    frame = pump(day + [(1200.0, 300), (1350.0, 400), (1000.0, 300), (1200.0, 440)])
    frame.loc[2640:2700, "current"] += 3.0
    info = store_frame(workspace, frame.assign(asset="p1"))
    window = TrainingWindow("first_rows", 1440)
    execute_run(workspace, RunConfig(dataset_id=info.id, training=window))
    add_labels(workspace, info, [("p1", 2640, 2700, "confirmed")])
    version = learning.retrain(workspace, learning.RetrainConfig(info.id), "tester").version
    scores = store.read_run_scores(workspace, version.run_id)
    assert scores["new_mode"].any() and (scores["score"] > 1)[scores["new_mode"]].any()
    flagged = np.where(scores["is_anomaly"], 2.0, 0.0)
    points = label_points(scores, pd.DataFrame(), 60.0, is_off=scores["is_off"].to_numpy())
    stored = ThresholdPreview.from_points(flagged, scores["ts"].to_numpy(), scores["asset"], points)
    preview = learning.version_preview(workspace, version.id)
    assert preview.at(1.0).alarms == stored.at(1.0).alarms
