"""The alarm threshold against the labels: a preview cheap enough for a slider, and tuning.

- **Threshold.** Judged per label, as an analyst sees alarms: a confirmed label is *caught* when
  its peak score is above the threshold, a false-alarm label *still alarms* when its peak is.
  The threshold maximises F1 over labels (or, with an alert budget, the best F1 among thresholds
  giving at most N alarms a day). F1 is flat between label peaks; within the best stretch the
  threshold moves as little as possible from the current alarm line, so labels that agree with
  the model leave it alone: false alarms above the line push it up, missed confirmed stretches
  pull it down (`STEP` past the label's peak); a raise is capped at `MAX_RAISE`. Measured on demo plants, the calibrated line is
  close to the best one for point F1, so small moves are the safe ones. Tried and measured
  worse with bench/bench_learning.py: the middle of the best stretch, F1 over labelled rows,
  and F1 expected over unlabelled alarms too (P(confirmed | peak) fitted on the labels): with
  ten labels each swings the line far and costs 0.02 to 0.15 F1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.labels.points import NEGATIVE, POSITIVE, LabelPoints

THRESHOLD_MULTIPLIERS = [round(float(m), 3) for m in np.geomspace(0.25, 4.0, 41)]
"""Threshold choices the preview slider offers, as multiples of the current alarm line."""
ALARM_GAP_SAMPLES = 4
"""A flagged row starts a new alarm only after this many unflagged samples: events merge
stretches at most 3 samples apart (`core.detect.events.extract_events`' default)."""
OBJECTIVES = ("f1", "budget")
STEP = 0.05
"""A moved threshold lands this far (relative) past the label peak that made it move."""
MAX_RAISE = 1.3
"""Best-F1 tuning raises the line at most this many times per retraining. Raising silences
unlabelled alarms on every asset, unseen by the labels (one false alarm at 1.7x the line took
the line to 1.74 and cost 4% recall on a demo plant); lowering adds alarms the analyst will
review. The slider moves it further. Measured with bench/bench_learning.py (6 plants): F1 after
20 labels 0.879 -> 0.902, steadier from round to round."""
ALARM_SHARE = 0.5
"""A model taught false alarms as normal keeps alarming on at least this share of the rows its
unsupervised run alarmed on (`share_line`, rows after the training window that no confirmed label
covers). Teaching a flood's rows as normal sinks the scores of everything that looks like them,
weak faults included, while the labels pin the F1 line near the old one. Keeping half the
alarms halves the false alarms as long as the model keeps at least half of the alarms on
faults. Measured with bench/bench_learning_flood.py (18 aged plants, the 14 that flood, 10
verdicts): both targets (false alarms halved, every fault the flood found kept) met on 8 of 14
with 0.5, on 7 of 14 with 0.45 and the code before (context rows the run alarmed on taught as
normal, the 30% raise limit binding under the cap)."""


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

    def shown(self) -> dict[str, str]:
        """Precision, recall and F1 as text: "–" where no label could say (no confirmed label,
        or none alarming), not a misleading 0.00."""
        confirmed, alarming = self.caught + self.missed, self.caught + self.false_alarms
        return {
            "Precision": f"{self.precision:.2f}" if alarming else "–",
            "Recall": f"{self.recall:.2f}" if confirmed else "–",
            "F1": f"{self.f1:.2f}" if confirmed and alarming else "–",
        }


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
        check_budget(per_day)
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


def share_line(
    score: np.ndarray, rows: np.ndarray, rate: float, lines: np.ndarray | float = 1.0
) -> float | None:
    """The line above which a ``rate`` share of ``score[rows]`` alarms: a cap on the alarm line
    that keeps that many alarms. A row alarms past ``lines`` (per row) times the line: a new
    operating mode's rows only past `core.detect.operating_range.NEW_MODE_LINE` (counted at 1,
    the cap meant to keep a quarter of the flood's false alarms kept 0.03-0.04x of them on two
    aged demo plants of bench/bench_learning_flood.py, and lost their faults). None (no cap)
    without rows, without a rate, or when the share lies at a score of 0 (any positive line
    alarms on fewer rows already)."""
    values = (np.asarray(score, dtype=np.float64) / lines)[rows]
    values = values[np.isfinite(values)]
    if len(values) == 0 or not 0 < rate < 1:
        return None
    line = float(np.quantile(values, 1.0 - rate))
    return line if line > 0 else None


def check_budget(per_day: float) -> None:
    """Refuse in words an alert budget that is not a positive, finite number of alarms a day
    (an infinite budget is no budget, not the lowest line)."""
    if not 0 < per_day < math.inf:
        raise ConfigError(
            f"The alert budget must be a positive number of alarms a day. Got {per_day} instead."
        )


def tune_threshold(
    preview: ThresholdPreview,
    objective: str = "f1",
    budget_per_day: float | None = None,
    current: float = 1.0,
    max_raise: float = MAX_RAISE,
) -> float:
    """The threshold the labels ask for: F1-best (raised at most ``max_raise`` times), or
    F1-best within the alert budget (the analyst's explicit limit: no cap). Without a confirmed
    label there is no F1 to trade false alarms against: within a budget the line then rises at
    most ``max_raise`` times past the budget's own line (clearing every false-alarm peak made
    versions that never alarmed)."""
    if objective not in OBJECTIVES:
        raise ConfigError(
            f"Unknown objective {objective!r}. Choose one of: {', '.join(OBJECTIVES)}."
        )
    if objective == "f1":
        return min(preview.best_threshold(current=current), current * max_raise)
    if budget_per_day is None:
        raise ConfigError("The 'budget' objective needs an alert budget (alarms per day).")
    floor = preview.budget_threshold(budget_per_day)
    best = preview.best_threshold(current=current, floor=floor)
    if len(preview.pos_) == 0:
        return min(best, max(floor, current * max_raise))
    return best
