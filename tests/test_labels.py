"""Labels on a real DuckDB file: history, current state, undo, audit, taxonomy, modes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import store
from core.detect import modes
from core.errors import DataError
from core.labels import history as labels
from tests.label_data import at, draft

# --- history, current state, undo ---------------------------------------------------------------


def test_a_label_keeps_everything_it_was_given(con, info):
    [label_id] = labels.create_labels(
        con,
        info.id,
        [draft(sensors=("temp", "vib"), comment="hot", source="detector", run_id=4, event_id=2)],
        "ana",
    )
    row = labels.current_labels(con, info.id).iloc[0]
    assert row["label_id"] == label_id
    assert (row["dataset_id"], row["asset"], row["verdict"], row["kind"]) == (
        info.id,
        "p1",
        "confirmed",
        "spike",
    )
    assert (row["start_ts"], row["end_ts"]) == (pd.Timestamp(at(10)), pd.Timestamp(at(20)))
    assert row["sensors"] == ["temp", "vib"]
    assert (row["comment"], row["source"], row["run_id"], row["event_id"]) == (
        "hot",
        "detector",
        4,
        2,
    )
    assert row["created_by"] == row["updated_by"] == "ana"
    assert row["created_at"] <= row["updated_at"]


def test_current_state_is_the_latest_history_row_and_deleted_labels_vanish(con, info):
    a, b = labels.create_labels(con, info.id, [draft(), draft(asset="p2")], "ana")
    labels.update_labels(con, [a], "bob", {"verdict": "unsure", "comment": "not sure"})
    labels.delete_labels(con, [b], "bob")
    current = labels.current_labels(con, info.id)
    assert current["label_id"].tolist() == [a]
    assert current.iloc[0]["verdict"] == "unsure"
    assert current.iloc[0]["created_by"] == "ana" and current.iloc[0]["updated_by"] == "bob"
    history = store.read_label_history(con, info.id)
    assert len(history) == 4, "two creates, one update, one delete: nothing overwritten"


def test_audit_says_who_changed_what_from_what_to_what(con, info):
    [a] = labels.create_labels(con, info.id, [draft(verdict="unsure", kind=None)], "ana")
    labels.update_labels(con, [a], "bob", {"verdict": "confirmed", "kind": "drift"})
    log = labels.audit_log(con, info.id)
    assert log["analyst"].tolist() == ["bob", "ana"]
    assert log["action"].tolist() == ["update", "create"]
    assert log.iloc[0]["what"] == "verdict: Unsure → Confirmed; kind: – → drift"
    assert log.iloc[1]["what"].startswith("Unsure on p1 2026-01-01 00:10:00")
    newest = labels.audit_log(con, info.id, limit=1)
    assert newest["what"].tolist() == [log.iloc[0]["what"]], "prev state survives the limit"


def test_unchanged_update_appends_nothing(con, info):
    [a] = labels.create_labels(con, info.id, [draft()], "ana")
    labels.update_labels(con, [a], "ana", {"verdict": "confirmed", "kind": "spike"})
    assert len(store.read_label_history(con, info.id)) == 1


def test_undo_walks_back_one_change_at_a_time(con, info):
    [a] = labels.create_labels(con, info.id, [draft(verdict="unsure", kind=None)], "ana")
    labels.update_labels(con, [a], "ana", {"verdict": "confirmed", "kind": "drift"})
    labels.update_labels(con, [a], "ana", {"comment": "checked on site"})

    first = labels.undo_last(con, info.id, "ana")
    row = labels.current_labels(con, info.id).iloc[0]
    assert (row["verdict"], row["kind"], row["comment"]) == ("confirmed", "drift", "")
    assert first is not None and first.label_ids == [a]

    labels.undo_last(con, info.id, "ana")
    assert labels.current_labels(con, info.id).iloc[0]["verdict"] == "unsure"

    labels.undo_last(con, info.id, "ana")
    assert labels.current_labels(con, info.id).empty, "undoing a create removes the label"
    assert labels.undo_last(con, info.id, "ana") is None
    history = store.read_label_history(con, info.id)
    assert (history["action"] == "undo").sum() == 3, "undo appends, never erases"


def test_undo_brings_a_deleted_label_back(con, info):
    [a] = labels.create_labels(con, info.id, [draft(comment="keep me")], "ana")
    labels.delete_labels(con, [a], "ana")
    assert labels.current_labels(con, info.id).empty
    labels.undo_last(con, info.id, "ana")
    assert labels.current_labels(con, info.id).iloc[0]["comment"] == "keep me"


def test_undo_reverts_a_whole_bulk_change(con, info):
    drafts = [draft(), draft(asset="p2"), draft(start=at(30), end=at(40))]
    ids = labels.create_labels(con, info.id, drafts, "x")
    labels.update_labels(con, ids, "x", {"verdict": "false_alarm", "kind": None})
    labels.undo_last(con, info.id, "x")
    assert set(labels.current_labels(con, info.id)["verdict"]) == {"confirmed"}


def test_undo_is_per_analyst_and_refuses_to_overwrite_someone_else(con, info):
    [a] = labels.create_labels(con, info.id, [draft()], "ana")
    labels.update_labels(con, [a], "ana", {"verdict": "unsure"})
    labels.update_labels(con, [a], "bob", {"comment": "bob was here"})
    with pytest.raises(DataError, match="changed by bob"):
        labels.undo_last(con, info.id, "ana")
    labels.undo_last(con, info.id, "bob")  # bob undoes his own change
    labels.undo_last(con, info.id, "ana")  # now ana's update can be undone
    assert labels.current_labels(con, info.id).iloc[0]["verdict"] == "confirmed"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"verdict": "maybe"}, "Unknown verdict 'maybe'"),
        ({"asset": "p9"}, "no asset 'p9'"),
        ({"sensors": ("temp", "nope")}, "no sensor 'nope'"),
        ({"start": at(30), "end": at(20)}, "must end after it starts"),
    ],
)
def test_bad_labels_are_refused_with_the_bad_value_named(con, info, bad, message):
    with pytest.raises(DataError, match=message):
        labels.create_labels(con, info.id, [draft(**bad)], "ana")
    assert labels.current_labels(con, info.id).empty


def test_editing_a_deleted_label_is_refused(con, info):
    [a] = labels.create_labels(con, info.id, [draft()], "ana")
    labels.delete_labels(con, [a], "bob")
    with pytest.raises(DataError, match="does not exist any more"):
        labels.update_labels(con, [a], "ana", {"verdict": "unsure"})


# --- taxonomy -----------------------------------------------------------------------------------


def test_taxonomy_defaults_and_edits(con):
    assert labels.fault_kinds(con)[:3] == ["spike", "drift", "level shift"]
    assert len(labels.fault_kinds(con)) == 8
    labels.set_fault_kinds(con, ["cavitation", " spike ", "", "cavitation"])
    assert labels.fault_kinds(con) == ["cavitation", "spike"]
    with pytest.raises(DataError, match="at least one kind"):
        labels.set_fault_kinds(con, ["  "])


# --- operating modes ---------------------------------------------------------------------------


def test_mode_mask_marks_timestamps_inside_marked_stretches(con, info):
    modes.add_mode(con, info.id, "p1", at(10), at(20), "machine off", "ana")
    modes.add_mode(con, info.id, "p1", at(15), at(30), "maintenance", "ana")
    modes.add_mode(con, info.id, "p2", at(0), at(100), "start-up", "ana")
    ts = np.array([at(m) for m in (5, 10, 25, 30, 31, 50)], dtype="datetime64[us]")
    assert modes.mode_mask(con, info.id, "p1", ts).tolist() == [0, 1, 1, 1, 0, 0]
    only_off = modes.mode_mask(con, info.id, "p1", ts, modes=["machine off"])
    assert only_off.tolist() == [0, 1, 0, 0, 0, 0]
    series = pd.Series(pd.to_datetime(ts))
    assert modes.mode_mask(con, info.id, "p2", series).all()


def test_removed_modes_stop_masking_but_stay_recorded(con, info):
    mark = modes.add_mode(con, info.id, "p1", at(10), at(20), "machine off", "ana")
    modes.remove_mode(con, mark, "bob")
    assert not modes.mode_mask(con, info.id, "p1", [at(15)]).any()
    assert modes.list_modes(con, info.id).empty
    kept = store.read_modes(con, info.id, include_deleted=True).iloc[0]
    assert kept["deleted_by"] == "bob" and kept["analyst"] == "ana"
    with pytest.raises(DataError, match="no operating-mode mark"):
        modes.remove_mode(con, mark, "bob")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("p1", at(10), at(20), "lunch"), "Unknown operating mode 'lunch'"),
        (("p7", at(10), at(20), "start-up"), "no asset 'p7'"),
        (("p1", at(20), at(10), "start-up"), "must end after it starts"),
    ],
)
def test_bad_mode_marks_are_refused(con, info, args, message):
    with pytest.raises(DataError, match=message):
        modes.add_mode(con, info.id, *args, analyst="ana")
