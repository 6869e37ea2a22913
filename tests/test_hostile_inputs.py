"""Inputs a careless or hostile user gives (issue 14's second round): each one is used as meant or
refused in one clear line, on a real DuckDB file; nothing half-written, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core import store
from core.detect import RunConfig, execute_run
from core.detect.runs import TrainingWindow
from core.errors import DataError
from core.ingest import ingest_file
from tests.label_data import make_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def con(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    yield con
    con.close()


@pytest.mark.parametrize("detector", ["iforest", "lof", "ocsvm"])
def test_a_short_training_window_runs_with_scikit_detectors(con, detector):
    """Below 20,000 training rows the alarm line is drawn on held-out scores; with no label
    taught, the taught rows are none, and scoring none crashed every scikit-learn detector."""
    info = make_dataset(con, assets=("p1",), n=400)
    run = execute_run(con, RunConfig(info.id, detector=detector, training=TrainingWindow()))
    assert (run.detector, run.n_scores) == (detector, 400)
    assert set(run.thresholds) == {"p1"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def _refused(done: subprocess.CompletedProcess, message: str) -> None:
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [f"error: {message}"]


def test_a_header_name_with_a_line_break_is_named_not_called_a_delimiter_problem(con, tmp_path):
    path = tmp_path / "names.csv"
    rows = "".join(f"2026-01-01 00:{i:02d},{i},{i % 3}\n" for i in range(60))
    path.write_text(f'time,"flow\nrate",level\n{rows}')
    with pytest.raises(DataError) as err:
        ingest_file(con, path)
    assert str(err.value).startswith(
        "names.csv: a column name in the header line runs onto the next line (a line break "
        "inside quotes, after 'time,\"flow')."
    )
    assert store.list_datasets(con) == []


@pytest.mark.parametrize(
    "args",
    [
        ("demo", "--seed", "-5", "--assets", "1", "--rows", "500"),
        ("inject", "--dataset", "toy", "--seed", "-3"),
    ],
    ids=["demo", "inject"],
)
def test_a_negative_seed_is_refused_in_one_line(tmp_path, args):
    workspace = tmp_path / "w.duckdb"
    con = store.open_workspace(workspace)
    make_dataset(con, assets=("p1",), n=600)
    con.close()
    done = _cli(*args, "--db", str(workspace))
    _refused(
        done,
        f"The 'seed' parameter must be >= 0. Got {args[2 if args[0] == 'demo' else 4]} instead.",
    )
    con = store.open_workspace(workspace)
    assert [d.name for d in store.list_datasets(con)] == ["toy"]
    con.close()


def test_score_out_naming_a_folder_is_refused_and_leaves_no_temporary_file(tmp_path):
    train = tmp_path / "train.csv"
    rows = "".join(f"2026-01-01 {i // 60:02d}:{i % 60:02d},{i % 7},{i % 5}\n" for i in range(400))
    train.write_text(f"time,a,b\n{rows}")
    out = tmp_path / "results"
    out.mkdir()
    done = _cli("score", "--train", str(train), "--data", str(train), "--out", str(out))
    _refused(done, f"The output {str(out)!r} is a folder: name the CSV file to write.")
    assert list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "train.csv"]


READERS = [
    ("datasets",),
    ("append", "new.csv", "--dataset", "toy"),
    ("inject", "--dataset", "toy"),
    ("twin", "--dataset", "toy", "--store"),
    ("export-model", "--dataset", "toy", "--out", "m.skops"),
    ("retrain", "--dataset", "toy"),
    ("report", "--dataset", "toy", "--out", "r.html"),
]


@pytest.mark.parametrize("args", READERS, ids=[a[0] for a in READERS])
def test_a_command_that_reads_a_workspace_refuses_a_missing_one_and_creates_nothing(
    tmp_path, monkeypatch, capsys, args
):
    """`datasets --db /nope/x.duckdb` made the folder and an empty workspace, then said that it
    held no dataset."""
    from core.cli import main

    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "nope" / "x.duckdb"
    assert main([*args, "--db", str(missing)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: No workspace at {missing}: "), err
    assert list(tmp_path.iterdir()) == [], "nothing created"


def test_ingest_still_makes_the_workspace_datasets_refused(tmp_path, capsys):
    from core.cli import main

    fresh = tmp_path / "new" / "w.duckdb"
    assert main(["datasets", "--db", str(fresh)]) == 2
    assert not fresh.parent.exists()
    data = tmp_path / "toy.csv"
    data.write_text("time,a\n" + "".join(f"2026-01-01 00:{m:02d},{m}\n" for m in range(60)))
    assert main(["ingest", str(data), "--db", str(fresh)]) == 0
    assert main(["datasets", "--db", str(fresh)]) == 0
    assert "\ttoy\t60 rows" in capsys.readouterr().out
