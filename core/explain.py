"""Explanations of a run's events and of the run as a whole, per feature and rolled up to sensors.

Compute -> typed result -> figure: `explain_event` and `explain_run` return an `Explanation`
(feature-level values, base values, what they mean, a sensor roll-up); `core.charts.explain`
draws it. Features are engineered per sensor, so a sensor's contribution is the sum of its
features' contributions (`Explanation.sensor_values`), which keeps additivity. Explanations are
computed when an analyst opens them, then cached in the workspace (`core.store.explanations`).
How each detector is explained is in `core.explain_methods`; where the model comes from in
`core.explain_model`.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core import runs, store
from core.errors import DataError
from core.explain_methods import (
    DEFAULT_LIMITS,
    PERMUTATION,
    ExplainLimits,
    RowValues,
    method_for_detector,
)
from core.explain_model import FittedRun, fitted_run
from core.types import ASSET, TS

EXPLAIN_VERSION = 1
"""Format and algorithm version of cached explanations; bump it to invalidate the cache."""
RUN_SCOPE = "run"
ROW_COLUMNS = ("ts", "asset", "score", "is_anomaly", "is_off", "in_scope")
Progress = Callable[[float, str], None]

__all__ = [
    "DEFAULT_LIMITS",
    "EXPLAIN_VERSION",
    "ExplainLimits",
    "Explanation",
    "cached_explanation",
    "event_label",
    "event_scope",
    "explain_event",
    "explain_points",
    "explain_run",
    "members_text",
    "top_sensors_text",
]


@dataclass(frozen=True, eq=False)
class Explanation:
    """Contributions of features to a detector's output at some rows of a run.

    ``values[i, j]`` is feature j's contribution at row i; positive pushes towards anomalous.
    ``base_values[i] + values[i].sum() == output[i]``, the explained ``quantity`` (described for
    the screen in ``description``); ``target`` is that quantity computed directly from the model,
    so ``output - target`` shows how additive the method is. ``rows`` holds each row's ts, asset,
    run score, flags and ``in_scope`` (inside the event, or flagged for a run-wide sample).
    """

    run_id: int | None
    scope: str
    method: str
    detector: str
    quantity: str
    description: str
    features: list[str]
    sensor_of: dict[str, str]
    sensors: list[str]
    rows: pd.DataFrame
    values: np.ndarray
    base_values: np.ndarray
    target: np.ndarray
    data: np.ndarray
    peak: int | None = None
    window: tuple[pd.Timestamp, pd.Timestamp] | None = None
    notes: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    from_cache: bool = False

    @property
    def output(self) -> np.ndarray:
        """Base value plus the sum of contributions, per row (the explained quantity)."""
        return self.base_values + self.values.sum(axis=1)

    @cached_property
    def membership(self) -> np.ndarray:
        """(features x sensors) 0/1 matrix: which sensor each feature is derived from."""
        index = {s: k for k, s in enumerate(self.sensors)}
        m = np.zeros((len(self.features), len(self.sensors)))
        for j, name in enumerate(self.features):
            m[j, index[self.sensor_of[name]]] = 1.0
        return m

    @cached_property
    def sensor_values(self) -> pd.DataFrame:
        """Contributions rolled up to sensors: the sum over each sensor's features, per row."""
        return pd.DataFrame(self.values @ self.membership, columns=self.sensors)

    @cached_property
    def feature_values(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, columns=self.features)

    @cached_property
    def sensor_deviation(self) -> pd.DataFrame:
        """Per row and sensor, the largest |robust z| among its features (colours the swarm)."""
        z = np.abs(self.data.astype(np.float64))
        out = np.zeros((len(z), len(self.sensors)))
        for k in range(len(self.sensors)):
            cols = np.flatnonzero(self.membership[:, k])
            if len(cols):
                out[:, k] = z[:, cols].max(axis=1)
        return pd.DataFrame(out, columns=self.sensors)

    @property
    def in_scope(self) -> np.ndarray:
        return self.rows["in_scope"].to_numpy(dtype=bool)

    def ranking(self, level: str = "sensor") -> pd.Series:
        """Mean contribution over the rows in scope (all rows if none), largest first."""
        frame = self.sensor_values if level == "sensor" else self.feature_values
        mask = self.in_scope if self.in_scope.any() else np.ones(len(frame), dtype=bool)
        return frame[mask].mean().sort_values(ascending=False)

    def members(self) -> dict[str, np.ndarray]:
        """Ensembles: each member's normalised score per row (what the combined score mixes)."""
        return {
            c.removeprefix("member_"): self.rows[c].to_numpy()
            for c in self.rows
            if c.startswith("member_")
        }


