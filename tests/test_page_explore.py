"""The Explore page through AppTest: empty state, summary, charts and the quality report."""

import pytest

from core import store
from core.synth.demo import load_demo
from tests.apptest import open_app


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    path = tmp_path / "workspace.duckdb"
    monkeypatch.setenv("VIGIL_DB", str(path))
    return path


def test_empty_workspace_points_to_load_data(workspace):
    at = open_app("pages/explore.py")
    assert not at.exception
    assert any("No dataset yet" in i.value for i in at.info)


def test_demo_dataset_summary_and_charts(workspace):
    con = store.open_workspace(workspace)
    info = load_demo(con, seed=3, n_assets=2, rows_per_asset=3000)
    con.close()
    at = open_app("pages/explore.py")
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Rows"] == f"{info.n_rows:,}"
    assert metrics["Assets"] == "2"
    charts = at.get("plotly_chart")
    assert len(charts) == 2, "sensor chart and correlation heatmap"
    assert any("readings in the window" in c.value for c in at.caption)


def test_picking_no_sensor_says_so(workspace):
    con = store.open_workspace(workspace)
    load_demo(con, seed=3, n_assets=1, rows_per_asset=2000)
    con.close()
    at = open_app("pages/explore.py")
    at.multiselect(key="explore_sensors").set_value([])
    at.run()
    assert not at.exception
    assert any("Pick at least one sensor" in i.value for i in at.info)
