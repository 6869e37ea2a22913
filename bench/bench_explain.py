"""Cost of explanations: Vigil's TreeSHAP path against bare shap, and one model-agnostic event.

    python bench/bench_explain.py                       # 1,000,000-row iforest run + a LOF event
    python bench/bench_explain.py --rows 200000 --top 500 --no-agnostic

1. Isolation Forest: a run over one pump of ``--rows`` readings; its ``--top`` highest-scoring rows
   are explained with `core.explain.service.explain_points` (reading their history, building features,
   TreeSHAP, roll-up, fidelity check), cold: the TreeExplainer is rebuilt each time, the re-fitted
   model is not (its fit is timed separately). Compared with a bare
   ``shap.TreeExplainer(estimator).shap_values(X_rows)`` on the same rows of the same run
   (TreeExplainer built inside the timing too). Target: ratio <= 1.5.
2. First explanation of an event, end to end, in a new Python process per detector (nothing
   imported, no model in memory): the Explain page's call path (``core.explain``'s
   ``cached_explanation`` then ``explain_event``: open the workspace, load the run's stored model,
   read the event and its context, build features, explain, roll up, store), on a fresh copy of a
   demo-plant workspace (``--plant-rows`` per pump, 3 pumps), import time reported apart; against
   a bare ``shap.TreeExplainer(forest).shap_values`` of the same IForest event's rows, also in a
   new process, in the same run. Medians of ``--first-repeat`` processes. Target: ``auto`` under
   1 s. ``version`` is a run a model version made (retrained from labels on an ``auto`` run, with
   its label classifier): explained with the version's own model.
   ``--model-load``: only the stored IForest model's load (`load_fitted`) against bare
   ``skops.io.loads`` of the same bytes.
3. Model-agnostic: a LOF run on a one-pump plant; its top event explained with default limits,
   first in a fresh process state (re-fit, shap's numba compilation), then a second event warm.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

if "--child-page" not in sys.argv:  # a page-call child times these imports itself
    from core import store
    from core.detect import runs
    from core.explain import service as explain
    from core.explain.fitted import clear_models, fitted_run
    from core.synth.demo import load_demo


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


def _child(args: list[str]) -> dict:
    """Run this script as a new Python process (nothing imported, nothing warm) and read the
    one JSON line it prints."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_page_call(db: str, run_id: int, event_id: int, rows_out: str) -> dict:
    """In a fresh process: the Explain page's call path for one event, timed by stage."""
    started = time.perf_counter()
    from core import explain as page_api  # what pages/explain.py imports
    from core import store

    t_import = time.perf_counter() - started
    started = time.perf_counter()
    con = store.open_workspace(db)
    t_open = time.perf_counter() - started
    started = time.perf_counter()
    hit = page_api.cached_explanation(con, run_id, page_api.event_scope(event_id))
    assert hit is None, "a fresh copy of the workspace has no cached explanation"
    expl = page_api.explain_event(con, run_id, event_id)
    t_explain = time.perf_counter() - started
    con.close()
    np.save(rows_out, expl.data.astype(np.float64))
    gap = np.abs(expl.unexplained[expl.target > 0]).max(initial=0.0)
    heavy = sorted(m for m in ("shap", "sklearn", "torch", "numba", "plotly") if m in sys.modules)
    return {
        "import": t_import,
        "open": t_open,
        "explain": t_explain,
        "points": len(expl.rows),
        "method": expl.method,
        "gap": float(gap),
        "modules": heavy,
    }


def bench_model_load(rows: int, repeat: int) -> None:
    """A stored IForest run's model loaded as explanations load it (`load_fitted`: format check,
    trust audit, frames restored) against bare ``skops.io.loads`` of the same bytes with the
    same trusted types: what Vigil's checks add to skops' own cost."""
    import skops.io as sio

    from core.detect import model_file

    with tempfile.TemporaryDirectory() as tmp:
        con = store.open_workspace(Path(tmp) / "load.duckdb")
        info = load_demo(con, seed=7, n_assets=3, rows_per_asset=rows, name="load bench")
        run = runs.execute_run(con, runs.RunConfig(dataset_id=info.id, detector="iforest"))
        data = store.read_run_model(con, run.id)
        con.close()
    trusted = list(model_file.trusted_types())
    ours = [_timed(lambda: model_file.load_fitted(data))[0] for _ in range(repeat)]
    bare = [_timed(lambda: sio.loads(data, trusted=trusted))[0] for _ in range(repeat)]
    ratio = statistics.median(ours) / statistics.median(bare)
    print(
        f"iforest model load ({len(data) / 1e6:.1f} MB): vigil {statistics.median(ours):.3f} s, "
        f"bare skops.io.loads {statistics.median(bare):.3f} s (medians of {repeat}), "
        f"ratio {ratio:.2f}x"
    )


def child_bare_tree(db: str, run_id: int, asset: str, rows: str) -> dict:
    """In a fresh process: bare ``shap.TreeExplainer(forest).shap_values`` on given rows (the
    forest is loaded untimed; shap's import is timed on its own)."""
    from core import store
    from core.detect import runs

    con = store.open_workspace(db)
    forest = runs.run_model(con, run_id).pipeline_for(asset).detector.estimator_
    con.close()
    X = np.load(rows)
    started = time.perf_counter()
    import shap

    t_import = time.perf_counter() - started
    started = time.perf_counter()
    shap.TreeExplainer(forest).shap_values(X)
    return {"import": t_import, "explain": time.perf_counter() - started}


