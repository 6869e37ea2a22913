"""The typed result of an explanation, its words for the screen and its storage format.

`Explanation` holds feature-level contributions (positive = towards anomalous), base values, what
the values explain, and a roll-up to sensors; `top_sensors_text` is the one-line summary other
pages show. `encode`/`decode` turn it into (meta JSON, Parquet bytes) for the workspace cache.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.explain.methods import ADDITIVE, LIMITS, PCA_EXACT, PERMUTATION, TREE, WINDOW_EXACT

EXPLAIN_VERSION = 2
"""Format and algorithm version of cached explanations; bump it to invalidate the cache."""
RUN_SCOPE = "run"
ROW_COLUMNS = ("ts", "asset", "score", "is_anomaly", "is_off", "lift", "in_scope")
LABEL_FACTOR = "label_factor"
"""Row column of a version run with a label classifier: the factor it set at each point."""
TAUGHT_VERSION = "taught false alarms as normal"
"""In the description of a version whose factor is its score over its base model's, not the
label classifier's alone (`core.explain.versioned.VersionFactor.from_stored`)."""


@dataclass(frozen=True, eq=False)
class Explanation:
    """Contributions of features to a detector's output at some rows of a run.

    ``values[i, j]`` is feature j's contribution at row i, in units of the run's score
    (``quantity``, described for the screen in ``description``); positive pushes towards
    anomalous. ``base_values[i] + values[i].sum() == output[i]``; ``target`` is the run's score
    as the model computes it, so ``unexplained = target - output`` is what the values leave out:
    about 0 for exact methods (except where the score is clipped at 0 or the machine is off),
    the smoothing and estimation gap for permutation SHAP. ``rows`` holds each row's ts, asset,
    run score, flags and ``in_scope`` (inside the event, or flagged for a run-wide sample).
    """

    run_id: int | None
    scope: str
    method: str
    detector: str
    quantity: str
    description: str
    features: list[str]
    sensor_of: dict[str, str]
    sensors: list[str]
    rows: pd.DataFrame
    values: np.ndarray
    base_values: np.ndarray
    target: np.ndarray
    data: np.ndarray
    peak: int | None = None
    window: tuple[pd.Timestamp, pd.Timestamp] | None = None
    notes: tuple[str, ...] = ()
    elapsed_s: float = 0.0
    from_cache: bool = False

    @property
    def output(self) -> np.ndarray:
        """Base value plus the sum of contributions, per row (the explained quantity)."""
        return self.base_values + self.values.sum(axis=1)

    @property
    def unexplained(self) -> np.ndarray:
        """The run's score minus what the values add up to, per row."""
        return self.target - self.output

    def unexplained_share(self, row: int) -> float:
        """|unexplained| as a share of the run's score at one row (0 when the score is 0)."""
        size = abs(float(self.target[row]))
        return abs(float(self.unexplained[row])) / size if size > 1e-12 else 0.0

    @cached_property
    def membership(self) -> np.ndarray:
        """(features x sensors) 0/1 matrix: which sensor each feature is derived from."""
        index = {s: k for k, s in enumerate(self.sensors)}
        m = np.zeros((len(self.features), len(self.sensors)))
        for j, name in enumerate(self.features):
            m[j, index[self.sensor_of[name]]] = 1.0
        return m

    @cached_property
    def sensor_values(self) -> pd.DataFrame:
        """Contributions rolled up to sensors: the sum over each sensor's features, per row."""
        return pd.DataFrame(self.values @ self.membership, columns=self.sensors)

    @cached_property
    def feature_values(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, columns=self.features)

    @cached_property
    def sensor_deviation(self) -> pd.DataFrame:
        """Per row and sensor, the largest |robust z| among its features (colours the swarm)."""
        z = np.abs(self.data.astype(np.float64))
        out = np.zeros((len(z), len(self.sensors)))
        for k in range(len(self.sensors)):
            cols = np.flatnonzero(self.membership[:, k])
            if len(cols):
                out[:, k] = z[:, cols].max(axis=1)
        return pd.DataFrame(out, columns=self.sensors)

    @property
    def in_scope(self) -> np.ndarray:
        return self.rows["in_scope"].to_numpy(dtype=bool)

    def ranking(self, level: str = "sensor") -> pd.Series:
        """Mean contribution over the rows in scope (all rows if none), largest first."""
        frame = self.sensor_values if level == "sensor" else self.feature_values
        mask = self.in_scope if self.in_scope.any() else np.ones(len(frame), dtype=bool)
        return frame[mask].mean().sort_values(ascending=False)

    def members(self) -> dict[str, np.ndarray]:
        """Ensembles: each member's normalised score per row (what the combined score mixes)."""
        return {
            c.removeprefix("member_"): self.rows[c].to_numpy()
            for c in self.rows
            if c.startswith("member_")
        }


def _fmt(value: float) -> str:
    size = abs(value)
    if size >= 100:
        return f"{value:+.0f}"
    return f"{value:+.1f}" if size >= 1 else f"{value:+.2f}"


def top_sensors_text(explanation: Explanation, k: int = 3) -> str:
    """'bearing_temp_c +2.1, vibration_rms_mm_s +1.4, motor_temp_c +0.3': the k sensors pushing
    hardest towards anomalous, by mean contribution over the event (or the run's flagged rows),
    in the units of ``explanation.quantity``."""
    ranked = explanation.ranking("sensor").head(k)
    return ", ".join(f"{name} {_fmt(float(v))}" for name, v in ranked.items())


