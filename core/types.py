"""Small typed results shared across core: what a dataset is and what its quality report says."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

TS = "ts"
"""Name of the time column in every stored readings table."""
ASSET = "asset"
"""Name of the asset column in every stored readings table."""
RESERVED_COLUMNS = (TS, ASSET)
DEFAULT_ASSET = "main"
"""Asset name given to every row of a file that has no asset column."""


@dataclass(frozen=True)
class QualityReport:
    """What a user should know about a file before trusting detections on it."""

    n_rows: int
    n_duplicate_timestamps: int = 0
    n_gaps: int = 0
    largest_gap_seconds: float | None = None
    n_non_monotonic: int = 0
    constant_sensors: list[str] = field(default_factory=list)
    nan_share: dict[str, float] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityReport:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset in the workspace: where it came from and what it holds."""

    id: int
    name: str
    table_name: str
    source_file: str
    sha256: str
    layout: str  # "wide", "long" or "demo"
    n_rows: int
    sensors: list[str]
    assets: list[str]
    time_start: datetime | None
    time_end: datetime | None
    interval_seconds: float | None
    loaded_at: datetime
    quality: QualityReport
    has_ground_truth: bool = False


FAULT_COLOR = "rgba(220, 38, 38, 0.15)"


@dataclass(frozen=True)
class Shade:
    """A time stretch drawn behind the traces (a fault, an event, a machine-off period); shared
    so a stage can say what to shade without importing the charts."""

    start: datetime
    end: datetime
    label: str
    color: str = FAULT_COLOR