def _fmt(value: float) -> str:
    size = abs(value)
    if size >= 100:
        return f"{value:+.0f}"
    return f"{value:+.1f}" if size >= 1 else f"{value:+.2f}"


def top_sensors_text(explanation: Explanation, k: int = 3) -> str:
    """'bearing_temp_c +2.1, vibration_rms_mm_s +1.4, motor_temp_c +0.3': the k sensors pushing
    hardest towards anomalous, by mean contribution over the event (or the run's flagged rows),
    in the units of ``explanation.quantity``."""
    ranked = explanation.ranking("sensor").head(k)
    return ", ".join(f"{name} {_fmt(float(v))}" for name, v in ranked.items())


def members_text(explanation: Explanation, row: int) -> str:
    """Ensembles: each member's normalised score at one point ('' for a single detector)."""
    members = explanation.members()
    if not members:
        return ""
    parts = ", ".join(f"{m} {float(v[row]):.2f}" for m, v in members.items())
    return (
        f"Members at this point, each normalised on its training scores: {parts}. "
        "The combined score mixes them; the values above explain the combination."
    )


def event_scope(event_id: int) -> str:
    return f"event:{int(event_id)}"


def event_label(event: pd.Series | dict[str, Any]) -> str:
    """One line for pickers: '#4 · P-101 · 01-03 10:22 · 45 min · peak 3.2'."""
    minutes = float(event["duration_s"]) / 60
    span = f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
    start = pd.Timestamp(event["start"])
    return (
        f"#{int(event['event_id'])} · {event['asset']} · {start:%Y-%m-%d %H:%M} · {span} · "
        f"peak {float(event['peak_score']):.1f}"
    )


# --- caching ---------------------------------------------------------------------------------


def _encode(expl: Explanation) -> tuple[dict[str, Any], bytes]:
    cols: dict[str, Any] = {c: expl.rows[c].to_numpy() for c in expl.rows.columns}
    cols["base"] = expl.base_values.astype(np.float64)
    cols["target"] = expl.target.astype(np.float64)
    for j in range(len(expl.features)):
        cols[f"v{j}"] = expl.values[:, j].astype(np.float64)
        cols[f"x{j}"] = expl.data[:, j].astype(np.float32)
    sink = io.BytesIO()
    pq.write_table(pa.table(cols), sink, compression="zstd")
    window = None if expl.window is None else [t.isoformat() for t in expl.window]
    meta = {
        "version": EXPLAIN_VERSION,
        "method": expl.method,
        "detector": expl.detector,
        "quantity": expl.quantity,
        "description": expl.description,
        "features": expl.features,
        "sensor_of": expl.sensor_of,
        "sensors": expl.sensors,
        "row_columns": list(expl.rows.columns),
        "peak": expl.peak,
        "window": window,
        "notes": list(expl.notes),
        "elapsed_s": expl.elapsed_s,
    }
    return meta, sink.getvalue()


