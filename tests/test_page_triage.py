"""The Triage page through AppTest: queue actions, bulk, undo, comments, chart labels, audit."""

from __future__ import annotations

import pytest

from core import store
from core.detect import modes
from core.labels import history as labels
from tests.apptest import open_app, shown
from tests.label_data import EVENTS, at, make_dataset, make_run, store_frame

PAGE = "pages/triage.py"


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "workspace.duckdb"
    monkeypatch.setenv("VIGIL_DB", str(path))
    return path


@pytest.fixture
def prepared(db):
    """A dataset with one run of three events (p1 sev 3, p2 sev 2, p1 sev 1)."""
    con = store.open_workspace(db)
    info = make_dataset(con)
    run_id = make_run(con, info, EVENTS)
    con.close()
    return db, info, run_id


def _labels(db, info):
    con = store.open_workspace(db)
    try:
        return labels.current_labels(con, info.id), labels.audit_log(con, info.id)
    finally:
        con.close()


def _progress_text(at) -> str:
    return at.get("progress")[0].proto.text


def _open(analyst: str = "ana"):
    at = open_app(PAGE)
    at.sidebar.text_input(key="sidebar_analyst").set_value(analyst)
    return at.run()


def test_empty_workspace(db):
    at = open_app(PAGE)
    assert not at.exception
    assert any("No dataset yet" in shown(i) for i in at.info)


def test_dataset_without_runs_says_where_to_run_one(db):
    con = store.open_workspace(db)
    make_dataset(con)
    con.close()
    at = open_app(PAGE)
    assert not at.exception
    assert any("No detection run" in shown(i) for i in at.info)


def test_queue_lists_events_unreviewed_first_with_progress(prepared):
    at = _open()
    assert not at.exception
    table = at.dataframe[0].value
    assert table["event"].tolist() == [1, 3, 2]
    assert table["top sensors"].tolist()[0] == "temp, flow"
    assert _progress_text(at).startswith("Reviewed 0 of 3 events")
    assert any("Event 1 of 3" in shown(m) for m in at.markdown)
    assert len(at.get("plotly_chart")) >= 1


def test_confirm_with_kind_and_advance(prepared):
    db, info, _ = prepared
    at = _open()
    at.selectbox(key="triage_kind_1_1").set_value("drift")
    at.text_input(key="triage_comment_1_1").set_value("bearing")
    at.button(key="triage_confirmed").click().run()
    assert not at.exception
    assert any("Confirm: event 1" in shown(s) for s in at.success)
    assert _progress_text(at).startswith("Reviewed 1 of 3 events · detector precision so far 100%")
    assert any("Event 1 of 3" in shown(m) and "p2" in shown(m) for m in at.markdown), "advanced"
    current, _ = _labels(db, info)
    row = current.iloc[0]
    assert (row["verdict"], row["kind"], row["comment"]) == ("confirmed", "drift", "bearing")
    assert row["sensors"] == ["temp", "flow"] and row["updated_by"] == "ana"
    assert (row["run_id"], row["event_id"], row["source"]) == (1, 1, "detector")


def test_false_alarm_unsure_and_navigation(prepared):
    db, info, _ = prepared
    at = _open()
    at.button(key="triage_false_alarm").click().run()  # event 1, then the queue moves on
    at.button(key="triage_next").click().run()
    assert any("Event 2 of 3" in shown(m) for m in at.markdown)
    at.button(key="triage_previous").click().run()
    assert any("Event 1 of 3" in shown(m) for m in at.markdown)
    at.button(key="triage_unsure").click().run()
    current, _ = _labels(db, info)
    assert sorted(current["verdict"]) == ["false_alarm", "unsure"]
    assert set(current["kind"].dropna()) == set()
    assert "precision so far 0%" in _progress_text(at)


def test_selecting_a_row_opens_it_and_navigation_still_works(prepared):
    at = _open()
    at.session_state["triage_table_0"] = {"selection": {"rows": [2], "columns": []}}
    at.run()
    assert any("Event 3 of 3" in shown(m) and "peak 0.70" in shown(m) for m in at.markdown)
    at.button(key="triage_next").click().run()
    assert any("Event 1 of 3" in shown(m) for m in at.markdown), "next wraps around"


