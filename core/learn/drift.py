"""Drift: does new data still look like the data the active model learned from?

Every version keeps a sample of its training readings and scores (`REFERENCE_ROWS` rows, machine
running). New data are the dataset's rows outside the version's training window. Per sensor and
for the anomaly score:

- **PSI** (population stability index) over `N_BINS` bins cut at the reference's quantiles, with
  `EPS` in empty bins: below `PSI_MODERATE` stable, up to `PSI_DRIFT` moderate, above it drifted
  (the usual credit-scoring convention).
- **KS**: the two-sample Kolmogorov-Smirnov statistic (largest gap between the two empirical
  distributions) and its p-value. With thousands of rows tiny shifts are "significant", so KS is
  shown to size a shift, and the verdict rests on PSI.

Retraining is suggested when the score or any sensor has PSI above `PSI_DRIFT`. Machine-off rows
are left out on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from core import store
from core.errors import DataError
from core.types import ASSET, TS

REFERENCE_ROWS = 5_000
N_BINS = 10
EPS = 1e-4
PSI_MODERATE = 0.1
PSI_DRIFT = 0.2
SCORE = "anomaly score"


def _edges(reference: np.ndarray, bins: int = N_BINS) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (duplicates merged for discrete data)."""
    ref = reference[np.isfinite(reference)]
    if len(ref) == 0:
        return np.array([])
    return np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    values = values[np.isfinite(values)]
    counts = np.bincount(np.searchsorted(edges, values, "right"), minlength=len(edges) + 1)
    return counts / max(counts.sum(), 1)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = N_BINS) -> float:
    """Population stability index of ``current`` against ``reference`` (0 = same shape)."""
    edges = _edges(np.asarray(reference, float), bins)
    expected = np.maximum(_shares(np.asarray(reference, float), edges), EPS)
    actual = np.maximum(_shares(np.asarray(current, float), edges), EPS)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def status(value: float) -> str:
    """'stable', 'moderate' or 'drifted' for a PSI value (see the module docstring)."""
    if not np.isfinite(value) or value <= PSI_MODERATE:
        return "stable"
    return "moderate" if value <= PSI_DRIFT else "drifted"


@dataclass(frozen=True)
class DriftReport:
    """PSI and KS per sensor and for the score, over time, and the retraining verdict."""

    version_id: int
    dataset_id: int
    n_reference: int
    n_current: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    table: pd.DataFrame
    timeline: pd.DataFrame
    retrain_suggested: bool
    reasons: list[str]


def compare_samples(
    reference: dict[str, np.ndarray], current: dict[str, np.ndarray]
) -> pd.DataFrame:
    """One row per column present on both sides: PSI, KS statistic and p-value, status."""
    rows = []
    for name, ref in reference.items():
        cur = current.get(name)
        if cur is None:
            continue
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        if len(ref) < 2 or len(cur) < 2:
            continue
        ks = ks_2samp(ref, cur)
        value = psi(ref, cur)
        rows.append(
            {
                "name": name,
                "kind": "score" if name == SCORE else "sensor",
                "psi": value,
                "ks": float(ks.statistic),
                "p_value": float(ks.pvalue),
                "status": status(value),
            }
        )
    table = pd.DataFrame(rows, columns=["name", "kind", "psi", "ks", "p_value", "status"])
    return table.sort_values(["kind", "psi"], ascending=[True, False]).reset_index(drop=True)


def psi_timeline(
    reference: dict[str, np.ndarray], current: pd.DataFrame, period: str
) -> pd.DataFrame:
    """PSI of every column per period of ``current`` (a frame with ``ts``), long format."""
    if current.empty:
        return pd.DataFrame(columns=["period", "name", "psi"])
    periods = pd.to_datetime(current[TS]).dt.floor(period)
    codes, uniques = pd.factorize(periods, sort=True)
    out = []
    for name, ref in reference.items():
        if name not in current:
            continue
        edges = _edges(ref)
        expected = np.maximum(_shares(ref, edges), EPS)
        values = current[name].to_numpy(dtype=np.float64)
        ok = np.isfinite(values)
        bins = np.searchsorted(edges, values[ok], "right")
        counts = np.zeros((len(uniques), len(edges) + 1))
        np.add.at(counts, (codes[ok], bins), 1)
        actual = np.maximum(counts / np.maximum(counts.sum(1, keepdims=True), 1), EPS)
        values_psi = ((actual - expected) * np.log(actual / expected)).sum(1)
        out.append(pd.DataFrame({"period": uniques, "name": name, "psi": values_psi}))
    return pd.concat(out, ignore_index=True)


def new_data_mask(frame: pd.DataFrame, training: dict, same_dataset: bool) -> np.ndarray:
    """Rows outside the version's training window (all rows of another dataset)."""
    from core.detect.runs import TrainingWindow, training_mask

    window = training.get("window")
    if not same_dataset or not window or window.get("kind") == "dataset":
        return np.ones(len(frame), dtype=bool)
    return ~training_mask(frame, TrainingWindow.from_dict(window))


def drift_report(
    con: duckdb.DuckDBPyConnection,
    dataset_id: int,
    version_id: int | None = None,
    period: str = "1D",
) -> DriftReport:
    """Drift of a dataset's new data against a version's training sample (default: active)."""
    from core.learn import versions

    version = (
        versions.get_version(con, version_id)
        if version_id is not None
        else versions.active_version(con, dataset_id)
    )
    if version is None:
        raise DataError("Promote a model version first: drift compares new data with its training.")
    model = versions.load_version(con, version.id)
    ref = model.reference
    if not ref:
        raise DataError(f"Model v{version.id} keeps no training sample, so drift cannot be shown.")
    run_id = _run_on(con, version, dataset_id)
    info = store.get_dataset(con, dataset_id)
    frame = store.read_readings(con, info)
    scores = store.read_run_scores(con, run_id)[[TS, ASSET, "score", "is_off"]]
    frame = frame.merge(scores, on=[TS, ASSET], how="inner")
    keep = new_data_mask(frame, version.training, version.dataset_id == dataset_id)
    current = frame[keep & ~frame["is_off"].to_numpy(dtype=bool)].rename(columns={"score": SCORE})
    reference = {str(s): ref["values"][:, i] for i, s in enumerate(ref["sensors"])}
    reference[SCORE] = ref["score"]
    table = compare_samples(
        reference, {c: current[c].to_numpy(float) for c in reference if c in current}
    )
    drifted = table[table["psi"] > PSI_DRIFT]
    reasons = [f"{row.name} has PSI {row.psi:.2f} (> {PSI_DRIFT})" for row in drifted.itertuples()]
    return DriftReport(
        version_id=version.id,
        dataset_id=dataset_id,
        n_reference=len(ref["score"]),
        n_current=len(current),
        start=current[TS].min() if len(current) else None,
        end=current[TS].max() if len(current) else None,
        table=table,
        timeline=psi_timeline(reference, current, period),
        retrain_suggested=bool(len(drifted)),
        reasons=reasons,
    )


def _run_on(con: duckdb.DuckDBPyConnection, version, dataset_id: int) -> int:
    """The run holding the version's scores on the dataset (its own, or the latest applied)."""
    if version.dataset_id == dataset_id and version.run_id is not None:
        return int(version.run_id)
    from core.detect.runs import list_runs

    for run in list_runs(con, dataset_id):
        if run.detector == "version" and run.params.get("version_id") == version.id:
            return run.id
    raise DataError(
        f"Model v{version.id} has not scored this dataset yet: apply it first to see drift."
    )
