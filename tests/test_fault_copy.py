"""A test copy with injected faults, on a real workspace file: what changes, what never does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import store
from core.detect.evaluation import label_points
from core.errors import ConfigError
from core.labels import history as labels
from core.labels.history import LabelDraft
from core.synth.demo import load_demo
from core.synth.fault_copy import inject_into_dataset
from tests.label_data import T0, at, store_frame

LEVELS = {"temp": 60.0, "flow": 20.0, "vib": 2.0}


def normal_plant(con, n: int = 3000):
    """Two pumps of plain normal readings, one a minute, no ground truth (a user's data)."""
    rng = np.random.default_rng(4)
    parts = []
    for asset in ("p1", "p2"):
        part = pd.DataFrame({"ts": pd.date_range(T0, periods=n, freq="1min"), "asset": asset})
        for sensor, level in LEVELS.items():
            part[sensor] = level + rng.normal(scale=level / 50, size=n)
        parts.append(part)
    return store_frame(con, pd.concat(parts, ignore_index=True), name="pumps")


@pytest.fixture
def con(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    yield con
    con.close()


def test_the_copy_changes_readings_only_inside_its_ground_truth(con):
    info = normal_plant(con)
    source_before = store.read_readings(con, info)
    copy = inject_into_dataset(con, info.id, n_faults=3, seed=5)
    truth = store.read_ground_truth(con, copy.id)
    assert (
        copy.id != info.id and copy.has_ground_truth and copy.name == "pumps + 3 faults per asset"
    )
    assert truth.groupby("asset").size().to_dict() == {"p1": 3, "p2": 3}
    faulty, clean = store.read_readings(con, copy), store.read_readings(con, info)
    assert (faulty["ts"].to_numpy() == clean["ts"].to_numpy()).all()
    changed = ~np.isclose(faulty[list(LEVELS)], clean[list(LEVELS)]).all(axis=1)
    inside, _ = label_points(faulty, truth)
    assert changed.any() and not (changed & ~inside).any(), "faults stay in their windows"
    pd.testing.assert_frame_equal(clean, source_before)  # the source is never changed
    assert not store.get_dataset(con, info.id).has_ground_truth
    assert "3 injected faults" not in " ".join(info.quality.notes)
    assert "6 injected faults" in copy.quality.notes[-1]


def test_faults_keep_away_from_what_analysts_marked_and_from_known_faults(con):
    info = normal_plant(con)
    marked = LabelDraft("p1", at(600), at(1400), "confirmed", "leak", ("flow",))
    labels.create_labels(con, info.id, [marked], "ana")
    copy = inject_into_dataset(con, info.id, n_faults=4, seed=1)
    truth = store.read_ground_truth(con, copy.id)
    mine = truth[truth["asset"] == "p1"]
    assert not ((mine["start"] <= at(1400)) & (mine["end"] >= at(600))).any()
    demo = load_demo(con, seed=2, n_assets=2, rows_per_asset=6000)
    known = store.read_ground_truth(con, demo.id)
    both = store.read_ground_truth(con, inject_into_dataset(con, demo.id, 2, seed=3).id)
    assert len(both) == len(known) + 4, "the copy keeps the known faults and adds its own"
    keys = ["asset", "start", "end", "kind"]
    added = both.merge(known[keys], on=keys, how="left", indicator=True)
    added = added[added["_merge"] == "left_only"]
    assert len(added) == 4
    for f in known.itertuples():
        same = added[added["asset"] == f.asset]
        assert not ((same["start"] <= f.end) & (same["end"] >= f.start)).any()


@pytest.mark.parametrize(
    ("n_faults", "kinds", "message"),
    [
        (0, None, "between 1 and 50"),
        (51, None, "between 1 and 50"),
        (3, ["rust"], "Unknown fault kind 'rust'"),
        (40, None, "would make .* of asset 'p1' faulty"),
    ],
)
def test_a_bad_request_is_refused_and_writes_nothing(con, n_faults, kinds, message):
    info = normal_plant(con, n=1500)
    before = [d.id for d in store.list_datasets(con)]
    with pytest.raises(ConfigError, match=message):
        inject_into_dataset(con, info.id, n_faults=n_faults, kinds=kinds)
    assert [d.id for d in store.list_datasets(con)] == before


def test_cli_inject_makes_the_copy_or_exits_2_with_one_line(tmp_path):
    from tests.test_ingest import _cli

    db = tmp_path / "ws.duckdb"
    con = store.open_workspace(db)
    info = normal_plant(con)
    con.close()
    done = _cli("inject", "--dataset", "pumps", "--faults", "2", "--seed", "3", "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert "Test copy 'pumps + 2 faults per asset'" in done.stdout
    assert "4 injected faults" in done.stdout
    bad = _cli("inject", "--dataset", str(info.id), "--kinds", "rust", "--db", str(db))
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: Unknown fault kind 'rust'; choose from spike, drift, level_shift, stuck, "
        "noise_burst, coupling_break."
    ]
    con = store.open_workspace(db)
    assert len(store.list_datasets(con)) == 2, "the refused copy wrote nothing"
    con.close()
