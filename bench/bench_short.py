"""Very short recordings: train on the first 400 rows, score the rest (issue 13's pump rig).

    python bench/bench_short.py                          # every detector, 32 rig recordings, TEP
    python bench/bench_short.py --detectors auto --recordings 8 --no-tep

The rig of issue 13 (a water pump, 8 sensors at 1 Hz, ~1,100-row recordings with one valve or
cavitation fault each, trained on the first 400 rows) is not on this machine: `short_data` makes
look-alikes and says what they are and are not. Figures here compare detectors with each other and
with two baselines measured in the same run, never with the rig's published ones.

Metrics, on rows after the training window (rows the features cannot judge yet count as not
flagged, as the app shows them), pooled over recordings: false-alarm rate on normal rows, point
precision, recall and F1, and ROC-AUC of the raw score (pooled; every score here is in units of
its own alarm line, so pooling is fair). Baselines: PCA T²+SPE at 99% on standardised raw values
(`real_data.ClassicalPCA`) and a static robust z on raw values (median/MAD of training, alarm
when the largest |z| over sensors passes 3).

TEP shortened: train on the first 400 rows of d00.dat; test d00_te and d01-d21_te as in
bench_real.py (false alarms on normal rows, mean detection rate over the 18 detectable faults).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_data import (  # noqa: E402
    TEP_FAULTS,
    TEP_SENSORS,
    TEP_UNDETECTABLE,
    ClassicalPCA,
    available,
    tep_test,
    tep_train,
    tep_truth,
)
from short_data import RIG_SENSORS, TRAIN_ROWS, StaticZ, recording  # noqa: E402

from core.detect.model import AnomalyModel  # noqa: E402

DETECTORS = ("auto", "pca", "iforest", "robust_z", "autoencoder")
PCA_BASE = "baseline PCA T²+SPE"
Z_BASE = "baseline static robust z"


class PCABaseline:
    """PCA T²+SPE at 99% on standardised raw values; score in units of its limit."""

    def fit(self, train: pd.DataFrame, sensors: list[str]) -> PCABaseline:
        self.sensors = sensors
        self.pca = ClassicalPCA().fit(train[sensors].to_numpy(dtype=float))
        return self

    def run(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        s = self.pca.score(frame[self.sensors].to_numpy(dtype=float))
        return s, s > 1.0


class Vigil:
    def __init__(self, detector: str):
        self.model = AnomalyModel(detector=detector)

    def fit(self, train: pd.DataFrame, sensors: list[str]) -> Vigil:
        self.model.fit(train)
        return self

    def run(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        out = self.model.score(frame).frame
        return out["score"].to_numpy(), out["is_anomaly"].to_numpy()


def make(name: str) -> PCABaseline | StaticZ | Vigil:
    return {PCA_BASE: PCABaseline, Z_BASE: StaticZ}.get(name, lambda: Vigil(name))()


def _summary(flags: np.ndarray, scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    tp = float((flags & truth).sum())
    precision = tp / max(flags.sum(), 1)
    recall = tp / max(truth.sum(), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "false_alarm": float(flags[~truth].mean()),
        "precision": precision,
        "recall": recall,
        "F1": f1,
        "ROC-AUC": roc_auc_score(truth, scores),
    }


def rig(names: list[str], seeds: list[int]) -> pd.DataFrame:
    """Pooled figures per detector over the rig-like recordings."""
    recs = [recording(s) for s in seeds]
    rows = {}
    for name in names:
        start = time.perf_counter()
        flags, scores, truths = [], [], []
        for frame, truth, _ in recs:
            sensors = list(RIG_SENSORS)
            model = make(name).fit(frame.iloc[:TRAIN_ROWS], sensors)
            s, flag = model.run(frame)
            flags.append(flag[TRAIN_ROWS:])
            scores.append(s[TRAIN_ROWS:])
            truths.append(truth[TRAIN_ROWS:])
        rows[name] = _summary(np.concatenate(flags), np.concatenate(scores), np.concatenate(truths))
        rows[name]["seconds"] = time.perf_counter() - start
        print(f"  rig {name}: done", file=sys.stderr, flush=True)
    return pd.DataFrame(rows).T


def tep_short(names: list[str]) -> pd.DataFrame:
    """TEP trained on d00.dat's first 400 rows: false alarms and mean detection rate (18)."""
    train = tep_train().iloc[:TRAIN_ROWS]
    tests = {f: tep_test(f) for f in (0, *TEP_FAULTS)}
    rows = {}
    for name in names:
        model = make(name).fit(train, TEP_SENSORS)
        normal, rate = [], []
        for fault, frame in tests.items():
            _, flag = model.run(frame)
            truth = tep_truth(fault)
            normal.append(flag[~truth])
            if fault and fault not in TEP_UNDETECTABLE:
                rate.append(flag[truth].mean())
        rows[name] = {"false_alarm": np.concatenate(normal).mean(), "DR_18": np.mean(rate)}
        print(f"  TEP {name}: done", file=sys.stderr, flush=True)
    return pd.DataFrame(rows).T


def ratios(summary: pd.DataFrame, base: str, cols: tuple[str, ...]) -> pd.DataFrame:
    """Each row's figures divided by the ``base`` row's, same run."""
    return pd.DataFrame({f"{c} / {base}": summary[c] / summary.loc[base, c] for c in cols})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS))
    parser.add_argument("--recordings", type=int, default=32, help="rig-like recordings")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--no-tep", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    threadpool_limits(args.threads)
    # The window autoencoder's default batch is larger than 400 rows; sklearn says so per fit.
    warnings.filterwarnings("ignore", message="Got `batch_size`")
    names = [PCA_BASE, Z_BASE, *args.detectors]
    fmt = {"float_format": lambda v: f"{v:.3f}"}
    seeds = list(range(args.first_seed, args.first_seed + args.recordings))
    print(f"Rig-like recordings (seeds {seeds[0]}-{seeds[-1]}): train rows 0-{TRAIN_ROWS - 1}")
    summary = rig(names, seeds)
    print(summary.to_string(**fmt))
    print(ratios(summary, Z_BASE, ("false_alarm", "F1")).to_string(**fmt))
    if args.no_tep:
        return
    if not available("tep"):
        print("TEP skipped: ../shared/data/tep/ is not on this machine")
        return
    print(f"\nTEP: train on the first {TRAIN_ROWS} rows of d00.dat, test d00_te + d01..d21_te")
    short = tep_short(names)
    print(short.to_string(**fmt))
    print(ratios(short, PCA_BASE, ("false_alarm", "DR_18")).to_string(**fmt))


if __name__ == "__main__":
    main()
