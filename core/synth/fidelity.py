"""How faithful and how private is a synthetic twin? Measured against its source, with the
thresholds a twin must pass before it stands in for the plant.

Fidelity: per-sensor distributions (two-sample Kolmogorov-Smirnov), the correlation matrix, the
autocorrelation up to an hour, and whether a detector trained on the twin grades real faults as
well as one trained on the real data (train on twin, test on real). Privacy: the distance from
each twin window to its nearest real window, against the distance from each real window to its
nearest non-overlapping real window (the "distance to closest record" test of synthetic tables).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.detect.evaluation import evaluate, label_points
from core.detect.model import AnomalyModel
from core.synth.faults import inject_faults
from core.types import ASSET

KS_MAX = 0.1
"""A sensor's twin and real distributions may differ by at most 10 points of cumulative share
anywhere (the KS statistic): less than a histogram of a few bins can show. A sensor that wanders
slower than a month can pin down (a valve drifting over days) gets the KS between the real
data's own two halves instead, when that is larger: a twin need not be nearer the plant than the
plant is to itself."""
CORR_MAX = 0.1
"""No pair of sensors may change its correlation by more than 0.1 (e.g. 0.85 -> 0.75): the
coupling detectors and explanations rely on stays."""
ACF_MAX = 0.1
ACF_LAGS = 60
"""Autocorrelation at every lag up to 60 rows (an hour a minute) may move by at most 0.1: how
fast each sensor wanders and settles, which rolling features measure, stays."""
F1_GAP_MAX = 0.05
"""Trained on the twin, the detector's F1 on the real faults is within 0.05 of trained on real."""
GRADING_FAULTS = 6
"""Faults per asset injected to grade on when the source has none (the demo plant's count)."""
WINDOW_ROWS = 60
PRIVACY_QUANTILE = 0.05
PRIVACY_SHARE_MAX = 0.05
"""At most 5% of twin windows may be nearer a real window than the closest 5% of real windows
are to one another: a twin that copied real stretches puts those windows at distance ~0."""
NEAR_COPY = 0.5
"""A twin window nearer a real one than half the smallest real-to-real distance is a near copy;
there may be none."""

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Check:
    """One threshold of the report: what was measured, the limit, and why it is that limit."""

    name: str
    value: float
    limit: float
    passed: bool
    why: str


@dataclass(frozen=True, eq=False)
class FidelityReport:
    """Per-sensor fidelity, detector quality and privacy of a twin, with pass/fail checks."""

    sensors: pd.DataFrame
    """sensor, ks, acf_diff: worst asset per sensor."""
    corr_diff: float
    f1_real: float
    f1_twin: float
    twin_distance: np.ndarray
    """Per twin window: distance to its nearest real window (same asset)."""
    real_distance: np.ndarray
    """Per real window: distance to its nearest non-overlapping real window."""
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def table(self) -> pd.DataFrame:
        """The checks as rows, for pages, the CLI and the HTML report."""
        return pd.DataFrame(
            [
                {
                    "check": c.name,
                    "value": round(c.value, 4),
                    "limit": c.limit,
                    "passed": c.passed,
                    "why": c.why,
                }
                for c in self.checks
            ]
        )


