"""Where the learned model still errs, and how far labels alone could take it.

    python bench/bench_learning_errors.py                 # seeds 201-206, 2 rounds of 5 labels

Same protocol as bench_learning.py (a simulated analyst labels the suggested events from the
ground truth, retrains, promotes when proposed). After the last round, on the graded rows
(after the training window, machine running) of the newest version:

- ``f1``: its point F1; ``ceiling_f1``: the same flags, but exactly right on every row a label
  covers (with its reviewed context) -- what a model that memorised every verdict would score;
- ``missed_onset``: share of missed fault rows in the first 20% of their fault, and
  ``missed_drift``: share in drift faults;
- ``false_tail``: share of false-alarm rows within 30 min after a fault ends.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_learning import analyst_round  # noqa: E402

from core import store  # noqa: E402
from core.detect.evaluation import label_points as truth_points  # noqa: E402
from core.detect.runs import RunConfig, TrainingWindow, execute_run, training_mask  # noqa: E402
from core.labels import history as labels
from core.labels.points import label_points  # noqa: E402
from core.synth.demo import load_demo  # noqa: E402
from core.types import ASSET, TS  # noqa: E402

TAIL = np.timedelta64(30, "m")


def f1(flag: np.ndarray, truth: np.ndarray) -> float:
    tp = int((flag & truth).sum())
    return 2 * tp / max(int(flag.sum()) + int(truth.sum()), 1)


def errors(seed: int, rows: int, rounds: int, per_round: int, folder: Path) -> dict:
    con = store.open_workspace(folder / f"errors_{seed}.duckdb")
    info = load_demo(con, seed=seed, rows_per_asset=rows)
    truth = store.read_ground_truth(con, info.id)
    run_id = execute_run(con, RunConfig(info.id)).id
    for _ in range(rounds):
        result = analyst_round(con, info.id, run_id, truth, per_round)
        run_id = result.version.run_id if result is not None else run_id
    scores = store.read_run_scores(con, run_id)
    covered = label_points(scores, labels.current_labels(con, info.id), info.interval_seconds)
    con.close()
    graded = ~training_mask(scores, TrainingWindow()) & ~scores["is_off"].to_numpy(bool)
    is_fault, window = truth_points(scores, truth)
    flag = scores["is_anomaly"].to_numpy(bool)
    perfect = np.where(covered.group >= 0, is_fault, flag)
    ts, asset = scores[TS].to_numpy(), scores[ASSET].astype(str).to_numpy()
    starts = truth["start"].to_numpy("datetime64[ns]")
    ends = truth["end"].to_numpy("datetime64[ns]")
    missed = is_fault & ~flag & graded
    k = window[missed]
    span = np.maximum((ends[k] - starts[k]).astype(np.int64), 1)
    onset = (ts[missed] - starts[k]).astype(np.int64) / span < 0.2
    drift = truth["kind"].to_numpy()[k] == "drift"
    false = ~is_fault & flag & graded
    tail = np.zeros(len(ts), dtype=bool)
    for f in truth.itertuples():
        end = np.datetime64(pd.Timestamp(f.end), "ns")
        tail |= (asset == f.asset) & (ts > end) & (ts <= end + TAIL)
    return {
        "seed": seed,
        "labels": len(covered.verdict),
        "f1": f1(flag[graded], is_fault[graded]),
        "ceiling_f1": f1(perfect[graded], is_fault[graded]),
        "missed_rows": int(missed.sum()),
        "missed_onset": float(onset.mean()) if len(k) else 0.0,
        "missed_drift": float(drift.mean()) if len(k) else 0.0,
        "false_rows": int(false.sum()),
        "false_tail": float((false & tail).sum() / max(false.sum(), 1)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[201, 202, 203, 204, 205, 206])
    parser.add_argument("--rows", type=int, default=20_000, help="rows per asset")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-round", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        table = pd.DataFrame(
            [errors(s, args.rows, args.rounds, args.per_round, Path(folder)) for s in args.seeds]
        )
    pd.set_option("display.width", 140)
    print(table.round(3).to_string(index=False))
    pooled_onset = (table["missed_onset"] * table["missed_rows"]).sum() / table["missed_rows"].sum()
    pooled_drift = (table["missed_drift"] * table["missed_rows"]).sum() / table["missed_rows"].sum()
    pooled_tail = (table["false_tail"] * table["false_rows"]).sum() / table["false_rows"].sum()
    print(
        f"\nMean F1 {table['f1'].mean():.3f}; exactly right on every labelled row: "
        f"{table['ceiling_f1'].mean():.3f}. Missed fault rows: {pooled_onset:.0%} in the first "
        f"20% of their fault, {pooled_drift:.0%} in drifts. False-alarm rows: {pooled_tail:.0%} "
        "within 30 min after a fault ends."
    )


if __name__ == "__main__":
    main()
