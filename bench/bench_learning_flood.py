"""Labels that fix false alarms: a plant that floods its analysts, and 10 verdicts later.

    python bench/bench_learning_flood.py                      # seeds 101-103 and 201
    python bench/bench_learning_flood.py --seeds 101 102 103 201 104 105 202 203 $(seq 301 322)
                                            # the README's 30 plants (311-322 held out), ~12 min
    python bench/bench_learning_flood.py --seeds 201 --rounds 4 --spreads 1.0
    python bench/bench_learning_flood.py --seeds 104 202 203 --why   # why faults are lost

Protocol: a demo plant of two weeks at one-minute steps trains on its first day per asset
(`TrainingWindow("first_rows", 1440)`) and then ages normally: every sensor drifts by up to
``--spreads`` robust spreads of that day by the last row (`core.synth.ageing.aged`). One day
holds few of the operating points and none of the ageing the next thirteen bring, so the first
unsupervised `auto` run floods (the baseline, measured in the same run). Each round the
simulated analyst of `bench_learning.py` gives verdicts on the top five of "what to label next"
(ground truth decides: an event on a fault is confirmed with the fault's extent, any other is a
false alarm), the model is retrained with those labels, false alarms taught as normal
(`RetrainConfig(learn_false_alarms=True)`), and the new version is promoted when proposed.

Per round, for the unsupervised run (round 0) and each new version at its own alarm line
(``own``: what retraining picked, `RetrainConfig.alarm_share` of the flood's alarms kept when
false alarms are taught) and at the line its labels alone asked for (``labels only``: the F1
line of `core.learn.thresholds.tune_threshold`, the line before the alarm share, the same model
rescaled in the same run): the false-alarm rate on normal rows after the training day (``fa``;
``fa_unreviewed`` only on rows no label reviewed) and its ratio to the unsupervised run's, the
faults found, how many of those the unsupervised run found are still found (``kept``) and how
many of those it found by their own merit (``kept_merit``: not amid a flood, where more than
half of the `FLOOD_HOURS` before the fault alarmed too, so the flood, not the fault, raised the
alarm), the faults the unsupervised run finds with its line raised to the same false-alarm rate
(``knob``: what turning the threshold knob alone buys), and the faults the model finds with
its line moved to half the unsupervised run's false-alarm rate (``half_fa_found``), and the
false-alarm ratio at the highest line that still finds every fault the flood found (``keep_all``:
how well the model ranks, whatever its line; under 0.5 a line meeting both targets exists). Target
after 10 verdicts: false-alarm rate at most half the unsupervised run's, every fault it found
still found (both counts are judged; faults are found by the event rule of `grade`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_learning import ANALYST, label_suggestions, over_plants, unreviewed_rows  # noqa: E402

from core import store  # noqa: E402
from core.detect.evaluation import label_points  # noqa: E402
from core.detect.operating_range import NEW_MODE_LINE, row_lines  # noqa: E402
from core.detect.runs import RunConfig, TrainingWindow, execute_run, training_mask  # noqa: E402
from core.labels import history as labels_mod  # noqa: E402
from core.labels.points import CONTEXT_SAMPLES  # noqa: E402
from core.learn import active, learned_model, versions  # noqa: E402
from core.learn import retraining as learning  # noqa: E402
from core.learn.thresholds import ALARM_SHARE  # noqa: E402
from core.synth.ageing import aged  # noqa: E402
from core.synth.demo import generate_plant, store_plant  # noqa: E402

ROWS = 20_160
"""Two weeks at one-minute steps per asset."""
TRAIN_ROWS = 1_440
"""The first day trains."""


def grade(scores: pd.DataFrame, truth: pd.DataFrame, window: TrainingWindow) -> dict:
    """False alarms on normal rows after the training window, and faults found there."""
    judged = ~training_mask(scores, window) & ~scores["is_off"].to_numpy(dtype=bool)
    inside, which = label_points(scores, truth)
    flag = scores["is_anomaly"].to_numpy(dtype=bool)
    normal = judged & ~inside
    windows = np.unique(which[judged & inside])
    found = np.unique(which[judged & inside & flag])
    return {
        "false_alarm": float(flag[normal].mean()),
        "found": len(found),
        "found_ids": set(found.tolist()),
        "amid_flood": _amid_flood(scores, truth, flag),
        "faults": len(windows),
        "normal": normal,
        "which": which,
        "judged": judged,
    }


FLOOD_RATE = 0.03
"""A plant floods when its unsupervised run alarms on at least this share of normal rows: over
40 alarmed minutes a day per asset at one-minute steps, more than an analyst reviews."""
FLOOD_HOURS = 6
"""A fault counts as found amid a flood when most rows of the hours before it alarmed too."""


def _amid_flood(scores: pd.DataFrame, truth: pd.DataFrame, flag: np.ndarray) -> set[int]:
    """Truth windows (by index) preceded by `FLOOD_HOURS` of which more than half alarmed."""
    ts, asset = scores["ts"].to_numpy(), scores["asset"].astype(str).to_numpy()
    out = set()
    for k, t in enumerate(truth.itertuples()):
        before = (asset == str(t.asset)) & (ts < np.datetime64(t.start))
        before &= ts >= np.datetime64(t.start - pd.Timedelta(hours=FLOOD_HOURS))
        if before.any() and flag[before].mean() > 0.5:
            out.add(k)
    return out


def found_at_rate(scores: pd.DataFrame, graded: dict, rate: float) -> int:
    """Faults the run finds with its line moved until its false-alarm rate is ``rate``."""
    score = scores["score"].to_numpy(dtype=np.float64) / row_lines(scores)
    line = float(np.quantile(score[graded["normal"]], 1.0 - rate))
    hit = graded["judged"] & (graded["which"] >= 0) & (score > line)
    return len(np.unique(graded["which"][hit]))


def at_line(scores: pd.DataFrame, factor: float) -> pd.DataFrame:
    """A run's scores with its alarm line moved: scores times ``factor`` (1 stays the line)."""
    moved = scores.copy()
    moved["score"] = scores["score"] * factor
    above = moved["score"].to_numpy() > row_lines(scores)
    moved["is_anomaly"] = above & ~scores["is_off"].to_numpy(dtype=bool)
    return moved


