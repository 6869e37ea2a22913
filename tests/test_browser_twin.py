"""Making a synthetic twin in a real browser: the button, the progress, the report on screen."""

from pathlib import Path

import pytest

from core import store
from core.synth.demo import load_demo
from tests.browser import chromium_page, needs_chromium, streamlit_server, wait_for_app

pytestmark = [pytest.mark.browser, needs_chromium]
SHOTS = Path(__file__).resolve().parents[1] / "screenshots"


def test_make_a_twin_and_read_its_report(tmp_path):
    SHOTS.mkdir(exist_ok=True)
    db = tmp_path / "w.duckdb"
    con = store.open_workspace(db)
    load_demo(con, seed=3, n_assets=2, rows_per_asset=4000, name="plant")
    con.close()
    with streamlit_server(db) as url, chromium_page() as page:
        page.goto(url)
        wait_for_app(page)
        page.get_by_text("Synthetic twin", exact=True).click()
        page.get_by_role("button", name="Make the twin").click()
        made = page.get_by_text("Made Twin of plant", exact=False)
        made.wait_for(timeout=180_000)
        wait_for_app(page)
        assert made.is_visible()
        assert page.get_by_role("button", name="Download the report (HTML)").is_visible()
        assert page.get_by_text("Train on twin, test on real", exact=False).is_visible()
        made.scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / "twin.png"))
