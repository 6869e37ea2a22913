"""Learning from labels: what the analyst's verdicts mean for training, thresholds and models.

- **Training data.** Confirmed labels widened by `EXCLUSION_MARGIN_SAMPLES` samples on each side
  leave the rows the unsupervised detector learns "normal" from. They stay in the frame
  (`AnomalyModel.fit`'s ``exclude``), so rolling features around them see contiguous time, and
  the alarm line still reads the whole window (see `core.model`). Optionally
  (``learn_false_alarms``) false alarms outside the training window join it, with
  `CONTEXT_SAMPLES` samples on each side (rolling features need the lead-in): normal behaviour
  the detector had not seen. Off by default: on demo plants it cut false alarms further but
  lost recall on some plants, and those labels can no longer be graded.
- **Threshold.** Judged per label, as an analyst sees alarms: a confirmed label is *caught* when
  its peak score is above the threshold, a false-alarm label *still alarms* when its peak is.
  The threshold maximises F1 over labels (or, with an alert budget, the best F1 among thresholds
  giving at most N alarms a day). F1 is flat between label peaks; within the best stretch the
  threshold moves as little as possible from the current alarm line, so labels that agree with
  the model leave it alone: false alarms above the line push it up, missed confirmed stretches
  pull it down (`STEP` past the label's peak). Measured on demo plants, the calibrated line is
  close to the best one for point F1, so small moves are the safe ones.
- **Semi-supervised model.** With at least `MIN_CONFIRMED` confirmed and `MIN_FALSE_ALARMS` false
  alarm labels, a gradient-boosted classifier learns confirmed points from normal ones: those of
  false alarms and the reviewed context around every label (the triage chart's: the label's own
  duration on each side, at least `CONTEXT_SAMPLES` samples; the analyst saw it and did not mark
  it). Its input is the detector's features plus the unsupervised score; `core.versions`
  documents how both scores combine. The threshold is tuned on the combined score, so a false
  alarm the classifier already sinks below the line does not move it.
- **Measured improvement.** Leave-label-out: labels are dealt into folds (a label with its
  context stays in one fold); each fold's labels are judged by a classifier and a threshold
  fitted without them. Labels whose rows were removed from or added to the training data shaped
  the detector itself and are never graded. A new version is proposed for promotion only when
  it beats the active one (or the latest unsupervised run) by `MIN_GAIN` F1 on held-out labels
  the champion never saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core import labels as labels_mod
from core import store, versions
from core.errors import ConfigError, DataError
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
from core.triage import MIN_CONTEXT_SAMPLES
from core.types import ASSET, TS

Progress = Callable[[float, str], None]

CONTEXT_SAMPLES = MIN_CONTEXT_SAMPLES
"""Reviewed context around a label, in samples (what the triage chart shows at least)."""
EXCLUSION_MARGIN_SAMPLES = 60
"""Rows this close to a confirmed label leave the training data too: rolling features and the
residual models' moving averages carry a fault into the following samples."""
MIN_CONFIRMED = 3
MIN_FALSE_ALARMS = 3
"""The semi-supervised model needs at least this many confirmed and false-alarm labels."""
THRESHOLD_MULTIPLIERS = [round(float(m), 3) for m in np.geomspace(0.25, 4.0, 41)]
"""Threshold choices the preview slider offers, as multiples of the current alarm line."""
ALARM_GAP_SAMPLES = 4
"""A flagged row starts a new alarm only after this many unflagged samples: events merge
stretches at most 3 samples apart (`core.events.extract_events`' default)."""
OBJECTIVES = ("f1", "budget")
STEP = 0.05
"""A moved threshold lands this far (relative) past the label peak that made it move."""
MIN_GAIN = 0.02
N_FOLDS = 5
MAX_CLASSIFIER_ROWS = 20_000

POSITIVE, NEGATIVE, IGNORED = 1, 0, -1
VERDICT_CODE = {"confirmed": POSITIVE, "false_alarm": NEGATIVE, "unsure": IGNORED}


# --- what labels say about rows ------------------------------------------------------------------


