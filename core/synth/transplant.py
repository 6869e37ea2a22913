"""Faults learnt from confirmed events: the shape of a real fault, moved into normal operation.

Textbook faults (`core.synth.faults`) are guesses at what goes wrong; an event an analyst confirmed
is what did. Its *shape* is the deviation of each involved sensor from what the asset's other
sensors say it should read (a least-squares fit on the asset's normal rows), relative to the
stretch just before and after it. Like inpainting a lesion into a healthy image, the shape is
added to a normal stretch of the same or a sister asset, scaled by the ratio of the sensor's
robust spread there and here (the target's operating level) and faded in and out at the edges.
Each transplant gets ground truth naming the event it came from, so detectors can be graded on
real faults in one click.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from core import store
from core.detect.evaluation import label_points
from core.detect.machine_state import detect_machine_off
from core.errors import DataError
from core.labels import history as labels
from core.synth.fault_copy import store_copy
from core.synth.faults import FAULT_COLUMNS, robust_spread
from core.types import ASSET, TS, DatasetInfo

CONTEXT_ROWS = 30
"""Rows before and after an event that say where its sensors would have been without it."""
MARGIN_ROWS = 30
"""Normal rows kept between a transplant and anything marked, stopped or transplanted."""
INVOLVED_SPREADS = 3.0
"""Without sensors named on the label, a sensor is involved when it deviates this far."""
_FIT_ROWS = 20_000


@dataclass(frozen=True)
class FaultShape:
    """What one event did to its sensors: deviation per row (rows x sensors) and their spreads."""

    asset: str
    sensors: list[str]
    deviation: np.ndarray
    spread: np.ndarray
    kind: str
    origin: str


def _asset_rows(frame: pd.DataFrame, asset: str) -> np.ndarray:
    rows = np.flatnonzero(frame[ASSET].astype(str).to_numpy() == asset)
    return rows[np.argsort(frame[TS].to_numpy()[rows], kind="stable")]


def fault_shape(
    frame: pd.DataFrame,
    sensors: list[str],
    normal: np.ndarray,
    asset: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    involved: list[str] | None = None,
    kind: str = "transplant",
    origin: str = "",
) -> FaultShape:
    """The deviation of ``asset`` over [start, end] from its normal behaviour, per involved
    sensor (the label's sensors, else those that deviate more than `INVOLVED_SPREADS`)."""
    rows = _asset_rows(frame, asset)
    ts = frame[TS].to_numpy(dtype="datetime64[ns]")[rows]
    a = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(start), "ns"), "left"))
    b = int(np.searchsorted(ts, np.datetime64(pd.Timestamp(end), "ns"), "right"))
    if b <= a:
        raise DataError(f"The event on {asset!r} from {start} to {end} holds no readings.")
    values = frame[sensors].to_numpy(dtype=np.float64)[rows]
    good = normal[rows] & np.isfinite(values).all(axis=1)
    if good.sum() < 2 * len(sensors) + 10:
        raise DataError(f"Asset {asset!r} has too few normal rows to tell a fault's shape.")
    spread = np.array([robust_spread(values[good, j]) for j in range(len(sensors))])
    deviation = np.column_stack([_deviation(values, good, j, a, b) for j in range(len(sensors))])
    names = list(involved or [])
    if not names:
        size = np.nanmax(np.abs(deviation), axis=0) / np.where(spread > 0, spread, np.inf)
        names = [s for s, z in zip(sensors, size, strict=True) if z > INVOLVED_SPREADS]
        names = names or [sensors[int(np.nanargmax(size))]]
    cols = [sensors.index(s) for s in names]
    return FaultShape(asset, names, deviation[:, cols], spread[cols], kind, origin)


def _deviation(values: np.ndarray, good: np.ndarray, j: int, a: int, b: int) -> np.ndarray:
    """Sensor j over rows a..b minus what the other sensors predict, less the same misfit just
    before and after (a straight line between the two), so only the fault remains."""
    others = [k for k in range(values.shape[1]) if k != j]
    fit = np.flatnonzero(good)
    fit = fit[:: max(1, fit.size // _FIT_ROWS)]
    design = np.column_stack([np.ones(len(values)), np.nan_to_num(values[:, others])])
    coef = np.linalg.lstsq(design[fit], values[fit, j], rcond=None)[0]
    misfit = values[:, j] - design @ coef
    before = misfit[max(0, a - CONTEXT_ROWS) : a]
    after = misfit[b : b + CONTEXT_ROWS]
    lo = np.nanmean(before) if before.size else (np.nanmean(after) if after.size else 0.0)
    hi = np.nanmean(after) if after.size else lo
    base = np.linspace(lo, hi, b - a) if b - a > 1 else np.array([lo])
    return np.nan_to_num(misfit[a:b] - base)


def taper(n: int) -> np.ndarray:
    """Fade in and out over a tenth of the stretch (none for a spike of a few rows)."""
    edge = n // 10
    if edge < 1:
        return np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, edge + 1) / (edge + 1))
    out = np.ones(n)
    out[:edge], out[n - edge :] = ramp, ramp[::-1]
    return out


def apply_shape(
    frame: pd.DataFrame, shape: FaultShape, asset: str, first: int, gain: np.ndarray
) -> dict:
    """Add ``shape`` to ``frame`` (in place) on ``asset`` from its ``first`` row; the record."""
    rows = _asset_rows(frame, asset)[first : first + len(shape.deviation)]
    delta = shape.deviation * gain * taper(len(rows))[:, None]
    for k, sensor in enumerate(shape.sensors):
        col = frame.columns.get_loc(sensor)
        frame.iloc[rows, col] = frame.iloc[rows, col].to_numpy(dtype=np.float64) + delta[:, k]
    size = np.abs(shape.deviation).max(axis=0) / np.where(shape.spread > 0, shape.spread, 1.0)
    return {
        "asset": asset,
        "start": frame[TS].iloc[rows[0]],
        "end": frame[TS].iloc[rows[-1]],
        "kind": shape.kind,
        "sensors": list(shape.sensors),
        "magnitude": round(float(size.max()), 3),
        "description": f"Transplanted from {shape.origin}",
    }


