"""Learning from labels: what the analyst's verdicts mean for training, thresholds and models.

Rules (each one documented where it is implemented):

- **Labelled points.** A row inside a *confirmed* label is a positive; a row inside a *false alarm*
  label is a negative, and so is the reviewed context around every label (the stretch the triage
  chart shows: the label's own duration on each side, at least `CONTEXT_SAMPLES` samples), since
  the analyst saw it and did not mark it. *Unsure* labels and everything else are left out.
  Machine-off rows are never labelled points (they never alarm).
- **Training data.** Confirmed labels widened by `EXCLUSION_MARGIN_SAMPLES` samples on each side
  are removed from the rows the unsupervised detector learns "normal" from.
- **Threshold.** Maximise point F1 on the labelled points (or, with an alert budget, the best F1
  among thresholds giving at most N alarms a day). F1 is flat between labelled scores; within the
  best stretch the threshold moves as little as possible from the current alarm line, so labels
  that agree with the model leave it alone: false alarms above the line push it up, missed
  confirmed stretches pull it down.
- **Semi-supervised model.** With at least `MIN_CONFIRMED` confirmed and `MIN_FALSE_ALARMS` false
  alarm labels, a gradient-boosted classifier learns confirmed vs normal points from the features
  plus the unsupervised score; see `core.versions.LearnedModel` for how both combine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core import labels as labels_mod
from core import store, versions
from core.errors import ConfigError, DataError
from core.labels import MIN_CONTEXT_SAMPLES
from core.model import AnomalyModel
from core.runs import (
    MIN_TRAINING_ROWS,
    RunConfig,
    TrainingWindow,
    list_runs,
    prepare,
    training_mask,
)
from core.store import labels as label_store
from core.types import ASSET, TS
from core.versions import VersionSummary

Progress = Callable[[float, str], None]

CONTEXT_SAMPLES = MIN_CONTEXT_SAMPLES
"""Reviewed context around a label, in samples (what the triage chart shows at least)."""
EXCLUSION_MARGIN_SAMPLES = 60
"""Rows this close to a confirmed label leave the training data too: rolling features and the
residual models' moving averages carry a fault into the following samples."""
MIN_CONFIRMED = 3
MIN_FALSE_ALARMS = 3
"""The semi-supervised model needs at least this many confirmed and false-alarm labels."""
ALARM_GAP_SAMPLES = 4
"""A flagged row starts a new alarm only after this many unflagged samples: events merge
stretches at most 3 samples apart (`core.events.extract_events`' default)."""
OBJECTIVES = ("f1", "budget")

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1


@dataclass(frozen=True)
class LabelPoints:
    """Per row: 1 confirmed, 0 normal (false alarm or reviewed context), -1 not labelled; and the
    index of the label that row belongs to (its stretch or its context), -1 for none."""

    y: np.ndarray
    group: np.ndarray

    @property
    def labelled(self) -> np.ndarray:
        return self.y >= 0

    def counts(self) -> dict[str, int]:
        return {"positive": int((self.y == 1).sum()), "negative": int((self.y == 0).sum())}


def _asset_positions(asset: np.ndarray) -> dict[str, np.ndarray]:
    return {str(a): np.flatnonzero(asset == a) for a in pd.unique(asset)}


def _mark(
    ts: np.ndarray,
    asset: np.ndarray,
    labels: pd.DataFrame,
    pad: np.ndarray,
    out: np.ndarray,
    value: np.ndarray,
) -> None:
    """Write value[k] into out for every row within label k's range widened by pad[k] (ns)."""
    if labels.empty:
        return
    starts = labels["start_ts"].to_numpy("datetime64[ns]").astype(np.int64) - pad
    ends = labels["end_ts"].to_numpy("datetime64[ns]").astype(np.int64) + pad
    lab_asset = labels[ASSET].astype(str).to_numpy()
    for name, rows in _asset_positions(asset).items():
        order = rows[np.argsort(ts[rows], kind="stable")]
        t = ts[order]
        for k in np.flatnonzero(lab_asset == name):
            lo, hi = np.searchsorted(t, starts[k], "left"), np.searchsorted(t, ends[k], "right")
            out[order[lo:hi]] = value[k]