@dataclass(frozen=True)
class LabelPoints:
    """Per row: y (1 confirmed, 0 normal: false alarm or reviewed context, -1 not labelled), the
    label it belongs to (``group``, -1 for none) and whether it lies inside that label rather
    than in its context; per label: its verdict code."""

    y: np.ndarray
    group: np.ndarray
    inside: np.ndarray
    verdict: np.ndarray

    @property
    def labelled(self) -> np.ndarray:
        return self.y >= 0

    def peaks(self, score: np.ndarray) -> pd.Series:
        """Each decisive label's peak score (inside the label, machine-off rows left out)."""
        rows = self.inside & (self.y >= 0)
        peak = pd.Series(score[rows]).groupby(self.group[rows]).max()
        return peak[self.verdict[peak.index] >= 0]


def _mark(ts, asset, labels: pd.DataFrame, pad, out: np.ndarray, value) -> None:
    """Write value[k] into out for every row within label k's range widened by pad[k] (ns)."""
    if labels.empty:
        return
    starts = labels["start_ts"].to_numpy("datetime64[ns]").astype(np.int64) - pad
    ends = labels["end_ts"].to_numpy("datetime64[ns]").astype(np.int64) + pad
    lab_asset = labels[ASSET].astype(str).to_numpy()
    for name in pd.unique(asset):
        rows = np.flatnonzero(asset == name)
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
    """Labelled points of ``frame`` (ts, asset) from current labels (`core.labels` columns).

    Later rules win: context, then false alarms, then unsure (left out), then confirmed.
    Machine-off rows are never labelled points (they never alarm).
    """
    ts, asset = _times(frame)
    n, m = len(frame), len(labels)
    y, group = np.full(n, IGNORED, dtype=np.int8), np.full(n, -1, dtype=np.int64)
    inside = np.zeros(n, dtype=bool)
    labels = labels.reset_index(drop=True)
    verdict = np.array([VERDICT_CODE.get(v, IGNORED) for v in labels.get("verdict", [])], int)
    if m:
        begin = labels["start_ts"].to_numpy("datetime64[ns]").astype(np.int64)
        duration = labels["end_ts"].to_numpy("datetime64[ns]").astype(np.int64) - begin
        context = np.maximum(duration, int(CONTEXT_SAMPLES * interval_seconds * 1e9))
        zero, index = np.zeros(m, dtype=np.int64), np.arange(m)
        _mark(ts, asset, labels, context, y, np.full(m, NEGATIVE, dtype=np.int8))
        _mark(ts, asset, labels, context, group, index)
        for code in (NEGATIVE, IGNORED, POSITIVE):
            mine = verdict == code
            part = labels[mine]
            _mark(ts, asset, part, zero[mine], y, np.full(mine.sum(), code, dtype=np.int8))
            _mark(ts, asset, part, zero[mine], group, index[mine])
            _mark(ts, asset, part, zero[mine], inside, np.ones(mine.sum(), dtype=bool))
    if is_off is not None:
        y[np.asarray(is_off, dtype=bool)] = IGNORED
    return LabelPoints(y, group, inside, verdict)


def training_exclusion(
    frame: pd.DataFrame,
    labels: pd.DataFrame,
    interval_seconds: float,
    margin_samples: int = EXCLUSION_MARGIN_SAMPLES,
) -> np.ndarray:
    """True for rows of ``frame`` within ``margin_samples`` of a confirmed label (same asset)."""
    return confirmed_owner(frame, labels, interval_seconds, margin_samples) >= 0


def confirmed_owner(
    frame: pd.DataFrame, labels: pd.DataFrame, interval_seconds: float, margin_samples: int
) -> np.ndarray:
    """Per row, the index of the confirmed label whose widened stretch covers it (-1 for none)."""
    ts, asset = _times(frame)
    owner = np.full(len(frame), -1, dtype=np.int64)
    if labels.empty:
        return owner
    labels = labels.reset_index(drop=True)
    confirmed = np.flatnonzero(labels["verdict"].to_numpy() == "confirmed")
    pad = np.full(len(confirmed), int(margin_samples * interval_seconds * 1e9), dtype=np.int64)
    _mark(ts, asset, labels.iloc[confirmed].reset_index(drop=True), pad, owner, confirmed)
    return owner


