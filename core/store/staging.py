"""SQL that turns a user's file into a readings table: sources, sniffing, sampling, loading.

DuckDB reads the file itself (`read_csv`, `read_parquet`, or a registered frame for Excel); no
rows pass through Python. Every column name comes from a user's file, so every one is quoted with
`quote_ident`, and every value (paths, formats, tags, options) is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from core.store.connection import quote_ident
from core.types import ASSET, TS

MISSING_MARKERS = ("NA", "N/A", "n/a", "#N/A", "NULL", "null", "None", "-", "#DIV/0!", "#VALUE!")
"""Cell texts that mean "no value". Only those seen in a file are given to DuckDB: each one
costs time on every cell. NaN and inf need none: they parse as numbers and are nulled after."""
ZONE_PATTERN = r"\d:\d\d.*(?:[A-Za-z]|[+-]\d\d(?::?\d\d)?)\s*$"
"""A clock time followed by a zone (Z, +05:00, -0500, UTC, Europe/Berlin): such text is converted
to UTC. A file's times all carry one or none (`time_expression`): naive times are stored as
written, and a naive time among zoned ones has no zone Vigil could honestly assume."""
EPOCH_RANGES = {"epoch_s": (1e8, 1e10), "epoch_ms": (1e11, 1e13)}
"""Numbers read as epoch seconds or milliseconds (1973 to 2286). A number outside its file's
range (e.g. milliseconds among seconds) is not a time of that file and is refused."""


@dataclass(frozen=True)
class Source:
    """A table expression that reads the user's file, with its bound parameters."""

    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class CsvDialect:
    """What DuckDB's sniffer found, kept so the file is sniffed once and read with it.

    Passing all of it back (new_line included) makes the load as fast as DuckDB's own.
    """

    delimiter: str
    quote: str
    escape: str
    new_line: str
    comment: str
    skip: int
    columns: list[tuple[str, str]]
    date_format: str | None = None
    timestamp_format: str | None = None
    encoding: str = "utf-8"
    decimal_comma: bool = False
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class TimeSpec:
    """How to turn the time column into a naive UTC TIMESTAMP (see `time_expression`)."""

    column: str
    kind: str  # native, tz, text, text_tz, formats, epoch_s, epoch_ms
    formats: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnProfile:
    """What the first rows of a column say about it (text columns and epoch candidates)."""

    n_values: int
    n_numeric: int = 0
    n_distinct: int = 0
    bad_value: str | None = None
    bad_row: int | None = None
    n_iso: int = 0
    first_zoned: bool | None = None
    """Whether the first ISO time of the column carries a zone: the whole file must then."""
    n_by_family: list[int] = field(default_factory=list)
    first: float | None = None
    """The first value of a numeric column (an epoch column's unit is decided by it)."""


def _csv_options(dialect: CsvDialect) -> tuple[str, list[Any]]:
    opts = {
        "delim": dialect.delimiter,
        "quote": dialect.quote,
        "escape": dialect.escape,
        "comment": dialect.comment,
        "skip": dialect.skip,
        "encoding": dialect.encoding,
    }
    if dialect.new_line in ("\\n", "\\r\\n", "\\r"):
        opts["new_line"] = dialect.new_line
    if dialect.missing:
        opts["nullstr"] = ["", *dialect.missing]
    if dialect.date_format:
        opts["dateformat"] = dialect.date_format
    if dialect.timestamp_format:
        opts["timestampformat"] = dialect.timestamp_format
    if dialect.decimal_comma:
        opts["decimal_separator"] = ","
    sql = ", ".join(f"{key}=?" for key in opts)
    return sql, list(opts.values())


def sniff_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    delimiter: str | None,
    encoding: str,
    decimal_comma: bool,
    missing: tuple[str, ...],
) -> CsvDialect:
    """Run DuckDB's sniffer once (header forced on: the caller checked the header itself)."""
    opts = ["header=true", "encoding=?", "nullstr=?"]
    params: list[Any] = [str(path), encoding, ["", *missing]]
    if delimiter:
        opts.append("delim=?")
        params.append(delimiter)
    if decimal_comma:
        opts.append("decimal_separator=','")
    row = con.execute(
        "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, Columns, "
        "DateFormat, TimestampFormat "
        f"FROM sniff_csv(?, {', '.join(opts)})",
        params,
    ).fetchall()[0]
    delim, quote, escape, new_line, comment = (v if v != "(empty)" else "" for v in row[:5])
    return CsvDialect(
        delimiter=delim,
        quote=quote,
        escape=escape,
        new_line=new_line,  # as the sniffer spells it, e.g. "\\n"; read_csv accepts that
        comment=comment,
        skip=int(row[5]),
        columns=[(c["name"], c["type"]) for c in row[6]],
        date_format=row[7],
        timestamp_format=row[8],
        encoding=encoding,
        decimal_comma=decimal_comma,
        missing=missing,
    )


