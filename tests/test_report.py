"""The stakeholder report as PDF and HTML: core, files, CLI and the Overview page's download.

Real workspace files, a real run, real explanations and real Chromium (kaleido) for the charts.
PDFs are checked by reading them back with pdfium: their text, their images and their pages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest

from core import store
from core.charts.images import png_images
from core.charts.overview import events_timeline
from core.errors import ConfigError
from core.explain import cached_explanation, event_scope
from core.labels import history as labels
from core.labels import triage
from core.learn import retraining as learning
from core.learn import versions
from core.share import (
    build_report,
    dataset_overview,
    report_bytes,
    report_files,
    report_format,
    write_report,
)
from pages.ui import OVERVIEW_REPORT as PREPARED
from tests.apptest import open_app, shown
from tests.browser import chromium_page, needs_chromium, streamlit_server, wait_for_app
from tests.test_overview import demo_with_run

ROOT = Path(__file__).resolve().parents[1]
COMMENT = "bearing noise, replaced"
SHOTS = ROOT / "screenshots"

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A two-pump demo plant, one run, the most severe event confirmed and the next a false
    alarm; the connection closed so subprocesses may open the file."""
    path, con, info, run = demo_with_run(tmp_path_factory.mktemp("report"), seed=11)
    queue = triage.review_queue(con, run.id).sort_values("severity", ascending=False)
    labels.label_events(
        con, info.id, queue.iloc[:1], "confirmed", "ana", kind="spike", comment=COMMENT
    )
    labels.label_events(con, info.id, queue.iloc[1:2], "false_alarm", "ana")
    con.close()
    return path, info, run, [int(e) for e in queue["event_id"].head(3)]


def pdf_text(content: bytes) -> tuple[int, str, int]:
    """(pages, all their text, image objects) of a PDF read back with pdfium."""
    doc = pdfium.PdfDocument(content)
    text, images = [], 0
    for page in doc:
        text.append(page.get_textpage().get_text_range())
        images += len(list(page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE])))
    return len(doc), "\n".join(text), images


def test_one_report_gives_pdf_and_html_with_the_worst_events_explained(workspace):
    path, info, run, worst = workspace
    con = store.open_workspace(path)
    try:
        seen = []
        report = build_report(con, info, "ana", progress=lambda f, m: seen.append(f))
        cached = [cached_explanation(con, run.id, event_scope(e)) for e in worst]
        pdf, html = report_bytes(report, "pdf"), report_bytes(report, "html").decode()
    finally:
        con.close()
    assert [int(e.event["event_id"]) for e in report.events] == worst, "most severe first"
    assert all(e.explanation is not None for e in report.events)
    assert all(c is not None for c in cached), "the report's explanations are cached for Explain"
    assert seen[-1] == 1.0
    assert pdf.startswith(b"%PDF") and html.startswith("<!doctype html>")
    pages, text, images = pdf_text(pdf)
    # the timeline, then a waterfall and a heatmap per explained event (no version: no story)
    assert images == 1 + 2 * len(worst)
    assert pages >= 1 + len(worst), "each explained event starts on a page of its own"
    flat = " ".join(text.split())
    for both in (flat, html):
        assert info.name in both and "Asset health" in both
        assert f"Event #{worst[0]} on" in both and f'by ana: "{COMMENT}"' in both.replace(
            "&quot;", '"'
        )
        assert "1 confirmed fault, 1 false alarm, 0 unsure" in both
        assert f"unsupervised run #{run.id}" in both
    assert "Model-agnostic" in flat or "exact" in flat, "what the values mean is printed"


def test_report_without_events_to_explain(workspace):
    path, info, _, _ = workspace
    con = store.open_workspace(path)
    try:
        report = build_report(con, info, top_events=0)
        files = report_files(con, info, formats=("pdf",))
        with pytest.raises(ConfigError, match="0 or more. Got -1"):
            build_report(con, info, top_events=-1)
    finally:
        con.close()
    assert report.events == []
    assert len(report_bytes(report, "pdf")) < len(files["pdf"]), "fewer charts, smaller file"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("report.docx", "must end in .pdf or .html"),
        ("report", "must end in .pdf or .html"),
        ("missing/report.pdf", "no folder"),
    ],
)
def test_report_file_names_are_checked_before_any_work(tmp_path, name, message):
    with pytest.raises(ConfigError, match=message):
        report_format(tmp_path / name)


def test_a_write_that_fails_leaves_nothing_behind(tmp_path):
    (tmp_path / "taken.pdf").mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(ConfigError, match="Cannot write a report to"):
        write_report(tmp_path / "taken.pdf", b"%PDF-1.4 ...")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.pdf"], "no partial file"
    old = tmp_path / "old.pdf"
    old.write_bytes(b"old")
    write_report(old, b"new")
    assert old.read_bytes() == b"new" and len(list(tmp_path.iterdir())) == 2


