"""The `python -m core score` contract, end to end through a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.test_features import toy_plant

ROOT = Path(__file__).resolve().parents[1]
SENSORS = ["speed", "flow", "pressure", "current", "temp", "vibration"]


def _run(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", "score", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("score")
    # Training must cover the setpoints the data visits (3 levels, held 2.5-7 h): a window
    # that does not sets its alarm line high on held-out blocks, and a subtle fault is missed.
    plant = toy_plant(n=6000, seed=8).rename(columns={"ts": "timestamp"})
    plant["timestamp"] = plant["timestamp"].dt.strftime("%Y-%m-%dT%H:%M")  # kept verbatim
    train, data = plant.iloc[:4800], plant.iloc[4800:].copy()
    data.loc[data.index[500:530], "current"] += 4.0  # a fault to find
    data = data.iloc[::-1]  # the output must follow DATA's order, whatever it is
    paths = {"train": folder / "train.csv", "data": folder / "data.csv"}
    train.to_csv(paths["train"], index=False)
    data.to_csv(paths["data"], index=False)
    bad = {
        "empty": "",
        "header_only": "timestamp,speed\n",
        "no_time": "a,b\n1,2\n3,4\n",
        "text_sensor": data.assign(flow="high").to_csv(index=False),
        "extra_sensor": data.assign(torque=1.0).to_csv(index=False),
        "missing_sensor": data.drop(columns=["temp"]).to_csv(index=False),
        "bad_time": data.assign(timestamp="yesterday").to_csv(index=False),
        # 55 minutes: rolling windows shrink to 5 samples (`short_training_window`), the warm-up
        # of 10 rows leaves 45 to learn from, under the 50 needed
        "short_train": train.iloc[:55].to_csv(index=False),
        "all_empty": data.assign(**{s: np.nan for s in SENSORS}).to_csv(index=False),
        "empty_sensor": data.assign(flow=np.nan).to_csv(index=False),
        "dup_train": train.to_csv(index=False).replace("vibration", "speed", 1),
        "mixed_zone": data.assign(  # a zone from row 601 on: its first rows' zone is unknown
            timestamp=[t + ("+05:00" if i >= 600 else "") for i, t in enumerate(data["timestamp"])]
        ).to_csv(index=False),
    }
    for value in ("1e300", "inf", ""):  # one absurd cell, and the same cell empty
        cells = data.astype({"flow": object})
        cells.iloc[300, cells.columns.get_loc("flow")] = value
        bad[f"flow_{value or 'empty'}"] = cells.to_csv(index=False)
    for name, text in bad.items():
        (folder / f"{name}.csv").write_text(text)
        paths[name] = folder / f"{name}.csv"
    paths["folder"] = folder
    return paths


@pytest.fixture(scope="module")
def default_run(files: dict[str, Path]) -> tuple[subprocess.CompletedProcess, Path]:
    out = files["folder"] / "out.csv"
    return _run("--train", files["train"], "--data", files["data"], "--out", out), out


def test_good_run_writes_one_row_per_data_row_in_order(
    files: dict[str, Path], default_run: tuple[subprocess.CompletedProcess, Path]
) -> None:
    done, out = default_run
    assert done.returncode == 0, done.stderr
    assert "Scored 1,200 rows" in done.stderr
    result = pd.read_csv(out, dtype={"timestamp": str})
    data = pd.read_csv(files["data"], dtype={"timestamp": str})
    assert list(result.columns) == ["timestamp", "score", "is_anomaly"]
    assert len(result) == len(data)
    assert (result["timestamp"] == data["timestamp"]).all()  # same order, verbatim
    assert set(result["is_anomaly"].unique()) <= {0, 1}
    assert np.isfinite(result["score"]).all()
    fault = np.zeros(len(data), dtype=bool)
    fault[len(data) - 530 : len(data) - 500] = True  # the faulty rows, reversed
    assert result["is_anomaly"].to_numpy()[fault].mean() > 0.8
    assert result["is_anomaly"].to_numpy()[~fault].mean() < 0.02


def test_threshold_quantile_and_detector_options(
    files: dict[str, Path], default_run: tuple[subprocess.CompletedProcess, Path]
) -> None:
    out = files["folder"] / "out_q.csv"
    args = ["--detector", "zmax", "--threshold-quantile", "0.9"]
    done = _run("--train", files["train"], "--data", files["data"], "--out", out, *args)
    assert done.returncode == 0, done.stderr
    loose = pd.read_csv(out)["is_anomaly"].mean()
    default = pd.read_csv(default_run[1])["is_anomaly"].mean()
    assert 0.03 < loose < 0.3  # a line at the 90th percentile flags a few % beside the fault
    assert loose > 1.5 * default


@pytest.mark.parametrize(
    ("train", "data", "extra", "message"),
    [
        ("missing", "data", [], "does not exist"),
        ("empty", "data", [], "is empty"),
        ("train", "header_only", [], "has a header but no rows"),
        ("no_time", "data", [], "no timestamp column"),
        ("train", "text_sensor", [], "Column 'flow' of the data file is not numeric"),
        ("train", "extra_sensor", [], "sensors the training file lacks: torque"),
        ("train", "missing_sensor", [], "lacks sensor columns: temp"),
        ("train", "bad_time", [], "not a timestamp: 'yesterday'"),
        ("train", "mixed_zone", [], "(data row 601) with a time zone, but the rows above it"),
        ("train", "all_empty", [], "no usable value (empty or out of range) in sensor columns"),
        (
            "train",
            "empty_sensor",
            [],
            "no usable value (empty or out of range) in sensor columns: flow.",
        ),
        (
            "dup_train",
            "data",
            [],
            "The training file has two columns named 'speed' (number 2 and 7)",
        ),
        ("train", "data", ["--detector", "magic"], "Unknown detector 'magic'"),
        ("train", "data", ["--threshold-quantile", "1.5"], "must be in (0.5, 1). Got 1.5"),
        ("short_train", "data", [], "only 45 can be learnt from"),
        ("train", "data", ["--detector", "autoencoder", "--param", "window=0"], "in [1, 64]"),
        ("train", "data", ["--param", "window=3"], "Unknown parameter 'window' for detector"),
        ("train", "data", ["--detector", "lof", "--param", "n_neighbors=x"], "must be int"),
        ("train", "data", ["--param", "oops"], "is written NAME=VALUE"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_output(
    files: dict[str, Path], train: str, data: str, extra: list[str], message: str
) -> None:
    out = files["folder"] / f"never_{train}_{data}.csv"
    train_path = files.get(train, files["folder"] / "missing.csv")
    done = _run("--train", train_path, "--data", files[data], "--out", out, *extra)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert message in lines[0]
    assert not out.exists()
    assert not list(files["folder"].glob(f".{out.name}.*"))  # no temp file left either


def test_semicolon_files_score_like_comma_files(
    files: dict[str, Path], default_run: tuple[subprocess.CompletedProcess, Path]
) -> None:
    """The pump rig of issue 13 ships ';'-separated CSVs: read as one column, they had "no
    timestamp column"."""
    semi = {}
    for role in ("train", "data"):
        semi[role] = files["folder"] / f"semi_{role}.csv"
        pd.read_csv(files[role], dtype=str).to_csv(semi[role], index=False, sep=";")
    out = files["folder"] / "out_semi.csv"
    done = _run("--train", semi["train"], "--data", semi["data"], "--out", out)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == default_run[1].read_text()