def csv_source(path: Path, dialect: CsvDialect, types: dict[str, str] | None = None) -> Source:
    """`read_csv` with the sniffed dialect and explicit column types (no second sniff)."""
    columns = types if types is not None else dict(dialect.columns)
    options, params = _csv_options(dialect)
    sql = f"read_csv(?, header=true, auto_detect=false, columns=?, {options})"
    return Source(sql, (str(path), columns, *params))


def check_csv_rows(con: duckdb.DuckDBPyConnection, path: Path, dialect: CsvDialect) -> None:
    """Read every row as text so DuckDB reports the first malformed line (e.g. a ragged row)."""
    source = csv_source(path, dialect, {name: "VARCHAR" for name, _ in dialect.columns})
    con.execute(f"SELECT count(COLUMNS(*)) FROM {source.sql}", list(source.params)).fetchall()


def parquet_source(path: Path) -> Source:
    return Source("read_parquet(?)", (str(path),))


def register_frame(con: duckdb.DuckDBPyConnection, view: str, frame: pd.DataFrame) -> Source:
    """Expose a small in-memory frame (an Excel sheet) to SQL under `view`."""
    con.complete()  # DuckDB 2 refuses register() while a fetchone() result is still open
    con.register(view, frame)
    return Source(quote_ident(view))


def unregister_frame(con: duckdb.DuckDBPyConnection, view: str) -> None:
    con.unregister(view)


def describe_source(con: duckdb.DuckDBPyConnection, source: Source) -> list[tuple[str, str]]:
    """Column names and DuckDB types of a source, without reading its rows."""
    rel = con.execute(f"DESCRIBE SELECT * FROM {source.sql}", list(source.params))
    return [(r[0], r[1]) for r in rel.fetchall()]


def _sample(source: Source, limit: int) -> tuple[str, list[Any]]:
    rows = f"(SELECT * FROM {source.sql} LIMIT ?)"
    sql = f"(SELECT row_number() OVER () AS __vigil_row, * FROM {rows})"
    return sql, [*source.params, limit]


def infinite_only(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    dialect: CsvDialect,
    columns: Sequence[str],
    limit: int,
) -> list[str]:
    """The columns of a CSV whose sampled cells are all ±inf: DuckDB's sniffer types a column
    of 'inf' as dates, but it is a sensor whose readings are out of range."""
    if not columns:
        return []
    cells = [f"lower(trim({quote_ident(c)}))" for c in columns]
    checks = ", ".join(
        f"count({c}) > 0 AND count({c}) = count(*) FILTER (WHERE {c} IN {_INFINITIES})"
        for c in cells
    )
    text = csv_source(path, dialect, {name: "VARCHAR" for name, _ in dialect.columns})
    sample, params = _sample(text, limit)
    row = con.execute(f"SELECT {checks} FROM {sample}", params).fetchall()[0]
    return [c for c, only_inf in zip(columns, row, strict=True) if only_inf]


_INFINITIES = "('inf', '+inf', '-inf', 'infinity', '+infinity', '-infinity')"


def _text_profile_exprs(col: str, families: list[list[str]]) -> tuple[list[str], list[Any]]:
    c = quote_ident(col)
    bad = f"{c} IS NOT NULL AND TRY_CAST({c} AS DOUBLE) IS NULL"
    exprs = [
        f"count({c})",
        f"count(TRY_CAST({c} AS DOUBLE))",
        f"count(DISTINCT {c})",
        f"arg_min({c}, __vigil_row) FILTER (WHERE {bad})",
        f"min(__vigil_row) FILTER (WHERE {bad})",
        f"count(TRY_CAST({c} AS TIMESTAMP))",
        f"arg_min(regexp_matches({c}, ?), __vigil_row) FILTER (WHERE TRY_CAST({c} AS TIMESTAMP) "
        "IS NOT NULL)",
    ]
    params: list[Any] = [ZONE_PATTERN]
    for family in families:
        exprs.append(f"count(try_strptime({c}, ?))")
        params.append(family)
    return exprs, params


