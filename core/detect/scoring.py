"""File-to-file scoring, the contract behind ``python -m core score --train``.

(Scoring with a saved model, ``score --model``, file sets and Dask: `core.detect.fleet`.)

TRAIN and DATA are wide CSVs: one timestamp column and numeric sensor columns (an ``asset``
column is optional). The output has exactly one row per DATA row, in DATA's order, with columns
``timestamp,score,is_anomaly``; the timestamp is copied verbatim from DATA. Every user error is a
`DataError`/`ConfigError` raised before anything is written, and the output appears atomically
(a temporary file renamed at the end), so a failed run never leaves a partial file behind.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.detect.coverage import coverage_warning, split_coverage
from core.detect.detectors.registry import make_detector
from core.detect.model import AnomalyModel, check_threshold_quantile
from core.detect.model_file import dump_fitted
from core.detect.windows import out_of_range_limits, without_out_of_range
from core.errors import ConfigError, DataError
from core.store.staging import ZONE_PATTERN
from core.types import ASSET, TS, OutOfRange

TIME_NAMES = ("timestamp", "ts", "time", "datetime", "date", "date_time", "time_stamp")
"""Column names taken as the time column, case-insensitively, before trying to parse others."""
_SNIFF_ROWS = 200


def _check_file(path: Path, role: str) -> None:
    if not path.exists():
        raise DataError(f"The {role} file {str(path)!r} does not exist.")
    if not path.is_file():
        raise DataError(f"The {role} path {str(path)!r} is not a file.")
    if path.stat().st_size == 0:
        raise DataError(f"The {role} file {str(path)!r} is empty.")


def _find_time_column(sample: pd.DataFrame, role: str) -> str:
    """The time column: a conventional name, else the first column whose values parse as dates."""
    by_name = {str(c).strip().lower(): c for c in sample.columns}
    for name in TIME_NAMES:
        if name in by_name:
            return by_name[name]
    for column in sample.columns:
        values = sample[column].dropna().astype(str)
        if values.empty or pd.to_numeric(values, errors="coerce").notna().all():
            continue  # plain numbers are sensors, not times
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        if parsed.notna().mean() >= 0.9:
            return column
    raise DataError(
        f"The {role} file has no timestamp column (looked for {', '.join(TIME_NAMES)} or a "
        "column of dates)."
    )


@dataclass(frozen=True)
class WideCsv:
    """A wide CSV read for scoring: ``ts`` (parsed), optional ``asset`` and numeric sensors with
    out-of-range readings left empty; the timestamps as written; what was left out."""

    frame: pd.DataFrame
    original_ts: pd.Series
    out_of_range: list[OutOfRange]


def read_wide_csv(path: str | os.PathLike, role: str) -> WideCsv:
    """Read, check and clean one wide CSV (every problem a `DataError` naming the file)."""
    path = Path(path)
    _check_file(path, role)
    sep = _delimiter(path)
    try:
        sample = pd.read_csv(path, nrows=_SNIFF_ROWS, dtype=str, sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"The {role} file {str(path)!r} is not a readable CSV: {exc}") from exc
    if sample.empty:
        raise DataError(f"The {role} file {str(path)!r} has a header but no rows.")
    _check_unique_names(path, role, sep)
    time_col = _find_time_column(sample, role)
    try:
        frame = pd.read_csv(path, dtype={time_col: str}, sep=sep)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"The {role} file {str(path)!r} is not a readable CSV: {exc}") from exc
    original = frame[time_col]
    parsed = parse_times(original, time_col, role)
    if parsed.isna().any():
        first = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(
            f"Column {time_col!r} of the {role} file has a value that is not a timestamp: "
            f"{original.iloc[first]!r} (data row {first + 1})."
        )
    frame = frame.drop(columns=[time_col])
    asset_col = next((c for c in frame.columns if str(c).strip().lower() == ASSET), None)
    if asset_col is not None:
        frame = frame.rename(columns={asset_col: ASSET})
        frame[ASSET] = frame[ASSET].astype(str)
    for column in frame.columns:
        if column == ASSET:
            continue
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(
            frame[column]
        ):
            raise DataError(
                f"Column {column!r} of the {role} file is not numeric (sensor columns must hold "
                "numbers)."
            )
    if TS in frame.columns:
        raise DataError(f"The {role} file has a column named {TS!r} besides its time column.")
    frame.insert(0, TS, parsed)
    return WideCsv(frame, original, _clear_out_of_range(frame, original))


def _delimiter(path: Path) -> str:
    """The delimiter of the header: ',' unless ';', tab or '|' splits it into more fields.

    Exports from European plants and labelled benchmarks (the pump rig of issue 13) separate
    fields with ';'; read with ',' their one wide column held no timestamp column."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        header = handle.readline()
    fields = {d: len(next(csv.reader([header], delimiter=d), [])) for d in (",", ";", "\t", "|")}
    return max(fields, key=lambda d: (fields[d], d == ","))


