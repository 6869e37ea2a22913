"""Learning from labels: retraining a dataset's model into a new version, and moving a version's
threshold. The parts live in `core.labels.points` (what labels say about rows),
`core.learn.thresholds` (tuning on labels) and `core.learn.semi_supervised` (classifier, honest grading,
champion/challenger).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.detect.model import AnomalyModel
from core.detect.operating_range import row_lines
from core.detect.runs import (
    MIN_TRAINING_ROWS,
    RunConfig,
    TrainingWindow,
    get_run,
    list_runs,
    prepare,
    training_mask,
)
from core.errors import ConfigError, DataError
from core.labels import history as labels_mod
from core.labels.points import (
    CONTEXT_SAMPLES,
    EXCLUSION_MARGIN_SAMPLES,
    LabelPoints,
    confirmed_owner,
    enough_for_classifier,
    label_points,
    labels_needed,
    mark_spans,
    row_times,
    unjudged_alarms,
)
from core.learn import versions
from core.learn.familiarity import fit_familiarity, label_kinds, vouched_trust
from core.learn.learned_model import CLASSIFIER_WEIGHT, LearnedModel, ScoredParts
from core.learn.semi_supervised import (
    Comparison,
    compare_champion,
    cross_fit,
    held_out_alarms,
    label_folds,
    label_metrics,
)
from core.learn.thresholds import (
    ALARM_SHARE,
    MAX_RAISE,
    OBJECTIVES,
    ThresholdPreview,
    check_budget,
    share_line,
    tune_threshold,
)
from core.store import labels as label_store
from core.types import ASSET, TS
from core.wording import counted

Progress = Callable[[float, str], None]


# --- retraining: labels -> a new version --------------------------------------------------------


@dataclass(frozen=True)
class RetrainConfig:
    """What to retrain on a dataset; None settings come from its active version or latest run."""

    dataset_id: int
    objective: str = "f1"
    budget_per_day: float | None = None
    semi_supervised: bool = True
    margin_samples: int = EXCLUSION_MARGIN_SAMPLES
    learn_false_alarms: bool = False
    detector: str | None = None
    params: dict[str, Any] | None = None
    training: TrainingWindow | None = None
    alarm_share: float = ALARM_SHARE
    """With false alarms taught: the share of the unsupervised run's alarms the line keeps."""


@dataclass(frozen=True)
class RetrainResult:
    """The new version and whether it should replace the active model."""

    version: versions.VersionSummary
    comparison: Comparison
    notes: list[str]


def label_snapshot(con: duckdb.DuckDBPyConnection, dataset_id: int) -> tuple[dict[int, int], int]:
    """History position (seq) of each current label, and the dataset's latest position."""
    history = label_store.read_label_history(con, dataset_id)
    if history.empty:
        return {}, 0
    latest = history.groupby("label_id")["seq"].max()
    current = set(labels_mod.current_labels(con, dataset_id)["label_id"].astype(int))
    return {int(k): int(v) for k, v in latest.items() if int(k) in current}, int(
        history["seq"].max()
    )


def _settings(con: duckdb.DuckDBPyConnection, config: RetrainConfig) -> RunConfig:
    """Detector, parameters and window: the config's, else the active version's or latest run's."""
    detector, params, window = "auto", {}, TrainingWindow()
    active = versions.active_version(con, config.dataset_id)
    past = [r for r in list_runs(con, config.dataset_id) if r.detector != "version"]
    if active is not None:
        detector, params = active.detector, dict(active.params)
        window = TrainingWindow.from_dict(active.training.get("window") or window.to_dict())
    elif past:
        detector, params, window = past[0].detector, dict(past[0].params), past[0].training
    return RunConfig(
        config.dataset_id,
        None,
        config.detector or detector,
        dict(config.params if config.params is not None else params),
        config.training or window,
    )


def _champion(
    con: duckdb.DuckDBPyConnection, dataset_id: int, data: pd.DataFrame, points: LabelPoints
) -> tuple[str, int | None, dict[int, bool] | None, dict[int, int]]:
    """The model to beat (the active version, else the latest unsupervised run): its name, id,
    which labels alarm under it, and the label snapshot it learned from."""
    active = versions.active_version(con, dataset_id)
    if active is not None and active.run_id is not None:
        run_id, name = active.run_id, f"v{active.id} (active)"
        seen = dict(zip(active.label_ids, active.label_seqs, strict=True))
    else:
        past = [r for r in list_runs(con, dataset_id) if r.detector != "version"]
        if not past:
            return "no model", None, None, {}
        run_id, name, seen = past[0].id, f"run #{past[0].id} (unsupervised)", {}
    scores = store.read_run_scores(con, run_id)
    flags = data[[TS, ASSET]].merge(scores, on=[TS, ASSET], how="left")["is_anomaly"]
    alarmed = points.peaks(flags.fillna(False).to_numpy(dtype=np.float64)) > 0.5
    return name, active.id if active is not None else None, alarmed.to_dict(), seen


