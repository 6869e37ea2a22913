"""AppTest support: the real app, opened on a page, with a generous timeout for first imports."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_app(page: str | None = None, timeout: float = 120) -> AppTest:
    """Run app.py once (st.navigation needs a first run), then switch to `page` if given."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    return at


def shown(element) -> str:
    """An element's text as the reader sees it: markdown escapes (names are escaped) removed."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", element.value)
