"""Files that arrive as bytes (browser uploads) go through the same ingest as files on disk."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from core.errors import DataError
from core.ingest.pipeline import IngestResult, ingest_file

NO_LABELS = "none"
"""Typed as the label columns: load every numeric column as a sensor."""


def label_choice(text: str | None) -> list[str] | None:
    """The label columns a user typed (comma-separated) as `ingest_file` takes them: None for
    automatic (empty text), [] for none ("none"), else the names."""
    if text is None or not text.strip():
        return None
    if text.strip().lower() == NO_LABELS:
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


def ingest_upload(
    con: duckdb.DuckDBPyConnection,
    data: bytes,
    filename: str,
    name: str | None = None,
    labels: list[str] | None = None,
) -> IngestResult:
    """Write the upload to a private temp file (DuckDB reads files, not buffers), then ingest."""
    with uploaded_copy(data, filename) as path:
        return ingest_file(
            con, path, name=name or Path(filename).stem, source_name=filename, labels=labels
        )


@contextmanager
def uploaded_copy(data: bytes, filename: str) -> Iterator[Path]:
    """The upload as a private temp file with its suffix (DuckDB reads files, not buffers),
    removed afterwards."""
    if not data:
        raise DataError(
            f"The upload {filename!r} is empty (0 bytes). Choose a CSV, Parquet or Excel file "
            "with a header row and at least one row of readings."
        )
    suffix = Path(filename).suffix.lower()[:10]
    with tempfile.TemporaryDirectory(prefix="vigil-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        yield path
