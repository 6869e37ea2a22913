"""What the Detect chart shows: one asset of a stored run with the sensors worth looking at."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pandas as pd

from core import store
from core.detect.runs import ALARM_LINE, RunSummary, get_run, run_events, run_scores
from core.errors import ConfigError
from core.types import DatasetInfo


@dataclass(frozen=True)
class RunView:
    """One asset of a run, ready to draw: a few sensors, the score, events, off stretches, truth."""

    run: RunSummary
    asset: str
    sensors: list[str]
    readings: pd.DataFrame
    scores: pd.DataFrame
    threshold: float | None
    events: pd.DataFrame
    truth: pd.DataFrame


def suggested_sensors(info: DatasetInfo, events: pd.DataFrame, max_sensors: int = 3) -> list[str]:
    """The sensors events blame most often (then the dataset's first ones) - what to look at."""
    counts: dict[str, int] = {}
    for names in events.get("top_sensors", []):
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    ranked = sorted((s for s in counts if s in info.sensors), key=lambda s: -counts[s])
    rest = [s for s in info.sensors if s not in ranked]
    return (ranked + rest)[:max_sensors]


def run_view(
    con: duckdb.DuckDBPyConnection,
    run_id: int,
    asset: str | None = None,
    sensors: Sequence[str] | None = None,
    max_sensors: int = 3,
) -> RunView:
    """Everything the detection chart of one asset needs, in one call."""
    run = get_run(con, run_id)
    info = store.get_dataset(con, run.dataset_id)
    asset = asset if asset is not None else run.assets[0]
    if asset not in run.assets:
        raise ConfigError(f"Run #{run.id} did not score asset {asset!r}.")
    events = run_events(con, run_id, asset=asset)
    chosen = list(sensors) if sensors else suggested_sensors(info, events, max_sensors)
    readings = store.read_readings(con, info, asset=asset, sensors=chosen)
    truth = store.read_ground_truth(con, info.id) if info.has_ground_truth else pd.DataFrame()
    if not truth.empty:
        truth = truth[truth["asset"] == asset].reset_index(drop=True)
    return RunView(
        run=run,
        asset=asset,
        sensors=chosen,
        readings=readings,
        scores=run_scores(con, run_id, asset=asset),
        threshold=ALARM_LINE,
        events=events,
        truth=truth,
    )
