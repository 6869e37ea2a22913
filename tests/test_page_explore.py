"""The Explore page through AppTest: empty state, summary, charts and the quality report."""

import pytest

from core import store
from core.ingest import ingest_file
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
    [sensors] = [m for m in at.multiselect if m.label == "Sensors"]
    sensors.set_value([])
    at.run()
    assert not at.exception
    assert any("Pick at least one sensor" in i.value for i in at.info)


def test_switching_dataset_plots_the_new_datasets_first_sensors(workspace, tmp_path):
    """The Sensors picker kept the last dataset's choice, which the next one has not: it
    showed empty ('Pick at least one sensor') after every switch in the sidebar."""
    csv = tmp_path / "one.csv"
    csv.write_text("time,a,b\n" + "".join(
        f"2024-01-01 00:{m:02d}:00,{m % 7},{m % 5}\n" for m in range(60)))  # fmt: skip
    con = store.open_workspace(workspace)
    demo = load_demo(con, seed=3, n_assets=1, rows_per_asset=2000)
    ingest_file(con, csv)
    con.close()
    at = open_app("pages/explore.py")
    assert at.sidebar.selectbox(key="sidebar_dataset").value != demo.id
    at.sidebar.selectbox(key="sidebar_dataset").set_value(demo.id)
    at.run()
    assert not at.exception
    [sensors] = [m for m in at.multiselect if m.label == "Sensors"]
    assert sensors.value == demo.sensors[:4]
    assert not any("Pick at least one sensor" in i.value for i in at.info)
