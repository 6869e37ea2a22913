"""The only Streamlit glue: the cached workspace connection, session keys and shared widgets.

Pages import from here; core never imports Streamlit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn, TypeVar

import duckdb
import streamlit as st

from core import store
from core.errors import CoreError
from core.types import DatasetInfo

T = TypeVar("T")
ACTIVE_DATASET = "active_dataset_id"
ANALYST = "analyst"  # kept across pages (a widget's own key is dropped on a page switch)
_ANALYST_FIELD = "sidebar_analyst"
ANONYMOUS = "anonymous"
TRIAGE_FOCUS = "triage_focus"
OVERVIEW_REPORT = "overview_report"  # ((dataset id, run id), {format: bytes}) prepared on Overview
"""(run_id, event_id) another page hands to Triage to open that event."""
_SEEN = "_vigil_session_seen"
_PICK = "_vigil_pick_dataset"  # a dataset to show in the sidebar picker on the next run
_SHOWN = "_vigil_shown_dataset"  # (id, name) of the dataset this session last worked on


def _usable(con: duckdb.DuckDBPyConnection) -> bool:
    """False once DuckDB invalidated the connection (a disk filled during a checkpoint): it is
    closed, and the next run opens the workspace again."""
    try:
        with con.cursor() as cur:
            cur.execute("SELECT 1").fetchall()
    except duckdb.Error:
        con.close()
        return False
    return True


@st.cache_resource(show_spinner=False, validate=_usable)
def _connection(path: str) -> duckdb.DuckDBPyConnection:
    """One connection per process: this process is the workspace file's only writer."""
    return store.open_workspace(path)


def _route_through_app() -> None:
    """Streamlit treats a `pages/` folder as a legacy (v1) multipage app until `st.navigation`
    has run once in the process, so a first visit straight to /explore would run that page alone,
    without app.py's navigation and settings. Switch the legacy mode off and, on a session's
    first run only (no widget event can be lost then), rerun through app.py."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a Streamlit without the legacy mode
        return
    first_run = not st.session_state.get(_SEEN, False)
    st.session_state[_SEEN] = True
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        if first_run:
            st.rerun()


def workspace() -> duckdb.DuckDBPyConnection:
    """A cursor of the shared connection for this script run (DuckDB 2.0 connections are not
    shareable across the threads Streamlit runs sessions on; cursors are).

    A workspace that cannot be opened (another process holds it, a full disk) stops the page
    with the reason and a Retry button; a failed open is not cached, so Retry tries again."""
    _route_through_app()
    try:
        return _connection(str(store.default_workspace_path())).cursor()
    except CoreError as exc:
        _stop_with_retry(str(exc))


def run_page(page: st.Page) -> None:
    """Run the chosen page; a DuckDB error a user must act on in it stops with Retry."""
    _or_stop(page.run)


def _or_stop(action: Callable[[], T]) -> T:
    """Run a read outside `guarded`. A DuckDB error a user must act on (a damaged workspace
    file, a full disk) stops the run with the reason and Retry, never a traceback; any other
    error stays a real exception."""
    try:
        return action()
    except duckdb.Error as exc:
        refused = store.duckdb_failure(exc, store.default_workspace_path())
        if refused is None:
            raise
        _stop_with_retry(str(refused))


def _stop_with_retry(message: str) -> NoReturn:
    """End this run with the reason and a Retry button (its click is the next run)."""
    st.error(plain(message))
    st.button("Retry", key="workspace_retry", type="primary", icon=":material/refresh:")
    st.stop()


def datasets(con: duckdb.DuckDBPyConnection) -> list[DatasetInfo]:
    """The workspace's datasets (a file DuckDB cannot read stops the page with the reason)."""
    return _or_stop(lambda: store.list_datasets(con))


def active_dataset(con: duckdb.DuckDBPyConnection) -> DatasetInfo | None:
    """The dataset chosen in the sidebar, or the newest one, or None in an empty workspace."""
    all_sets = datasets(con)
    if not all_sets:
        return None
    wanted = st.session_state.get(ACTIVE_DATASET)
    for info in all_sets:
        if info.id == wanted:
            return info
    st.session_state[ACTIVE_DATASET] = all_sets[0].id
    return all_sets[0]


def set_active_dataset(dataset_id: int) -> None:
    """Make a dataset the active one; the sidebar's picker follows on the next run (a widget's
    value cannot change once it is drawn, and loads happen after the sidebar)."""
    st.session_state[ACTIVE_DATASET] = dataset_id
    st.session_state[_PICK] = dataset_id


