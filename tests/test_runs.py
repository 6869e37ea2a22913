"""Detection runs on a real workspace file: execute, store, read back, compare, delete, validate."""

from datetime import datetime

import duckdb
import numpy as np
import pandas as pd
import pytest

from core import store
from core.charts.detection import (
    comparison_figure,
    detection_figure,
    events_table,
    flag_intervals,
    merge_intervals,
)
from core.detect import run_chart as run_view
from core.detect import run_options, runs
from core.detect.runs import RunConfig, TrainingWindow
from core.errors import ConfigError
from core.ingest.pipeline import ingest_file
from core.synth.demo import generate_plant, load_demo

ROWS = 2000
TABLES = ("runs", "run_scores", "events")


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    """A two-pump demo plant with ground truth, and a clean one-pump plant loaded from CSV."""
    folder = tmp_path_factory.mktemp("runs")
    con = store.open_workspace(folder / "workspace.duckdb")
    # Seed 4: on 600 training rows seed 3 flags nothing once residual squares stay inside the
    # training range (its one alarm was a spike leaking into other sensors' squares).
    demo = load_demo(con, seed=4, n_assets=2, rows_per_asset=ROWS)
    clean = generate_plant(seed=3, n_assets=1, rows_per_asset=2000, faults_per_asset=0)
    clean.readings.to_csv(folder / "clean.csv", index=False)
    plain = ingest_file(con, folder / "clean.csv", name="clean").dataset
    yield con, demo, plain
    con.close()


@pytest.fixture(scope="module")
def first_run(plant):
    con, demo, _ = plant
    seen: list[tuple[float, str]] = []
    summary = runs.execute_run(con, RunConfig(demo.id), progress=lambda f, m: seen.append((f, m)))
    return summary, seen


def _table_count(con: duckdb.DuckDBPyConnection, table: str, run_id: int) -> int:
    return con.execute(f"SELECT count(*) FROM {table} WHERE run_id = ?", [run_id]).fetchone()[0]


def test_run_stores_a_score_for_every_reading(plant, first_run):
    con, demo, _ = plant
    summary, seen = first_run
    assert summary.n_scores == demo.n_rows == store.count_run_scores(con, summary.id)
    scores = runs.run_scores(con, summary.id, asset=demo.assets[0])
    assert len(scores) == ROWS
    assert scores["ts"].is_monotonic_increasing
    assert not scores.loc[scores["is_off"], "is_anomaly"].any(), "off rows never alarm"
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert summary.versions["scikit-learn"] != "unknown"


def test_events_are_stored_and_ranked_most_severe_first(plant, first_run):
    con, demo, _ = plant
    summary, _ = first_run
    events = runs.run_events(con, summary.id)
    assert len(events) == summary.n_events > 0
    assert events["severity"].is_monotonic_decreasing
    assert events["event_id"].is_unique
    assert set(events["asset"]) <= set(demo.assets)
    assert all(set(s) <= set(demo.sensors) for s in events["top_sensors"])
    assert all(isinstance(d, dict) for d in events["sensor_scores"])


def test_evaluation_is_stored_when_ground_truth_exists(plant, first_run):
    con, _, _ = plant
    summary, _ = first_run
    stored = runs.get_run(con, summary.id)
    assert stored.evaluation is not None
    assert stored.evaluation["f1"] == pytest.approx(summary.evaluation["f1"])
    assert stored.evaluation["n_events"] > 0, "the demo plant has injected faults"
    assert stored.training == TrainingWindow("first_fraction", 0.3)
    headline = dict(run_options.headline_metrics(stored))
    assert list(headline)[0] == "F1" and set(headline) == set(run_options.METRIC_HELP)
    e = stored.evaluation
    assert headline["Faults found"] == f"{e['n_events_found']}/{e['n_events']}", "the counts"
    assert headline["Alarms on a fault"].endswith(f"/{e['n_predicted_events']}")


def test_run_without_ground_truth_has_no_evaluation(plant):
    con, _, plain = plant
    summary = runs.execute_run(
        con, RunConfig(plain.id, detector="iforest", training=TrainingWindow("first_rows", 800))
    )
    assert summary.evaluation is None
    assert runs.get_run(con, summary.id).evaluation is None
    assert run_options.headline_metrics(summary) == []


