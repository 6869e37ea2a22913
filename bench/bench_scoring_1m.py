"""End-to-end scoring speed on 1,000,000 rows x 20 sensors, against a bare Isolation Forest.

    python bench/bench_scoring_1m.py [--rows 1000000] [--detector auto]

The data: one demo pump (setpoint steps, stops, faults) whose 10 sensors are each read by a
second, redundant transmitter (own gain, offset and noise): 20 coupled sensors, one asset.
Vigil fits on the first 30% and scores all rows (features + detector + events); the baseline fits
scikit-learn's IsolationForest on the same raw training columns and scores all rows. Peak memory
is the process's maximum resident set size. BLAS runs on one thread unless --threads says more.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.detect.events import extract_events  # noqa: E402
from core.detect.model import AnomalyModel  # noqa: E402
from core.synth.demo import generate_plant  # noqa: E402
from core.types import ASSET, TS  # noqa: E402


def wide_plant(rows: int, seed: int = 11) -> pd.DataFrame:
    """``rows`` x 20 sensors: a demo pump plus a redundant reading of each of its sensors."""
    plant = generate_plant(seed=seed, n_assets=1, rows_per_asset=rows)
    readings = plant.readings.drop(columns=[ASSET])
    rng = np.random.default_rng(seed)
    for name in [c for c in readings.columns if c != TS]:
        x = readings[name].to_numpy()
        spread = float(np.nanstd(x)) or 1.0
        gain, offset = rng.uniform(0.98, 1.02), rng.normal(0.0, 0.01 * spread)
        noise = rng.normal(0.0, 0.02 * spread, len(x))
        readings[f"{name}_b"] = gain * x + offset + noise
    return readings


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--detector", default="auto")
    parser.add_argument(
        "--threads", type=int, default=1, help="BLAS threads (the bench machine is shared)"
    )
    args = parser.parse_args()
    threadpool_limits(args.threads)

    t = time.perf_counter()
    frame = wide_plant(args.rows)
    train = frame.iloc[: int(0.3 * len(frame))]
    sensors = [c for c in frame.columns if c != TS]
    print(f"data: {len(frame):,} rows x {len(sensors)} sensors ({time.perf_counter() - t:.1f} s)")
    base_rss = peak_rss_mb()

    t0 = time.perf_counter()
    model = AnomalyModel(detector=args.detector).fit(train)
    t1 = time.perf_counter()
    result = model.score(frame)
    t2 = time.perf_counter()
    events = extract_events(result, model.interval_seconds_)
    t3 = time.perf_counter()
    vigil = t3 - t0
    print(
        f"vigil {args.detector}: fit {t1 - t0:.1f} s + score {t2 - t1:.1f} s + events "
        f"{t3 - t2:.2f} s = {vigil:.1f} s; {int(result.frame['is_anomaly'].sum()):,} flagged rows, "
        f"{len(events)} events; peak RSS {peak_rss_mb():.0f} MB (data alone {base_rss:.0f} MB)"
    )

    t0 = time.perf_counter()
    forest = IsolationForest(random_state=0, n_jobs=1).fit(train[sensors].to_numpy())
    scores = -forest.score_samples(frame[sensors].to_numpy())
    bare = time.perf_counter() - t0
    print(f"bare IsolationForest fit+score on raw columns: {bare:.1f} s ({np.mean(scores):.3f})")
    print(f"ratio vigil / bare: {vigil / bare:.2f}x; peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
