"""What to label next: the unreviewed events whose verdict would teach the model most.

Each unreviewed event of a run gets three signals, each in [0, 1], and a reason per signal:

- **closeness** to the alarm line: ``exp(-|ln peak| / CLOSENESS_SCALE)`` (scores are stored so
  that 1 is the line), times the event's **reach** ``min(1, sqrt(duration / REACH_SECONDS))``.
  A verdict on a borderline event moves the threshold; one far above it does not; and a verdict
  on a one-sample blip teaches the classifier about one row, where a half-hour event teaches
  it a pattern (measured with bench/bench_learning.py: F1 after 10 labels +0.01 to +0.02).
- **disagreement** between the model's opinions on the event (only for runs of a model version,
  whose model is kept): the ensemble members' votes (each against its own training threshold)
  and the classifier's (p > 0.5). 1 = an even split, 0 = unanimous.
- **novelty**: the event's leading sensors (its top `PATTERN_SIZE`) form a combination no label
  and no earlier suggestion has covered: a new kind of deviation.

priority = closeness x reach + DISAGREEMENT_WEIGHT x disagreement + NOVELTY_WEIGHT x novelty, picked
greedily, so a pattern counts as new only once per list.

**Cold start.** Near-threshold events are mostly false alarms, and the semi-supervised model
needs confirmed anomalies too (`core.labels.points.MIN_CONFIRMED`). While the labels hold fewer,
every other pick is the *most severe* event left (an unseen pattern first), severity being the
peak times the reach: the one most likely to be confirmed, and a sustained one (a one-sample
spike at 200x teaches less than half an hour at 40x; measured with bench/bench_learning.py, F1
after 10 labels +0.002, one plant of six +0.011).
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.errors import DataError
from core.labels import history as labels_mod
from core.labels import triage
from core.labels.points import MIN_CONFIRMED
from core.types import ASSET, TS

CLOSENESS_SCALE = 0.5
DISAGREEMENT_WEIGHT = 0.5
NOVELTY_WEIGHT = 0.5
REACH_SECONDS = 1800.0
"""An event this long (or longer) counts fully; shorter ones by the square root of the share."""
MIN_REACH_SECONDS = 60.0
"""A one-sample event's duration is 0 s: it counts as this long."""
PATTERN_SIZE = 2
SUGGESTION_COLUMNS = (
    "run_id",
    "event_id",
    "asset",
    "start",
    "end",
    "peak_score",
    "top_sensors",
    "closeness",
    "reach",
    "disagreement",
    "novelty",
    "priority",
    "severe_pick",
    "reason",
)


def closeness(peak_score: np.ndarray) -> np.ndarray:
    """1 on the alarm line, falling off with the log distance from it."""
    peak = np.maximum(np.asarray(peak_score, dtype=np.float64), 1e-12)
    return np.exp(-np.abs(np.log(peak)) / CLOSENESS_SCALE)


def reach(duration_s: np.ndarray) -> np.ndarray:
    """How much of the alarm time an event's verdict speaks for, in (0, 1]."""
    seconds = np.maximum(np.asarray(duration_s, dtype=np.float64), MIN_REACH_SECONDS)
    return np.minimum(1.0, np.sqrt(seconds / REACH_SECONDS))


def pattern(sensors: list[str] | tuple[str, ...]) -> frozenset[str]:
    """The deviation pattern of an event or label: its leading sensors, order ignored."""
    return frozenset(list(sensors)[:PATTERN_SIZE])


def rank_events(
    events: pd.DataFrame,
    known_patterns: set[frozenset[str]],
    disagreement: Mapping[int, float] | None = None,
    need_confirmed: bool = False,
) -> pd.DataFrame:
    """Order candidate events by priority (greedy: a new pattern is new only once); with
    ``need_confirmed`` every other pick is the most severe event left (see Cold start)."""
    if events.empty:
        return pd.DataFrame(columns=list(SUGGESTION_COLUMNS))
    events = events.reset_index(drop=True)
    close = closeness(events["peak_score"].to_numpy())
    size = np.ones(len(events))
    if "duration_s" in events:
        size = reach(events["duration_s"].to_numpy(dtype=np.float64))
    split = np.array([float((disagreement or {}).get(int(e), 0.0)) for e in events["event_id"]])
    patterns = [pattern(s) for s in events["top_sensors"]]
    peak = events["peak_score"].to_numpy(dtype=np.float64)
    seen = set(known_patterns)
    left, order = list(range(len(events))), []
    novel, severe = np.zeros(len(events)), np.zeros(len(events), dtype=bool)
    while left:
        fresh = np.array([float(bool(patterns[i]) and patterns[i] not in seen) for i in left])
        if need_confirmed and len(order) % 2 == 0:
            best = int(np.lexsort((peak[left] * size[left], fresh))[-1])
            severe[left[best]] = True
        else:
            prio = (
                close[left] * size[left]
                + DISAGREEMENT_WEIGHT * split[left]
                + NOVELTY_WEIGHT * fresh
            )
            best = int(np.argmax(prio))
        i = left.pop(best)
        order.append(i)
        novel[i] = fresh[best]
        seen.add(patterns[i])
    out = events.iloc[order].assign(
        closeness=close[order],
        reach=size[order],
        disagreement=split[order],
        novelty=novel[order],
        severe_pick=severe[order],
    )
    out["priority"] = (
        out["closeness"] * out["reach"]
        + DISAGREEMENT_WEIGHT * out["disagreement"]
        + NOVELTY_WEIGHT * out["novelty"]
    )
    out["reason"] = [_reason(r) for r in out.to_dict("records")]
    return out.reset_index(drop=True)[list(SUGGESTION_COLUMNS)]


