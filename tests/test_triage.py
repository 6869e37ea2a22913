"""The review queue and the triage views on a real DuckDB file: order, filters, progress, charts."""

from __future__ import annotations

import pandas as pd
import pytest

from core.charts.triage import label_view_figure
from core.detect import modes
from core.detect.runs import ALARM_LINE
from core.labels import history as labels
from core.labels import triage
from core.labels.triage import QueueFilter
from tests.label_data import EVENTS, at, draft, make_run


def test_queue_is_unreviewed_first_then_most_severe(con, info):
    run = make_run(con, info, EVENTS)
    queue = triage.review_queue(con, run)
    assert queue["event_id"].tolist() == [1, 3, 2]
    assert set(queue["status"]) == {"unreviewed"}
    labels.label_events(con, info.id, queue.iloc[[0]], "confirmed", "ana", kind="spike")
    queue = triage.review_queue(con, run)
    assert queue["event_id"].tolist() == [3, 2, 1]
    assert queue.iloc[2]["status"] == "confirmed" and queue.iloc[2]["kind"] == "spike"
    assert queue.iloc[2]["label_sensors"] == ["temp", "flow"], "default: top sensors"


def test_verdicts_in_bulk_are_one_change_and_update_existing_labels(con, info):
    run = make_run(con, info, EVENTS)
    queue = triage.review_queue(con, run)
    labels.label_events(con, info.id, queue.iloc[[0]], "unsure", "ana")
    queue = triage.review_queue(con, run)
    labels.label_events(con, info.id, queue, "false_alarm", "ana", comment="pump test")
    after = triage.review_queue(con, run)
    assert set(after["status"]) == {"false_alarm"}
    assert set(after["comment"]) == {"pump test"}
    assert len(labels.current_labels(con, info.id)) == 3, "the unsure label was updated"
    labels.undo_last(con, info.id, "ana")
    statuses = triage.review_queue(con, run).set_index("event_id")["status"]
    assert statuses.to_dict() == {1: "unsure", 2: "unreviewed", 3: "unreviewed"}


def test_labels_survive_deleting_the_run_and_apply_to_later_runs(con, info):
    from core.detect.runs import delete_run

    first = make_run(con, info, EVENTS)
    queue = triage.review_queue(con, first)
    labels.label_events(con, info.id, queue.iloc[[0]], "confirmed", "ana", kind="drift")
    delete_run(con, first)
    assert len(labels.current_labels(con, info.id)) == 1
    later = make_run(
        con,
        info,
        [
            {"asset": "p1", "start": 105, "end": 130},  # overlaps the confirmed event
            {"asset": "p2", "start": 105, "end": 130},  # same time, other asset
        ],
    )
    statuses = triage.review_queue(con, later).set_index("event_id")["status"]
    assert statuses.to_dict() == {1: "confirmed", 2: "unreviewed"}


def test_an_events_own_label_wins_over_a_bigger_overlap(con, info):
    run = make_run(con, info, [{"asset": "p1", "start": 100, "end": 110}])
    queue = triage.review_queue(con, run)
    labels.label_events(con, info.id, queue, "confirmed", "ana", kind="spike")
    [own] = labels.current_labels(con, info.id)["label_id"]
    labels.update_labels(con, [own], "ana", {"start_ts": at(108), "end_ts": at(109)})
    labels.create_labels(con, info.id, [draft(start=at(90), end=at(120), verdict="unsure")], "b")
    assert triage.review_queue(con, run).iloc[0]["label_id"] == own


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (QueueFilter(assets=("p2",)), [3]),
        (QueueFilter(sensors=("flow",)), [1]),
        (QueueFilter(statuses=("confirmed",)), [1]),
        (QueueFilter(statuses=("unreviewed",)), [3, 2]),
        (QueueFilter(kinds=("spike",)), [1]),
        (QueueFilter(start=at(250), end=at(400)), [2]),
        (QueueFilter(min_score=1.5), [3]),
        (QueueFilter(), [3, 2, 1]),
    ],
)
def test_queue_filters(con, info, flt, expected):
    run = make_run(con, info, EVENTS)
    first = triage.review_queue(con, run).iloc[[0]]
    labels.label_events(con, info.id, first, "confirmed", "ana", kind="spike")
    assert triage.review_queue(con, run, flt)["event_id"].tolist() == expected