def _decode(run_id: int, scope: str, meta: dict[str, Any], payload: bytes) -> Explanation:
    table = pq.read_table(io.BytesIO(payload)).to_pandas()
    p = len(meta["features"])
    window = meta.get("window")
    return Explanation(
        run_id=run_id,
        scope=scope,
        method=meta["method"],
        detector=meta["detector"],
        quantity=meta["quantity"],
        description=meta["description"],
        features=list(meta["features"]),
        sensor_of=dict(meta["sensor_of"]),
        sensors=list(meta["sensors"]),
        rows=table[meta["row_columns"]].reset_index(drop=True),
        values=table[[f"v{j}" for j in range(p)]].to_numpy(np.float64).reshape(len(table), p),
        base_values=table["base"].to_numpy(np.float64),
        target=table["target"].to_numpy(np.float64),
        data=table[[f"x{j}" for j in range(p)]].to_numpy(np.float32).reshape(len(table), p),
        peak=meta.get("peak"),
        window=None if window is None else (pd.Timestamp(window[0]), pd.Timestamp(window[1])),
        notes=tuple(meta.get("notes", [])),
        elapsed_s=float(meta.get("elapsed_s", 0.0)),
        from_cache=True,
    )


def cached_explanation(
    con: duckdb.DuckDBPyConnection, run_id: int, scope: str
) -> Explanation | None:
    """The stored explanation of a run's event (``event_scope(id)``) or of the whole run
    (``"run"``), or None: pages use it to show progress only when something must be computed."""
    run = runs.get_run(con, run_id)
    hit = store.load_explanation(
        con, run_id, scope, method_for_detector(run.detector), EXPLAIN_VERSION
    )
    return None if hit is None else _decode(run_id, scope, *hit)


def _save(con: duckdb.DuckDBPyConnection, expl: Explanation) -> None:
    meta, payload = _encode(expl)
    store.save_explanation(
        con, expl.run_id, expl.scope, expl.method, EXPLAIN_VERSION, meta, payload, expl.elapsed_s
    )


# --- computing -------------------------------------------------------------------------------


def _stage(progress: Progress | None, start: float, end: float) -> Progress:
    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(start + (end - start) * min(max(float(fraction), 0.0), 1.0), message)

    return report


def _windows(
    positions: np.ndarray, context: int, offset: int = 0, hop: int = 1
) -> list[tuple[int, int]]:
    """Contiguous stretches [lo, hi) covering each target and its history, overlaps merged.

    ``offset`` is the asset row number of position 0: each stretch starts on a multiple of
    ``hop`` from the asset's first row, so FFT frames fall where they fell when the run scored.
    """
    out: list[tuple[int, int]] = []
    for p in np.sort(positions):
        lo, hi = max(0, int(p) - context), int(p) + 1
        lo = max(0, lo - (offset + lo) % hop)
        if out and lo <= out[-1][1] + context:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _explain_asset(
    con: duckdb.DuckDBPyConnection,
    fitted: FittedRun,
    asset: str,
    targets: pd.Series,
    progress: Progress,
    deadline: float | None,
) -> tuple[np.ndarray, RowValues]:
    """Explain one asset's rows at timestamps ``targets`` (priority order).

    Returns the indices of ``targets`` explained (the time budget may stop early) and values.
    """
    explainer = fitted.explainer
    pipe = explainer.pipeline(asset)
    context = explainer.context_rows(asset)
    history = pd.Timedelta(seconds=2 * context * pipe.features.interval_seconds_)
    ts = pd.to_datetime(targets).to_numpy(dtype="datetime64[us]")
    readings = store.read_readings(
        con,
        fitted.info,
        asset=asset,
        sensors=fitted.model.sensors_,
        start=pd.Timestamp(ts.min()).to_pydatetime() - history,
        end=pd.Timestamp(ts.max()).to_pydatetime(),
    )
    stamps = readings[TS].to_numpy(dtype="datetime64[us]")
    where = np.searchsorted(stamps, ts)
    if (where >= len(stamps)).any() or (stamps[np.minimum(where, len(stamps) - 1)] != ts).any():
        raise DataError(f"Run #{fitted.run.id} scored readings of {asset!r} that are gone.")
    first = pd.Timestamp(stamps[0]).to_pydatetime()
    offset = len(store.read_readings(con, fitted.info, asset=asset, sensors=[], end=first)) - 1
    parts, done = [], []
    spans = _windows(where, context, offset, explainer.frame_hop(asset))
    for k, (lo, hi) in enumerate(spans):
        inside = np.flatnonzero((where >= lo) & (where < hi))  # keeps priority order
        rv = explainer.explain(
            readings.iloc[lo:hi].reset_index(drop=True),
            where[inside] - lo,
            progress=_stage(progress, k / len(spans), (k + 1) / len(spans)),
            deadline=deadline,
        )
        by_pos = {int(w - lo): i for i, w in zip(inside, where[inside], strict=True)}
        done.append(np.array([by_pos[int(p)] for p in rv.positions], dtype=np.int64))
        parts.append(rv)
        if deadline is not None and time.perf_counter() > deadline:
            break
    members = None
    if parts[0].members is not None:
        members = {m: np.concatenate([r.members[m] for r in parts]) for m in parts[0].members}
    merged = RowValues(
        np.concatenate([r.positions for r in parts]),
        np.concatenate([r.values for r in parts]),
        np.concatenate([r.base for r in parts]),
        np.concatenate([r.target for r in parts]),
        np.concatenate([r.data for r in parts]),
        members,
        np.concatenate([r.model_score for r in parts]),
    )
    return np.concatenate(done), merged


