"""What to label next (order and reasons) and drift (PSI/KS) on toy data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.detect.runs import RunConfig, execute_run
from core.errors import DataError
from core.labels import history as labels
from core.labels import triage
from core.learn import active, drift, versions
from core.learn import retraining as learning
from tests.test_learning import add_labels, at, make_dataset, toy_frame


def events(peaks, sensors=None) -> pd.DataFrame:
    sensors = sensors or [["temp", "flow"]] * len(peaks)
    return pd.DataFrame(
        {
            "run_id": 1,
            "event_id": range(1, len(peaks) + 1),
            "asset": "p1",
            "start": [at(10 * i) for i in range(len(peaks))],
            "end": [at(10 * i + 5) for i in range(len(peaks))],
            "peak_score": peaks,
            "top_sensors": sensors,
        }
    )


def test_closest_to_the_threshold_comes_first():
    ranked = active.rank_events(events([5.0, 1.05, 1.6, 0.98, 20.0]), {frozenset({"temp", "flow"})})
    assert list(ranked["event_id"]) == [4, 2, 3, 1, 5]
    assert ranked["priority"].is_monotonic_decreasing
    assert ranked["reason"].iloc[0].startswith("close to the threshold (peak 0.98x")


def test_disagreement_and_new_patterns_raise_priority_once():
    frame = events(
        [1.1, 1.1, 1.1, 3.0],
        [["temp", "flow"], ["vib", "temp"], ["temp", "vib"], ["temp", "flow"]],
    )
    ranked = active.rank_events(frame, {frozenset({"temp", "flow"})}, {4: 1.0})
    order = list(ranked["event_id"])
    assert order[0] == 2, "an unseen pattern (temp + vib) first"
    assert order[-1] == 1 or order.index(3) > order.index(2)
    third = ranked.set_index("event_id")
    assert third.at[2, "novelty"] == 1 and third.at[3, "novelty"] == 0, "new only once"
    assert "new deviation pattern: temp + vib" in third.at[2, "reason"]
    assert "detectors disagree on it (evenly split)" in third.at[4, "reason"]
    assert third.at[4, "priority"] > active.closeness(np.array([3.0]))[0]


def test_suggestions_skip_reviewed_events(workspace):
    info = make_dataset(workspace, toy_frame(n=900, faults=[("p1", 500, 520, "temp", 8.0)]))
    run = execute_run(workspace, RunConfig(info.id))
    queue = triage.review_queue(workspace, run.id)
    assert len(queue) >= 1
    labels.label_events(workspace, info.id, queue.head(1), "false_alarm", "tester")
    todo = active.suggest(workspace, info.id, limit=50)
    assert int(queue["event_id"].iloc[0]) not in set(todo["event_id"])
    assert len(todo) == len(queue) - 1
    assert todo["reason"].str.len().gt(0).all()


def test_psi_and_ks_see_a_shift_and_not_sameness():
    rng = np.random.default_rng(0)
    ref = {"same": rng.normal(size=3000), "moved": rng.normal(size=3000)}
    cur = {"same": rng.normal(size=2000), "moved": rng.normal(1.0, 1.0, size=2000)}
    table = drift.compare_samples(ref, cur).set_index("name")
    assert table.at["moved", "status"] == "drifted" and table.at["moved", "psi"] > drift.PSI_DRIFT
    assert table.at["same", "status"] == "stable" and table.at["same", "psi"] < drift.PSI_MODERATE
    assert table.at["moved", "ks"] > 0.3 > table.at["same", "ks"]
    assert drift.psi(ref["same"], ref["same"]) == pytest.approx(0.0)


def test_drift_report_flags_the_shifted_sensor_only(workspace):
    frame = toy_frame(n=1200, walk=0.0)
    later = (frame["ts"] >= at(600)).to_numpy()
    frame.loc[later, "vib"] += 6.0  # vib moves after the training window; the others do not
    info = make_dataset(workspace, frame)
    with pytest.raises(DataError, match="Promote a model version first"):
        drift.drift_report(workspace, info.id)
    add_labels(workspace, info, [("p1", 100, 110, "false_alarm")])  # retraining needs a verdict
    version = learning.retrain(workspace, learning.RetrainConfig(info.id), "tester").version
    versions.promote(workspace, version.id, "tester")
    report = drift.drift_report(workspace, info.id, period="2h")
    table = report.table.set_index("name")
    assert table.at["vib", "status"] == "drifted"
    assert table.at["temp", "psi"] < table.at["vib", "psi"] / 3
    assert report.retrain_suggested and any(r.startswith("vib has PSI") for r in report.reasons)
    assert not any(r.startswith("temp ") for r in report.reasons)
    assert report.n_current > 0 and set(report.timeline["name"]) >= {"vib", drift.SCORE}


def test_drift_figure_colours_by_status():
    from core.charts.learning import drift_figure

    rng = np.random.default_rng(1)
    table = drift.compare_samples(
        {"a": rng.normal(size=2000), "b": rng.normal(size=2000)},
        {"a": rng.normal(size=2000), "b": rng.normal(2.0, 1.0, size=2000)},
    )
    report = drift.DriftReport(1, 1, 2000, 2000, None, None, table, pd.DataFrame(), True, [])
    bar = drift_figure(report).data[0]
    colours = dict(zip(bar.y, bar.marker.color, strict=True))
    assert colours["b"] == "#dc2626" and colours["a"] == "#16a34a"


@pytest.mark.parametrize(
    ("period", "labels"),
    [("1D", ["2026-03-01"]), ("1D", ["2026-03-01", "2026-03-02"]), ("2h", ["2026-03-01 02:00"])],
)
def test_drift_timeline_names_its_periods_even_when_there_is_one(period, labels):
    """New data within one day made a heatmap of one cell on a date axis: 1 ms wide, its
    ticks reading '23:59:59.9996 Feb 28, 2026'."""
    from core.charts.learning import drift_timeline_figure

    rng = np.random.default_rng(2)
    ts = pd.to_datetime(labels).repeat(200) + pd.Timedelta("5min")
    current = pd.DataFrame({"ts": ts, "a": rng.normal(size=len(ts))})
    timeline = drift.psi_timeline({"a": rng.normal(size=2000)}, current, period)
    report = drift.DriftReport(1, 1, 2000, len(ts), None, None, pd.DataFrame(), timeline, False, [])
    fig = drift_timeline_figure(report)
    assert list(fig.data[0].x) == labels
    assert fig.layout.xaxis.type == "category"


def test_short_blips_rank_below_longer_events_equally_close_to_the_line():
    frame = events([1.05, 1.05, 1.05]).assign(duration_s=[0.0, 1800.0, 300.0])
    ranked = active.rank_events(frame, {frozenset({"temp", "flow"})})
    assert list(ranked["event_id"]) == [2, 3, 1], "a half-hour event teaches more than a blip"
    assert ranked.set_index("event_id").at[1, "reach"] == pytest.approx(np.sqrt(60 / 1800))


def test_without_enough_confirmed_labels_every_other_pick_is_the_most_severe():
    frame = events([1.02, 40.0, 1.1, 6.0, 0.97])
    ranked = active.rank_events(frame, {frozenset({"temp", "flow"})}, need_confirmed=True)
    assert list(ranked["event_id"])[:4] == [2, 1, 4, 5]
    assert list(ranked["severe_pick"])[:4] == [True, False, True, False]
    assert ranked["reason"].iloc[0].startswith("among the most severe (peak 40.00x")
    plain = active.rank_events(frame, {frozenset({"temp", "flow"})})
    assert not plain["severe_pick"].any() and plain["event_id"].iloc[0] == 1


def test_the_most_severe_pick_prefers_a_sustained_event_to_a_one_sample_spike():
    frame = events([200.0, 40.0, 1.2]).assign(duration_s=[0.0, 1800.0, 600.0])
    ranked = active.rank_events(frame, {frozenset({"temp", "flow"})}, need_confirmed=True)
    assert ranked["event_id"].iloc[0] == 2, "40x for half an hour beats 200x for one sample"
    assert ranked["severe_pick"].iloc[0]
