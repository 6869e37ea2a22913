"""A test copy of a dataset with realistic faults injected: ground truth where none exists.

Failures are rare and labels scarce, so a user's own normal data gets faults of known kind,
place and size (`core.synth.faults`), stored as a new dataset with its ground truth. Detectors run on
the copy are graded like on the demo plant (`core.detect.evaluation`): which kinds they find, how many
false alarms. The source dataset is never changed. Faults stay clear of machine stops, of the
analysts' confirmed and unsure labels (real anomalies) and of ground truth already there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.detect.evaluation import label_points
from core.detect.machine_state import detect_machine_off
from core.errors import ConfigError
from core.labels import history as labels
from core.synth.demo import frame_sha256
from core.synth.faults import check_seed, inject_faults
from core.types import ASSET, TS, DatasetInfo

MAX_FAULTS_PER_ASSET = 50
MAX_FAULTY_SHARE = 0.1
"""At most this share of an asset's rows may be faulty: detectors are graded on telling faults
from normal operation, so most of the copy must stay normal (the demo plant: about 3%)."""
STOP_MARGIN = pd.Timedelta(minutes=30)
"""Quiet time kept around machine stops: a fault right at a restart would be a start-up."""


def inject_into_dataset(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    n_faults: int = 6,
    kinds: Sequence[str] | None = None,
    seed: int = 0,
    name: str | None = None,
) -> DatasetInfo:
    """Store a copy of the dataset with ``n_faults`` faults per asset and their ground truth.

    Raises ConfigError for a bad request and DataError when the data has no room for the faults;
    nothing is written then.
    """
    if not 1 <= n_faults <= MAX_FAULTS_PER_ASSET:
        raise ConfigError(
            f"Faults per asset must be between 1 and {MAX_FAULTS_PER_ASSET}. Got {n_faults}."
        )
    check_seed(seed)
    info = store.get_dataset(con, dataset_id)
    frame = store.read_readings(con, info)
    protect = _protected_stretches(con, info, frame)
    result = inject_faults(
        frame, info.sensors, kinds=kinds, n_faults=n_faults, seed=seed, protect=protect
    )
    _check_share(frame, result.faults, n_faults)
    faults = result.faults
    if info.has_ground_truth:
        faults = pd.concat([store.read_ground_truth(con, info.id), faults], ignore_index=True)
    chosen = ", ".join(sorted(set(result.faults["kind"])))
    note = (
        f"Copy of {info.name!r} with {len(result.faults)} injected faults ({chosen}; seed {seed}) "
        "stored as ground truth."
    )
    wanted = (name or "").strip() or f"{info.name} + {n_faults} faults per asset"
    source = f"{info.source_file} (faults injected, seed {seed})"
    return store_copy(con, info, result.readings, faults, wanted, source, note)


def store_copy(
    con: duckdb.DuckDBPyConnection,
    info: DatasetInfo,
    readings: pd.DataFrame,
    faults: pd.DataFrame,
    name: str,
    source_file: str,
    note: str,
) -> DatasetInfo:
    """Store ``readings`` (the source's ts, assets and sensors) as a new dataset beside
    ``info`` with ``faults`` as its ground truth, all or nothing; ``note`` says what it is."""
    copy = replace(
        info,
        id=store.next_dataset_id(con),
        name=name,
        table_name="",
        source_file=source_file,
        sha256=frame_sha256(readings),
        loaded_at=datetime.now(),
        quality=replace(info.quality, notes=[*info.quality.notes, note]),
        has_ground_truth=len(faults) > 0,
    )
    copy = replace(copy, table_name=store.readings_table_name(copy.id))
    return store.with_unique_name(
        lambda: store.add_dataset_from_frame(
            con, replace(copy, name=store.unique_dataset_name(con, name)), readings, faults
        )
    )


def _check_share(frame: pd.DataFrame, faults: pd.DataFrame, n_faults: int) -> None:
    """Refuse a copy whose faults would cover more than `MAX_FAULTY_SHARE` of an asset."""
    faulty = pd.Series(label_points(frame, faults)[0]).groupby(frame[ASSET].to_numpy()).mean()
    worst = faulty.idxmax()
    if faulty[worst] > MAX_FAULTY_SHARE:
        raise ConfigError(
            f"{n_faults} faults per asset would make {faulty[worst]:.0%} of asset {worst!r} "
            f"faulty (at most {MAX_FAULTY_SHARE:.0%} keeps the copy mostly normal): ask for "
            "fewer faults or copy a longer dataset."
        )


def _protected_stretches(
    con: duckdb.DuckDBPyConnection, info: DatasetInfo, frame: pd.DataFrame
) -> pd.DataFrame:
    """Where no fault may go: machine stops (with a margin), real anomalies the analysts marked
    (confirmed or unsure labels) and faults already in the ground truth."""
    parts = [_stops(frame, info.sensors)]
    marked = labels.current_labels(con, info.id)
    if len(marked):
        real = marked[marked["verdict"].isin(["confirmed", "unsure"])]
        parts.append(real.rename(columns={"start_ts": "start", "end_ts": "end"}))
    if info.has_ground_truth:
        parts.append(store.read_ground_truth(con, info.id))
    spans = pd.concat([p[[ASSET, "start", "end"]] for p in parts], ignore_index=True)
    spans[ASSET] = spans[ASSET].astype(str)
    return spans


def _stops(frame: pd.DataFrame, sensors: list[str]) -> pd.DataFrame:
    """Machine-off stretches per asset, widened by `STOP_MARGIN`."""
    off = detect_machine_off(frame, sensors)
    if not off.any():
        return pd.DataFrame(columns=[ASSET, "start", "end"])
    asset = frame[ASSET].astype(str).to_numpy()
    edge = np.r_[True, (off[1:] != off[:-1]) | (asset[1:] != asset[:-1])]
    run = np.cumsum(edge)
    stops = (
        frame[off]
        .assign(run=run[off])
        .groupby("run")
        .agg(asset=(ASSET, "first"), start=(TS, "min"), end=(TS, "max"))
    )
    return stops.assign(start=stops["start"] - STOP_MARGIN, end=stops["end"] + STOP_MARGIN)