def _explain_rows(
    con: duckdb.DuckDBPyConnection,
    fitted: FittedRun,
    rows: pd.DataFrame,
    scope: str,
    progress: Progress,
    started: float,
    peak_ts: pd.Timestamp | None = None,
    window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
) -> Explanation:
    """Explain ``rows`` (run score rows in priority order) of any assets; results in time order."""
    limits = fitted.explainer.limits
    method = method_for_detector(fitted.run.detector)
    deadline = started + limits.time_budget_s if method == PERMUTATION else None
    assets = list(dict.fromkeys(rows[ASSET].astype(str)))
    kept, results = [], []
    for k, asset in enumerate(assets):
        sub = rows[rows[ASSET].astype(str) == asset]
        report = _stage(progress, k / len(assets), (k + 1) / len(assets))
        done, rv = _explain_asset(con, fitted, asset, sub[TS], report, deadline)
        kept.append(sub.iloc[done])
        results.append(rv)
    table = pd.concat(kept, ignore_index=True)
    order = np.argsort(table[TS].to_numpy(), kind="stable")
    table = table.iloc[order].reset_index(drop=True)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(r, name) for r in results])[order]

    if results[0].members is not None:
        for m in results[0].members:
            table[f"member_{m}"] = np.concatenate([r.members[m] for r in results])[order]
    notes = list(fitted.notes) + _fidelity_notes(fitted, table, cat("model_score"))
    if len(table) < len(rows):
        notes.append(
            f"Explained {len(table)} of {len(rows)} points within the "
            f"{limits.time_budget_s:.0f} s budget (the peak and an even spread first)."
        )
    quantity, description = fitted.explainer.meaning(assets[0])
    pipe = fitted.explainer.pipeline(assets[0])
    description += (
        f" The run's score is this detector's raw score averaged over {fitted.model.smooth} "
        "points and divided by the asset's alarm line."
    )
    peak = None
    if peak_ts is not None and len(table):
        gaps = np.abs(table[TS].to_numpy() - np.datetime64(pd.Timestamp(peak_ts)))
        peak = int(np.argmin(gaps))
    return Explanation(
        run_id=fitted.run.id,
        scope=scope,
        method=method,
        detector=fitted.run.detector_used or fitted.run.detector,
        quantity=quantity,
        description=description,
        features=list(pipe.features.feature_names_),
        sensor_of=dict(pipe.features.sensor_of_),
        sensors=list(fitted.model.sensors_),
        rows=table,
        values=cat("values"),
        base_values=cat("base"),
        target=cat("target"),
        data=cat("data"),
        peak=peak,
        window=window,
        notes=tuple(notes),
        elapsed_s=round(time.perf_counter() - started, 3),
    )


