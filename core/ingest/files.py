"""Opening a user's file for DuckDB: format by content, encoding, header checks, read errors.

CSV is sniffed once by DuckDB; the header is also read here because DuckDB silently renames
repeated column names. Workbooks go through pandas (`core.ingest.excel`); Parquet and CSV are
read by DuckDB only.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from core.errors import DataError
from core.store import staging as sql
from core.store.staging import CsvDialect, Source

HEAD_BYTES = 1 << 18
"""Bytes read up front to tell the format, the encoding, the delimiter and the header."""
_DECIMAL_COMMA = re.compile(r"^-?\d+,\d+$")


@dataclass
class SourceFile:
    """An opened user file: how to read it and how to point at one of its rows in a message."""

    display: str
    kind: str  # csv, parquet, excel
    path: Path
    source: Source
    columns: list[tuple[str, str]]
    dialect: CsvDialect | None = None
    unnamed: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    locate: Callable[[int], str] | None = None
    """How a row is found in a workbook (its sheet and row); None for CSV and Parquet."""

    def where(self, row: int) -> str:
        if self.kind == "csv":
            return f"line {self.dialect.skip + 1 + row}"
        return self.locate(row) if self.locate is not None else f"row {row}"


def read_head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(HEAD_BYTES)


def detect_format(head: bytes, display: str) -> str:
    """Decide by content (magic bytes), not by the name alone."""
    ext = Path(display).suffix.lower()
    if not head.strip():
        raise DataError(f"{display} is empty: there is nothing to load.")
    if head.startswith(b"PAR1"):
        return "parquet"
    if ext in (".parquet", ".pq"):
        raise DataError(f"{display} is not a valid Parquet file (it lacks the PAR1 header).")
    if head.startswith(b"PK\x03\x04"):
        return "excel"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise DataError(f"{display} is an old .xls workbook: save it as .xlsx or CSV.")
    if head.startswith(b"\x1f\x8b"):
        raise DataError(f"{display} is gzip-compressed: unzip it and load the file inside.")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{display} is UTF-16 text: save it as UTF-8 CSV and load it again.")
    if b"\x00" in head:
        raise DataError(
            f"{display} is not a text file (it contains binary NUL bytes) nor a Parquet or "
            "Excel file. Export the data as CSV, Parquet or .xlsx."
        )
    return "csv"


class LateMissingMarker(DataError):
    """A missing-value text (e.g. NA) first seen past the start of a CSV: read it again."""


def mixed_type_error(display: str, column: str, value: str | None, where: str) -> DataError:
    """A number column with a text cell; a missing-value marker there asks for a second read."""
    shown = repr(value) if value is not None else "a value (perhaps not UTF-8 text)"
    error = LateMissingMarker if value and value.strip() in sql.MISSING_MARKERS else DataError
    return error(
        f"{display}: column {column!r} holds numbers but {where} has {shown}, which is not a "
        "number. Fix or empty that cell (a column that is mostly text is ignored instead), then "
        "load the file again."
    )


def open_file(
    con, path: Path, head: bytes, kind: str, display: str, view: str, all_markers: bool = False
) -> SourceFile:
    """Open for reading; `all_markers` reads every text of MISSING_MARKERS as missing (slower)."""
    if kind == "parquet":
        return _open_parquet(con, path, display)
    if kind == "excel":
        return _open_excel(con, path, display, view)
    return _open_csv(con, path, head, display, all_markers)


def check_names(names: list[str], display: str, what: str = "columns") -> None:
    """DuckDB would silently rename a repeated column (and ignores case): refuse instead."""
    seen: dict[str, int] = {}
    for i, column in enumerate(names):
        key = column.strip().lower()
        if key and key in seen:
            first = names[seen[key]]
            raise DataError(
                f"{display} has two {what} named {first!r} and {column!r} (number "
                f"{seen[key] + 1} and {i + 1}). Names must be unique, ignoring case: rename one "
                "and load the file again."
            )
        seen[key] = i


def _text_lines(head: bytes, encoding: str) -> list[str]:
    text = head.decode(encoding, errors="replace").removeprefix("\ufeff")
    lines = text.splitlines()
    return lines[:-1] if len(head) == HEAD_BYTES else lines  # the last line may be cut


def _guess_delimiter(header: str, rows: list[str]) -> str | None:
    """The delimiter that splits the header into the most fields (None: one column), among
    those that split the first rows into as many: a `;` inside a column name is no delimiter."""
    counts = {d: len(next(csv.reader([header], delimiter=d))) for d in (",", ";", "\t", "|")}
    split = [d for d, n in counts.items() if n > 1]
    even = [
        d for d in split if all(len(next(csv.reader([r], delimiter=d))) == counts[d] for r in rows)
    ]
    return max(even or split, key=counts.__getitem__, default=None)


def _open_csv(con, path: Path, head: bytes, display: str, all_markers: bool) -> SourceFile:
    encoding = _encoding(head)
    lines = [line for line in _text_lines(head, encoding) if line.strip()]
    if len(lines) < 2 and len(head) < HEAD_BYTES:
        raise DataError(f"{display} has a header line but no data rows: there is nothing to load.")
    if lines[0].count('"') % 2:  # a quoted column name holding a line break
        raise DataError(
            f"{display}: a column name in the header line runs onto the next line (a line break "
            f"inside quotes, after {lines[0].strip()[-40:]!r}). Put each column name on the "
            "header line and load the file again."
        )
    delim = _guess_delimiter(lines[0], lines[1:6])
    decimal_comma = delim in (";", "\t") and any(
        _DECIMAL_COMMA.match(cell.strip()) for line in lines[1:50] for cell in line.split(delim)
    )
    missing = sql.MISSING_MARKERS if all_markers else _missing_markers(lines, delim)
    try:
        dialect = sql.sniff_csv(con, path, delim, encoding, decimal_comma, missing)
    except duckdb.Error as exc:
        error = explain_read_error(exc, display, None) if "on Line" in str(exc) else None
        raise error or _csv_layout_error(con, path, lines[0], delim, encoding, display) from exc
    names = _header_names(lines[dialect.skip], dialect, display)
    unnamed = {s for n, (s, _) in zip(names, dialect.columns, strict=True) if not n.strip()}
    columns = [
        (name if name.strip() else sniffed, _text_if_iso_time(kind, dialect))
        for name, (sniffed, kind) in zip(names, dialect.columns, strict=True)
    ]
    dialect = replace(dialect, columns=columns)
    source = sql.csv_source(path, dialect)
    return SourceFile(display, "csv", path, source, columns, dialect, unnamed)


def _text_if_iso_time(kind: str, dialect: CsvDialect) -> str:
    """ISO times are read as text: DuckDB's typed read drops a zone that first appears past its
    sample, or reads naive times in the machine's zone; as text every row is checked
    (`staging.time_expression`). Times in a sniffed format stay typed: that read is strict."""
    if kind in ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE") and not dialect.timestamp_format:
        return "VARCHAR"
    return kind


def _missing_markers(lines: list[str], delim: str | None) -> tuple[str, ...]:
    """The missing-value texts (NA, -, #N/A...) that fill whole cells in the first lines."""
    d = re.escape(delim or ",")
    markers = "|".join(re.escape(m) for m in sorted(sql.MISSING_MARKERS, key=len, reverse=True))
    pattern = re.compile(rf"(?:^|{d})\s*({markers})\s*(?={d}|$)", re.MULTILINE)
    found = set(pattern.findall("\n".join(lines[1:])))
    return tuple(m for m in sql.MISSING_MARKERS if m in found)


def _encoding(head: bytes) -> str:
    """UTF-8 if the start of the file decodes as such, else Latin-1 (which decodes anything)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def _header_names(header: str, dialect: CsvDialect, display: str) -> list[str]:
    """The column names as written, checked (DuckDB's would be silently deduplicated)."""
    reader = csv.reader([header], delimiter=dialect.delimiter, quotechar=dialect.quote or '"')
    names = [name.strip() for name in next(reader)]  # as DuckDB does: " temp " -> "temp"
    if len(names) != len(dialect.columns):
        raise DataError(
            f"{display}: the header line has {len(names)} fields but the rows have "
            f"{len(dialect.columns)}. Check the delimiter and quoting of the header."
        )
    check_names(names, display)
    if len(names) > 1 and all(_looks_like_data(n) for n in names):
        raise DataError(
            f"{display}: the first line looks like data ({header[:60]!r}), not column names. "
            "Add a header line naming the columns and load the file again."
        )
    return names


def _looks_like_data(name: str) -> bool:
    text = name.strip()
    return bool(re.fullmatch(r"[-+]?\d+([.,]\d+)?|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}.*", text))


def _csv_layout_error(con, path, header, delim, encoding, display) -> DataError:
    """DuckDB could not sniff: read all rows as text so it names the offending line."""
    names = next(csv.reader([header], delimiter=delim or ","))
    columns = [(n, "VARCHAR") for n in names]
    dialect = CsvDialect(delim or ",", '"', '"', "", "", 0, columns, encoding=encoding)
    if len({n.lower() for n in names}) == len(names):
        try:
            sql.check_csv_rows(con, path, dialect)
        except duckdb.Error as exc:
            return explain_read_error(exc, display, None) or DataError(
                f"{display}: {first_line(exc)}"
            )
    return DataError(
        f"{display} could not be read as CSV: DuckDB found no consistent delimiter (comma, "
        "semicolon or tab) and column count. Check that every line has the same number of fields."
    )


def _open_parquet(con, path: Path, display: str) -> SourceFile:
    source = sql.parquet_source(path)
    try:
        columns = sql.describe_source(con, source)
    except duckdb.Error as exc:
        raise DataError(
            f"{display} is not a readable Parquet file (it may be truncated or corrupt): "
            f"{first_line(exc)}"
        ) from exc
    import pyarrow.parquet as pq  # only for the raw names: DuckDB renames repeated ones

    check_names(pq.read_schema(path).names, display)
    return SourceFile(display, "parquet", path, source, columns)


def _open_excel(con, path: Path, display: str, view: str) -> SourceFile:
    """Every sheet with the first one's columns, stacked (`core.ingest.excel`)."""
    from core.ingest.excel import read_workbook

    book = read_workbook(path, display, check_names)
    source = sql.register_frame(con, view, book.frame)
    columns = sql.describe_source(con, source)
    return SourceFile(
        display, "excel", path, source, columns, unnamed=book.unnamed, notes=book.notes,
        locate=book.where,
    )  # fmt: skip


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def explain_read_error(
    exc: duckdb.Error, display: str, time_column: str | None, kind: str = "csv"
) -> DataError | None:
    """A DataError naming the line and column of a DuckDB read error, or None if unknown."""
    text = str(exc)
    if kind == "parquet" and isinstance(exc, duckdb.IOException | duckdb.InvalidInputException):
        return DataError(f"{display} is a corrupt Parquet file: {first_line(exc)}")
    line = re.search(r"CSV Error on Line: (\d+)", text)
    where = f"line {line.group(1)}" if line else "a row"
    ragged = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", text)
    if ragged:
        return DataError(
            f"{display}: {where} has {ragged[2]} fields but the header has {ragged[1]}. Every "
            "row needs one value per column: check that line for a missing or extra delimiter."
        )
    column = re.search(r'converting column "(.*)"\.', text)
    value = re.search(r'Could not convert string "(.*)" to', text)
    if column and column[1] == time_column:
        shown = repr(value[1]) if value else "a value"
        return DataError(
            f"{display}: the time column {column[1]!r} has {shown} on {where}, which is not a "
            "timestamp in the format of the rows above it. Fix or remove that row."
        )
    if column:
        return mixed_type_error(display, column[1], value[1] if value else None, where)
    if "Invalid unicode" in text:
        return DataError(
            f"{display}: {where} is not valid UTF-8 text although the start of the file is. "
            "Save the file as UTF-8 (or Latin-1 throughout) and load it again."
        )
    if line:
        return DataError(f"{display}: {where} cannot be read as CSV ({first_line(exc)}).")
    return None


@contextmanager
def explained_read_errors(
    display: str, kind: str, time_column: str | None = None
) -> Iterator[None]:
    """Turn DuckDB's read errors (bad line, bad value, bad encoding) into a user's DataError."""
    try:
        yield
    except duckdb.Error as exc:
        error = explain_read_error(exc, display, time_column, kind)
        if error is None:
            raise
        raise error from exc
