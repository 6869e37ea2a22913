"""Normal ageing of a plant after its training window: slow drift that is not a fault.

Real plants move away from the day a model was trained on (a fouling exchanger, a wearing seal,
a recalibrated transmitter) and a detector that calls that drift anomalous floods its analysts.
An aged demo plant is where false-alarm labels must earn their keep.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.synth.demo import DemoPlant
from core.types import ASSET, TS


def aged(plant: DemoPlant, after_rows: int, spreads: float) -> DemoPlant:
    """The plant with every sensor of every asset drifting linearly from row ``after_rows`` on,
    by up to ``spreads`` of its robust spread (IQR/1.349 over those first rows) at the last row.

    Faults and stops are unchanged: the drift is normal behaviour, so the ground truth stays.
    """
    if after_rows < 1:
        raise ConfigError(f"The 'after_rows' parameter must be >= 1. Got {after_rows} instead.")
    if not np.isfinite(spreads) or spreads < 0:
        raise ConfigError(f"The 'spreads' parameter must be >= 0. Got {spreads} instead.")
    pieces = []
    for _, frame in plant.readings.groupby(ASSET, sort=False):
        frame = frame.sort_values(TS).reset_index(drop=True)
        if len(frame) <= after_rows + 1:
            raise ConfigError(
                f"Ageing after {after_rows:,} rows needs more rows per asset; "
                f"{frame[ASSET].iloc[0]!r} has {len(frame):,}."
            )
        sensors = [c for c in frame.columns if c not in (TS, ASSET)]
        first = frame[sensors].iloc[:after_rows]
        spread = ((first.quantile(0.75) - first.quantile(0.25)) / 1.349).to_numpy()
        ramp = np.clip((np.arange(len(frame)) - after_rows) / (len(frame) - 1 - after_rows), 0, 1)
        frame[sensors] = frame[sensors].to_numpy() + np.outer(ramp, spreads * spread)
        pieces.append(frame)
    readings = pd.concat(pieces, ignore_index=True)
    return DemoPlant(readings, plant.faults, plant.machine_off)