def sidebar(con: duckdb.DuckDBPyConnection) -> DatasetInfo | None:
    """Dataset picker and analyst name, shown on every page."""
    all_sets = datasets(con)
    if _PICK in st.session_state:  # before the picker is drawn: it may still change
        st.session_state["sidebar_dataset"] = st.session_state.pop(_PICK)
    with st.sidebar:
        if not all_sets:
            st.caption("No dataset yet: load one on the Data page.")
            chosen = None
        else:
            ids = [d.id for d in all_sets]
            names = {d.id: d.name for d in all_sets}
            current = active_dataset(con)
            chosen_id = st.selectbox(
                "Active dataset",
                ids,
                index=ids.index(current.id) if current else 0,
                format_func=lambda i: names[i],
                key="sidebar_dataset",
            )
            # the picker now shows the choice: no `_PICK`, which would put it back over the next one
            st.session_state[ACTIVE_DATASET] = chosen_id
            chosen = next(d for d in all_sets if d.id == chosen_id)
            st.caption(
                f"{chosen.n_rows:,} rows · {len(chosen.sensors)} sensors · "
                f"{len(chosen.assets)} asset(s)"
            )
        if _ANALYST_FIELD not in st.session_state:
            st.session_state[_ANALYST_FIELD] = st.session_state.get(ANALYST, "")
        st.text_input(
            "Analyst", key=_ANALYST_FIELD, placeholder="your name", on_change=_keep_analyst
        )
        access_notice(str(st.get_option("server.address") or ""), _logged_in())
    _say_if_gone(all_sets, chosen)  # in the page, above its title
    st.session_state[_SHOWN] = None if chosen is None else (chosen.id, chosen.name)
    return chosen


def _say_if_gone(all_sets: list[DatasetInfo], chosen: DatasetInfo | None) -> None:
    """The dataset this session was working on is gone (deleted here or in another session):
    say so, since the page now shows another one and the click that found out did nothing."""
    shown = st.session_state.get(_SHOWN)
    if shown is None or any(d.id == shown[0] for d in all_sets):
        return
    now = f" Now showing {plain(repr(chosen.name))}." if chosen is not None else ""
    st.warning(
        f"Dataset {plain(repr(shown[1]))} was deleted.{now}",
        icon=":material/delete:",
    )


LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def access_notice(address: str, signed_in: bool) -> None:
    """Say who can reach this Vigil: names typed without sign-in are only as good as the network."""
    if signed_in:
        return
    if address in LOOPBACK:
        st.caption(
            "Open on this computer only (127.0.0.1). Nobody signs in: to serve a team, turn on "
            "sign-in (docs/AUTH.md)."
        )
    else:
        st.warning(
            f"Reachable from the network ({address or 'all interfaces'}) and nobody signs in: "
            "anyone who can open this page can label under any name. Turn on sign-in "
            "(docs/AUTH.md) or run with --server.address 127.0.0.1.",
            icon=":material/public:",
        )


def _keep_analyst() -> None:
    st.session_state[ANALYST] = st.session_state[_ANALYST_FIELD]


def analyst_name() -> str:
    """Who is acting: the logged-in user when auth is configured, else the sidebar field."""
    if _logged_in():
        return str(st.user.get("email") or st.user.get("name") or "user")
    return (st.session_state.get(ANALYST) or "").strip() or ANONYMOUS


_MARKDOWN = str.maketrans({c: "\\" + c for c in "\\`*_{}[]()<>#+-.!|~$:&"})


def plain(text: object) -> str:
    """A user's name (dataset, asset, sensor, file) as literal text inside Streamlit markdown:
    no link, image, emphasis, colour or icon directive can come out of it."""
    return str(text).translate(_MARKDOWN)


def guarded(action: Callable[[], object]) -> object | None:
    """Run a core call; show a user error (or a write the disk refused) as st.error instead of
    a traceback. When DuckDB gave up on the connection, the run stops there with Retry."""
    try:
        return action()
    except CoreError as exc:
        error = exc
    except duckdb.Error as exc:  # a statement outside a transaction: a full disk, a damaged file
        refused = store.duckdb_failure(exc, store.default_workspace_path())
        if refused is None:
            raise
        refused.__cause__, error = exc, refused
    if _connection_lost(error):
        _stop_with_retry(str(error))
    st.error(plain(error))
    return None


def _connection_lost(exc: BaseException | None) -> bool:
    """DuckDB invalidated the connection (a fatal error): this run's cursor is dead."""
    while exc is not None:
        if isinstance(exc, duckdb.FatalException):
            return True
        exc = exc.__cause__
    return False


def _logged_in() -> bool:
    """Whether a user signed in through st.login (st.user is empty without login)."""
    return bool(st.user.get("is_logged_in", False))


def login_configured() -> bool:
    """True when `.streamlit/secrets.toml` has an [auth] section (see docs/AUTH.md)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # no secrets file at all: a single-user install
        return False


def login_gate() -> None:
    """With login configured, stop anonymous visitors and offer sign-out; otherwise do nothing."""
    if not login_configured():
        return
    if not _logged_in():
        st.title("Vigil")
        st.caption("Sign in so every label you give is recorded under your name.")
        st.button("Sign in", on_click=st.login, type="primary")
        st.stop()
    st.sidebar.button("Sign out", on_click=st.logout)
