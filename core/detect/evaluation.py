"""How good are the detections? Point, event and delay metrics against labelled fault windows.

Rows where the machine is off (``is_off``) are left out of every metric: they are neither normal
operation nor a fault, and the model never alarms on them.

- Point metrics count rows: precision, recall, F1, and the false-alarm rate (share of normal rows
  flagged). ``pr_auc`` is the average precision of the raw score, threshold-free.
- Event recall: share of truth windows with at least one flagged row inside. Event precision:
  share of predicted events (runs of flagged rows, per asset) that overlap a truth window.
- Detection delay: from a window's start to its first flagged row, over found windows.
- ``point_adjusted_f1`` is the lenient convention of many papers: a window with any flagged row
  counts as wholly detected. It flatters detectors that fire once per fault; read it beside F1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from core.errors import DataError
from core.types import ASSET, DEFAULT_ASSET, TS


@dataclass(frozen=True)
class Evaluation:
    """Detection quality of one scored run against ground truth."""

    precision: float
    recall: float
    f1: float
    false_alarm_rate: float
    pr_auc: float
    event_recall: float
    event_precision: float
    mean_delay_s: float
    median_delay_s: float
    point_adjusted_f1: float
    n_points: int
    n_truth_points: int
    n_flagged: int
    n_events: int
    n_events_found: int
    n_predicted_events: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def _truth_windows(truth: pd.DataFrame) -> pd.DataFrame:
    missing = {"start", "end"} - set(truth.columns)
    if missing:
        raise DataError(
            f"Ground truth needs 'start' and 'end' columns ({sorted(missing)} missing)."
        )
    out = truth.copy()
    out["start"] = pd.to_datetime(out["start"])
    out["end"] = pd.to_datetime(out["end"])
    if ASSET in out.columns:
        out[ASSET] = out[ASSET].astype(str)
    return out.reset_index(drop=True)


def label_points(scored: pd.DataFrame, truth: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row: inside a truth window? and which window (-1 for none). Windows are inclusive."""
    windows = _truth_windows(truth)
    n = len(scored)
    window_of = np.full(n, -1, dtype=np.int64)
    ts = pd.to_datetime(scored[TS]).to_numpy(dtype="datetime64[ns]")
    assets = scored[ASSET].astype(str).to_numpy() if ASSET in scored else np.full(n, DEFAULT_ASSET)
    for asset in np.unique(assets):
        rows = np.flatnonzero(assets == asset)
        order = rows[np.argsort(ts[rows], kind="stable")]
        t = ts[order]
        mine = windows if ASSET not in windows else windows[windows[ASSET] == asset]
        starts = mine["start"].to_numpy(dtype="datetime64[ns]")
        ends = mine["end"].to_numpy(dtype="datetime64[ns]")
        lo = np.searchsorted(t, starts, side="left")
        hi = np.searchsorted(t, ends, side="right")
        for k, a, b in zip(mine.index, lo, hi, strict=True):  # one pass per window, not per row
            window_of[order[a:b]] = k
    return window_of >= 0, window_of


def _runs(flags: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, end exclusive) positions of runs of True in ``flags`` within equal ``groups``."""
    f = flags.astype(np.int8)
    brk = np.concatenate([[True], groups[1:] != groups[:-1]])
    starts = np.flatnonzero(f.astype(bool) & (brk | np.concatenate([[True], f[:-1] == 0])))
    nxt_break = np.concatenate([brk[1:], [True]])
    ends = np.flatnonzero(f.astype(bool) & (nxt_break | np.concatenate([f[1:] == 0, [True]]))) + 1
    return starts, ends


def evaluate(scored: pd.DataFrame, truth: pd.DataFrame) -> Evaluation:
    """Compare ``scored`` (ts, asset, score, is_anomaly[, is_off]) with truth windows."""
    for col in (TS, "score", "is_anomaly"):
        if col not in scored.columns:
            raise DataError(f"Scored data needs a {col!r} column.")
    is_true, window_of = label_points(scored, truth)
    keep = (
        ~scored["is_off"].to_numpy(dtype=bool) if "is_off" in scored else np.ones(len(scored), bool)
    )
    n_windows = len(truth)
    # Sort by (asset, ts) so runs and first flags follow time.
    ts = pd.to_datetime(scored[TS]).to_numpy(dtype="datetime64[ns]")
    assets = scored[ASSET].astype(str).to_numpy() if ASSET in scored else np.full(len(ts), "")
    order = np.lexsort((ts, assets))
    order = order[keep[order]]
    ts, assets = ts[order], assets[order]
    y, win = is_true[order], window_of[order]
    flag = scored["is_anomaly"].to_numpy(dtype=bool)[order]
    score = scored["score"].to_numpy(dtype=np.float64)[order]

    tp = int((flag & y).sum())
    n_flag, n_true = int(flag.sum()), int(y.sum())
    precision = tp / n_flag if n_flag else 0.0
    recall = tp / n_true if n_true else 0.0
    n_normal = int((~y).sum())
    far = float((flag & ~y).sum() / n_normal) if n_normal else 0.0
    from sklearn.metrics import average_precision_score  # lazy: scikit-learn is slow to import

    finite = np.nan_to_num(score, nan=0.0, posinf=1e300, neginf=-1e300)
    pr_auc = float(average_precision_score(y, finite)) if 0 < n_true < len(y) else math.nan

    # Events found, and delays from each window's start to its first flagged row.
    hit_rows = np.flatnonzero(flag & (win >= 0))
    found, first = np.unique(win[hit_rows], return_index=True)
    starts = _truth_windows(truth)["start"].to_numpy(dtype="datetime64[ns]")
    delays = (ts[hit_rows[first]] - starts[found]).astype("timedelta64[ns]").astype(np.int64) / 1e9
    event_recall = len(found) / n_windows if n_windows else 0.0

    run_start, run_end = _runs(flag, assets)
    inside = np.concatenate([[0], np.cumsum(y.astype(np.int64))])
    overlaps = (inside[run_end] - inside[run_start]) > 0
    n_pred = len(run_start)
    event_precision = float(overlaps.mean()) if n_pred else 0.0

    # Point-adjusted: every row of a window with any hit counts as detected.
    adjusted = flag | np.isin(win, found)
    tp_adj = int((adjusted & y).sum())
    p_adj = tp_adj / int(adjusted.sum()) if adjusted.any() else 0.0
    r_adj = tp_adj / n_true if n_true else 0.0

    return Evaluation(
        precision=precision,
        recall=recall,
        f1=_f1(precision, recall),
        false_alarm_rate=far,
        pr_auc=pr_auc,
        event_recall=event_recall,
        event_precision=event_precision,
        mean_delay_s=float(np.mean(delays)) if len(delays) else math.nan,
        median_delay_s=float(np.median(delays)) if len(delays) else math.nan,
        point_adjusted_f1=_f1(p_adj, r_adj),
        n_points=len(y),
        n_truth_points=n_true,
        n_flagged=n_flag,
        n_events=n_windows,
        n_events_found=len(found),
        n_predicted_events=n_pred,
    )


def compare(evals: dict[str, Evaluation]) -> pd.DataFrame:
    """Side-by-side table: one row per named evaluation, one column per metric."""
    return pd.DataFrame({name: e.to_dict() for name, e in evals.items()}).T