def _times(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    ts = pd.to_datetime(frame[TS]).to_numpy("datetime64[ns]").astype(np.int64)
    return ts, frame[ASSET].astype(str).to_numpy()


def label_points(
    frame: pd.DataFrame,
    labels: pd.DataFrame,
    interval_seconds: float,
    is_off: np.ndarray | None = None,
) -> LabelPoints:
    """Labelled points of ``frame`` (ts, asset) from current labels (label_store columns).

    Later rules win: context, then false alarms, then unsure (ignored), then confirmed.
    """
    ts, asset = _times(frame)
    n = len(frame)
    y = np.full(n, IGNORED, dtype=np.int8)
    group = np.full(n, -1, dtype=np.int64)
    if labels.empty:
        return LabelPoints(y, group)
    labels = labels.reset_index(drop=True)
    duration = (
        labels["end_ts"].to_numpy("datetime64[ns]") - labels["start_ts"].to_numpy("datetime64[ns]")
    ).astype(np.int64)
    context = np.maximum(duration, int(CONTEXT_SAMPLES * interval_seconds * 1e9))
    zero = np.zeros(len(labels), dtype=np.int64)
    index = np.arange(len(labels))
    _mark(ts, asset, labels, context, y, np.full(len(labels), NEGATIVE, dtype=np.int8))
    _mark(ts, asset, labels, context, group, index)
    for verdict, value in (("false_alarm", NEGATIVE), ("unsure", IGNORED), ("confirmed", POSITIVE)):
        mine = labels["verdict"].to_numpy() == verdict
        part = labels[mine]
        _mark(ts, asset, part, zero[mine], y, np.full(mine.sum(), value, dtype=np.int8))
        _mark(ts, asset, part, zero[mine], group, index[mine])
    if is_off is not None:
        y[np.asarray(is_off, dtype=bool)] = IGNORED
    return LabelPoints(y, group)


def training_exclusion(
    frame: pd.DataFrame,
    labels: pd.DataFrame,
    interval_seconds: float,
    margin_samples: int = EXCLUSION_MARGIN_SAMPLES,
) -> np.ndarray:
    """True for rows of ``frame`` within ``margin_samples`` of a confirmed label (same asset)."""
    ts, asset = _times(frame)
    out = np.zeros(len(frame), dtype=bool)
    confirmed = labels[labels["verdict"] == "confirmed"] if not labels.empty else labels
    if confirmed.empty:
        return out
    pad = np.full(len(confirmed), int(margin_samples * interval_seconds * 1e9), dtype=np.int64)
    _mark(ts, asset, confirmed.reset_index(drop=True), pad, out, np.ones(len(confirmed), bool))
    return out


def enough_for_classifier(labels: pd.DataFrame) -> bool:
    """The documented rule: >= MIN_CONFIRMED confirmed and >= MIN_FALSE_ALARMS false alarms."""
    if labels.empty:
        return False
    counts = labels["verdict"].value_counts()
    return (
        counts.get("confirmed", 0) >= MIN_CONFIRMED
        and counts.get("false_alarm", 0) >= MIN_FALSE_ALARMS
    )


def labels_needed(labels: pd.DataFrame) -> str | None:
    """What is missing before the semi-supervised model can be trained (None when nothing)."""
    counts = labels["verdict"].value_counts() if not labels.empty else pd.Series(dtype=int)
    need = []
    for verdict, minimum, text in (
        ("confirmed", MIN_CONFIRMED, "confirmed anomalies"),
        ("false_alarm", MIN_FALSE_ALARMS, "false alarms"),
    ):
        missing = minimum - int(counts.get(verdict, 0))
        if missing > 0:
            need.append(f"{missing} more {text}")
    return " and ".join(need) or None


# --- threshold: a preview cheap enough for a slider ----------------------------------------------


@dataclass(frozen=True)
class ThresholdPoint:
    """What a threshold means against the labels and for the alarm load."""

    threshold: float
    precision: float
    recall: float
    f1: float
    alarms: int
    alarms_per_day: float
    flagged_share: float


class ThresholdPreview:
    """Precision/recall on labelled points and alarms per day, for any threshold, in O(log n).

    Everything is sorted once: a point is flagged when ``score > threshold``; an alarm starts at
    a flagged row whose previous `ALARM_GAP_SAMPLES` rows (same asset, in time order) are all at
    or below the threshold, i.e. at ``threshold`` in ``[max(previous), score)``.
    """

    def __init__(
        self,
        score: np.ndarray,
        y: np.ndarray,
        ts: np.ndarray,
        asset: np.ndarray,
        gap: int = ALARM_GAP_SAMPLES,
    ):
        score = np.nan_to_num(np.asarray(score, dtype=np.float64), nan=0.0)
        y = np.asarray(y)
        self.pos_ = np.sort(score[y == POSITIVE])
        self.neg_ = np.sort(score[y == NEGATIVE])
        self.all_ = np.sort(score)
        t = pd.to_datetime(pd.Series(ts)).to_numpy("datetime64[ns]").astype(np.int64)
        asset = np.asarray(asset).astype(str)
        order = np.lexsort((t, asset))
        s, a = score[order], asset[order]
        segment = np.cumsum(np.r_[True, a[1:] != a[:-1]])
        prev = _prev_max_within(s, segment, max(gap, 1))
        prev = np.nan_to_num(prev, nan=-np.inf)
        valid = prev < s
        self.starts_lo_ = np.sort(prev[valid])
        self.starts_hi_ = np.sort(s[valid])
        span = (t.max() - t.min()) / 86_400e9 if len(t) else 0.0
        self.days_ = max(float(span), 1.0 / 24)

    def curve(self, thresholds: np.ndarray) -> pd.DataFrame:
        """Metrics for many thresholds at once (vectorised)."""
        th = np.asarray(thresholds, dtype=np.float64)
        tp = len(self.pos_) - np.searchsorted(self.pos_, th, "right")
        fp = len(self.neg_) - np.searchsorted(self.neg_, th, "right")
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
            recall = tp / len(self.pos_) if len(self.pos_) else np.zeros(len(th))
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
        alarms = np.searchsorted(self.starts_lo_, th, "right") - np.searchsorted(
            self.starts_hi_, th, "right"
        )
        flagged = len(self.all_) - np.searchsorted(self.all_, th, "right")
        return pd.DataFrame(
            {
                "threshold": th,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "alarms": alarms,
                "alarms_per_day": alarms / self.days_,
                "flagged_share": flagged / max(len(self.all_), 1),
            }
        )

    def at(self, threshold: float) -> ThresholdPoint:
        row = self.curve(np.array([threshold])).iloc[0]
        return ThresholdPoint(**{k: float(row[k]) for k in ThresholdPoint.__dataclass_fields__})

    def budget_threshold(self, per_day: float) -> float:
        """The lowest threshold above which there are never more than ``per_day`` alarms a day."""
        if per_day <= 0:
            raise ConfigError(f"The alert budget must be positive. Got {per_day} instead.")
        cand = np.unique(np.concatenate([self.starts_lo_, self.starts_hi_]))
        cand = cand[np.isfinite(cand)]
        if len(cand) == 0:
            return 0.0
        rate = self.curve(cand)["alarms_per_day"].to_numpy()
        worst_above = np.maximum.accumulate(rate[::-1])[::-1]
        ok = np.flatnonzero(worst_above <= per_day)
        return float(cand[ok[0]]) if len(ok) else float(cand[-1])

    def best_threshold(self, current: float = 1.0, floor: float | None = None) -> float:
        """The F1-best threshold closest to ``current`` (at or above ``floor``).

        With confirmed labels F1 is maximised; with false alarms only, the number of false alarms
        flagged is minimised. Returns ``current`` (or the floor) when there are no labels.
        """
        lo_bound = -np.inf if floor is None else floor
        values = np.unique(np.concatenate([self.pos_, self.neg_]))
        if len(values) == 0:
            return max(current, lo_bound)
        # F1 is constant for thresholds in [values[j-1], values[j]); stretch 0 is (-inf, values[0])
        lows = np.concatenate([[-np.inf], values])
        highs = np.concatenate([values, [np.inf]])
        keep = highs > lo_bound
        lows, highs = np.maximum(lows[keep], lo_bound), highs[keep]
        probe = np.where(np.isfinite(lows), lows, highs - 1.0)
        table = self.curve(probe)
        if len(self.pos_):
            goal = table["f1"].to_numpy()
        else:  # false alarms only: flag as few of them as possible
            goal = np.searchsorted(self.neg_, probe, "right").astype(np.float64)
        best = np.flatnonzero(np.isclose(goal, goal.max()))
        picks = [_inside(lows[j], highs[j], current) for j in best]
        return float(min(picks, key=lambda t: abs(np.log(max(t, 1e-12) / max(current, 1e-12)))))


def _prev_max_within(s: np.ndarray, segment: np.ndarray, gap: int) -> np.ndarray:
    """Max of the previous ``gap`` values of the same segment (NaN where there is none)."""
    prev = np.full(len(s), np.nan)
    for k in range(1, gap + 1):
        same = np.zeros(len(s), dtype=bool)
        same[k:] = segment[k:] == segment[:-k]
        shifted = np.full(len(s), np.nan)
        shifted[k:] = s[:-k]
        shifted[~same] = np.nan
        prev = np.fmax(prev, shifted)
    return prev


def _inside(lo: float, hi: float, current: float) -> float:
    """``current`` if it lies in [lo, hi), else a quarter of the stretch in from its near end."""
    if lo <= current < hi:
        return current
    if not np.isfinite(lo):
        return hi - 0.25 * max(abs(hi), 1e-9) if hi > 0 else hi - 1e-9
    if not np.isfinite(hi):
        return lo * 1.05 if lo > 0 else lo + 1e-9
    gap = hi - lo
    return lo + 0.25 * gap if current < lo else hi - 0.25 * gap


def tune_threshold(
    preview: ThresholdPreview,
    objective: str = "f1",
    budget_per_day: float | None = None,
    current: float = 1.0,
) -> float:
    """The threshold the labels ask for: F1-best, or F1-best within the alert budget."""
    if objective not in OBJECTIVES:
        raise ConfigError(
            f"Unknown objective {objective!r}. Choose one of: {', '.join(OBJECTIVES)}."
        )
    floor = None
    if objective == "budget":
        if budget_per_day is None:
            raise ConfigError("The 'budget' objective needs an alert budget (alarms per day).")
        floor = preview.budget_threshold(budget_per_day)
    return preview.best_threshold(current=current, floor=floor)


# --- the semi-supervised model -------------------------------------------------------------------

MAX_CLASSIFIER_ROWS = 20_000
N_FOLDS = 5


def make_classifier() -> Any:
    """Gradient boosting, regularised for a few hundred correlated points per label."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=100,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        class_weight="balanced",
        random_state=0,
    )


def _fit_classifier(X: np.ndarray, y: np.ndarray, rows: np.ndarray) -> Any | None:
    """A classifier on ``rows`` (subsampled), or None when one class is missing."""
    if len(np.unique(y[rows])) < 2:
        return None
    if len(rows) > MAX_CLASSIFIER_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, MAX_CLASSIFIER_ROWS, replace=False))
    return make_classifier().fit(X[rows], y[rows])


def label_folds(points: LabelPoints, labels: pd.DataFrame, n_folds: int = N_FOLDS) -> np.ndarray:
    """Fold of every row (-1 when not labelled): whole labels with their context are held out
    together, dealt round-robin in time order so every fold spans the period."""
    used = np.unique(points.group[points.labelled])
    fold_of_label = np.full(len(labels), -1)
    if len(used) >= 2:
        k = min(n_folds, len(used))
        order = used[np.argsort(labels["start_ts"].to_numpy()[used], kind="stable")]
        fold_of_label[order] = np.arange(len(order)) % k
    fold = np.where(points.labelled & (points.group >= 0), fold_of_label[points.group], -1)
    return fold


@dataclass
class CrossFitted:
    """Scores of the recipe: final (all labels) and out-of-fold on labelled points."""

    classifier: Any | None
    p: np.ndarray | None
    combined: np.ndarray
    combined_oof: np.ndarray


def cross_fit(
    u: np.ndarray,
    X: np.ndarray | None,
    points: LabelPoints,
    fold: np.ndarray,
    combine: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
) -> CrossFitted:
    """Fit the classifier on every labelled point, and once per fold without that fold's labels
    (held-out points get the fold model's probability, so thresholds are tuned on honest
    scores). Without features (too few labels) the combined score is the unsupervised one."""
    if X is None:
        return CrossFitted(None, None, u, u)
    labelled = np.flatnonzero(points.labelled)
    y = points.y.astype(np.int64)
    clf = _fit_classifier(X, y, labelled)
    if clf is None:
        return CrossFitted(None, None, u, u)
    p = clf.predict_proba(X)[:, 1]
    p_oof = p.copy()
    for k in np.unique(fold[fold >= 0]):
        held = np.flatnonzero(fold == k)
        fold_clf = _fit_classifier(X, y, labelled[fold[labelled] != k])
        p_oof[held] = 0.5 if fold_clf is None else fold_clf.predict_proba(X[held])[:, 1]
    return CrossFitted(clf, p, combine(u, p), combine(u, p_oof))


# --- held-out grading and champion/challenger --------------------------------------------------

MIN_GAIN = 0.02
"""A challenger is proposed when its held-out F1 beats the champion's by at least this much..."""
MIN_COMPARE_CONFIRMED = 1
"""...on labels the champion never saw, at least this many of them confirmed."""


def point_metrics(flags: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of flags on labelled points (y 1/0, others ignored)."""
    pos, neg = y == POSITIVE, y == NEGATIVE
    tp, fp = int((flags & pos).sum()), int((flags & neg).sum())
    n_pos = int(pos.sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / n_pos if n_pos else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_positive": n_pos,
        "n_negative": int(neg.sum()),
        "false_alarm_points": fp,
    }


def held_out_flags(
    combined_oof: np.ndarray,
    points: LabelPoints,
    fold: np.ndarray,
    ts: np.ndarray,
    asset: np.ndarray,
    objective: str,
    budget_per_day: float | None,
) -> np.ndarray:
    """Flags of labelled points by thresholds tuned without their own fold (leave-label-out)."""
    flags = np.zeros(len(combined_oof), dtype=bool)
    for k in np.unique(fold[fold >= 0]):
        y = np.where(fold == k, IGNORED, points.y)
        preview = ThresholdPreview(combined_oof, y, ts, asset)
        t = tune_threshold(preview, objective, budget_per_day)
        held = fold == k
        flags[held] = combined_oof[held] > t
    return flags


@dataclass(frozen=True)
class Comparison:
    """Champion vs challenger on held-out labels the champion never saw."""

    champion: str
    champion_version_id: int | None
    n_labels: int
    before: dict[str, float]
    after: dict[str, float]
    proposed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_champion(
    champion: str,
    champion_id: int | None,
    champion_flags: np.ndarray | None,
    challenger_flags: np.ndarray,
    y: np.ndarray,
    graded: np.ndarray,
    n_labels: int,
) -> Comparison:
    """The verdict: propose the challenger only when it beats the champion on fresh labels."""
    y = np.where(graded, y, IGNORED)
    after = point_metrics(challenger_flags, y)
    if champion_flags is None:
        before = {k: float("nan") for k in after}
        return Comparison(champion, champion_id, n_labels, before, after, True, "No model yet.")
    before = point_metrics(champion_flags, y)
    if after["n_positive"] == 0 or n_labels < 1:
        reason = (
            f"Not enough new labels to compare: {champion} has seen them all, or none of the new "
            f"ones is confirmed (need {MIN_COMPARE_CONFIRMED})."
        )
        return Comparison(champion, champion_id, n_labels, before, after, False, reason)
    gain = after["f1"] - before["f1"]
    proposed = gain >= MIN_GAIN
    reason = (
        f"Held-out F1 {after['f1']:.3f} vs {before['f1']:.3f} for {champion} on {n_labels} "
        f"labels it never saw ({gain:+.3f}; promotion proposed from {MIN_GAIN:+.2f})."
    )
    return Comparison(champion, champion_id, n_labels, before, after, proposed, reason)


# --- retraining: labels -> a new version ---------------------------------------------------------


@dataclass(frozen=True)
class RetrainConfig:
    """What to retrain on a dataset; None settings come from its active version or latest run."""

    dataset_id: int
    objective: str = "f1"
    budget_per_day: float | None = None
    semi_supervised: bool = True
    margin_samples: int = EXCLUSION_MARGIN_SAMPLES
    detector: str | None = None
    params: dict[str, Any] | None = None
    training: TrainingWindow | None = None


@dataclass(frozen=True)
class RetrainResult:
    """The new version and whether it should replace the active model."""

    version: VersionSummary
    comparison: Comparison
    notes: list[str] = field(default_factory=list)


def label_snapshot(con: duckdb.DuckDBPyConnection, dataset_id: int) -> tuple[dict[int, int], int]:
    """History position (seq) of each current label, and the dataset's latest position."""
    history = label_store.read_label_history(con, dataset_id)
    if history.empty:
        return {}, 0
    latest = history.groupby("label_id")["seq"].max()
    current = set(labels_mod.current_labels(con, dataset_id)["label_id"].astype(int))
    snap = {int(k): int(v) for k, v in latest.items() if int(k) in current}
    return snap, int(history["seq"].max())


def _base_settings(
    con: duckdb.DuckDBPyConnection, config: RetrainConfig
) -> tuple[str, dict[str, Any], TrainingWindow]:
    """Detector, parameters and window: the config's, else the active version's or latest run's."""
    detector, params, window = "auto", {}, TrainingWindow()
    active = versions.active_version(con, config.dataset_id)
    past = [r for r in list_runs(con, config.dataset_id) if r.detector != "version"]
    if active is not None:
        detector, params = active.detector, dict(active.params)
        window = TrainingWindow.from_dict(active.training.get("window") or window.to_dict())
    elif past:
        detector, params, window = past[0].detector, dict(past[0].params), past[0].training
    return (
        config.detector or detector,
        dict(config.params if config.params is not None else params),
        config.training or window,
    )


def _champion_flags(
    con: duckdb.DuckDBPyConnection, dataset_id: int, data: pd.DataFrame
) -> tuple[str, int | None, np.ndarray | None, dict[int, int]]:
    """The model to beat: the active version (via its run) or the latest unsupervised run."""
    active = versions.active_version(con, dataset_id)
    run_id, name, seen = None, "", {}
    if active is not None and active.run_id is not None:
        run_id, name = active.run_id, f"v{active.id} (active)"
        seen = dict(zip(active.label_ids, active.label_seqs, strict=True))
    else:
        past = [r for r in list_runs(con, dataset_id) if r.detector != "version"]
        if past:
            run_id, name = past[0].id, f"run #{past[0].id} (unsupervised)"
    if run_id is None:
        return "no model", None, None, {}
    scores = store.read_run_scores(con, run_id)
    key = data[[TS, ASSET]].merge(scores, on=[TS, ASSET], how="left")
    flags = key["is_anomaly"].fillna(False).to_numpy(dtype=bool)
    return name, (active.id if active is not None else None), flags, seen


def _reference(data: pd.DataFrame, rows: np.ndarray, sensors: list[str], score: np.ndarray):
    """A sample of training readings and scores, kept in the model for drift checks."""
    from core.drift import REFERENCE_ROWS

    if len(rows) > REFERENCE_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, REFERENCE_ROWS, replace=False))
    return {
        "sensors": np.asarray(sensors, dtype=str),
        "values": data[sensors].to_numpy(dtype=np.float64)[rows],
        "score": score[rows],
    }


