"""Scoring with a saved model: `score --save-model`, `score --model` on a file, folder or glob,
`export-model`, and their one-line refusals (real subprocesses, real files, real workspaces)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import store
from core.detect import runs
from core.detect.fleet import score_with_model
from core.detect.model_file import MODEL_FORMAT, dump_fitted, read_meta, with_meta
from core.learn import versions
from core.learn.learned_model import LearnedModel
from core.learn.model_files import dump_model
from core.synth.demo import load_demo
from tests.fleet_data import by_time, fitted, plant_frame, read_folder, write_layouts

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *map(str, args)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fleet")
    frame = plant_frame()
    model = fitted(frame)
    paths = write_layouts(frame, folder)
    paths["model"] = folder / "model.skops"
    paths["model"].write_bytes(dump_fitted(model))
    return folder, frame, model, paths


def test_save_model_then_score_with_it_gives_the_fit_and_score_result(tmp_path):
    frame = plant_frame(rows=2500, assets=1).drop(columns="asset")
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%d %H:%M:%S")
    frame.iloc[:1500].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[1500:].to_csv(tmp_path / "data.csv", index=False)
    both = _cli("score", "--train", tmp_path / "train.csv", "--data", tmp_path / "data.csv",
                "--out", tmp_path / "fit.csv", "--detector", "pca",
                "--save-model", tmp_path / "m.skops")  # fmt: skip
    assert both.returncode == 0, both.stderr
    assert "Saved the model" in both.stderr and read_meta((tmp_path / "m.skops").read_bytes())
    saved = _cli("score", "--model", tmp_path / "m.skops", "--data", tmp_path / "data.csv",
                 "--out", tmp_path / "saved.csv")  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    fit, again = pd.read_csv(tmp_path / "fit.csv"), pd.read_csv(tmp_path / "saved.csv")
    assert list(again.columns) == ["timestamp", "asset", "score", "is_anomaly"]
    assert (again["timestamp"] == frame["timestamp"].iloc[1500:].to_numpy()).all()  # verbatim
    assert again["score"].equals(fit["score"]) and again["is_anomaly"].equals(fit["is_anomaly"])
    assert fit["score"].nunique() > 100  # real scores, not a constant
    only = _cli("score", "--train", tmp_path / "train.csv", "--save-model", tmp_path / "n.skops")
    assert only.returncode == 0 and (tmp_path / "n.skops").stat().st_size > 0, only.stderr


@pytest.mark.parametrize("layout", ["days", "assets"])
def test_a_folder_writes_one_parquet_per_file_in_its_row_order(fleet, layout, tmp_path):
    _, frame, _, paths = fleet
    done = _cli(
        "score", "--model", paths["model"], "--data", paths[layout], "--out", tmp_path / "o"
    )
    assert done.returncode == 0, done.stderr
    written = read_folder(tmp_path / "o")
    inputs = read_folder(paths[layout])
    assert sorted(written) == sorted(inputs) and not list((tmp_path / "o").glob(".*"))
    for name, out in written.items():
        assert list(out.columns) == ["timestamp", "asset", "score", "is_anomaly"]
        assert out["timestamp"].equals(inputs[name]["timestamp"])
        if layout == "assets":
            assert (out["asset"] == Path(name).stem).all()  # the file name says the asset


def test_a_glob_scores_the_files_it_matches(fleet, tmp_path):
    _, _, model, paths = fleet
    score_with_model(model, str(paths["days"] / "day[01].parquet"), tmp_path / "g")
    assert sorted(read_folder(tmp_path / "g")) == ["day0.parquet", "day1.parquet"]


def test_no_row_near_a_day_boundary_scores_differently_from_one_file(fleet, tmp_path):
    """Per-day files: each asset is scored over all its days, so rows just after midnight keep
    the history their rolling and re-centred features need."""
    _, frame, model, paths = fleet
    score_with_model(model, paths["all"], tmp_path / "all.parquet")
    score_with_model(model, paths["days"], tmp_path / "days")
    whole = by_time(pd.read_parquet(tmp_path / "all.parquet"))
    days = by_time(read_folder(tmp_path / "days"))
    assert days.equals(whole)
    # scored file by file, without history, the rows after each midnight would differ
    alone = {}
    for path in sorted(paths["days"].glob("*.parquet")):
        score_with_model(model, path, tmp_path / f"alone_{path.name}")
        alone[path.name] = pd.read_parquet(tmp_path / f"alone_{path.name}")
    naive = by_time(alone)
    first_hour = days["timestamp"].dt.hour == 0
    assert first_hour.any()
    assert not np.allclose(naive.loc[first_hour, "score"], days.loc[first_hour, "score"])


def _bad_files(folder: Path, frame: pd.DataFrame) -> dict[str, Path]:
    day = frame.iloc[:500]
    made = {
        "missing": day.drop(columns=["flow_m3h"]),
        "extra": day.assign(torque_nm=1.0),
        "text": day.assign(flow_m3h="high"),
        "other": pd.DataFrame({"timestamp": day["timestamp"], "a": 1.0, "b": 2.0}),
    }
    out = {}
    for name, table in made.items():
        out[name] = folder / f"{name}.parquet"
        table.to_parquet(out[name], index=False)
    (folder / "twice").mkdir()
    for name in ("a.parquet", "b.parquet"):  # the same asset at the same times in two files
        day.to_parquet(folder / "twice" / name, index=False)
    out["twice"] = folder / "twice"
    (folder / "garbage.skops").write_bytes(b"PK\x03\x04 not a model")
    return out


def test_bad_input_exits_2_with_one_line_and_writes_nothing(fleet, tmp_path):
    folder, frame, _, paths = fleet
    bad = _bad_files(tmp_path, frame)
    newer = tmp_path / "newer.skops"
    data = paths["model"].read_bytes()
    newer.write_bytes(with_meta(data, {**read_meta(data), "format": MODEL_FORMAT + 1}))
    model = ["--model", paths["model"]]
    cases = [
        ([*model, "--data", bad["missing"]], "lacks sensor columns the model needs: flow_m3h"),
        ([*model, "--data", bad["extra"]], "not trained on: torque_nm"),
        ([*model, "--data", bad["text"]], "'flow_m3h' of the data file 'text.parquet' holds"),
        ([*model, "--data", bad["other"]], "The model is for other sensors: it was trained on"),
        ([*model, "--data", bad["other"]], "and the data file 'other.parquet' has"),
        ([*model, "--data", tmp_path / "nothing*.parquet"], "No data file matches"),
        ([*model, "--data", bad["twice"]], "'a.parquet' and 'b.parquet' both hold asset"),
        (["--model", tmp_path / "none.skops", "--data", paths["all"]], "does not exist"),
        (["--model", tmp_path / "garbage.skops", "--data", paths["all"]], "not a skops model"),
        (["--model", newer, "--data", paths["all"]], "upgrade Vigil"),
        ([*model, "--train", tmp_path / "t.csv", "--data", paths["all"]], "leave out --train"),
        ([*model, "--data", paths["days"], "--workers", "0"], "--workers must be at least 1"),
    ]
    for args, expected in cases:
        out = tmp_path / "out"
        done = _cli("score", *args, "--out", out)
        assert done.returncode == 2, (args, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (args, done.stderr)
        assert expected in lines[0], (expected, lines[0])
        assert not out.exists(), args
    (tmp_path / "a_file").write_text("x")
    done = _cli("score", *model, "--data", paths["days"], "--out", tmp_path / "a_file")
    assert done.returncode == 2 and "is a file" in done.stderr


@pytest.fixture
def workspace_with_run(tmp_path):
    db = tmp_path / "w.duckdb"
    con = store.open_workspace(db)
    info = load_demo(con, seed=3, n_assets=2, rows_per_asset=2500, name="pumps")
    run = runs.execute_run(con, runs.RunConfig(dataset_id=info.id, detector="pca"))
    readings = store.read_readings(con, info)
    base = runs.run_model(con, run.id)
    version = versions.import_version(con, info.id, dump_model(LearnedModel(base)), "tester")
    scores = runs.run_scores(con, run.id)
    con.close()
    return db, readings, run, version, scores


def test_export_model_writes_the_model_in_use_or_a_version(workspace_with_run, tmp_path):
    db, readings, run, version, stored = workspace_with_run
    done = _cli(
        "export-model", "--db", db, "--dataset", "pumps", "--out", tmp_path / "in_use.skops"
    )
    assert done.returncode == 0, done.stderr
    assert f"run #{run.id}'s model" in done.stderr  # no version promoted yet: the run in use
    meta = read_meta((tmp_path / "in_use.skops").read_bytes())
    assert meta["run"] == run.id and meta["sensors"] == [
        c for c in readings if c not in ("ts", "asset")
    ]
    assert set(meta["thresholds"]) == {"P-101", "P-102"} and "skops" in meta["versions"]
    assert meta["features"]["window"] and meta["detector"] == "pca"
    readings.rename(columns={"ts": "timestamp"}).to_parquet(tmp_path / "r.parquet", index=False)
    done = _cli("score", "--model", tmp_path / "in_use.skops", "--data", tmp_path / "r.parquet",
                "--out", tmp_path / "r_out.parquet")  # fmt: skip
    assert done.returncode == 0, done.stderr
    again = pd.read_parquet(tmp_path / "r_out.parquet")
    mine = again.sort_values(["asset", "timestamp"]).reset_index(drop=True)
    np.testing.assert_allclose(mine["score"], stored["score"], rtol=1e-12, atol=1e-12)
    done = _cli("export-model", "--db", db, "--dataset", "pumps", "--version", version.id,
                "--out", tmp_path / "v.skops")  # fmt: skip
    assert (
        done.returncode == 0
        and read_meta((tmp_path / "v.skops").read_bytes())["version"] == version.id
    )
    for args, expected in (
        (["--version", "99"], "no model version v99"),
        (["--dataset", "nope"], "nope"),
    ):
        full = ["--db", db, "--dataset", "pumps", "--out", tmp_path / "x.skops", *args]
        done = _cli("export-model", *full)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert expected in done.stderr and not (tmp_path / "x.skops").exists()


def test_export_model_of_a_dataset_without_a_model_says_so(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    load_demo(con, seed=3, n_assets=1, rows_per_asset=500, name="fresh")
    con.close()
    done = _cli("export-model", "--db", tmp_path / "w.duckdb", "--dataset", "fresh",
                "--out", tmp_path / "m.skops")  # fmt: skip
    assert done.returncode == 2 and "no model to export yet" in done.stderr
