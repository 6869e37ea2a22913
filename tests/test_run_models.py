"""Fitted models kept: every run stores its model (skops), explanations use it, and a model file
from a newer, incompatible Vigil is refused in one sentence."""

import numpy as np
import pytest

from core import store
from core.detect import runs
from core.detect.model_file import (
    MODEL_FORMAT,
    dump_fitted,
    load_fitted,
    read_meta,
    with_meta,
)
from core.errors import DataError
from core.explain import service as explain
from core.explain.fitted import clear_models, fitted_run
from core.learn.model_files import load_model
from core.synth.demo import load_demo


@pytest.fixture(scope="module")
def plant_run(tmp_path_factory):
    con = store.open_workspace(tmp_path_factory.mktemp("runmodels") / "workspace.duckdb")
    info = load_demo(con, seed=5, n_assets=2, rows_per_asset=3000)
    run = runs.execute_run(con, runs.RunConfig(dataset_id=info.id, detector="pca"))
    kept = store.read_run_model(con, run.id)  # a test below deletes the stored copy
    yield con, info, run, kept
    clear_models()
    con.close()


def test_a_run_stores_the_model_that_scored_it(plant_run):
    con, info, run, _ = plant_run
    model = runs.run_model(con, run.id)
    assert model is not None
    again = model.score(store.read_readings(con, info)).frame
    stored = runs.run_scores(con, run.id)
    mine = again.sort_values(["asset", "ts"]).reset_index(drop=True)
    np.testing.assert_allclose(mine["score"], stored["score"], rtol=1e-12, atol=1e-12)
    meta = read_meta(store.read_run_model(con, run.id))
    assert meta["format"] == MODEL_FORMAT and meta["sensors"] == list(info.sensors)
    assert set(meta["thresholds"]) == set(info.assets) and "scikit-learn" in meta["versions"]


def test_explanations_use_the_stored_model_not_a_refit(plant_run):
    """A stored model whose alarm line differs from what a refit gives: the explainer holds it."""
    con, info, run, _ = plant_run
    model = runs.run_model(con, run.id)
    pipe = model.pipelines_[info.assets[0]]
    pipe.threshold = pipe.center + 3 * (pipe.threshold - pipe.center)
    data = dump_fitted(model)
    con.execute("UPDATE run_models SET model = ? WHERE run_id = ?", [data, run.id])
    clear_models()
    used = fitted_run(con, run.id).model.pipelines_[info.assets[0]]
    assert used.threshold == pytest.approx(pipe.threshold, rel=1e-12)
    assert fitted_run(con, run.id).notes == []


def test_a_run_stored_before_models_were_kept_is_refitted_and_says_so(plant_run):
    con, info, run, _ = plant_run
    con.execute("DELETE FROM run_models WHERE run_id = ?", [run.id])
    clear_models()
    assert runs.run_model(con, run.id) is None
    event = int(runs.run_events(con, run.id)["event_id"].iloc[0])
    notes = explain.explain_event(con, run.id, event).notes
    assert any("stored before runs kept their fitted model" in n for n in notes), notes


def test_deleting_a_run_deletes_its_model(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    info = load_demo(con, seed=3, n_assets=1, rows_per_asset=1500)
    run = runs.execute_run(con, runs.RunConfig(dataset_id=info.id, detector="pca"))
    assert store.read_run_model(con, run.id) is not None
    runs.delete_run(con, run.id)
    assert store.read_run_model(con, run.id) is None
    con.close()


def test_a_model_from_a_newer_incompatible_vigil_is_refused_in_one_sentence(plant_run):
    data = plant_run[3]
    newer = with_meta(data, {**read_meta(data), "format": MODEL_FORMAT + 1, "vigil": "9.0.0"})
    for load in (load_fitted, load_model):
        with pytest.raises(DataError) as caught:
            load(newer)
        message = str(caught.value)
        assert "Vigil 9.0.0" in message and "upgrade Vigil" in message
        assert message.count(". ") == 0 and "\n" not in message  # one sentence
    assert load_fitted(data) is not None  # the same file at today's format loads


@pytest.mark.parametrize(
    "damage",
    [lambda d: b"not a zip at all", lambda d: d[: len(d) // 2], lambda d: d[:40] + d[80:]],
    ids=["foreign", "truncated", "torn"],
)
def test_a_damaged_model_file_is_one_clear_error(plant_run, damage):
    """Loading reads the file once, in skops: whatever breaks there is a DataError, no traceback."""
    with pytest.raises(DataError, match="not a skops model file Vigil can read") as caught:
        load_fitted(damage(plant_run[3]))
    assert str(caught.value).startswith("This is not a skops model file")
