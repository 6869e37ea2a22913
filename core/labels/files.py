"""Label import and export: current labels out as CSV/Parquet, label files in all or nothing."""

from __future__ import annotations

import codecs
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from core import store
from core.errors import DataError
from core.labels.history import (
    VERDICTS,
    LabelDraft,
    as_plain,
    commit_change,
    creation_rows,
    current_labels,
    fault_kinds,
)
from core.store import labels as label_store


@dataclass(frozen=True)
class ImportResult:
    """Outcome of an all-or-nothing label import."""

    n_imported: int
    n_skipped: int
    change_id: int | None = None

    @property
    def description(self) -> str:
        skipped = f" ({self.n_skipped} already present, skipped)" if self.n_skipped else ""
        return f"Imported {self.n_imported} label(s){skipped}."


EXPORT_COLUMNS = ("asset", "start", "end", "verdict", "kind", "sensors", "comment")
REQUIRED_COLUMNS = ("asset", "start", "end", "verdict")
SENSOR_SEPARATOR = ";"
MAX_REPORTED_ERRORS = 20


def export_frame(con: duckdb.DuckDBPyConnection, dataset_id: int) -> pd.DataFrame:
    """The dataset's current labels in the exchange format (`EXPORT_COLUMNS`)."""
    labels = current_labels(con, dataset_id)
    return pd.DataFrame(
        {
            "asset": labels["asset"],
            "start": labels["start_ts"],
            "end": labels["end_ts"],
            "verdict": labels["verdict"],
            "kind": labels["kind"],
            "sensors": labels["sensors"],
            "comment": labels["comment"],
        },
        columns=list(EXPORT_COLUMNS),
    )


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet runs a cell starting with one of these as a formula (CSV injection, OWASP)."""


def _runs_as_formula(text: str) -> bool:
    """Whether a spreadsheet would run the text, or our quoted form of it were the quote not
    ours: a text that already starts with ``'=`` is quoted once more, so import gives it back."""
    return text.lstrip("'").startswith(FORMULA_STARTS)


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading ``'`` (OWASP's advice),
    so a comment like ``=HYPERLINK(...)`` opens as text; `from_spreadsheet_safe` undoes it.
    Numbers stay numbers: only text cells are looked at."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = [
                f"'{v}" if isinstance(v, str) and _runs_as_formula(v) else v for v in out[column]
            ]
    return out


def from_spreadsheet_safe(text: str) -> str:
    """The text as written before `spreadsheet_safe` quoted it (only a quote it added goes)."""
    return text[1:] if text.startswith("'") and _runs_as_formula(text[1:]) else text


def csv_bytes(frame: pd.DataFrame, **kwargs: Any) -> bytes:
    """A frame as CSV that is safe to open in a spreadsheet. Lines end in CRLF (RFC 4180), so a
    carriage return inside a cell is quoted and reads back as part of the cell, not a new row."""
    return spreadsheet_safe(frame).to_csv(index=False, lineterminator="\r\n", **kwargs).encode()


def export_labels(con: duckdb.DuckDBPyConnection, dataset_id: int, fmt: str = "csv") -> bytes:
    """The current labels as CSV (sensors joined with ';') or Parquet (a list column)."""
    frame = export_frame(con, dataset_id)
    buffer = io.BytesIO()
    if fmt == "csv":
        frame = frame.assign(sensors=[SENSOR_SEPARATOR.join(s) for s in frame["sensors"]])
        buffer.write(csv_bytes(frame, date_format="%Y-%m-%d %H:%M:%S.%f"))
    elif fmt == "parquet":
        frame.to_parquet(buffer, index=False)
    else:
        raise DataError(f"Unknown export format {fmt!r}; use csv or parquet.")
    return buffer.getvalue()


def _not_csv_text(data: bytes) -> bool:
    """Binary (a NUL byte) or not UTF-8: pandas' own words for it ('codec can't decode byte
    0x89', 'Error tokenizing data') do not tell a user that the file is the wrong kind."""
    if b"\x00" in data:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _read_label_file(data: bytes, filename: str) -> pd.DataFrame:
    suffix = filename.lower().rsplit(".", 1)[-1]
    if suffix in ("csv", "parquet", "pq") and not data.removeprefix(codecs.BOM_UTF8).strip():
        raise DataError(
            f"{filename} is empty: a label file has a header row (asset, start, end, verdict) "
            "and one row per label."
        )
    if suffix == "csv" and _not_csv_text(data):
        raise DataError(
            f"{filename} is not a text CSV file (it is binary or not UTF-8): save it as CSV "
            "UTF-8 and import it again."
        )
    try:
        if suffix == "csv":
            frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
            frame = frame.map(from_spreadsheet_safe)
            # pandas renames a repeated name ('verdict.1'): the header as written, to refuse it
            header = pd.read_csv(io.BytesIO(data), header=None, nrows=1, dtype=str)
            frame.columns = header.iloc[0].fillna("").tolist()
        elif suffix in ("parquet", "pq"):
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            raise DataError(f"{filename}: import labels from a .csv or .parquet file.")
    except (ValueError, OSError) as exc:
        raise DataError(f"{filename} cannot be read as a label file: {exc}") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    repeated = sorted({c for c in frame.columns if list(frame.columns).count(c) > 1})
    if repeated:
        raise DataError(
            f"{filename} has more than one column named {repeated[0]!r} (ignoring case): keep "
            "one, so that no row says two things, and import the file again."
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{filename} has no column {missing[0]!r}; a label file needs "
            f"{', '.join(REQUIRED_COLUMNS)} (optional: kind, sensors, comment)."
        )
    if frame.empty:
        raise DataError(f"{filename} holds no labels.")
    return frame.reset_index(drop=True)


