"""Learning from labels: a simulated analyst on fresh demo plants, round after round.

    python bench/bench_learning.py                       # seeds 201-206, 5 labels a round
    python bench/bench_learning.py --seeds 204 --rounds 6 --per-round 3 --rows 10000

Protocol: load a demo plant into a fresh workspace and run the unsupervised detector (first 30%
of each asset trains). Each round the analyst labels the top suggestions of "what to label
next" using the ground truth: an event overlapping a true fault is confirmed with the fault's
kind and the fault's extent (as an analyst correcting the event's extent on the Triage chart
would; the alarm's tail after the fault stays unlabelled context), any other event is a false
alarm. Then the model
is retrained from the labels (`core.learn.retraining.retrain`) and the analyst promotes the new version
when it is proposed; the next suggestions come from the newest version's events. After each
round: point F1 and false-alarm rate of the newest version against the ground truth (never seen
by the learner; graded after the training window, like the unsupervised run), its
leave-label-out F1 on the labels, and the F1 of the model in use (the promoted version, else the
unsupervised run: what champion/challenger leaves the analyst with). The target is judged on
the newest version.

The ground truth grades every row, those the labels cover too, where the model was fitted to
the analyst's verdicts. ``unlabelled_gain`` separates what generalises: the F1 of the newest
version minus that of the unsupervised run, both on the rows no label has reviewed yet (outside
every label and its reviewed context).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import store
from core.detect.evaluation import evaluate  # noqa: E402
from core.detect.runs import RunConfig, TrainingWindow, execute_run, training_mask  # noqa: E402
from core.labels import history as labels
from core.labels.history import LabelDraft  # noqa: E402
from core.labels.points import label_points  # noqa: E402
from core.learn import active, versions
from core.learn import retraining as learning
from core.synth.demo import load_demo  # noqa: E402

ANALYST = "bench"


def label_suggestions(con, dataset_id: int, suggestions: pd.DataFrame, truth: pd.DataFrame) -> None:
    """The simulated analyst: ground truth decides each suggested event's verdict."""
    drafts = []
    for e in suggestions.to_dict("records"):
        hit = truth[(truth["asset"] == e["asset"]) & (truth["start"] <= e["end"])]
        hit = hit[hit["end"] >= e["start"]]
        if len(hit):
            drafts.append(
                LabelDraft(
                    asset=e["asset"],
                    start=hit["start"].min(),
                    end=hit["end"].max(),
                    verdict="confirmed",
                    kind=str(hit["kind"].iloc[0]),
                    sensors=tuple(e["top_sensors"]),
                    source="detector",
                    run_id=int(e["run_id"]),
                    event_id=int(e["event_id"]),
                )
            )
        else:
            drafts.append(
                LabelDraft(
                    asset=e["asset"],
                    start=e["start"],
                    end=e["end"],
                    verdict="false_alarm",
                    sensors=tuple(e["top_sensors"]),
                    source="detector",
                    run_id=int(e["run_id"]),
                    event_id=int(e["event_id"]),
                )
            )
    labels.create_labels(con, dataset_id, drafts, ANALYST)


def analyst_round(con, dataset_id: int, run_id: int, truth: pd.DataFrame, per_round: int):
    """One round: label the top suggestions from ``run_id``'s events, retrain, promote when
    proposed. None when nothing is left to suggest."""
    todo = active.suggest(con, dataset_id, run_id, limit=per_round)
    if todo.empty:
        return None
    label_suggestions(con, dataset_id, todo, truth)
    result = learning.retrain(con, learning.RetrainConfig(dataset_id), ANALYST)
    if result.comparison.proposed:
        versions.promote(con, result.version.id, ANALYST, "bench: proposed")
    return result


def unlabelled_f1(scores: pd.DataFrame, truth: pd.DataFrame, unreviewed: pd.Series) -> float:
    """Point F1 of a run's scores on the graded rows no label has reviewed."""
    keep = unreviewed.to_numpy() & ~training_mask(scores, TrainingWindow())
    return evaluate(scores[keep].reset_index(drop=True), truth).f1


def unreviewed_rows(con, info, scores: pd.DataFrame) -> pd.Series:
    """True for rows outside every current label and its reviewed context."""
    points = label_points(scores, labels.current_labels(con, info.id), info.interval_seconds)
    return pd.Series(points.group < 0, index=scores.index)


