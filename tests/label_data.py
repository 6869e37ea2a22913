"""Toy labelling data shared by the label, triage, import/export and page tests: a small wide
dataset, a stored run with chosen events, label drafts, and the workspace fixtures."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from core import store
from core.detect.runs import RunSummary, TrainingWindow
from core.labels.history import LabelDraft
from core.types import DatasetInfo, QualityReport

T0 = datetime(2026, 1, 1)
SENSORS = ["temp", "flow", "vib"]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def make_dataset(con, assets=("p1", "p2"), n: int = 600, seed: int = 0) -> DatasetInfo:
    """A small wide dataset: one row a minute per asset, three noisy sensors."""
    rng = np.random.default_rng(seed)
    parts = []
    for asset in assets:
        part = pd.DataFrame({"ts": pd.date_range(T0, periods=n, freq="1min"), "asset": asset})
        for s in SENSORS:
            part[s] = rng.normal(size=n)
        parts.append(part)
    return store_frame(con, pd.concat(parts, ignore_index=True))


def store_frame(con, frame: pd.DataFrame, name: str = "toy") -> DatasetInfo:
    """Store a wide frame (ts, asset, sensors; one row a minute from T0) as a dataset."""
    sensors = [c for c in frame.columns if c not in ("ts", "asset")]
    ds_id = store.next_dataset_id(con)
    info = DatasetInfo(
        id=ds_id,
        name=store.unique_dataset_name(con, name),
        table_name=store.readings_table_name(ds_id),
        source_file=f"{name}.csv",
        sha256="0" * 64,
        layout="wide",
        n_rows=len(frame),
        sensors=sensors,
        assets=sorted(frame["asset"].unique()),
        time_start=T0,
        time_end=frame["ts"].max().to_pydatetime(),
        interval_seconds=60.0,
        loaded_at=datetime(2026, 2, 1),
        quality=QualityReport(n_rows=len(frame)),
    )
    return store.add_dataset_from_frame(con, info, frame)


def make_run(con, info: DatasetInfo, events: list[dict], threshold: float = 0.5) -> int:
    """Store a run with the given events (asset, start/end minutes, severity, top sensors)."""
    run_id = store.next_run_id(con)
    scores = store.read_readings(con, info, sensors=[])[["ts", "asset"]]
    scores = scores.assign(score=0.1, is_anomaly=False, is_off=False)
    rows = []
    for i, e in enumerate(events, start=1):
        rows.append(
            {
                "event_id": i,
                "asset": e["asset"],
                "start": at(e["start"]),
                "end": at(e["end"]),
                "peak_ts": at(e["start"]),
                "peak_score": e.get("score", 1.0),
                "duration_s": (e["end"] - e["start"]) * 60.0,
                "n_points": e["end"] - e["start"] + 1,
                "severity": e.get("severity", 1.0),
                "top_sensors": e.get("sensors", ["temp"]),
                "sensor_scores": {s: 1.0 for s in e.get("sensors", ["temp"])},
            }
        )
    summary = RunSummary(
        id=run_id,
        dataset_id=info.id,
        assets=list(info.assets),
        detector="toy",
        detector_used="toy",
        params={},
        training=TrainingWindow(),
        threshold_quantile=None,
        thresholds={a: threshold for a in info.assets},
        status="completed",
        created_at=datetime.now(),
        duration_s=0.0,
        n_scores=len(scores),
        n_events=len(rows),
        versions={},
        evaluation=None,
    )
    store.save_run(con, summary.to_record(), scores, pd.DataFrame(rows))
    return run_id


EVENTS = [
    {"asset": "p1", "start": 100, "end": 110, "severity": 3.0, "sensors": ["temp", "flow"]},
    {"asset": "p1", "start": 300, "end": 305, "severity": 1.0, "score": 0.7},
    {"asset": "p2", "start": 200, "end": 240, "severity": 2.0, "sensors": ["vib"], "score": 2.0},
]


def draft(**kw) -> LabelDraft:
    base = {"asset": "p1", "start": at(10), "end": at(20), "verdict": "confirmed", "kind": "spike"}
    return LabelDraft(**{**base, **kw})