def labels_needed(labels: pd.DataFrame) -> str | None:
    """What the semi-supervised model still needs (None once the rule is met)."""
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


def enough_for_classifier(labels: pd.DataFrame) -> bool:
    """The rule: >= `MIN_CONFIRMED` confirmed and >= `MIN_FALSE_ALARMS` false-alarm labels."""
    return labels_needed(labels) is None


# --- threshold: a preview cheap enough for a slider ----------------------------------------------


@dataclass(frozen=True)
class ThresholdPoint:
    """What a threshold means against the labels and for the alarm load."""

    threshold: float
    precision: float
    recall: float
    f1: float
    caught: int
    missed: int
    false_alarms: int
    alarms: int
    alarms_per_day: float


class ThresholdPreview:
    """Label precision/recall and alarms a day for any threshold, each in O(log n).

    Everything is sorted once. A label alarms when its peak is above the threshold. An alarm
    starts at a row above it whose previous `ALARM_GAP_SAMPLES` rows (same asset, time order) are
    all at or below it, i.e. at thresholds in ``[max(previous rows), score)``.
    """

    def __init__(
        self,
        score: np.ndarray,
        ts: np.ndarray,
        asset: np.ndarray,
        confirmed_peaks: np.ndarray,
        false_alarm_peaks: np.ndarray,
        gap: int = ALARM_GAP_SAMPLES,
    ):
        score = np.nan_to_num(np.asarray(score, dtype=np.float64), nan=0.0)
        self.pos_ = np.sort(np.asarray(confirmed_peaks, dtype=np.float64))
        self.neg_ = np.sort(np.asarray(false_alarm_peaks, dtype=np.float64))
        t = pd.to_datetime(pd.Series(ts)).to_numpy("datetime64[ns]").astype(np.int64)
        asset = np.asarray(asset).astype(str)
        order = np.lexsort((t, asset))
        s, a = score[order], asset[order]
        segment = np.cumsum(np.r_[True, a[1:] != a[:-1]]) if len(a) else a
        prev = np.full(len(s), -np.inf)
        for k in range(1, max(gap, 1) + 1):
            shifted = np.full(len(s), -np.inf)
            shifted[k:] = np.where(segment[k:] == segment[:-k], s[:-k], -np.inf)
            prev = np.maximum(prev, shifted)
        starts = prev < s
        self.start_lo_, self.start_hi_ = np.sort(prev[starts]), np.sort(s[starts])
        span = (t.max() - t.min()) / 86_400e9 if len(t) else 0.0
        self.days_ = max(float(span), 1.0 / 24)

    @classmethod
    def from_points(
        cls, score: np.ndarray, ts: np.ndarray, asset: np.ndarray, points: LabelPoints
    ) -> ThresholdPreview:
        peaks = points.peaks(score)
        codes = points.verdict[peaks.index]
        return cls(score, ts, asset, peaks[codes == POSITIVE], peaks[codes == NEGATIVE])

    def curve(self, thresholds: np.ndarray) -> pd.DataFrame:
        """Metrics for many thresholds at once (vectorised)."""
        th = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
        caught = len(self.pos_) - np.searchsorted(self.pos_, th, "right")
        false = len(self.neg_) - np.searchsorted(self.neg_, th, "right")
        alarmed = np.maximum(caught + false, 1)
        precision = np.where(caught + false > 0, caught / alarmed, 0.0)
        recall = caught / len(self.pos_) if len(self.pos_) else np.zeros(len(th))
        both = precision + recall
        f1 = np.where(both > 0, 2 * precision * recall / np.where(both > 0, both, 1), 0.0)
        alarms = np.searchsorted(self.start_lo_, th, "right") - np.searchsorted(
            self.start_hi_, th, "right"
        )
        return pd.DataFrame(
            {
                "threshold": th,
                "precision": precision,
                "recall": recall,
                "f1": f1,
                "caught": caught,
                "missed": len(self.pos_) - caught,
                "false_alarms": false,
                "alarms": alarms,
                "alarms_per_day": alarms / self.days_,
            }
        )

    def at(self, threshold: float) -> ThresholdPoint:
        row = self.curve(np.array([threshold])).iloc[0]
        kinds = {f.name: f.type for f in ThresholdPoint.__dataclass_fields__.values()}
        return ThresholdPoint(
            **{k: (int if t == "int" else float)(row[k]) for k, t in kinds.items()}
        )

    def budget_threshold(self, per_day: float) -> float:
        """The lowest threshold above which there are never more than ``per_day`` alarms a day."""
        if not per_day > 0:
            raise ConfigError(f"The alert budget must be positive. Got {per_day} instead.")
        cand = np.unique(np.concatenate([self.start_lo_, self.start_hi_]))
        cand = cand[np.isfinite(cand)]
        if len(cand) == 0:
            return 0.0
        rate = self.curve(cand)["alarms_per_day"].to_numpy()
        worst_above = np.maximum.accumulate(rate[::-1])[::-1]
        ok = np.flatnonzero(worst_above <= per_day)
        return float(cand[ok[0]]) if len(ok) else float(cand[-1])

    def best_threshold(self, current: float = 1.0, floor: float | None = None) -> float:
        """The F1-best threshold closest to ``current`` (and not below ``floor``).

        With false alarms only, as few of them as possible alarm. No labels: ``current``.
        """
        low = -np.inf if floor is None else floor
        values = np.unique(np.concatenate([self.pos_, self.neg_]))
        if len(values) == 0:
            return max(current, low)
        # the flags are constant for thresholds in [lows[j], highs[j])
        lows, highs = np.r_[-np.inf, values], np.r_[values, np.inf]
        keep = highs > low
        lows, highs = np.maximum(lows[keep], low), highs[keep]
        probe = np.where(np.isfinite(lows), lows, highs - 1.0)
        table = self.curve(probe)
        goal = table["f1"] if len(self.pos_) else -table["false_alarms"]
        best = np.flatnonzero(np.isclose(goal, goal.max()))
        picks = [_inside(lows[j], highs[j], current) for j in best]
        return float(min(picks, key=lambda t: abs(np.log(max(t, 1e-12) / max(current, 1e-12)))))


