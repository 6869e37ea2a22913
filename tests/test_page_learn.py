"""The Learn page through AppTest: empty states, retrain, threshold preview, promote, label next."""

from __future__ import annotations

import sys
import threading
import time

import pandas as pd
import pytest

from core import store
from core.detect.runs import RunConfig, execute_run
from core.labels import history as labels
from core.labels import triage
from core.learn import versions
from core.learn.batches import append_batch
from core.learn.drift import drift_report
from core.learn.retraining import RetrainConfig, retrain, version_preview
from core.store.turns import dataset_turn
from core.synth.demo import DemoPlant, generate_plant, load_demo, store_plant
from core.types import TS
from tests.apptest import open_app, shown


@pytest.fixture
def workspace_path(tmp_path, monkeypatch):
    path = tmp_path / "workspace.duckdb"
    monkeypatch.setenv("VIGIL_DB", str(path))
    return path


@pytest.fixture
def labelled_demo(workspace_path):
    """A small demo plant with a run and a few verdicts given through core.labels.history."""
    con = store.open_workspace(workspace_path)
    info = load_demo(con, seed=3, n_assets=1, rows_per_asset=3000)
    run = execute_run(con, RunConfig(info.id))
    queue = triage.review_queue(con, run.id)
    labels.label_events(con, info.id, queue.head(2), "confirmed", "tester", kind="spike")
    labels.label_events(con, info.id, queue.iloc[2:4], "false_alarm", "tester")
    con.close()
    return workspace_path, info, run


def test_no_dataset_points_to_load_data(workspace_path):
    at = open_app("pages/learn.py")
    assert not at.exception
    assert any("No dataset yet" in shown(i) for i in at.info)


def test_no_labels_explains_how_many_are_needed(workspace_path):
    con = store.open_workspace(workspace_path)
    load_demo(con, seed=3, n_assets=1, rows_per_asset=2000)
    con.close()
    at = open_app("pages/learn.py")
    assert not at.exception
    text = " ".join(shown(i) for i in at.info)
    assert "No labels yet" in text and "3 more confirmed anomalies and 1 more false alarm" in text
    assert "No model version yet" in text
    retrain = next(b for b in at.button if b.label == "Retrain with labels")
    assert retrain.disabled, "nothing to learn from yet"
    assert "No detection run yet: suggestions are chosen among a run's events" in text
    assert not at.error, "no run yet is an empty state, not a red error on Label next"


def test_retrain_preview_promote_and_label_next(labelled_demo):
    path, info, run = labelled_demo
    at = open_app("pages/learn.py")
    assert not at.exception
    metrics = {m.label: shown(m) for m in at.metric}
    assert metrics["Confirmed"] == "2" and metrics["False alarms"] == "2"
    assert metrics["Active model"] == "none"
    assert any("needs 1 more confirmed" in shown(c) for c in at.caption)

    at.button[0].click().run()  # the retrain form's submit button
    assert not at.exception, at.exception
    metrics = {m.label: shown(m) for m in at.metric}
    assert metrics["Versions"] == "1"
    said = [shown(m) for m in at.success if shown(m).startswith("Saved v")]
    assert len(said) == 1 and "F1 0.67 vs 0.67" in said[0] and "model in use stays" in said[0]
    assert f"the run in use (#{run.id}) has {run.n_events}" in said[0], said
    verdicts = [shown(m) for m in [*at.info, *at.success]]
    assert any(f"run #{run.id} (unsupervised)" in v for v in verdicts), verdicts
    assert {"Precision", "Recall", "F1", "Alarms a day"} <= set(metrics)

    at.select_slider(key="learn_th").set_value(2.0).run()
    assert not at.exception
    assert at.button(key="learn_th_save").label.startswith("Save x2")

    at.toggle(key="learn_th_budget").set_value(True).run()
    at.number_input(key="learn_pd").set_value(10_000.0).run()  # a budget that limits nothing
    assert not at.exception
    saves = [b.label for b in at.button if b.label.startswith("Save x")]
    assert all(not label.startswith("Save x0 ") for label in saves), saves  # not a line at 0
    at.toggle(key="learn_th_budget").set_value(False).run()

    assert not [m for m in at.markdown if "Active model" in m.value], "nothing active yet"
    promote = next(b for b in at.button if b.label.startswith("Promote v"))
    promote.click().run()
    assert not at.exception
    # the picker's options never change (a browser kept a promoted version's old text in it)
    assert all("(active)" not in o for o in at.selectbox(key="learn_version").options)
    assert [m for m in at.markdown if "Active model" in m.value], "said beside it"
    con = store.open_workspace(path)
    try:
        assert versions.active_version(con, info.id) is not None
    finally:
        con.close()
    assert {m.label: shown(m) for m in at.metric}["Active model"].startswith("v")
    assert len(at.dataframe) >= 2, "versions table and the label-next list"


