"""Detection on real plants: Tennessee Eastman (TEP) and NAB, beside the classical baseline.

    python bench/bench_real.py                        # every detector, TEP and NAB
    python bench/bench_real.py --detectors auto pca   # a few
    python bench/bench_real.py --per-fault            # TEP detection rate per fault too

TEP, the field's protocol (../shared/data/tep/README.md): train on d00.dat only (500 normal rows,
25 h at 3-minute steps); the false-alarm rate is the share of normal rows flagged (d00_te.dat and
rows 1-160 of every dNN_te.dat), the detection rate of fault NN the share of rows 161-960 of
dNN_te.dat flagged. Means over the 21 faults and over the 18 detectable ones (3, 9 and 15 are known
to be invisible in these variables). ROC-AUC / PR-AUC are of the raw score, per fault file (its
normal rows against its fault rows), averaged over the 18. The baseline is measured in the same
run: PCA on standardised raw variables (90% of variance), Hotelling T² (F limit) or SPE
(Jackson-Mudholkar limit) at 99%, as in Chiang, Russell & Braatz (2001).

NAB: each series trains on its first 30% and scores everything; row-wise false alarms outside the
labelled windows, rows inside found, windows found. Rows a detector cannot judge yet (warm-up of
rolling windows) count as not flagged, as the app shows them.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_data import (  # noqa: E402
    TEP_FAULTS,
    TEP_SENSORS,
    TEP_UNDETECTABLE,
    ClassicalPCA,
    available,
    nab_series,
    tep_test,
    tep_train,
    tep_truth,
)

from core.detect.detectors.registry import DETECTORS  # noqa: E402
from core.detect.features import FeatureConfig  # noqa: E402
from core.detect.model import AnomalyModel  # noqa: E402
from core.synth.ageing import aged  # noqa: E402
from core.synth.demo import generate_plant  # noqa: E402
from core.types import ASSET, TS  # noqa: E402

BASELINE = "baseline PCA T²+SPE"
NAB_SERIES = ("machine_temperature_system_failure", "ambient_temperature_system_failure")
TRAIN_SHARE = 0.3
DRIFT_ROWS = 20_000
"""Rows per asset of the drifting demo plants (about two weeks at one-minute steps)."""


@dataclass
class Scored:
    """What a detector said about one test frame: raw score and alarm flags."""

    score: np.ndarray
    flag: np.ndarray


class Baseline:
    """The classical monitor, with the `AnomalyModel` surface the bench needs."""

    def __init__(self, sensors: list[str]):
        self.sensors = sensors

    def fit(self, train: pd.DataFrame) -> Baseline:
        self.pca = ClassicalPCA().fit(train[self.sensors].to_numpy(dtype=float))
        return self

    def run(self, frame: pd.DataFrame) -> Scored:
        s = self.pca.score(frame[self.sensors].to_numpy(dtype=float))
        return Scored(s, s > 1.0)


RECENTER: dict[str, str | bool | None] = {}
"""Set by --no-recenter / --recenter / --no-rescale: the features' re-centring switched off or
changed, to measure what it buys."""


MODEL: dict[str, bool] = {}
"""Set by --no-new-modes / --no-lift: rows of unseen operating modes alarm like any other, or
scores are not divided by their lasting level, to measure what each buys."""


class Vigil:
    def __init__(self, detector: str):
        config = FeatureConfig(**RECENTER)
        self.model = AnomalyModel(detector=detector, feature_config=config, **MODEL)

    def fit(self, train: pd.DataFrame) -> Vigil:
        self.model.fit(train)
        return self

    def run(self, frame: pd.DataFrame) -> Scored:
        result = self.model.score(frame).frame
        return Scored(result["score"].to_numpy(), result["is_anomaly"].to_numpy())


def make(name: str, sensors: list[str]) -> Baseline | Vigil:
    return Baseline(sensors) if name == BASELINE else Vigil(name)


def tep(names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Summary per detector and detection rate per fault."""
    train = tep_train()
    tests = {f: tep_test(f) for f in (0, *TEP_FAULTS)}
    rows, rates = {}, {}
    for name in names:
        start = time.perf_counter()
        model = make(name, TEP_SENSORS).fit(train)
        normal, rate, roc, pr = [], {}, [], []
        for fault, frame in tests.items():
            out, truth = model.run(frame), tep_truth(fault)
            normal.append(out.flag[~truth])
            if fault:
                rate[fault] = out.flag[truth].mean()
                if fault not in TEP_UNDETECTABLE:
                    roc.append(roc_auc_score(truth, out.score))
                    pr.append(average_precision_score(truth, out.score))
        detectable = [v for k, v in rate.items() if k not in TEP_UNDETECTABLE]
        rows[name] = {
            "false_alarm": np.concatenate(normal).mean(),
            "DR_21": np.mean(list(rate.values())),
            "DR_18": np.mean(detectable),
            "ROC-AUC_18": np.mean(roc),
            "PR-AUC_18": np.mean(pr),
            "seconds": time.perf_counter() - start,
        }
        rates[name] = rate
        print(f"  TEP {name}: done", file=sys.stderr, flush=True)
    return pd.DataFrame(rows).T, pd.DataFrame(rates).T


def nab(names: list[str]) -> pd.DataFrame:
    rows = {}
    for series in NAB_SERIES:
        data, truth = nab_series(series)
        train = data.iloc[: int(TRAIN_SHARE * len(data))]
        windows = np.flatnonzero(np.diff(np.r_[0, truth.astype(int), 0]))
        spans = list(zip(windows[::2], windows[1::2], strict=True))
        for name in names:
            out = make(name, ["value"]).fit(train).run(data)
            found = sum(out.flag[a:b].any() for a, b in spans)
            rows[(series.split("_system")[0], name)] = {
                "false_alarm": out.flag[~truth].mean(),
                "recall": out.flag[truth].mean(),
                "windows": f"{found}/{len(spans)}",
                "ROC-AUC": roc_auc_score(truth, out.score),
                "PR-AUC": average_precision_score(truth, out.score),
            }
    return pd.DataFrame(rows).T


