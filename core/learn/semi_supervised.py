"""The semi-supervised classifier, its honest (out-of-fold) scores and champion/challenger.

- **Semi-supervised model.** With at least `MIN_CONFIRMED` confirmed and `MIN_FALSE_ALARMS` false
  alarm labels, a gradient-boosted classifier learns confirmed points from normal ones: those of
  false alarms and the reviewed context around every label (the triage chart's: the label's own
  duration on each side, at least `CONTEXT_SAMPLES` samples; the analyst saw it and did not mark
  it). Its input is the detector's features plus the unsupervised score; `core.learn.learned_model`
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

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from core.labels.points import NEGATIVE, POSITIVE, LabelPoints
from core.learn.thresholds import MAX_RAISE, ThresholdPreview, tune_threshold

MIN_GAIN = 0.02
N_FOLDS = 5
MAX_CLASSIFIER_ROWS = 20_000


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
    combine: Callable[[np.ndarray, np.ndarray | None, np.ndarray | None], np.ndarray],
    familiar: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
    trust: Callable[[np.ndarray, np.ndarray], np.ndarray | None] | None = None,
) -> CrossFitted:
    """Fit on every labelled row, and once per fold without that fold's labels; the fold's rows
    get that model's probability, and (``familiar(train_rows, rows, p_rows)``) the trust a
    classifier trained on ``train_rows`` earns on ``rows`` where it says ``p_rows``
    (`core.learn.familiarity`). ``trust(X, p)`` is the final model's, per row. Without input
    (too few labels) the score stays unsupervised."""
    labelled = np.flatnonzero(points.labelled)
    y = points.y.astype(np.int64)
    folds = np.unique(fold[fold >= 0])
    clf = None if X is None else _fit_classifier(X, y, labelled)
    if clf is None:
        return CrossFitted(None, None, u, {int(k): u for k in folds})
    with single_thread():
        p = clf.predict_proba(X)[:, 1]
    final_trust = None if trust is None else trust(X, p)
    row_fold = np.append(fold, -1)[points.group]
    by_fold = {}
    for k in folds:
        train = labelled[row_fold[labelled] != k]
        fold_clf = _fit_classifier(X, y, train)
        p_k = p.copy()
        t_k = None if final_trust is None else final_trust.copy()
        if fold_clf is None:
            p_k[labelled] = 0.5
        else:
            with single_thread():
                p_k[labelled] = fold_clf.predict_proba(X[labelled])[:, 1]
            if t_k is not None and familiar is not None:
                t_k[labelled] = familiar(train, labelled, p_k[labelled])
        by_fold[int(k)] = combine(u, p_k, t_k)
    return CrossFitted(clf, p, combine(u, p, final_trust), by_fold)


def held_out_alarms(
    by_fold: dict[int, np.ndarray],
    points: LabelPoints,
    fold: np.ndarray,
    ts: np.ndarray,
    asset: np.ndarray,
    objective: str,
    budget_per_day: float | None,
    cap: Callable[[np.ndarray], float | None] | None = None,
) -> dict[int, bool]:
    """Per label: does it alarm under the classifier and threshold fitted without its fold?
    ``cap(combined)`` bounds each fold's threshold as retraining bounds the version's."""
    out: dict[int, bool] = {}
    raise_limit = np.inf if cap is not None else MAX_RAISE
    for k, combined in by_fold.items():
        peaks = points.peaks(combined)
        train = peaks[fold[peaks.index] != k]
        codes = points.verdict[train.index]
        preview = ThresholdPreview(
            combined, ts, asset, train[codes == POSITIVE], train[codes == NEGATIVE]
        )
        t = tune_threshold(preview, objective, budget_per_day, max_raise=raise_limit)
        limit = None if cap is None else cap(combined)
        t = t if limit is None else min(t, limit)
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
