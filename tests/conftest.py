"""Fixtures shared across test modules (keep this small: module-specific ones stay local)."""

from collections.abc import Iterator

import duckdb
import pytest

from core import store


@pytest.fixture
def workspace(tmp_path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh, migrated workspace in a real DuckDB file, closed after the test."""
    con = store.open_workspace(tmp_path / "workspace.duckdb")
    yield con
    con.close()


@pytest.fixture
def con(tmp_path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh workspace for the labelling tests (same as `workspace`, the name they use)."""
    c = store.open_workspace(tmp_path / "w.duckdb")
    yield c
    c.close()


@pytest.fixture
def info(con):
    """The toy two-asset dataset of `tests.label_data` in `con`."""
    from tests.label_data import make_dataset

    return make_dataset(con)
