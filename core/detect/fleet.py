"""Scoring files with a saved model: one file, or a fleet of Parquet files, in one process or on Dask.

DATA is a CSV or Parquet file, a folder of Parquet files or a glob of them (one per asset or one
per day). A partition is a group of assets with every row they have in any file: rolling features
and the 5-day re-centring see each asset's whole history in time order, so no row near a file
boundary scores differently from scoring all files as one table. Assets are scored independently
of each other (`AnomalyModel.score` runs one pipeline per asset; out-of-range readings are judged
per asset), so how assets are grouped never changes a score. `score_partition` is the one scoring
function, called in a loop in one process and by every Dask worker; `write_scores` gathers each
input file's rows and writes one Parquet of ``timestamp, asset, score, is_anomaly`` in the file's
row order. Everything is written in a hidden folder and moved in place at the end: a failed run
leaves no output behind.
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.detect.model_file import base_model, model_sensors
from core.detect.scoring import TIME_NAMES, parse_times, read_wide_csv
from core.detect.windows import out_of_range_limits, without_out_of_range
from core.errors import ConfigError, DataError
from core.types import ASSET, TS

Progress = Callable[[float, str], None]
ASSETS_PER_PARTITION = 8
"""Assets scored together in one partition (a task): enough to amortise reading a shared
per-day file, few enough that a 2-worker cluster still has many tasks to balance."""
OUT_COLUMNS = ("timestamp", "asset", "score", "is_anomaly")
PARQUET = (".parquet", ".pq")


@dataclass(frozen=True)
class Source:
    """One input file: where its time and asset columns are, which assets it holds."""

    index: int
    path: str
    time_col: str
    asset_col: str | None
    assets: tuple[str, ...]
    target: str
    """The output file's name (inside OUT), or OUT itself for a single file."""
    spans: tuple[tuple[str, Any, Any], ...] = ()
    """Per asset, its first and last time in this file."""


@dataclass(frozen=True)
class Partition:
    """A unit of work: some assets and the files holding their rows."""

    assets: tuple[str, ...]
    sources: tuple[Source, ...]


# --- what to score ------------------------------------------------------------------------------


def input_files(data: str | os.PathLike) -> list[Path]:
    """DATA as a list of files: the file itself, a folder's Parquet files or a glob's matches."""
    text = str(data)
    path = Path(text)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in PARQUET and p.is_file())
        if not files:
            raise DataError(f"The data folder {text!r} holds no Parquet files (*.parquet).")
        return files
    if glob.has_magic(text):
        files = sorted(Path(p) for p in glob.glob(text) if Path(p).is_file())
        if not files:
            raise DataError(f"No data file matches {text!r}.")
        other = [p for p in files if p.suffix.lower() not in PARQUET]
        if other:
            raise DataError(
                f"{str(other[0])!r} matched {text!r} but is not a Parquet file: several data "
                "files must all be Parquet."
            )
        return files
    if not path.exists():
        raise DataError(f"The data file {text!r} does not exist.")
    if path.suffix.lower() not in (*PARQUET, ".csv"):
        raise DataError(f"The data file {text!r} is neither CSV nor Parquet (.csv, .parquet).")
    return [path]


def check_sensors(expected: Sequence[str], found: Sequence[str], where: str) -> None:
    """`DataError` naming missing and extra sensors, or saying the model is for others."""
    missing = [s for s in expected if s not in found]
    extra = [s for s in found if s not in expected]
    if missing and len(missing) == len(expected):
        mid = where[:1].lower() + where[1:]  # "The data file 'x'" within the sentence
        raise DataError(
            f"The model is for other sensors: it was trained on {', '.join(map(repr, expected))} "
            f"and {mid} has {', '.join(map(repr, found)) or 'none'}."
        )
    if missing:
        raise DataError(f"{where} lacks sensor columns the model needs: {', '.join(missing)}.")
    if extra:
        raise DataError(
            f"{where} has sensor columns the model was not trained on: {', '.join(extra)}."
        )


def implied_asset(path: Path, known: Sequence[str]) -> str:
    """The asset of a file without an asset column: the one its name gives when the model knows
    it (files per asset: ``P-101.parquet``), else the model's only asset (files per day of one
    machine), else the name (scored by the model's pooled pipeline, as any new asset)."""
    if path.stem in known:
        return path.stem
    return known[0] if len(known) == 1 else path.stem


