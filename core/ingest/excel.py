"""Opening an .xlsx workbook: every sheet with the same columns, one asset per sheet if need be.

Plant exports often keep one sheet per machine. Sheets whose header matches the first sheet
with data are stacked; when that header names no asset column, each row's asset is its sheet's
name (an ``asset`` column is added). Other sheets (notes, charts, another layout) are left out,
and the load says which. Excel sheets are small by nature: pandas reads them, DuckDB takes the
stacked frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zipfile import BadZipFile

import pandas as pd

from core.errors import DataError
from core.ingest.names import is_asset_name
from core.store import staging as sql

SHEET_ASSET = "asset"


@dataclass(frozen=True)
class Sheet:
    """One sheet: its name, header and data rows (cells as pandas read them)."""

    name: str
    header: list[str]
    names: list[str]
    rows: pd.DataFrame


@dataclass(frozen=True)
class Workbook:
    """The stacked sheets: the frame to load, where each sheet starts, and what to tell."""

    names: list[str]
    frame: pd.DataFrame
    starts: list[tuple[str, int]]
    unnamed: set[str]
    notes: list[str]

    def where(self, row: int) -> str:
        """A 1-based data row of the stacked frame as the user finds it in Excel."""
        if len(self.starts) == 1:
            return f"row {row + 1}"
        name, start = next((s for s in reversed(self.starts) if s[1] < row), self.starts[0])
        return f"sheet {name!r} row {row - start + 1}"


def read_workbook(path: Path, display: str, check_names) -> Workbook:
    """Read and stack the sheets of ``path`` (``check_names`` refuses a bad header)."""
    try:
        raw = pd.read_excel(path, sheet_name=None, header=None, engine="openpyxl")
    except (BadZipFile, KeyError, ValueError, OSError) as exc:
        raise DataError(f"{display} is not a readable .xlsx workbook: {exc}") from exc
    sheets = [_sheet(str(name), frame) for name, frame in raw.items() if not frame.empty]
    if not sheets:
        raise DataError(f"{display}: every sheet is empty, there is nothing to load.")
    with_rows = [s for s in sheets if len(s.rows)]
    if not with_rows:
        raise DataError(f"{display} has a header row but no data rows: there is nothing to load.")
    first = with_rows[0]
    check_names(first.header, display)
    same = [s for s in with_rows if s.names == first.names]
    left_out = [s.name for s in sheets if all(s is not t for t in same)]
    notes = []
    if left_out:
        notes.append(
            f"Sheets left out (their columns differ from {first.name!r}, or they hold no data): "
            f"{', '.join(left_out)}."
        )
    names = list(first.names)
    frames = [s.rows for s in same]
    if len(same) > 1 and not any(is_asset_name(n) for n in names):  # "asset" is one of those
        frames = [f.assign(**{SHEET_ASSET: s.name}) for f, s in zip(frames, same, strict=True)]
        names.append(SHEET_ASSET)
        notes.append(f"Sheets {', '.join(s.name for s in same)} stacked: each is an asset.")
    elif len(same) > 1:
        notes.append(f"Sheets {', '.join(s.name for s in same)} stacked.")
    frame = pd.concat(frames, ignore_index=True).infer_objects()
    for col in frame.columns:
        if frame[col].dtype == object:  # mixed cells: text, and missing-value markers as None
            frame[col] = frame[col].map(_excel_text)
    frame.columns = names
    starts, total = [], 0
    for s in same:
        starts.append((s.name, total))
        total += len(s.rows)
    unnamed = {f"column{i + 1}" for i, n in enumerate(first.header) if not n.strip()}
    return Workbook(names, frame, starts, unnamed, notes)


def _sheet(name: str, raw: pd.DataFrame) -> Sheet:
    header = ["" if pd.isna(v) else str(v) for v in raw.iloc[0]]
    names = [n if n.strip() else f"column{i + 1}" for i, n in enumerate(header)]
    rows = raw.iloc[1:].reset_index(drop=True)
    rows.columns = range(len(names))
    return Sheet(name, header, names, rows)


def _excel_text(value: object) -> str | None:
    if pd.isna(value) or str(value).strip() in sql.MISSING_MARKERS:
        return None
    return str(value)