def _text(value: Any) -> str:
    value = as_plain(value)
    return "" if value is None else str(value).strip()


def _comment(value: Any) -> str:
    """A comment as written, leading tab or spaces included: an export imports back unchanged."""
    value = as_plain(value)
    return "" if value is None else str(value)


def _sensor_list(value: Any) -> list[str]:
    value = as_plain(value)
    if value is None:
        return []
    if isinstance(value, tuple):
        return [v.strip() for v in value if v.strip()]
    return [v.strip() for v in str(value).split(SENSOR_SEPARATOR) if v.strip()]


def _parse_times(column: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(column.map(_text).replace("", None), errors="coerce", format="mixed")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def validate_label_file(
    frame: pd.DataFrame,
    assets: Sequence[str],
    sensors: Sequence[str],
    kinds: Sequence[str],
    spans: Mapping[str, tuple[datetime, datetime]] | None = None,
) -> tuple[list[LabelDraft], list[str]]:
    """Drafts for the good rows and one message per bad row ('row 3: ...', data rows from 1).

    With `spans` (each asset's first and last reading), a label that covers none of its asset's
    readings is a bad row: a label file of another plant, year or time zone, not ground truth."""
    starts, ends = _parse_times(frame["start"]), _parse_times(frame["end"])
    known_kinds = {k.lower(): k for k in kinds}
    drafts, errors = [], []
    for i, row in enumerate(frame.to_dict("records")):
        problems = []
        asset = _text(row["asset"])
        if asset not in assets:
            problems.append(f"asset {asset!r} is not in the dataset")
        if pd.isna(starts[i]):
            problems.append(f"start {_text(row['start'])!r} is not a time")
        if pd.isna(ends[i]):
            problems.append(f"end {_text(row['end'])!r} is not a time")
        if not (pd.isna(starts[i]) or pd.isna(ends[i])) and ends[i] < starts[i]:
            problems.append("end is before start")
        elif spans and asset in spans and not problems:
            first, last = spans[asset]
            if ends[i] < first or starts[i] > last:
                problems.append(
                    f"{starts[i]} to {ends[i]} covers none of the readings of {asset!r} "
                    f"({first} to {last})"
                )
        verdict = _text(row["verdict"]).lower().replace(" ", "_").replace("-", "_")
        if verdict not in VERDICTS:
            problems.append(
                f"verdict {_text(row['verdict'])!r} is not one of {', '.join(VERDICTS)}"
            )
        kind = _text(row.get("kind"))
        if kind and kind.lower() not in known_kinds:
            problems.append(f"kind {kind!r} is not in the taxonomy (add it first)")
        names = _sensor_list(row.get("sensors"))
        unknown = [s for s in names if s not in sensors]
        if unknown:
            problems.append(f"sensor {unknown[0]!r} is not in the dataset")
        if problems:
            errors.append(f"row {i + 1}: " + "; ".join(problems))
            continue
        drafts.append(
            LabelDraft(
                asset=asset,
                start=starts[i].to_pydatetime(),
                end=ends[i].to_pydatetime(),
                verdict=verdict,
                kind=known_kinds.get(kind.lower()) if kind else None,
                sensors=tuple(names),
                comment=_comment(row.get("comment")),
                source="import",
            )
        )
    return drafts, errors


def _label_key(asset: str, start: Any, end: Any, verdict: str, kind: Any) -> tuple:
    return (asset, pd.Timestamp(start), pd.Timestamp(end), verdict, as_plain(kind) or None)


def import_labels(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    data: bytes,
    filename: str,
    analyst: str,
) -> ImportResult:
    """Import a CSV/Parquet label file all or nothing: any bad row rejects the whole file.

    Rows identical to a current label (asset, start, end, verdict, kind) are skipped, so importing
    the same file twice adds nothing.
    """
    info = store.get_dataset(con, dataset_id)
    frame = _read_label_file(data, filename)
    spans = store.asset_time_ranges(con, info)
    drafts, errors = validate_label_file(frame, info.assets, info.sensors, fault_kinds(con), spans)
    if errors:
        shown = errors[:MAX_REPORTED_ERRORS]
        more = len(errors) - len(shown)
        raise DataError(
            f"{filename}: {len(errors)} of {len(frame)} rows are invalid, nothing was imported "
            "(rows count data rows from 1). "
            + " | ".join(shown)
            + (f" | ... and {more} more." if more else "")
        )
    skipped: list[int] = []

    def build(c: duckdb.DuckDBPyConnection, cid: int) -> list[dict[str, Any]]:
        existing = label_store.read_labels(c, dataset_id)
        seen = {
            _label_key(r["asset"], r["start_ts"], r["end_ts"], r["verdict"], r["kind"])
            for r in existing.to_dict("records")
        }
        fresh = []
        for d in drafts:
            key = _label_key(d.asset, d.start, d.end, d.verdict, d.kind)
            if key in seen:
                skipped.append(1)
                continue
            seen.add(key)
            fresh.append(d)
        return creation_rows(c, cid, dataset_id, fresh, analyst, action="import")

    skipped.clear()
    change_id, rows = commit_change(con, build)
    return ImportResult(
        n_imported=len(rows), n_skipped=len(skipped), change_id=change_id if rows else None
    )