def profile_sample(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    text_columns: list[str],
    numeric_columns: list[str],
    families: list[list[str]],
    limit: int,
) -> dict[str, ColumnProfile]:
    """One pass over the first `limit` rows: a profile of each named column."""
    exprs, params = ["count(*)"], []
    for col in text_columns:
        more, more_params = _text_profile_exprs(col, families)
        exprs += more
        params += more_params
    for col in numeric_columns:
        c = quote_ident(col)
        first = f"arg_min({c}, __vigil_row) FILTER (WHERE {c} IS NOT NULL)::DOUBLE"
        exprs += [f"count({c})", f"count(DISTINCT {c})", first]
    sample, sample_params = _sample(source, limit)
    row = con.execute(
        f"SELECT {', '.join(exprs)} FROM {sample}", params + sample_params
    ).fetchall()[0]
    profiles, i = {}, 1
    width = 7 + len(families)
    for col in text_columns:
        v = row[i : i + width]
        profiles[col] = ColumnProfile(
            n_values=v[0], n_numeric=v[1], n_distinct=v[2], bad_value=v[3], bad_row=v[4],
            n_iso=v[5], first_zoned=v[6], n_by_family=list(v[7:]),
        )  # fmt: skip
        i += width
    for col in numeric_columns:
        v = row[i : i + 3]
        profiles[col] = ColumnProfile(n_values=v[0], n_distinct=v[1], first=v[2])
        i += 3
    return profiles


def time_expression(spec: TimeSpec) -> tuple[str, list[Any]]:
    """SQL turning the time column into a naive UTC TIMESTAMP (NULL where text does not parse).

    Never depends on the session's time zone: zoned text is converted with its own zone, naive
    text is kept as written, and a cell that breaks the file's format (a zone where the file has
    none or the other way round, an epoch number out of its range) is NULL, so the load refuses
    it by row (`first_unparsed_time`).
    """
    c = quote_ident(spec.column)
    if spec.kind == "native":
        return f"CAST({c} AS TIMESTAMP)", []
    if spec.kind == "tz":
        return f"timezone('UTC', {c})", []
    if spec.kind == "text":
        return f"CASE WHEN NOT regexp_matches({c}, ?) THEN TRY_CAST({c} AS TIMESTAMP) END", [
            ZONE_PATTERN
        ]
    if spec.kind == "text_tz":
        return (
            f"CASE WHEN regexp_matches({c}, ?) THEN timezone('UTC', TRY_CAST({c} AS TIMESTAMPTZ)) "
            "END",
            [ZONE_PATTERN],
        )
    if spec.kind == "formats":
        return f"try_strptime({c}, ?)", [list(spec.formats)]
    scale = {"epoch_s": 1_000_000, "epoch_ms": 1_000}[spec.kind]
    low, high = EPOCH_RANGES[spec.kind]
    return (
        f"CASE WHEN {c} >= ? AND {c} < ? THEN make_timestamp(CAST(round({c} * {scale}) AS BIGINT)) "
        "END",
        [low, high],
    )


