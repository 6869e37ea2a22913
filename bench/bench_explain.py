"""Cost of explanations: Vigil's TreeSHAP path against bare shap, and one model-agnostic event.

    python bench/bench_explain.py                       # 1,000,000-row iforest run + a LOF event
    python bench/bench_explain.py --rows 200000 --top 500 --no-agnostic

1. Isolation Forest: a run over one pump of ``--rows`` readings; its ``--top`` highest-scoring rows
   are explained with `core.explain.service.explain_points` (reading their history, building features,
   TreeSHAP, roll-up, fidelity check), cold: the TreeExplainer is rebuilt each time, the re-fitted
   model is not (its fit is timed separately). Compared with a bare
   ``shap.TreeExplainer(estimator).shap_values(X_rows)`` on the same rows of the same run
   (TreeExplainer built inside the timing too). Target: ratio <= 1.5.
2. First explanation of an event, end to end (``explain_event``, the call the Explain page
   makes: read the event and its context, build features, explain, roll up, store), per detector
   on the demo plant (``--plant-rows`` per pump, 3 pumps), with the run's model in memory (the
   re-fit a stored model will replace is timed on its own line), against a bare
   ``shap.TreeExplainer(forest).shap_values`` of the same IForest event's rows in the same run.
   Target: under 1 s.
3. Model-agnostic: a LOF run on a one-pump plant; its top event explained with default limits,
   first in a fresh process state (re-fit, shap's numba compilation), then a second event warm.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import store  # noqa: E402
from core.detect import runs
from core.explain import service as explain
from core.explain.fitted import clear_models, fitted_run  # noqa: E402
from core.synth.demo import load_demo  # noqa: E402


def _timed(action):
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def bench_tree(con, rows: int, top: int, repeat: int) -> None:
    t, info = _timed(lambda: load_demo(con, seed=11, n_assets=1, rows_per_asset=rows))
    print(f"demo plant: {info.n_rows:,} rows in {t:.1f} s")
    config = runs.RunConfig(dataset_id=info.id, detector="iforest")
    t, run = _timed(lambda: runs.execute_run(con, config))
    print(f"iforest run #{run.id}: {run.n_events} events in {t:.1f} s")
    scores = runs.run_scores(con, run.id)
    points = scores.nlargest(top, "score")
    clear_models()
    t, fitted = _timed(lambda: fitted_run(con, run.id))
    print(f"re-fit of the run's model for explaining (once per process): {t:.1f} s")
    ours, bare = [], []
    expl = None
    import shap  # imported before timing either side

    estimator = fitted.model.pipeline_for(str(points["asset"].iloc[0])).detector.estimator_
    for _ in range(repeat):
        fitted.explainer.clear()  # cold: the TreeExplainer is rebuilt inside the timing
        t, expl = _timed(lambda: explain.explain_points(con, run.id, points))
        ours.append(t)
        X_rows = expl.data.astype(np.float64)
        t, phi = _timed(lambda X=X_rows: shap.TreeExplainer(estimator).shap_values(X))
        bare.append(t)
    assert expl is not None
    same = np.allclose(-phi, expl.values, atol=1e-9)
    ratio = statistics.median(ours) / statistics.median(bare)
    print(
        f"TreeSHAP, {len(expl.rows):,} top rows of {info.n_rows:,}: "
        f"vigil {statistics.median(ours):.2f} s, bare shap {statistics.median(bare):.2f} s "
        f"(medians), ratio {ratio:.2f}x, best-of ratio {min(ours) / min(bare):.2f}x "
        f"(target <= 1.5x); identical values: {same}"
    )
    print(f"  runs: vigil {[round(x, 2) for x in ours]}, bare {[round(x, 2) for x in bare]}")
    print(
        f"  additivity |output - path shortening| max {np.abs(expl.output - expl.target).max():.1e}"
    )


def bench_agnostic(con, rows: int) -> None:
    info = load_demo(con, seed=12, n_assets=1, rows_per_asset=rows, name="agnostic bench")
    config = runs.RunConfig(dataset_id=info.id, detector="lof")
    t, run = _timed(lambda: runs.execute_run(con, config))
    events = runs.run_events(con, run.id)
    print(f"lof run #{run.id} on {info.n_rows:,} rows: {run.n_events} events in {t:.1f} s")
    if len(events) < 2:
        print("  (fewer than two events: nothing to explain)")
        return
    clear_models()
    limits = explain.DEFAULT_LIMITS
    first, second = (int(e) for e in events["event_id"].iloc[:2])
    t, expl = _timed(lambda: explain.explain_event(con, run.id, first, refresh=True))
    print(
        f"LOF event #{first}, cold (re-fit + numba compilation + {len(expl.rows)} points): "
        f"{t:.1f} s"
    )
    t, expl = _timed(lambda: explain.explain_event(con, run.id, second, refresh=True))
    per_row = t / max(len(expl.rows), 1)
    print(
        f"LOF event #{second}, warm: {t:.1f} s for {len(expl.rows)} points "
        f"({per_row:.2f} s per point, {limits.permutations} permutation pair(s), "
        f"{limits.background} background points); cap {limits.agnostic_rows} points, "
        f"budget {limits.time_budget_s:.0f} s"
    )
    t, _ = _timed(lambda: explain.explain_event(con, run.id, second))
    print(f"the same event from the workspace cache: {t * 1000:.0f} ms")


def bench_first_event(con, rows: int, detectors: list[str]) -> None:
    info = load_demo(con, seed=7, n_assets=3, rows_per_asset=rows, name="first-event bench")
    import shap  # imported before any timing

    bare = None
    for detector in detectors:
        run = runs.execute_run(con, runs.RunConfig(dataset_id=info.id, detector=detector))
        events = runs.run_events(con, run.id)
        if events.empty:
            print(f"{detector}: no events")
            continue
        clear_models()
        t_fit, fitted = _timed(lambda r=run: fitted_run(con, r.id))
        event = int(events["event_id"].iloc[0])
        t, expl = _timed(lambda r=run, e=event: explain.explain_event(con, r.id, e, refresh=True))
        gap = np.abs(expl.unexplained[expl.target > 0]).max(initial=0.0)
        line = (
            f"{detector:12s} first event #{event}: {t:.3f} s for {len(expl.rows)} points "
            f"({expl.method}); re-fit {t_fit:.1f} s; max |unexplained| {gap:.1e}"
        )
        if detector == "iforest":
            forest = fitted.model.pipeline_for(str(events["asset"].iloc[0])).detector.estimator_
            X = expl.data.astype(np.float64)
            bare, _ = _timed(lambda f=forest, X=X: shap.TreeExplainer(f).shap_values(X))
            line += f"; bare TreeExplainer on its rows {bare:.3f} s (ratio {t / bare:.2f}x)"
        print(line)
    if bare is not None:
        print(f"baseline (bare TreeExplainer, IForest event rows): {bare:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--top", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--agnostic-rows", type=int, default=30_000, help="LOF plant (one pump)")
    parser.add_argument("--no-agnostic", action="store_true")
    parser.add_argument("--plant-rows", type=int, default=50_000, help="demo plant, per pump")
    parser.add_argument("--detectors", default="auto,pca,zmax,robust_z,iforest,autoencoder,lof")
    parser.add_argument("--only-first-event", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        con = store.open_workspace(Path(tmp) / "bench.duckdb")
        try:
            bench_first_event(con, args.plant_rows, args.detectors.split(","))
            if args.only_first_event:
                return
            bench_tree(con, args.rows, args.top, args.repeat)
            if not args.no_agnostic:
                bench_agnostic(con, args.agnostic_rows)
        finally:
            con.close()


if __name__ == "__main__":
    main()
