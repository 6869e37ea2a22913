"""The report's synthetic twin section: a dataset with a stored twin (or a twin itself) gets
the twin's fidelity and privacy checks in its HTML and PDF report and in Overview's export."""

from __future__ import annotations

import pytest

from core import store
from core.share import build_report, report_bytes
from core.synth.twin import twin_with_report
from pages import ui
from pages.ui import OVERVIEW_REPORT as PREPARED
from tests.apptest import open_app
from tests.browser import needs_chromium
from tests.test_overview import demo_with_run
from tests.test_report import pdf_text, prepare

CHECK = "near copies of real windows"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A two-pump demo plant with a run, then its twin stored (the connection closed)."""
    path, con, info, _ = demo_with_run(tmp_path_factory.mktemp("twin_report"), seed=12)
    plain = build_report(con, info, "ana", top_events=0)
    twin, made = twin_with_report(con, info.id, seed=1)
    con.close()
    return path, info, twin, made, plain


def test_without_a_twin_the_report_has_no_twin_section(workspace):
    plain = workspace[4]
    assert plain.twin is None
    assert "Synthetic twin" not in report_bytes(plain, "html").decode()


@needs_chromium
def test_the_source_and_the_twin_report_the_twin_s_checks_in_html_and_pdf(workspace):
    path, info, twin, made, _ = workspace
    con = store.open_workspace(path)
    try:
        seen: list[float] = []
        report = build_report(con, info, "ana", top_events=0, progress=lambda f, m: seen.append(f))
        own = build_report(con, twin, "ana", top_events=0)
    finally:
        con.close()
    assert seen == sorted(seen) and seen[-1] == 1.0
    for r in (report, own):
        assert (r.twin.source.id, r.twin.twin.id) == (info.id, twin.id)
        assert r.twin.fidelity.table()["check"].tolist() == made.table()["check"].tolist()
        assert r.twin.fidelity.table()["value"].tolist() == made.table()["value"].tolist()
    title = f"Synthetic twin &#x27;{twin.name}&#x27; of &#x27;{info.name}&#x27;"
    html = report_bytes(report, "html").decode()
    assert title in html and CHECK in html and "Train on twin, test on real" in html
    _, text, _ = pdf_text(report_bytes(report, "pdf"))
    flat = " ".join(text.split())
    assert f"Synthetic twin '{twin.name}' of '{info.name}'" in flat and CHECK in flat


@needs_chromium
def test_overview_export_carries_the_twin_section(workspace, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "page.duckdb"
    shutil.copy(workspace[0], copy)
    monkeypatch.setenv("VIGIL_DB", str(copy))
    at = open_app("pages/overview.py")
    assert at.sidebar.selectbox[0].value == workspace[2].id, "the twin is the newest dataset"
    at.session_state[ui.ACTIVE_DATASET] = at.session_state[ui._PICK] = workspace[1].id
    prepare(at.run())
    assert not at.exception and not at.error, [e.value for e in at.error]
    _, files = at.session_state[PREPARED]
    assert CHECK in files["html"].decode() and f"of &#x27;{workspace[1].name}&#x27;" in (
        files["html"].decode()
    )
    assert CHECK in " ".join(pdf_text(files["pdf"])[1].split())


def test_a_twin_that_no_longer_lines_up_is_named_not_measured(tmp_path):
    """Rows appended to the source after its twin was made: the report says so in one line
    and still reports the plant (a stale twin must not cost it its report)."""
    import pandas as pd

    from core.synth.demo import load_demo
    from tests.label_data import store_frame

    con = store.open_workspace(tmp_path / "w.duckdb")
    try:
        info = load_demo(con, seed=3, n_assets=1, rows_per_asset=2000)
        twin, _ = twin_with_report(con, info.id, seed=1)
        later = store.read_readings(con, info)
        later["ts"] = later["ts"] + pd.Timedelta(days=30)
        extra = store_frame(con, later, name="later")
        with store.transaction(con):
            store.append_readings(con, info, extra)
        report = build_report(con, store.get_dataset(con, info.id), top_events=0)
    finally:
        con.close()
    assert report.twin.fidelity is None and "no longer lines up" in report.twin.note
    html = report_bytes(report, "html").decode()
    assert f"of &#x27;{info.name}&#x27;" in html and "make the twin again" in html
    assert CHECK not in html
