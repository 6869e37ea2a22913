"""Detection runs: fit a detector on a training window, score a dataset, keep the result.

A run is reproducible and comparable: it records its dataset, assets, detector, parameters,
training window, threshold, library versions and (where ground truth exists) its evaluation,
together with every score and event and its fitted model (skops, `core.detect.model_file`), all
stored in one transaction.

What the Detect page's form offers lives in `core.detect.run_options`, what its chart shows in
`core.detect.run_chart`; both build on this module, never the reverse.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.detect.detectors.registry import AUTO_MEMBERS, make_detector
from core.detect.evaluation import evaluate
from core.detect.events import extract_events
from core.detect.model import AnomalyModel, check_threshold_quantile
from core.detect.model_file import dump_fitted, library_versions, load_fitted
from core.errors import ConfigError, DataError
from core.types import ASSET, TS, DatasetInfo
from core.wording import counted

Progress = Callable[[float, str], None]

TRAINING_KINDS = ("first_fraction", "first_rows", "until", "dataset")
MIN_TRAINING_ROWS = 50
"""Fewer rows per asset than this cannot describe normal behaviour (the model needs 50)."""
ALARM_LINE = 1.0
"""Scores are stored divided by their asset's threshold, so on every asset 1.0 is the alarm line
(the raw per-asset thresholds are kept in the run for reproducibility)."""


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
        return f"#{self.id} · {detector} · {counted(self.n_events, 'event')} · {self.created_at:%Y-%m-%d %H:%M}"

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


def _check_detector(name: str, params: dict[str, Any], quantile: float | None) -> None:
    """Detector name, its parameters and the threshold against the limits the engine declares."""
    make_detector(name, **params)
    check_threshold_quantile(quantile)


def _check_window_value(window: TrainingWindow) -> None:
    if window.kind not in TRAINING_KINDS:
        raise ConfigError(
            f"Unknown training window {window.kind!r}. Choose one of: {', '.join(TRAINING_KINDS)}."
        )
    if window.value is None:
        what = "a reference dataset" if window.kind == "dataset" else "a value"
        raise ConfigError(f"The training window ({window.kind}) needs {what}.")
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


def _check_split(
    frame: pd.DataFrame, mask: np.ndarray, window: TrainingWindow, need_rest: bool = True
) -> None:
    """Each asset needs enough training rows and (`need_rest`) some rows left to detect on."""
    counts = pd.DataFrame({ASSET: frame[ASSET].to_numpy(), "train": mask})
    per_asset = counts.groupby(ASSET, sort=True)["train"].agg(["sum", "size"])
    for asset, row in per_asset.iterrows():
        if row["sum"] < MIN_TRAINING_ROWS:
            raise ConfigError(
                f"The training window ({window.describe()}) holds {int(row['sum'])} rows of "
                f"asset {asset!r}; it needs at least {MIN_TRAINING_ROWS}. Widen it."
            )
        if need_rest and row["sum"] >= row["size"]:
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
    _check_split(frame, np.ones(len(frame), dtype=bool), window, need_rest=False)
    return frame


def _select_assets(frame: pd.DataFrame, assets: list[str], info: DatasetInfo) -> pd.DataFrame:
    if len(assets) == len(info.assets):
        return frame
    return frame[frame[ASSET].isin(assets)].reset_index(drop=True)


def marked_mask(con: duckdb.DuckDBPyConnection, dataset_id: int, frame: pd.DataFrame) -> np.ndarray:
    """Rows inside stretches an analyst marked as an operating mode (machine off, start-up,
    maintenance): they never train a model and never raise an alarm."""
    from core.detect.modes import mode_mask

    marked = np.zeros(len(frame), dtype=bool)
    for asset, rows in frame.groupby(ASSET, sort=False).indices.items():
        marked[rows] = mode_mask(con, dataset_id, str(asset), frame[TS].to_numpy()[rows])
    return marked


def prepare(
    con: duckdb.DuckDBPyConnection, config: RunConfig
) -> tuple[DatasetInfo, list[str], pd.DataFrame, pd.DataFrame]:
    """Validate a config and return (dataset, assets, training frame, frame to score).

    Raises `ConfigError` with a message naming the bad value before anything is fitted.
    """
    info = store.get_dataset(con, config.dataset_id)
    assets = _check_assets(info, config.assets)
    _check_detector(config.detector, dict(config.params), config.threshold_quantile)
    _check_window_value(config.training)
    data = _select_assets(store.read_readings(con, info), assets, info)
    if data.empty:
        raise DataError(f"Dataset {info.name!r} has no readings for the chosen assets.")
    if config.training.kind == "dataset":
        train = _reference_training(con, info, assets, config.training)
    else:
        mask = training_mask(data, config.training) & ~marked_mask(con, info.id, data)
        # a reference-free window needs rows both inside and outside it for every asset
        _check_split(data, mask, config.training)
        train = data[mask].reset_index(drop=True)
    return info, assets, train, data


# --- execution --------------------------------------------------------------------------------


def _stage(progress: Progress | None, start: float, end: float) -> Progress:
    """A progress callback mapping a stage's own 0..1 onto [start, end] of the whole run."""

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(start + (end - start) * min(max(float(fraction), 0.0), 1.0), message)

    return report


def graded_evaluation(
    con: duckdb.DuckDBPyConnection,
    info: DatasetInfo,
    assets: list[str],
    scored: pd.DataFrame,
    training: TrainingWindow,
) -> dict[str, Any] | None:
    """Metrics against the dataset's ground truth, or None when it has none.

    Only rows outside the training window are graded: a model is not judged on what it saw.
    """
    if not info.has_ground_truth:
        return None
    truth = store.read_ground_truth(con, info.id)
    truth = truth[truth["asset"].isin(assets)].reset_index(drop=True)
    if training.kind != "dataset":
        scored = scored[~training_mask(scored, training)].reset_index(drop=True)
        first = scored.groupby(ASSET)[TS].min()
        graded = truth["end"].to_numpy() >= truth["asset"].map(first).to_numpy()
        truth = truth[graded].reset_index(drop=True)
    return evaluate(scored, truth).to_dict()