def fidelity_report(
    real: pd.DataFrame,
    twin: pd.DataFrame,
    sensors: Sequence[str],
    truth: pd.DataFrame,
    exclude: np.ndarray | None = None,
    detector: str = "auto",
    progress: Progress | None = None,
    twin_exclude: np.ndarray | None = None,
) -> FidelityReport:
    """Compare ``twin`` with ``real`` (row-aligned: same ts and asset per row) on ``truth``,
    the real faults the detectors are graded on; ``exclude`` marks real rows that are faulty,
    ``twin_exclude`` twin rows that carry faults (neither detector learns from its faults).
    Without known faults, `GRADING_FAULTS` per asset are injected into a copy of the real data
    to grade on (the same for both detectors)."""
    sensors = list(sensors)
    skip = label_points(real, truth)[0] if exclude is None else np.asarray(exclude, bool)
    graded = real
    if truth.empty:
        injected = inject_faults(real, sensors, n_faults=GRADING_FAULTS, seed=0)
        graded, truth = injected.readings, injected.faults
    _step(progress, 0.0, "Comparing distributions and correlations")
    ks, acf, corr, own = _distribution_checks(real, twin, sensors, skip)
    limits = np.maximum(KS_MAX, own)
    beyond = int(np.sum(np.asarray(ks) > limits))
    _step(progress, 0.2, "Training a detector on the real data and one on the twin")
    taught = skip if graded is real else label_points(graded, truth)[0]
    f1_real, f1_twin = _train_on_twin(graded, twin, truth, taught, twin_exclude, detector)
    _step(progress, 0.8, "Measuring distances between windows")
    twin_d, real_d = window_distances(real, twin, sensors)
    _step(progress, 1.0, "Done")
    q = float(np.quantile(real_d, PRIVACY_QUANTILE))
    closer = float(np.mean(twin_d < q))
    copies = float(np.sum(twin_d < NEAR_COPY * real_d.min()))
    per_sensor = pd.DataFrame({"sensor": sensors, "ks": ks, "ks_limit": limits, "acf_diff": acf})
    checks = [
        Check("sensors beyond their KS limit", beyond, 0, beyond == 0, KS_MAX_WHY),
        Check("largest correlation change", corr, CORR_MAX, corr <= CORR_MAX, CORR_WHY),
        Check("largest autocorrelation change", max(acf), ACF_MAX, max(acf) <= ACF_MAX, ACF_WHY),
        Check(
            "F1 gap, train on twin vs real",
            abs(f1_twin - f1_real),
            F1_GAP_MAX,
            abs(f1_twin - f1_real) <= F1_GAP_MAX,
            F1_WHY,
        ),
        Check(
            "twin windows closer than real ones",
            closer,
            PRIVACY_SHARE_MAX,
            closer <= PRIVACY_SHARE_MAX,
            PRIVACY_WHY,
        ),
        Check("near copies of real windows", copies, 0, copies == 0, NEAR_COPY_WHY),
    ]
    return FidelityReport(per_sensor, corr, f1_real, f1_twin, twin_d, real_d, checks)


KS_MAX_WHY = (
    "each sensor's values are spread like the real ones: KS <= 0.1, or <= the KS between the "
    "real data's two halves for a slowly wandering sensor"
)
CORR_WHY = "sensors move together as in the plant"
ACF_WHY = "each sensor wanders and settles at the real pace"
F1_WHY = "a detector learns from the twin what it learns from the plant"
PRIVACY_WHY = "twin windows are no nearer real ones than real windows are to each other"
NEAR_COPY_WHY = "no twin window is a copy of a real stretch"


def _step(progress: Progress | None, fraction: float, message: str) -> None:
    if progress is not None:
        progress(fraction, message)


