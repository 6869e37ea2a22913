"""The fitted model behind a stored run, for explaining it: the one the run stored, kept warm.

Runs store their fitted model (skops, trust- and format-checked on load), so an explanation
describes exactly the model that scored. Runs stored before models were kept are re-fitted from
their stored config through the same `runs.prepare` the run used (fitting is deterministic: same
training rows, same seeds), and say so. Every explanation re-scores its points and compares with
the run's stored scores: if code or data changed since the run, it says so. Models are kept in
this process (a small LRU), since an analyst usually opens several events of one run.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from core import store
from core.detect import runs
from core.detect.model import AnomalyModel
from core.explain import versioned
from core.explain.methods import DEFAULT_LIMITS, ExplainLimits, ModelExplainer, method_for_detector
from core.types import DatasetInfo

Progress = Callable[[float, str], None]
ModelSource = Callable[[duckdb.DuckDBPyConnection, runs.RunSummary], AnomalyModel | None]
"""Where a run's fitted model can be loaded from (None: it must be re-fitted)."""
MAX_MODELS = 2
"""Fitted runs kept in memory (a 1M-row run's model and training frame take ~100 MB)."""

_CACHE: OrderedDict[tuple, FittedRun] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_FIT_LOCK = threading.Lock()  # two cores: never fit two models at once


@dataclass
class FittedRun:
    """A run, its dataset and an explainer over its model."""

    run: runs.RunSummary
    info: DatasetInfo
    explainer: ModelExplainer
    fit_seconds: float
    notes: list[str] = field(default_factory=list)
    version: versioned.VersionFactor | None = None
    """Runs a model version made: the version's score on top of its base model."""
    method: str = ""
    """How it is explained (`run_method`: the key its explanations are cached under)."""

    @property
    def model(self) -> AnomalyModel:
        return self.explainer.model


def run_method(con: duckdb.DuckDBPyConnection, run: runs.RunSummary) -> str:
    """The explanation method of a run, known before its model is loaded (the cache key); a
    version run's is its base detector's."""
    if run.detector == versioned.VERSION:
        record = versioned.version_record(con, run)
        return method_for_detector(str(record["detector"]), record.get("params"))
    return method_for_detector(run.detector, run.params)


def run_config(run: runs.RunSummary) -> runs.RunConfig:
    """The settings a stored run was executed with."""
    return runs.RunConfig(
        dataset_id=run.dataset_id,
        assets=list(run.assets),
        detector=run.detector,
        params=dict(run.params),
        training=run.training,
        threshold_quantile=run.threshold_quantile,
    )


def stored_model(con: duckdb.DuckDBPyConnection, run: runs.RunSummary) -> AnomalyModel | None:
    """The fitted model the run stored; None for a run stored before runs kept theirs."""
    return runs.run_model(con, run.id)


def fitted_run(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    progress: Progress | None = None,
    limits: ExplainLimits = DEFAULT_LIMITS,
    source: ModelSource = stored_model,
) -> FittedRun:
    """The run's model, from ``source`` (a stored model) or re-fitted from its stored config on
    first use, and cached in-process. Exact explanations need only the model; the training
    frame (permutation backgrounds) is read when first asked for."""
    run = runs.get_run(con, run_id)
    info = store.get_dataset(con, run.dataset_id)
    key = (run.id, info.sha256, run.created_at, limits)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    with _FIT_LOCK:
        with _CACHE_LOCK:  # another session may have fitted it while we waited
            if key in _CACHE:
                return _CACHE[key]
        started = time.perf_counter()
        if progress is not None:
            progress(0.0, f"Loading run #{run.id}'s model")
        if run.detector == versioned.VERSION:
            fitted = _version_fitted(con, run, info, limits, started)
        else:
            fitted = _run_fitted(con, run, info, limits, source, progress, started)
        fitted.method = run_method(con, run)
    with _CACHE_LOCK:
        _CACHE[key] = fitted
        while len(_CACHE) > MAX_MODELS:
            _CACHE.popitem(last=False)
    return fitted


def _run_fitted(
    con: duckdb.DuckDBPyConnection,
    run: runs.RunSummary,
    info: DatasetInfo,
    limits: ExplainLimits,
    source: ModelSource,
    progress: Progress | None,
    started: float,
) -> FittedRun:
    """A detection run's stored model (re-fitted for a run stored before runs kept theirs)."""
    model, notes = source(con, run), []
    train = lambda: runs.prepare(con, run_config(run))[2]  # noqa: E731
    if model is None:
        model, frame = _refit(con, run, progress)
        train = lambda: frame  # noqa: E731
        notes.append(
            f"Run #{run.id} was stored before runs kept their fitted model: its model was "
            "re-fitted from the run's settings for this explanation."
        )
    explainer = ModelExplainer(model, train, limits)
    return FittedRun(run, info, explainer, round(time.perf_counter() - started, 3), notes)


def _version_fitted(
    con: duckdb.DuckDBPyConnection,
    run: runs.RunSummary,
    info: DatasetInfo,
    limits: ExplainLimits,
    started: float,
) -> FittedRun:
    """A version run's model: the version's own (base model, classifier, alarm line)."""
    record = versioned.version_record(con, run)
    learned = versioned.load_version_model(con, run)
    factor = versioned.VersionFactor(learned, int(record["id"]))
    config = versioned.base_config(run, record)
    train = lambda: runs.prepare(con, config)[2]  # noqa: E731
    explainer = ModelExplainer(factor.explained, train, limits, factor=factor)
    return FittedRun(run, info, explainer, round(time.perf_counter() - started, 3), version=factor)


def _refit(
    con: duckdb.DuckDBPyConnection, run: runs.RunSummary, progress: Progress | None
) -> tuple[AnomalyModel, pd.DataFrame]:
    """The run's model fitted again from its settings (deterministic), and its training frame."""
    what = f"Re-fitting run #{run.id}'s model once, for all its assets"
    if progress is not None:
        progress(0.0, f"{what} ({run.training.describe()})")
    _, _, train, _ = runs.prepare(con, run_config(run))
    model = AnomalyModel(
        detector=run.detector,
        params=dict(run.params) or None,
        threshold_quantile=run.threshold_quantile,
    ).fit(train, progress=None if progress is None else lambda f, m: progress(f, f"{what}: {m}"))
    return model, train


def clear_models() -> None:
    """Drop every cached model (tests and benchmarks)."""
    with _CACHE_LOCK:
        _CACHE.clear()