def _parquet_source(
    index: int, path: Path, sensors: list[str], target: str, known: Sequence[str]
) -> Source:
    where = f"The data file {path.name!r}"
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{where} is not a readable Parquet file: {exc}") from exc
    names = list(schema.names)
    by_name = {n.strip().lower(): n for n in names}
    time_col = next((by_name[n] for n in TIME_NAMES if n in by_name), None)
    if time_col is None:
        time_col = next((f.name for f in schema if pa.types.is_timestamp(f.type)), None)
    if time_col is None:
        raise DataError(f"{where} has no timestamp column (looked for {', '.join(TIME_NAMES)}).")
    asset_col = by_name.get(ASSET)
    found = [n for n in names if n not in (time_col, asset_col)]
    check_sensors(sensors, found, where)
    for name in found:
        kind = schema.field(name).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
            raise DataError(
                f"Column {name!r} of the data file {path.name!r} holds {kind} values, not "
                "numbers (sensor columns must hold numbers)."
            )
    table = pq.read_table(path, columns=[time_col, *([asset_col] if asset_col else [])])
    source = Source(index, str(path), time_col, asset_col, (), target)
    times = _times(table.column(time_col), source)
    if asset_col is None:
        names = pd.Series(implied_asset(path, known), index=times.index)
    else:
        names = pd.Series(table.column(asset_col).cast(pa.string()).to_numpy(zero_copy_only=False))
    return replace(source, assets=tuple(sorted(names.unique())), spans=_spans(times, names))


def _spans(times: pd.Series, names: pd.Series) -> tuple[tuple[str, Any, Any], ...]:
    ranges = pd.DataFrame({"t": times.to_numpy(), "a": names.to_numpy()}).groupby("a")["t"]
    return tuple(
        (str(a), lo, hi) for (a, lo), hi in zip(ranges.min().items(), ranges.max(), strict=True)
    )


def _check_overlaps(holders: dict[str, list[Source]]) -> None:
    """Files of one asset must follow each other in time (else they are different machines)."""
    for asset, held in holders.items():
        ranges = sorted(
            (lo, hi, Path(s.path).name) for s in held for a, lo, hi in s.spans if a == asset
        )
        for (_, end, first), (start, _, second) in zip(ranges, ranges[1:], strict=False):
            if start <= end:
                raise DataError(
                    f"The data files {first!r} and {second!r} both hold asset {asset!r} at "
                    f"{start}: files of one asset must not overlap in time (give files of "
                    "different machines an asset column, or name each after its asset)."
                )