def _versus_champion(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    data: pd.DataFrame,
    points: LabelPoints,
    held: dict[int, bool],
    label_ids: np.ndarray,
    snapshot: dict[int, int],
) -> Comparison:
    """Compare on the held-out labels the champion never saw (new, or changed since)."""
    name, champion_id, champion_alarms, seen = _champion(con, dataset_id, data, points)
    fresh = {i: a for i, a in held.items() if seen.get(label_ids[i]) != snapshot.get(label_ids[i])}
    if champion_alarms is not None:
        champion_alarms = {i: champion_alarms.get(i, False) for i in fresh}
    return compare_champion(name, champion_id, champion_alarms, fresh, points.verdict)


def _reference(data: pd.DataFrame, rows: np.ndarray, sensors: list[str], score: np.ndarray):
    """A sample of training readings and their scores, kept in the model for drift checks."""
    from core.learn.drift import REFERENCE_ROWS

    if len(rows) > REFERENCE_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, REFERENCE_ROWS, replace=False))
    values = data[sensors].to_numpy(dtype=np.float64)[rows]
    return {"sensors": np.asarray(sensors, dtype=str), "values": values, "score": score[rows]}


def retrain(
    con: duckdb.DuckDBPyConnection,
    config: RetrainConfig,
    analyst: str,
    progress: Progress | None = None,
) -> RetrainResult:
    """Retrain a dataset's model from its labels and store it as a new version (with its run).

    Drops confirmed stretches (+ margin) from the training window, refits the detector, adds the
    classifier when the label rule allows, tunes the threshold on the labels, grades
    leave-label-out and compares with the champion.
    """
    started = time.perf_counter()
    report = progress or (lambda f, m: None)
    if config.objective not in OBJECTIVES:
        raise ConfigError(f"Unknown objective {config.objective!r}; use {' or '.join(OBJECTIVES)}.")
    if config.budget_per_day is not None:
        check_budget(config.budget_per_day)  # before minutes of fitting, not after
    if not 0 <= config.alarm_share <= 1:
        raise ConfigError(
            f"The alarm share must be in [0, 1] (0: no cap). Got {config.alarm_share} instead."
        )
    run_config = _settings(con, config)
    report(0.02, "Reading the data and labels")
    info, assets, train, data = prepare(con, run_config)
    labels = labels_mod.current_labels(con, info.id).reset_index(drop=True)
    refusal = retrain_refusal(labels, info.name)
    if refusal:
        raise DataError(refusal)
    snapshot, watermark = label_snapshot(con, info.id)
    interval = float(info.interval_seconds or 60.0)
    own = run_config.training.kind != "dataset"  # a reference dataset has its own labels
    owner = confirmed_owner(
        train, labels if own else labels.iloc[:0], interval, config.margin_samples
    )
    teach = own and config.learn_false_alarms
    flood_run, flood_flags = _unsupervised_flags(con, info.id, data) if teach else (None, None)
    extra, taught = (
        _false_alarm_rows(
            data,
            labels,
            run_config.training,
            interval,
            config.margin_samples,
            _alarmed(flood_flags),
        )
        if teach
        else (data.iloc[:0], set())
    )
    used = pd.concat([train[owner < 0], extra], ignore_index=True)
    _check_rows(used, sorted(train[ASSET].astype(str).unique()), run_config.training)
    report(0.05, f"Fitting on {len(used):,} rows ({int((owner >= 0).sum()):,} excluded)")
    base = AnomalyModel(detector=run_config.detector, params=run_config.params or None)
    base.fit(
        pd.concat([train, extra], ignore_index=True),
        progress=lambda f, m: report(0.05 + 0.35 * f, m),
        exclude=np.r_[owner >= 0, np.zeros(len(extra), dtype=bool)],
        taught=np.r_[np.zeros(len(train), dtype=bool), np.ones(len(extra), dtype=bool)],
    )
    model = LearnedModel(base, weight=CLASSIFIER_WEIGHT)
    if len(extra):
        report(0.38, "Fitting the detector without the taught false alarms, to keep their faults")
        model.untaught = AnomalyModel(
            detector=run_config.detector, params=run_config.params or None
        )
        model.untaught.fit(train, exclude=owner >= 0)
    parts = model.parts(data, progress=lambda f, m: report(0.4 + 0.2 * f, m))
    off = parts.result.frame["is_off"].to_numpy(dtype=bool)
    points = label_points(data, labels, interval, is_off=off)
    flags = flood_flags if teach else _unsupervised_flags(con, info.id, data)[1]
    if flags is not None:  # alarms nobody judged in a label's context are not normal
        points = points.without_context(unjudged_alarms(data, points, _alarmed(flags)))
    fold = label_folds(points)
    ts, asset = data[TS].to_numpy(), data[ASSET].astype(str).to_numpy()
    notes, X = [], None
    if config.semi_supervised and enough_for_classifier(labels):
        report(0.62, "Training the semi-supervised classifier")
        X = model.classifier_input(data, parts.u)
    elif config.semi_supervised:
        notes.append(f"Semi-supervised model not trained yet: needs {labels_needed(labels)}.")
    familiar = None
    if X is not None:
        kinds = label_kinds(points)
        model.familiar = fit_familiarity(X, np.flatnonzero(points.labelled), kinds=kinds)

        def familiar(train_rows: np.ndarray, rows: np.ndarray, p: np.ndarray) -> np.ndarray:
            return vouched_trust(fit_familiarity(X, train_rows, kinds=kinds), X[rows], p)

    fitted = cross_fit(parts.u, X, points, fold, model.combine, familiar, model.trust)
    if fitted.classifier is None:
        model.familiar = None
    report(0.8, "Tuning the threshold on the labels")
    preview = ThresholdPreview.from_points(fitted.combined, ts, asset, points)
    cap, keep = (
        _alarm_cap(
            flood_run, flood_flags, data, labels, run_config.training, interval, parts, config
        )
        if len(extra)
        else (None, {})
    )
    limit = None if cap is None else cap(fitted.combined)
    # the labels decide where they can; among lines they find equally good, the share line
    from_labels = tune_threshold(
        preview,
        config.objective,
        config.budget_per_day,
        current=1.0 if limit is None else limit,
        max_raise=_raise_limit(limit),
    )
    threshold = from_labels if limit is None else min(from_labels, limit)
    if limit is not None and limit < from_labels:
        notes.append(
            f"Alarm line lowered to {threshold / from_labels:.2g}x the labels' best line: taught "
            f"false alarms as normal, it still alarms on {config.alarm_share:.0%} of the rows "
            f"{keep['run']} alarmed on ({keep['rate']:.1%} of rows no confirmed label covers), "
            "so faults no one has labelled yet are not silenced with the false alarms."
        )
    held = held_out_alarms(
        fitted.by_fold, points, fold, ts, asset, config.objective, config.budget_per_day, cap
    )
    trained_on = set(np.unique(owner[owner >= 0]).tolist()) | taught  # these shaped the model
    held = {i: a for i, a in held.items() if i not in trained_on}
    ids = labels["label_id"].astype(int).to_numpy()
    comparison = _versus_champion(con, info.id, data, points, held, ids, snapshot)
    report(0.86, "Saving the version and its scores")
    model.threshold, model.classifier = threshold, fitted.classifier
    final = fitted.combined / threshold
    if own:
        rows = np.flatnonzero(training_mask(data, run_config.training))[owner < 0]
        model.reference = _reference(data, rows[~off[rows]], base.sensors_, final)
    result = ScoredParts(parts.result, parts.u, fitted.p, fitted.combined)
    at = preview.at(threshold)
    version = versions.save_version(
        con,
        info,
        model,
        result.normalised(threshold),
        time.perf_counter() - started,
        origin="retrain",
        detector=run_config.detector,
        params=run_config.params,
        training={
            "window": run_config.training.to_dict(),
            "description": run_config.training.describe(),
            "n_rows": len(used),
            "n_excluded": int((owner >= 0).sum()),
            "n_false_alarm_rows": len(extra),
            "margin_samples": config.margin_samples,
        },
        features=versions.feature_summary(model),
        assets=list(assets),
        objective=config.objective,
        budget_per_day=config.budget_per_day,
        label_ids=list(snapshot),
        label_seqs=list(snapshot.values()),
        label_watermark=watermark,
        metrics={
            "held_out": {**label_metrics(held, points.verdict), "n_labels": len(held)},
            "in_sample": {k: getattr(at, k) for k in ("precision", "recall", "f1")},
            "alarms_per_day": at.alarms_per_day,
            "comparison": comparison.to_dict(),
            "labels": labels["verdict"].value_counts().to_dict() if len(labels) else {},
            "not_graded": sorted(int(ids[i]) for i in trained_on),
            "line": {"from_labels": from_labels, "alarm_share_cap": limit, **keep},
        },
        notes=" ".join(notes),
        created_by=analyst,
    )
    report(1.0, f"Saved v{version.id}")
    return RetrainResult(version, comparison, notes)


