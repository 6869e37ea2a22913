"""Detection runs: fit a detector on a training window, score a dataset, keep the result.

A run is reproducible and comparable: it records its dataset, assets, detector, parameters,
training window, threshold, library versions and (where ground truth exists) its evaluation,
together with every score and event, all stored in one transaction.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.errors import ConfigError, DataError
from core.types import ASSET, TS, DatasetInfo

Progress = Callable[[float, str], None]

TRAINING_KINDS = ("first_fraction", "first_rows", "until", "dataset")
MIN_TRAINING_ROWS = 20
"""Fewer rows than this cannot describe normal behaviour."""
VERSIONED_PACKAGES = ("vigil", "scikit-learn", "numpy", "pandas", "duckdb")


@dataclass(frozen=True)
class TrainingWindow:
    """Which readings describe normal behaviour: the model is fitted on these only.

    kind: "first_fraction" (value in (0, 1), per asset), "first_rows" (value rows per asset),
    "until" (value a timestamp, inclusive) or "dataset" (value the id of a reference dataset).
    """

    kind: str = "first_fraction"
    value: Any = 0.3

    def describe(self) -> str:
        if self.kind == "first_fraction":
            return f"first {float(self.value):.0%} of each asset"
        if self.kind == "first_rows":
            return f"first {int(self.value):,} rows of each asset"
        if self.kind == "until":
            return f"until {pd.Timestamp(self.value):%Y-%m-%d %H:%M}"
        return f"dataset #{self.value}"

    def to_dict(self) -> dict[str, Any]:
        value = pd.Timestamp(self.value).isoformat() if self.kind == "until" else self.value
        return {"kind": self.kind, "value": value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingWindow:
        value = data["value"]
        if data["kind"] == "until":
            value = pd.Timestamp(value).to_pydatetime()
        return cls(kind=data["kind"], value=value)


@dataclass(frozen=True)
class RunConfig:
    """What to run: a dataset (some or all of its assets), a detector and how to train it."""

    dataset_id: int
    assets: list[str] | None = None
    detector: str = "auto"
    params: dict[str, Any] = field(default_factory=dict)
    training: TrainingWindow = field(default_factory=TrainingWindow)
    threshold_quantile: float | None = None


@dataclass(frozen=True)
class RunSummary:
    """A stored run: its settings, what it found and how well (when ground truth exists)."""

    id: int
    dataset_id: int
    assets: list[str]
    detector: str
    detector_used: str | None
    params: dict[str, Any]
    training: TrainingWindow
    threshold_quantile: float | None
    thresholds: dict[str, float]
    status: str
    created_at: datetime
    duration_s: float
    n_scores: int
    n_events: int
    versions: dict[str, str]
    evaluation: dict[str, Any] | None

    @property
    def label(self) -> str:
        """A one-line name for pickers: '#3 · iforest · 12 events · 2024-05-01 10:22'."""
        detector = self.detector_used or self.detector
        return f"#{self.id} · {detector} · {self.n_events} events · {self.created_at:%Y-%m-%d %H:%M}"

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RunSummary:
        fields = {k: record.get(k) for k in cls.__dataclass_fields__}
        fields["training"] = TrainingWindow.from_dict(record["training"])
        fields["params"] = record.get("params") or {}
        fields["thresholds"] = record.get("thresholds") or {}
        fields["versions"] = record.get("versions") or {}
        return cls(**fields)

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["training"] = self.training.to_dict()
        return record


def library_versions() -> dict[str, str]:
    """Versions of the libraries a run's numbers depend on, for reproducing it later."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions


# --- validation -------------------------------------------------------------------------------


def _check_assets(info: DatasetInfo, assets: Sequence[str] | None) -> list[str]:
    if assets is None:
        return list(info.assets)
    if not assets:
        raise ConfigError("Choose at least one asset to run the detector on.")
    unknown = [a for a in assets if a not in info.assets]
    if unknown:
        raise ConfigError(
            f"Dataset {info.name!r} has no asset {unknown[0]!r}. "
            f"Its assets are: {', '.join(info.assets)}."
        )
    return list(dict.fromkeys(assets))


def _check_detector(name: str) -> None:
    from core.detectors import DETECTORS

    if name != "auto" and name not in DETECTORS:
        known = ", ".join(["auto", *DETECTORS])
        raise ConfigError(f"Unknown detector {name!r}. Choose one of: {known}.")


def _check_quantile(quantile: float | None) -> None:
    if quantile is not None and not 0.0 < float(quantile) < 1.0:
        raise ConfigError(
            f"The threshold quantile must be in (0, 1), e.g. 0.99. Got {quantile} instead."
        )