def retrain(
    con: duckdb.DuckDBPyConnection,
    config: RetrainConfig,
    analyst: str,
    progress: Progress | None = None,
) -> RetrainResult:
    """Retrain a dataset's model with its labels and store the result as a new version.

    Steps: drop confirmed stretches (+ margin) from the training window, refit the detector,
    add the semi-supervised classifier when the label rule allows, tune the threshold on the
    labelled points, grade leave-label-out, compare with the champion, store version + run.
    """
    started = time.perf_counter()
    report = progress or (lambda f, m: None)
    if config.objective not in OBJECTIVES:
        raise ConfigError(f"Unknown objective {config.objective!r}; use {' or '.join(OBJECTIVES)}.")
    detector, params, window = _base_settings(con, config)
    report(0.02, "Reading the data and labels")
    info, assets, train, data = prepare(
        con, RunConfig(config.dataset_id, None, detector, params, window)
    )
    labels = labels_mod.current_labels(con, config.dataset_id).reset_index(drop=True)
    snapshot, watermark = label_snapshot(con, config.dataset_id)
    interval = float(info.interval_seconds or 60.0)
    own_window = window.kind != "dataset"
    excluded = (
        training_exclusion(train, labels, interval, config.margin_samples)
        if own_window
        else np.zeros(len(train), dtype=bool)
    )
    used = train[~excluded].reset_index(drop=True)
    _check_rows(used, sorted(train[ASSET].astype(str).unique()), window)
    report(0.05, f"Fitting {detector} on {len(used):,} rows ({int(excluded.sum()):,} excluded)")
    base = AnomalyModel(detector=detector, params=params or None)
    base.fit(used, progress=lambda f, m: report(0.05 + 0.35 * f, m))
    model = versions.LearnedModel(base)
    parts = model.parts(data, progress=lambda f, m: report(0.4 + 0.2 * f, m))
    off = parts.result.frame["is_off"].to_numpy(dtype=bool)
    points = label_points(data, labels, interval, is_off=off)
    fold = label_folds(points, labels)
    ts, asset = data[TS].to_numpy(), data[ASSET].astype(str).to_numpy()
    notes = []
    X = None
    if config.semi_supervised and enough_for_classifier(labels):
        report(0.62, "Training the semi-supervised classifier")
        X = model.classifier_input(data, parts.u)
    elif config.semi_supervised:
        notes.append(f"Semi-supervised model not trained yet: needs {labels_needed(labels)}.")
    fitted = cross_fit(parts.u, X, points, fold, model.combine)
    report(0.8, "Tuning the threshold on the labelled points")
    preview = ThresholdPreview(fitted.combined_oof, points.y, ts, asset)
    threshold = tune_threshold(preview, config.objective, config.budget_per_day)
    flags = held_out_flags(
        fitted.combined_oof, points, fold, ts, asset, config.objective, config.budget_per_day
    )
    # labels whose rows were excluded from training shaped the model: never graded on them
    trained_on = _labels_in_rows(train[excluded], labels, interval, config.margin_samples)
    graded = (fold >= 0) & ~np.isin(points.group, trained_on)
    champion, champion_id, champion_flags, seen = _champion_flags(con, config.dataset_id, data)
    fresh = [
        i
        for i, row in labels.iterrows()
        if seen.get(int(row["label_id"])) != snapshot.get(int(row["label_id"]))
    ]
    compared = graded & np.isin(points.group, fresh)
    comparison = compare_champion(
        champion,
        champion_id,
        champion_flags,
        flags,
        points.y,
        compared,
        len(set(points.group[compared])),
    )
    report(0.86, "Saving the version and its scores")
    model.threshold, model.classifier = threshold, fitted.classifier
    train_rows = np.flatnonzero(training_mask(data, window))[~excluded] if own_window else None
    final = fitted.combined / threshold
    if train_rows is not None:
        model.reference = _reference(data, train_rows[~off[train_rows]], base.sensors_, final)
    lab = np.flatnonzero(points.labelled)
    model.evidence = {
        "ts": ts[lab].astype("datetime64[ns]").astype(np.int64),
        "asset": asset[lab].astype(str),
        "score": fitted.combined_oof[lab] / threshold,
    }
    result = versions.ScoredParts(parts.result, parts.u, fitted.p, fitted.combined).normalised(
        threshold
    )
    held = point_metrics(flags, np.where(graded, points.y, IGNORED))
    metrics = {
        "held_out": {**held, "n_labels": len(set(points.group[graded]))},
        "in_sample": point_metrics(final > 1.0, points.y),
        "alarms_per_day": preview.at(threshold).alarms_per_day,
        "comparison": comparison.to_dict(),
        "labels": labels["verdict"].value_counts().to_dict() if not labels.empty else {},
        "not_graded": [int(labels.at[i, "label_id"]) for i in trained_on],
    }
    version = versions.save_version(
        con,
        info,
        model,
        result,
        time.perf_counter() - started,
        origin="retrain",
        detector=detector,
        params=params,
        training={
            "window": window.to_dict(),
            "description": window.describe(),
            "n_rows": len(used),
            "n_excluded": int(excluded.sum()),
            "margin_samples": config.margin_samples,
        },
        features=versions.feature_summary(model),
        assets=list(assets),
        objective=config.objective,
        budget_per_day=config.budget_per_day,
        label_ids=list(snapshot),
        label_seqs=list(snapshot.values()),
        label_watermark=watermark,
        metrics=metrics,
        notes=" ".join(notes),
        created_by=analyst,
    )
    report(1.0, f"Saved v{version.id}")
    return RetrainResult(version, comparison, notes)