def retrain_summary(con: duckdb.DuckDBPyConnection, result: RetrainResult) -> str:
    """What a retrain made, in a few sentences for the analyst who pressed the button: the new
    version, its events beside those of the run in use (held-out labels cannot show a flood
    cut), how it did against the model in use, what to do next, and its notes."""
    version, comparison = result.version, result.comparison
    said = [f"Saved v{version.id}."]
    in_use = versions.run_in_use(con, version.dataset_id)
    if version.run_id is not None and in_use is not None and in_use != version.run_id:
        said.append(
            f"Its run has {counted(get_run(con, version.run_id).n_events, 'event')}; the run in use "
            f"(#{in_use}) has {get_run(con, in_use).n_events}."
        )
    step = (
        "Promote it on the Versions tab to put it in use."
        if comparison.proposed
        else "The model in use stays; compare it on the Versions tab."
    )
    return " ".join([*said, comparison.reason, step, *result.notes])


def _false_alarm_rows(
    data: pd.DataFrame,
    labels: pd.DataFrame,
    window: TrainingWindow,
    interval: float,
    margin: int,
    alarmed: np.ndarray | None = None,
) -> tuple[pd.DataFrame, set[int]]:
    """Rows of false alarms outside the training window (with context), none near a confirmed
    label; and the indices of the labels that gave rows. Context rows that ``alarmed`` (the
    unsupervised run's flags) are an alarm of their own nobody judged: a fault beside a false
    alarm must not be taught as normal, so they stay out."""
    if labels.empty:
        return data.iloc[:0], set()
    ts, asset = row_times(data)
    giver = np.full(len(data), -1, dtype=np.int64)
    alarms = np.flatnonzero(labels["verdict"].to_numpy() == "false_alarm")
    judged = labels.iloc[alarms].reset_index(drop=True)
    pad = np.full(len(alarms), int(CONTEXT_SAMPLES * interval * 1e9), dtype=np.int64)
    mark_spans(ts, asset, judged, pad, giver, alarms)
    keep = (giver >= 0) & ~training_mask(data, window)
    keep &= confirmed_owner(data, labels, interval, margin) < 0
    if alarmed is not None:
        inside = np.zeros(len(data), dtype=bool)
        mark_spans(ts, asset, judged, np.zeros_like(pad), inside, np.ones(len(alarms), dtype=bool))
        keep &= inside | ~alarmed
    return data[keep], set(np.unique(giver[keep]).tolist())


