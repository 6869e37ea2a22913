"""Find similar: MASS distance profiles against brute force, and planted look-alikes found first."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from core import store
from core.errors import DataError
from core.labels import history as labels
from core.labels import similar
from core.labels.history import LabelDraft
from core.types import DatasetInfo, QualityReport

T0 = datetime(2026, 3, 1)
M = 40
PLANTS = {"p1": [500, 2000], "p2": [2500], "p3": [1200]}
"""Where the pattern sits (row in the asset); the query is the first one on p1."""


def _znorm(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / x.std(axis=0)


def _brute(query: np.ndarray, series: np.ndarray) -> np.ndarray:
    m = len(query)
    return np.array(
        [
            np.sqrt(((_znorm(series[i : i + m]) - _znorm(query)) ** 2).sum())
            for i in range(len(series) - m + 1)
        ]
    )


@pytest.mark.parametrize("k", [1, 3])
def test_distance_profile_equals_brute_force(k):
    rng = np.random.default_rng(k)
    series = rng.normal(size=(400, k)).cumsum(axis=0) + 1000.0  # a large level tests precision
    query = series[50:80] * 3 + rng.normal(scale=0.05, size=(30, k))
    np.testing.assert_allclose(similar.distance_profile(query, series), _brute(query, series))


def test_constant_windows_and_gaps():
    series = np.random.default_rng(0).normal(size=(200, 1))
    series[100:130, 0] = 4.0  # a stuck sensor
    series[10, 0] = np.nan
    profile = similar.distance_profile(series[100:130], series)
    assert profile[100] == 0.0, "a constant window matches a constant query exactly"
    assert profile[40] == pytest.approx(np.sqrt(30)), "constant vs varying: sqrt(m)"
    assert np.isinf(profile[:11]).all() and np.isfinite(profile[11])


def test_pick_matches_skips_overlaps_and_banned_windows():
    profile = np.array([5.0, 1.0, 0.5, 0.9, 4.0, 3.0, 0.2, 7.0])
    banned = np.zeros(8, dtype=bool)
    banned[6] = True
    assert similar.pick_matches(profile, 3, exclusion=2, banned=banned).tolist() == [2, 5, 0]
    assert similar.pick_matches(np.full(3, np.inf), 2, exclusion=1).tolist() == []


def _pattern(m: int) -> np.ndarray:
    t = np.linspace(0, 1, m)
    return np.column_stack([np.sin(2 * np.pi * t) * 3, (t * 5) % 1 * 4, (t > 0.5) * 5.0])


def _plant(con) -> DatasetInfo:
    """Three assets of AR(1) noise with one multivariate pattern planted four times."""
    rng = np.random.default_rng(11)
    n, parts = 3000, []
    for a_i, asset in enumerate(("p1", "p2", "p3")):
        noise = rng.normal(size=(n, 3))
        values = np.zeros((n, 3))
        for i in range(1, n):
            values[i] = 0.8 * values[i - 1] + noise[i]
        for j, row in enumerate(PLANTS[asset]):
            scale, shift = 1.0 + 0.5 * (a_i + j), 10.0 * a_i  # z-normalisation ignores both
            values[row : row + M] = _pattern(M) * scale + shift + rng.normal(0, 0.2, (M, 3))
        part = pd.DataFrame(values, columns=["a", "b", "c"])
        part.insert(0, "asset", asset)
        part.insert(0, "ts", pd.date_range(T0, periods=n, freq="10s"))
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    ds_id = store.next_dataset_id(con)
    info = DatasetInfo(
        id=ds_id,
        name="planted",
        table_name=store.readings_table_name(ds_id),
        source_file="planted",
        sha256="1" * 64,
        layout="wide",
        n_rows=len(frame),
        sensors=["a", "b", "c"],
        assets=["p1", "p2", "p3"],
        time_start=T0,
        time_end=frame["ts"].max().to_pydatetime(),
        interval_seconds=10.0,
        loaded_at=datetime(2026, 3, 2),
        quality=QualityReport(n_rows=len(frame)),
    )
    return store.add_dataset_from_frame(con, info, frame)


def _row_time(row: int) -> datetime:
    return T0 + timedelta(seconds=10 * row)


@pytest.fixture
def planted(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    yield con, _plant(con)
    con.close()


def test_planted_pattern_is_found_first_on_every_asset(planted):
    con, info = planted
    q = PLANTS["p1"][0]
    result = similar.find_similar(
        con, info.id, "p1", _row_time(q), _row_time(q + M - 1), ["a", "b", "c"], k=6
    )
    assert result.length == M
    top3 = {(r["asset"], r["start"]) for r in result.matches.head(3).to_dict("records")}
    expected = {("p1", pd.Timestamp(_row_time(2000))), ("p2", pd.Timestamp(_row_time(2500)))}
    expected |= {("p3", pd.Timestamp(_row_time(1200)))}
    assert top3 == expected
    assert (result.matches["correlation"].head(3) > 0.95).all()
    assert (result.matches["correlation"].iloc[3:] < 0.8).all(), "the rest are far worse"
    assert result.matches["distance"].is_monotonic_increasing


def test_matches_never_overlap_the_query_or_each_other(planted):
    con, info = planted
    q = PLANTS["p1"][0]
    result = similar.find_similar(
        con, info.id, "p1", _row_time(q), _row_time(q + M - 1), ["a", "c"], k=12
    )
    spans = result.matches[["asset", "start", "end"]].to_dict("records")
    spans.append({"asset": "p1", "start": _row_time(q), "end": _row_time(q + M - 1)})
    for i, x in enumerate(spans):
        for y in spans[i + 1 :]:
            if x["asset"] == y["asset"]:
                assert x["end"] < y["start"] or y["end"] < x["start"], (x, y)
    assert len(result.windows) == len(result.matches) == 12
    assert result.windows[0].shape == (M, 2)


def test_matches_say_which_are_already_labelled(planted):
    con, info = planted
    labels.create_labels(
        con,
        info.id,
        [LabelDraft("p3", _row_time(1200), _row_time(1239), "confirmed", "process upset")],
        "ana",
    )
    q = PLANTS["p1"][0]
    result = similar.find_similar(con, info.id, "p1", _row_time(q), _row_time(q + 39), ["a"], k=3)
    status = dict(zip(result.matches["asset"], result.matches["status"], strict=True))
    assert status["p3"] == "Confirmed"
    assert status["p2"] == "Unreviewed"


def test_a_one_sample_query_is_widened(planted):
    con, info = planted
    at = _row_time(700)
    result = similar.find_similar(con, info.id, "p2", at, at, ["b"], k=2)
    assert result.length == similar.MIN_WINDOW


def test_find_similar_needs_sensors(planted):
    con, info = planted
    with pytest.raises(DataError, match="at least one sensor"):
        similar.find_similar(con, info.id, "p1", _row_time(0), _row_time(10), [])


def test_windows_in_marked_operating_modes_are_skipped(planted):
    from core.detect import modes

    con, info = planted
    modes.add_mode(con, info.id, "p2", _row_time(2490), _row_time(2510), "maintenance", "ana")
    q = PLANTS["p1"][0]
    args = (con, info.id, "p1", _row_time(q), _row_time(q + M - 1), ["a", "b", "c"])
    kept = similar.find_similar(*args, k=3, skip_modes=False).matches
    skipped = similar.find_similar(*args, k=3).matches
    assert set(kept["asset"]) == {"p1", "p2", "p3"}
    assert "p2" not in set(skipped.head(2)["asset"]), "the planted p2 copy is under a mark"