def _check_rows(used: pd.DataFrame, assets: list[str], window: TrainingWindow) -> None:
    """Every asset keeps enough training rows once confirmed stretches are out."""
    counts = used.groupby(ASSET).size().reindex(assets, fill_value=0)
    few = counts[counts < MIN_TRAINING_ROWS]
    if len(few):
        raise DataError(
            f"After removing confirmed anomalies, the training window ({window.describe()}) keeps "
            f"{int(few.iloc[0])} rows of {few.index[0]!r}; it needs {MIN_TRAINING_ROWS}. "
            "Widen the window or lower the margin."
        )


def _labels_in_rows(
    rows: pd.DataFrame, labels: pd.DataFrame, interval: float, margin: int
) -> np.ndarray:
    """Indices of the confirmed labels whose (widened) stretch covers any of ``rows``."""
    if rows.empty or labels.empty:
        return np.array([], dtype=np.int64)
    ts, asset = _times(rows)
    owner = np.full(len(rows), -1, dtype=np.int64)
    confirmed = np.flatnonzero(labels["verdict"].to_numpy() == "confirmed")
    pad = np.full(len(confirmed), int(margin * interval * 1e9), dtype=np.int64)
    _mark(ts, asset, labels.iloc[confirmed].reset_index(drop=True), pad, owner, confirmed)
    return np.unique(owner[owner >= 0])


