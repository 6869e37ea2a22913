"""Ingest speed: Vigil's ingest_file against a bare DuckDB CREATE TABLE AS read_csv.

Generates a 1,000,000-row x 20-sensor CSV in a temp dir, then times, each in a fresh subprocess
(so peak memory is separate) and a fresh database file:
  (a) bare:  CREATE TABLE t AS SELECT * FROM read_csv(path)
  (b) vigil: core.ingest.pipeline.ingest_file(workspace, path)
Each timing covers the load and closing the database (so both include writing to disk), not the
Python imports. Runs alternate a/b `--repeat` times; medians and their ratio are printed
(target: vigil <= 1.5 x bare).

    python bench/bench_ingest.py [--rows 1000000] [--sensors 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.5

CHILD = """
import json, resource, sys, time
from pathlib import Path
mode, csv_path, db_path = sys.argv[1:4]
import duckdb
if mode == "vigil":
    from core import store
    from core.ingest.pipeline import ingest_file
    con = store.open_workspace(db_path)
    cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    start = time.perf_counter()
    result = ingest_file(con, Path(csv_path))
    rows = result.dataset.n_rows
else:
    con = duckdb.connect(db_path)
    cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    start = time.perf_counter()
    con.execute("CREATE TABLE t AS SELECT * FROM read_csv(?)", [csv_path])
    rows = con.execute("SELECT count(*) FROM t").fetchall()[0][0]
con.close()
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime - cpu0
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": usage.ru_maxrss / 1024, "rows": rows}))
"""


def write_csv(path: Path, rows: int, sensors: int) -> None:
    """Timestamp (1 s steps) + `sensors` random floats, written by DuckDB itself (fast)."""
    import duckdb

    cols = ", ".join(f"round(random() * 100, 4) AS s{i:02d}" for i in range(sensors))
    con = duckdb.connect()
    con.execute("SELECT setseed(0.42)")
    con.execute(
        f"COPY (SELECT TIMESTAMP '2024-01-01' + to_seconds(i) AS timestamp, {cols} "
        f"FROM range({int(rows)}) r(i)) TO '{path}' (HEADER, DELIMITER ',')"
    )
    con.close()


def run_child(mode: str, csv_path: Path, folder: Path, run: int) -> dict:
    db = folder / f"{mode}_{run}.duckdb"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, mode, str(csv_path), str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    db.unlink(missing_ok=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        folder = Path(tmp)
        csv_path = folder / "readings.csv"
        start = time.perf_counter()
        write_csv(csv_path, args.rows, args.sensors)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"CSV: {args.rows:,} rows x {args.sensors} sensors, {size_mb:.0f} MB "
              f"(written in {time.perf_counter() - start:.1f} s)")  # fmt: skip
        results: dict[str, list[dict]] = {"bare": [], "vigil": []}
        for run in range(args.repeat):
            for mode in results:
                results[mode].append(run_child(mode, csv_path, folder, run))
                r = results[mode][-1]
                print(f"  run {run + 1} {mode:5s}: {r['seconds']:.2f} s wall, {r['cpu']:.2f} s CPU, "
                      f"peak {r['peak_mb']:.0f} MB")  # fmt: skip
    return report(results)


def report(results: dict[str, list[dict]]) -> int:
    """Medians (and bests: least disturbed by other work on the machine) and their ratios."""
    stats = {}
    for mode, runs in results.items():
        wall = [r["seconds"] for r in runs]
        stats[mode] = {
            "median": statistics.median(wall),
            "best": min(wall),
            "cpu": statistics.median(r["cpu"] for r in runs),
            "peak": max(r["peak_mb"] for r in runs),
        }
    for label, mode in (
        ("(a) bare DuckDB CTAS read_csv", "bare"),
        ("(b) Vigil ingest_file", "vigil"),
    ):
        s = stats[mode]
        print(f"{label:30s} median {s['median']:.2f} s, best {s['best']:.2f} s, "
              f"CPU {s['cpu']:.2f} s, peak RSS {s['peak']:.0f} MB")  # fmt: skip
    ratio = {k: stats["vigil"][k] / stats["bare"][k] for k in ("median", "best", "cpu")}
    verdict = "OK" if ratio["median"] <= TARGET_RATIO else "TOO SLOW"
    print(f"ratio vigil / bare: median {ratio['median']:.2f} (target <= {TARGET_RATIO}: "
          f"{verdict}), best {ratio['best']:.2f}, CPU {ratio['cpu']:.2f}")  # fmt: skip
    return 0 if ratio["median"] <= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
