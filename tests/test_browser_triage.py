"""Labelling on the chart in a real browser: box-select a range, create a label, see it listed."""

from __future__ import annotations

import pytest

from core import store
from core.detect.runs import RunConfig, execute_run
from core.synth.demo import load_demo
from tests.browser import chromium_page, needs_chromium, streamlit_server, wait_for_app

pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture
def app_url(tmp_path):
    """A small demo plant with one executed run, served by a real Streamlit (stopped after)."""
    path = tmp_path / "w.duckdb"
    con = store.open_workspace(path)
    info = load_demo(con, seed=7, n_assets=1, rows_per_asset=3000)
    run = execute_run(con, RunConfig(info.id))
    con.close()
    assert run.n_events > 0, "the demo plant's faults give the run events to triage"
    with streamlit_server(path) as url:  # its exit stops the server: the fixture's finalizer
        yield url


def test_box_select_a_range_and_label_it(app_url, tmp_path):
    with chromium_page(height=1400) as page:
        page.goto(app_url)
        wait_for_app(page)
        page.get_by_role("link", name="Triage").click()
        wait_for_app(page)
        page.get_by_text("Event 1 of").wait_for()
        drag = page.locator(".js-plotly-plot .nsewdrag").first
        drag.scroll_into_view_if_needed()
        box = drag.bounding_box()
        x, y = box["x"] + box["width"] * 0.40, box["y"] + box["height"] * 0.5
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + box["width"] * 0.15, y, steps=10)
        page.mouse.up()
        page.get_by_text("Selected on the chart").wait_for()
        wait_for_app(page)
        page.get_by_role("button", name="Label range as analyst-found").click()
        page.get_by_text("Analyst-found label created").wait_for()
        wait_for_app(page)
        page.get_by_role("tab", name="Labels & audit").click()
        labels_table = page.locator('[data-testid="stDataFrame"]').filter(visible=True).first

        # the grid draws on a canvas; its cells are also in the DOM, hidden, for accessibility
        def cell(text: str):
            return labels_table.get_by_role("gridcell", name=text, exact=True, include_hidden=True)

        # (the grid virtualises columns: the far-right "source" column may not be in the DOM
        # when the chosen sensors make the table wide, so wait on the verdict column)
        cell("Confirmed").wait_for(state="attached")
        assert cell("Confirmed").count() == 1
        assert page.get_by_text("1 label on").is_visible()
        page.screenshot(path=str(tmp_path / "triage_labels.png"))