def _free_start(free: np.ndarray, length: int, rng: np.random.Generator) -> int | None:
    """A random start whose stretch and margins are all free, or None."""
    width = length + 2 * MARGIN_ROWS
    padded = np.concatenate([np.zeros(MARGIN_ROWS, bool), free, np.zeros(MARGIN_ROWS, bool)])
    cs = np.concatenate([[0], np.cumsum(padded)])
    if len(cs) <= width:
        return None
    starts = np.flatnonzero(cs[width:] - cs[:-width] == width)
    return int(rng.choice(starts)) if starts.size else None


def known_faults(con: duckdb.DuckDBPyConnection, info: DatasetInfo) -> pd.DataFrame:
    """asset, start, end of every known fault: ground truth and labels an analyst confirmed or
    was unsure about (real anomalies)."""
    parts = [pd.DataFrame(columns=[ASSET, "start", "end"])]
    if info.has_ground_truth:
        parts.append(store.read_ground_truth(con, info.id)[[ASSET, "start", "end"]])
    current = labels.current_labels(con, info.id)
    real = current[current["verdict"].isin(["confirmed", "unsure"])]
    if len(real):
        parts.append(
            real.rename(columns={"start_ts": "start", "end_ts": "end"})[[ASSET, "start", "end"]]
        )
    spans = pd.concat([p for p in parts if len(p)] or parts, ignore_index=True)
    spans[ASSET] = spans[ASSET].astype(str)
    return spans


def normal_rows(
    con: duckdb.DuckDBPyConnection, info: DatasetInfo, frame: pd.DataFrame
) -> np.ndarray:
    """Rows that are normal operation: running, outside ground truth and outside every label
    an analyst confirmed or was unsure about."""
    known = known_faults(con, info)
    marked = label_points(frame, known)[0] if len(known) else np.zeros(len(frame), bool)
    return ~marked & ~detect_machine_off(frame, info.sensors)


def confirmed_kinds(con: duckdb.DuckDBPyConnection, dataset_id: int) -> list[str]:
    """The kinds of the dataset's confirmed events (what can be transplanted), sorted."""
    current = labels.current_labels(con, dataset_id)
    kinds = current.loc[current["verdict"] == "confirmed", "kind"].dropna()
    return sorted({str(k) for k in kinds if str(k).strip()})


def transplant_confirmed(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    kind: str | None = None,
    target: str | None = None,
    seed: int = 0,
    name: str | None = None,
) -> DatasetInfo:
    """Store a copy of the dataset with every confirmed event (of ``kind``) transplanted into a
    normal stretch of ``target`` (default: the event's own asset), with ground truth naming
    the event. Nothing is written when there is no such event or no room for one."""
    info = store.get_dataset(con, dataset_id)
    if target is not None and target not in info.assets:
        raise DataError(f"Dataset {info.name!r} has no asset {target!r}.")
    current = labels.current_labels(con, info.id)
    events = current[current["verdict"] == "confirmed"]
    if kind:
        events = events[events["kind"].fillna("") == kind]
    if events.empty:
        what = f"of kind {kind!r} " if kind else ""
        raise DataError(
            f"Dataset {info.name!r} has no confirmed events {what}to transplant; confirm some "
            "on Triage first."
        )
    frame = store.read_readings(con, info)
    normal = normal_rows(con, info, frame)
    out = frame.copy()
    for sensor in info.sensors:
        out[sensor] = out[sensor].astype("float64")
    rng = np.random.default_rng(seed)
    free = normal.copy()
    records = []
    for event in events.sort_values("start_ts").itertuples():
        involved = [s for s in (event.sensors or []) if s in info.sensors]
        origin = f"confirmed event #{event.label_id} on {event.asset} at {event.start_ts}"
        shape = fault_shape(
            frame,
            info.sensors,
            normal,
            event.asset,
            event.start_ts,
            event.end_ts,
            involved,
            event.kind or "transplant",
            origin,
        )
        goal = target or event.asset
        rows = _asset_rows(frame, goal)
        first = _free_start(free[rows], len(shape.deviation), rng)
        if first is None:
            raise DataError(
                f"No normal stretch of {len(shape.deviation)} rows is left in asset {goal!r} "
                f"for {origin}: transplant fewer events or into a longer dataset."
            )
        free[rows[max(0, first - MARGIN_ROWS) : first + len(shape.deviation) + MARGIN_ROWS]] = False
        values = frame[shape.sensors].to_numpy(dtype=np.float64)[rows]
        here = np.array([robust_spread(values[normal[rows], k]) for k in range(len(shape.sensors))])
        gain = np.where(shape.spread > 0, here / np.where(shape.spread > 0, shape.spread, 1), 1)
        records.append(apply_shape(out, shape, goal, first, gain))
    faults = pd.DataFrame.from_records(records, columns=FAULT_COLUMNS)
    if info.has_ground_truth:
        faults = pd.concat([store.read_ground_truth(con, info.id), faults], ignore_index=True)
    what = f"{len(records)} confirmed {kind + ' ' if kind else ''}event(s)"
    note = f"Copy of {info.name!r} with {what} transplanted (seed {seed}), stored as ground truth."
    wanted = (name or "").strip() or f"{info.name} + {what} transplanted"
    source = f"{info.source_file} (confirmed events transplanted, seed {seed})"
    return store_copy(con, info, out, faults, wanted, source, note)