def _version_run(con, info):
    """A model version retrained from labels on an ``auto`` run (the worst three events
    confirmed, the next three false alarms, a label classifier): its run."""
    from core.labels import history as labels
    from core.labels import triage
    from core.learn import retraining

    run = runs.execute_run(con, runs.RunConfig(dataset_id=info.id, detector="auto"))
    queue = triage.review_queue(con, run.id).sort_values("severity", ascending=False)
    labels.label_events(con, info.id, queue.iloc[:3], "confirmed", "bench", kind="spike")
    labels.label_events(con, info.id, queue.iloc[3:6], "false_alarm", "bench")
    version = retraining.retrain(con, retraining.RetrainConfig(info.id), "bench").version
    return runs.get_run(con, version.run_id)


def bench_first_event(rows: int, detectors: list[str], repeat: int) -> None:
    """Each detector's first event explained by the page's call path, each time in a new
    process on a fresh copy of the workspace; the bare TreeExplainer baseline likewise."""
    with tempfile.TemporaryDirectory() as tmp:
        pristine = Path(tmp) / "plant.duckdb"
        con = store.open_workspace(pristine)
        info = load_demo(con, seed=7, n_assets=3, rows_per_asset=rows, name="first-event bench")
        made = {}
        for detector in detectors:
            if detector == "version":
                run = _version_run(con, info)
            else:
                run = runs.execute_run(con, runs.RunConfig(dataset_id=info.id, detector=detector))
            events = runs.run_events(con, run.id)
            if events.empty:
                print(f"{detector}: no events")
                continue
            made[detector] = (run.id, int(events["event_id"].iloc[0]), str(events["asset"].iloc[0]))
        con.close()
        print(f"demo plant: {info.n_rows:,} rows (3 pumps); median of {repeat} fresh processes")
        results = {}
        for detector, (run_id, event, _) in made.items():
            trials = []
            for k in range(repeat):
                copy = Path(tmp) / f"{detector}-{k}.duckdb"
                shutil.copyfile(pristine, copy)
                trials.append(
                    _child(["--child-page", str(copy), str(run_id), str(event), str(copy) + ".npy"])
                )
                copy.unlink()
            results[detector] = trials
        bare = None
        if "iforest" in made:
            run_id, _, asset = made["iforest"]
            rows_file = str(Path(tmp) / f"iforest-{repeat - 1}.duckdb.npy")
            bare = [
                _child(["--child-bare", str(pristine), str(run_id), asset, rows_file])
                for _ in range(repeat)
            ]
            b_exp = statistics.median(t["explain"] for t in bare)
            b_imp = statistics.median(t["import"] for t in bare)
            print(
                f"baseline, bare TreeExplainer on the IForest event's rows: {b_exp:.3f} s "
                f"(+ import shap {b_imp:.2f} s)"
            )
        for detector, trials in results.items():
            med = {
                k: statistics.median(t[k] for t in trials) for k in ("import", "open", "explain")
            }
            first = trials[0]
            total = med["open"] + med["explain"]
            line = (
                f"{detector:12s} event: open {med['open']:.3f} s + explain {med['explain']:.3f} s"
                f" = {total:.3f} s (import {med['import']:.2f} s) for {first['points']} points "
                f"({first['method']}); max |unexplained| {first['gap']:.1e}; "
                f"loaded: {', '.join(first['modules']) or 'none of shap/sklearn/torch'}"
            )
            if bare is not None:
                b_exp = statistics.median(t["explain"] for t in bare)
                b_all = b_exp + statistics.median(t["import"] for t in bare)
                line += (
                    f"; ratio {total / b_exp:.2f}x bare, with imports "
                    f"{(total + med['import']) / b_all:.2f}x"
                )
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--top", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--agnostic-rows", type=int, default=30_000, help="LOF plant (one pump)")
    parser.add_argument("--no-agnostic", action="store_true")
    parser.add_argument("--plant-rows", type=int, default=50_000, help="demo plant, per pump")
    parser.add_argument(
        "--detectors",
        default="auto,pca,zmax,robust_z,iforest,autoencoder,lof,version",
        help="'version': a model version retrained from labels on an auto run",
    )
    parser.add_argument("--first-repeat", type=int, default=3, help="fresh processes each")
    parser.add_argument("--only-first-event", action="store_true")
    parser.add_argument("--model-load", action="store_true", help="only the model-load bench")
    parser.add_argument("--child-page", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--child-bare", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_page:
        db, run_id, event, rows_out = args.child_page
        print(json.dumps(child_page_call(db, int(run_id), int(event), rows_out)))
        return
    if args.child_bare:
        db, run_id, asset, rows = args.child_bare
        print(json.dumps(child_bare_tree(db, int(run_id), asset, rows)))
        return
    if args.model_load:
        bench_model_load(args.plant_rows, args.repeat)
        return
    bench_first_event(args.plant_rows, args.detectors.split(","), args.first_repeat)
    if args.only_first_event:
        return
    with tempfile.TemporaryDirectory() as tmp:
        con = store.open_workspace(Path(tmp) / "bench.duckdb")
        try:
            bench_tree(con, args.rows, args.top, args.repeat)
            if not args.no_agnostic:
                bench_agnostic(con, args.agnostic_rows)
        finally:
            con.close()


if __name__ == "__main__":
    main()