@pytest.mark.parametrize("value", ["1e300", "inf"])
def test_one_absurd_cell_scores_like_an_empty_one_and_is_reported(
    files: dict[str, Path], value: str
) -> None:
    """One 1e300 used to flag every later row (scores 1e4-1e5); it is now a missing reading."""
    runs = {}
    for cell in (value, "empty"):
        out = files["folder"] / f"out_flow_{cell}.csv"
        done = _run("--train", files["train"], "--data", files[f"flow_{cell}"], "--out", out)
        assert done.returncode == 0, done.stderr
        runs[cell] = (done.stderr, pd.read_csv(out))
    stderr, scored = runs[value]
    when = pd.read_csv(files["data"], dtype=str)["timestamp"].iloc[300]
    assert f"data file: out-of-range values, treated as missing: 'flow': 1 from {when}" in stderr
    assert f"e.g. {float(value):g}" in stderr
    assert "out-of-range" not in runs["empty"][0]
    empty = runs["empty"][1]
    assert (scored["is_anomaly"] == empty["is_anomaly"]).all()
    assert np.allclose(scored["score"], empty["score"])
    assert empty["is_anomaly"].mean() < 0.05  # the fault's rows, not everything after the cell


@pytest.mark.parametrize("role", ["train", "data"])
def test_out_equal_to_an_input_is_refused_and_the_input_kept(
    files: dict[str, Path], role: str, tmp_path: Path
) -> None:
    copy = {k: tmp_path / f"{k}.csv" for k in ("train", "data")}
    for k, path in copy.items():
        path.write_bytes(files[k].read_bytes())
    before = copy[role].read_bytes()
    done = _run("--train", copy["train"], "--data", copy["data"], "--out", copy[role])
    assert done.returncode == 2
    assert "would overwrite it" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert copy[role].read_bytes() == before


def test_detector_parameters_reach_the_detector(files: dict[str, Path]) -> None:
    out = files["folder"] / "out_ae.csv"
    args = ["--detector", "autoencoder", "--param", "window=4", "--param", "max_iter=50"]
    done = _run("--train", files["train"], "--data", files["data"], "--out", out, *args)
    assert done.returncode == 0, done.stderr
    assert "with 'autoencoder'" in done.stderr
    assert len(pd.read_csv(out)) == len(pd.read_csv(files["data"]))


@pytest.mark.parametrize("n_rows", [1, 2])
def test_data_shorter_than_the_transient_lag_scores(files: dict[str, Path], n_rows: int) -> None:
    """One or two rows of data (fewer than the 3 the setpoint-step check looks back) score."""
    data = files["folder"] / f"rows_{n_rows}.csv"
    pd.read_csv(files["data"]).iloc[:n_rows].to_csv(data, index=False)
    out = files["folder"] / f"out_rows_{n_rows}.csv"
    done = _run("--train", files["train"], "--data", data, "--out", out)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(out)) == n_rows


def test_constant_training_scores_without_numpy_warnings(files: dict[str, Path]) -> None:
    """Training where every sensor is constant has no variance for PCA to split: the run
    succeeds with its summary and warning lines, not a dozen RuntimeWarnings from scikit-learn."""
    train = files["folder"] / "constant_train.csv"
    pd.read_csv(files["train"]).assign(**{s: 1.0 for s in SENSORS}).to_csv(train, index=False)
    out = files["folder"] / "out_constant.csv"
    done = _run("--train", train, "--data", files["data"], "--out", out)
    assert done.returncode == 0, done.stderr
    assert "RuntimeWarning" not in done.stderr, done.stderr
