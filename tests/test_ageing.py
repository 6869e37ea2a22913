"""Normal ageing of a demo plant after its training window (`core.synth.ageing.aged`)."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError
from core.synth.ageing import aged
from core.synth.demo import generate_plant
from core.types import ASSET, TS


@pytest.fixture(scope="module")
def plant():
    return generate_plant(seed=5, n_assets=2, rows_per_asset=2_000)


def test_drift_starts_after_the_window_and_reaches_its_spreads(plant):
    old = aged(plant, 500, 2.0)
    for asset, fresh in plant.readings.groupby(ASSET):
        fresh = fresh.sort_values(TS).reset_index(drop=True)
        moved = old.readings[old.readings[ASSET] == asset].reset_index(drop=True)
        first = fresh["bearing_temp_c"].iloc[:500]
        spread = (first.quantile(0.75) - first.quantile(0.25)) / 1.349
        shift = moved["bearing_temp_c"] - fresh["bearing_temp_c"]
        assert np.allclose(shift.iloc[:501], 0.0), "the training window is untouched"
        assert shift.iloc[-1] == pytest.approx(2.0 * spread)
        assert np.all(np.diff(shift.to_numpy()) >= -1e-9), "ageing only goes one way"
    assert old.faults.equals(plant.faults) and old.machine_off.equals(plant.machine_off)


@pytest.mark.parametrize(
    ("after", "spreads", "message"),
    [
        (0, 1.0, "'after_rows' parameter must be >= 1"),
        (500, -1.0, "'spreads' parameter must be >= 0"),
        (500, float("nan"), "'spreads' parameter must be >= 0"),
        (2_000, 1.0, "needs more rows per asset; 'P-101' has 2,000"),
    ],
)
def test_bad_settings_are_refused(plant, after, spreads, message):
    with pytest.raises(ConfigError, match=message):
        aged(plant, after, spreads)