def _asset_rows(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    codes, names = pd.factorize(frame[ASSET].astype(str), sort=False)
    return {str(n): np.flatnonzero(codes == k) for k, n in enumerate(names)}


def _distribution_checks(
    real: pd.DataFrame, twin: pd.DataFrame, sensors: list[str], skip: np.ndarray
) -> tuple[list[float], list[float], float]:
    """Worst asset's KS and autocorrelation change per sensor, the worst correlation change,
    and per sensor the worst asset's KS between the real first and second half."""
    from scipy.stats import ks_2samp

    ks = np.zeros(len(sensors))
    own = np.zeros(len(sensors))
    acf = np.zeros(len(sensors))
    corr = 0.0
    for rows in _asset_rows(real).values():
        keep = rows[~skip[rows]]
        a = real.iloc[keep][sensors].to_numpy(dtype=np.float64)
        b = twin.iloc[keep][sensors].to_numpy(dtype=np.float64)
        for j in range(len(sensors)):
            x, y = a[:, j][np.isfinite(a[:, j])], b[:, j][np.isfinite(b[:, j])]
            if x.size and y.size:
                ks[j] = max(ks[j], float(ks_2samp(x, y).statistic))
                own[j] = max(own[j], float(ks_2samp(x[: x.size // 2], x[x.size // 2 :]).statistic))
        whole_a = real.iloc[rows][sensors].to_numpy(dtype=np.float64)
        whole_b = twin.iloc[rows][sensors].to_numpy(dtype=np.float64)
        acf = np.maximum(acf, np.abs(autocorrelation(whole_a) - autocorrelation(whole_b)).max(0))
        with np.errstate(all="ignore"):
            ca = np.nan_to_num(pd.DataFrame(a).corr().to_numpy())
            cb = np.nan_to_num(pd.DataFrame(b).corr().to_numpy())
        corr = max(corr, float(np.abs(ca - cb).max()))
    return ks.tolist(), acf.tolist(), corr, own


def autocorrelation(values: np.ndarray, lags: int = ACF_LAGS) -> np.ndarray:
    """Autocorrelation of each column at lags 1..``lags`` (rows x columns), gaps filled."""
    x = pd.DataFrame(values).ffill().bfill().fillna(0.0).to_numpy()
    x = x - x.mean(axis=0)
    n = len(x)
    spectrum = np.fft.rfft(x, n=2 * n, axis=0)
    acov = np.fft.irfft(spectrum * np.conj(spectrum), axis=0)[: lags + 1]
    var = acov[0]
    return np.where(var > 0, acov[1:] / np.where(var > 0, var, 1.0), 0.0)


def _train_on_twin(
    real: pd.DataFrame,
    twin: pd.DataFrame,
    truth: pd.DataFrame,
    skip: np.ndarray,
    twin_skip: np.ndarray | None,
    detector: str,
) -> tuple[float, float]:
    """F1 on the real second half of each asset: trained on the real first half vs the twin's."""
    first = np.zeros(len(real), bool)
    for rows in _asset_rows(real).values():
        first[rows[: len(rows) // 2]] = True
    test = real[~first].reset_index(drop=True)
    f1 = []
    twin_first = None if twin_skip is None else np.asarray(twin_skip, bool)[first]
    for train, exclude in ((real[first], skip[first]), (twin[first], twin_first)):
        model = AnomalyModel(detector).fit(train.reset_index(drop=True), exclude=exclude)
        f1.append(evaluate(model.score(test).frame, truth).f1)
    return f1[0], f1[1]


def window_distances(
    real: pd.DataFrame, twin: pd.DataFrame, sensors: Sequence[str], rows: int = WINDOW_ROWS
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-real-window distance of every twin window, and of every real window to the real
    windows it does not overlap, per asset. Windows of ``rows`` rows every half window, each
    sensor in the real asset's robust units, read as six block means (noise averaged out)."""
    twin_d, real_d = [], []
    for idx in _asset_rows(real).values():
        a = real.iloc[idx][list(sensors)].to_numpy(dtype=np.float64)
        b = twin.iloc[idx][list(sensors)].to_numpy(dtype=np.float64)
        center = np.nanmedian(a, axis=0)
        scale = np.nanpercentile(a, 75, axis=0) - np.nanpercentile(a, 25, axis=0)
        scale = np.where(scale > 0, scale, np.nanstd(a, axis=0))
        scale = np.where(scale > 0, scale, 1.0)
        wa = _windows((a - center) / scale, rows)
        wb = _windows((b - center) / scale, rows)
        d_real = _pairwise(wa, wa)
        starts = np.arange(len(wa)) * (rows // 2)
        d_real[np.abs(starts[:, None] - starts[None, :]) < rows] = np.inf
        real_d.append(d_real.min(axis=1))
        twin_d.append(_pairwise(wb, wa).min(axis=1))
    return np.concatenate(twin_d), np.concatenate(real_d)


def _windows(z: np.ndarray, rows: int) -> np.ndarray:
    z = np.nan_to_num(z)
    step = rows // 2
    starts = np.arange(0, len(z) - rows + 1, step)
    blocks = 6
    out = np.empty((len(starts), blocks * z.shape[1]))
    for i, s in enumerate(starts):
        out[i] = z[s : s + rows].reshape(blocks, rows // blocks, -1).mean(axis=1).ravel()
    return out


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))