def members_text(explanation: Explanation, row: int) -> str:
    """Ensembles: each member's normalised score at one point ('' for a single detector)."""
    members = explanation.members()
    if not members:
        return ""
    parts = ", ".join(f"{m} {float(v[row]):.2f}" for m, v in members.items())
    return (
        f"Members at this point, each normalised on its training scores: {parts}. "
        "The combined score mixes them; the values above explain the combination."
    )


_EXACT_NAMES = {
    TREE: "TreeSHAP on the Isolation Forest's trees",
    PCA_EXACT: "PCA's T² and SPE split per feature",
    LIMITS: "closed-form Shapley values of the per-feature limits",
    ADDITIVE: "each member of the averaged ensemble split in closed form",
    WINDOW_EXACT: "the autoencoder's reconstruction error per feature",
}


def method_text(explanation: Explanation, row: int) -> str:
    """The method in plain words at one point: exact (which) or permutation SHAP with the share
    of the score it leaves unexplained; for a version run, the factor its labels set there."""
    share = explanation.unexplained_share(row)
    if explanation.method == PERMUTATION:
        text = (
            "**Method: permutation SHAP**, an estimate from sampled feature orders: "
            f"{share:.0%} of the score at this point is left unexplained (its own bar)."
        )
    else:
        name = _EXACT_NAMES.get(explanation.method, explanation.method)
        text = f"**Method: exact** ({name}), no sampling: the bars add up to the score."
        if share > 0.01:
            text += f" {share:.0%} is left over here (the score is clipped at 0)."
    if LABEL_FACTOR in explanation.rows:
        factor = float(explanation.rows[LABEL_FACTOR].iloc[row])
        like = "confirmed faults" if factor > 1 else "false alarms"
        if TAUGHT_VERSION in explanation.description:
            return text + (
                f" The version's score is {factor:.2f} times that of the detector fitted "
                "without the taught false alarms at this point: the detector taught them and "
                "the label classifier together."
            )
        text += (
            f" Its label classifier multiplied the base model's score by {factor:.2f} at this "
            f"point (it looks like the analysts' {like})."
            if abs(factor - 1) > 0.005
            else " Its label classifier left the base model's score as it is at this point."
        )
    return text


def point_labels(explanation: Explanation) -> list[str]:
    """'01-04 05:27' per explained row, the peak marked: options of a point picker."""
    labels = pd.to_datetime(explanation.rows["ts"]).dt.strftime("%m-%d %H:%M").tolist()
    if explanation.peak is not None:
        labels[explanation.peak] += " (peak)"
    return labels


def event_options(events: pd.DataFrame) -> dict[int, str]:
    """Event id -> one-line label, in the events' order (most severe first)."""
    return {int(e["event_id"]): event_label(e) for _, e in events.iterrows()}


def event_scope(event_id: int) -> str:
    return f"event:{int(event_id)}"


def event_label(event: pd.Series | dict[str, Any]) -> str:
    """One line for pickers: '#4 · P-101 · 01-03 10:22 · 45 min · peak 3.2'."""
    minutes = float(event["duration_s"]) / 60
    span = f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
    start = pd.Timestamp(event["start"])
    return (
        f"#{int(event['event_id'])} · {event['asset']} · {start:%Y-%m-%d %H:%M} · {span} · "
        f"peak {float(event['peak_score']):.1f}"
    )


def encode(expl: Explanation) -> tuple[dict[str, Any], bytes]:
    """(meta, payload): what the values mean as JSON, the values as zstd Parquet."""
    cols: dict[str, Any] = {c: expl.rows[c].to_numpy() for c in expl.rows.columns}
    cols["base"] = expl.base_values.astype(np.float64)
    cols["target"] = expl.target.astype(np.float64)
    for j in range(len(expl.features)):
        cols[f"v{j}"] = expl.values[:, j].astype(np.float64)
        cols[f"x{j}"] = expl.data[:, j].astype(np.float32)
    sink = io.BytesIO()
    pq.write_table(pa.table(cols), sink, compression="zstd")
    window = None if expl.window is None else [t.isoformat() for t in expl.window]
    meta = {
        "version": EXPLAIN_VERSION,
        "method": expl.method,
        "detector": expl.detector,
        "quantity": expl.quantity,
        "description": expl.description,
        "features": expl.features,
        "sensor_of": expl.sensor_of,
        "sensors": expl.sensors,
        "row_columns": list(expl.rows.columns),
        "peak": expl.peak,
        "window": window,
        "notes": list(expl.notes),
        "elapsed_s": expl.elapsed_s,
    }
    return meta, sink.getvalue()


def decode(run_id: int, scope: str, meta: dict[str, Any], payload: bytes) -> Explanation:
    """The `Explanation` stored by `encode` (marked ``from_cache``)."""
    table = pq.read_table(io.BytesIO(payload)).to_pandas()
    p = len(meta["features"])
    window = meta.get("window")
    return Explanation(
        run_id=run_id,
        scope=scope,
        method=meta["method"],
        detector=meta["detector"],
        quantity=meta["quantity"],
        description=meta["description"],
        features=list(meta["features"]),
        sensor_of=dict(meta["sensor_of"]),
        sensors=list(meta["sensors"]),
        rows=table[meta["row_columns"]].reset_index(drop=True),
        values=table[[f"v{j}" for j in range(p)]].to_numpy(np.float64).reshape(len(table), p),
        base_values=table["base"].to_numpy(np.float64),
        target=table["target"].to_numpy(np.float64),
        data=table[[f"x{j}" for j in range(p)]].to_numpy(np.float32).reshape(len(table), p),
        peak=meta.get("peak"),
        window=None if window is None else (pd.Timestamp(window[0]), pd.Timestamp(window[1])),
        notes=tuple(meta.get("notes", [])),
        elapsed_s=float(meta.get("elapsed_s", 0.0)),
        from_cache=True,
    )
