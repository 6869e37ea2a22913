"""The stakeholder overview and its exports, on a real workspace with a real run and labels."""

import pandas as pd
import pytest

from core import store
from core.detect import runs
from core.detect.runs import RunConfig, execute_run
from core.labels import history as labels
from core.labels import triage
from core.learn import retraining as learning
from core.learn import versions
from core.share.overview import ATTENTION, HEALTHY, dataset_overview, events_export, model_story
from core.share.report import build_report, html_report
from core.synth.demo import load_demo
from tests.apptest import open_app


def demo_with_run(folder, seed: int):
    """A two-pump demo plant in a fresh workspace file with one unsupervised run (left open)."""
    path = folder / "w.duckdb"
    con = store.open_workspace(path)
    info = load_demo(con, seed=seed, n_assets=2, rows_per_asset=4000)
    return path, con, info, execute_run(con, RunConfig(dataset_id=info.id))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    path, con, info, run = demo_with_run(tmp_path_factory.mktemp("overview"), seed=11)
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
        report = html_report(build_report(con, info, generated_by="ana", top_events=1))
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
    assert [b.proto.label for b in at.get("download_button")] == [
        "Events with verdicts (CSV)",
        "Labels (CSV)",
    ], "the report is prepared on request (it explains events), then downloaded"
    assert at.button[0].label == "Prepare the report (PDF and HTML)"
    assert any("No model trained from labels yet" in c.value for c in at.caption)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A demo plant with an unsupervised run, three verdicts each way and one retrained version."""
    path, con, info, run = demo_with_run(tmp_path_factory.mktemp("story"), seed=12)
    queue = triage.review_queue(con, run.id).sort_values("peak_score", ascending=False)
    labels.label_events(con, info.id, queue.iloc[:3], "confirmed", "ana", kind="spike")
    labels.label_events(con, info.id, queue.iloc[-3:], "false_alarm", "ana")
    version = learning.retrain(con, learning.RetrainConfig(info.id), "ana").version
    con.close()
    return path, info, run, version


def test_model_story_compares_every_version_with_the_first_unsupervised_run(learned):
    path, info, run, version = learned
    con = store.open_workspace(path)
    try:
        story = model_story(con, info)
        assert story is not None and story.in_use is None
        proposed = dataset_overview(con, info).run.id
        assert proposed == run.id, "an unpromoted version's run does not take over"
        assert versions.run_in_use(con, info.id) == run.id
        assert dict((k, v) for k, v, _ in story.kpis())["Model in use"] == "unsupervised"
        versions.promote(con, version.id, "ana", "better on held-out labels")
        newer = execute_run(con, RunConfig(dataset_id=info.id, detector="robust_z"))
        story = model_story(con, info)
        overview = dataset_overview(con, info)
        version_run = runs.get_run(con, version.run_id)
        report = html_report(build_report(con, info, top_events=0))
    finally:
        con.close()
    days = (info.time_end - info.time_start).total_seconds() / 86_400
    assert story.history["model"].tolist() == [f"run #{run.id} (unsupervised)", f"v{version.id}"]
    assert story.history["labels"].tolist() == [0, 6]
    assert story.history["alarms a day"].tolist() == pytest.approx(
        [run.n_events / days, version_run.n_events / days]
    )
    assert story.history["in use"].tolist() == [False, True]
    assert (story.n_confirmed, story.n_false_alarm) == (3, 3)
    kpis = {k: (v, c) for k, v, c in story.kpis()}
    assert kpis["Model in use"] == (f"v{version.id}", None)
    change = version_run.n_events / days - run.n_events / days
    assert kpis["Alarms a day"][1].startswith(f"{change:+.1f}")
    assert newer.id > version.run_id
    assert overview.run.id == version.run_id, "the overview shows the model in use, not the newest"
    assert "What the analysts' labels changed" in report and f"v{version.id}" in report


def test_overview_page_shows_what_labelling_changed(learned, monkeypatch):
    path, info, run, version = learned
    con = store.open_workspace(path)
    versions.promote(con, version.id, "ana", "in use for the page")  # whatever ran before
    con.close()
    monkeypatch.setenv("VIGIL_DB", str(path))
    at = open_app("pages/overview.py")
    assert not at.exception
    metrics = {m.label: m for m in at.metric}
    assert metrics["Model in use"].value == f"v{version.id}"
    assert metrics["Alarms a day"].delta.endswith("%)"), "the change against the first run"
    metrics = {label: m.value for label, m in metrics.items()}
    assert (metrics["Confirmed by analysts"], metrics["Labelled false alarms"]) == ("3", "3")
    assert not any("No model trained from labels yet" in c.value for c in at.caption)


def test_overview_page_empty_workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_DB", str(tmp_path / "w.duckdb"))
    at = open_app("pages/overview.py")
    assert not at.exception
    assert any("No dataset yet" in i.value for i in at.info)


def test_events_export_of_a_fresh_workspace_is_empty_with_columns():
    from core.share.overview import Overview

    empty = Overview(None, None, [], pd.DataFrame(), pd.DataFrame(), pd.DataFrame())  # type: ignore[arg-type]
    assert list(events_export(empty).columns)[:2] == ["asset", "start"]