def _inside(lo: float, hi: float, current: float) -> float:
    """``current`` if it lies in [lo, hi), else `STEP` past the nearer label peak (at most
    halfway into the stretch): the smallest move that does what the labels ask."""
    if lo <= current < hi:
        return current
    mid = (lo + hi) / 2 if np.isfinite(lo) and np.isfinite(hi) else None
    if current < lo:
        t = lo * (1 + STEP) if lo > 0 else lo + 1e-9
        return t if mid is None else min(t, mid)
    t = hi * (1 - STEP) if hi > 0 else hi - 1e-9
    return t if mid is None else max(t, mid)


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


# --- the semi-supervised model and honest (out-of-fold) scores ----------------------------------


def make_classifier() -> Any:
    """Gradient boosting, regularised for a few hundred correlated points per label."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=100,
        max_bins=64,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        class_weight="balanced",
        random_state=0,
    )


def single_thread() -> Any:
    """One OpenMP thread: small fits on shared cores are faster without thread contention."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "openmp")


def _fit_classifier(X: np.ndarray, y: np.ndarray, rows: np.ndarray) -> Any | None:
    """A classifier on ``rows`` (subsampled), or None when one class is missing."""
    if len(np.unique(y[rows])) < 2:
        return None
    if len(rows) > MAX_CLASSIFIER_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, MAX_CLASSIFIER_ROWS, replace=False))
    with single_thread():
        return make_classifier().fit(X[rows], y[rows])


def label_folds(points: LabelPoints, n_folds: int = N_FOLDS) -> np.ndarray:
    """Fold of every label (-1 when it has no decisive rows): dealt round-robin in time order
    (labels come time-sorted from the store), so every fold spans the period."""
    used = np.unique(points.group[points.labelled & (points.group >= 0)])
    fold = np.full(len(points.verdict), -1)
    if len(used) >= 2:
        fold[used] = np.arange(len(used)) % min(n_folds, len(used))
    return fold


