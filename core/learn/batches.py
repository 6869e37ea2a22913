"""New data for a dataset: a batch appended, scored by the model in use, its events queued.

Plants keep producing readings after a model is chosen. Appending tomorrow's file to a dataset
scores only the new rows, with the model analysts review by default (the active version, else
the latest run's model), adds the events they raise to that run's review queue and says whether
the batch drifted from what the model learned. All of it happens in one transaction: a bad batch
leaves the dataset, its runs and their queues as they were.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.detect.events import extract_events
from core.detect.model import AnomalyModel, ScoreResult
from core.detect.runs import RunConfig, get_run, marked_mask, prepare, run_model
from core.errors import DataError
from core.ingest.pipeline import ingest_file
from core.learn import versions
from core.learn.drift import PSI_DRIFT, compare_samples
from core.learn.learned_model import LearnedModel
from core.types import ASSET, TS, DatasetInfo

HISTORY = pd.Timedelta(days=16)
"""Readings before the batch that its rows are scored with, so a batch's scores are those a full
re-score would give: the scores' lift reads 5 days of scores, whose features' spread factor reads
5 days of re-centred features, whose 5-day re-centring reads the 5 before (and a bucket each)."""
REFERENCE_ROWS = 5_000
"""Training rows kept to compare a batch with, when the model keeps no sample of its own."""

Progress = Callable[[float, str], None]
_ONE_APPEND = threading.Lock()
"""Appends in this process take turns: two sessions pressing Append on one file at once got
DuckDB's "Conflict on update" for the second; in turn, it sees the first batch and is refused
as overlapping. (Another process cannot write the workspace at the same time at all.)"""


@dataclass(frozen=True)
class BatchResult:
    """What appending a batch did: the dataset now, the run whose queue got the new events, and
    how the batch compares with the model's training data (PSI per sensor, drifted ones named)."""

    dataset: DatasetInfo
    run_id: int
    model: str
    n_rows: int
    events: pd.DataFrame
    drift: pd.DataFrame
    drifted: list[str]
    warnings: list[str]


