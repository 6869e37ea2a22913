"""A user's first minutes, in a real browser: open Vigil, load the demo plant, see a chart."""

from pathlib import Path

import pytest

from tests.browser import chromium_page, needs_chromium, streamlit_server, wait_for_app
from tests.workbooks import plant_workbook

pytestmark = [pytest.mark.browser, needs_chromium]
SHOTS = Path(__file__).resolve().parents[1] / "screenshots"


def test_open_load_demo_and_see_a_chart(tmp_path):
    SHOTS.mkdir(exist_ok=True)
    with streamlit_server(tmp_path / "w.duckdb") as url, chromium_page() as page:
        page.goto(url)
        wait_for_app(page)
        page.get_by_text("Your workspace is empty").wait_for()
        page.get_by_role("button", name="Load the demo plant").click()
        page.get_by_text("Datasets in this workspace").wait_for(timeout=120_000)
        wait_for_app(page)
        page.get_by_role("link", name="Explore").click()
        wait_for_app(page)
        page.locator(".js-plotly-plot").first.wait_for()
        assert page.locator(".js-plotly-plot .scatterlayer .trace").count() >= 1
        page.get_by_text("readings in the window").wait_for()
        page.screenshot(path=str(SHOTS / "explore.png"), full_page=True)


def test_a_first_visit_straight_to_a_page_goes_through_the_app(tmp_path):
    """A bookmark to /explore must get app.py's navigation, not a bare legacy page list."""
    with streamlit_server(tmp_path / "w.duckdb") as url, chromium_page() as page:
        page.goto(f"{url}/explore")
        wait_for_app(page)
        page.get_by_role("heading", name="Explore").wait_for()
        nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
        assert "Load data" in nav and "Overview" in nav
        assert "ui" not in nav.split()


def upload(page, url: str, path) -> None:
    """Open Load data, choose ``path`` in the uploader and press Load file."""
    page.goto(url)
    page.get_by_role("heading", name="Load data").wait_for()
    wait_for_app(page)
    page.set_input_files('[data-testid="stFileUploaderDropzoneInput"]', str(path))
    page.get_by_role("button", name="Load file").click()


def test_a_bad_upload_shows_why_in_the_browser(tmp_path):
    """The reason must be on screen, not folded away inside the collapsed status box."""
    bad = tmp_path / "notime.csv"
    bad.write_text("a,b\n1,2\n3,4\n")
    with streamlit_server(tmp_path / "w.duckdb") as url, chromium_page() as page:
        upload(page, url, bad)
        reason = page.get_by_text("has no time column")
        reason.wait_for()
        assert reason.is_visible()
        assert page.get_by_text("Datasets in this workspace").count() == 0


def test_a_workbook_upload_says_what_it_did_with_each_sheet(tmp_path):
    """The load's notes stay on screen (they were folded into the collapsed status box), and the
    sidebar knows the new dataset at once."""
    path = plant_workbook(tmp_path / "plant.xlsx", ["P-101", "P-102"])
    with streamlit_server(tmp_path / "w.duckdb") as url, chromium_page() as page:
        upload(page, url, path)
        stacked = page.get_by_text("Sheets P-101, P-102 stacked: each is an asset.")
        stacked.wait_for()
        assert stacked.is_visible() and page.get_by_text("Notes.", exact=False).is_visible()
        sidebar = page.locator('[data-testid="stSidebar"]')
        assert "2 asset(s)" in sidebar.inner_text()
        assert page.get_by_text("Your workspace is empty").count() == 0


def test_picking_another_dataset_in_the_sidebar_switches_the_page(tmp_path):
    from core import store
    from core.synth.demo import load_demo

    path = tmp_path / "w.duckdb"
    con = store.open_workspace(path)
    load_demo(con, seed=1, n_assets=1, rows_per_asset=2000, name="Alpha")
    load_demo(con, seed=2, n_assets=2, rows_per_asset=2000, name="Beta")
    con.close()
    with streamlit_server(path) as url, chromium_page() as page:
        page.goto(f"{url}/explore")
        wait_for_app(page)
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text("4,000 rows").wait_for()
        sidebar.locator('[data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name="Alpha").click()
        wait_for_app(page)
        sidebar.get_by_text("2,000 rows · 10 sensors · 1 asset(s)").wait_for()
        page.get_by_role("link", name="Detect").click()
        wait_for_app(page)
        sidebar.get_by_text("2,000 rows · 10 sensors · 1 asset(s)").wait_for()
