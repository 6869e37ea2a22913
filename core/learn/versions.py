"""Model versions: every trained model is kept, comparable, promotable and portable.

A version holds a `LearnedModel` persisted with skops (never pickle) in the workspace, plus what
made it: detector, parameters, training window, the label snapshot (label ids and the history
position of each), feature set, metrics on the labelled data, library versions, who and when.
Each version's scores on its own dataset are stored as a run, so its events can be triaged and
its threshold previewed without scoring again.

The model itself is `core.learn.learned_model`; its files (skops, checked before loading) are
`core.learn.model_files`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from core import store
from core.detect.model import ScoreResult
from core.errors import DataError
from core.learn.learned_model import LearnedModel
from core.learn.model_files import dump_model, load_model
from core.store import models as model_store
from core.types import ASSET, DatasetInfo
from core.wording import counted

Progress = Callable[[float, str], None]

# --- version records -------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionSummary:
    """A stored version: how it was made and how well it does on the labelled data."""

    id: int
    dataset_id: int
    parent_id: int | None
    origin: str
    detector: str
    params: dict[str, Any]
    training: dict[str, Any]
    features: dict[str, Any]
    sensors: list[str]
    assets: list[str]
    threshold: float
    objective: str
    budget_per_day: float | None
    semi_supervised: bool
    label_ids: list[int]
    label_seqs: list[int]
    label_watermark: int
    metrics: dict[str, Any]
    versions: dict[str, str]
    run_id: int | None
    notes: str
    created_by: str
    created_at: datetime
    model_sha256: str
    model_bytes: int
    active: bool = field(default=False, compare=False)

    @property
    def title(self) -> str:
        """'v3 · auto + classifier · 12 labels · 2026-05-01 10:22': what never changes (a
        picker's options must not: a browser kept showing a promoted version's old text)."""
        kind = f"{self.detector}{' + classifier' if self.semi_supervised else ''}"
        when = f"{pd.Timestamp(self.created_at):%Y-%m-%d %H:%M}"
        return f"v{self.id} · {kind} · {counted(len(self.label_ids), 'label')} · {when}"

    @property
    def label(self) -> str:
        """The title, and ' (active)' on the active version."""
        return f"{self.title}{' (active)' if self.active else ''}"

    @classmethod
    def from_record(cls, record: Mapping[str, Any], active_id: int | None) -> VersionSummary:
        names = [f.name for f in fields(cls) if f.name != "active"]
        return cls(**{k: record.get(k) for k in names}, active=record["id"] == active_id)


def list_versions(con: duckdb.DuckDBPyConnection, dataset_id: int) -> list[VersionSummary]:
    """The dataset's versions, newest first, the active one marked."""
    active = model_store.active_version_id(con, dataset_id)
    return [
        VersionSummary.from_record(r, active) for r in model_store.list_versions(con, dataset_id)
    ]


def get_version(con: duckdb.DuckDBPyConnection, version_id: int) -> VersionSummary:
    """One version; `DataError` when it does not exist."""
    record = model_store.get_version(con, version_id)
    if record is None:
        raise DataError(f"There is no model version v{version_id} in this workspace.")
    active = model_store.active_version_id(con, record["dataset_id"])
    return VersionSummary.from_record(record, active)


def active_version(con: duckdb.DuckDBPyConnection, dataset_id: int) -> VersionSummary | None:
    """The dataset's promoted model, or None while it has none."""
    version_id = model_store.active_version_id(con, dataset_id)
    return None if version_id is None else get_version(con, version_id)


def run_in_use(con: duckdb.DuckDBPyConnection, dataset_id: int) -> int | None:
    """The run analysts review by default: the active version's, else the newest run that no
    unpromoted version made (retraining proposes a model; it does not take over the queue)."""
    from core.detect.runs import list_runs

    active = active_version(con, dataset_id)
    if active is not None and active.run_id is not None:
        return int(active.run_id)
    past = list_runs(con, dataset_id)
    plain = [r for r in past if r.detector != "version"]
    return (plain or past)[0].id if past else None


def load_version(con: duckdb.DuckDBPyConnection, version_id: int) -> LearnedModel:
    """The model of a version, loaded through the trusted-types check."""
    data = model_store.read_version_model(con, version_id)
    if data is None:
        raise DataError(f"There is no model version v{version_id} in this workspace.")
    return load_model(data)