def append_batch(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    path: Path,
    source_name: str | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Append a file's readings to a dataset, score them with the model in use and queue their
    events, all or nothing.

    Raises `DataError` when there is no model yet, the file's sensors or assets differ from the
    dataset's, or its readings do not all come after the dataset's last ones per asset.
    """
    with _ONE_APPEND:
        return _append(con, dataset_id, path, source_name, progress or (lambda f, m: None))


def _append(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    path: Path,
    source_name: str | None,
    report: Progress,
) -> BatchResult:
    target = store.get_dataset(con, dataset_id)
    run_id = versions.run_in_use(con, dataset_id)
    if run_id is None:
        raise DataError(
            f"{target.name!r} has no model yet: run a detector first, then append new data."
        )
    report(0.05, "Loading the model in use")
    model, name, reference = _model_in_use(con, target, run_id)
    report(0.15, "Reading the batch")
    with store.dataset_turn(con, dataset_id), store.transaction(con):
        batch = ingest_file(
            con, path, f"__batch_{uuid.uuid4().hex}", source_name or Path(path).name
        )
        added = batch.dataset
        starts = _check_batch(con, target, added, source_name or Path(path).name)
        noted = replace(
            target.quality,
            notes=[*target.quality.notes, f"Batch {added.source_file}: {added.n_rows:,} rows."],
        )
        store.append_readings(con, replace(target, quality=noted), added)
        truth = store.read_ground_truth(con, added.id)
        if len(truth):
            store.insert_ground_truth(con, target.id, truth)
        store.delete_dataset(con, added.id)
        report(0.4, f"Scoring {added.n_rows:,} new rows with {name}")
        info = store.get_dataset(con, target.id)
        frame, new = _frame_with_history(con, info, starts)
        result = model.score(frame)
        marked = marked_mask(con, info.id, frame)
        if marked.any():
            result.frame["is_anomaly"] = result.frame["is_anomaly"].to_numpy() & ~marked
            result.frame["is_off"] = result.frame["is_off"].to_numpy() | marked
        fresh = _rows(result, new)
        report(0.85, "Queuing the new events")
        events = extract_events(fresh, fresh.interval_seconds)
        events = store.append_to_run(con, run_id, fresh.frame, events)
    drift = _drift(reference, frame[new], fresh.frame["is_off"].to_numpy(dtype=bool))
    drifted = drift.loc[drift["psi"] > PSI_DRIFT, "name"].tolist() if len(drift) else []
    report(1.0, f"Appended {added.n_rows:,} rows: {len(events)} new events")
    return BatchResult(
        store.get_dataset(con, target.id), run_id, name, added.n_rows, events, drift, drifted,
        list(batch.warnings),
    )  # fmt: skip


def _model_in_use(
    con: duckdb.DuckDBPyConnection, info: DatasetInfo, run_id: int
) -> tuple[AnomalyModel | LearnedModel, str, dict[str, np.ndarray]]:
    """The model behind the run in use, its name, and a training sample to compare with.

    A version's model is stored, and so is a plain run's; a run stored before runs kept their
    model is fitted again from its settings on its own training rows (fitting is deterministic,
    so it is the model that scored the run)."""
    run = get_run(con, run_id)
    if run.detector == "version":
        version_id = int(run.params["version_id"])
        model = versions.load_version(con, version_id)
        ref = model.reference or {"sensors": [], "values": np.empty((0, 0))}
        sample = {str(name): ref["values"][:, i] for i, name in enumerate(ref["sensors"])}
        return model, f"model v{version_id}", sample
    config = RunConfig(
        info.id, run.assets, run.detector, dict(run.params), run.training, run.threshold_quantile
    )
    _, _, train, _ = prepare(con, config)
    model = run_model(con, run.id) or AnomalyModel(
        detector=run.detector, params=dict(run.params) or None,
        threshold_quantile=run.threshold_quantile,
    ).fit(train)  # fmt: skip
    off = train[[TS, ASSET]].merge(store.read_run_scores(con, run.id), on=[TS, ASSET], how="left")
    running = train[~off["is_off"].fillna(False).to_numpy(dtype=bool)]  # as the batch's are
    rows = np.linspace(0, len(running) - 1, min(len(running), REFERENCE_ROWS)).astype(int)
    sample = {s: running[s].to_numpy(dtype=np.float64)[rows] for s in model.sensors_}
    return model, f"run #{run.id}'s model ({run.detector})", sample


def _check_batch(
    con: duckdb.DuckDBPyConnection, target: DatasetInfo, batch: DatasetInfo, display: str
) -> dict[str, pd.Timestamp]:
    """Same sensors, known assets, and every reading after the dataset's last of its asset;
    returns where the batch starts per asset."""
    missing = [s for s in target.sensors if s not in batch.sensors]
    extra = [s for s in batch.sensors if s not in target.sensors]
    if missing or extra:
        parts = ([f"lacks {', '.join(map(repr, missing))}"] if missing else []) + (
            [f"has {', '.join(map(repr, extra))} that the dataset does not"] if extra else []
        )
        raise DataError(
            f"{display} {' and '.join(parts)}: a batch needs the dataset's sensors, no more, no "
            "fewer."
        )
    unknown = [a for a in batch.assets if a not in target.assets]
    if unknown:
        raise DataError(
            f"{display} holds asset {unknown[0]!r}, which {target.name!r} does not: load it as "
            "a dataset of its own."
        )
    known, new = store.asset_time_ranges(con, target), store.asset_time_ranges(con, batch)
    for asset, (first, _) in new.items():
        last = known[asset][1]
        if first <= last:
            raise DataError(
                f"{display} starts {asset!r} at {first}, not after the dataset's last reading "
                f"of it ({last}): a batch brings only newer readings."
            )
    return {asset: pd.Timestamp(first) for asset, (first, _) in new.items()}


def _frame_with_history(
    con: duckdb.DuckDBPyConnection, info: DatasetInfo, starts: dict[str, pd.Timestamp]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The batch's assets from `HISTORY` before the batch on, and which rows are the batch's."""
    since = min(starts.values()) - HISTORY
    frame = store.read_readings(con, info, start=since.to_pydatetime())
    frame = frame[frame[ASSET].isin(list(starts))].reset_index(drop=True)
    return frame, (frame[TS] >= frame[ASSET].map(starts)).to_numpy()


def _rows(result: ScoreResult, keep: np.ndarray) -> ScoreResult:
    """A scored frame narrowed to ``keep`` rows (events and the queue see only those)."""
    return replace(
        result,
        frame=result.frame[keep].reset_index(drop=True),
        sensor_deviation=result.sensor_deviation[keep].reset_index(drop=True),
    )


def _drift(reference: dict[str, np.ndarray], batch: pd.DataFrame, off: np.ndarray) -> pd.DataFrame:
    """PSI and KS of each sensor of the batch's running rows against the training sample."""
    sensors = [s for s in reference if s in batch.columns]
    running = batch[~off]
    if not sensors or running.empty:
        return pd.DataFrame(columns=["name", "kind", "psi", "ks", "p_value", "status"])
    return compare_samples(
        {s: np.asarray(reference[s], dtype=np.float64) for s in sensors},
        {s: running[s].to_numpy(dtype=np.float64) for s in sensors},
    )


def describe_batch(done: BatchResult) -> list[str]:
    """What an analyst reads after appending: the headline, then drift (most drifted first)."""
    events = len(done.events)
    lines = [
        f"Appended {done.n_rows:,} rows to {done.dataset.name!r}, scored with {done.model}: "
        f"{events} new event{'s' if events != 1 else ''} in run #{done.run_id}'s review queue."
    ]
    if done.drifted:
        shown = done.drift.set_index("name").loc[done.drifted[:5], "psi"]
        lines.append(
            "The batch drifted from the model's training data: "
            + ", ".join(f"{name} (PSI {psi:.2f})" for name, psi in shown.items())
            + f" (PSI above {PSI_DRIFT} is drift). Its scores may be off: consider retraining."
        )
    return lines
