"""Files -> readings table: CSV, Parquet or Excel, wide or long, checked and described.

DuckDB reads the file itself (no Python row loops). The steps are: look at the first bytes
(format, encoding, header), let DuckDB sniff the CSV once, profile the first rows of the columns
whose role is unclear, decide the roles (time, asset, sensors, or tag/value for long files), load
in one SQL pass, then measure quality with a few aggregate queries. All of it runs inside one
transaction: a bad file leaves the workspace exactly as it was.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from core import store
from core.errors import DataError
from core.ingest.files import (
    LateMissingMarker,
    SourceFile,
    check_names,
    detect_format,
    explained_read_errors,
    open_file,
    read_head,
)
from core.ingest.roles import (
    MAX_ASSETS,
    Plan,
    check_sensor_names,
    choose_labels,
    plan_columns,
    raise_bad_time,
    too_many_assets,
)
from core.store import staging as sql
from core.store.staging import Source
from core.store.staging_quality import (
    ColumnStats,
    column_stats,
    count_repeated_keys,
    out_of_range_cells,
    step_stats,
    typical_magnitudes,
)
from core.types import (
    ASSET,
    DEFAULT_ASSET,
    TS,
    DatasetInfo,
    OutOfRange,
    QualityReport,
    out_of_range_limit,
)


@dataclass(frozen=True)
class IngestResult:
    """The stored dataset and what the user should read before trusting it."""

    dataset: DatasetInfo
    warnings: list[str]


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    name: str | None = None,
    source_name: str | None = None,
    labels: list[str] | None = None,
) -> IngestResult:
    """Load a CSV, Parquet or Excel file as a new dataset, all or nothing.

    Parameters
    ----------
    con : the workspace connection (this process must be its writer).
    path : the file to read.
    name : dataset name; default the file name without extension, made unique.
    source_name : the user's file name when `path` is a temporary copy (uploads).
    labels : columns holding ground truth as 0/1 (kept as the dataset's labelled windows, never
        as sensors); None: columns named like labels (``anomaly``, ``fault``...) that hold only
        0 and 1; [] for none.

    Raises
    ------
    DataError : the file cannot be used as it is; the message names the file, column or line.
    """
    path = Path(path)
    display = source_name or path.name
    if path.is_dir():
        raise DataError(f"{display} is a folder: give the file of readings to load.")
    if not path.is_file():
        raise DataError(f"{display}: there is no such file.")
    head = read_head(path)
    kind = detect_format(head, display)
    with ThreadPoolExecutor(max_workers=1) as pool:
        digest = pool.submit(_sha256, path)  # hashing overlaps DuckDB's reading
        try:
            info, warnings = _ingest(con, path, head, kind, display, name, digest, labels)
        except LateMissingMarker:  # rare: an "NA" first seen past the start; read with all
            if kind != "csv":
                raise
            info, warnings = _ingest(con, path, head, kind, display, name, digest, labels, True)
    return IngestResult(dataset=info, warnings=warnings)


def _ingest(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    head: bytes,
    kind: str,
    display: str,
    name: str | None,
    digest: Future[str],
    labels: list[str] | None = None,
    all_markers: bool = False,
) -> tuple[DatasetInfo, list[str]]:
    """Open and plan (read only), then write everything inside one transaction."""
    view = f"__vigil_excel_{uuid.uuid4().hex}"
    try:
        f = open_file(con, path, head, kind, display, view, all_markers)
        with explained_read_errors(display, kind):
            plan = plan_columns(con, f)
        choose_labels(plan, labels, display)
        return store.with_unique_name(lambda: _store_once(con, f, plan, name, digest))
    finally:
        if kind == "excel":
            sql.unregister_frame(con, view)


def _store_once(
    con, f: SourceFile, plan: Plan, name: str | None, digest: Future[str]
) -> tuple[DatasetInfo, list[str]]:
    """One all-or-nothing attempt, on a copy of the plan (loading adds notes to it)."""
    with store.transaction(con):
        return _store(con, f, copy.deepcopy(plan), name, digest)


def _store(
    con, f: SourceFile, plan: Plan, name: str | None, digest: Future[str]
) -> tuple[DatasetInfo, list[str]]:
    """Everything that writes: readings table, quality, metadata (inside the transaction)."""
    dataset_id = store.next_dataset_id(con)
    table = store.readings_table_name(dataset_id)
    with explained_read_errors(f.display, f.kind, plan.time.column):
        layout, long_counts = _load(con, f, plan, table, dataset_id)
    truth = _take_labels(con, f.display, plan, table)
    quality, stats, steps = _quality(con, f, table, plan, layout, long_counts)
    if quality.n_duplicate_timestamps:
        _refuse_merged_times(con, f, plan)
    info = DatasetInfo(
        id=dataset_id,
        name=store.unique_dataset_name(con, name or Path(f.display).stem or "dataset"),
        table_name=table,
        source_file=f.display,
        sha256=digest.result(),
        layout=layout,
        n_rows=stats.n_rows,
        sensors=list(stats.value_counts),
        assets=stats.assets,
        time_start=stats.time_start,
        time_end=stats.time_end,
        interval_seconds=steps.median_step,
        loaded_at=datetime.now(),
        quality=quality,
    )
    store.insert_dataset(con, info)
    if len(truth):
        store.insert_ground_truth(con, dataset_id, truth)
    return store.get_dataset(con, dataset_id), _warnings(quality)


def _refuse_merged_times(con, f: SourceFile, plan: Plan) -> None:
    """Refuse times that differ only in nanoseconds: stored to the microsecond they would merge
    into one row (and one of them silently vanish). Checked only when times repeat."""
    keys = [k for k in (plan.asset, plan.tag) if k is not None]
    found = sql.first_sub_microsecond_merge(con, _final_source(f, plan), plan.time, keys)
    if found is None:
        return
    row, text, other_row, other_text = found
    raise DataError(
        f"{f.display}: the time column {plan.time.column!r} has {text!r} on {f.where(row)} and "
        f"{other_text!r} on {f.where(other_row)}, less than a microsecond apart. Vigil keeps "
        "times to the microsecond, so these rows would merge into one. Aggregate or resample "
        "the file to steps of a microsecond or more and load again."
    )


def _take_labels(con, display: str, plan: Plan, table: str) -> pd.DataFrame:
    """Move 0/1 label columns out of the readings into ground-truth windows (one per run of 1s).

    A column only named like a label but holding other values stays a sensor, unless the user
    named it as a label column: then it is an error.
    """
    if not plan.labels:
        return pd.DataFrame(columns=["asset", "start", "end", "kind", "sensors"])
    other = sql.non_binary_examples(con, table, plan.labels)
    if other and plan.labels_chosen:
        column, value = next(iter(other.items()))
        raise DataError(
            f"{display}: column {column!r} cannot be labels: it holds {value:g}, and labels are "
            "0 (normal) or 1 (anomalous)."
        )
    labels = [c for c in plan.labels if c not in other]
    if labels and len(labels) == len(plan.sensors):
        raise DataError(
            f"{display}: every numeric column ({', '.join(map(repr, labels))}) looks like 0/1 "
            "labels, so there is no sensor left to load. Load them as sensors with no label "
            "columns."
        )
    rows = []
    for column in labels:
        windows = sql.label_windows(con, table, column)
        rows += [
            (a, start, end, column, [], f"column {column!r} of the file")
            for a, start, end in windows
        ]
        plan.notes.append(
            f"Column {column!r} holds 0/1 ground truth: kept as {len(windows)} labelled "
            "window(s) to grade runs against, not as a sensor."
        )
    sql.drop_columns(con, table, labels)
    plan.sensors = [s for s in plan.sensors if s not in labels]
    plan.labels = labels
    return pd.DataFrame(rows, columns=["asset", "start", "end", "kind", "sensors", "description"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def _final_source(f: SourceFile, plan: Plan) -> Source:
    """For CSV: read types the plan needs (sensors DOUBLE, unused columns plain text)."""
    if f.kind != "csv":
        return f.source
    return sql.csv_source(f.path, f.dialect, {n: _read_type(plan, n, t) for n, t in f.columns})


def _read_type(plan: Plan, name: str, sniffed: str) -> str:
    if name == plan.time.column:
        if plan.time.kind in ("native", "tz"):
            return sniffed
        return "DOUBLE" if plan.time.kind.startswith("epoch") else "VARCHAR"
    if name in plan.sensors or name == plan.value:
        return "BOOLEAN" if sniffed == "BOOLEAN" else "DOUBLE"  # true/false, cast to 1/0
    return "VARCHAR"


def _load(
    con, f: SourceFile, plan: Plan, table: str, dataset_id: int
) -> tuple[str, tuple[int, int]]:
    """Create the readings table; returns the layout and, for long files, (repeats, backwards)."""
    source = _final_source(f, plan)
    if plan.tag is not None:
        return "long", _load_long(con, f, source, plan, table, f"__vigil_long_{dataset_id}")
    sql.create_wide_readings(con, table, source, plan.time, plan.asset, plan.sensors, DEFAULT_ASSET)
    _drop_missing_times(con, f, source, plan, table)
    return "wide", (0, 0)


def _load_long(con, f: SourceFile, source: Source, plan: Plan, table: str, temp: str):
    columns = (plan.asset, plan.tag, plan.value)
    sql.stage_long(con, temp, source, plan.time, columns, DEFAULT_ASSET)
    _drop_missing_times(con, f, source, plan, temp)
    tags, untagged = sql.long_tags(con, temp)
    if untagged:
        plan.notes.append(f"{untagged:,} rows without a tag in {plan.tag!r} were left out.")
    if not tags:
        raise DataError(f"{f.display}: the tag column {plan.tag!r} is empty.")
    check_names(tags, f.display, what=f"tags in {plan.tag!r}")
    check_sensor_names(tags, f.display)
    plan.sensors = tags
    repeats = count_repeated_keys(con, temp, (TS, ASSET, "tag"))
    backwards = step_stats(con, temp, (ASSET, "tag")).n_backwards
    sql.pivot_long(con, table, temp, tags)
    sql.drop_table(con, temp)
    if repeats:
        plan.notes.append("Where a tag repeats a timestamp, its last value in the file is kept.")
    return repeats, backwards


def _drop_missing_times(con, f: SourceFile, source: Source, plan: Plan, table: str) -> None:
    """Refuse a time cell that does not parse; drop rows whose time cell is empty."""
    missing = sql.count_missing_time(con, table)
    if missing:
        raise_bad_time(con, f, source, plan.time)
        sql.delete_missing_time(con, table)
        plan.notes.append(f"{missing:,} rows without a time in {plan.time.column!r} were dropped.")


def _quality(con, f: SourceFile, table: str, plan: Plan, layout: str, long_counts: tuple[int, int]):
    """The quality report; sorts a wide table when time went backwards or assets interleave."""
    stats = column_stats(con, table, plan.sensors)
    if stats.n_rows == 0:
        raise DataError(f"{f.display} has no data rows: there is nothing to load.")
    if len(stats.assets) > MAX_ASSETS:  # past the rows the asset column was judged on
        raise too_many_assets(f.display, plan.asset or "", len(stats.assets))
    stats, out_of_range = _clear_out_of_range(con, table, stats, plan.sensors)
    unusable = {o.sensor for o in out_of_range} & set(stats.empty)
    if len(stats.empty) == len(plan.sensors):
        raise DataError(
            f"{f.display} has no sensor with a usable value: "
            + ", ".join(
                f"{s!r} holds only out-of-range values" if s in unusable else f"{s!r} is empty"
                for s in plan.sensors
            )
            + ". There is nothing to detect on."
        )
    series = (ASSET,) if len(stats.assets) > 1 else ()
    steps = step_stats(con, table, series)
    repeats, backwards = long_counts
    if layout == "wide":
        backwards = steps.n_backwards
        if backwards or series:
            sql.sort_readings(con, table)
        if backwards:
            steps = step_stats(con, table, series)
            plan.notes.append(f"Time goes backwards at {backwards:,} rows: readings were sorted.")
        repeats = steps.n_repeats
    quality = QualityReport(
        n_rows=stats.n_rows,
        n_duplicate_timestamps=repeats,
        n_gaps=steps.n_gaps,
        largest_gap_seconds=steps.largest_gap,
        n_non_monotonic=backwards,
        constant_sensors=stats.constant,
        empty_sensors=[s for s in stats.empty if s not in unusable],
        out_of_range=out_of_range,
        nan_share={s: (stats.n_rows - n) / stats.n_rows for s, n in stats.value_counts.items()},
        ignored_columns=plan.ignored,
        notes=plan.notes,
    )
    return quality, stats, steps


def _clear_out_of_range(
    con, table: str, stats: ColumnStats, sensors: list[str]
) -> tuple[ColumnStats, list[OutOfRange]]:
    """Count the readings that are no measurement (inf, 1e300: `out_of_range_limit`), then leave
    them and NaN empty, so no detector statistic ever sees them. Stats after, and the counts."""
    typical = typical_magnitudes(con, table, list(stats.ranges), stats.n_rows)
    limits = {s: out_of_range_limit(m) for s, m in typical.items()}
    suspects = {
        s: limits[s]
        for s, (low, high) in stats.ranges.items()
        if not -limits[s] <= low <= high <= limits[s]  # NaN fails every comparison
    }
    if not suspects:
        return stats, []
    found = out_of_range_cells(con, table, suspects)
    sql.null_out_of_range(con, table, suspects)
    return column_stats(con, table, sensors), found


def _warnings(q: QualityReport) -> list[str]:
    """One line per thing a user should look at before trusting detections."""
    out = []
    if q.n_duplicate_timestamps:
        out.append(f"{q.n_duplicate_timestamps:,} rows repeat a timestamp of the same asset.")
    if q.n_gaps:
        out.append(
            f"{q.n_gaps:,} gaps longer than twice the sampling interval "
            f"(largest {q.largest_gap_seconds:,.0f} s)."
        )
    if q.out_of_range:
        out.append(
            "Out-of-range values, treated as missing: "
            + "; ".join(o.describe() for o in q.out_of_range)
            + "."
        )
    if q.unusable_sensors:
        out.append(
            f"Sensors with no usable value (all out of range): {', '.join(q.unusable_sensors)}."
        )
    if q.empty_sensors:
        out.append(f"Empty sensors (no value): {', '.join(q.empty_sensors)}.")
    if q.constant_sensors:
        out.append(f"Constant sensors (no signal): {', '.join(q.constant_sensors)}.")
    sparse = [f"{s} ({share:.0%})" for s, share in q.nan_share.items() if 0.5 <= share < 1]
    if sparse:
        out.append(f"Mostly empty sensors: {', '.join(sparse)}.")
    if q.ignored_columns:
        out.append(f"Ignored non-numeric columns: {', '.join(q.ignored_columns)}.")
    return out + list(q.notes)