def test_unsure_labels_only_disable_retrain_with_the_reason(labelled_demo):
    path, info, run = labelled_demo
    con = store.open_workspace(path)
    ids = labels.current_labels(con, info.id)["label_id"].astype(int).tolist()
    labels.update_labels(con, ids[:1], "ann", {"verdict": "unsure"})
    labels.delete_labels(con, ids[1:], "ann")
    con.close()
    at = open_app("pages/learn.py")
    assert not at.exception
    assert any("(1 unsure only), so there is nothing to retrain" in shown(i) for i in at.info)
    assert next(b for b in at.button if b.label == "Retrain with labels").disabled


def test_verdicts_withdrawn_before_the_click_retrain_nothing(labelled_demo):
    """Another analyst deletes every verdict while the page is open: the click reruns the page,
    which reads the labels again, refuses in one message and saves no version."""
    path, info, run = labelled_demo
    at = open_app("pages/learn.py")
    retrain = next(b for b in at.button if b.label == "Retrain with labels")
    assert not retrain.disabled
    con = store.open_workspace(path)
    labels.delete_labels(con, labels.current_labels(con, info.id)["label_id"].tolist(), "bob")
    con.close()
    retrain.click().run()
    assert not at.exception, at.exception
    assert any("nothing to retrain from" in shown(i) for i in at.info)
    assert next(b for b in at.button if b.label == "Retrain with labels").disabled
    con = store.open_workspace(path)
    try:
        assert versions.list_versions(con, info.id) == []
    finally:
        con.close()


def test_a_failed_retrain_keeps_its_reason_in_view(labelled_demo):
    """The status box collapsed on failure: 'Retraining failed' with the reason hidden in it."""
    at = open_app("pages/learn.py")
    at.number_input(key="learn_m").set_value(10_000)  # no training row left around the labels
    at.button[0].click().run()  # the retrain form's submit button
    assert not at.exception
    [status] = [s for s in at.get("status") if s.label == "Retraining failed"]
    assert status.proto.expanded, "the reason must not hide in a collapsed box"
    assert any("Lower the margin" in shown(e) for e in at.error)
    assert any("run detection with a longer training window" in shown(e) for e in at.error)


def _waiting_for_turn() -> bool:
    """Whether another thread (the app's script runner) waits to enter a dataset's turn."""
    for ident, frame in sys._current_frames().items():
        while ident != threading.get_ident() and frame is not None:
            if frame.f_code.co_name == "dataset_turn":
                return True
            frame = frame.f_back
    return False


def test_a_dataset_deleted_during_a_retrain_leaves_no_traceback(labelled_demo):
    """Another session deletes the dataset while this one retrains: the retrain says nothing
    was stored, and the Versions tab, drawn from the versions read at the top of the run, says
    they are gone instead of raising."""
    path, info, run = labelled_demo
    con = store.open_workspace(path)
    retrain(con, RetrainConfig(info.id), "ann")  # a version for the Versions tab to show
    con.close()
    at = open_app("pages/learn.py")
    assert not at.exception and len(at.dataframe) >= 1
    clicked = threading.Thread(target=lambda: at.button[0].click().run())
    con = store.open_workspace(path)
    try:
        with dataset_turn(con, info.id):  # the retrain waits here to save its version
            clicked.start()
            deadline = time.monotonic() + 120
            while not _waiting_for_turn() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _waiting_for_turn(), "the retrain never reached its save"
            store.delete_dataset(con, info.id)
        clicked.join(120)
    finally:
        con.close()
    assert not at.exception, at.exception
    errors = [shown(e) for e in at.error]
    assert any("was deleted by another session meanwhile: nothing was stored" in e for e in errors)
    assert any("There is no model version v" in e for e in errors), errors


def _drift_table(at):
    """The Drift tab's table, PSI by name."""
    [table] = [d.value for d in at.dataframe if "psi" in d.value.columns]
    return table.set_index("name")["psi"]