@dataclass
class CrossFitted:
    """The classifier on all labels and its combined score; per fold, the combined score of
    the classifier fitted without that fold (on labelled rows; elsewhere the final one)."""

    classifier: Any | None
    p: np.ndarray | None
    combined: np.ndarray
    by_fold: dict[int, np.ndarray]


def cross_fit(
    u: np.ndarray,
    X: np.ndarray | None,
    points: LabelPoints,
    fold: np.ndarray,
    combine: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
) -> CrossFitted:
    """Fit on every labelled row, and once per fold without that fold's labels; the fold's rows
    get that model's probability. Without input (too few labels) the score stays unsupervised."""
    labelled = np.flatnonzero(points.labelled)
    y = points.y.astype(np.int64)
    folds = np.unique(fold[fold >= 0])
    clf = None if X is None else _fit_classifier(X, y, labelled)
    if clf is None:
        return CrossFitted(None, None, u, {int(k): u for k in folds})
    with single_thread():
        p = clf.predict_proba(X)[:, 1]
    row_fold = np.append(fold, -1)[points.group]
    by_fold = {}
    for k in folds:
        fold_clf = _fit_classifier(X, y, labelled[row_fold[labelled] != k])
        p_k = p.copy()
        if fold_clf is None:
            p_k[labelled] = 0.5
        else:
            with single_thread():
                p_k[labelled] = fold_clf.predict_proba(X[labelled])[:, 1]
        by_fold[int(k)] = combine(u, p_k)
    return CrossFitted(clf, p, combine(u, p), by_fold)


def held_out_alarms(
    by_fold: dict[int, np.ndarray],
    points: LabelPoints,
    fold: np.ndarray,
    ts: np.ndarray,
    asset: np.ndarray,
    objective: str,
    budget_per_day: float | None,
) -> dict[int, bool]:
    """Per label: does it alarm under the classifier and threshold fitted without its fold?"""
    out: dict[int, bool] = {}
    for k, combined in by_fold.items():
        peaks = points.peaks(combined)
        train = peaks[fold[peaks.index] != k]
        codes = points.verdict[train.index]
        preview = ThresholdPreview(
            combined, ts, asset, train[codes == POSITIVE], train[codes == NEGATIVE]
        )
        t = tune_threshold(preview, objective, budget_per_day)
        out.update({int(i): bool(peaks[i] > t) for i in peaks.index if fold[i] == k})
    return out


