"""Excel workbooks for the ingest tests: one sheet per pump, and whatever else a plant adds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def write_workbook(path: Path, sheets: dict[str, pd.DataFrame]) -> Path:
    """Write each frame to its own sheet, in order; return the path."""
    with pd.ExcelWriter(path) as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)
    return path


def pump_sheet(offset: float, rows: int = 4, temp: list | None = None) -> pd.DataFrame:
    """One pump's minute readings: Vibration rising from ``offset``, Temp (cells as given)."""
    return pd.DataFrame(
        {
            "Timestamp": pd.date_range("2024-05-01", periods=rows, freq="min"),
            "Vibration": [offset + i / 100 for i in range(rows)],
            "Temp": temp or [20 + i % 4 for i in range(rows)],
        }
    )


def plant_workbook(path: Path, pumps: list[str], rows: int = 60) -> Path:
    """A sheet per pump plus a 'Notes' sheet of text (which the load leaves out)."""
    sheets = {p: pump_sheet(1.0 + k, rows) for k, p in enumerate(pumps)}
    sheets["Notes"] = pd.DataFrame({"Remarks": ["exported from the historian"]})
    return write_workbook(path, sheets)