# --- the threshold of a stored version: preview and change ---------------------------------------


def version_preview(con: duckdb.DuckDBPyConnection, version_id: int) -> ThresholdPreview:
    """The slider's preview for a version, in multiples of its alarm line, against the current
    labels. Points of labels the version learned from carry their held-out scores."""
    version = versions.get_version(con, version_id)
    if version.run_id is None:
        raise DataError(f"Model v{version_id} has no scores on its dataset to preview.")
    info = store.get_dataset(con, version.dataset_id)
    scores = store.read_run_scores(con, version.run_id)
    model = versions.load_version(con, version_id)
    evidence = model.evidence
    score = scores["score"].to_numpy(dtype=np.float64).copy()
    if evidence:
        ts_key = scores[TS].to_numpy("datetime64[ns]").astype(np.int64)
        key = pd.DataFrame({ASSET: scores[ASSET].astype(str).to_numpy(), "t": ts_key})
        ev = pd.DataFrame({ASSET: evidence["asset"], "t": evidence["ts"], "s": evidence["score"]})
        held = key.merge(ev, on=[ASSET, "t"], how="left")["s"].to_numpy()
        score = np.where(np.isnan(held), score, held)
    labels = labels_mod.current_labels(con, version.dataset_id)
    off = scores["is_off"].to_numpy(dtype=bool)
    points = label_points(scores, labels, float(info.interval_seconds or 60.0), is_off=off)
    return ThresholdPreview(score, points.y, scores[TS].to_numpy(), scores[ASSET].to_numpy())


