"""Fleet scoring with a saved model: one process vs a Dask cluster of 1 and 2 workers.

    python bench/bench_fleet.py [--files 6] [--rows 100000] [--detector auto]
    python bench/bench_fleet.py --files 20 --rows 1000000     # the issue's 20 x 1M rows

The data: one demo pump of ``--rows`` rows (setpoint steps, stops, faults), written ``--files``
times as Parquet files in a temporary folder, one per asset (its own ``asset`` name and noise).
A model is fitted on the first 30% of the first file (the other pumps are scored by its pooled
pipeline, as new assets are) and saved; every configuration scores all files with
the same model through `core.detect.fleet.score_with_model`, the function behind
``python -m core score --model``:

- the baseline, one process (`score_partition` in a loop, BLAS on one thread);
- a new ``LocalCluster`` of 1 and of 2 worker processes (one thread each), timed with and
  without starting the cluster.

Figures: seconds, rows per second, the ratio to the one-process baseline of the same run, and
peak memory (maximum resident set) of the one process and of each worker. Then the flatness
check: one process on 1, 2, 4, ... files, seconds per file (partition) and its ratio to the
1-file figure; a flat ratio means the cost grows linearly with the fleet. On 2 cores expect at
most ~2x from 2 workers.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.detect.fleet import score_with_model  # noqa: E402
from core.detect.model import AnomalyModel  # noqa: E402
from core.detect.model_file import dump_fitted, load_fitted  # noqa: E402
from core.synth.demo import generate_plant  # noqa: E402
from core.types import ASSET, TS  # noqa: E402


def make_files(folder: Path, files: int, rows: int, seed: int = 11) -> tuple[Path, pd.DataFrame]:
    """``files`` Parquet copies of one pump, each with its own noise; returns the folder and the
    first copy's training rows."""
    base = generate_plant(seed=seed, n_assets=1, rows_per_asset=rows).readings.drop(columns=ASSET)
    sensors = [c for c in base.columns if c != TS]
    data = folder / "fleet"
    data.mkdir()
    rng = np.random.default_rng(seed)
    first = None
    for k in range(files):
        copy = base.copy()
        for name in sensors:
            spread = float(np.nanstd(copy[name].to_numpy())) or 1.0
            copy[name] = copy[name] + rng.normal(0.0, 0.01 * spread, len(copy))
        copy = copy.rename(columns={TS: "timestamp"})
        copy[ASSET] = f"P-{k:03d}"
        copy.to_parquet(data / f"P-{k:03d}.parquet", index=False)
        if first is None:
            first = copy.iloc[: int(0.3 * len(copy))].rename(columns={"timestamp": TS})
    return data, first


def _one_process(args: tuple[bytes, str, str]) -> tuple[float, float]:
    """Score in this (fresh) process: seconds and peak resident memory in MB."""
    model_bytes, data, out = args
    model = load_fitted(model_bytes)
    with threadpool_limits(1):
        started = time.perf_counter()
        score_with_model(model, data, out)
        seconds = time.perf_counter() - started
    return seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_process(model_bytes: bytes, data: Path | str, out: Path) -> tuple[float, float]:
    """The baseline in a child process of its own, so its peak memory is its own."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.map(_one_process, [(model_bytes, str(data), str(out))])[0]


def on_cluster(model, data: Path, out: Path, workers: int) -> tuple[float, float, list[float]]:
    """Seconds with and without starting a new cluster, and each worker's peak memory (MB)."""
    from dask.distributed import Client, LocalCluster

    started = time.perf_counter()
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        ready = time.perf_counter()
        score_with_model(model, data, out, scheduler=cluster.scheduler_address)
        done = time.perf_counter()
        peaks = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return done - started, done - ready, sorted(peaks.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=6, help="Parquet files (assets)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows per file")
    parser.add_argument("--detector", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_fleet_") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        data, train = make_files(folder, args.files, args.rows)
        print(
            f"generated {args.files} files x {args.rows:,} rows in {time.perf_counter() - t0:.1f} s"
        )
        t0 = time.perf_counter()
        with threadpool_limits(1):
            model = AnomalyModel(args.detector).fit(train)
        model_bytes = dump_fitted(model)
        print(
            f"fitted {args.detector!r} on {len(train):,} rows in {time.perf_counter() - t0:.1f} s "
            f"(model file {len(model_bytes) / 1e6:.1f} MB)"
        )
        total = args.files * args.rows
        base_s, base_mb = one_process(model_bytes, data, folder / "out_one")
        print(f"\n{'configuration':<22}{'seconds':>9}{'rows/s':>12}{'vs 1 process':>14}  peak MB")
        print(
            f"{'one process':<22}{base_s:>9.1f}{total / base_s:>12,.0f}{1.0:>13.2f}x  {base_mb:.0f}"
        )
        reference = {p.name: pd.read_parquet(p) for p in (folder / "out_one").glob("*.parquet")}
        for workers in (1, 2):
            out = folder / f"out_{workers}"
            with_start, scoring, peaks = on_cluster(model, data, out, workers)
            same = all(pd.read_parquet(out / n).equals(f) for n, f in reference.items())
            print(
                f"{f'{workers} worker(s)':<22}{scoring:>9.1f}{total / scoring:>12,.0f}"
                f"{base_s / scoring:>13.2f}x  {', '.join(f'{p:.0f}' for p in peaks)}"
                f"   (with cluster start {with_start:.1f} s, {base_s / with_start:.2f}x; "
                f"outputs identical: {same})"
            )
        print("\nper-partition cost, one process (flat = linear in the fleet)")
        print(f"{'files':>6}{'seconds':>9}{'s/file':>9}{'vs 1 file':>11}")
        counts = sorted({1, *[c for c in (2, 4, 8, 16, 32) if c < args.files], args.files})
        first = None
        for count in counts:
            subset = folder / f"sub_{count}"
            subset.mkdir()
            for path in sorted(data.glob("*.parquet"))[:count]:
                (subset / path.name).symlink_to(path)
            seconds, _ = one_process(model_bytes, subset, folder / f"o_{count}")
            per = seconds / count
            first = first or per
            print(f"{count:>6}{seconds:>9.1f}{per:>9.2f}{per / first:>10.2f}x")


if __name__ == "__main__":
    main()
