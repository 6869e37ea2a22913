"""Fleets on Dask: a real LocalCluster of worker processes scores exactly what one process does."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from dask.distributed import LocalCluster

from core.detect.fleet import environment_kept, score_with_model
from core.detect.model_file import dump_fitted
from core.errors import DataError
from tests.fleet_data import fitted, plant_frame, read_folder, write_layouts

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster():
    with environment_kept():  # the nannies' thread settings stay theirs (see below)
        running = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.ERROR,
        )  # fmt: skip
    with running:
        yield running


def test_scoring_on_a_local_cluster_leaves_this_processs_environment_alone(fleet, tmp_path):
    """Dask's nannies leave OMP/OPENBLAS_NUM_THREADS=1 in the parent's environment: a `score`
    started afterwards from this process drew scores 2.6e-7 off the same model's here."""
    folder, frame, model, paths = fleet
    before = dict(os.environ)
    score_with_model(model, paths["days"], tmp_path / "out", workers=1)
    assert dict(os.environ) == before


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dask")
    frame = plant_frame(rows=3000, assets=4)
    model = fitted(frame)
    paths = write_layouts(frame, folder)
    return folder, frame, model, paths


@pytest.mark.parametrize("layout", ["days", "assets"])
def test_a_cluster_writes_exactly_what_one_process_writes(fleet, cluster, layout, tmp_path):
    _, _, model, paths = fleet
    score_with_model(model, paths[layout], tmp_path / "one")
    summary = score_with_model(
        model, paths[layout], tmp_path / "many", scheduler=cluster.scheduler_address
    )
    assert "Dask cluster" in summary
    one, many = read_folder(tmp_path / "one"), read_folder(tmp_path / "many")
    assert sorted(one) == sorted(many) and len(one) >= 3
    for name in one:
        assert many[name].equals(one[name]), name
    assert sum(len(f) for f in one.values()) == 12_000


def test_an_error_on_a_worker_is_one_message_and_writes_nothing(fleet, cluster, tmp_path):
    _, frame, model, _ = fleet
    (tmp_path / "in").mkdir()
    broken = frame.copy()
    broken.loc[broken["asset"] == broken["asset"].iloc[-1], "flow_m3h"] = np.nan
    for k, (_, day) in enumerate(broken.groupby(broken["timestamp"].dt.floor("D"))):
        day.to_parquet(tmp_path / "in" / f"d{k}.parquet", index=False)
    with pytest.raises(DataError, match="no usable value .* flow_m3h"):
        score_with_model(
            model, tmp_path / "in", tmp_path / "out", scheduler=cluster.scheduler_address
        )
    assert not (tmp_path / "out").exists()


def test_cli_workers_runs_a_local_cluster_with_the_same_outputs(fleet, tmp_path):
    folder, _, model, paths = fleet
    (tmp_path / "m.skops").write_bytes(dump_fitted(model))
    score_with_model(model, paths["days"], tmp_path / "one")
    done = subprocess.run(
        [sys.executable, "-m", "core", "score", "--model", tmp_path / "m.skops",
         "--data", paths["days"], "--out", tmp_path / "two", "--workers", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "on 2 Dask workers" in done.stderr
    one, two = read_folder(tmp_path / "one"), read_folder(tmp_path / "two")
    assert sorted(one) == sorted(two)
    assert all(two[name].equals(one[name]) for name in one)


def test_an_unreachable_scheduler_is_one_line(fleet, tmp_path):
    _, _, model, paths = fleet
    (tmp_path / "m.skops").write_bytes(dump_fitted(model))
    done = subprocess.run(
        [sys.executable, "-m", "core", "score", "--model", tmp_path / "m.skops",
         "--data", paths["days"], "--out", tmp_path / "o", "--scheduler", "tcp://127.0.0.1:9"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0, done.stderr
    assert "Could not reach the Dask scheduler" in done.stderr and not (tmp_path / "o").exists()