def _reason(row: dict) -> str:
    parts = [f"peak {row['peak_score']:.2f}x the alarm line"]
    if row["severe_pick"]:
        parts[0] = (
            f"among the most severe (peak {row['peak_score']:.2f}x the alarm line): the model "
            "needs confirmed anomalies to learn from"
        )
    elif row["closeness"] >= 0.5:
        parts[0] = f"close to the threshold (peak {row['peak_score']:.2f}x the alarm line)"
    if row["disagreement"] >= 0.3:
        how = "evenly split" if row["disagreement"] >= 0.8 else "partly split"
        parts.append(f"the model's detectors disagree on it ({how})")
    if row["novelty"]:
        parts.append(f"new deviation pattern: {' + '.join(sorted(pattern(row['top_sensors'])))}")
    return "; ".join(parts)


def known_patterns(labels: pd.DataFrame) -> set[frozenset[str]]:
    """Patterns the labels already cover (label sensors, as the analyst or event named them)."""
    if labels.empty:
        return set()
    return {pattern(s) for s in labels["sensors"] if len(s)}


def suggest(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    run_id: int | None = None,
    limit: int = 10,
) -> pd.DataFrame:
    """The ``limit`` unreviewed events of a run (default: `core.learn.versions.run_in_use`) to label
    next."""
    from core.learn.versions import run_in_use

    run_id = run_id if run_id is not None else run_in_use(con, dataset_id)
    if run_id is None:
        raise DataError("Run a detector first: suggestions are chosen among its events.")
    queue = triage.review_queue(con, run_id)
    todo = queue[queue["status"] == labels_mod.UNREVIEWED]
    labels = labels_mod.current_labels(con, dataset_id)
    confirmed = int((labels["verdict"] == "confirmed").sum()) if len(labels) else 0
    ranked = rank_events(
        todo,
        known_patterns(labels),
        event_disagreement(con, run_id, todo),
        need_confirmed=confirmed < MIN_CONFIRMED,
    )
    return ranked.head(limit).reset_index(drop=True)


def event_disagreement(
    con: duckdb.DuckDBPyConnection, run_id: int, events: pd.DataFrame
) -> dict[int, float]:
    """Per event, how split the model's opinions are (empty for runs without a kept model)."""
    from core.detect.runs import get_run
    from core.learn.versions import load_version

    run = get_run(con, run_id)
    version_id = run.params.get("version_id") if run.detector == "version" else None
    if version_id is None or events.empty:
        return {}
    model = load_version(con, int(version_id))
    info = store.get_dataset(con, run.dataset_id)
    out: dict[int, float] = {}
    for asset, group in events.groupby(ASSET):
        frame = store.read_readings(con, info, asset=str(asset))
        pipe = model.base.pipeline_for(str(asset))
        X = pipe.features.transform(frame).values.to_numpy()
        votes = _member_votes(pipe.detector, X)
        if model.classifier is not None:
            u = model.unsupervised(model.base.score(frame), frame)
            p = model.classifier.predict_proba(model.classifier_input(frame, u))[:, 1]
            votes.append(p > 0.5)
        if len(votes) < 2:
            continue
        ts = frame[TS].to_numpy()
        for e in group.itertuples():
            lo, hi = (
                np.searchsorted(ts, np.datetime64(e.start)),
                np.searchsorted(ts, np.datetime64(e.end), "right"),
            )
            share = np.mean([bool(v[lo:hi].any()) for v in votes])
            out[int(e.event_id)] = float(1.0 - abs(2.0 * share - 1.0))
    return out


def _member_votes(detector, X: np.ndarray) -> list[np.ndarray]:
    """Each ensemble member's alarm flags against its own training threshold."""
    members = getattr(detector, "detectors_", None)
    if not members:
        return []
    return [m.score(X) > m.threshold_ for m in members.values()]
