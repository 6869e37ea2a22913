"""Operating-mode marks and honest grading, wired into real runs on a real workspace."""

import numpy as np

from core import store
from core.detect import modes
from core.detect.runs import RunConfig, execute_run, run_events, run_scores
from core.synth.demo import load_demo


def test_marked_stretch_never_alarms_and_later_runs_honour_it(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    info = load_demo(con, seed=21, n_assets=1, rows_per_asset=4000)
    before = execute_run(con, RunConfig(dataset_id=info.id))
    events = run_events(con, before.id)
    assert len(events), "the demo plant gives the first run events to silence"
    top = events.iloc[0]
    modes.add_mode(con, info.id, top["asset"], top["start"], top["end"], "maintenance", "ana")
    after = execute_run(con, RunConfig(dataset_id=info.id))
    scores = run_scores(con, after.id, top["asset"])
    inside = ((scores["ts"] >= top["start"]) & (scores["ts"] <= top["end"])).to_numpy()
    assert inside.any()
    assert not scores["is_anomaly"].to_numpy()[inside].any()
    assert scores["is_off"].to_numpy()[inside].all(), "marked rows are shown as excluded"
    later = run_events(con, after.id)
    overlaps = (later["start"] <= top["end"]) & (later["end"] >= top["start"])
    assert not overlaps.any()


def test_evaluation_grades_only_rows_after_the_training_window(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    info = load_demo(con, seed=22, n_assets=1, rows_per_asset=4000)
    run = execute_run(con, RunConfig(dataset_id=info.id))
    truth = store.read_ground_truth(con, info.id)
    cut = np.datetime64(
        store.read_readings(con, info)["ts"].iloc[int(0.3 * info.n_rows)].to_datetime64()
    )
    graded_faults = int((truth["end"].to_numpy() >= cut).sum())
    assert run.evaluation is not None
    assert run.evaluation["n_events"] == graded_faults
