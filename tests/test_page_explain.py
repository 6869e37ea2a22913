"""The Explain page through AppTest: empty states, an event's explanation, the run summary, links."""

import pytest

from core import store
from core.detect import runs
from core.explain.fitted import clear_models
from core.synth.demo import load_demo
from tests.apptest import open_app, shown


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "workspace.duckdb"
    monkeypatch.setenv("VIGIL_DB", str(path))
    yield path
    clear_models()


@pytest.fixture
def one_run(db):
    """A small demo plant with one executed PCA run (exact explanations keep this quick)."""
    con = store.open_workspace(db)
    info = load_demo(con, seed=3, n_assets=1, rows_per_asset=3000)
    summary = runs.execute_run(con, runs.RunConfig(dataset_id=info.id, detector="pca"))
    events = runs.run_events(con, summary.id)
    con.close()
    assert len(events) >= 2, "the demo plant's faults give events"
    return summary, events


def test_empty_workspace_points_to_load_data(db):
    at = open_app("pages/explain.py")
    assert not at.exception
    assert any("No dataset yet" in shown(i) for i in at.info)


def test_dataset_without_runs_points_to_detect(db):
    con = store.open_workspace(db)
    load_demo(con, seed=3, n_assets=1, rows_per_asset=2000)
    con.close()
    at = open_app("pages/explain.py")
    assert not at.exception
    assert any("No detection run" in shown(i) for i in at.info)


def test_top_event_of_the_latest_run_is_explained(one_run):
    summary, events = one_run
    at = open_app("pages/explain.py")
    assert not at.exception
    assert at.selectbox(key="explain_run").value == summary.id
    assert at.selectbox(key="explain_event_id").value == int(events["event_id"].iloc[0])
    sentence = next(shown(m) for m in at.markdown if shown(m).startswith("**Top sensors"))
    assert sentence.count(",") == 2, "three sensors with their contributions"
    assert any("exact decomposition" in shown(c) for c in at.caption), "says what values mean"
    assert any("add up to the score in the chart" in shown(c) for c in at.caption)
    assert len(at.get("plotly_chart")) == 2, "waterfall and heatmap"
    at.radio(key="explain_level").set_value("feature")
    at.run()
    assert not at.exception and len(at.get("plotly_chart")) == 2


def test_whole_run_tab_shows_the_global_summary(one_run):
    at = open_app("pages/explain.py")
    at.session_state["explain_tab"] = "Whole run"
    at.run()
    assert not at.exception
    assert any(shown(m).startswith("**Sensors driving its alarms:**") for m in at.markdown)
    assert len(at.get("plotly_chart")) == 2, "importance bars and the swarm"


def test_another_page_can_link_to_an_event(one_run):
    summary, events = one_run
    wanted = int(events["event_id"].iloc[-1])
    at = open_app()
    at.session_state["explain_event"] = (summary.id, wanted)
    at.switch_page("pages/explain.py")
    at.run()
    assert not at.exception
    assert at.selectbox(key="explain_event_id").value == wanted
    assert "explain_event" not in at.session_state, "the link is used once"


def test_a_link_to_a_deleted_run_is_an_error_not_a_crash(one_run):
    at = open_app()
    at.session_state["explain_event"] = (999, 1)
    at.switch_page("pages/explain.py")
    at.run()
    assert not at.exception
    assert any("no run #999" in shown(e) for e in at.error)
    assert len(at.get("plotly_chart")) == 2, "the latest run's top event is shown instead"