def measure(base: dict, base_scores: pd.DataFrame, scores: pd.DataFrame, now: dict) -> dict:
    """One model against the flood: false alarms, faults found, and those the flood found kept
    (all of them, and only those it found by their own merit, not amid the flood)."""
    merit = base["found_ids"] - base["amid_flood"]
    return {
        "fa": now["false_alarm"],
        "fa_ratio": now["false_alarm"] / base["false_alarm"],
        "found": f"{now['found']}/{now['faults']}",
        "kept": f"{len(base['found_ids'] & now['found_ids'])}/{len(base['found_ids'])}",
        "kept_merit": f"{len(merit & now['found_ids'])}/{len(merit)}",
        "knob": f"{found_at_rate(base_scores, base, now['false_alarm'])}/{base['faults']}",
        "keep_all": keep_all_fa(
            scores["score"].to_numpy(),
            scores["new_mode"].fillna(False).to_numpy(dtype=bool),
            now,
            base["found_ids"],
        )
        / base["false_alarm"],
        "_all": base["found_ids"] <= now["found_ids"],
        "_merit": merit <= now["found_ids"],
    }


def lost_faults(
    con, info, truth: pd.DataFrame, base: dict, base_scores: pd.DataFrame, version, scores, now
) -> pd.DataFrame:
    """Why each fault the flood found is lost: its kind, its peak before and after retraining
    (the version's score split into the retrained detector's part and the classifier's factor),
    whether the flood raised it (``amid_flood``; ``fa_share_*``: the false-alarm rate of a line
    at the fault's peak, as a share of the flood's), the nearest false-alarm verdict on its asset
    (hours apart, whether the fault lies in the rows verdicts taught, how many of the asset's
    verdicts name one of its sensors) and how much the classifier trusts itself there."""
    lost = sorted(base["found_ids"] - now["found_ids"])
    if not lost:
        return pd.DataFrame()
    model = versions.load_version(con, version.id)
    data = store.read_readings(con, info)
    parts = model.parts(data)
    frame = parts.result.frame[["ts", "asset"]].copy()
    frame["u"] = parts.u / model.threshold
    frame["factor"] = parts.combined / np.maximum(parts.u, 1e-12)
    if parts.p is not None:
        X = model.classifier_input(data, parts.u)
        trust = model.trust(X, parts.p)
        frame["p"] = parts.p
        frame["trust"] = 1.0 if trust is None else trust
    keys = base_scores[["ts", "asset"]].astype({"asset": str})
    frame = keys.merge(frame.astype({"asset": str}), on=["ts", "asset"], how="left")
    mode = scores["new_mode"].fillna(False).to_numpy(dtype=bool)
    base_mode = base_scores["new_mode"].fillna(False).to_numpy(dtype=bool)
    ids, rate = base["found_ids"], base["false_alarm"]
    print(
        "  fa ratio at the highest line keeping every flood-found fault: unsupervised "
        f"{keep_all_fa(base_scores['score'].to_numpy(), base_mode, base, ids) / rate:.3f}, "
        f"version {keep_all_fa(scores['score'].to_numpy(), mode, now, ids) / rate:.3f}, "
        f"its detector alone {keep_all_fa(frame['u'].to_numpy(), mode, now, ids) / rate:.3f}"
    )
    labels = labels_mod.current_labels(con, info.id)
    alarms = labels[labels["verdict"] == "false_alarm"]
    pad = pd.Timedelta(seconds=CONTEXT_SAMPLES * float(info.interval_seconds or 60.0))
    base_rel = base_scores["score"].to_numpy() / row_lines(base_scores)
    rel = scores["score"].to_numpy() / row_lines(scores)
    rows = []
    for k in lost:
        t = truth.iloc[k]
        mine = np.flatnonzero(base["judged"] & (base["which"] == k))
        peak = mine[np.argmax(base_rel[mine])]
        after = mine[np.argmax(rel[mine])]
        same = alarms[alarms["asset"].astype(str) == str(t.asset)]
        gap = np.inf
        taught = False
        for a in same.itertuples():
            hours = max(
                (a.start_ts - t.end).total_seconds(), (t.start - a.end_ts).total_seconds(), 0
            )
            gap = min(gap, hours / 3600)
            taught |= bool(a.start_ts - pad <= t.end and t.start <= a.end_ts + pad)
        row = {
            "fault": k,
            "asset": t.asset,
            "kind": t.kind,
            "sensors": t.sensors,
            "rows": len(mine),
            "amid_flood": k in base["amid_flood"],
            "before": float(base_rel[peak]),
            "new_mode": bool(base_scores["new_mode"].iloc[peak]),
            "after": float(rel[after]),
            "fa_share_before": _fa_share(base_scores, base, peak) / rate,
            "fa_share_after": _fa_share(scores, now, after) / rate,
            "fa_hours": gap,
            "in_taught": taught,
            "fa_naming": sum(bool(set(n) & set(t.sensors)) for n in same["sensors"]),
            "confirmed": bool(
                (
                    (labels["verdict"] == "confirmed")
                    & (labels["asset"].astype(str) == str(t.asset))
                    & (labels["start_ts"] <= t.end)
                    & (labels["end_ts"] >= t.start)
                ).any()
            ),
        }
        row |= {c: float(frame[c].iloc[after]) for c in ("u", "factor", "p", "trust") if c in frame}
        rows.append(row)
    return pd.DataFrame(rows)


