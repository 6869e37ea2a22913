"""Tomorrow's file in a real browser: append it on Load data, see its events on Triage."""

from __future__ import annotations

import pytest

from core import store
from core.detect import RunConfig, execute_run
from core.synth.demo import DemoPlant, generate_plant, store_plant
from tests.browser import chromium_page, needs_chromium, streamlit_server, wait_for_app
from tests.test_batches import _batch_csv, _part

pytestmark = [pytest.mark.browser, needs_chromium]


def test_append_a_batch_and_find_its_events_in_the_queue(tmp_path):
    plant = generate_plant(seed=11, n_assets=2, rows_per_asset=6_000)
    db = tmp_path / "w.duckdb"
    con = store.open_workspace(db)
    head = DemoPlant(_part(plant, True), plant.faults.iloc[:0], plant.machine_off)
    info = store_plant(con, head, "pumps", 11)
    run = execute_run(con, RunConfig(info.id))
    con.close()
    batch = _batch_csv(tmp_path, _part(plant, False))
    with streamlit_server(db) as url, chromium_page(1400, 1400) as page:
        page.goto(url)
        page.get_by_role("heading", name="Load data").wait_for()
        wait_for_app(page)
        page.get_by_text("Append newer readings").click()
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').nth(1).set_input_files(
            str(batch)
        )
        page.get_by_role("button", name="Append and score").click()
        done = page.get_by_text("Appended 4,000 rows to 'pumps'")
        done.wait_for(timeout=120_000)
        wait_for_app(page)
        assert done.is_visible(), "the outcome stays on screen after the rerun"
        assert page.get_by_text("12,000 rows · 10 sensors").count() == 1  # the sidebar knows
    con = store.open_workspace(db)
    events = store.read_events(con, run.id)
    assert store.get_run(con, run.id)["n_scores"] == run.n_scores + 4_000
    assert (events["start"] > info.time_end).any(), "the batch's events joined the queue"
    con.close()
