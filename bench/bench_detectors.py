"""Detection quality of every detector on held-out demo plants and on real NAB data.

    python bench/bench_detectors.py                 # report seeds 101-105 (never tuned on)
    python bench/bench_detectors.py --seeds 1 2 3   # the tuning seeds
    python bench/bench_detectors.py --detectors auto pca --no-nab

Protocol: for each plant, each asset trains on its first 30% of rows (which may contain faults:
detectors must be robust to them) and the whole series is scored; metrics pool all assets and
plants. NAB machine temperature (one sensor, 5-minute samples): train on the first 30% (it holds
two of the four labelled anomalies) and score everything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.detect.detectors.registry import DETECTORS  # noqa: E402
from core.detect.evaluation import Evaluation, compare, evaluate  # noqa: E402
from core.detect.model import AnomalyModel  # noqa: E402
from core.synth.demo import generate_plant  # noqa: E402
from core.types import ASSET, TS  # noqa: E402

NAB_DIR = Path("/work/shared/data/nab")
TRAIN_SHARE = 0.3
COLUMNS = {
    "f1": "F1",
    "precision": "prec",
    "recall": "recall",
    "event_recall": "ev_recall",
    "event_precision": "ev_prec",
    "false_alarm_rate": "false_alarm",
    "pr_auc": "PR-AUC",
    "median_delay_s": "delay_med_s",
    "point_adjusted_f1": "PA-F1",
    "fit_score_s": "seconds",
}


def train_slice(readings: pd.DataFrame, share: float = TRAIN_SHARE) -> pd.DataFrame:
    """The first ``share`` of every asset's rows, in time order."""
    rank = readings.groupby(ASSET)[TS].rank(method="first", pct=True)
    return readings[rank <= share]


def run_plants(name: str, seeds: list[int], rows: int, **model_kw) -> tuple[Evaluation, float]:
    """Fit+score every seed's plant with one detector; evaluate all plants pooled."""
    scored, truths, seconds = [], [], 0.0
    for seed in seeds:
        plant = generate_plant(seed=seed, rows_per_asset=rows)
        start = time.perf_counter()
        model = AnomalyModel(detector=name, **model_kw).fit(train_slice(plant.readings))
        result = model.score(plant.readings)
        seconds += time.perf_counter() - start
        tag = f"s{seed}:"
        scored.append(result.frame.assign(asset=tag + result.frame[ASSET]))
        truths.append(plant.faults.assign(asset=tag + plant.faults[ASSET].astype(str)))
    return evaluate(pd.concat(scored), pd.concat(truths)), seconds / len(seeds)


def load_nab() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = pd.read_csv(NAB_DIR / "machine_temperature_system_failure.csv")
    data = data.rename(columns={"timestamp": TS})
    data[TS] = pd.to_datetime(data[TS])
    windows = json.loads((NAB_DIR / "anomaly_windows.json").read_text())
    key = "realKnownCause/machine_temperature_system_failure.csv"
    truth = pd.DataFrame(windows[key], columns=["start", "end"])
    return data, truth


def run_nab(name: str, **model_kw) -> tuple[Evaluation, float]:
    data, truth = load_nab()
    start = time.perf_counter()
    model = AnomalyModel(detector=name, **model_kw).fit(data.iloc[: int(TRAIN_SHARE * len(data))])
    result = model.score(data)
    seconds = time.perf_counter() - start
    return evaluate(result.frame.drop(columns=[ASSET]), truth), seconds


def table(evals: dict[str, Evaluation], seconds: dict[str, float]) -> str:
    df = compare(evals)
    df["fit_score_s"] = pd.Series(seconds)
    found = {k: f"{e.n_events_found}/{e.n_events}" for k, e in evals.items()}
    df = df[list(COLUMNS)].rename(columns=COLUMNS)
    df.insert(4, "found", pd.Series(found))
    return df.to_string(float_format=lambda v: f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103, 104, 105])
    parser.add_argument("--rows", type=int, default=50_000, help="rows per asset")
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS))
    parser.add_argument("--no-nab", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=1, help="BLAS threads (the bench machine is shared)"
    )
    args = parser.parse_args()
    threadpool_limits(args.threads)

    print(f"Demo plants, seeds {args.seeds}, 3 assets x {args.rows:,} rows, train first 30%")
    evals, secs = {}, {}
    for name in args.detectors:
        evals[name], secs[name] = run_plants(name, args.seeds, args.rows)
        print(f"  {name}: done in {secs[name]:.1f} s per plant", flush=True)
    print(table(evals, secs))
    if not args.no_nab:
        print("\nNAB machine_temperature_system_failure (train first 30%, score all)")
        evals, secs = {}, {}
        for name in args.detectors:
            evals[name], secs[name] = run_nab(name)
        print(table(evals, secs))


if __name__ == "__main__":
    main()