def promote(
    con: duckdb.DuckDBPyConnection, version_id: int, analyst: str, comment: str = ""
) -> VersionSummary:
    """Make a version its dataset's active model (the promotion is recorded, never erased)."""
    version = get_version(con, version_id)
    model_store.insert_promotion(con, version.dataset_id, version_id, analyst, comment)
    return get_version(con, version_id)


def promotions(con: duckdb.DuckDBPyConnection, dataset_id: int) -> pd.DataFrame:
    """Who promoted which version when, newest first."""
    return model_store.read_promotions(con, dataset_id)


def compare_versions(con: duckdb.DuckDBPyConnection, version_ids: Sequence[int]) -> pd.DataFrame:
    """Versions side by side: settings, label snapshot and metrics, one row each."""
    rows = []
    for version_id in version_ids:
        v = get_version(con, version_id)
        held = v.metrics.get("held_out") or {}
        if not held.get("n_confirmed"):  # no confirmed label graded: nothing to measure
            held = {}
        truth = v.metrics.get("ground_truth") or {}
        rows.append(
            {
                "version": f"v{v.id}" + (" (active)" if v.active else ""),
                "origin": v.origin,
                "detector": v.detector + (" + classifier" if v.semi_supervised else ""),
                "threshold": round(v.threshold, 4),
                "objective": v.objective
                + (f" ≤ {v.budget_per_day:g}/day" if v.budget_per_day else ""),
                "labels": len(v.label_ids),
                "training rows": v.training.get("n_rows"),
                "excluded rows": v.training.get("n_excluded"),
                "held-out precision": held.get("precision"),
                "held-out recall": held.get("recall"),
                "held-out F1": held.get("f1"),
                "alarms/day": v.metrics.get("alarms_per_day"),
                "truth F1": truth.get("f1"),
                "created": f"{pd.Timestamp(v.created_at):%Y-%m-%d %H:%M} by {v.created_by}",
            }
        )
    return pd.DataFrame(rows)


def check_sensors(model_sensors: Sequence[str], info: DatasetInfo, model_name: str) -> None:
    """`DataError` naming the missing and extra sensors when a dataset does not match a model."""
    missing = [s for s in model_sensors if s not in info.sensors]
    extra = [s for s in info.sensors if s not in model_sensors]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(map(repr, missing))}")
        if extra:
            parts.append(f"extra {', '.join(map(repr, extra))}")
        raise DataError(
            f"{model_name} needs the sensors it was trained on; dataset {info.name!r} "
            f"differs: {'; '.join(parts)}."
        )


def version_record(
    con: duckdb.DuckDBPyConnection,
    model: LearnedModel,
    data: bytes,
    **values: Any,
) -> dict[str, Any]:
    """A complete version record: caller's values plus id, sensors, sizes and defaults."""
    from core.detect.runs import library_versions

    record = {
        "id": model_store.next_version_id(con),
        "parent_id": None,
        "params": {},
        "training": {},
        "features": {},
        "budget_per_day": None,
        "label_ids": [],
        "label_seqs": [],
        "label_watermark": 0,
        "metrics": {},
        "run_id": None,
        "notes": "",
        "sensors": model.sensors,
        "threshold": model.threshold,
        "semi_supervised": model.classifier is not None,
        "versions": {**library_versions(), "skops": _version("skops")},
        "model_sha256": hashlib.sha256(data).hexdigest(),
        "model_bytes": len(data),
    }
    record.update(values)
    return record


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def feature_summary(model: LearnedModel) -> dict[str, Any]:
    """The feature set a model was built with (families, window, number of features)."""
    cfg = model.base.feature_config
    pipe = next(iter(model.base.pipelines_.values()))
    return {
        "families": list(cfg.families),
        "window": cfg.window,
        "n_features": len(pipe.features.feature_names_),
        "classifier_input": "features + unsupervised score" if model.classifier else None,
    }


