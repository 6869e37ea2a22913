"""Ingest of values that are no measurement: out-of-range cells, empty and unusable sensors.

Files are written in tmp_path and loaded into a real DuckDB workspace; what is stored and what
the quality report (warnings, Explore's tables) says are both checked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import store
from core.ingest.explore import quality_items, sensor_quality_table
from core.ingest.pipeline import ingest_file
from core.types import QualityReport, out_of_range_limit
from tests.test_ingest import minutes, write


def _plant(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "time": minutes(n),
            "flow": 100 + rng.normal(0, 5, n),
            "temp": 20 + rng.normal(0, 1, n),
        }
    )


@pytest.mark.parametrize(
    "cell", ["1e300", "-1e300", "1e200", "inf", "-inf", "-9.99e37", "1e16", "3e8"]
)
def test_one_absurd_cell_is_reported_and_left_empty(workspace, tmp_path, cell):
    frame = _plant().astype({"flow": object})
    frame.loc[80, "flow"] = cell
    result = ingest_file(workspace, write(tmp_path, "p.csv", frame.to_csv(index=False)))
    info = result.dataset
    [found] = info.quality.out_of_range
    assert (found.sensor, found.count, found.first_time) == ("flow", 1, "2024-01-01 01:20:00")
    assert found.limit == pytest.approx(1e8, rel=0.2)  # a million times flow's ~100
    stored = store.read_readings(workspace, info)
    assert stored["flow"].isna().sum() == 1 and np.isnan(stored.loc[80, "flow"])
    assert stored["flow"].abs().max() < 200  # nothing absurd reaches a detector
    assert info.quality.nan_share["flow"] == pytest.approx(1 / 200)
    [line] = [w for w in result.warnings if "out-of-range" in w.lower()]
    assert "'flow': 1 from 2024-01-01 01:20:00" in line and "treated as missing" in line
    assert (
        "'flow': 1 from 2024-01-01 01:20:00"
        in dict(quality_items(info))["Out-of-range values (treated as missing)"]
    )
    table = sensor_quality_table(info).set_index("sensor")
    assert table.loc["flow", "out of range"] == 1 and table.loc["temp", "out of range"] == 0
    reread = store.get_dataset(workspace, info.id).quality
    assert reread == info.quality  # survives the JSON column


def test_large_but_sound_values_are_kept(workspace, tmp_path):
    """A counter in the 1e13 range and a real spike 1,000 x flow's level stay measurements."""
    frame = _plant().assign(energy=lambda f: 4e13 + np.arange(len(f)) * 1e6)
    frame.loc[80, "flow"] = 1e5
    info = ingest_file(workspace, write(tmp_path, "p.csv", frame.to_csv(index=False))).dataset
    assert info.quality.out_of_range == []
    stored = store.read_readings(workspace, info)
    assert stored.loc[80, "flow"] == 1e5 and stored["energy"].notna().all()


def test_many_absurd_cells_are_caught_by_the_ceiling(workspace, tmp_path):
    """Where absurd cells outnumber sound ones, the typical magnitude is absurd too; the
    ceiling still holds."""
    frame = _plant()
    frame.loc[::2, "flow"] = -9.99e37  # a logger's error sentinel on every other row
    info = ingest_file(workspace, write(tmp_path, "p.csv", frame.to_csv(index=False))).dataset
    [found] = info.quality.out_of_range
    assert (found.sensor, found.count, found.limit) == ("flow", 100, out_of_range_limit(1e38))


def test_empty_and_unusable_sensors_are_named_so_not_constant(workspace, tmp_path):
    frame = _plant().assign(flat=3.0, empty=np.nan, broken=np.inf)
    frame.to_parquet(tmp_path / "p.parquet")  # parquet keeps an all-inf column numeric
    result = ingest_file(workspace, tmp_path / "p.parquet")
    q = result.dataset.quality
    assert q.constant_sensors == ["flat"]
    assert q.empty_sensors == ["empty"]
    assert q.unusable_sensors == ["broken"]
    assert "Empty sensors (no value): empty." in result.warnings
    assert "Sensors with no usable value (all out of range): broken." in result.warnings
    assert "Constant sensors (no signal): flat." in result.warnings
    assert dict(quality_items(result.dataset))["Empty sensors"] == "empty, broken"


def test_old_quality_reports_still_load():
    """Reports stored before out-of-range counting have none of the new keys."""
    old = {"n_rows": 3, "constant_sensors": ["a"], "nan_share": {"a": 0.0}}
    report = QualityReport.from_dict(old)
    assert (report.out_of_range, report.empty_sensors, report.unusable_sensors) == ([], [], [])