def simulate(seed: int, rows: int, rounds: int, per_round: int, folder: Path) -> list[dict]:
    """One plant: the unsupervised start, then `rounds` rounds of labelling and retraining."""
    con = store.open_workspace(folder / f"bench_learning_{seed}.duckdb")
    info = load_demo(con, seed=seed, rows_per_asset=rows)
    truth = store.read_ground_truth(con, info.id)
    started = time.perf_counter()
    run = execute_run(con, RunConfig(info.id))
    curve = [
        {
            "seed": seed,
            "round": 0,
            "labels": 0,
            "confirmed": 0,
            "f1": run.evaluation["f1"],
            "precision": run.evaluation["precision"],
            "recall": run.evaluation["recall"],
            "false_alarm_rate": run.evaluation["false_alarm_rate"],
            "held_out_f1": float("nan"),
            "in_use_f1": run.evaluation["f1"],
            "classifier": False,
            "promoted": False,
            "seconds": time.perf_counter() - started,
        }
    ]
    run_id = run.id
    base_scores = store.read_run_scores(con, run.id)
    curve[0]["unlabelled_gain"] = 0.0
    for r in range(1, rounds + 1):
        started = time.perf_counter()
        result = analyst_round(con, info.id, run_id, truth, per_round)
        if result is None:
            break
        version = result.version
        run_id = version.run_id
        gt = version.metrics["ground_truth"]
        scores = store.read_run_scores(con, version.run_id)
        unreviewed = unreviewed_rows(con, info, scores)
        base_unreviewed = unreviewed_rows(con, info, base_scores)
        unlabelled_gain = unlabelled_f1(scores, truth, unreviewed) - unlabelled_f1(
            base_scores, truth, base_unreviewed
        )
        in_use = versions.active_version(con, info.id)
        in_use_f1 = in_use.metrics["ground_truth"]["f1"] if in_use else curve[0]["f1"]
        curve.append(
            {
                "seed": seed,
                "round": r,
                "labels": len(version.label_ids),
                "confirmed": int(version.metrics["labels"].get("confirmed", 0)),
                "f1": gt["f1"],
                "precision": gt["precision"],
                "recall": gt["recall"],
                "false_alarm_rate": gt["false_alarm_rate"],
                "held_out_f1": version.metrics["held_out"]["f1"],
                "in_use_f1": in_use_f1,
                "unlabelled_gain": unlabelled_gain,
                "classifier": version.semi_supervised,
                "promoted": result.comparison.proposed,
                "seconds": time.perf_counter() - started,
            }
        )
        print(pd.DataFrame(curve[-1:]).to_string(index=False, header=r == 1), flush=True)
    con.close()
    return curve


def over_plants(seeds: list[int], one: Callable[[int, Path], list[dict]]) -> pd.DataFrame:
    """The rows of ``one(seed, folder)`` for every seed, each plant in a scratch folder."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in seeds:
            print(f"== seed {seed}", flush=True)
            rows += one(seed, Path(folder))
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[201, 202, 203, 204, 205, 206])
    parser.add_argument("--rows", type=int, default=20_000, help="rows per asset")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-round", type=int, default=5)
    args = parser.parse_args()
    table = over_plants(
        args.seeds,
        lambda seed, folder: simulate(seed, args.rows, args.rounds, args.per_round, folder),
    )
    base = table[table["round"] == 0].set_index("seed")["f1"]
    table["gain"] = table["f1"] - table["seed"].map(base)
    pd.set_option("display.width", 140)
    print("\nPer plant:")
    print(table.round(4).to_string(index=False))
    curve = table.groupby("round")[
        [
            "labels",
            "f1",
            "precision",
            "recall",
            "false_alarm_rate",
            "gain",
            "unlabelled_gain",
            "in_use_f1",
        ]
    ].mean()
    print("\nMean over plants (the learning curve):")
    print(curve.round(4).to_string())
    target = table[table["labels"] >= 10].groupby("seed").first()
    if not target.empty:
        gain, f1 = target["gain"].mean(), target["f1"].mean()
        met = gain >= 0.1 or f1 >= 0.95
        print(
            f"\nAfter >= 10 labelled events: mean F1 {f1:.3f}, gain {gain:+.3f} "
            f"(target: gain >= +0.10 or F1 >= 0.95) -> {'MET' if met else 'NOT MET'}"
        )


if __name__ == "__main__":
    main()
