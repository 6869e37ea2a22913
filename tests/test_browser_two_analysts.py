"""Two analysts on one review queue in two real browser sessions: a verdict lands on the event
its analyst saw, and never on the event the re-sorted queue put in its place."""

from __future__ import annotations

import pytest

from core import labels, store
from core.detect.runs import RunConfig, execute_run
from core.synth.demo import load_demo
from tests.browser import CHROMIUM, CHROMIUM_ARGS, needs_chromium, streamlit_server, wait_for_app

pytestmark = [pytest.mark.browser, needs_chromium]


def open_triage(browser, url: str, analyst: str):
    """A new browser context (its own Streamlit session) on Triage, signed as `analyst`."""
    page = browser.new_context(viewport={"width": 1400, "height": 1200}).new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    wait_for_app(page)
    page.get_by_label("Analyst").fill(analyst)
    page.get_by_label("Analyst").press("Enter")
    wait_for_app(page)
    page.get_by_role("link", name="Triage").click()
    wait_for_app(page)
    page.get_by_text("Event 1 of").wait_for()
    return page


def test_a_verdict_is_saved_on_the_event_shown_not_its_queue_position(tmp_path):
    from playwright.sync_api import sync_playwright

    path = tmp_path / "w.duckdb"
    con = store.open_workspace(path)
    info = load_demo(con, seed=7, n_assets=1, rows_per_asset=3000)
    run = execute_run(con, RunConfig(info.id))
    queue = labels.review_queue(con, run.id)
    con.close()
    assert len(queue) >= 2, "the test needs a second event the queue can move up"
    top, second = int(queue["event_id"][0]), int(queue["event_id"][1])

    with streamlit_server(path) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            alice = open_triage(browser, url, "alice")
            bob = open_triage(browser, url, "bob")
            bob.get_by_role("button", name="Confirm", exact=True).click()
            bob.get_by_text(f"Confirm: event {top}.").wait_for()
            # alice still looks at the top event, picked by nobody, and calls it a false alarm
            alice.get_by_role("button", name="False alarm", exact=True).click()
            alice.get_by_text("bob changed this event while you were looking at it").wait_for()
            wait_for_app(alice)
            alice.screenshot(path=str(tmp_path / "triage_changed_under_alice.png"))
            # she has now seen bob's verdict; overruling it on purpose is her call
            alice.get_by_role("button", name="False alarm", exact=True).click()
            alice.get_by_text(f"False alarm: event {top}.").wait_for()
            wait_for_app(alice)
        finally:
            browser.close()

    con = store.open_workspace(path)
    try:
        saved = labels.review_queue(con, run.id).set_index("event_id")
        log = labels.audit_log(con, info.id)
    finally:
        con.close()
    assert saved.loc[second, "status"] == "unreviewed", (
        "nothing landed on the event alice never saw"
    )
    assert saved.loc[top, "status"] == "false_alarm"
    assert saved.loc[top, "reviewed_by"] == "alice"
    assert sorted(log["analyst"]) == ["alice", "bob"], "bob's verdict is kept in the history"