def _check_unique_names(path: Path, role: str, sep: str = ",") -> None:
    """pandas renames a repeated column ('speed' -> 'speed.1'): refuse it by its real name."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        names = [n.strip() for n in next(csv.reader(handle, delimiter=sep), [])]
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise DataError(
                f"The {role} file has two columns named {name!r} (number {seen[name] + 1} and "
                f"{i + 1}). Column names must be unique: rename one."
            )
        seen[name] = i


def _clear_out_of_range(frame: pd.DataFrame, original_ts: pd.Series) -> list[OutOfRange]:
    """Leave out-of-range readings (inf, 1e300: `out_of_range_limit`) empty, in place; what was
    left out, per sensor, with the first such row's time as written."""
    sensors = _sensors(frame)
    if not sensors:
        return []
    values = frame[sensors].to_numpy(dtype=np.float64)
    limits = out_of_range_limits(values)
    cleaned, bad = without_out_of_range(values, limits)
    found = []
    for j in np.flatnonzero(bad.any(axis=0)):
        rows = np.flatnonzero(bad[:, j])
        sensor = sensors[j]
        found.append(
            OutOfRange(sensor, len(rows), str(original_ts.iloc[rows[0]]),
                       f"{values[rows[0], j]:g}", float(limits[j]))
        )  # fmt: skip
        frame[sensor] = cleaned[:, j]
    return found


def parse_times(text: pd.Series, column: str, role: str) -> pd.Series:
    """Times as naive datetimes: zoned ones in UTC, naive ones as written; a file mixing the two
    is refused at the first row that breaks the format (the zone of the others is unknown)."""
    given = text.notna().to_numpy()
    zoned = text.str.contains(ZONE_PATTERN, regex=True, na=False).to_numpy()
    breaks = np.flatnonzero(given & (zoned != zoned[np.argmax(given)]))  # the first time decides
    if len(breaks):
        first = int(breaks[0])
        has, other = ("a", "none") if zoned[first] else ("no", "one")
        raise DataError(
            f"Column {column!r} of the {role} file has {text.iloc[first]!r} (data row {first + 1}) "
            f"with {has} time zone, but the rows above it have {other}. Times must all carry a "
            "zone or none."
        )
    if not zoned.any():
        return pd.to_datetime(text, errors="coerce", format="mixed")
    return pd.to_datetime(text, errors="coerce", format="mixed", utc=True).dt.tz_convert(None)


def _sensors(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in (TS, ASSET)]


