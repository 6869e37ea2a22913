"""Training coverage: how much of the scored data lies where the training window never went.

A model knows only the operating points its training window held. A pump trained on one day at
one speed calls every later day at another speed anomalous, and no threshold fixes that (on aged
demo plants trained on their first day, assets with 37-75% of their later rows outside the
training ranges flagged 36-81% of them). Saying so, per asset and sensor, tells the analyst why a
run floods and what to do: a longer window, or false alarms taught as normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.detect.machine_state import drive_sensors
from core.detect.operating_range import NEW_MODE_LINE, new_mode_rows, outside, training_ranges
from core.detect.runs import get_run, training_mask
from core.types import ASSET, DEFAULT_ASSET, TS

WARN_SHARE = 0.2
"""An asset with at least this share of its later running rows outside is worth a warning."""
LIFT_SHARE = 0.05
"""An asset with at least this share of its later running rows lifted is worth a warning."""


@dataclass(frozen=True)
class AssetCoverage:
    """One asset: the share of its running rows after training outside the training ranges,
    the share of those the run flagged, and the sensors most often outside (most first)."""

    asset: str
    outside: float
    flagged: float
    sensors: list[str]
    new_mode: float = 0.0
    """Share of those later rows in a new operating mode (`operating_range.new_mode_rows`)."""
    lifted: float = 0.0
    lift: float = 1.0
    """Share of those later rows whose score was divided by the lasting level of the scores
    before them (`windows.lasting_score_lift`), and the largest such divisor."""


def asset_coverage(
    asset: str,
    readings: pd.DataFrame,
    train: np.ndarray,
    off: np.ndarray,
    flags: np.ndarray,
    lift: np.ndarray | None = None,
) -> AssetCoverage:
    """Coverage of one asset's rows (time order); ``train``, ``off``, ``flags`` and ``lift``
    (None: 1) per row."""
    sensors = [c for c in readings.columns if c not in (TS, ASSET)]
    values = readings[sensors].to_numpy(dtype=np.float64)
    known = values[train & ~off]
    later = ~train & ~off
    if len(known) == 0 or not later.any():
        return AssetCoverage(asset, 0.0, 0.0, [])
    lo, hi = training_ranges(known)
    beyond = outside(values[later], lo, hi)
    rows = beyond.any(axis=1)
    share = beyond.mean(axis=0)
    ranked = [sensors[j] for j in np.argsort(-share, kind="stable") if share[j] >= 0.01]
    flagged = float(flags[later][rows].mean()) if rows.any() else 0.0
    drives = np.isin(sensors, drive_sensors(readings[train & ~off], sensors))
    mode = new_mode_rows(values[later], lo, hi, drives)
    lifts = np.ones(int(later.sum())) if lift is None else np.nan_to_num(lift[later], nan=1.0)
    return AssetCoverage(
        asset,
        float(rows.mean()),
        flagged,
        ranked[:3],
        float(mode.mean()),
        float((lifts > 1.0).mean()),
        float(lifts.max(initial=1.0)),
    )


def run_coverage(con: duckdb.DuckDBPyConnection, run_id: int) -> list[AssetCoverage]:
    """Coverage of every asset of a stored run, against the run's own training window."""
    run = get_run(con, run_id)
    info = store.get_dataset(con, run.dataset_id)
    if run.training.kind == "dataset":  # trained on another dataset: no window inside this one
        return []
    readings = store.read_readings(con, info)
    scores = store.read_run_scores(con, run_id)
    frame = scores.merge(readings, on=[TS, ASSET], how="left")
    out = []
    for asset, rows in frame.groupby(ASSET, sort=False):
        rows = rows.sort_values(TS).reset_index(drop=True)
        train = training_mask(rows, run.training)
        off = rows["is_off"].to_numpy(dtype=bool)
        flags = rows["is_anomaly"].to_numpy(dtype=bool)
        sensors = rows[[TS, ASSET, *info.sensors]]
        lift = rows["lift"].to_numpy(dtype=np.float64) if "lift" in rows else None
        out.append(asset_coverage(str(asset), sensors, train, off, flags, lift))
    return out


