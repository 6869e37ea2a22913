"""Faults transplanted from confirmed events, on real workspace files: found where the original
was found, only inside their ground truth, and refused with one message when impossible."""

from __future__ import annotations

import numpy as np
import pytest

from core import store
from core.detect.evaluation import label_points
from core.detect.model import AnomalyModel
from core.errors import DataError
from core.labels import history as labels
from core.labels.history import LabelDraft
from core.synth.demo import load_demo
from core.synth.transplant import transplant_confirmed
from tests.test_ingest import _cli


@pytest.fixture
def con(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    yield con
    con.close()


def _confirm(con, info, fault, kind=None):
    draft = LabelDraft(
        fault.asset,
        fault.start.to_pydatetime(),
        fault.end.to_pydatetime(),
        "confirmed",
        kind or fault.kind,
        tuple(fault.sensors),
    )
    return labels.create_labels(con, info.id, [draft], "ana")[0]


def _found(model, frame, windows) -> float:
    """Share of the windows' rows the model flags."""
    inside = label_points(frame, windows)[0]
    return float(model.score(frame).frame["is_anomaly"].to_numpy()[inside].mean())


def test_a_transplanted_fault_is_found_by_the_detector_that_found_the_original(con):
    info = load_demo(con, seed=7, n_assets=2, rows_per_asset=8000)
    frame, truth = store.read_readings(con, info), store.read_ground_truth(con, info.id)
    model = AnomalyModel("auto").fit(frame, exclude=label_points(frame, truth)[0])
    original = truth[(truth["asset"] == "P-101") & (truth["kind"] == "level_shift")].iloc[[0]]
    assert _found(model, frame, original) > 0.5, "the detector finds the original"
    label_id = _confirm(con, info, original.iloc[0])
    copy = transplant_confirmed(con, info.id, kind="level_shift", target="P-102", seed=1)
    moved = store.read_ground_truth(con, copy.id)
    moved = moved[moved["description"].str.startswith("Transplanted")]
    assert len(moved) == 1 and moved["asset"].iloc[0] == "P-102"
    assert moved["kind"].iloc[0] == "level_shift"
    assert f"confirmed event #{label_id} on P-101" in moved["description"].iloc[0]
    faulty = store.read_readings(con, copy)
    assert _found(model, frame[frame["asset"] == "P-102"], moved) < 0.05, "normal before"
    assert _found(model, faulty, moved) > 0.5, "the same detector finds the transplant"
    changed = ~np.isclose(faulty[info.sensors], frame[info.sensors]).all(axis=1)
    inside = label_points(faulty, moved)[0]
    assert changed.any() and not (changed & ~inside).any(), "only inside its ground truth"
    assert len(store.read_ground_truth(con, copy.id)) == len(truth) + 1, "known faults kept"


@pytest.mark.parametrize(
    ("kind", "target", "message"),
    [
        ("rust", None, "has no confirmed events of kind 'rust' to transplant"),
        (None, "P-999", "has no asset 'P-999'"),
        ("drift", None, "No normal stretch of .* rows is left in asset 'P-101'"),
    ],
)
def test_a_bad_transplant_is_refused_and_writes_nothing(con, kind, target, message):
    info = load_demo(con, seed=2, n_assets=1, rows_per_asset=1500)
    truth = store.read_ground_truth(con, info.id)
    _confirm(con, info, truth.iloc[0])
    start, end = info.time_start, info.time_end
    # an event as long as half the data leaves no normal stretch to move it to
    long = LabelDraft("P-101", start, start + (end - start) / 2, "confirmed", "drift", ())
    labels.create_labels(con, info.id, [long], "ana")
    before = [d.id for d in store.list_datasets(con)]
    with pytest.raises(DataError, match=message):
        transplant_confirmed(con, info.id, kind=kind, target=target)
    assert [d.id for d in store.list_datasets(con)] == before


def test_cli_inject_transplant_makes_the_copy_or_exits_2(tmp_path):
    db = tmp_path / "ws.duckdb"
    con = store.open_workspace(db)
    info = load_demo(con, seed=2, n_assets=2, rows_per_asset=3000, name="plant")
    _confirm(con, info, store.read_ground_truth(con, info.id).iloc[0], kind="leak")
    con.close()
    done = _cli(
        "inject", "--dataset", "plant", "--transplant", "--target", "P-102", "--db", str(db)
    )
    assert done.returncode == 0, done.stderr
    assert "1 confirmed event(s) transplanted" in done.stdout
    bad = _cli("inject", "--dataset", "plant", "--transplant", "--transplant-kind", "fire",
               "--db", str(db))  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: Dataset 'plant' has no confirmed events of kind 'fire' to transplant; confirm "
        "some on Triage first."
    ]