def _fa_share(scores: pd.DataFrame, graded: dict, row: int) -> float:
    """The false-alarm rate of a line at ``row``'s score (relative to each row's own line)."""
    value = scores["score"].to_numpy(dtype=np.float64) / row_lines(scores)
    return float((value[graded["normal"]] >= value[row]).mean())


def keep_all_fa(score: np.ndarray, new_mode: np.ndarray, graded: dict, ids: set[int]) -> float:
    """The false-alarm rate of ``score`` at the highest line that still finds every fault in
    ``ids`` (a new operating mode's rows count against their own, `NEW_MODE_LINE` x, line)."""
    value = score / np.where(new_mode, NEW_MODE_LINE, 1.0)
    peaks = [value[graded["judged"] & (graded["which"] == k)].max() for k in ids]
    line = min(peaks) * (1 - 1e-9) if peaks else np.inf
    return float((value[graded["normal"]] > line).mean())


def simulate(
    seed: int,
    spreads: float,
    rounds: int,
    per_round: int,
    share: float,
    folder: Path,
    why: bool = False,
    paired: tuple[tuple[float, float], ...] = (),
) -> list[dict]:
    """The flooded start, then `rounds` rounds of verdicts and retraining, on one plant: per
    round the version at its own line and at the line its labels alone asked for; then the last
    round's labels retrained once per ``paired`` (taught weight, taught floor) setting."""
    con = store.open_workspace(folder / f"flood_{seed}.duckdb")
    plant = aged(generate_plant(seed=seed, rows_per_asset=ROWS), TRAIN_ROWS, spreads)
    info = store_plant(con, plant, f"Aged demo plant (seed {seed})", seed)
    truth = store.read_ground_truth(con, info.id)
    window = TrainingWindow("first_rows", TRAIN_ROWS)
    run = execute_run(con, RunConfig(info.id, training=window))
    base_scores = store.read_run_scores(con, run.id)
    base = grade(base_scores, truth, window)
    first = {"seed": seed, "round": 0, "verdicts": 0, "line": "unsupervised"}
    curve = [{**first, **measure(base, base_scores, base_scores, base)}]
    curve[0]["half_fa_found"] = (
        f"{found_at_rate(base_scores, base, base['false_alarm'] / 2)}/{base['faults']}"
    )
    curve[0]["fa_unreviewed"], curve[0]["seconds"] = base["false_alarm"], float("nan")
    run_id, verdicts = run.id, 0
    for r in range(1, rounds + 1):
        started = time.perf_counter()
        todo = active.suggest(con, info.id, run_id, limit=per_round)
        if todo.empty:
            break
        label_suggestions(con, info.id, todo, truth)
        verdicts += len(todo)
        config = learning.RetrainConfig(info.id, learn_false_alarms=True, alarm_share=share)
        result = learning.retrain(con, config, ANALYST)
        seconds = time.perf_counter() - started
        if result.comparison.proposed:
            versions.promote(con, result.version.id, ANALYST, "bench: proposed")
        version = result.version
        run_id = version.run_id
        scores = store.read_run_scores(con, run_id)
        from_labels = version.metrics["line"]["from_labels"]
        for line, frame in (
            ("own", scores),
            ("labels only", at_line(scores, version.threshold / from_labels)),
        ):
            now = grade(frame, truth, window)
            row = {"seed": seed, "round": r, "verdicts": verdicts, "line": line}
            row |= measure(base, base_scores, frame, now)
            fresh = unreviewed_rows(con, info, frame).to_numpy() & now["normal"]
            flags = frame["is_anomaly"].to_numpy(dtype=bool)
            row["fa_unreviewed"] = float(flags[fresh].mean()) if fresh.any() else float("nan")
            row["half_fa_found"] = (
                f"{found_at_rate(frame, now, base['false_alarm'] / 2)}/{now['faults']}"
            )
            row["seconds"] = seconds
            curve.append(row)
            if why and line == "own" and r == rounds:
                lost = lost_faults(con, info, truth, base, base_scores, version, scores, now)
                if len(lost):
                    print(f"lost at the own line, round {r}:\n{lost.round(3).to_string()}")
    for weight, floor in paired:
        curve.append(same_labels(con, info, truth, base, base_scores, window, weight, floor))
        curve[-1] |= {"seed": seed, "round": r, "verdicts": verdicts}
    con.close()
    shown = pd.DataFrame(curve).drop(columns=["_all", "_merit"])
    print(shown.round(4).to_string(index=False), flush=True)
    return curve