def label_metrics(alarmed: dict[int, bool], verdict: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 over labels: confirmed caught, false alarms still alarming."""
    caught = sum(1 for i, a in alarmed.items() if a and verdict[i] == POSITIVE)
    false = sum(1 for i, a in alarmed.items() if a and verdict[i] == NEGATIVE)
    n_pos = sum(1 for i in alarmed if verdict[i] == POSITIVE)
    precision = caught / (caught + false) if caught + false else 0.0
    recall = caught / n_pos if n_pos else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    n_neg = sum(1 for i in alarmed if verdict[i] == NEGATIVE)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_confirmed": n_pos,
        "n_false_alarm": n_neg,
        "caught": caught,
        "false_alarms": false,
    }


@dataclass(frozen=True)
class Comparison:
    """Champion (before) vs challenger (after) on held-out labels the champion never saw."""

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
    champion_alarms: dict[int, bool] | None,
    challenger_alarms: dict[int, bool],
    verdict: np.ndarray,
) -> Comparison:
    """Propose the challenger only when it beats the champion by `MIN_GAIN` F1 on fresh labels
    (the dicts hold exactly the labels to compare), at least one of them confirmed."""
    after = label_metrics(challenger_alarms, verdict)
    n = len(challenger_alarms)
    if champion_alarms is None:
        before = {k: float("nan") for k in after}
        return Comparison(champion, champion_id, n, before, after, True, "No model yet.")
    before = label_metrics(champion_alarms, verdict)
    if after["n_confirmed"] == 0:
        reason = (
            f"Not enough new labels to compare with {champion}: none of the held-out labels it "
            "never saw is a confirmed anomaly."
        )
        return Comparison(champion, champion_id, n, before, after, False, reason)
    gain = after["f1"] - before["f1"]
    reason = (
        f"On {n} held-out labels {champion} never saw: F1 {after['f1']:.2f} vs "
        f"{before['f1']:.2f} ({gain:+.2f}; promotion proposed from {MIN_GAIN:+.2f})."
    )
    return Comparison(champion, champion_id, n, before, after, gain >= MIN_GAIN, reason)


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
    from core.drift import REFERENCE_ROWS

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
    run_config = _settings(con, config)
    report(0.02, "Reading the data and labels")
    info, assets, train, data = prepare(con, run_config)
    labels = labels_mod.current_labels(con, info.id).reset_index(drop=True)
    snapshot, watermark = label_snapshot(con, info.id)
    interval = float(info.interval_seconds or 60.0)
    own = run_config.training.kind != "dataset"  # a reference dataset has its own labels
    owner = confirmed_owner(
        train, labels if own else labels.iloc[:0], interval, config.margin_samples
    )
    extra, taught = (
        _false_alarm_rows(data, labels, run_config.training, interval, config.margin_samples)
        if own and config.learn_false_alarms
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
    )
    model = versions.LearnedModel(base, weight=versions.CLASSIFIER_WEIGHT)
    parts = model.parts(data, progress=lambda f, m: report(0.4 + 0.2 * f, m))
    off = parts.result.frame["is_off"].to_numpy(dtype=bool)
    points = label_points(data, labels, interval, is_off=off)
    fold = label_folds(points)
    ts, asset = data[TS].to_numpy(), data[ASSET].astype(str).to_numpy()
    notes, X = [], None
    if config.semi_supervised and enough_for_classifier(labels):
        report(0.62, "Training the semi-supervised classifier")
        X = model.classifier_input(data, parts.u)
    elif config.semi_supervised:
        notes.append(f"Semi-supervised model not trained yet: needs {labels_needed(labels)}.")
    fitted = cross_fit(parts.u, X, points, fold, model.combine)
    report(0.8, "Tuning the threshold on the labels")
    preview = ThresholdPreview.from_points(fitted.combined, ts, asset, points)
    threshold = tune_threshold(preview, config.objective, config.budget_per_day)
    held = held_out_alarms(
        fitted.by_fold, points, fold, ts, asset, config.objective, config.budget_per_day
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
    result = versions.ScoredParts(parts.result, parts.u, fitted.p, fitted.combined)
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
        },
        notes=" ".join(notes),
        created_by=analyst,
    )
    report(1.0, f"Saved v{version.id}")
    return RetrainResult(version, comparison, notes)


def _false_alarm_rows(
    data: pd.DataFrame, labels: pd.DataFrame, window: TrainingWindow, interval: float, margin: int
) -> tuple[pd.DataFrame, set[int]]:
    """Rows of false alarms outside the training window (with context), none near a confirmed
    label; and the indices of the labels that gave rows."""
    if labels.empty:
        return data.iloc[:0], set()
    ts, asset = _times(data)
    giver = np.full(len(data), -1, dtype=np.int64)
    alarms = np.flatnonzero(labels["verdict"].to_numpy() == "false_alarm")
    pad = np.full(len(alarms), int(CONTEXT_SAMPLES * interval * 1e9), dtype=np.int64)
    _mark(ts, asset, labels.iloc[alarms].reset_index(drop=True), pad, giver, alarms)
    keep = (giver >= 0) & ~training_mask(data, window)
    keep &= confirmed_owner(data, labels, interval, margin) < 0
    return data[keep], set(np.unique(giver[keep]).tolist())


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


# --- the threshold of a stored version: preview and change --------------------------------------


def version_preview(con: duckdb.DuckDBPyConnection, version_id: int) -> ThresholdPreview:
    """The slider's preview for a version, in multiples of its alarm line, against the current
    labels: what the version's stored scores do (its held-out numbers are in its metrics)."""
    version = versions.get_version(con, version_id)
    if version.run_id is None:
        raise DataError(f"Model v{version_id} has no scores on its dataset to preview.")
    info = store.get_dataset(con, version.dataset_id)
    scores = store.read_run_scores(con, version.run_id)
    score = scores["score"].to_numpy(dtype=np.float64)
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
