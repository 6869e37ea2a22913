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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.labels import MIN_CONTEXT_SAMPLES
from core.types import ASSET, TS

CONTEXT_SAMPLES = MIN_CONTEXT_SAMPLES
"""Reviewed context around a label, in samples (what the triage chart shows at least)."""
EXCLUSION_MARGIN_SAMPLES = 60
"""Rows this close to a confirmed label leave the training data too: rolling features and the
residual models' moving averages carry a fault into the following samples."""
MIN_CONFIRMED = 3
MIN_FALSE_ALARMS = 3
"""The semi-supervised model needs at least this many confirmed and false-alarm labels."""
ALARM_GAP_SAMPLES = 5
"""Flagged stretches fewer than this many samples apart count as one alarm."""
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
        raise ConfigError(f"Unknown objective {objective!r}. Choose one of: {', '.join(OBJECTIVES)}.")
    floor = None
    if objective == "budget":
        if budget_per_day is None:
            raise ConfigError("The 'budget' objective needs an alert budget (alarms per day).")
        floor = preview.budget_threshold(budget_per_day)
    return preview.best_threshold(current=current, floor=floor)
