"""From flagged rows to events an engineer can triage: merged, measured, ranked, attributed.

An event is a stretch of flagged rows of one asset; stretches separated by at most
``max_gap_points`` unflagged samples are one event (a fault whose score dips briefly below the
line is still one fault). Events shorter than ``min_points`` flagged rows are dropped.

Severity (README): *an event's severity is its peak score times log2(1 + its duration in samples):
a one-sample blip at the alarm line scores 1, and each doubling of duration adds as much as the
peak score itself, so long faults rank above short ones of the same height without letting a long
marginal event outrank a short violent one.*
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.detect.model import ScoreResult
from core.errors import DataError
from core.types import ASSET, TS

EVENT_COLUMNS = [
    "event_id",
    "asset",
    "start",
    "end",
    "peak_ts",
    "peak_score",
    "duration_s",
    "n_points",
    "severity",
    "top_sensors",
    "sensor_scores",
]
TOP_SENSORS = 3
"""At most this many sensors are named per event, and only those deviating at least half as much
as the most deviating one (so a single-sensor fault names one sensor)."""


def severity(peak_score: np.ndarray, duration_s: np.ndarray, interval_seconds: float) -> np.ndarray:
    """Peak score x log2(1 + duration in samples); see the module docstring."""
    samples = np.maximum(np.asarray(duration_s, float) / max(interval_seconds, 1e-9), 1.0)
    return np.asarray(peak_score, float) * np.log2(1.0 + samples)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in EVENT_COLUMNS})


def extract_events(
    result: ScoreResult,
    interval_seconds: float,
    max_gap_points: int = 3,
    min_points: int = 1,
) -> pd.DataFrame:
    """Events of a scored run, most severe first (columns in `EVENT_COLUMNS`).

    ``top_sensors`` lists the sensors whose mean deviation over the event is largest;
    ``sensor_scores`` maps every sensor to that mean deviation (rounded).
    """
    if interval_seconds is None or not interval_seconds > 0:
        raise DataError(f"The sampling interval must be positive. Got {interval_seconds!r}.")
    frame = result.frame
    flagged = frame["is_anomaly"].to_numpy(dtype=bool)
    if not flagged.any():
        return _empty()
    rows = np.flatnonzero(flagged)
    ts = pd.to_datetime(frame[TS]).to_numpy(dtype="datetime64[ns]")[rows]
    assets = frame[ASSET].astype(str).to_numpy()[rows]
    order = np.lexsort((ts, assets))
    rows, ts, assets = rows[order], ts[order], assets[order]

    # A new event starts at a new asset or after a gap of more than max_gap_points samples.
    gap_samples = np.diff(ts).astype("timedelta64[ns]").astype(np.int64) / 1e9 / interval_seconds
    apart = gap_samples > max_gap_points + 1 + 1e-6  # float-safe "more than k samples apart"
    new = np.concatenate([[True], (assets[1:] != assets[:-1]) | apart])
    event = np.cumsum(new) - 1

    scores = frame["score"].to_numpy(dtype=np.float64)[rows]
    table = pd.DataFrame({"event": event, ASSET: assets, TS: ts, "score": scores})
    grouped = table.groupby("event", sort=True)
    summary = grouped.agg(
        asset=(ASSET, "first"),
        start=(TS, "min"),
        end=(TS, "max"),
        peak_score=("score", "max"),
        n_points=("score", "size"),
    )
    peak_pos = grouped["score"].idxmax().to_numpy()
    summary["peak_ts"] = table[TS].to_numpy()[peak_pos]
    summary = summary[summary["n_points"] >= min_points]
    if summary.empty:
        return _empty()
    duration = (summary["end"] - summary["start"]).dt.total_seconds() + interval_seconds
    summary["duration_s"] = duration.to_numpy()
    summary["severity"] = severity(summary["peak_score"], duration, interval_seconds)

    # Sensor attribution: mean deviation of each sensor over the event's flagged rows.
    deviation = result.sensor_deviation
    sensors = list(deviation.columns)
    dev = deviation.to_numpy(dtype=np.float64)[rows]
    sums = np.zeros((event.max() + 1, len(sensors)))
    np.add.at(sums, event, dev)
    means = sums / np.bincount(event)[:, None]
    means = means[summary.index.to_numpy()]
    summary["sensor_scores"] = [
        {s: round(float(v), 3) for s, v in zip(sensors, row, strict=True)} for row in means
    ]
    summary["top_sensors"] = [_top(sensors, row) for row in means]

    out = summary.sort_values(["severity", "start"], ascending=[False, True]).reset_index(drop=True)
    out["event_id"] = np.arange(1, len(out) + 1)
    return out[EVENT_COLUMNS]


def _top(sensors: list[str], values: np.ndarray) -> list[str]:
    """Most deviating sensors first: at most TOP_SENSORS, each at least half the largest."""
    if len(values) == 0:
        return []
    order = np.argsort(-values, kind="stable")[:TOP_SENSORS]
    best = values[order[0]]
    return [sensors[i] for i in order if values[i] >= 0.5 * best]
