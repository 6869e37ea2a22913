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
OUT_OF_RANGE_FACTOR = 1e6
"""A reading this many times the sensor's typical magnitude is no measurement (a logger's 1e300,
a -9.99e37 sentinel): one such cell would swamp every rolling statistic after it."""
OUT_OF_RANGE_CEILING = 1e15
"""A reading beyond this magnitude is out of range whatever the sensor (no plant measures that
much, and the rule then holds even where absurd cells outnumber sound ones)."""


def out_of_range_limit(typical: float | None) -> float:
    """|value| beyond which a sensor's reading is out of range: counted, reported, and treated as
    missing. ``typical``: the larger of |10th| and |90th| percentile of its finite values (1 when
    zero or unknown, so a mostly-zero sensor still gets a limit); ±inf is always out of range."""
    scale = abs(typical) if typical else 1.0
    return min(OUT_OF_RANGE_CEILING, OUT_OF_RANGE_FACTOR * scale)


@dataclass(frozen=True)
class OutOfRange:
    """Readings of one sensor that were out of range (`out_of_range_limit`), left empty."""

    sensor: str
    count: int
    first_time: str
    example: str
    """One such value as text ("1e+300", "inf": the report is JSON, which has no inf)."""
    limit: float

    def describe(self) -> str:
        """'flow': 2 from 2024-01-01 10:00:00 (e.g. 1e+300; limit ±1e+08)"""
        return (
            f"{self.sensor!r}: {self.count:,} from {self.first_time} (e.g. {self.example}; "
            f"limit ±{self.limit:.0e})"
        )


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
    empty_sensors: list[str] = field(default_factory=list)
    """Sensors without a single value in the file."""
    out_of_range: list[OutOfRange] = field(default_factory=list)

    @property
    def unusable_sensors(self) -> list[str]:
        """Sensors whose every value was out of range (e.g. only inf): nothing left to use."""
        return [o.sensor for o in self.out_of_range if self.nan_share.get(o.sensor) == 1.0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityReport:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["out_of_range"] = [OutOfRange(**o) for o in known.get("out_of_range", [])]
        return cls(**known)


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset in the workspace: where it came from and what it holds."""

    id: int
    name: str
    table_name: str
    source_file: str
    sha256: str
    layout: str  # "wide", "long", "demo" or "twin"
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