def plan(
    model: Any, files: Sequence[Path], single_target: str | None = None, slots: int = 1
) -> tuple[list[Source], list[Partition]]:
    """Check every file against the model (before anything is scored) and group the work.

    Assets found in the same files are grouped, at most `ASSETS_PER_PARTITION` at a time and
    fewer when that leaves ``slots`` (worker threads) without work."""
    sensors = model_sensors(model)
    known = sorted(base_model(model).pipelines_)
    sources = []
    for i, path in enumerate(files):
        target = single_target or f"{path.stem}.parquet"
        if path.suffix.lower() == ".csv":
            read = read_wide_csv(path, "data")
            where = f"The data file {path.name!r}"
            check_sensors(sensors, [c for c in read.frame.columns if c not in (TS, ASSET)], where)
            if ASSET in read.frame:
                names, asset_col = read.frame[ASSET].astype(str), ASSET
            else:
                names, asset_col = (
                    pd.Series(implied_asset(path, known), index=read.frame.index),
                    None,
                )
            assets, spans = tuple(sorted(names.unique())), _spans(read.frame[TS], names)
            sources.append(Source(i, str(path), "", asset_col, assets, target, spans))
        else:
            sources.append(_parquet_source(i, path, sensors, target, known))
    names = [s.target for s in sources]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise DataError(f"Two data files would both write {twice!r}: give them distinct names.")
    holders: dict[str, list[Source]] = {}
    for source in sources:
        for asset in source.assets:
            holders.setdefault(asset, []).append(source)
    _check_overlaps(holders)
    by_files: dict[tuple[int, ...], list[str]] = {}
    for asset, held in sorted(holders.items()):
        by_files.setdefault(tuple(s.index for s in held), []).append(asset)
    partitions = []
    for indices, assets in by_files.items():
        size = max(1, min(ASSETS_PER_PARTITION, -(-len(assets) // slots)))
        for k in range(0, len(assets), size):
            chunk = tuple(assets[k : k + size])
            partitions.append(Partition(chunk, tuple(sources[i] for i in indices)))
    return sources, partitions


# --- the scoring function (one process and every Dask worker) --------------------------------


def _read(source: Source, assets: Sequence[str], sensors: list[str]) -> tuple[pd.DataFrame, Any]:
    """The rows of ``assets`` in one file: (ts, asset, sensors) frame with each row's position
    in the file as index, and the timestamps as written."""
    if source.path.lower().endswith(".csv"):
        read = read_wide_csv(source.path, "data")
        frame, original = read.frame, read.original_ts.to_numpy()
        if source.asset_col is None:
            frame = frame.assign(**{ASSET: source.assets[0]})
    else:
        columns = [source.time_col, *([source.asset_col] if source.asset_col else []), *sensors]
        table = pq.read_table(source.path, columns=columns)
        original = table.column(source.time_col).to_pandas().to_numpy()
        frame = table.select(sensors).to_pandas()
        frame[ASSET] = (
            table.column(source.asset_col).cast(pa.string()).to_numpy(zero_copy_only=False)
            if source.asset_col
            else source.assets[0]
        )
        frame[TS] = _times(table.column(source.time_col), source)
    keep = np.flatnonzero(frame[ASSET].astype(str).isin(list(assets)).to_numpy())
    frame = frame.iloc[keep][[TS, ASSET, *sensors]]
    frame.index = keep
    return frame, original[keep]


def _times(column: pa.ChunkedArray, source: Source) -> pd.Series:
    if pa.types.is_timestamp(column.type):
        values = column.to_pandas()
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert(None)
        return values.astype("datetime64[us]")
    parsed = parse_times(column.to_pandas().astype(str), source.time_col, "data")
    if parsed.isna().any():
        raise DataError(
            f"Column {source.time_col!r} of the data file {Path(source.path).name!r} has values "
            "that are not timestamps."
        )
    return parsed


def _clean(frame: pd.DataFrame, sensors: list[str], asset: str) -> pd.DataFrame:
    """One asset's readings with out-of-range values empty; a sensor with no usable value is
    refused (scored at its training median it would break every coupling)."""
    values = frame[sensors].to_numpy(dtype=np.float64)
    cleaned, bad = without_out_of_range(values, out_of_range_limits(values))
    empty = [s for j, s in enumerate(sensors) if np.isnan(cleaned[:, j]).all()]
    if empty:
        raise DataError(
            f"Asset {asset!r} has no usable value (empty or out of range) in sensor columns: "
            f"{', '.join(map(str, empty))}."
        )
    if bad.any():
        frame = frame.copy()
        frame[sensors] = cleaned
    return frame


def score_partition(model: Any, partition: Partition) -> dict[int, pd.DataFrame]:
    """Score a partition's assets over all their files; per file index, its rows' scores
    (index: row position in the file)."""
    sensors = model_sensors(model)
    frames, originals, owners = [], [], []
    for source in partition.sources:
        frame, original = _read(source, partition.assets, sensors)
        frames.append(frame)
        originals.append(original)
        owners.append(np.full(len(frame), source.index))
    positions = np.concatenate([f.index.to_numpy() for f in frames])
    whole = pd.concat(frames, ignore_index=True)
    owner, original = np.concatenate(owners), np.concatenate(originals)
    parts = []
    for asset in partition.assets:
        rows = np.flatnonzero(whole[ASSET].to_numpy() == asset)
        if len(rows) == 0:
            continue
        sub = _clean(whole.iloc[rows].reset_index(drop=True), sensors, asset)
        result = model.score(sub).frame
        parts.append((rows, result["score"].to_numpy(), result["is_anomaly"].to_numpy()))
    score = np.zeros(len(whole))
    flag = np.zeros(len(whole), dtype=np.int8)
    for rows, s, f in parts:
        score[rows], flag[rows] = s, f
    out = {}
    for index in np.unique(owner):
        mine = owner == index
        out[int(index)] = pd.DataFrame(
            {
                "timestamp": original[mine],
                "asset": whole[ASSET].to_numpy()[mine],
                "score": score[mine],
                "is_anomaly": flag[mine],
            },
            index=positions[mine],
        )
    return out


def write_scores(source: Source, folder: str, pieces: Sequence[dict[int, pd.DataFrame]]) -> int:
    """Write one input file's scores (gathered from the partitions holding it) in its row order;
    returns the number of rows written."""
    frame = pd.concat([p[source.index] for p in pieces if source.index in p]).sort_index()
    path = Path(folder) / source.target
    if path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False, float_format="%.6g")
    else:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    return len(frame)


# --- running it ---------------------------------------------------------------------------------


def _holders(sources: list[Source], partitions: list[Partition]) -> list[list[int]]:
    """Per source, the partitions holding some of its rows."""
    return [
        [j for j, p in enumerate(partitions) if any(s.index == src.index for s in p.sources)]
        for src in sources
    ]


def _run_local(model: Any, sources, partitions, folder: str, progress: Progress) -> int:
    """Score partitions in turn; write each file as soon as its last partition is scored and
    drop scores no file still needs, so memory stays that of a few partitions."""
    holders = _holders(sources, partitions)
    waiting = {s.index: set(h) for s, h in zip(sources, holders, strict=True)}
    needed = [sum(j in h for h in holders) for j in range(len(partitions))]
    done: dict[int, dict[int, pd.DataFrame]] = {}
    rows = 0
    for j, partition in enumerate(_reported(partitions, progress)):
        done[j] = score_partition(model, partition)
        for source, held in zip(sources, holders, strict=True):
            if j in waiting[source.index]:
                waiting[source.index].discard(j)
                if not waiting[source.index]:
                    rows += write_scores(source, folder, [done[k] for k in held])
                    for k in held:
                        needed[k] -= 1
                        if needed[k] == 0:
                            del done[k]
    return rows


def _reported(partitions: list[Partition], progress: Progress):
    for i, p in enumerate(partitions):
        progress(i / len(partitions), f"Scoring {', '.join(p.assets)}")
        yield p


def _client(workers: int | None, scheduler: str | None):
    """A Dask client: a new local cluster of ``workers`` processes, or the one at ``scheduler``."""
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            return Client(scheduler, timeout="5s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"Could not reach the Dask scheduler at {scheduler!r}: {exc}"
            ) from exc
    with environment_kept():
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.ERROR,
        )  # fmt: skip
    return Client(cluster), cluster


@contextmanager
def environment_kept() -> Iterator[None]:
    """This process's environment as it was before the block. Dask's nannies set
    OMP/OPENBLAS/MKL_NUM_THREADS=1 (and PYTHONHASHSEED) in the *parent's* environment to spawn
    workers and leave them there: every program started afterwards (a CLI `score` from the app's
    process, a test's subprocess) then ran its linear algebra on one thread and drew scores
    2.6e-7 away from the same model's in this process. The workers are spawned by then."""
    before = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(before)


def _run_dask(model: Any, sources, partitions, folder: str, progress: Progress, workers,
              scheduler) -> int:  # fmt: skip
    """The same two functions as `_run_local`, as Dask tasks: the model goes to each worker
    once (scattered), partitions' scores stay on the workers until their files are written."""
    from dask.distributed import as_completed

    client, cluster = _client(workers, scheduler)
    try:
        [shared] = client.scatter([model], broadcast=True, hash=False)
        scored = [client.submit(score_partition, shared, p, pure=False) for p in partitions]
        writes = [
            client.submit(write_scores, s, folder, [scored[j] for j in h], pure=False)
            for s, h in zip(sources, _holders(sources, partitions), strict=True)
        ]
        del scored  # a partition's scores are released once the files needing them are written
        total = 0
        for i, future in enumerate(as_completed(writes)):
            total += future.result()
            progress((i + 1) / len(writes), f"Wrote {i + 1} of {len(writes)} files")
        return total
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def score_with_model(
    model: Any,
    data: str | os.PathLike,
    out: str | os.PathLike,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> str:
    """Score DATA with a fitted model into OUT; returns a summary line.

    One data file writes the file OUT (Parquet, or CSV when OUT ends in .csv); several write
    one Parquet per input file into the folder OUT. ``workers`` runs on a new local Dask cluster,
    ``scheduler`` on an existing one; neither runs in this process."""
    started = time.perf_counter()
    report = progress or (lambda f, m: None)
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be at least 1. Got {workers} instead.")
    if workers is not None and scheduler is not None:
        raise ConfigError("Give --workers (a local cluster) or --scheduler (an existing one).")
    files = input_files(data)
    out_path = Path(out)
    single = len(files) == 1 and not Path(data).is_dir() and not glob.has_magic(str(data))
    if single:
        if out_path.is_dir():
            raise ConfigError(f"--out {str(out)!r} is a folder; one data file writes one file.")
        if out_path.resolve() == files[0].resolve():
            raise ConfigError(f"--out is the data file {str(out)!r}: choose another file.")
        parent = out_path.parent if str(out_path.parent) else Path(".")
    else:
        if out_path.exists() and not out_path.is_dir():
            raise ConfigError(
                f"--out {str(out)!r} is a file; several data files write a folder of them."
            )
        parent = out_path
    if not (parent.exists() or (not single and parent.parent.exists())):
        raise DataError(f"The output folder {str(parent)!r} does not exist.")
    slots = 1 if workers is None and scheduler is None else 2 * (workers or 4)
    sources, partitions = plan(model, files, out_path.name if single else None, slots)
    created = not parent.exists()
    parent.mkdir(exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".vigil-scores-", dir=parent)
    try:
        if workers is None and scheduler is None:
            rows = _run_local(model, sources, partitions, tmp, report)
        else:
            rows = _run_dask(model, sources, partitions, tmp, report, workers, scheduler)
        for source in sources:
            os.replace(Path(tmp) / source.target, parent / source.target)
    except BaseException:
        shutil.rmtree(parent if created else tmp, ignore_errors=True)  # nothing half-written
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    where = "one process" if workers is None and scheduler is None else (
        f"{workers} Dask workers" if workers else f"the Dask cluster at {scheduler}"
    )  # fmt: skip
    return (
        f"Scored {rows:,} rows of {len(files)} file(s), {len(partitions)} partition(s), on "
        f"{where}: wrote {out} in {time.perf_counter() - started:.1f} s"
    )