def test_bulk_action_on_selected_rows(prepared):
    db, info, _ = prepared
    at = _open()
    at.session_state["triage_table_0"] = {"selection": {"rows": [0, 1], "columns": []}}
    at.run()
    at.selectbox(key="triage_bk").set_value("noise")
    at.button(key="triage_bulk_confirmed").click().run()
    assert not at.exception
    current, audit = _labels(db, info)
    assert sorted(current["event_id"].tolist()) == [1, 3]
    assert set(current["kind"]) == {"noise"}
    assert audit["change"].nunique() == 1, "one bulk action is one change"


def test_undo_reverts_my_last_change(prepared):
    db, info, _ = prepared
    at = _open()
    at.button(key="triage_confirmed").click().run()
    at.button(key="triage_undo").click().run()
    assert not at.exception
    assert any("Undid create of 1 label(s)" in shown(s) for s in at.success)
    current, audit = _labels(db, info)
    assert current.empty
    assert audit["action"].tolist() == ["undo", "create"]
    at.button(key="triage_undo").click().run()
    assert any("Nothing to undo" in shown(i) for i in at.info), "news, not a success"
    assert not any("Nothing to undo" in shown(s) for s in at.success)


def test_comment_on_a_labelled_event(prepared):
    db, info, _ = prepared
    at = _open()
    assert at.button(key="triage_comment_save").disabled, "nothing to comment on yet"
    at.button(key="triage_unsure").click().run()
    at.button(key="triage_previous").click().run()  # back to event 1, now labelled
    at.text_input(key="triage_comment_1_1").set_value("ask the operator")
    at.button(key="triage_comment_save").click().run()
    current, _ = _labels(db, info)
    assert current.iloc[0]["comment"] == "ask the operator"
    assert current.iloc[0]["verdict"] == "unsure"


def test_confirm_without_choosing_a_kind_leaves_it_unset(prepared):
    db, info, _ = prepared
    at = _open()
    assert at.selectbox(key="triage_kind_1_1").value is None
    at.button(key="triage_confirmed").click().run()
    current, _ = _labels(db, info)
    assert current.iloc[0]["verdict"] == "confirmed" and current.iloc[0]["kind"] is None


def test_an_unnamed_analyst_is_told_how_verdicts_are_signed(prepared):
    at = open_app(PAGE).run()
    assert any("saved as “anonymous”" in shown(c) for c in at.caption)
    assert not any("saved as" in shown(c) for c in _open("bob").caption)


def test_audit_view_shows_who_changed_what(prepared):
    at = _open("bob")
    at.button(key="triage_unsure").click().run()
    at.button(key="triage_previous").click().run()
    at.selectbox(key="triage_kind_1_1").set_value("spike")
    at.button(key="triage_confirmed").click().run()
    audit = next(d.value for d in at.dataframe if "what" in d.value.columns)
    assert audit["analyst"].tolist() == ["bob", "bob"]
    assert audit.iloc[0]["what"].startswith("verdict: Unsure → Confirmed; kind: – → spike")


def test_box_selection_on_the_chart_creates_an_analyst_found_label(prepared):
    db, info, _ = prepared
    at = _open()
    box = {"x": ["2026-01-01 01:45:00", "2026-01-01 01:50:00"], "y": [0, 1]}
    selection = {"points": [], "point_indices": [], "box": [box], "lasso": []}
    at.session_state["triage_chart_1_1"] = {"selection": selection}
    at.run()
    assert any("Selected on the chart" in shown(c) for c in at.caption)
    at.button(key="triage_range_label").click().run()
    assert not at.exception
    current, _ = _labels(db, info)
    row = current.iloc[0]
    assert (row["source"], row["asset"]) == ("analyst", "p1")
    assert (row["start_ts"], row["end_ts"]) == (at_ts(105), at_ts(110))


def test_box_selection_corrects_the_event_extent(prepared):
    db, info, _ = prepared
    at = _open()
    box = {"x": ["2026-01-01 01:38:00", "2026-01-01 01:52:00"]}
    at.session_state["triage_chart_1_1"] = {"selection": {"box": [box]}}
    at.run()
    at.button(key="triage_range_extent").click().run()
    current, _ = _labels(db, info)
    assert (current.iloc[0]["start_ts"], current.iloc[0]["end_ts"]) == (at_ts(98), at_ts(112))
    assert current.iloc[0]["event_id"] == 1


