"""The Detect page through AppTest: empty states, a run with events and metrics, errors, delete."""

import pytest
from streamlit.testing.v1 import AppTest

from core import store
from core.ingest import ingest_file
from core.synth.demo import load_demo
from tests.apptest import open_app


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    path = tmp_path / "workspace.duckdb"
    monkeypatch.setenv("VIGIL_DB", str(path))
    return path


@pytest.fixture
def demo_workspace(workspace):
    con = store.open_workspace(workspace)
    load_demo(con, seed=3, n_assets=2, rows_per_asset=8000)  # training covers the setpoints
    con.close()
    return workspace


def _open() -> AppTest:
    return open_app("pages/detect.py")


def test_empty_workspace_points_to_load_data(workspace):
    at = _open()
    assert not at.exception
    assert any("No dataset yet" in i.value for i in at.info)


def test_run_shows_events_metrics_and_chart(demo_workspace):
    at = _open()
    assert not at.exception
    assert any("No runs yet" in i.value for i in at.info)
    at.button(key="detect_go").click()
    at.run()
    assert not at.exception
    assert not at.error
    run_label = at.selectbox(key="detect_run").value
    assert run_label == 1
    metrics = {m.label: m.value for m in at.metric}
    assert {"F1", "Precision", "Recall", "Faults found"} <= set(metrics)
    assert float(metrics["Recall"]) > 0
    assert len(at.get("plotly_chart")) >= 1
    events = at.dataframe[0].value
    assert len(events) > 0 and {"start", "severity", "top sensors"} <= set(events.columns)
    assert any("Events (" in s.value for s in at.subheader)


def test_bad_training_window_shows_an_error_and_stores_nothing(demo_workspace):
    at = _open()
    at.selectbox(key="detect_window").set_value("first_rows")
    at.run()
    at.number_input(key="detect_rows").set_value(8000)
    at.button(key="detect_go").click()
    at.run()
    assert not at.exception
    assert any("covers all" in e.value for e in at.error)
    assert any("No runs yet" in i.value for i in at.info)


def test_compare_and_delete_runs(demo_workspace):
    at = _open()
    at.button(key="detect_go").click()
    at.run()
    at.selectbox(key="detect_detector").set_value("pca")
    at.run()
    at.button(key="detect_go").click()
    at.run()
    assert not at.exception
    assert at.multiselect(key="detect_compare_2").value == [2, 1], "a new run: a fresh pair"
    at.multiselect(key="detect_compare_2").set_value([2, 1])
    at.run()
    table = next(d.value for d in at.dataframe if "run" in d.value.columns)
    assert list(table["run"]) == ["#2", "#1"] and "f1" in table.columns
    at.button(key="detect_delete").click()
    at.run()
    assert not at.exception
    picker = at.selectbox(key="detect_run")
    assert picker.value == 1 and len(picker.options) == 1


def test_deleting_a_run_another_session_is_changing_says_so(demo_workspace):
    """A real write-write conflict: another session is deleting the same run, not yet done."""
    at = _open()
    at.button(key="detect_go").click()
    at.run()
    other = store.open_workspace(demo_workspace)  # the other analyst's session
    other.begin()
    other.execute("DELETE FROM runs WHERE id = 1")
    at.button(key="detect_delete").click()
    at.run()
    assert not at.exception
    assert any("Another session was changing the same data" in e.value for e in at.error)
    other.rollback()
    other.close()
    at.button(key="detect_delete").click()
    at.run()
    assert not at.exception
    assert any("No runs yet" in i.value for i in at.info), "retrying after the other is done works"


def test_switching_to_a_dataset_with_other_assets_selects_all_of_them(demo_workspace, tmp_path):
    """The Assets picker kept the last dataset's choice ('main'), which the demo plant has not:
    it showed empty and Run detector said 'Choose at least one asset'."""
    csv = tmp_path / "one.csv"
    csv.write_text("time,a,b\n" + "".join(
        f"2024-01-01 {h:02d}:{m:02d}:00,{(h * m) % 7},{m % 5}\n"
        for h in range(10) for m in range(60)))  # fmt: skip
    con = store.open_workspace(demo_workspace)
    ingest_file(con, csv)
    demo = next(d for d in store.list_datasets(con) if d.layout == "demo")
    con.close()
    at = _open()
    assert at.sidebar.selectbox(key="sidebar_dataset").value != demo.id
    at.sidebar.selectbox(key="sidebar_dataset").set_value(demo.id)
    at.run()
    [assets] = [m for m in at.multiselect if m.label == "Assets"]
    assert assets.value == demo.assets
    at.button(key="detect_go").click()
    at.run()
    assert not at.exception
    assert not at.error
    assert at.selectbox(key="detect_run").value == 1