def save_threshold(
    con: duckdb.DuckDBPyConnection,
    version_id: int,
    multiplier: float,
    analyst: str,
    progress: Progress | None = None,
) -> VersionSummary:
    """A new version: the same model with its alarm line moved by ``multiplier`` (> 0)."""
    if not multiplier > 0:
        raise ConfigError(f"The threshold multiplier must be positive. Got {multiplier} instead.")
    started = time.perf_counter()
    source = versions.get_version(con, version_id)
    info = store.get_dataset(con, source.dataset_id)
    model = versions.load_version(con, version_id)
    model.threshold = source.threshold * float(multiplier)
    result = model.score(store.read_readings(con, info), progress=progress)
    preview = version_preview(con, version_id)
    at = preview.at(multiplier)
    fields_ = {k: v for k, v in source.__dict__.items() if k in ("detector", "params", "features")}
    return versions.save_version(
        con,
        info,
        model,
        result,
        time.perf_counter() - started,
        **fields_,
        parent_id=source.id,
        origin="threshold",
        training=source.training,
        assets=source.assets,
        objective="manual",
        label_ids=source.label_ids,
        label_seqs=source.label_seqs,
        label_watermark=source.label_watermark,
        metrics={
            "in_sample": {"precision": at.precision, "recall": at.recall, "f1": at.f1},
            "alarms_per_day": at.alarms_per_day,
            "held_out": source.metrics.get("held_out", {}),
        },
        notes=f"Threshold of v{source.id} x {multiplier:.3g}",
        created_by=analyst,
    )