def _fidelity_notes(fitted: FittedRun, rows: pd.DataFrame, rescored: np.ndarray) -> list[str]:
    """A note when the re-fitted model does not reproduce the run's stored scores."""
    stored = rows["score"].to_numpy(dtype=np.float64)
    compared = np.isfinite(stored) & (stored > 0)  # off, restart and sub-median rows score 0
    if not compared.any():
        return []
    gap = float(np.max(np.abs(stored[compared] - rescored[compared])))
    if gap <= 1e-6 * max(1.0, float(np.max(np.abs(stored[compared])))):
        return []
    return [
        f"The model re-fitted from run #{fitted.run.id}'s settings scores these points up to "
        f"{gap:.3g} away from the run's stored scores (code, libraries or data changed since "
        "the run): the explanations describe the re-fitted model."
    ]


def _priority(in_scope: np.ndarray, peak: int, cap: int) -> np.ndarray:
    """Row positions to explain, most important first: the peak, then an even spread of the
    event (about 70% of ``cap``), then of its context; all rows when they fit under ``cap``."""
    n = len(in_scope)
    inside, outside = np.flatnonzero(in_scope), np.flatnonzero(~in_scope)
    n_in = min(len(inside), max(1, int(round(0.7 * cap))))
    n_out = min(len(outside), max(0, cap - n_in))
    n_in = min(len(inside), cap - n_out)

    def spread(idx: np.ndarray, k: int) -> np.ndarray:
        if k <= 0 or len(idx) == 0:
            return idx[:0]
        picks = idx[np.unique(np.linspace(0, len(idx) - 1, k).round().astype(int))]
        golden = (np.arange(len(picks)) * 0.6180339887) % 1.0  # interleave: any prefix spreads
        return picks[np.argsort(golden, kind="stable")]

    chosen = [np.array([peak]), spread(inside, n_in), spread(outside, n_out)]
    order = pd.unique(np.concatenate(chosen))
    return np.asarray(order[: max(cap, 1)] if n else order, dtype=np.int64)


def _event(con: duckdb.DuckDBPyConnection, run_id: int, event_id: int) -> pd.Series:
    events = store.read_events(con, run_id)
    match = events[events["event_id"] == int(event_id)]
    if match.empty:
        raise DataError(f"Run #{run_id} has no event #{event_id}.")
    return match.iloc[0]


def explain_event(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    event_id: int,
    *,
    limits: ExplainLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    refresh: bool = False,
) -> Explanation:
    """Contributions at the points of one event and some context before and after it.

    Cached: the first call computes (re-fitting the run's model if this process has not yet)
    and stores; later calls read the workspace. ``progress(fraction, message)`` reports.
    """
    scope = event_scope(event_id)
    if not refresh:
        hit = cached_explanation(con, run_id, scope)
        if hit is not None:
            return hit
    started = time.perf_counter()
    event = _event(con, run_id, event_id)
    fitted = fitted_run(con, run_id, progress=_stage(progress, 0.0, 0.4), limits=limits)
    start, end = pd.Timestamp(event["start"]), pd.Timestamp(event["end"])
    interval = fitted.explainer.pipeline(event[ASSET]).features.interval_seconds_
    context = max(0.5 * (end - start), pd.Timedelta(seconds=10 * interval))
    scores = store.read_run_scores(
        con,
        run_id,
        asset=str(event[ASSET]),
        start=(start - context).to_pydatetime(),
        end=(end + context).to_pydatetime(),
    )
    ts = pd.to_datetime(scores[TS])
    in_event = ((ts >= start) & (ts <= end)).to_numpy()
    peak = int(np.argmin(np.abs((ts - pd.Timestamp(event["peak_ts"])).to_numpy())))
    method = method_for_detector(fitted.run.detector)
    cap = limits.agnostic_rows if method == PERMUTATION else limits.exact_rows
    rows = scores.assign(in_scope=in_event).iloc[_priority(in_event, peak, cap)]
    _stage(progress, 0.4, 0.45)(0.0, f"Explaining {len(rows)} points ({method})")
    expl = _explain_rows(
        con,
        fitted,
        rows[list(ROW_COLUMNS)],
        scope,
        _stage(progress, 0.45, 1.0),
        started,
        peak_ts=ts.iloc[peak],
        window=(start, end),
    )
    _save(con, expl)
    return expl


