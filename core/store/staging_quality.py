"""SQL for the quality report of a freshly loaded readings table: a few aggregate passes.

Steps are measured in stored order (rowid), which is file order until the table is sorted; the
caller sorts when time went backwards and measures again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb

from core.store.connection import quote_ident
from core.types import ASSET, TS, OutOfRange


@dataclass(frozen=True)
class StepStats:
    """Time steps between consecutive rows of each series, in seconds."""

    n_backwards: int
    n_repeats: int
    median_step: float | None
    n_gaps: int
    largest_gap: float | None


@dataclass(frozen=True)
class ColumnStats:
    """Row count, time range, assets, and per-sensor value counts, ranges and constancy."""

    n_rows: int
    time_start: datetime | None
    time_end: datetime | None
    assets: list[str]
    value_counts: dict[str, int]
    ranges: dict[str, tuple[float, float]]
    """(min, max) of each sensor with a value; NaN sorts above every number, -inf below."""
    constant: list[str]
    empty: list[str]


TYPICAL_SAMPLE_ROWS = 65_536
"""Evenly spaced rows whose percentiles give a sensor's typical magnitude (exact percentiles of
every row would cost a third of the load of a large file)."""


def step_stats(
    con: duckdb.DuckDBPyConnection, table: str, partition: tuple[str, ...] = (ASSET,)
) -> StepStats:
    """Backward steps, zero steps, median positive step and gaps (> 2x median) in one query.

    `partition` separates the series (by asset; by asset and tag in a long file); leave it
    empty for a single series, which spares DuckDB a hash partition.
    """
    ts = quote_ident(TS)
    part = ", ".join(quote_ident(p) for p in partition)
    window = f"PARTITION BY {part} ORDER BY rowid" if partition else "ORDER BY rowid"
    row = con.execute(
        f"""
        WITH s AS MATERIALIZED (
            SELECT (epoch_us({ts}) - epoch_us(lag({ts}) OVER ({window}))) / 1e6 AS d
            FROM {quote_ident(table)}
        ), m AS (SELECT median(d) FILTER (WHERE d > 0) AS med FROM s)
        SELECT count(*) FILTER (WHERE d < 0), count(*) FILTER (WHERE d = 0), any_value(med),
               count(*) FILTER (WHERE d > 2 * med), max(d) FILTER (WHERE d > 2 * med)
        FROM s CROSS JOIN m
        """
    ).fetchall()[0]
    return StepStats(int(row[0]), int(row[1]), row[2], int(row[3]), row[4])


def count_repeated_keys(con: duckdb.DuckDBPyConnection, table: str, keys: tuple[str, ...]) -> int:
    """Rows beyond the first for each distinct key (e.g. a repeated asset + timestamp)."""
    cols = ", ".join(quote_ident(k) for k in keys)
    row = con.execute(f"SELECT count(*) - count(DISTINCT ({cols})) FROM {quote_ident(table)}")
    return int(row.fetchall()[0][0])


def column_stats(con: duckdb.DuckDBPyConnection, table: str, sensors: list[str]) -> ColumnStats:
    """Everything per column the report needs, in one aggregate pass."""
    ts, asset = quote_ident(TS), quote_ident(ASSET)
    exprs = [f"count(*), min({ts}), max({ts}), list(DISTINCT {asset} ORDER BY {asset})"]
    for s in sensors:
        c = quote_ident(s)
        exprs.append(f"count({c}), min({c}), max({c})")
    row = con.execute(f"SELECT {', '.join(exprs)} FROM {quote_ident(table)}").fetchall()[0]
    counts, ranges, constant, empty = {}, {}, [], []
    for i, s in enumerate(sensors):
        n, low, high = row[4 + 3 * i : 7 + 3 * i]
        counts[s] = int(n)
        if n == 0:
            empty.append(s)
            continue
        ranges[s] = (low, high)
        if low == high:
            constant.append(s)
    assets = list(row[3] or [])
    return ColumnStats(int(row[0]), row[1], row[2], assets, counts, ranges, constant, empty)


def typical_magnitudes(
    con: duckdb.DuckDBPyConnection, table: str, sensors: list[str], n_rows: int
) -> dict[str, float | None]:
    """Per sensor, the larger of |10th| and |90th| percentile of its finite values (None if it
    has none), on evenly spaced rows: what `out_of_range_limit` scales with."""
    if not sensors:
        return {}
    step = max(1, n_rows // TYPICAL_SAMPLE_ROWS)
    exprs = [
        f"quantile_disc({quote_ident(s)}, [0.1, 0.9]) FILTER (WHERE isfinite({quote_ident(s)}))"
        for s in sensors
    ]
    row = con.execute(
        f"SELECT {', '.join(exprs)} FROM {quote_ident(table)} WHERE rowid % ? = 0", [step]
    ).fetchall()[0]
    return {s: max(abs(q[0]), abs(q[1])) if q else None for s, q in zip(sensors, row, strict=True)}


def out_of_range_cells(
    con: duckdb.DuckDBPyConnection, table: str, limits: dict[str, float]
) -> list[OutOfRange]:
    """Per sensor, the readings beyond its limit (inf included, NaN not: that is missing)."""
    ts = quote_ident(TS)
    exprs, params = [], []
    for s, limit in limits.items():
        c = quote_ident(s)
        bad = f"NOT isnan({c}) AND abs({c}) > ?"
        exprs.append(
            f"count(*) FILTER (WHERE {bad}), min({ts}) FILTER (WHERE {bad}), "
            f"arg_min({c}, {ts}) FILTER (WHERE {bad})"
        )
        params += [limit] * 3
    if not exprs:
        return []
    row = con.execute(f"SELECT {', '.join(exprs)} FROM {quote_ident(table)}", params).fetchall()[0]
    found = []
    for i, (s, limit) in enumerate(limits.items()):
        n, first, example = row[3 * i : 3 * i + 3]
        if n:
            found.append(OutOfRange(s, int(n), str(first), f"{example:g}", limit))
    return found
