"""Real plants, not our own: Tennessee Eastman and NAB from ../shared/data (skipped where absent).

The figures that matter are in bench/bench_real.py; these hold the floor: `auto` stays calm on
normal rows of a real process it was trained on briefly, and still finds what the classical
PCA monitor finds.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.real_data import (
    TEP_SENSORS,
    ClassicalPCA,
    available,
    nab_series,
    tep_test,
    tep_train,
    tep_truth,
)
from core.detect.model import AnomalyModel

needs_tep = pytest.mark.skipif(
    not available("tep"), reason="../shared/data/tep/ (Tennessee Eastman) is not on this machine"
)
needs_nab = pytest.mark.skipif(
    not available("nab"), reason="../shared/data/nab/ (NAB series) is not on this machine"
)


@pytest.fixture(scope="module")
def tep_model() -> AnomalyModel:
    return AnomalyModel().fit(tep_train())


@needs_tep
def test_auto_is_calm_on_normal_tep_operation(tep_model):
    flagged = tep_model.score(tep_test(0)).frame["is_anomaly"].to_numpy()
    assert flagged.mean() <= 0.05, "at most 5% of normal rows alarm (it was 68% before)"


@needs_tep
@pytest.mark.parametrize("fault", [1, 2, 4, 6, 7, 14])
def test_auto_finds_the_faults_the_classical_monitor_finds(tep_model, fault):
    train, test, truth = tep_train(), tep_test(fault), tep_truth(fault)
    baseline = ClassicalPCA().fit(train[TEP_SENSORS].to_numpy())
    base_rate = (baseline.score(test[TEP_SENSORS].to_numpy()) > 1)[truth].mean()
    rate = tep_model.score(test).frame["is_anomaly"].to_numpy()[truth].mean()
    assert base_rate > 0.9, "these faults are the easy ones"
    assert rate >= base_rate - 0.02


@needs_nab
def test_nab_machine_temperature_windows_are_found_without_alarm_floods():
    data, truth = nab_series("machine_temperature_system_failure")
    model = AnomalyModel().fit(data.iloc[: int(0.3 * len(data))])
    flagged = model.score(data).frame["is_anomaly"].to_numpy()
    edges = np.flatnonzero(np.diff(np.r_[0, truth.astype(int), 0]))
    found = [flagged[a:b].any() for a, b in zip(edges[::2], edges[1::2], strict=True)]
    assert sum(found) >= 3
    assert flagged[~truth].mean() < 0.01