def _run_sample(scores: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """Up to half flagged points (spread over events by their size), the rest normal ones."""
    rng = np.random.default_rng(seed)
    on = ~scores["is_off"].to_numpy(dtype=bool)
    flagged = np.flatnonzero(on & scores["is_anomaly"].to_numpy(dtype=bool))
    normal = np.flatnonzero(on & ~scores["is_anomaly"].to_numpy(dtype=bool))
    k_flag = min(len(flagged), n // 2)
    k_norm = min(len(normal), n - k_flag)
    picks = np.concatenate(
        [
            rng.choice(flagged, k_flag, replace=False),
            rng.choice(normal, k_norm, replace=False),
        ]
    ).astype(np.int64)
    rows = scores.iloc[rng.permutation(picks)]
    return rows.assign(in_scope=rows["is_anomaly"].to_numpy(dtype=bool))


def explain_run(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    *,
    limits: ExplainLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    refresh: bool = False,
) -> Explanation:
    """Global explanation: contributions at a sample of the run's points (half of them flagged,
    when there are enough), for mean |contribution| per sensor and their spread. Cached."""
    if not refresh:
        hit = cached_explanation(con, run_id, RUN_SCOPE)
        if hit is not None:
            return hit
    started = time.perf_counter()
    fitted = fitted_run(con, run_id, progress=_stage(progress, 0.0, 0.4), limits=limits)
    scores = store.read_run_scores(con, run_id)
    method = method_for_detector(fitted.run.detector)
    n = limits.run_rows_agnostic if method == PERMUTATION else limits.run_rows
    rows = _run_sample(scores, n, limits.seed)
    if rows.empty:
        raise DataError(f"Run #{run_id} has no scored points with the machine running.")
    _stage(progress, 0.4, 0.45)(0.0, f"Explaining {len(rows)} sampled points ({method})")
    expl = _explain_rows(
        con, fitted, rows[list(ROW_COLUMNS)], RUN_SCOPE, _stage(progress, 0.45, 1.0), started
    )
    _save(con, expl)
    return expl


def explain_points(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    points: pd.DataFrame,
    *,
    limits: ExplainLimits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    scope: str = "points",
) -> Explanation:
    """Explain chosen points of a run (``asset``, ``ts`` columns), e.g. its top-scoring rows.

    Not cached: a selection is ad hoc. The points must be rows the run scored.
    """
    started = time.perf_counter()
    fitted = fitted_run(con, run_id, progress=_stage(progress, 0.0, 0.3), limits=limits)
    rows = points.copy()
    for column, default in (("score", np.nan), ("is_anomaly", False), ("is_off", False)):
        if column not in rows:
            rows[column] = default
    rows["in_scope"] = True
    return _explain_rows(
        con, fitted, rows[list(ROW_COLUMNS)], scope, _stage(progress, 0.3, 1.0), started
    )


def sensor_share(explanation: Explanation, sensors: Sequence[str]) -> float:
    """Share of the in-scope positive contribution that falls on ``sensors`` (for evaluation)."""
    ranked = explanation.ranking("sensor").clip(lower=0)
    total = float(ranked.sum())
    return float(ranked[list(sensors)].sum()) / total if total > 0 else 0.0
