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