def count_time_reversals(
    con: duckdb.DuckDBPyConnection, source: Source, spec: TimeSpec, limit: int
) -> int:
    """How often time goes backwards in the first rows if read with `spec` (to pick d/m vs m/d)."""
    expr, params = time_expression(spec)
    sample, sample_params = _sample(source, limit)
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE t < prev) FROM (SELECT t, lag(t) OVER (ORDER BY "
        f"__vigil_row) AS prev FROM (SELECT {expr} AS t, __vigil_row FROM {sample}))",
        params + sample_params,
    ).fetchall()[0]
    return int(row[0])


def time_splits_by(
    con: duckdb.DuckDBPyConnection, source: Source, spec: TimeSpec, column: str, limit: int
) -> bool:
    """True if timestamps often repeat and `column` tells them apart: the mark of an asset id.

    A few repeated timestamps (duplicates) are not enough: a status column would pass then.
    """
    expr, params = time_expression(spec)
    c = quote_ident(column)
    sample, sample_params = _sample(source, limit)
    row = con.execute(
        f"SELECT count(DISTINCT t), count(DISTINCT (t, a)), count(t) FROM "
        f"(SELECT {expr} AS t, {c} AS a FROM {sample})",
        params + sample_params,
    ).fetchall()[0]
    distinct_times, distinct_pairs, n = row
    return n > 0 and distinct_times <= 0.7 * n and distinct_pairs >= 0.95 * n


def first_unparsed_time(
    con: duckdb.DuckDBPyConnection, source: Source, spec: TimeSpec
) -> tuple[int, str, bool] | None:
    """Row number and text of the first time cell that is not empty and does not parse, and
    whether that text is an ISO time by itself (then only its zone breaks the file's format)."""
    expr, params = time_expression(spec)
    c = quote_ident(spec.column)
    row = con.execute(
        f"SELECT __vigil_row, text, TRY_CAST(text AS TIMESTAMP) IS NOT NULL FROM (SELECT "
        f"__vigil_row, CAST(raw AS VARCHAR) AS text FROM (SELECT row_number() OVER () AS "
        f"__vigil_row, {c} AS raw, {expr} AS t FROM {source.sql}) "
        "WHERE raw IS NOT NULL AND t IS NULL ORDER BY __vigil_row LIMIT 1)",
        params + list(source.params),
    ).fetchall()
    return (int(row[0][0]), row[0][1], bool(row[0][2])) if row else None


def first_sub_microsecond_merge(
    con: duckdb.DuckDBPyConnection, source: Source, spec: TimeSpec, keys: Sequence[str]
) -> tuple[int, str, int, str] | None:
    """The first two rows (number and time as written) whose times differ only below a
    microsecond for the same `keys` (asset, tag): a TIMESTAMP keeps microseconds, so they
    would merge into one. None when there are none or the time's kind holds no finer digits."""
    c = quote_ident(spec.column)
    if spec.kind in ("native", "text", "text_tz"):  # a time past 1677..2262 has no nanoseconds
        sub = f"epoch_ns(TRY_CAST({c} AS TIMESTAMP_NS)) % 1000"
    else:
        return None
    expr, params = time_expression(spec)
    key_sql = "".join(f", {quote_ident(k)} AS k{i}" for i, k in enumerate(keys))
    group = "".join(f", k{i}" for i in range(len(keys)))
    row = con.execute(
        "SELECT arg_min(r, s), arg_min(text, s), arg_max(r, s), arg_max(text, s) FROM ("
        f"SELECT row_number() OVER () AS r, CAST({c} AS VARCHAR) AS text, {expr} AS t, "
        f"{sub} AS s{key_sql} FROM {source.sql}) WHERE t IS NOT NULL "
        f"GROUP BY t{group} HAVING min(s) < max(s) ORDER BY min(r) LIMIT 1",
        params + list(source.params),
    ).fetchall()
    if not row:
        return None
    first, second = sorted([(int(row[0][0]), row[0][1]), (int(row[0][2]), row[0][3])])
    return first[0], first[1], second[0], second[1]


def _select_parts(
    spec: TimeSpec, asset_column: str | None, default_asset: str
) -> tuple[str, list[Any]]:
    ts_sql, params = time_expression(spec)
    if asset_column is None:
        asset_sql = "CAST(? AS VARCHAR)"
    else:
        asset_sql = f"coalesce(CAST({quote_ident(asset_column)} AS VARCHAR), ?)"
    sql = f"{ts_sql} AS {quote_ident(TS)}, {asset_sql} AS {quote_ident(ASSET)}"
    return sql, [*params, default_asset]


def _as_double(column: str, alias: str) -> str:
    return f"CAST({quote_ident(column)} AS DOUBLE) AS {quote_ident(alias)}"


def create_wide_readings(
    con: duckdb.DuckDBPyConnection,
    table: str,
    source: Source,
    spec: TimeSpec,
    asset_column: str | None,
    sensors: list[str],
    default_asset: str,
) -> None:
    """One pass over the file straight into the readings table (file order kept)."""
    head, params = _select_parts(spec, asset_column, default_asset)
    cols = ", ".join(_as_double(s, s) for s in sensors)
    con.execute(
        f"CREATE TABLE {quote_ident(table)} AS SELECT {head}, {cols} FROM {source.sql}",
        params + list(source.params),
    )


def stage_long(
    con: duckdb.DuckDBPyConnection,
    temp: str,
    source: Source,
    spec: TimeSpec,
    columns: tuple[str | None, str, str],
    default_asset: str,
) -> None:
    """Copy a long file (ts, asset, tag, value) into a temp table, file order kept in rowid."""
    asset_column, tag_column, value_column = columns
    head, params = _select_parts(spec, asset_column, default_asset)
    con.execute(
        f"CREATE TEMP TABLE {quote_ident(temp)} AS SELECT {head}, "
        f"CAST({quote_ident(tag_column)} AS VARCHAR) AS tag, {_as_double(value_column, 'value')} "
        f"FROM {source.sql}",
        params + list(source.params),
    )


def long_tags(con: duckdb.DuckDBPyConnection, temp: str) -> tuple[list[str], int]:
    """Distinct tags in order of first appearance, and how many rows have no tag."""
    t = quote_ident(temp)
    tags = con.execute(
        f"SELECT tag FROM {t} WHERE tag IS NOT NULL GROUP BY tag ORDER BY min(rowid)"
    ).fetchall()
    missing = con.execute(f"SELECT count(*) FROM {t} WHERE tag IS NULL").fetchall()[0][0]
    return [r[0] for r in tags], int(missing)


def pivot_long(con: duckdb.DuckDBPyConnection, table: str, temp: str, tags: list[str]) -> None:
    """Long -> wide by conditional aggregation; a repeated (asset, ts, tag) keeps its last value."""
    cols = ", ".join(
        f"arg_max(value, rowid) FILTER (WHERE tag = ?) AS {quote_ident(tag)}" for tag in tags
    )
    ts, asset = quote_ident(TS), quote_ident(ASSET)
    con.execute(
        f"CREATE TABLE {quote_ident(table)} AS SELECT {ts}, {asset}, {cols} "
        f"FROM {quote_ident(temp)} WHERE tag IS NOT NULL GROUP BY {ts}, {asset} "
        f"ORDER BY {asset}, {ts}",
        list(tags),
    )


def drop_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    con.execute(f"DROP TABLE IF EXISTS {quote_ident(table)}")


def count_missing_time(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"SELECT count(*) FROM {quote_ident(table)} WHERE {quote_ident(TS)} IS NULL")
    return int(row.fetchall()[0][0])


def delete_missing_time(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Drop rows whose time cell was empty (a row without a time cannot be placed)."""
    con.execute(f"DELETE FROM {quote_ident(table)} WHERE {quote_ident(TS)} IS NULL")


def null_out_of_range(con: duckdb.DuckDBPyConnection, table: str, limits: dict[str, float]) -> None:
    """NaN and readings beyond each sensor's limit (inf included) become NULL, so every missing
    value looks the same to SQL and to detectors."""
    for sensor, limit in limits.items():
        c = quote_ident(sensor)
        con.execute(
            f"UPDATE {quote_ident(table)} SET {c} = NULL WHERE isnan({c}) OR abs({c}) > ?", [limit]
        )


def sort_readings(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Rewrite the table ordered by asset then time, so scans and zone maps follow time."""
    sorted_name = f"{table}__sorted"
    con.execute(
        f"CREATE TABLE {quote_ident(sorted_name)} AS SELECT * FROM {quote_ident(table)} "
        f"ORDER BY {quote_ident(ASSET)}, {quote_ident(TS)}"
    )
    con.execute(f"DROP TABLE {quote_ident(table)}")
    con.execute(f"ALTER TABLE {quote_ident(sorted_name)} RENAME TO {quote_ident(table)}")


def non_binary_examples(
    con: duckdb.DuckDBPyConnection, table: str, columns: list[str]
) -> dict[str, float]:
    """For each column holding a value other than 0, 1 or empty: one such value."""
    out: dict[str, float] = {}
    for column in columns:
        c = quote_ident(column)
        row = con.execute(
            f"SELECT {c} FROM {quote_ident(table)} WHERE {c} IS NOT NULL AND {c} NOT IN (0, 1) "
            "LIMIT 1"
        ).fetchall()
        if row:
            out[column] = float(row[0][0])
    return out


def label_windows(con: duckdb.DuckDBPyConnection, table: str, column: str) -> list[tuple]:
    """Runs of consecutive rows (per asset, in time order) where a 0/1 column is 1, as
    (asset, first ts, last ts)."""
    c, ts, asset = quote_ident(column), quote_ident(TS), quote_ident(ASSET)
    return con.execute(
        f"WITH t AS (SELECT {asset} AS a, {ts} AS t, {c} AS v, "
        f"row_number() OVER (PARTITION BY {asset} ORDER BY {ts}) AS rn FROM {quote_ident(table)}), "
        "ones AS (SELECT a, t, rn - row_number() OVER (PARTITION BY a ORDER BY t) AS g "
        "FROM t WHERE v = 1) "
        "SELECT a, min(t), max(t) FROM ones GROUP BY a, g ORDER BY a, min(t)"
    ).fetchall()


def drop_columns(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> None:
    for column in columns:
        con.execute(f"ALTER TABLE {quote_ident(table)} DROP COLUMN {quote_ident(column)}")
