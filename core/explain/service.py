"""Explanations of a run's events and of the run as a whole, per feature and rolled up to sensors.

Compute -> typed result -> figure: `explain_event` and `explain_run` return an `Explanation`
(`core.explain.result`: feature-level values, base values, what they mean, a sensor roll-up);
`core.charts.explain` draws it. Features are engineered per sensor, so a sensor's contribution is
the sum of its features' contributions, which keeps additivity. Explanations are computed when an
analyst opens them, then cached in the workspace (`core.store.explanations`). How each detector
is explained is in `core.explain.methods`; where the model comes from in `core.explain.fitted`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.detect import runs
from core.errors import DataError
from core.explain.fitted import FittedRun, fitted_run, run_method
from core.explain.methods import (
    DEFAULT_LIMITS,
    PERMUTATION,
    ExplainLimits,
    RowValues,
)
from core.explain.result import (
    EXPLAIN_VERSION,
    LABEL_FACTOR,
    ROW_COLUMNS,
    RUN_SCOPE,
    Explanation,
    decode,
    encode,
    event_label,
    event_options,
    event_scope,
    members_text,
    method_text,
    point_labels,
    top_sensors_text,
)
from core.types import ASSET, TS

Progress = Callable[[float, str], None]
_FEW_STRETCHES = 8
"""Up to this many stretches of readings are read one by one, more in one read of their range."""

__all__ = [
    "DEFAULT_LIMITS",
    "EXPLAIN_VERSION",
    "RUN_SCOPE",
    "ExplainLimits",
    "Explanation",
    "cached_explanation",
    "event_label",
    "event_options",
    "event_scope",
    "explain_event",
    "explain_points",
    "explain_run",
    "members_text",
    "method_text",
    "point_labels",
    "top_sensors_text",
]


# --- caching ---------------------------------------------------------------------------------


def cached_explanation(
    con: duckdb.DuckDBPyConnection, run_id: int, scope: str
) -> Explanation | None:
    """The stored explanation of a run's event (``event_scope(id)``) or of the whole run
    (``"run"``), or None: pages use it to show progress only when something must be computed."""
    run = runs.get_run(con, run_id)
    hit = store.load_explanation(con, run_id, scope, run_method(con, run), EXPLAIN_VERSION)
    return None if hit is None else decode(run_id, scope, *hit)


def _save(con: duckdb.DuckDBPyConnection, expl: Explanation) -> None:
    meta, payload = encode(expl)
    store.save_explanation(
        con, expl.run_id, expl.scope, expl.method, EXPLAIN_VERSION, meta, payload, expl.elapsed_s
    )


# --- computing -------------------------------------------------------------------------------


def _stage(progress: Progress | None, start: float, end: float) -> Progress:
    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(start + (end - start) * min(max(float(fraction), 0.0), 1.0), message)

    return report


def _spans(ts: np.ndarray, history: np.timedelta64) -> list[tuple[int, int]]:
    """Group sorted target times: [first, last] indices of targets whose histories overlap."""
    out: list[tuple[int, int]] = []
    for i in range(len(ts)):
        if out and ts[i] - history <= ts[out[-1][1]]:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def _window_start(first: int, context: int, offset: int = 0, hop: int = 1) -> int:
    """Where a stretch's features start: ``context`` rows before its first target, moved back to
    a multiple of ``hop`` from the asset's first row (``offset`` is the asset row number of
    position 0), so FFT frames fall where they fell when the run scored."""
    lo = max(0, first - context)
    return max(0, lo - (offset + lo) % hop)


def _read_stretches(
    con: duckdb.DuckDBPyConnection,
    fitted: FittedRun,
    asset: str,
    bounds: list[tuple[np.datetime64, np.datetime64]],
    hop: int,
) -> list[tuple[pd.DataFrame, int]]:
    """Readings of each (start, end) stretch with its row number in the asset (0 unless FFT
    frames need it). A few stretches are read one by one; many (points spread over a long run)
    in one read of their whole range, since each query has a fixed cost."""
    sensors = list(fitted.model.sensors_)

    def frame(stamps: np.ndarray, values: np.ndarray) -> pd.DataFrame:
        out = pd.DataFrame(values, columns=sensors, copy=False)  # one asset: no asset column
        out[TS] = stamps
        return out

    def row_numbers(stamps: np.ndarray) -> np.ndarray:
        if hop == 1 or len(stamps) == 0:
            return np.zeros(len(stamps), dtype=np.int64)
        first = store.count_readings_before(con, fitted.info, asset, pd.Timestamp(stamps[0]))
        return first + np.arange(len(stamps))

    def read(a: np.datetime64, b: np.datetime64) -> tuple[np.ndarray, np.ndarray]:
        start, end = pd.Timestamp(a).to_pydatetime(), pd.Timestamp(b).to_pydatetime()
        return store.read_asset_stretch(con, fitted.info, asset, sensors, start, end)

    if len(bounds) <= _FEW_STRETCHES:
        out = []
        for a, b in bounds:
            stamps, values = read(a, b)
            out.append((frame(stamps, values), int(row_numbers(stamps[:1]).sum())))
        return out
    stamps, values = read(bounds[0][0], bounds[-1][1])
    whole, rows = frame(stamps, values), row_numbers(stamps)
    out = []
    for a, b in bounds:
        lo, hi = np.searchsorted(stamps, a), np.searchsorted(stamps, b, side="right")
        out.append((whole.iloc[lo:hi], int(rows[lo]) if hi > lo else 0))
    return out


def _explain_asset(
    con: duckdb.DuckDBPyConnection,
    fitted: FittedRun,
    asset: str,
    targets: pd.Series,
    progress: Progress,
    deadline: float | None,
    stored: np.ndarray | None = None,
    lift: np.ndarray | None = None,
) -> tuple[np.ndarray, RowValues]:
    """Explain one asset's rows at timestamps ``targets`` (priority order; ``stored``: the
    run's scores there, ``lift``: what each was divided by).

    Each target needs the history its features are built from; targets whose histories overlap
    share one stretch of readings. Returns the indices of ``targets`` explained (the time
    budget may stop early) and their values.
    """
    explainer = fitted.explainer
    context = explainer.context_rows(asset)
    hop = explainer.frame_hop(asset)
    interval = explainer.pipeline(asset).features.interval_seconds_
    history = np.timedelta64(int(2 * (context + hop) * interval * 1e6), "us")
    ts = pd.to_datetime(targets).to_numpy(dtype="datetime64[us]")
    order = np.argsort(ts, kind="stable")
    spans = _spans(ts[order], history)
    bounds = [(ts[order[a]] - history, ts[order[b]]) for a, b in spans]
    windows, owner = [], []
    for (a, b), (readings, offset) in zip(
        spans, _read_stretches(con, fitted, asset, bounds, hop), strict=True
    ):
        stamps = readings[TS].to_numpy(dtype="datetime64[us]")
        mine = np.sort(order[a : b + 1])  # the targets' own order is their priority
        where = np.searchsorted(stamps, ts[mine])
        if len(stamps) == 0 or (where >= len(stamps)).any() or (stamps[where] != ts[mine]).any():
            raise DataError(f"Run #{fitted.run.id} scored readings of {asset!r} that are gone.")
        lo = _window_start(int(where.min()), context, offset, hop)
        windows.append((readings.iloc[lo:], where - lo))
        owner.append(mine)
    flat = np.concatenate(owner)
    rv = explainer.explain(
        asset,
        windows,
        progress=progress,
        deadline=deadline,
        priority=flat,
        stored=None if stored is None else np.asarray(stored, dtype=np.float64)[flat],
        lift=None if lift is None else np.asarray(lift, dtype=np.float64)[flat],
    )
    return flat[rv.positions], rv


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
    method = fitted.method
    deadline = started + limits.time_budget_s if method == PERMUTATION else None
    assets = list(dict.fromkeys(rows[ASSET].astype(str)))
    kept, results = [], []
    for k, asset in enumerate(assets):
        sub = rows[rows[ASSET].astype(str) == asset]
        report = _stage(progress, k / len(assets), (k + 1) / len(assets))
        lift = sub["lift"].fillna(1.0).to_numpy(np.float64) if "lift" in sub else None
        done, rv = _explain_asset(
            con, fitted, asset, sub[TS], report, deadline, sub["score"].to_numpy(np.float64), lift
        )
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
    version = fitted.version
    if version is not None and version.has_classifier:  # the labels' factor, shown per point
        table[LABEL_FACTOR] = cat("factor") * version.model.threshold
    notes = list(fitted.notes) + _fidelity_notes(fitted, table, cat("model_score"))
    if len(table) < len(rows):
        notes.append(
            f"Explained {len(table)} of {len(rows)} points within the "
            f"{limits.time_budget_s:.0f} s budget (the peak and an even spread first)."
        )
    quantity, description = fitted.explainer.meaning(assets[0])
    pipe = fitted.explainer.pipeline(assets[0])
    description += (
        f" Values are in units of the run's score (the raw score averaged over "
        f"{fitted.model.smooth} points, rescaled so the training median is 0 and the asset's "
        "alarm line 1), so the bars add up to the score in the chart's title."
    )
    lifted = table["lift"].to_numpy(np.float64) if "lift" in table else np.ones(0)
    if (lifted > 1.0).any():
        description += (
            f" Where the asset's scores had run above half the line for days, the score is "
            f"divided by that lasting level (up to {lifted.max():.1f}x here), and so are the bars."
        )
    if fitted.version is not None:
        description += fitted.version.words(cat("factor"))
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
        target=np.where(table["is_off"].to_numpy(dtype=bool), 0.0, cat("target")),
        data=cat("data"),
        peak=peak,
        window=window,
        notes=tuple(notes),
        elapsed_s=round(time.perf_counter() - started, 3),
    )


def _fidelity_notes(fitted: FittedRun, rows: pd.DataFrame, rescored: np.ndarray) -> list[str]:
    """A note when the model explained does not reproduce the run's stored scores."""
    stored = rows["score"].to_numpy(dtype=np.float64)
    compared = np.isfinite(stored) & (stored > 0)  # off, restart and sub-median rows score 0
    if not compared.any():
        return []
    gaps = np.abs(stored[compared, None] - rescored[compared]).min(axis=1)  # either alarm line
    gap = float(gaps.max())
    if gap <= 1e-6 * max(1.0, float(np.max(np.abs(stored[compared])))):
        return []
    return [
        f"Run #{fitted.run.id}'s model now scores these points up to {gap:.3g} away from the "
        "run's stored scores (code, libraries or data changed since the run): the explanations "
        "describe the model as it scores today."
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

    Cached: the first call computes (loading the run's model if this process has not yet)
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
    method = fitted.method
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
    method = fitted.method
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
    for column, default in (
        ("score", np.nan),
        ("is_anomaly", False),
        ("is_off", False),
        ("lift", 1.0),
    ):
        if column not in rows:
            rows[column] = default
    rows["in_scope"] = True
    return _explain_rows(
        con, fitted, rows[list(ROW_COLUMNS)], scope, _stage(progress, 0.3, 1.0), started
    )