def test_drift_and_preview_follow_a_batch_appended_after_the_page_was_drawn(
    workspace_path, tmp_path
):
    """Learn's caches were keyed by labels and versions only: after a batch whose suction
    pressure had jumped was appended, the Drift tab kept the report from before it and the
    Threshold tab kept the alarms a day of the rows it had seen."""
    plant = generate_plant(seed=11, n_assets=1, rows_per_asset=4_200)
    head, tail = plant.readings.iloc[:3_200], plant.readings.iloc[3_200:].copy()
    con = store.open_workspace(workspace_path)
    info = store_plant(con, DemoPlant(head, plant.faults.iloc[:0], plant.machine_off), "pumps", 11)
    run = execute_run(con, RunConfig(info.id))
    queue = triage.review_queue(con, run.id)
    labels.label_events(con, info.id, queue.head(2), "confirmed", "tester", kind="spike")
    labels.label_events(con, info.id, queue.iloc[2:4], "false_alarm", "tester")
    version = retrain(con, RetrainConfig(info.id), "tester").version
    versions.promote(con, version.id, "tester")
    con.close()
    at = open_app("pages/learn.py")
    assert not at.exception
    before = _drift_table(at)

    tail["suction_pressure_bar"] += 5.0
    batch = tmp_path / "tomorrow.csv"
    tail.rename(columns={TS: "timestamp"}).to_csv(batch, index=False)
    con = store.open_workspace(workspace_path)
    try:
        assert append_batch(con, info.id, batch).n_rows == 1_000
        per_day = version_preview(con, version.id).at(1.0).alarms_per_day
        fresh = drift_report(con, info.id, version.id).table.round(3).set_index("name")["psi"]
    finally:
        con.close()
    at.run()
    assert not at.exception
    assert fresh["suction_pressure_bar"] > before["suction_pressure_bar"] + 0.3, "it drifted"
    pd.testing.assert_series_equal(_drift_table(at), fresh)
    assert {m.label: shown(m) for m in at.metric}["Alarms a day"] == f"{per_day:.1f}"


def test_saving_a_threshold_shows_the_new_version_without_a_traceback(labelled_demo):
    """'Save x2 as a new version' stored the version, then set the Versions tab's picker after
    it was drawn: StreamlitWidgetAlreadyInstantiatedError in place of the page."""
    path, info, run = labelled_demo
    con = store.open_workspace(path)
    first = retrain(con, RetrainConfig(info.id), "ann").version
    con.close()
    at = open_app("pages/learn.py")
    at.select_slider(key="learn_th").set_value(2.0).run()
    at.button(key="learn_th_save").click().run()
    assert not at.exception, at.exception
    con = store.open_workspace(path)
    try:
        [saved, _] = versions.list_versions(con, info.id)
    finally:
        con.close()
    assert saved.parent_id == first.id and saved.threshold == pytest.approx(2 * first.threshold)
    assert [shown(s) for s in at.success if shown(s).startswith("Saved v")] == [
        f"Saved v{saved.id}: Threshold of v{first.id} x 2."
    ]
    assert at.selectbox(key="learn_version").value == saved.id, "the new version is shown"
    assert at.select_slider(key="learn_th").value == 1.0, "at its own line"
    assert not [b for b in at.button if b.key == "learn_th_save"]


@pytest.mark.parametrize("budget", [0.0, -3.0])
def test_an_alert_budget_that_is_no_positive_number_is_refused_in_words(labelled_demo, budget):
    """With min and max on the field, Streamlit kept an out-of-range entry red and the form's
    button did nothing, silently; now core refuses it before any fitting, in one sentence."""
    path, info, _ = labelled_demo
    at = open_app("pages/learn.py")
    at.toggle(key="learn_budget_on").set_value(True)
    at.number_input(key="learn_budget").set_value(budget)
    at.button[0].click().run()  # the retrain form's submit button
    assert not at.exception
    assert any("alert budget must be a positive number" in shown(e) for e in at.error)
    con = store.open_workspace(path)
    try:
        assert versions.list_versions(con, info.id) == [], "nothing saved"
    finally:
        con.close()

    at.number_input(key="learn_budget").set_value(5.0)  # a good budget: a version to preview
    at.button[0].click().run()
    assert not at.exception and not at.error
    at.toggle(key="learn_th_budget").set_value(True).run()
    at.number_input(key="learn_pd").set_value(budget).run()
    assert not at.exception
    assert any("alert budget must be a positive number" in shown(e) for e in at.error)
    assert any(m.label == "Alarms a day" for m in at.metric), "the saved line stays in view"