def test_list_and_compare_runs(plant, first_run):
    con, demo, _ = plant
    summary, _ = first_run
    second = runs.execute_run(
        con,
        RunConfig(
            demo.id,
            assets=[demo.assets[1]],
            detector="iforest",
            params={"n_estimators": 50},
            threshold_quantile=0.99,
        ),
    )
    listed = runs.list_runs(con, demo.id)
    assert [r.id for r in listed][:2] == [second.id, summary.id], "newest first"
    assert second.assets == [demo.assets[1]]
    assert store.count_run_scores(con, second.id) == ROWS
    table = runs.compare_runs(con, [summary.id, second.id])
    assert list(table["run"]) == [f"#{summary.id}", f"#{second.id}"]
    assert {"f1", "precision", "recall", "event_recall", "events"} <= set(table.columns)
    assert list(table["events"]) == [summary.n_events, second.n_events]
    assert table.loc[1, "params"] == "n_estimators=50"
    assert table.loc[1, "threshold_quantile"] == 0.99
    fig = comparison_figure(table)
    assert any(trace.name == "f1" for trace in fig.data)


def test_delete_run_removes_its_scores_and_events(plant, first_run):
    con, demo, _ = plant
    kept = first_run[0].id
    run = runs.execute_run(con, RunConfig(demo.id, assets=[demo.assets[0]], detector="pca"))
    others = store.count_run_scores(con, kept)
    runs.delete_run(con, run.id)
    assert _table_count(con, "run_scores", run.id) == 0
    assert _table_count(con, "events", run.id) == 0
    assert run.id not in [r.id for r in runs.list_runs(con, demo.id)]
    assert store.count_run_scores(con, kept) == others > 0, "other runs untouched"
    with pytest.raises(Exception, match="no run"):
        runs.get_run(con, run.id)


def test_a_failing_write_stores_nothing(plant, first_run):
    """Two events with one id break the events table's key after run and scores went in."""
    con, _, _ = plant
    summary, _ = first_run
    scores = runs.run_scores(con, summary.id)
    events = runs.run_events(con, summary.id).head(1)
    events = pd.concat([events, events])
    record = {**summary.to_record(), "id": store.next_run_id(con)}
    with pytest.raises(duckdb.ConstraintException):
        store.save_run(con, record, scores, events)
    assert store.get_run(con, record["id"]) is None
    assert _table_count(con, "run_scores", record["id"]) == 0


def test_a_run_failing_late_stores_nothing(plant, first_run):
    con, demo, _ = plant

    def state() -> tuple:
        totals = [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES]
        return [r.id for r in runs.list_runs(con, demo.id)], totals

    before = state()

    def explode(fraction: float, message: str) -> None:
        if message.startswith("Storing"):
            raise RuntimeError("stopped by the test")

    with pytest.raises(RuntimeError, match="stopped by the test"):
        runs.execute_run(con, RunConfig(demo.id, detector="pca"), progress=explode)
    assert state() == before


def _config(demo, **changes) -> RunConfig:
    return RunConfig(demo.id, **changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"assets": ["P-999"]}, "has no asset 'P-999'"),
        ({"assets": []}, "at least one asset"),
        ({"detector": "magic"}, "Unknown detector 'magic'"),
        ({"params": {"contamination": 0.7}}, r"must be in \(0, 0.5\]. Got 0.7"),
        ({"params": {"n_trees": 5}, "detector": "iforest"}, "Unknown parameter"),
        ({"threshold_quantile": 0.3}, "threshold_quantile"),
        ({"training": TrainingWindow("first_fraction", 1.0)}, r"must be in \(0, 1\)"),
        ({"training": TrainingWindow("first_rows", 10)}, "at least 50 rows"),
        ({"training": TrainingWindow("first_rows", ROWS)}, f"covers all {ROWS:,} rows"),
        ({"training": TrainingWindow("until", datetime(2000, 1, 1))}, "holds 0 rows"),
        ({"training": TrainingWindow("until", datetime(2100, 1, 1))}, "covers all"),
        ({"training": TrainingWindow("weekly", 1)}, "Unknown training window 'weekly'"),
        ({"training": TrainingWindow("dataset", None)}, "needs a reference dataset"),
        ({"training": TrainingWindow("dataset", 999)}, "no reference dataset #999"),
    ],
)
def test_config_errors_name_the_bad_value(plant, changes, message):
    con, demo, _ = plant
    with pytest.raises(ConfigError, match=message):
        runs.execute_run(con, _config(demo, **changes))


def test_reference_dataset_must_not_be_the_scored_one(plant):
    con, demo, plain = plant
    with pytest.raises(ConfigError, match="dataset being scored"):
        runs.execute_run(con, RunConfig(demo.id, training=TrainingWindow("dataset", demo.id)))
    with pytest.raises(ConfigError, match="has no asset 'P-102'"):
        runs.execute_run(con, RunConfig(demo.id, training=TrainingWindow("dataset", plain.id)))