def split_coverage(
    train: pd.DataFrame, data: pd.DataFrame, scored: pd.DataFrame
) -> list[AssetCoverage]:
    """Coverage of scored ``data`` against a separate ``train`` frame (the CLI's two files);
    ``scored`` is the model's frame for ``data`` (``is_off``, ``is_anomaly``) in its row order."""
    sensors = [c for c in train.columns if c not in (TS, ASSET)]
    left = train.assign(**{ASSET: train.get(ASSET, DEFAULT_ASSET)})[[TS, ASSET, *sensors]]
    right = data.assign(**{ASSET: data.get(ASSET, DEFAULT_ASSET)})[[TS, ASSET, *sensors]]
    off = scored["is_off"].to_numpy(dtype=bool)
    flags = scored["is_anomaly"].to_numpy(dtype=bool)
    lift = scored["lift"].to_numpy(dtype=np.float64) if "lift" in scored else np.ones(len(off))
    out = []
    for asset in pd.unique(right[ASSET].astype(str)):
        mine_train = left[left[ASSET].astype(str) == asset]
        here = (right[ASSET].astype(str) == asset).to_numpy()
        frame = pd.concat([mine_train, right[here]], ignore_index=True)
        known = np.r_[np.ones(len(mine_train), bool), np.zeros(int(here.sum()), bool)]
        pad = np.zeros(len(mine_train), bool)
        ones = np.ones(len(mine_train))
        out.append(
            asset_coverage(
                asset,
                frame,
                known,
                np.r_[pad, off[here]],
                np.r_[pad, flags[here]],
                np.r_[ones, lift[here]],
            )
        )
    return out


def coverage_warning(items: list[AssetCoverage]) -> str | None:
    """What an analyst should know of where the plant went after training: the assets whose
    later data the training window did not cover, and those whose line the lasting level of
    their scores raised (`lift_sentence`)."""
    parts = [p for p in (_outside_sentence(items), lift_sentence(items)) if p]
    return " ".join(parts) if parts else None


def lift_sentence(items: list[AssetCoverage]) -> str | None:
    """The assets whose scores ran above half the line for days, so the run raised their line."""
    lifted = [c for c in items if c.lifted >= LIFT_SHARE]
    if not lifted:
        return None
    parts = [f"{c.asset} on {c.lifted:.0%} of its later rows, up to {c.lift:.1f}x" for c in lifted]
    return (
        "The plant has moved on from training: scores ran above half the alarm line for days, "
        "so the line was raised with them ("
        + "; ".join(parts)
        + "). Only what stands out from those days alarms there; retrain on a recent window "
        "to judge it against normal again."
    )


def _outside_sentence(items: list[AssetCoverage]) -> str | None:
    poor = [c for c in items if c.outside >= WARN_SHARE]
    if not poor:
        return None
    parts = [
        f"{c.asset}: {c.outside:.0%} of its later rows"
        + (f" ({', '.join(c.sensors)})" if c.sensors else "")
        + f", {c.flagged:.0%} of them flagged"
        + (f", {c.new_mode:.0%} in a new operating mode" if c.new_mode >= 0.005 else "")
        for c in poor
    ]
    modes = any(c.new_mode >= 0.005 for c in poor)
    return (
        "The training window did not cover where the plant went later: "
        + "; ".join(parts)
        + ". The model cannot know those operating points are normal: train on a longer window, "
        "or call its false alarms so on Triage and retrain with false alarms as normal data."
        + (
            " In a new operating mode (the drive and its coupled sensors all beyond training) "
            f"only departures past {NEW_MODE_LINE:g} times the alarm line alarm."
            if modes
            else ""
        )
    )