def _check_window_value(window: TrainingWindow) -> None:
    if window.kind not in TRAINING_KINDS:
        raise ConfigError(
            f"Unknown training window {window.kind!r}. Choose one of: {', '.join(TRAINING_KINDS)}."
        )
    if window.kind == "first_fraction" and not 0.0 < float(window.value) < 1.0:
        raise ConfigError(
            f"The training fraction must be in (0, 1), e.g. 0.3. Got {window.value} instead."
        )
    if window.kind == "first_rows" and int(window.value) < MIN_TRAINING_ROWS:
        raise ConfigError(
            f"The training window needs at least {MIN_TRAINING_ROWS} rows per asset. "
            f"Got {window.value} instead."
        )


def training_mask(frame: pd.DataFrame, window: TrainingWindow) -> np.ndarray:
    """Which rows of `frame` (ordered by asset, ts) fall in the training window."""
    if window.kind == "until":
        return (frame[TS] <= pd.Timestamp(window.value)).to_numpy()
    groups = frame.groupby(ASSET, sort=False)
    position = groups.cumcount().to_numpy()
    if window.kind == "first_rows":
        return position < int(window.value)
    size = groups[TS].transform("size").to_numpy()
    return position < np.floor(size * float(window.value))


def _check_split(frame: pd.DataFrame, mask: np.ndarray, window: TrainingWindow) -> None:
    """Each asset needs enough training rows and some rows left to detect on."""
    counts = pd.DataFrame({ASSET: frame[ASSET].to_numpy(), "train": mask})
    per_asset = counts.groupby(ASSET, sort=True)["train"].agg(["sum", "size"])
    for asset, row in per_asset.iterrows():
        if row["sum"] < MIN_TRAINING_ROWS:
            raise ConfigError(
                f"The training window ({window.describe()}) holds {int(row['sum'])} rows of "
                f"asset {asset!r}; it needs at least {MIN_TRAINING_ROWS}. Widen it."
            )
        if row["sum"] >= row["size"]:
            raise ConfigError(
                f"The training window ({window.describe()}) covers all {int(row['size']):,} rows "
                f"of asset {asset!r}, leaving nothing to detect on. Narrow it."
            )


def _reference_training(
    con: duckdb.DuckDBPyConnection, info: DatasetInfo, assets: list[str], window: TrainingWindow
) -> pd.DataFrame:
    """Training readings taken from another (reference) dataset with the same sensors."""
    ref_id = int(window.value)
    if ref_id == info.id:
        raise ConfigError(
            "The reference dataset is the dataset being scored: the training window would cover "
            "all data. Pick another dataset or a window of this one."
        )
    try:
        ref = store.get_dataset(con, ref_id)
    except DataError as exc:
        raise ConfigError(f"There is no reference dataset #{ref_id} in this workspace.") from exc
    missing = [s for s in info.sensors if s not in ref.sensors]
    if missing:
        raise ConfigError(f"The reference dataset {ref.name!r} has no sensor {missing[0]!r}.")
    absent = [a for a in assets if a not in ref.assets]
    if absent:
        raise ConfigError(f"The reference dataset {ref.name!r} has no asset {absent[0]!r}.")
    frame = store.read_readings(con, ref, sensors=info.sensors)
    frame = frame[frame[ASSET].isin(assets)].reset_index(drop=True)
    _check_split(frame, np.zeros(len(frame), dtype=bool) | True, TrainingWindow("dataset", 0))
    return frame


def _select_assets(frame: pd.DataFrame, assets: list[str], info: DatasetInfo) -> pd.DataFrame:
    if len(assets) == len(info.assets):
        return frame
    return frame[frame[ASSET].isin(assets)].reset_index(drop=True)


def prepare(
    con: duckdb.DuckDBPyConnection, config: RunConfig
) -> tuple[DatasetInfo, list[str], pd.DataFrame, pd.DataFrame]:
    """Validate a config and return (dataset, assets, training frame, frame to score).

    Raises `ConfigError` with a message naming the bad value before anything is fitted.
    """
    info = store.get_dataset(con, config.dataset_id)
    assets = _check_assets(info, config.assets)
    _check_detector(config.detector)
    _check_quantile(config.threshold_quantile)
    _check_window_value(config.training)
    data = _select_assets(store.read_readings(con, info), assets, info)
    if data.empty:
        raise DataError(f"Dataset {info.name!r} has no readings for the chosen assets.")
    if config.training.kind == "dataset":
        train = _reference_training(con, info, assets, config.training)
    else:
        mask = training_mask(data, config.training)
        # a reference-free window needs rows both inside and outside it for every asset
        _check_split(data, mask, config.training)
        train = data[mask].reset_index(drop=True)
    return info, assets, train, data