def score_files(
    train_path: str | os.PathLike,
    data_path: str | os.PathLike | None,
    out_path: str | os.PathLike | None,
    detector: str = "auto",
    threshold_quantile: float | None = None,
    params: dict[str, Any] | None = None,
    save_model: str | os.PathLike | None = None,
) -> str:
    """Fit on TRAIN, score DATA, write OUT (timestamp,score,is_anomaly) and/or save the fitted
    model to ``save_model`` (skops, for ``score --model``); returns a summary line."""
    started = time.perf_counter()
    make_detector(detector, **(params or {}))  # bad detector: ConfigError before any file
    check_threshold_quantile(threshold_quantile)
    if (data_path is None) != (out_path is None):
        raise ConfigError("--data and --out go together: give both, or neither with --save-model.")
    if data_path is None and save_model is None:
        raise ConfigError("Give --data and --out to score, or --save-model to keep the model.")
    targets = [("--out", out_path), ("--save-model", save_model)]
    for flag, target in targets:
        if target is None:
            continue
        for role, source in (("training", train_path), ("data", data_path)):
            if source is not None and Path(source).resolve() == Path(target).resolve():
                raise ConfigError(
                    f"{flag} is the {role} file {str(source)!r}: writing there would overwrite "
                    "it. Choose another output file."
                )
        _check_folder(Path(target))
    train_csv = read_wide_csv(train_path, "training")
    train = train_csv.frame
    train_sensors = _sensors(train)
    if not train_sensors:
        raise DataError("The training file has no sensor columns.")
    if train[train_sensors].notna().sum().min() == 0:
        empty = [s for s in train_sensors if train[s].notna().sum() == 0]
        raise DataError(
            f"Training sensor columns with no usable value (empty or out of range): "
            f"{', '.join(map(str, empty))}."
        )
    data_csv = None if data_path is None else _read_data(data_path, train_sensors)
    model = AnomalyModel(
        detector=detector, params=params, threshold_quantile=threshold_quantile
    ).fit(train)
    lines = []
    if data_csv is not None:
        result = model.score(data_csv.frame)
        out = pd.DataFrame(
            {
                "timestamp": data_csv.original_ts.to_numpy(),
                "score": result.frame["score"].to_numpy(),
                "is_anomaly": result.frame["is_anomaly"].to_numpy().astype(np.int8),
            }
        )
        _write_atomic(out, Path(out_path))
        n_flag = int(out["is_anomaly"].sum())
        lines.append(
            f"Scored {len(out):,} rows with {detector!r} ({len(train_sensors)} sensors, trained "
            f"on {len(train):,} rows): {n_flag:,} flagged ({n_flag / len(out):.2%}); wrote "
            f"{out_path} in {time.perf_counter() - started:.1f} s"
        )
        message = coverage_warning(split_coverage(train, data_csv.frame, result.frame))
        if message:
            lines.append(f"warning: {message}")
    if save_model is not None:
        write_bytes_atomic(dump_fitted(model), Path(save_model))
        lines.append(
            f"Saved the model ({detector!r}, {len(train_sensors)} sensors, trained on "
            f"{len(train):,} rows) to {save_model}"
        )
    for role, read in (("training", train_csv), ("data", data_csv)):
        if read is not None and read.out_of_range:
            cells = "; ".join(o.describe() for o in read.out_of_range)
            lines.append(f"warning: {role} file: out-of-range values, treated as missing: {cells}.")
    return "\n".join(lines)


def _read_data(data_path: str | os.PathLike, train_sensors: list[str]) -> WideCsv:
    """The data file, with the training file's sensors, none empty."""
    data_csv = read_wide_csv(data_path, "data")
    data = data_csv.frame
    data_sensors = _sensors(data)
    extra = [s for s in data_sensors if s not in train_sensors]
    if extra:
        raise DataError(
            f"The data file has sensors the training file lacks: {', '.join(map(str, extra))}."
        )
    missing = [s for s in train_sensors if s not in data_sensors]
    if missing:
        raise DataError(f"The data file lacks sensor columns: {', '.join(map(str, missing))}.")
    data_empty = [s for s in train_sensors if data[s].notna().sum() == 0]
    if data_empty:  # scored at its training median it breaks every coupling: all rows flagged
        raise DataError(
            "The data file has no usable value (empty or out of range) in sensor columns: "
            f"{', '.join(map(str, data_empty))}. Fill them, or drop them from both files."
        )
    return data_csv


def _check_folder(path: Path) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.exists():
        raise DataError(f"The output folder {str(directory)!r} does not exist.")


def write_bytes_atomic(data: bytes, path: Path) -> None:
    """Write bytes next to the target and rename (readers never see half a model file)."""
    _check_folder(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write next to the target and rename, so readers never see a half-written file."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.exists():
        raise DataError(f"The output folder {str(directory)!r} does not exist.")
    if path.is_dir():
        raise DataError(f"The output {str(path)!r} is a folder: name the CSV file to write.")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            frame.to_csv(handle, index=False, float_format="%.6g")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