def test_charts_without_a_browser_are_a_config_error(monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")
    with pytest.raises(ConfigError, match="apt-get install chromium"):
        png_images([events_timeline(pd.DataFrame())])


def _cli(*args: str | Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", "report", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_cli_writes_pdf_and_html(workspace, tmp_path):
    path, info, _, worst = workspace
    for fmt in ("pdf", "html"):
        out = tmp_path / f"r.{fmt}"
        done = _cli("--db", path, "--dataset", info.name, "--out", out, "--events", "2")
        assert done.returncode == 0, done.stderr
        assert f"written to {out}" in done.stdout and "2 events explained" in done.stdout
    pages, text, images = pdf_text((tmp_path / "r.pdf").read_bytes())
    assert images == 1 + 2 * 2 and f"Event #{worst[1]} on" in " ".join(text.split())
    assert f"Event #{worst[1]} on" in (tmp_path / "r.html").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "r.pdf"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dataset", "no such plant", "--out", "{tmp}/r.pdf"], "no dataset 'no such plant'"),
        (["--dataset", "1", "--out", "{tmp}/r.docx"], "must end in .pdf or .html"),
        (["--dataset", "1", "--out", "{tmp}/missing/r.pdf"], "no folder"),
        (["--dataset", "1", "--out", "{tmp}/r.pdf", "--events", "-2"], "0 or more"),
    ],
)
def test_cli_errors_are_one_line_and_write_nothing(workspace, tmp_path, args, message):
    path = workspace[0]
    done = _cli("--db", path, *[a.format(tmp=tmp_path) for a in args])
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_without_a_browser_says_so_in_one_line(workspace, tmp_path):
    path, info, _, _ = workspace
    env = {**os.environ, "BROWSER_PATH": "/nonexistent/chromium"}
    done = _cli("--db", path, "--dataset", info.name, "--out", tmp_path / "r.pdf", env=env)
    assert done.returncode == 2 and "apt-get install chromium" in done.stderr
    assert done.stderr.count("\n") == 1 and list(tmp_path.iterdir()) == []


@pytest.fixture
def copy_of(workspace, tmp_path):
    """A copy of the workspace file, for a page or server that keeps its own connection open."""
    copy = tmp_path / "page.duckdb"
    shutil.copy(workspace[0], copy)
    return copy


def prepare(at):
    """Press 'Prepare the report' on the Overview page."""
    next(b for b in at.button if b.label.startswith("Prepare the report")).click().run()
    return at


def test_overview_prepares_the_report_then_offers_pdf_and_html(workspace, copy_of, monkeypatch):
    info, worst = workspace[1], workspace[3]
    monkeypatch.setenv("VIGIL_DB", str(copy_of))
    at = prepare(open_app("pages/overview.py"))
    assert not at.exception and not at.error
    buttons = {b.proto.label: b.proto.url for b in at.get("download_button")}
    assert buttons["Report (PDF)"].endswith(".pdf") and buttons["Report (HTML)"].endswith(".html")
    assert [s.label for s in at.status] == ["Report ready"]
    _, files = at.session_state[PREPARED]
    pages, text, images = pdf_text(files["pdf"])
    assert info.name in text and f"Event #{worst[0]} on" in " ".join(text.split())
    assert images == 1 + 2 * len(worst)
    assert f"Event #{worst[0]} on" in files["html"].decode()


def test_overview_report_without_a_browser_shows_why(copy_of, monkeypatch):
    monkeypatch.setenv("VIGIL_DB", str(copy_of))
    monkeypatch.setenv("BROWSER_PATH", "/nonexistent/chromium")
    at = prepare(open_app("pages/overview.py"))
    assert not at.exception
    assert any("apt-get install chromium" in shown(e) for e in at.error)
    assert [s.label for s in at.status] == ["No report"]
    assert "Report (PDF)" not in [b.proto.label for b in at.get("download_button")]


@pytest.mark.browser
def test_download_the_pdf_from_overview_in_a_browser(workspace, copy_of, tmp_path):
    info = workspace[1]
    SHOTS.mkdir(exist_ok=True)
    with streamlit_server(copy_of) as url, chromium_page() as page:
        page.goto(f"{url}/overview")
        wait_for_app(page)
        page.get_by_role("button", name="Prepare the report (PDF and HTML)").click()
        pdf_button = page.get_by_role("button", name="Report (PDF)")
        pdf_button.wait_for(timeout=180_000)
        wait_for_app(page)
        page.screenshot(path=str(SHOTS / "overview_report.png"), full_page=True)
        with page.expect_download() as download:
            pdf_button.click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
    assert saved.name == f"vigil-report-{info.id}.pdf"
    pages, text, images = pdf_text(saved.read_bytes())
    assert pages >= 2 and images >= 3 and "Asset health" in text


def test_report_on_a_version_in_use_shows_every_model_version(copy_of):
    con = store.open_workspace(copy_of)
    try:
        info = store.list_datasets(con)[0]
        queue = triage.review_queue(con, dataset_overview(con, info).run.id)
        labels.label_events(con, info.id, queue.iloc[-3:], "false_alarm", "bob")
        version = learning.retrain(con, learning.RetrainConfig(info.id), "ana").version
        versions.promote(con, version.id, "ana", "for the report")
        report = build_report(con, info, "ana")
        pdf, html = report_bytes(report, "pdf"), report_bytes(report, "html").decode()
    finally:
        con.close()
    assert report.overview.run.id == version.run_id and report.story.in_use.id == version.id
    assert report.events, "the version's run has events"
    assert all(e.explanation is not None and e.note is None for e in report.events), [
        e.note for e in report.events
    ]
    pages, text, images = pdf_text(pdf)
    assert images == 1 + 2 * len(report.events) + 1, "timeline, explanations, alarms per version"
    flat = " ".join(text.split())
    assert f"v{version.id}" in flat and "run #" in flat and "held-out F1" in flat
    for both in (flat, html):  # explained with the version's own model, never "not explained"
        assert f"model version v{version.id}" in both and "Not explained" not in both
