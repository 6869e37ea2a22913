"""What the analyst's labels say about rows: which are anomalous, normal or unknown, which leave
the training data, and whether there are enough for a semi-supervised model.

- **Training data.** Confirmed labels widened by `EXCLUSION_MARGIN_SAMPLES` samples on each side
  leave the rows the unsupervised detector learns "normal" from. They stay in the frame
  (`AnomalyModel.fit`'s ``exclude``), so rolling features around them see contiguous time, and
  the alarm line still reads the whole window (see `core.detect.model`). Optionally
  (``learn_false_alarms``) false alarms outside the training window join it, with
  `CONTEXT_SAMPLES` samples on each side (rolling features need the lead-in): normal behaviour
  the detector had not seen. Off by default, as those labels can no longer be graded; on, the
  retrained line keeps a share of the unsupervised run's alarms (`learn.thresholds.ALARM_SHARE`)
  so weak faults taught rows look like are not lost.
- **Reviewed context.** The rows around a label (as long as the label, at least
  `CONTEXT_SAMPLES` each side) are normal points for the semi-supervised model, except an alarm
  there that neither overlaps nor touches the label (`unjudged_alarms`): the analyst judged the
  event the label came from, not that one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.labels.triage import MIN_CONTEXT_SAMPLES
from core.types import ASSET, TS

CONTEXT_SAMPLES = MIN_CONTEXT_SAMPLES
"""Reviewed context around a label, in samples (what the triage chart shows at least)."""
EXCLUSION_MARGIN_SAMPLES = 60
"""Rows this close to a confirmed label leave the training data too: rolling features and the
residual models' moving averages carry a fault into the following samples."""
MIN_CONFIRMED = 3
MIN_FALSE_ALARMS = 1
"""The semi-supervised model needs at least this many confirmed and false-alarm labels (the
reviewed context around every label is normal too, and rows unlike the labelled ones are left
to the detector, `core.learn.familiarity`). Measured with bench/bench_learning.py (6 plants): 1 false
alarm instead of 3 took F1 after 10 labels from 0.880 to 0.884 and after 5 from 0.854 to 0.870."""

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

    def without_context(self, rows: np.ndarray) -> LabelPoints:
        """These points with the reviewed-context rows among ``rows`` (a per-row mask) no longer
        labelled: rows inside a label keep their verdict."""
        drop = np.asarray(rows, dtype=bool) & ~self.inside
        y, group = self.y.copy(), self.group.copy()
        y[drop], group[drop] = IGNORED, -1
        return LabelPoints(y, group, self.inside, self.verdict)

    def peaks(self, score: np.ndarray) -> pd.Series:
        """Each decisive label's peak score (inside the label, machine-off rows left out)."""
        rows = self.inside & (self.y >= 0)
        peak = pd.Series(score[rows]).groupby(self.group[rows]).max()
        return peak[self.verdict[peak.index] >= 0]


def mark_spans(ts, asset, labels: pd.DataFrame, pad, out: np.ndarray, value) -> None:
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


def row_times(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    ts = pd.to_datetime(frame[TS]).to_numpy("datetime64[ns]").astype(np.int64)
    return ts, frame[ASSET].astype(str).to_numpy()


def unjudged_alarms(frame: pd.DataFrame, points: LabelPoints, alarmed: np.ndarray) -> np.ndarray:
    """Per row: reviewed context that ``alarmed`` in a stretch of its own, one that neither
    overlaps nor touches a label. The analyst judged the event the label was cut from, not
    that alarm: it is no evidence of normal (a flow noise burst 7 h after a 7.6-hour false
    alarm, inside its context, was taught as normal and divided 19-fold)."""
    ts, asset = row_times(frame)
    order = np.lexsort((ts, asset))
    a, same = np.asarray(alarmed, dtype=bool)[order], asset[order][1:] == asset[order][:-1]
    inside = points.inside[order]
    near = inside | np.r_[False, inside[:-1] & same] | np.r_[inside[1:] & same, False]
    start = a & ~np.r_[False, a[:-1] & same]
    run = np.where(a, np.cumsum(start), 0)
    reached = np.unique(run[a & near])
    out = np.zeros(len(a), dtype=bool)
    out[order] = a & ~np.isin(run, reached) & (points.y[order] >= 0) & ~inside
    return out


def label_points(
    frame: pd.DataFrame,
    labels: pd.DataFrame,
    interval_seconds: float,
    is_off: np.ndarray | None = None,
) -> LabelPoints:
    """Labelled points of ``frame`` (ts, asset) from current labels (`core.labels.history` columns).

    Later rules win: context, then false alarms, then unsure (left out), then confirmed.
    Machine-off rows are never labelled points (they never alarm).
    """
    ts, asset = row_times(frame)
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
        mark_spans(ts, asset, labels, context, y, np.full(m, NEGATIVE, dtype=np.int8))
        mark_spans(ts, asset, labels, context, group, index)
        for code in (NEGATIVE, IGNORED, POSITIVE):
            mine = verdict == code
            part = labels[mine]
            mark_spans(ts, asset, part, zero[mine], y, np.full(mine.sum(), code, dtype=np.int8))
            mark_spans(ts, asset, part, zero[mine], group, index[mine])
            mark_spans(ts, asset, part, zero[mine], inside, np.ones(mine.sum(), dtype=bool))
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
    ts, asset = row_times(frame)
    owner = np.full(len(frame), -1, dtype=np.int64)
    if labels.empty:
        return owner
    labels = labels.reset_index(drop=True)
    confirmed = np.flatnonzero(labels["verdict"].to_numpy() == "confirmed")
    pad = np.full(len(confirmed), int(margin_samples * interval_seconds * 1e9), dtype=np.int64)
    mark_spans(ts, asset, labels.iloc[confirmed].reset_index(drop=True), pad, owner, confirmed)
    return owner


def labels_needed(labels: pd.DataFrame) -> str | None:
    """What the semi-supervised model still needs (None once the rule is met)."""
    counts = labels["verdict"].value_counts() if not labels.empty else pd.Series(dtype=int)
    need = []
    for verdict, minimum, one, many in (
        ("confirmed", MIN_CONFIRMED, "confirmed anomaly", "confirmed anomalies"),
        ("false_alarm", MIN_FALSE_ALARMS, "false alarm", "false alarms"),
    ):
        missing = minimum - int(counts.get(verdict, 0))
        if missing > 0:
            need.append(f"{missing} more {one if missing == 1 else many}")
    return " and ".join(need) or None


def enough_for_classifier(labels: pd.DataFrame) -> bool:
    """The rule: >= `MIN_CONFIRMED` confirmed and >= `MIN_FALSE_ALARMS` false-alarm labels."""
    return labels_needed(labels) is None
