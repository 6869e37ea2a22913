"""The sidebar's dataset picker through AppTest: a pick takes effect and stays across pages."""

from __future__ import annotations

import pytest

from core import store
from core.synth.demo import load_demo
from tests.apptest import open_app


@pytest.fixture
def two_datasets(tmp_path, monkeypatch):
    path = tmp_path / "workspace.duckdb"
    monkeypatch.setenv("VIGIL_DB", str(path))
    con = store.open_workspace(path)
    load_demo(con, seed=1, n_assets=1, rows_per_asset=2000, name="Alpha")
    load_demo(con, seed=2, n_assets=2, rows_per_asset=2000, name="Beta")
    con.close()
    return path


def _caption(at) -> str:
    return at.sidebar.caption[0].value


def test_picking_a_dataset_in_the_sidebar_takes_effect_and_stays(two_datasets):
    """The picker used to put the previous pick back on every run: a choice never held."""
    at = open_app("pages/explore.py")
    assert _caption(at).startswith("4,000 rows"), "the newest dataset (Beta) first"
    at.sidebar.selectbox(key="sidebar_dataset").select("Alpha").run()
    assert not at.exception
    assert _caption(at).startswith("2,000 rows · 10 sensors · 1 asset(s)")
    at.run()
    assert _caption(at).startswith("2,000 rows"), "a rerun keeps the pick"
    at.switch_page("pages/detect.py").run()
    assert at.sidebar.selectbox(key="sidebar_dataset").value == 1
    assert _caption(at).startswith("2,000 rows"), "another page keeps the pick"
    at.sidebar.selectbox(key="sidebar_dataset").select("Beta").run()
    assert _caption(at).startswith("4,000 rows"), "and a second pick takes effect too"


def test_a_dataset_deleted_in_another_session_is_named_not_silently_swapped(two_datasets):
    """Another session deleted the dataset this one was on (say, on its Threshold tab): the
    next click showed another dataset, with no word why, and did nothing else."""
    at = open_app("pages/learn.py")
    assert _caption(at).startswith("4,000 rows") and not at.warning
    con = store.open_workspace(two_datasets)
    beta = next(d for d in store.list_datasets(con) if d.name == "Beta")
    store.delete_dataset(con, beta.id)
    con.close()
    at.run()
    assert not at.exception
    assert [w.value for w in at.main.warning] == [
        "Dataset 'Beta' was deleted. Now showing 'Alpha'."
    ]
    assert _caption(at).startswith("2,000 rows")
    at.run()
    assert not at.warning, "said once"
    con = store.open_workspace(two_datasets)
    store.delete_dataset(con, store.list_datasets(con)[0].id)
    con.close()
    at.run()
    assert not at.exception
    assert [w.value for w in at.main.warning] == ["Dataset 'Alpha' was deleted."]
    assert any("No dataset yet" in i.value for i in at.info)
