"""Retraining a model that floods: with false alarms taught as normal, the alarm line keeps a
share of the flood's alarms (so weak faults the flood found stay found); a retrain without a
single verdict refuses in one line (core and CLI) and saves nothing."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from core import store
from core.detect.operating_range import NEW_MODE_LINE, row_lines
from core.detect.runs import RunConfig, TrainingWindow, execute_run, list_runs
from core.errors import ConfigError, DataError
from core.learn import retraining as learning
from core.learn import versions
from core.learn.learned_model import TAUGHT_FLOOR, TAUGHT_WEIGHT
from core.learn.thresholds import share_line
from tests.label_data import SENSORS
from tests.test_learning import add_labels, make_dataset, toy_frame

WINDOW = TrainingWindow("first_rows", 450)
STRONG = (700, 720)
WEAK = [(1000, 1015), (1300, 1315)]
SPANS = [("p1", *STRONG, "confirmed")] + [
    ("p1", a, a + 50, "false_alarm") for a in (550, 850, 1150)
]


def flooding_plant(con):
    """One asset that drifts away from its training window (its run alarms on most later
    rows), with a strong fault and two weak ones (0.75 on a sensor with noise 0.3).

    The weak steps were 0.6 until `TAUGHT_WEIGHT` went from 0.5 to 0.35: on this plant's pure
    ramp, which the taught detector learns exactly, the first then peaks at 0.96 of the line.
    That is the trade-off the weight makes; on 25 aged demo plants of
    bench/bench_learning_flood.py it lost 12 flood-found faults where 0.5 lost 20."""
    n = 1500
    faults = [("p1", *STRONG, "temp", 6.0)] + [("p1", a, b, "temp", 0.75) for a, b in WEAK]
    frame = toy_frame(assets=("p1",), n=n, walk=0.0, faults=faults)
    ramp = np.clip((np.arange(n) - 450) / (n - 450), 0, None)
    for i, sensor in enumerate(SENSORS):
        frame[sensor] += 1.2 * (i + 1) * ramp
    info = make_dataset(con, frame)
    return info, execute_run(con, RunConfig(info.id, training=WINDOW))


@pytest.mark.parametrize(
    "score, rate, line",
    [
        (np.arange(1, 101) / 100, 0.25, 0.7525),  # 25 of 100 rows lie above
        (np.arange(1, 101) / 100, 0.0, None),  # no share to keep: no cap
        (np.r_[np.zeros(90), np.ones(10)], 0.25, None),  # at a score of 0: any line keeps fewer
        (np.array([]), 0.25, None),
    ],
)
def test_share_line_keeps_the_share_above_it(score, rate, line):
    got = share_line(score, np.arange(len(score)), rate)
    assert got == (None if line is None else pytest.approx(line))
    if got is not None:
        assert (score > got).mean() == pytest.approx(rate, abs=0.01)


def test_share_line_counts_a_new_operating_modes_rows_against_their_own_line():
    """Rows in a new operating mode alarm only past NEW_MODE_LINE times the line: the share
    the line keeps is of rows that really alarm, not of rows above 1."""
    score = np.r_[np.linspace(2.0, 9.0, 60), np.linspace(0.1, 1.9, 40)]
    mode = np.r_[np.ones(60, dtype=bool), np.zeros(40, dtype=bool)]  # high rows: a new mode
    lines = np.where(mode, NEW_MODE_LINE, 1.0)
    line = share_line(score, np.arange(100), 0.2, lines)
    alarms = score > line * lines  # how a run alarms (`ScoredParts.normalised`)
    assert alarms.mean() == pytest.approx(0.2, abs=0.01)


def test_taught_false_alarms_keep_a_share_of_the_floods_alarms(workspace):
    info, run = flooding_plant(workspace)
    first = store.read_run_scores(workspace, run.id)["is_anomaly"].to_numpy()
    assert first[450:].mean() > 0.5, "the unsupervised run floods"
    assert all(first[a : b + 1].any() for a, b in WEAK), "and finds the weak faults in it"
    add_labels(workspace, info, SPANS)

    plain = learning.retrain(workspace, learning.RetrainConfig(info.id), "tester").version
    assert plain.metrics["line"]["alarm_share_cap"] is None, "nothing taught: the labels' line"
    assert plain.threshold == pytest.approx(plain.metrics["line"]["from_labels"])

    share = 0.45  # on this plant the labels' line keeps fewer alarms than that: the cap binds
    config = learning.RetrainConfig(info.id, learn_false_alarms=True, alarm_share=share)
    version = learning.retrain(workspace, config, "tester").version
    line = version.metrics["line"]
    assert version.threshold == pytest.approx(line["alarm_share_cap"])
    assert version.threshold < line["from_labels"]
    assert line["run"] == f"run #{run.id}" and "Alarm line lowered" in version.notes
    scores = store.read_run_scores(workspace, version.run_id)
    flags, score = scores["is_anomaly"].to_numpy(), scores["score"].to_numpy()
    judged = np.r_[450 : STRONG[0], STRONG[1] + 1 : 1500]  # after the window, not confirmed
    assert flags[judged].mean() == pytest.approx(share * line["rate"], rel=0.05)
    assert flags[judged].mean() < first[judged].mean() / 2, "at least halved"
    at_labels_line = score * version.threshold / line["from_labels"] > 1.0
    assert at_labels_line[judged].mean() < flags[judged].mean(), "below the labels' line"
    for a, b in WEAK:
        assert flags[a : b + 1].any(), "a weak fault the flood found stays found"
    assert flags[STRONG[0] : STRONG[1] + 1].any()


def test_a_model_taught_false_alarms_keeps_the_untaught_detectors_opinion(workspace):
    """Taught rows widen the taught detector's scales and raise its line everywhere; the
    version's unsupervised score is a weighted geometric mean with the same detector fitted without
    them (kept in the model file), so the weak faults the taught detector alone lost at the
    labels' line (asserted here before) are kept there, with the flood's alarms halved."""
    info, run = flooding_plant(workspace)
    add_labels(workspace, info, SPANS)
    plain = learning.retrain(workspace, learning.RetrainConfig(info.id), "tester").version
    assert versions.load_version(workspace, plain.id).untaught is None, "nothing taught"

    config = learning.RetrainConfig(info.id, learn_false_alarms=True, alarm_share=0.45)
    version = learning.retrain(workspace, config, "tester").version
    model = versions.load_version(workspace, version.id)  # through the model file
    assert model.untaught is not None
    data = store.read_readings(workspace, info)
    parts = model.parts(data)
    taught = model.base.score(data).frame["score"].to_numpy()
    untaught = model.untaught.score(data).frame["score"].to_numpy()
    w, floor = TAUGHT_WEIGHT, TAUGHT_FLOOR
    assert model.taught_weight == w, "the weight is kept in the model file"
    assert model.taught_floor == floor, "and so is the floor"
    assert (taught < floor).any(), "rows the floor lifts"
    np.testing.assert_allclose(parts.u, np.maximum(taught, floor) ** w * untaught ** (1 - w))
    typical = (taught == 0) & (untaught > 1)  # at or under the taught median, over the line
    assert typical.any() and (parts.u[typical] >= floor**w).all(), "no veto by the taught"
    del model.taught_weight, model.taught_floor  # a version saved before both: the plain mean
    np.testing.assert_allclose(model.parts(data).u, np.sqrt(taught * untaught))
    stored = store.read_run_scores(workspace, version.run_id)["score"].to_numpy()
    off = parts.result.frame["is_off"].to_numpy(dtype=bool)
    np.testing.assert_allclose(stored[~off], (parts.combined / model.threshold)[~off], rtol=1e-6)

    # the taught detector alone lost the weak faults at a line halving the flood; both keep them
    first = store.read_run_scores(workspace, run.id)["is_anomaly"].to_numpy()
    flags = store.read_run_scores(workspace, version.run_id)["is_anomaly"].to_numpy()
    judged = np.r_[450 : STRONG[0], STRONG[1] + 1 : 1500]
    assert flags[judged].mean() < first[judged].mean() / 2, "halved"
    for a, b in WEAK:
        assert flags[a : b + 1].any(), "a weak fault away from every verdict is kept"


@pytest.mark.parametrize(
    "spans, message",
    [
        ([], "has no confirmed or false-alarm labels yet, so there is nothing to retrain"),
        ([("p1", 100, 110, "unsure")], r"labels yet \(1 unsure only\)"),
    ],
)
def test_retrain_without_a_verdict_refuses_and_saves_nothing(workspace, spans, message):
    info = make_dataset(workspace, toy_frame(n=900))
    execute_run(workspace, RunConfig(info.id))
    add_labels(workspace, info, spans)
    with pytest.raises(DataError, match=message):
        learning.retrain(workspace, learning.RetrainConfig(info.id), "tester")
    assert versions.list_versions(workspace, info.id) == []
    assert len(list_runs(workspace, info.id)) == 1, "no version's run either"


def test_an_alarm_share_outside_zero_to_one_is_refused(workspace):
    info = make_dataset(workspace, toy_frame(n=900))
    add_labels(workspace, info, [("p1", 100, 110, "false_alarm")])
    with pytest.raises(ConfigError, match=r"alarm share must be in \[0, 1\].*Got 1.5 instead"):
        learning.retrain(workspace, learning.RetrainConfig(info.id, alarm_share=1.5), "tester")
    assert versions.list_versions(workspace, info.id) == []


def test_cli_retrain_without_a_verdict_exits_2_in_one_line(tmp_path):
    path = tmp_path / "workspace.duckdb"
    con = store.open_workspace(path)
    info = make_dataset(con, toy_frame(n=900))
    con.close()
    done = subprocess.run(
        [sys.executable, "-m", "core", "retrain", "--db", str(path), "--dataset", info.name],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "nothing to retrain from" in done.stderr
    assert done.stderr.startswith("error: "), done.stderr
    con = store.open_workspace(path)
    try:
        assert versions.list_versions(con, info.id) == []
    finally:
        con.close()


def test_among_lines_the_labels_find_equally_good_a_taught_retrain_takes_the_share_line(
    workspace,
):
    """The labels' F1 is the same anywhere between the false alarms' and the faults' peaks; a
    retrain taught false alarms starts there from the share line, not from 1 (on a plant whose
    labels allowed both, 1 kept 0.52-1.15x the flood's false alarms: the share line halves
    them)."""
    info, _ = flooding_plant(workspace)
    add_labels(workspace, info, [("p1", *STRONG, "confirmed"), ("p1", 550, 600, "false_alarm")])
    config = learning.RetrainConfig(info.id, learn_false_alarms=True)
    version = learning.retrain(workspace, config, "tester").version
    line = version.metrics["line"]
    cap, scores = line["alarm_share_cap"], store.read_run_scores(workspace, version.run_id)
    peak = scores["score"].to_numpy()[STRONG[0] : STRONG[1] + 1].max() * version.threshold
    assert cap is not None and 1.0 < cap < peak, "the share line lies inside the plateau"
    assert version.threshold == pytest.approx(cap) and line["from_labels"] == pytest.approx(cap)


def test_the_untaught_detectors_new_operating_mode_counts_against_its_own_line(workspace):
    """A speed the training day never ran is a new operating mode (alarms only past
    NEW_MODE_LINE) to the untaught detector, but known to the one taught its false alarm. The
    geometric mean takes each score relative to its own line: mixing the untaught detector's
    raw new-mode score into the taught one's line made its later visits alarm (on aged demo
    plants this hid faults: a flow noise burst fell from 0.19x to 0.62x of the flood's false
    alarms)."""
    sensors = ["speed", "temp", "flow"]
    frame = toy_frame(assets=("p1",), n=1500, walk=0.0, sensors=sensors)
    visits = [(600, 700), (1000, 1100)]
    for a, b in visits:
        frame.loc[a:b, sensors] *= 1.5  # a faster setpoint: temperature and flow follow
    info = make_dataset(workspace, frame)
    run = execute_run(workspace, RunConfig(info.id, training=WINDOW))
    assert store.read_run_scores(workspace, run.id)["new_mode"][1000:1101].all()
    add_labels(
        workspace, info, [("p1", *visits[0], "false_alarm"), ("p1", 300, 310, "false_alarm")]
    )
    config = learning.RetrainConfig(info.id, learn_false_alarms=True)
    version = learning.retrain(workspace, config, "tester").version
    model = versions.load_version(workspace, version.id)
    data = store.read_readings(workspace, info)
    taught, untaught = model.base.score(data).frame, model.untaught.score(data).frame
    second = slice(1000, 1101)
    assert not taught["new_mode"][second].any() and untaught["new_mode"][second].all()

    w, t, p = model.taught_weight, taught["score"].to_numpy(), untaught["score"].to_numpy()
    lines_t, lines_p = row_lines(taught), row_lines(untaught)
    u = model.parts(data).u
    t = np.maximum(t / lines_t, model.taught_floor) * lines_t
    np.testing.assert_allclose(u, (t / lines_t) ** w * (p / lines_p) ** (1 - w) * lines_t)
    del model.own_mode_lines, model.taught_floor  # a version saved before: raw scores, no floor
    t = taught["score"].to_numpy()
    mixed = model.parts(data).u
    np.testing.assert_allclose(mixed, t**w * p ** (1 - w))
    line = model.threshold
    assert (mixed[second] > line).mean() == 1.0, "mixed, every row of the second visit alarmed"
    assert (u[second] > line).mean() < 0.75 * (mixed[second] > line).mean()


def test_cli_retrain_with_a_budget_that_is_no_positive_number_exits_2_in_one_line(tmp_path):
    path = tmp_path / "workspace.duckdb"
    con = store.open_workspace(path)
    info = make_dataset(con, toy_frame(n=900))
    add_labels(con, info, [("p1", 500, 520, "confirmed"), ("p1", 600, 620, "false_alarm")])
    con.close()
    args = ["retrain", "--db", str(path), "--dataset", info.name, "--budget-per-day", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "core", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "error: The alert budget must be a positive number of alarms a day. Got 0.0 instead.\n"
    )
    con = store.open_workspace(path)
    try:
        assert versions.list_versions(con, info.id) == []
    finally:
        con.close()
