"""Deciding what each column of a file is: time, asset, sensor, or tag and value (long files).

Types come from DuckDB; where they are not enough (text columns, epoch numbers) the first rows
are profiled in one SQL pass. Names help: a column named like `time`, `machine` or `tag` is
preferred for that role.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.errors import DataError
from core.ingest.files import SourceFile, mixed_type_error
from core.ingest.names import (
    UNIT_WORDS,
    VALUE_WORDS,
    is_asset_name,
    is_label_name,
    is_tag_name,
    is_time_name,
    words,
)
from core.store import staging as sql
from core.store.staging import Source, TimeSpec
from core.types import RESERVED_COLUMNS

SAMPLE_ROWS = 20_480
"""Rows profiled to decide the role of unclear columns (as many as DuckDB's sniffer samples)."""
MAX_ASSETS = 1_000
"""Assets a dataset may hold (each gets its own model). An asset column naming more is refused:
merging them into one asset would mix their readings."""
TIME_FAMILIES = [
    ["%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d"],
    ["%d/%m/%Y %H:%M:%S.%f", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y"],
    ["%m/%d/%Y %H:%M:%S.%f", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y",
     "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %I:%M %p"],
    ["%d.%m.%Y %H:%M:%S.%f", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y"],
    ["%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y"],
    ["%d-%b-%Y %H:%M:%S", "%d-%b-%Y %H:%M", "%d %b %Y %H:%M:%S", "%d %b %Y %H:%M"],
]  # fmt: skip
DAY_FIRST, MONTH_FIRST = 1, 2
NUMERIC_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                 "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "BOOLEAN"}  # fmt: skip


@dataclass
class Plan:
    """The role of every column."""

    time: TimeSpec
    asset: str | None = None
    sensors: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    tag: str | None = None
    value: str | None = None
    notes: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    """Columns that may hold ground truth (0/1): loaded with the sensors, then taken out."""
    labels_chosen: bool = False
    """The user named the label columns (a column that is not 0/1 is then an error)."""


def _is_numeric(kind: str) -> bool:
    return kind in NUMERIC_TYPES or kind.startswith("DECIMAL")


def plan_columns(con, f: SourceFile) -> Plan:
    """Decide the role of each column from its type, its name and the first rows."""
    types = {n: t for n, t in f.columns if n not in f.unnamed}
    text = [n for n, t in types.items() if t == "VARCHAR"]
    numeric = [n for n, t in types.items() if _is_numeric(t)]
    native = [n for n, t in types.items() if t.startswith("TIMESTAMP") or t == "DATE"]
    if f.kind == "csv":
        for name in sql.infinite_only(con, f.path, f.dialect, native, SAMPLE_ROWS):
            native.remove(name)
            numeric.append(name)
    epoch = [] if native else [n for n in numeric if is_time_name(n)]
    int_ids = [n for n in numeric if is_asset_name(n) and "INT" in types[n]]
    profiles = {}
    if text or epoch or int_ids:
        profiles = sql.profile_sample(
            con, f.source, text, epoch + int_ids, TIME_FAMILIES, SAMPLE_ROWS
        )
    plan = Plan(time=_pick_time(con, f, native, text, epoch, profiles))
    if types[plan.time.column] == "TIMESTAMP WITH TIME ZONE" or plan.time.kind == "text_tz":
        plan.notes.append(f"Times in {plan.time.column!r} carry a time zone: stored in UTC.")
    if plan.time.kind == "formats" and _ambiguous(profiles[plan.time.column]):
        order = "day/month" if plan.time.formats == tuple(TIME_FAMILIES[DAY_FIRST]) else "month/day"
        plan.notes.append(f"Dates in {plan.time.column!r} could be day/month or month/day: "
                          f"read as {order} (the order in which time runs forward).")  # fmt: skip
    rest = [n for n in types if n != plan.time.column]
    _pick_roles(con, f, plan, [n for n in rest if n in text], [n for n in rest if n in numeric],
                profiles)  # fmt: skip
    plan.ignored = [n for n, _ in f.columns if n not in _used(plan) and n not in f.unnamed]
    if f.unnamed:
        plan.notes.append(f"{len(f.unnamed)} column(s) without a name in the header were ignored.")
    plan.notes.extend(f.notes)
    _check_plan(plan, f.display)
    return plan


def choose_labels(plan: Plan, labels: list[str] | None, display: str) -> None:
    """Which sensor columns may be ground truth: those named like labels (`is_label_name`), or
    exactly ``labels`` when the user names them ([] for none)."""
    if labels is None:
        plan.labels = [s for s in plan.sensors if is_label_name(s)]
        return
    plan.labels_chosen = True
    if labels and plan.tag is not None:
        raise DataError(
            f"{display} is a long (tag, value) file: label columns are read from wide files only."
        )
    unknown = [c for c in labels if c not in plan.sensors]
    if unknown:
        raise DataError(
            f"{display} has no numeric column {unknown[0]!r} to read as labels. Numeric columns: "
            f"{', '.join(map(repr, plan.sensors)) or 'none'}."
        )
    plan.labels = list(dict.fromkeys(labels))


def _used(plan: Plan) -> set[str]:
    return {plan.time.column, plan.asset, plan.tag, plan.value, *plan.sensors} - {None}


def _pick_roles(con, f, plan, text, numeric, profiles) -> None:
    """Asset, then long layout (tag + value), then sensors; mixed text columns are refused."""
    plan.asset = _named_asset(text, numeric, profiles, f.display)
    row_ids = [c for c in numeric if c != plan.asset and c in profiles and is_asset_name(c)]
    numeric = [c for c in numeric if c != plan.asset and c not in row_ids]
    text = [c for c in text if c != plan.asset]
    if _pick_long(plan, text, numeric):
        if plan.asset and words(plan.asset) <= UNIT_WORDS:
            plan.notes.append(f"{plan.asset!r} was read as a measurement unit, not an asset.")
            plan.asset = None
        return
    if plan.asset is None:
        plan.asset = next((c for c in text if _splits_time(con, f, plan, c, profiles[c])), None)
    sensors = set(numeric)
    for col in text:
        p = profiles[col]
        if col == plan.asset or (p.n_values and p.n_numeric < p.n_values / 2):
            continue
        if p.n_numeric < p.n_values:
            raise mixed_type_error(f.display, col, p.bad_value, f.where(p.bad_row))
        sensors.add(col)
    plan.sensors = [n for n, _ in f.columns if n in sensors]
    if row_ids:
        plan.notes.append(f"Ignored {', '.join(map(repr, row_ids))}: it looks like a row number.")


def _named_asset(text, numeric, profiles, display: str) -> str | None:
    """A text column named like an asset, or an integer one that repeats (not a row number).

    One that repeats but names more than `MAX_ASSETS` is refused: merged into one asset its
    assets' readings would interleave. One that never repeats past that count ids rows.
    """
    for col in [c for c in text if is_asset_name(c)] + numeric:
        p = profiles.get(col)
        if p is None or not is_asset_name(col):
            continue
        row_id = p.n_distinct == p.n_values
        if p.n_distinct > MAX_ASSETS and not row_id:
            raise too_many_assets(display, col, p.n_distinct, f" in its first {SAMPLE_ROWS:,} rows")
        if p.n_distinct <= MAX_ASSETS and (col in text or not row_id):
            return col
    return None


def too_many_assets(display: str, column: str, count: int, within: str = "") -> DataError:
    """The refusal of an asset column naming more than `MAX_ASSETS`."""
    return DataError(
        f"{display}: the asset column {column!r} names {count:,} assets{within}, and a dataset "
        f"holds at most {MAX_ASSETS:,} (each gets its own model). Split the file by asset, or rename the "
        "column if it is not an asset id, and load again."
    )


def _pick_long(plan: Plan, text: list[str], numeric: list[str]) -> bool:
    """A historian export: a text column naming the tag and one value column."""
    tags = [c for c in text if is_tag_name(c)]
    values = numeric if len(numeric) == 1 else [c for c in numeric if words(c) & VALUE_WORDS]
    if not tags or len(values) != 1:
        return False
    plan.tag, plan.value = tags[0], values[0]
    return True


def _splits_time(con, f: SourceFile, plan: Plan, col: str, p: sql.ColumnProfile) -> bool:
    """A low-cardinality text column that tells repeated timestamps apart is an asset id."""
    if not 0 < p.n_distinct <= min(100, max(1, p.n_values // 2)):
        return False
    return sql.time_splits_by(con, f.source, plan.time, col, SAMPLE_ROWS)


def _pick_time(con, f: SourceFile, native, text, epoch, profiles) -> TimeSpec:
    """The time column: a typed one or text in a known format (those named like time first;
    CSV reads ISO times as text), else epoch numbers."""
    for named in (True, False):
        typed = [c for c in native if is_time_name(c) == named]
        if typed:
            kind = "tz" if "TIME ZONE" in dict(f.columns)[typed[0]] else "native"
            return TimeSpec(typed[0], kind)
        for col in [c for c in text if is_time_name(c) == named]:
            spec = _text_time(con, f, col, profiles[col])
            if spec is not None:
                return spec
    for col in epoch:
        p = profiles[col]
        for kind, (low, high) in sql.EPOCH_RANGES.items():
            if p.n_values and low <= p.first < high:
                return TimeSpec(col, kind)  # the first time decides; others out of range refused
    shown = ", ".join(repr(n) for n, _ in f.columns[:8])
    numbers = ", ".join(map(repr, epoch))
    hint = f" ({numbers}: numbers, but not epoch seconds or milliseconds)" if epoch else ""
    raise DataError(
        f"{f.display} has no time column Vigil can read (columns: {shown}){hint}. Looked for "
        "ISO timestamps, dd/mm/yyyy, mm/dd/yyyy or dd.mm.yyyy dates with times, and epoch seconds "
        "or milliseconds in a column named like 'time'. Add or fix the time column and load again."
    )


def _text_time(con, f: SourceFile, col: str, p: sql.ColumnProfile) -> TimeSpec | None:
    """The format every sampled cell of a text column parses with, or None."""
    if not p.n_values:
        return None
    if p.n_iso == p.n_values:  # the first time decides: a zone on all rows, or on none
        return TimeSpec(col, "text_tz" if p.first_zoned else "text")
    full = [i for i, n in enumerate(p.n_by_family) if n == p.n_values]
    if not full:
        best = max([p.n_iso, *p.n_by_family])
        if is_time_name(col) and best >= p.n_values / 2:
            raise_bad_time(con, f, f.source, _family_spec(col, p))
        return None
    spec = TimeSpec(col, "formats", tuple(TIME_FAMILIES[full[0]]))
    if _ambiguous(p):
        us = TimeSpec(col, "formats", tuple(TIME_FAMILIES[MONTH_FIRST]))
        if sql.count_time_reversals(con, f.source, us, SAMPLE_ROWS) < sql.count_time_reversals(
            con, f.source, spec, SAMPLE_ROWS
        ):
            return us
    return spec


def _ambiguous(p: sql.ColumnProfile) -> bool:
    return p.n_by_family[DAY_FIRST] == p.n_by_family[MONTH_FIRST] == p.n_values


def _family_spec(col: str, p: sql.ColumnProfile) -> TimeSpec:
    if p.n_iso >= max(p.n_by_family):
        return TimeSpec(col, "text")
    best = max(range(len(p.n_by_family)), key=lambda i: p.n_by_family[i])
    return TimeSpec(col, "formats", tuple(TIME_FAMILIES[best]))


def raise_bad_time(con, f: SourceFile, source: Source, spec: TimeSpec) -> None:
    """Refuse the first time cell that does not parse, saying how it breaks the file's format."""
    found = sql.first_unparsed_time(con, source, spec)
    if found is None:
        return
    row, value, iso = found
    where = f"{spec.column!r} has {value!r} on {f.where(row)}"
    if iso and spec.kind in ("text", "text_tz"):
        has, other = ("a", "none") if spec.kind == "text" else ("no", "one")
        raise DataError(
            f"{f.display}: the time column {where} with {has} time zone, but the rows above it "
            f"have {other}. Times must all carry a zone (stored in UTC) or none (stored as "
            "written): Vigil does not guess the zone of the others. Fix the file and load again."
        )
    if spec.kind in sql.EPOCH_RANGES:
        where = f"{spec.column!r} has {value.removesuffix('.0')!r} on {f.where(row)}"
        unit = "seconds" if spec.kind == "epoch_s" else "milliseconds"
        raise DataError(
            f"{f.display}: the time column {where}, which is not in epoch {unit} like the first "
            "rows (every time of a file must be in one unit). Fix or remove that row."
        )
    raise DataError(
        f"{f.display}: the time column {where}, which is not a timestamp in the format of the "
        "other rows. Fix or remove that row."
    )


def _check_plan(plan: Plan, display: str) -> None:
    if plan.tag is None and not plan.sensors:
        others = ", ".join(map(repr, [plan.asset, *plan.ignored] if plan.asset else plan.ignored))
        raise DataError(
            f"{display} has no numeric sensor column: besides the time column "
            f"{plan.time.column!r} "
            + (
                f"the columns hold text ({others})." if others else "there is no column."
            )  # fmt: skip
        )
    check_sensor_names(plan.sensors, display)


def check_sensor_names(sensors: list[str], display: str) -> None:
    for sensor in sensors:
        if sensor.strip().lower() in RESERVED_COLUMNS:
            raise DataError(
                f"{display}: the sensor {sensor!r} clashes with the column Vigil reserves for "
                f"{'time' if sensor.strip().lower() == 'ts' else 'the asset id'} (every dataset "
                "stores 'ts' and 'asset'). Rename that column and load the file again."
            )