def retrain_refusal(labels: pd.DataFrame, name: str) -> str | None:
    """Why retraining ``name`` would teach nothing (no confirmed or false-alarm verdict: it
    would only copy the run into a version), else None. The Learn page disables its button."""
    if labels["verdict"].isin(["confirmed", "false_alarm"]).any():
        return None
    unsure = f" ({len(labels)} unsure only)" if len(labels) else ""
    return (
        f"Dataset {name!r} has no confirmed or false-alarm labels yet{unsure}, so there is "
        "nothing to retrain from: review events on the Triage page first."
    )


def _alarm_cap(
    run: int | None,
    flags: pd.Series | None,
    data: pd.DataFrame,
    labels: pd.DataFrame,
    window: TrainingWindow,
    interval: float,
    parts: ScoredParts,
    config: RetrainConfig,
) -> tuple[Callable[[np.ndarray], float | None] | None, dict[str, Any]]:
    """The cap on the alarm line of a model taught false alarms: it keeps ``alarm_share`` of the
    latest unsupervised run's alarms on rows after the training window that no confirmed label
    covers (None without such a run); and what it was measured on. A row in a new operating
    mode alarms only past `NEW_MODE_LINE` times the line, so it counts at its score over that.
    ``run`` and ``flags``: the latest unsupervised run's id and flags (`_unsupervised_flags`)."""
    if run is None or flags is None:
        return None, {}
    frame = parts.result.frame
    off = frame["is_off"].to_numpy(dtype=bool)
    lines = row_lines(frame)
    judged = ~training_mask(data, window) & ~off & flags.notna().to_numpy()
    rows = np.flatnonzero(judged & (confirmed_owner(data, labels, interval, 0) < 0))
    if len(rows) == 0:
        return None, {}
    rate = float(flags.to_numpy()[rows].astype(bool).mean())
    return (
        lambda combined: share_line(combined, rows, config.alarm_share * rate, lines),
        {"run": f"run #{run}", "rate": rate},
    )