def _detector_used(name: str) -> str:
    """What a run's detector is made of (`auto` names its members)."""
    return f"auto ({' + '.join(AUTO_MEMBERS)})" if name == "auto" else name


def execute_run(
    con: duckdb.DuckDBPyConnection, config: RunConfig, progress: Progress | None = None
) -> RunSummary:
    """Fit, score, find events, evaluate and store one run; nothing is stored if any step fails.

    `progress(fraction, message)` is called as the run advances (fraction in [0, 1]).
    """
    started = time.perf_counter()
    report = _stage(progress, 0.0, 1.0)
    report(0.0, "Reading the data")
    info, assets, train, data = prepare(con, config)
    report(0.05, f"Fitting on {len(train):,} rows ({config.training.describe()})")
    model = AnomalyModel(
        detector=config.detector,
        params=dict(config.params) or None,
        threshold_quantile=config.threshold_quantile,
    )
    model.fit(train, progress=_stage(progress, 0.05, 0.3))
    result = model.score(data, progress=_stage(progress, 0.3, 0.85))
    marked = marked_mask(con, info.id, data)
    if marked.any():
        result.frame["is_anomaly"] = result.frame["is_anomaly"].to_numpy() & ~marked
        result.frame["is_off"] = result.frame["is_off"].to_numpy() | marked
    report(0.86, "Grouping flagged points into events")
    events = extract_events(result, result.interval_seconds)
    if info.has_ground_truth:
        report(0.9, "Evaluating against the ground truth")
    evaluation = graded_evaluation(con, info, assets, result.frame, config.training)
    report(0.94, "Storing the run")
    duration = round(time.perf_counter() - started, 3)
    summary = RunSummary(
        id=store.next_run_id(con),
        dataset_id=info.id,
        assets=assets,
        detector=config.detector,
        detector_used=_detector_used(config.detector),
        params=dict(config.params),
        training=config.training,
        threshold_quantile=config.threshold_quantile,
        thresholds={str(k): float(v) for k, v in result.thresholds.items()},
        status="completed",
        created_at=datetime.now(),
        duration_s=duration,
        n_scores=len(result.frame),
        n_events=len(events),
        versions=library_versions(),
        evaluation=evaluation,
    )
    store.save_run(con, summary.to_record(), result.frame, events, dump_fitted(model))
    report(1.0, f"Done: {counted(len(events), 'event')} in {duration:.1f} s")
    return summary


# --- reading runs back ------------------------------------------------------------------------


def list_runs(con: duckdb.DuckDBPyConnection, dataset_id: int) -> list[RunSummary]:
    """Runs of a dataset, newest first."""
    return [RunSummary.from_record(r) for r in store.list_runs(con, dataset_id)]


def get_run(con: duckdb.DuckDBPyConnection, run_id: int) -> RunSummary:
    """One run; `DataError` if it does not exist (any more)."""
    record = store.get_run(con, run_id)
    if record is None:
        raise DataError(f"There is no run #{run_id} in this workspace.")
    return RunSummary.from_record(record)


def run_model(con: duckdb.DuckDBPyConnection, run_id: int) -> AnomalyModel | None:
    """The fitted model a run stored (trust- and format-checked), or None for a run stored
    before runs kept their models."""
    data = store.read_run_model(con, run_id)
    return None if data is None else load_fitted(data)


def delete_run(con: duckdb.DuckDBPyConnection, run_id: int) -> RunSummary:
    """Remove a run with its scores and events, all or nothing; returns what was removed."""
    run = get_run(con, run_id)
    store.delete_run(con, run_id)
    return run


def run_scores(
    con: duckdb.DuckDBPyConnection, run_id: int, asset: str | None = None
) -> pd.DataFrame:
    """Per-timestamp scores of a run (ts, asset, score, is_anomaly, is_off)."""
    return store.read_run_scores(con, run_id, asset=asset)


def run_events(
    con: duckdb.DuckDBPyConnection, run_id: int, asset: str | None = None
) -> pd.DataFrame:
    """Events of a run ranked most severe first."""
    return store.read_events(con, run_id, asset=asset)


def _metrics(evaluation: dict[str, Any] | None, prefix: str = "") -> dict[str, float]:
    """The scalar numbers of an evaluation, nested keys joined with '.'."""
    out: dict[str, float] = {}
    for key, value in (evaluation or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_metrics(value, prefix=f"{name}."))
        elif value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            out[name] = float("nan") if value is None else float(value)
    return out


def compare_runs(con: duckdb.DuckDBPyConnection, run_ids: Sequence[int]) -> pd.DataFrame:
    """Runs side by side, one row each: settings, events found, duration and evaluation metrics
    (the evaluation's `n_events` counts ground-truth faults, `events` what the run found)."""
    rows = []
    for record in store.get_runs(con, list(run_ids)):
        run = RunSummary.from_record(record)
        rows.append(
            {
                "run": f"#{run.id}",
                "detector": run.detector_used or run.detector,
                "params": ", ".join(f"{k}={v}" for k, v in run.params.items()) or "defaults",
                "training": run.training.describe(),
                "threshold_quantile": run.threshold_quantile,
                "events": run.n_events,
                "duration_s": run.duration_s,
                **_metrics(run.evaluation),
            }
        )
    return pd.DataFrame(rows)
