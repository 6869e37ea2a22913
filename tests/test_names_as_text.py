"""Dataset, asset and sensor names are text: markdown in them renders as its characters, never as
a live link, a remote image or emphasis, on the pages that show them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import store
from core.detect.runs import RunConfig, execute_run
from core.ingest import ingest_file
from pages.ui import plain
from tests.apptest import open_app

LINK = "[click](http://evil.example/x)"
IMAGE = "![pixel](http://evil.example/p.png)"
NAME = f"{LINK} {IMAGE} **loud** :red[red]"


def test_plain_escapes_every_markdown_construct():
    escaped = plain(NAME)
    for raw in ("[click]", "](", "![", "**", ":red[", "http://"):
        assert raw not in escaped
    assert escaped.replace("\\", "") == NAME, "only backslashes are added: the text reads the same"


@pytest.fixture
def hostile_workspace(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame(
        {
            "timestamp": pd.date_range("2026-01-01", periods=n, freq="min"),
            "asset": f"pump {LINK}",
            "flow": rng.normal(10, 1, n),
            "temp": rng.normal(50, 1, n),
            "pressure": rng.normal(3, 0.1, n),
        }
    )
    frame.loc[2500:2520, ["flow", "temp"]] += 12
    src = tmp_path / "plant.csv"
    frame.to_csv(src, index=False)
    path = tmp_path / "w.duckdb"
    con = store.open_workspace(path)
    info = ingest_file(con, src, name=NAME).dataset
    execute_run(con, RunConfig(info.id))
    con.close()
    monkeypatch.setenv("VIGIL_DB", str(path))
    return path


def _texts(at) -> list[str]:
    kinds = ("markdown", "caption", "info", "success", "warning", "error", "subheader", "title")
    return [el.value for kind in kinds for el in at.get(kind)]


@pytest.mark.parametrize("page", ["pages/explore.py", "pages/triage.py", "pages/overview.py"])
def test_pages_show_hostile_names_as_text(hostile_workspace, page):
    at = open_app(page)
    assert not at.exception
    texts = _texts(at)
    assert any(plain("pump") in t or plain(NAME) in t or plain(LINK) in t for t in texts), texts
    for text in texts:
        assert "](http" not in text and "![" not in text, f"live markdown shown: {text}"
