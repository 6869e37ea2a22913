"""The report as bytes in a format, and as a file written all or nothing (CLI and Overview)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb

from core.errors import ConfigError
from core.share.report import Progress, Report, build_report, html_report
from core.types import DatasetInfo

FORMATS = {".html": "html", ".htm": "html", ".pdf": "pdf"}


def report_format(out: Path) -> str:
    """'html' or 'pdf' from the file name; ConfigError for anything else or a missing folder,
    checked before any work is done."""
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"Cannot write a report to {str(out)!r}: the file name must end in .pdf or .html."
        )
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"Cannot write a report to {str(out)!r}: no folder {str(folder)!r}.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"Cannot write a report to {str(out)!r}: {str(folder)!r} is read-only.")
    return fmt


def report_bytes(report: Report, fmt: str, progress: Progress | None = None) -> bytes:
    """The report as HTML (UTF-8) or PDF bytes."""
    if fmt == "pdf":
        from core.share.pdf import pdf_report  # fpdf2 costs ~0.3 s to import: only when asked

        return pdf_report(report, progress=progress)
    if fmt == "html":
        return html_report(report).encode()
    raise ConfigError(f"Unknown report format {fmt!r}: use 'pdf' or 'html'.")


def report_files(
    con: duckdb.DuckDBPyConnection,
    info: DatasetInfo,
    generated_by: str = "Vigil",
    formats: tuple[str, ...] = ("pdf", "html"),
    progress: Progress | None = None,
) -> dict[str, bytes]:
    """One report in several formats ({'pdf': ..., 'html': ...}): explaining the events takes
    the first half of the progress, drawing the PDF's charts the second."""
    first = None if progress is None else (lambda f, m: progress(0.5 * f, m))
    report = build_report(con, info, generated_by, progress=first)
    second = None if progress is None else (lambda f, m: progress(0.5 + 0.5 * f, m))
    return {fmt: report_bytes(report, fmt, progress=second) for fmt in formats}


def write_report(path: Path, content: bytes) -> None:
    """Write all or nothing: a temporary file beside ``path``, renamed over it when complete."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise ConfigError(
            f"Cannot write a report to {str(path)!r}: {exc.strerror or exc}."
        ) from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