def test_progress_and_precision_from_verdicts(con, info):
    run = make_run(con, info, [*EVENTS, {"asset": "p2", "start": 500, "end": 510}])
    queue = triage.review_queue(con, run)
    assert triage.review_progress(queue).precision is None
    labels.label_events(con, info.id, queue.iloc[[0, 1]], "confirmed", "a", kind="spike")
    labels.label_events(con, info.id, queue.iloc[[2]], "false_alarm", "a")
    progress = triage.review_progress(triage.review_queue(con, run))
    assert (progress.n_events, progress.n_reviewed) == (4, 3)
    assert progress.precision == pytest.approx(2 / 3)


def test_event_view_shows_context_sensors_score_and_threshold(con, info):
    run = make_run(con, info, EVENTS, threshold=0.42)
    event = triage.review_queue(con, run).iloc[0].to_dict()  # p1, minutes 100..110
    view = triage.event_view(con, run, event)
    assert view.sensors == ["temp", "flow"]
    assert view.start == at(40) and view.end == at(170), "60 samples of context each side"
    assert view.readings["ts"].min() == pd.Timestamp(at(40))
    assert len(view.scores) == 131 and view.threshold == ALARM_LINE  # stored scores are normalised
    assert view.focus == (at(100), at(110))


def test_the_labelling_chart_shows_the_score_on_a_log_axis(con, info):
    """One spike at 1000x the line must not flatten the rest of the score to a zero line."""
    run = make_run(con, info, EVENTS, threshold=0.42)
    view = triage.event_view(con, run, triage.review_queue(con, run).iloc[0].to_dict())
    view.scores.loc[view.scores.index[5], "score"] = 1000.0
    view.scores.loc[view.scores.index[6], "score"] = 0.0  # machine off: drawn at the floor
    fig = label_view_figure(view)
    score_axis = fig.layout[f"yaxis{len(view.sensors) + 1}"]
    assert score_axis.type == "log"
    score = next(t for t in fig.data if t.name == "anomaly score")
    assert min(score.y) > 0 and max(score.y) == 1000.0
    titles = [a.text for a in fig.layout.annotations]
    assert "<b>anomaly score (log scale)</b>" in titles


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ([{"x": ["2026-01-01 00:20:00", "2026-01-01 00:10:00"], "y": [0, 1]}], (at(10), at(20))),
        (
            [{"x": [pd.Timestamp(at(5)).value / 1e6, pd.Timestamp(at(6)).value / 1e6]}],
            (at(5), at(6)),
        ),
        ([], None),
        (None, None),
    ],
)
def test_box_selection_becomes_a_time_range(box, expected):
    assert triage.selected_range(box) == expected


def test_mode_marks_show_in_the_label_view(con, info):
    modes.add_mode(con, info.id, "p1", at(100), at(120), "maintenance", "ana")
    view = triage.label_view(con, info.id, "p1", ["temp"], at(90), at(130))
    assert view.modes["mode"].tolist() == ["maintenance"]
    assert view.scores.empty and view.threshold is None


def test_a_verdict_is_refused_when_its_event_changed_or_moved_since_it_was_shown():
    shown = {
        "event_id": 4, "status": "unreviewed", "kind": None, "label_id": None, "reviewed_by": "",
    }  # fmt: skip
    assert triage.event_changed(shown, dict(shown, start=1)) is None
    assert triage.event_changed(None, shown) is None, "nothing drawn yet: nothing to compare"
    by_bob = dict(shown, status="confirmed", kind="leak", label_id=9, reviewed_by="bob")
    why = triage.event_changed(shown, by_bob)
    assert why.startswith("bob changed this event") and "Confirmed / leak" in why
    moved = triage.event_changed(shown, dict(shown, event_id=5))
    assert "Event 4" in moved and "Nothing was saved" in moved
    assert triage.event_snapshot(by_bob) == {k: by_bob[k] for k in triage.SHOWN_FIELDS}
