"""The synthetic twin of the demo plant: its report over several seeds, and what it costs.

    python bench/bench_twin.py                 # twin seeds 0-2 of the demo plant (seed 7)
    python bench/bench_twin.py --seeds 0 1 2 3 4

Protocol: the demo plant as shipped (3 pumps, 50,000 one-minute rows each, 18 injected faults)
is twinned with its ground-truth windows kept out of the model, and `fidelity_report` grades
the twin: KS, correlation and autocorrelation changes, train on twin / test on real F1 against
train on real (the real second half of each pump, same faults), and window distances. Time is
given as ratios against a baseline measured in the same run: generating the demo plant and
fitting the `auto` detector on it (what a user waits for anyway).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.detect.evaluation import label_points  # noqa: E402
from core.detect.model import AnomalyModel  # noqa: E402
from core.synth.demo import SENSORS, generate_plant  # noqa: E402
from core.synth.fidelity import fidelity_report  # noqa: E402
from core.synth.twin import make_twin  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    t = time.perf_counter()
    plant = generate_plant()
    skip = label_points(plant.readings, plant.faults)[0]
    AnomalyModel("auto").fit(plant.readings, exclude=skip)
    baseline = time.perf_counter() - t
    print(f"baseline (generate the demo plant + fit auto on it): {baseline:.1f} s")
    header = "seed  twin_x  report_x  ks_max  corr  acf   f1_real  f1_twin  gap    closer  copies"
    print(header)
    for seed in args.seeds:
        t = time.perf_counter()
        twin = make_twin(plant.readings, list(SENSORS), skip, seed=seed)
        made = time.perf_counter() - t
        t = time.perf_counter()
        r = fidelity_report(plant.readings, twin, list(SENSORS), plant.faults, skip)
        measured = time.perf_counter() - t
        values = {c.name: c.value for c in r.checks}
        print(
            f"{seed:<5} {made / baseline:<7.2f} {measured / baseline:<9.2f} "
            f"{r.sensors['ks'].max():<7.3f} {values['largest correlation change']:<5.3f} "
            f"{values['largest autocorrelation change']:<5.3f} {r.f1_real:<8.3f} "
            f"{r.f1_twin:<8.3f} {abs(r.f1_twin - r.f1_real):<6.3f} "
            f"{values['twin windows closer than real ones']:<7.4f} "
            f"{values['near copies of real windows']:.0f}   passed={r.passed}"
        )


if __name__ == "__main__":
    main()
