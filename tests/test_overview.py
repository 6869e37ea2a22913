"""The stakeholder overview and its exports, on a real workspace with a real run and labels."""

import pandas as pd
import pytest

from core import labels, store, triage
from core.demo import load_demo
from core.overview import ATTENTION, HEALTHY, dataset_overview, events_export
from core.report import html_report
from core.runs import RunConfig, execute_run
from tests.apptest import open_app


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    path = tmp_path_factory.mktemp("overview") / "w.duckdb"
    con = store.open_workspace(path)
    info = load_demo(con, seed=11, n_assets=2, rows_per_asset=4000)
    run = execute_run(con, RunConfig(dataset_id=info.id))
    con.close()
    return path, info, run


def test_overview_without_a_run_lists_assets_as_healthy(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    info = load_demo(con, seed=2, n_assets=2, rows_per_asset=1500)
    overview = dataset_overview(con, info)
    assert overview.run is None
    assert overview.assets["status"].tolist() == [HEALTHY, HEALTHY]


def test_verdicts_drive_kpis_health_and_exports(workspace):
    path, info, run = workspace
    con = store.open_workspace(path)
    try:
        queue = triage.review_queue(con, run.id)
        assert len(queue) >= 2, "the demo plant should give this run a few events"
        labels.label_events(con, info.id, queue.iloc[:1], "confirmed", "ana", kind="spike")
        labels.label_events(con, info.id, queue.iloc[1:2], "false_alarm", "ana")
        overview = dataset_overview(con, info, run.id)
    finally:
        con.close()
    kpis = dict(overview.kpis)
    assert kpis["Confirmed faults"] == "1"
    assert kpis["Detector precision"] == "50%"
    assert kpis["Reviewed"] == f"2 of {len(queue)}"
    confirmed_asset = queue.iloc[0]["asset"]
    health = overview.assets.set_index("asset")
    assert health.loc[confirmed_asset, "status"] == ATTENTION
    assert health["events"].sum() == len(queue)
    exported = events_export(overview)
    assert sorted(exported["status"].unique()) == sorted(set(overview.queue["status"]))
    assert (overview.top_open["status"] == labels.UNREVIEWED).all()
    report = html_report(overview, generated_by="ana")
    assert info.name in report and "Asset health" in report and confirmed_asset in report
    assert "<script" in report, "plotly.js is inlined so the report works offline"


def test_overview_page_shows_kpis_and_downloads(workspace, monkeypatch):
    path, info, run = workspace
    monkeypatch.setenv("VIGIL_DB", str(path))
    at = open_app("pages/overview.py")
    assert not at.exception
    labels_ = [m.label for m in at.metric]
    assert labels_[:3] == ["Assets", "Events found", "Reviewed"]
    assert f"#{run.id}" in at.caption[0].value
    assert len(at.get("download_button")) == 3


def test_overview_page_empty_workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_DB", str(tmp_path / "w.duckdb"))
    at = open_app("pages/overview.py")
    assert not at.exception
    assert any("No dataset yet" in i.value for i in at.info)


def test_events_export_of_a_fresh_workspace_is_empty_with_columns():
    from core.overview import Overview

    empty = Overview(None, None, [], pd.DataFrame(), pd.DataFrame(), pd.DataFrame())  # type: ignore[arg-type]
    assert list(events_export(empty).columns)[:2] == ["asset", "start"]