def drifting_plants(
    names: list[str], seeds: list[int], train_rows: int, drift: float
) -> pd.DataFrame:
    """Demo plants trained on a short window, then scored on data that drifts slowly.

    Each asset trains on its first ``train_rows`` rows; after that every sensor drifts linearly
    by up to ``drift`` of its training robust spread by the end of the series (a fouling
    exchanger, a wearing seal: normal ageing, not a fault). Row-wise false alarms on rows
    outside faults and stops; fault windows found.
    """
    totals: dict[str, dict[str, float]] = {
        n: {"fa": 0.0, "normal": 0, "found": 0, "faults": 0} for n in names
    }
    for seed in seeds:
        plant = aged(generate_plant(seed=seed, rows_per_asset=DRIFT_ROWS), train_rows, drift)
        for asset, drifted in plant.readings.groupby(ASSET, sort=False):
            drifted = drifted.reset_index(drop=True)
            frame = drifted[[TS, ASSET]]
            sensors = [c for c in drifted.columns if c not in (TS, ASSET)]
            train = drifted.iloc[:train_rows]
            faults = plant.faults[plant.faults[ASSET] == asset]
            stops = plant.machine_off[plant.machine_off[ASSET] == asset]
            inside = _within(frame[TS], faults)
            off = _within(frame[TS], stops)
            judged = np.arange(len(frame)) >= train_rows
            for name in names:
                out = make(name, sensors).fit(train).run(drifted)
                normal = judged & ~inside & ~off
                t = totals[name]
                t["fa"] += out.flag[normal].sum()
                t["normal"] += normal.sum()
                for start, end in zip(faults["start"], faults["end"], strict=True):
                    rows = judged & (frame[TS] >= start).to_numpy() & (frame[TS] <= end).to_numpy()
                    if rows.any():
                        t["faults"] += 1
                        t["found"] += bool(out.flag[rows].any())
    return pd.DataFrame(
        {
            n: {
                "false_alarm": t["fa"] / max(t["normal"], 1),
                "faults_found": f"{int(t['found'])}/{int(t['faults'])}",
            }
            for n, t in totals.items()
        }
    ).T


def _within(ts: pd.Series, windows: pd.DataFrame) -> np.ndarray:
    out = np.zeros(len(ts), dtype=bool)
    for start, end in zip(windows["start"], windows["end"], strict=True):
        out |= (ts >= start).to_numpy() & (ts <= end).to_numpy()
    return out


def ratios(summary: pd.DataFrame) -> pd.DataFrame:
    """Each detector's false alarms and detection against the baseline's."""
    base = summary.loc[BASELINE]
    return pd.DataFrame(
        {
            "false_alarm / baseline": summary["false_alarm"] / base["false_alarm"],
            "DR_18 / baseline": summary["DR_18"] / base["DR_18"],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS))
    parser.add_argument("--per-fault", action="store_true")
    parser.add_argument("--no-nab", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(101, 109)))
    parser.add_argument("--train-rows", type=int, default=1440, help="short training (1 day)")
    parser.add_argument("--drift", type=float, default=0.5, help="robust spreads by the end")
    parser.add_argument("--no-drift", action="store_true", help="skip the drifting demo plants")
    parser.add_argument(
        "--no-recenter", action="store_true", help="features without the slow re-centring"
    )
    parser.add_argument("--recenter", help="re-centring window to try instead, e.g. 2D")
    parser.add_argument(
        "--no-rescale", action="store_true", help="features without the lasting-widening scale"
    )
    parser.add_argument(
        "--no-new-modes", action="store_true", help="unseen operating modes alarm row by row"
    )
    parser.add_argument(
        "--no-lift", action="store_true", help="scores not divided by their lasting level"
    )
    args = parser.parse_args()
    threadpool_limits(args.threads)
    if args.no_recenter:
        RECENTER["recenter"] = None
    elif args.recenter:
        RECENTER["recenter"] = args.recenter
    if args.no_rescale:
        RECENTER["rescale"] = False
    if args.no_new_modes:
        MODEL["new_modes"] = False
    if args.no_lift:
        MODEL["lift"] = False
    names = [BASELINE, *args.detectors]
    fmt = {"float_format": lambda v: f"{v:.3f}"}
    if not available("tep"):
        print("TEP skipped: ../shared/data/tep/ is not on this machine")
    else:
        summary, rates = tep(names)
        print("Tennessee Eastman: train d00.dat, test d00_te + d01..d21_te")
        print(summary.to_string(**fmt))
        print(ratios(summary).to_string(**fmt))
        if args.per_fault:
            print("\nDetection rate per fault")
            print(rates.to_string(float_format=lambda v: f"{v:.2f}"))
    if not args.no_drift:
        print(
            f"\nDemo plants {args.seeds}: train on the first {args.train_rows} rows per asset, "
            f"then every sensor drifts by up to {args.drift} robust spreads"
        )
        print(drifting_plants(names, args.seeds, args.train_rows, args.drift).to_string(**fmt))
    if args.no_nab:
        return
    if not available("nab"):
        print("NAB skipped: ../shared/data/nab/ is not on this machine")
        return
    print("\nNAB: train first 30%, score all")
    print(nab(names).to_string(**fmt))


if __name__ == "__main__":
    main()