def _raise_limit(limit: float | None) -> float:
    """How far the labels may raise the line: `MAX_RAISE` times, or up to the alarm-share cap
    when there is one (it already keeps a share of the flood's alarms, so the raise limit would
    only keep a flood the verdicts called false)."""
    return MAX_RAISE if limit is None else np.inf


def _unsupervised_flags(
    con: duckdb.DuckDBPyConnection, dataset_id: int, data: pd.DataFrame
) -> tuple[int | None, pd.Series | None]:
    """The latest unsupervised run's id and its alarm flags on ``data``'s rows (NaN where it
    did not score), or (None, None) without such a run."""
    past = [r for r in list_runs(con, dataset_id) if r.detector != "version"]
    if not past:
        return None, None
    scores = store.read_run_scores(con, past[0].id)[[TS, ASSET, "is_anomaly"]]
    flags = data[[TS, ASSET]].merge(scores, on=[TS, ASSET], how="left")["is_anomaly"]
    return past[0].id, flags


def _alarmed(flags: pd.Series | None) -> np.ndarray | None:
    """Flags as booleans (rows the run did not score: not alarmed)."""
    return None if flags is None else flags.fillna(False).to_numpy(dtype=bool)


def _check_rows(used: pd.DataFrame, assets: list[str], window: TrainingWindow) -> None:
    """Every asset keeps enough training rows once confirmed stretches are out."""
    counts = used.groupby(ASSET).size().reindex(assets, fill_value=0)
    few = counts[counts < MIN_TRAINING_ROWS]
    if len(few):
        raise DataError(
            f"After removing confirmed anomalies, the training window ({window.describe()}) keeps "
            f"{int(few.iloc[0])} rows of {few.index[0]!r}; it needs {MIN_TRAINING_ROWS}. "
            "Lower the margin around confirmed labels, or run detection with a longer training "
            "window first: retraining uses the window of the model in use."
        )


# --- the threshold of a stored version: preview and change --------------------------------------


def version_preview(con: duckdb.DuckDBPyConnection, version_id: int) -> ThresholdPreview:
    """The slider's preview for a version, in multiples of its alarm line, against the current
    labels: what the version's stored scores do (its held-out numbers are in its metrics)."""
    version = versions.get_version(con, version_id)
    if version.run_id is None:
        raise DataError(f"Model v{version_id} has no scores on its dataset to preview.")
    info = store.get_dataset(con, version.dataset_id)
    scores = store.read_run_scores(con, version.run_id)
    # in multiples of each row's own line: a new operating mode alarms only past NEW_MODE_LINE
    score = scores["score"].to_numpy(dtype=np.float64) / row_lines(scores)
    labels = labels_mod.current_labels(con, version.dataset_id)
    off = scores["is_off"].to_numpy(dtype=bool)
    points = label_points(scores, labels, float(info.interval_seconds or 60.0), is_off=off)
    return ThresholdPreview.from_points(score, scores[TS].to_numpy(), scores[ASSET], points)


def save_threshold(
    con: duckdb.DuckDBPyConnection,
    version_id: int,
    multiplier: float,
    analyst: str,
    progress: Progress | None = None,
) -> versions.VersionSummary:
    """A new version: the same model with its alarm line moved by ``multiplier`` (> 0)."""
    if not multiplier > 0:
        raise ConfigError(f"The threshold multiplier must be positive. Got {multiplier} instead.")
    started = time.perf_counter()
    source = versions.get_version(con, version_id)
    info = store.get_dataset(con, source.dataset_id)
    at = version_preview(con, version_id).at(multiplier)
    model = versions.load_version(con, version_id)
    model.threshold = source.threshold * float(multiplier)
    result = model.score(store.read_readings(con, info), progress=progress)
    same = ("detector", "params", "features", "training", "assets", "label_watermark")
    return versions.save_version(
        con,
        info,
        model,
        result,
        time.perf_counter() - started,
        **{k: getattr(source, k) for k in same},
        parent_id=source.id,
        origin="threshold",
        objective="manual",
        label_ids=source.label_ids,
        label_seqs=source.label_seqs,
        metrics={
            "in_sample": {"precision": at.precision, "recall": at.recall, "f1": at.f1},
            "alarms_per_day": at.alarms_per_day,
            "held_out": source.metrics.get("held_out", {}),
        },
        notes=f"Threshold of v{source.id} x {multiplier:.3g}.",
        created_by=analyst,
    )
