"""What appending a day of readings costs, by the history it is scored with.

    python bench/bench_append.py                   # 3 pumps, 30 days at one-minute steps, 3 repeats
    python bench/bench_append.py --days 60 --repeats 1 --spreads 0

A batch is scored with `core.learn.batches.HISTORY` of readings before it, so its scores are
those a full re-score would give (the lift reads 5 days of scores, built on 5-day re-centred
features). Per history (6 days, before the lift; 16, now), the median seconds of appending one
day to a fresh copy of the same workspace, beside re-scoring the whole dataset with the same model
(the baseline, in the same run), and whether the appended scores match the full re-score's. The
plant trains on its first day and ages by ``--spreads`` robust spreads (`core.synth.ageing`), so
the lift and the spread factor are at work where the history matters.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import store  # noqa: E402
from core.detect.runs import RunConfig, TrainingWindow, execute_run, run_model  # noqa: E402
from core.learn import batches  # noqa: E402
from core.synth.ageing import aged  # noqa: E402
from core.synth.demo import DemoPlant, generate_plant, store_plant  # noqa: E402
from core.types import ASSET, TS  # noqa: E402

BATCH_ROWS = 1_440
"""One day at one-minute steps per asset."""


def split(plant: DemoPlant) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plant without its last day per asset, and that day."""
    head, tail = [], []
    for _, rows in plant.readings.groupby(ASSET, sort=False):
        rows = rows.sort_values(TS)
        head.append(rows.iloc[:-BATCH_ROWS])
        tail.append(rows.iloc[-BATCH_ROWS:])
    return pd.concat(head, ignore_index=True), pd.concat(tail, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--assets", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--spreads", type=float, default=1.0, help="ageing by the last row")
    args = parser.parse_args()
    plant = generate_plant(seed=5, n_assets=args.assets, rows_per_asset=args.days * 1_440)
    plant = aged(plant, 1_440, args.spreads) if args.spreads else plant
    head, tail = split(plant)
    work = Path(tempfile.mkdtemp(prefix="vigil_append_"))
    try:
        base = work / "base.duckdb"
        con = store.open_workspace(base)
        info = store_plant(con, DemoPlant(head, plant.faults.iloc[:0], plant.machine_off), "p", 5)
        run = execute_run(con, RunConfig(info.id, training=TrainingWindow("first_rows", 1_440)))
        con.close()
        batch = work / "day.csv"
        tail.rename(columns={TS: "timestamp"}).to_csv(batch, index=False)
        rows = []
        for days in (6, 16):
            batches.HISTORY = pd.Timedelta(days=days)
            seconds, gap = [], np.nan
            for k in range(args.repeats):
                copy = work / f"h{days}_{k}.duckdb"
                shutil.copy(base, copy)
                con = store.open_workspace(copy)
                started = time.perf_counter()
                batches.append_batch(con, info.id, batch)
                seconds.append(time.perf_counter() - started)
                if k == 0:
                    gap = _gap_to_full(con, info.id, run.id)
                con.close()
            rows.append({"history_days": days, "seconds": statistics.median(seconds), "gap": gap})
        con = store.open_workspace(work / f"h16_{0}.duckdb")
        full = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            _full_scores(con, info.id, run.id)
            full.append(time.perf_counter() - started)
        con.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = pd.DataFrame(rows)
    out["vs_full_rescore"] = out["seconds"] / statistics.median(full)
    print(
        f"{args.assets} assets x {args.days} days, one day appended; full re-score "
        f"{statistics.median(full):.2f} s (median of {args.repeats})"
    )
    print(out.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("gap: largest |appended score - full re-score| over the batch's rows")


def _full_scores(con, dataset_id: int, run_id: int) -> pd.DataFrame:
    """The whole dataset re-scored with the run's model (the baseline)."""
    info = store.get_dataset(con, dataset_id)
    return run_model(con, run_id).score(store.read_readings(con, info)).frame


def _gap_to_full(con, dataset_id: int, run_id: int) -> float:
    """Largest difference between the batch's stored scores and a full re-score's."""
    stored = store.read_run_scores(con, run_id)
    full = _full_scores(con, dataset_id, run_id)
    last = full.groupby(ASSET)[TS].transform(lambda t: t >= t.sort_values().iloc[-BATCH_ROWS])
    both = full[last.to_numpy(dtype=bool)].merge(stored, on=[TS, ASSET], suffixes=("", "_s"))
    return float(np.max(np.abs(both["score"].to_numpy() - both["score_s"].to_numpy())))


if __name__ == "__main__":
    main()