def same_labels(con, info, truth, base, base_scores, window, weight: float, floor: float) -> dict:
    """The dataset's labels retrained with another taught weight and floor, graded at the new
    version's own line: settings compared on the same verdicts, not on the verdicts each one's
    earlier rounds happened to suggest."""
    saved = learned_model.TAUGHT_WEIGHT, learned_model.TAUGHT_FLOOR
    learned_model.TAUGHT_WEIGHT, learned_model.TAUGHT_FLOOR = weight, floor
    try:
        config = learning.RetrainConfig(info.id, learn_false_alarms=True)
        version = learning.retrain(con, config, ANALYST).version
    finally:
        learned_model.TAUGHT_WEIGHT, learned_model.TAUGHT_FLOOR = saved
    scores = store.read_run_scores(con, version.run_id)
    row = {"line": f"same labels, weight {weight:g} floor {floor:g}"}
    return row | measure(base, base_scores, scores, grade(scores, truth, window))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103, 201])
    parser.add_argument("--spreads", type=float, default=1.0, help="ageing by the last row")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--per-round", type=int, default=5)
    parser.add_argument(
        "--alarm-share", type=float, default=ALARM_SHARE, help="RetrainConfig.alarm_share"
    )
    parser.add_argument(
        "--why", action="store_true", help="per fault lost at the own line: what happened to it"
    )
    parser.add_argument(
        "--flood-rate",
        type=float,
        default=FLOOD_RATE,
        help="a plant floods when its unsupervised run alarms on at least this share of normal rows",
    )
    parser.add_argument(
        "--taught-weight",
        type=float,
        default=learned_model.TAUGHT_WEIGHT,
        help="the taught detector's weight in the geometric mean (learned_model.TAUGHT_WEIGHT)",
    )
    parser.add_argument(
        "--taught-floor",
        type=float,
        default=learned_model.TAUGHT_FLOOR,
        help="the least taught score the geometric mean takes (learned_model.TAUGHT_FLOOR)",
    )
    parser.add_argument(
        "--paired",
        nargs="+",
        default=[],
        metavar="WEIGHT:FLOOR",
        help="also retrain each plant's last labels with these taught weights and floors",
    )
    args = parser.parse_args()
    paired = tuple(tuple(float(x) for x in p.split(":")) for p in args.paired)
    learned_model.TAUGHT_WEIGHT = args.taught_weight  # read when each version's model is made
    learned_model.TAUGHT_FLOOR = args.taught_floor
    pd.set_option("display.width", 200)
    table = over_plants(
        args.seeds,
        lambda seed, folder: simulate(
            seed,
            args.spreads,
            args.rounds,
            args.per_round,
            args.alarm_share,
            folder,
            args.why,
            paired,
        ),
    )
    first = table[table["round"] == 0].set_index("seed")["fa"]
    floods = sorted(first.index[first >= args.flood_rate])
    calm = sorted(set(first.index) - set(floods))
    at10 = table[(table["verdicts"] >= 10) & table["seed"].isin(floods)]
    at10 = at10[at10["round"] == at10.groupby("seed")["round"].transform("min")]
    if calm:
        print(
            f"\nNot judged (the unsupervised run alarms on under {args.flood_rate:.0%} of normal "
            f"rows: no flood): seeds {', '.join(map(str, calm))}"
        )
    if at10.empty:
        return
    print("\nAfter 10 verdicts (fa_ratio: false alarms / the unsupervised run's, same plant):")
    shown = [
        "line",
        "fa",
        "fa_ratio",
        "fa_unreviewed",
        "found",
        "kept",
        "kept_merit",
        "knob",
        "keep_all",
        "half_fa_found",
    ]
    print(at10.set_index("seed")[shown].round(4).to_string())
    for line, rows in at10.groupby("line", sort=False):
        halved = bool((rows["fa_ratio"] <= 0.5).all())
        kept, merit = bool(rows["_all"].all()), bool(rows["_merit"].all())
        met = rows.loc[(rows["fa_ratio"] <= 0.5) & rows["_all"], "seed"].astype(str)
        print(
            f"\n{line} line: both targets met on {len(met)} of {len(rows)} flooding plants "
            f"({', '.join(met) or 'none'}); false alarms at most halved on every plant: "
            f"{'yes' if halved else 'no'} (ratios {', '.join(f'{x:.3f}' for x in rows['fa_ratio'])}"
            f"); every fault the flood found kept: {'yes' if kept else 'no'} "
            f"({int(rows['_all'].sum())}/{len(rows)} plants); every fault it found by merit kept:"
            f" {'yes' if merit else 'no'} ({int(rows['_merit'].sum())}/{len(rows)}) -> "
            f"{'MET' if halved and kept else 'NOT MET'}"
        )
    print("\nRanking (keep_all: the false-alarm ratio of the highest line keeping every fault the")
    print("flood found; under 0.5 a line meeting both targets exists):")
    for line, rows in at10.groupby("line", sort=False):
        ratio = rows["keep_all"].clip(lower=1e-4)
        print(
            f"  {line}: geometric mean {np.exp(np.log(ratio).mean()):.3f} over {len(rows)} "
            f"plants; under 0.5 on {int((ratio <= 0.5).sum())}"
        )


if __name__ == "__main__":
    main()