def test_training_mask_takes_the_first_share_of_each_asset():
    frame = pd.DataFrame(
        {
            "ts": list(pd.date_range("2026-01-01", periods=10, freq="1min")) * 2,
            "asset": ["a"] * 10 + ["b"] * 10,
        }
    )
    mask = runs.training_mask(frame, TrainingWindow("first_fraction", 0.3))
    assert mask.tolist() == ([True] * 3 + [False] * 7) * 2
    mask = runs.training_mask(frame, TrainingWindow("first_rows", 4))
    assert mask.tolist() == ([True] * 4 + [False] * 6) * 2
    cut = TrainingWindow("until", datetime(2026, 1, 1, 0, 1))
    assert runs.training_mask(frame, cut).tolist() == ([True] * 2 + [False] * 8) * 2


def test_detector_options_follow_declared_limits():
    options = {o.name: o for o in run_options.detector_options()}
    assert "auto" in options and options["auto"].label
    contamination = next(p for p in options["iforest"].params if p.name == "contamination")
    assert contamination.kind == "float" and 0 < contamination.low < 0.01
    assert contamination.high == 0.5 and contamination.default == 0.005
    trees = next(p for p in options["iforest"].params if p.name == "n_estimators")
    assert (trees.kind, trees.low, trees.high, trees.default) == ("int", 10, 1000, 100)


# --- figures ----------------------------------------------------------------------------------


def test_detection_figure_of_a_real_run(plant, first_run):
    con, demo, _ = plant
    summary, _ = first_run
    asset = runs.run_events(con, summary.id)["asset"].iloc[0]
    view = run_view.run_view(con, summary.id, asset)
    assert len(view.sensors) == 3 and set(view.sensors) <= set(demo.sensors)
    assert not view.truth.empty
    fig = detection_figure(view)
    names = [t.name for t in fig.data]
    assert {"score", "event", "ground-truth fault"} <= set(names)
    outlined = [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert len(outlined) == len(view.truth)
    table = events_table(view.events)
    assert list(table["event"]) == list(view.events["event_id"])
    assert table["top sensors"].str.len().gt(0).all()


def _synthetic_view(n: int) -> run_view.RunView:
    ts = pd.date_range("2026-01-01", periods=n, freq="1s")
    rng = np.random.default_rng(0)
    off = np.zeros(n, dtype=bool)
    off[::50] = True  # a thousand short stops: too many stretches to draw one by one
    readings = pd.DataFrame({"ts": ts, "a": rng.normal(size=n), "b": rng.normal(size=n)})
    scores = pd.DataFrame(
        {"ts": ts, "score": rng.random(n), "is_anomaly": False, "is_off": off, "asset": "x"}
    )
    events = pd.DataFrame(
        {
            "event_id": [1],
            "asset": ["x"],
            "start": [ts[100]],
            "end": [ts[120]],
            "peak_ts": [ts[110]],
            "peak_score": [3.0],
            "duration_s": [21.0],
            "n_points": [21],
            "severity": [0.9],
            "top_sensors": [["a"]],
            "sensor_scores": [{"a": 4.0}],
        }
    )
    run = runs.RunSummary(
        1, 1, ["x"], "auto", "auto", {}, TrainingWindow(), None, {"x": 2.0}, "completed",
        datetime(2026, 1, 1), 1.0, n, 1, {}, None,
    )  # fmt: skip
    return run_view.RunView(run, "x", ["a", "b"], readings, scores, 1.0, events, pd.DataFrame())


def test_no_trace_sends_more_than_5000_points_and_shades_are_capped():
    view = _synthetic_view(50_000)
    fig = detection_figure(view)
    assert max(len(t.x) for t in fig.data if t.x is not None) <= 5000
    assert len(fig.layout.shapes) <= 301
    threshold = next(t for t in fig.data if t.name.startswith("alarm line"))
    assert list(threshold.y) == [1.0, 1.0]


def test_flag_intervals_and_merging():
    ts = pd.Series(pd.date_range("2026-01-01", periods=6, freq="1min"))
    flags = pd.Series([True, True, False, False, True, False])
    assert flag_intervals(ts, flags) == [(ts[0], ts[1]), (ts[4], ts[4])]
    assert flag_intervals(ts, pd.Series([False] * 6)) == []
    spans = [(ts[i], ts[i]) for i in range(6)]
    merged = merge_intervals(spans, max_n=2)
    assert len(merged) == 2 and merged[0][0] == ts[0] and merged[-1][1] == ts[5]


def test_a_workspace_from_before_runs_gains_the_run_tables(tmp_path):
    from core.store.migrations import m001_datasets

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL)"
    )
    m001_datasets(con)
    con.execute("INSERT INTO schema_migrations VALUES (1, 'datasets')")
    con.close()
    con = store.open_workspace(path)
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"runs", "run_scores", "events"} <= tables
    assert store.next_run_id(con) == 1
    con.close()
