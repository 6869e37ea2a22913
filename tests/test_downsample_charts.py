"""Downsampling keeps the extremes and caps what reaches the browser; figures carry the data."""

import numpy as np
import pandas as pd
import pytest

from core.charts.common import Shade
from core.charts.downsample import downsample_indices, downsample_xy
from core.charts.explorer import correlation_figure, sensor_figure


@pytest.fixture
def long_series():
    rng = np.random.default_rng(1)
    x = pd.date_range("2026-01-01", periods=1_000_000, freq="1s").to_numpy()
    y = rng.normal(size=len(x))
    y[123_456] = 50.0  # a spike an analyst must see
    y[654_321] = -40.0
    return x, y


def test_downsampling_caps_points_and_keeps_spikes(long_series):
    x, y = long_series
    xs, ys = downsample_xy(x, y, 4000)
    assert len(xs) <= 4000
    assert ys.max() == 50.0 and ys.min() == -40.0
    assert np.all(np.diff(xs.astype("int64")) > 0)


def test_short_series_is_returned_whole():
    idx = downsample_indices(np.arange(100), np.arange(100.0), 4000)
    assert np.array_equal(idx, np.arange(100))


def test_gaps_survive_downsampling():
    y = np.sin(np.linspace(0, 50, 100_000))
    y[40_000:41_000] = np.nan
    xs, ys = downsample_xy(np.arange(len(y)), y, 2000)
    assert len(xs) <= 2000
    assert np.isnan(ys).any()


def test_sensor_figure_one_trace_per_sensor_capped(long_series):
    x, y = long_series
    frame = pd.DataFrame({"ts": x, "a": y, "b": -y})
    shade = Shade(pd.Timestamp(x[1000]), pd.Timestamp(x[2000]), "fault: spike")
    fig = sensor_figure(frame, ["a", "b"], [shade], max_points=3000)
    assert [t.name for t in fig.data] == ["a", "b"]
    assert all(len(t.x) <= 3000 for t in fig.data)
    assert max(fig.data[0].y) == 50.0
    assert len(fig.layout.shapes) == 2  # the fault is shaded on each sensor panel
    titles = {a.text: a for a in fig.layout.annotations}
    assert titles["a"].x == 0 and titles["a"].xanchor == "left", "clear of the fault labels"
    assert titles["fault: spike"].x != 0


def test_correlation_figure_shows_the_matrix():
    matrix = pd.DataFrame([[1.0, 0.5], [0.5, 1.0]], index=["a", "b"], columns=["a", "b"])
    fig = correlation_figure(matrix)
    assert np.allclose(np.asarray(fig.data[0].z), matrix.to_numpy())
    assert list(fig.data[0].x) == ["a", "b"]
