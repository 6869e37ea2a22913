"""Load data's synthetic twin and transplant controls through AppTest, on a real workspace."""

from __future__ import annotations

from core import store
from core.labels import history as labels
from core.labels.history import LabelDraft
from core.synth.demo import load_demo
from tests.apptest import open_app, shown
from tests.test_fault_copy import normal_plant


def _open(tmp_path, monkeypatch, make):
    db = tmp_path / "workspace.duckdb"
    con = store.open_workspace(db)
    info = make(con)
    con.close()
    monkeypatch.setenv("VIGIL_DB", str(db))
    return open_app(), info


def _datasets(tmp_path):
    con = store.open_workspace(tmp_path / "workspace.duckdb")
    try:
        return store.list_datasets(con)
    finally:
        con.close()


def _demo(con):
    return load_demo(con, seed=3, n_assets=1, rows_per_asset=3000, name="plant")


def test_make_the_twin_shows_its_report_and_makes_it_active(tmp_path, monkeypatch):
    app, source = _open(tmp_path, monkeypatch, _demo)
    next(b for b in app.button if b.label == "Make the twin").click()
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    twin = next(d for d in _datasets(tmp_path) if d.id != source.id)
    assert twin.name == "Twin of plant" and not twin.has_ground_truth
    assert twin.n_rows == source.n_rows and twin.sensors == source.sensors
    assert app.sidebar.selectbox[0].value == twin.id, "the sidebar follows the twin"
    message = shown((app.success or app.warning)[0])
    assert "Made Twin of plant" in message and "fidelity and privacy report" in message
    checks = next(d.value for d in app.dataframe if "check" in d.value.columns)
    assert len(checks) == 6 and "near copies of real windows" in checks["check"].tolist()


def test_carrying_faults_the_source_lacks_is_refused_on_the_page(tmp_path, monkeypatch):
    app, _ = _open(tmp_path, monkeypatch, lambda con: normal_plant(con, n=1500))
    app.checkbox(key="twin_carry").check()
    next(b for b in app.button if b.label == "Make the twin").click()
    app.run()
    assert not app.exception
    assert any("has no ground truth for the twin to carry" in e.value for e in app.error)
    assert len(_datasets(tmp_path)) == 1, "nothing written"


def test_transplant_confirmed_events_or_say_there_are_none(tmp_path, monkeypatch):
    app, source = _open(tmp_path, monkeypatch, _demo)
    next(b for b in app.button if b.label == "Transplant").click()
    app.run()
    assert not app.exception
    assert any("has no confirmed events" in e.value for e in app.error)
    assert len(_datasets(tmp_path)) == 1
    con = store.open_workspace(tmp_path / "workspace.duckdb")
    fault = store.read_ground_truth(con, source.id).iloc[0]
    draft = LabelDraft("P-101", fault.start, fault.end, "confirmed", "leak", tuple(fault.sensors))
    labels.create_labels(con, source.id, [draft], "ana")
    con.close()
    app.run()
    assert "leak" in app.selectbox(key="transplant_kind").options
    app.selectbox(key="transplant_kind").set_value("leak")
    next(b for b in app.button if b.label == "Transplant").click()
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any("1 confirmed leak event(s) transplanted" in shown(s) for s in app.success)
    assert len(_datasets(tmp_path)) == 2
