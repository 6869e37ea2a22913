"""A plant that has moved on since a short training window: lasting high scores lift the line.

A demo plant trained on its first day and then ageing by one robust spread over two weeks runs
at half the line and more for days on one pump (seed 106's P-103). The run divides those scores
by their lasting level, stores what it divided by, and explanations of its events still add up
to the stored score.
"""

from __future__ import annotations

import numpy as np
import pytest

from core import detect, store
from core.detect import runs
from core.detect.model import AnomalyModel
from core.explain import explain_event
from core.explain.fitted import clear_models
from core.synth.ageing import aged
from core.synth.demo import generate_plant, store_plant
from core.types import ASSET

TRAIN = runs.TrainingWindow("first_rows", 1440)


@pytest.fixture(scope="module")
def plant():
    return aged(generate_plant(seed=106, rows_per_asset=12_000), 1440, 1.0)


def test_lasting_high_scores_are_divided_by_their_level_and_alarm_far_less(plant) -> None:
    pump = plant.readings[plant.readings[ASSET] == "P-103"].reset_index(drop=True)
    lifted = AnomalyModel().fit(pump.iloc[:1440]).score(pump).frame
    plain = AnomalyModel(lift=False).fit(pump.iloc[:1440]).score(pump).frame
    later = np.arange(len(pump)) >= 6 * 1440
    assert lifted["lift"][later].max() > 1.5
    assert (lifted["lift"][:1440] == 1.0).all()  # a day of history: nothing to lift by
    assert (plain["lift"] == 1.0).all()
    assert lifted["is_anomaly"][later].mean() < 0.5 * plain["is_anomaly"][later].mean()
    raw = plain["score"].to_numpy()
    assert np.allclose(lifted["score"] * lifted["lift"], raw)


def test_a_lifted_runs_lift_is_stored_and_its_events_explanations_add_up(plant, tmp_path) -> None:
    con = store.open_workspace(tmp_path / "w.duckdb")
    info = store_plant(con, plant, "aged", 106)
    run = runs.execute_run(con, runs.RunConfig(info.id, training=TRAIN))
    scores = store.read_run_scores(con, run.id)
    assert scores["lift"].max() > 1.5
    events = runs.run_events(con, run.id)
    peak = scores.set_index(["asset", "ts"])["lift"]
    lifted = [int(e.event_id) for e in events.itertuples() if peak[(e.asset, e.peak_ts)] > 1.2]
    assert lifted, "an event where the line was lifted"
    expl = explain_event(con, run.id, lifted[0], refresh=True)
    stored = expl.rows["score"].to_numpy(dtype=np.float64)
    on = stored > 0
    assert (expl.rows["lift"][on] > 1.0).any()
    assert np.allclose(expl.target[on], stored[on], rtol=1e-6)
    assert np.all(np.abs(expl.output[on] - stored[on]) <= 0.01 * stored[on])
    assert "lasting level" in expl.description
    warning = detect.coverage_warning(detect.run_coverage(con, run.id))
    assert "so the line was raised with them" in warning and "P-103 on" in warning
    con.close()
    clear_models()