def test_importing_a_bad_file_reports_rows(prepared):
    at = _open()
    bad = b"asset,start,end,verdict\np1,2026-01-01,2026-01-01 00:10,confirmed\np9,x,y,maybe\n"
    at.get("file_uploader")[0].upload("bad.csv", bad, "text/csv")
    at.run()
    at.button(key="triage_import_go").click().run()
    assert not at.exception
    assert any("row 2: asset 'p9'" in shown(e) for e in at.error)


def test_find_similar_from_a_labelled_event_and_label_matches(prepared):
    db, info, _ = prepared
    at = _open()
    at.selectbox(key="triage_kind_1_1").set_value("spike")
    at.button(key="triage_confirmed").click().run()
    at.button(key="triage_previous").click().run()  # event 1 is labelled now
    at.button(key="triage_similar_go").click().run()
    assert not at.exception
    thumbs = [c for c in at.get("plotly_chart") if c.proto.id and "triage_thumb" in c.proto.id]
    assert len(thumbs) == 8
    at.multiselect(key="triage_pick").set_value([1, 2]).run()
    next(b for b in at.button if b.label.startswith("Give 2 match")).click().run()
    assert not at.exception
    current, _ = _labels(db, info)
    similar_rows = current[current["source"] == "similar"]
    assert len(similar_rows) == 2
    assert set(similar_rows["kind"]) == {"spike"}
    assert similar_rows["comment"].str.startswith("similar to label #1").all()


def test_label_and_mode_from_the_browse_chart(prepared):
    db, info, _ = prepared
    at = _open()
    box = {"x": ["2026-01-01 02:00:00", "2026-01-01 02:30:00"]}
    at.session_state["triage_b_chart"] = {"selection": {"box": [box]}}
    at.run()
    at.selectbox(key="triage_b_v").set_value("unsure")
    at.button(key="triage_b_create").click().run()
    at.session_state["triage_b_chart"] = {"selection": {"box": [box]}}
    at.run()
    at.selectbox(key="triage_b_mode").set_value("maintenance")
    at.button(key="triage_b_mark").click().run()
    assert not at.exception
    assert any("Marked as maintenance" in shown(s) for s in at.success)
    current, _ = _labels(db, info)
    assert current.iloc[0]["verdict"] == "unsure" and current.iloc[0]["kind"] is None
    assert current.iloc[0]["sensors"] == ["temp", "flow"]
    con = store.open_workspace(db)
    try:
        mask = modes.mode_mask(con, info.id, "p1", [at_ts(119), at_ts(125), at_ts(151)])
    finally:
        con.close()
    assert mask.tolist() == [False, True, False]


def test_delete_selected_labels_and_edit_the_taxonomy(prepared):
    db, info, _ = prepared
    at = _open()
    at.button(key="triage_confirmed").click().run()
    at.session_state["triage_labels_1"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    at.button(key="triage_delete").click().run()
    assert _labels(db, info)[0].empty
    at.text_area(key="triage_taxonomy").set_value("cavitation\nspike")
    at.button(key="triage_taxonomy_save").click().run()
    assert any("Taxonomy saved" in shown(s) for s in at.success)
    assert at.selectbox(key="triage_kind_1_3").options == ["cavitation", "spike"]


def at_ts(minutes: float):
    import pandas as pd

    return pd.Timestamp(at(minutes))


def test_an_event_handed_over_by_another_page_opens(prepared):
    at = _open()
    at.session_state["triage_focus"] = (1, 3)
    at.run()
    assert not at.exception
    assert any("Event" in shown(m) and "of 3" in shown(m) for m in at.markdown)
    header = next(shown(m) for m in at.markdown if "of 3" in shown(m))
    assert "p2" in header, "event 3 is the p2 event of the toy run"


def test_label_the_chart_shows_the_new_datasets_sensors_after_a_switch(db):
    """Its Sensors picker kept the last dataset's choice, which the next one has not: it
    showed empty after a switch in the sidebar."""
    con = store.open_workspace(db)
    first = make_dataset(con)
    renamed = {s: f"{s}_b" for s in first.sensors}
    second = store_frame(con, store.read_readings(con, first).rename(columns=renamed), "other")
    con.close()
    at = _open()
    assert at.sidebar.selectbox(key="sidebar_dataset").value == second.id
    at.sidebar.selectbox(key="sidebar_dataset").set_value(first.id)
    at.run()
    assert not at.exception
    [sensors] = [m for m in at.multiselect if m.label == "Sensors"]
    assert sensors.value == first.sensors[:2]
