"""Cost of the stakeholder report: PDF against HTML of the same `Report`, in one process.

    python bench/bench_report.py                   # the demo plant `make run` loads (3 x 50,000)
    python bench/bench_report.py --rows 10000 --assets 2

A fresh workspace with the demo plant, an `auto` run and two verdicts, then:
1. `build_report` cold (explains the 3 most severe events) and warm (explanations cached);
2. the HTML (baseline: plotly.js inlined, figures as JSON) and the PDF of that same report, the
   PDF split into drawing its charts (kaleido on Debian's Chromium, one browser for all) and
   laying out the document (fpdf2). Figures are medians of ``--repeat`` runs, ratios against the
   HTML measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import store  # noqa: E402
from core.charts.images import png_images  # noqa: E402
from core.detect.runs import RunConfig, execute_run  # noqa: E402
from core.labels import history as labels  # noqa: E402
from core.labels import triage  # noqa: E402
from core.share import build_report, html_report  # noqa: E402
from core.share import pdf as pdf_module  # noqa: E402
from core.synth.demo import load_demo  # noqa: E402


def _timed(action):
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def _median(action, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t, result = _timed(action)
        times.append(t)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000, help="rows per asset")
    parser.add_argument("--assets", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        con = store.open_workspace(Path(folder) / "w.duckdb")
        info = load_demo(con, seed=7, n_assets=args.assets, rows_per_asset=args.rows)
        t, run = _timed(lambda: execute_run(con, RunConfig(dataset_id=info.id)))
        print(f"demo plant {info.n_rows:,} rows; run #{run.id} {run.n_events} events in {t:.1f} s")
        queue = triage.review_queue(con, run.id).sort_values("severity", ascending=False)
        labels.label_events(con, info.id, queue.iloc[:1], "confirmed", "bench", kind="spike")
        labels.label_events(con, info.id, queue.iloc[1:2], "false_alarm", "bench")

        cold, report = _timed(lambda: build_report(con, info, "bench"))
        warm, report = _median(lambda: build_report(con, info, "bench"), args.repeat)
        html_s, html = _median(lambda: html_report(report).encode(), args.repeat)
        per_event = [item.figures() for item in report.events]
        figures = pdf_module._figures(report, per_event)
        draw_s, _ = _median(lambda: png_images(figures), args.repeat)
        pdf_s, pdf = _median(lambda: pdf_module.pdf_report(report), args.repeat)
        con.close()
    print(
        f"build_report: cold {cold:.2f} s (explains {len(report.events)} events), warm {warm:.2f} s"
    )
    print(f"HTML (baseline): {html_s:.3f} s, {len(html) / 1e6:.1f} MB")
    print(
        f"PDF: {pdf_s:.2f} s = {pdf_s / html_s:.1f}x the HTML, {len(pdf) / 1e6:.2f} MB; "
        f"of which {len(figures)} charts drawn in {draw_s:.2f} s ({draw_s / html_s:.1f}x), "
        f"layout {pdf_s - draw_s:.2f} s"
    )


if __name__ == "__main__":
    main()