def readings_for(
    con: duckdb.DuckDBPyConnection, info: DatasetInfo, asset_map: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """A dataset's readings with assets renamed as ``asset_map`` says (target -> source asset)."""
    frame = store.read_readings(con, info)
    mapping = {str(k): str(v) for k, v in (asset_map or {}).items()}
    unknown = [a for a in mapping if a not in info.assets]
    if unknown:
        raise DataError(f"Dataset {info.name!r} has no asset {unknown[0]!r}.")
    if mapping:
        frame[ASSET] = frame[ASSET].map(lambda a: mapping.get(a, a))
    return frame, {v: k for k, v in mapping.items()}


def restore_assets(result: ScoreResult, back: Mapping[str, str]) -> ScoreResult:
    """Undo `readings_for`'s renaming in a score result."""
    if back:
        result.frame[ASSET] = result.frame[ASSET].map(lambda a: back.get(a, a))
    return result


# --- scores of a version as a run: triage, preview and drift read them back ----------------------


def _events(result: ScoreResult) -> pd.DataFrame:
    from core.detect.events import extract_events

    return extract_events(result, result.interval_seconds)


def store_run(
    con: duckdb.DuckDBPyConnection,
    info: DatasetInfo,
    version: Mapping[str, Any],
    result: ScoreResult,
    duration_s: float,
) -> int:
    """Store a version's scores and events on a dataset as a run; returns the run id."""
    from core.detect.runs import RunSummary, TrainingWindow, graded_evaluation, library_versions

    events = _events(result)
    assets = sorted(result.frame[ASSET].astype(str).unique().tolist())
    training = version.get("training", {})
    window = training.get("window") or {"kind": "first_fraction", "value": 0.3}
    # graded like runs: after the training window, unless the model learned elsewhere
    graded = (
        window if training.get("source_dataset_id") is None else {"kind": "dataset", "value": 0}
    )
    evaluation = graded_evaluation(
        con, info, assets, result.frame, TrainingWindow.from_dict(graded)
    )
    summary = RunSummary(
        id=store.next_run_id(con),
        dataset_id=info.id,
        assets=assets,
        detector="version",
        detector_used=f"v{version['id']} · {version['detector']}"
        + (" + classifier" if version.get("semi_supervised") else ""),
        params={"version_id": int(version["id"])},
        training=TrainingWindow.from_dict(window),
        threshold_quantile=None,
        thresholds={str(k): float(v) for k, v in result.thresholds.items()},
        status="completed",
        created_at=datetime.now(),
        duration_s=round(duration_s, 3),
        n_scores=len(result.frame),
        n_events=len(events),
        versions=library_versions(),
        evaluation=evaluation,
    )
    store.save_run(con, summary.to_record(), result.frame, events)
    return summary.id


def save_version(
    con: duckdb.DuckDBPyConnection,
    info: DatasetInfo,
    model: LearnedModel,
    result: ScoreResult,
    duration_s: float,
    promote_by: str | None = None,
    data: bytes | None = None,
    **values: Any,
) -> VersionSummary:
    """Store a new version with its run on ``info`` (scores of ``model`` there), ids linked, in
    one transaction.

    ``data`` are the model's skops bytes when they exist already (an imported file is kept
    byte for byte); otherwise the model is dumped here."""
    data = data if data is not None else dump_model(model)
    record = version_record(con, model, data, dataset_id=info.id, **values)
    # one commit, in the dataset's turn: never a run naming a version that is not there
    with store.dataset_turn(con, info.id), store.transaction(con):
        if result is not None and record.get("run_id") is None:
            record["run_id"] = store_run(con, info, record, result, duration_s)
            truth = store.get_run(con, record["run_id"]).get("evaluation")
            if truth:
                record["metrics"] = {**record["metrics"], "ground_truth": truth}
        model_store.save_version(con, record, data, promote_by)
    return get_version(con, record["id"])


def _score_dataset(
    con: duckdb.DuckDBPyConnection,
    version_id: int,
    dataset_id: int,
    asset_map: Mapping[str, str] | None,
    progress: Progress | None,
) -> tuple[DatasetInfo, VersionSummary, LearnedModel, ScoreResult]:
    """A version's model scoring another dataset, after the sensor check."""
    info = store.get_dataset(con, dataset_id)
    version = get_version(con, version_id)
    check_sensors(version.sensors, info, f"Model v{version_id}")
    model = load_version(con, version_id)
    frame, back = readings_for(con, info, asset_map)
    return info, version, model, restore_assets(model.score(frame, progress=progress), back)


def apply_version(
    con: duckdb.DuckDBPyConnection,
    version_id: int,
    dataset_id: int,
    asset_map: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> int:
    """Score another dataset (or asset, via ``asset_map`` target -> source asset) with a version.

    The dataset must have exactly the model's sensors (`DataError` names missing and extra ones).
    Returns the id of the run holding the scores and events.
    """
    started = datetime.now()
    info, version, _, result = _score_dataset(con, version_id, dataset_id, asset_map, progress)
    record = {**version.__dict__, "id": version.id}
    elapsed = (datetime.now() - started).total_seconds()
    return store_run(con, info, record, result, elapsed)


def transfer_version(
    con: duckdb.DuckDBPyConnection,
    version_id: int,
    dataset_id: int,
    analyst: str,
    asset_map: Mapping[str, str] | None = None,
    progress: Progress | None = None,
) -> VersionSummary:
    """Copy a version to a sister machine's dataset as a new version there (not yet active)."""
    started = datetime.now()
    info, source, model, result = _score_dataset(con, version_id, dataset_id, asset_map, progress)
    return save_version(
        con,
        info,
        model,
        result,
        (datetime.now() - started).total_seconds(),
        parent_id=source.id,
        origin="transfer",
        detector=source.detector,
        params=source.params,
        training={**source.training, "source_dataset_id": source.dataset_id},
        features=source.features,
        assets=sorted(info.assets),
        objective=source.objective,
        budget_per_day=source.budget_per_day,
        metrics={"source_metrics": source.metrics},
        notes=f"Transferred from v{source.id}"
        + (f" with assets {dict(asset_map)}" if asset_map else ""),
        created_by=analyst,
    )


def export_version(con: duckdb.DuckDBPyConnection, version_id: int) -> bytes:
    """The skops file of a version, to download and import elsewhere."""
    data = model_store.read_version_model(con, version_id)
    if data is None:
        raise DataError(f"There is no model version v{version_id} in this workspace.")
    return data


def export_model(
    con: duckdb.DuckDBPyConnection, dataset_id: int, version_id: int | None = None
) -> tuple[bytes, str]:
    """The skops file of the dataset's model in use (the active version, else the run in use's
    model) or of version ``version_id``, with its ``vigil.json`` (sensors, feature settings,
    alarm lines, library versions); and what it is, in words."""
    from core.detect.model_file import describe, with_meta

    info = store.get_dataset(con, dataset_id)
    version = get_version(con, version_id) if version_id is not None else None
    if version is not None and version.dataset_id != info.id:
        raise DataError(
            f"Model version v{version.id} belongs to another dataset, not {info.name!r}."
        )
    version = version or active_version(con, info.id)
    if version is not None:
        data, what = export_version(con, version.id), f"model version v{version.id}"
        model: Any = load_model(data)
        extra = {"version": version.id, "dataset": info.name}
    else:
        run_id = run_in_use(con, info.id)
        data = None if run_id is None else store.read_run_model(con, run_id)
        if data is None:
            raise DataError(
                f"Dataset {info.name!r} has no model to export yet: run a detection on it first "
                "(runs made before models were kept have none)."
            )
        from core.detect.model_file import load_fitted

        model, what = load_fitted(data), f"run #{run_id}'s model"
        extra = {"run": run_id, "dataset": info.name}
    return with_meta(data, {**describe(model), **extra}), what


def import_version(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    data: bytes,
    analyst: str,
    filename: str = "model.skops",
    progress: Progress | None = None,
) -> VersionSummary:
    """Import an uploaded skops model file as a new version (trusted types only)."""
    started = datetime.now()
    info = store.get_dataset(con, dataset_id)
    model = load_model(data)
    check_sensors(model.sensors, info, f"The model in {filename}")
    frame = store.read_readings(con, info)
    result = model.score(frame, progress=progress)
    return save_version(
        con,
        info,
        model,
        result,
        (datetime.now() - started).total_seconds(),
        data=data,
        origin="import",
        detector=model.base.detector,
        params=dict(model.base.params),
        features=feature_summary(model),
        assets=sorted(info.assets),
        objective="imported",
        notes=f"Imported from {filename}",
        created_by=analyst,
    )
