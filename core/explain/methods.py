"""How each detector is explained, on the feature matrix it scored: exact where the maths allows.

Every explanation is in units of the run's score (the raw score averaged over the model's
``smooth`` trailing points, rescaled so the training median is 0 and the asset's alarm line 1),
so a waterfall's bars add up to the score in its title.

- Exact, in closed form (`core.explain.exact`): per-feature limits and rolling robust z (Shapley
  values of their max / top-3 / mean), PCA (T²/T²lim + SPE/SPElim per feature), Isolation Forest
  (TreeSHAP carried through its score's monotone link), the window autoencoder (per-feature
  reconstruction error) and robust-z averaged ensembles of these, which includes ``auto``. The
  trailing average and the rescaling are linear, so the values sum to the run's score.
- Everything else (LOF, one-class SVM, rank-normalised or max-combined ensembles): permutation
  SHAP of the detector's raw score at the point against a background of typical training points
  (k-means medoids), bounded in rows, evaluations and time. It explains one point where the run
  averages several, so part of the score stays unexplained; that part is reported, not hidden.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.detect.detectors.registry import (
    BaseDetector,
    EnsembleDetector,
    IForestDetector,
    PCADetector,
    RobustZDetector,
    WindowAutoencoderDetector,
    ZMaxDetector,
    _aggregate,  # the robust z row aggregation; see robust_z_reference
)
from core.detect.features import FeatureBuilder, rescaled
from core.detect.machine_state import detect_machine_off
from core.detect.model import AnomalyModel, AssetPipeline, smooth_scores
from core.detect.windows import RECENTER_BUCKETS
from core.errors import ConfigError
from core.explain.exact import (
    average_path_length,
    gather_rows,
    is_exact,
    is_exact_detector,
    robust_z_reference,
    smoothed_parts,
)
from core.types import ASSET, TS

TREE, PCA_EXACT, PERMUTATION = "tree", "pca", "permutation"
WINDOW_EXACT, LIMITS, ADDITIVE = "window_error", "limits", "additive"
RUN_SCORE = "run score (alarm line = 1)"
_NAMED = {
    "iforest": TREE,
    "pca": PCA_EXACT,
    "autoencoder": WINDOW_EXACT,
    "zmax": LIMITS,
    "robust_z": LIMITS,
}
Progress = Callable[[float, str], None]
_RNG_LOCK = threading.Lock()
_BACKGROUND_ROWS = 5_000


@dataclass(frozen=True)
class ExplainLimits:
    """Bounds that keep an explanation interactive; exact methods afford many more rows."""

    exact_rows: int = 1_500
    """Rows of one event (with its context) explained by TreeSHAP or PCA."""
    agnostic_rows: int = 32
    """Rows of one event explained by permutation SHAP (evenly spread, the peak always in)."""
    run_rows: int = 600
    """Rows sampled over a whole run for its global summary (exact methods)."""
    run_rows_agnostic: int = 48
    """The same for permutation SHAP."""
    background: int = 10
    """Typical training points (k-means medoids) used as the permutation background."""
    permutations: int = 1
    """Antithetic permutation pairs per row: 2p + 1 model evaluations each (p features)."""
    time_budget_s: float = 90.0
    """Permutation SHAP stops taking new rows after this long; the rows done are kept."""
    seed: int = 0


DEFAULT_LIMITS = ExplainLimits()


@dataclass
class RowValues:
    """Contributions for some rows of one feature window (positive = towards anomalous), in
    units of the run's score: ``base + values.sum(1)`` is the run's score before its clip at 0;
    ``target`` is the run's score as the model computes it."""

    positions: np.ndarray  # which rows of the window, in the order they were explained
    values: np.ndarray  # (n, p)
    base: np.ndarray  # (n,)
    target: np.ndarray  # (n,) the explained quantity computed directly from the model
    data: np.ndarray  # (n, p) feature values (robust z)
    members: dict[str, np.ndarray] | None = None  # ensembles: each member's normalised score
    model_score: np.ndarray | None = None  # (n, 2) the run's score recomputed: see _run_scores
    factor: np.ndarray | None = None  # (n,) version runs: base model's score -> the run's


def method_for_detector(name: str, params: dict[str, Any] | None = None) -> str:
    """The explanation method a registry detector gets (known before anything is fitted)."""
    if name in _NAMED:
        return _NAMED[name]
    return ADDITIVE if is_exact(name, params) else PERMUTATION


def method_of(detector: BaseDetector) -> str:
    if isinstance(detector, IForestDetector):
        return TREE
    if isinstance(detector, PCADetector):
        return PCA_EXACT
    if isinstance(detector, WindowAutoencoderDetector):
        return WINDOW_EXACT
    if isinstance(detector, (ZMaxDetector, RobustZDetector)):
        return LIMITS
    return ADDITIVE if is_exact_detector(detector) else PERMUTATION


_EXACT_WORDS = {
    PCA_EXACT: "PCA, exact decomposition (no sampling): each feature's share of Hotelling T² (an "
    "unusual operating point) plus its squared residual in SPE (a broken relation between "
    "features), each divided by its training 99th percentile as the detector does.",
    WINDOW_EXACT: "Window autoencoder, exact (no sampling): each point is judged with the rows up "
    "to it; each feature's value is its squared reconstruction error over that window, in units "
    "of its typical training error.",
    LIMITS: "Exact Shapley values in closed form (no sampling): the score aggregates each "
    "feature's |deviation| / limit, and a feature at its reference (training median, or the "
    "rolling median) adds nothing, so the aggregate splits exactly among the features.",
}


def meaning(method: str, detector: BaseDetector, limits: ExplainLimits) -> tuple[str, str]:
    """(quantity, description): what the values explain, in words for the screen."""
    if method == TREE:
        c = average_path_length(int(detector.estimator_.max_samples_))
        return (
            RUN_SCORE,
            "Isolation Forest, exact TreeSHAP: the forest isolates unusual points in few random "
            "splits; SHAP splits the mean path length over its trees among the features, and "
            f"the detector's score 2^(-path/{c:.2f}) rises as the path shortens, so each "
            "point's values are carried to the score by one factor (the score is monotone in "
            "the path): they keep their signs and ranking and add up exactly.",
        )
    if method in _EXACT_WORDS:
        return RUN_SCORE, _EXACT_WORDS[method]
    if method == ADDITIVE:
        members = " + ".join(detector.detectors_)
        return (
            RUN_SCORE,
            f"Exact, in closed form (no sampling): the combined score averages its members' "
            f"scores ({members}), each normalised by its training median and spread; each "
            "member splits exactly among the features (per-feature limits by Shapley values "
            "in closed form, PCA by its T² and SPE decomposition) and the normalisation is "
            "linear, so the members' values add up.",
        )
    pairs = limits.permutations
    common = (
        f"Model-agnostic permutation SHAP ({pairs} antithetic permutation pair(s) per point): "
        "estimates, not exact values, of the detector's raw score at the point; the run's "
        "score averages several points, so a share of it stays unexplained and is shown as "
        "its own bar."
    )
    background = (
        f"The background is {limits.background} typical training points (k-means medoids of "
        "the training rows scoring below the median); the base value is their mean score."
    )
    if isinstance(detector, EnsembleDetector):
        members = " + ".join(detector.detectors_)
        return (
            RUN_SCORE,
            f"{common} {background} The ensemble's combined score (the {detector.combine} of "
            f"its members' {detector.norm}-normalised scores: {members}) is explained as one "
            "function; the members' own scores at each point are listed beside it.",
        )
    return (RUN_SCORE, f"{common} {background}")


def _robust_z_kind(detector: BaseDetector) -> str | None:
    """'alone' for a robust z detector, 'member' for an ensemble holding one, else None."""
    if isinstance(detector, RobustZDetector):
        return "alone"
    if isinstance(detector, EnsembleDetector) and any(
        isinstance(d, RobustZDetector) for d in detector.detectors_.values()
    ):
        return "member"
    return None


def context_rows(features: FeatureBuilder) -> int:
    """History a row's features need to equal their full-history values (EWM tails to ~1e-9).

    Residual models use exponential averages (spans in windows, ``residual_spans``), whose
    weight after n rows is (1 - 2/(span + 1))^n: 10 (span + 1) rows leave about e^-20.
    """
    rows = features._warmup()
    if "resid" in features.families_:
        spans = getattr(features.config, "residual_spans", (4.0,)) or (1.0,)
        rows = max(rows, int(10 * (max(spans) * features.window_ + 1)))
    recenter = getattr(features.config, "recenter", None)
    if recenter is not None:  # the re-centring window, one bucket more, on full-history features
        seconds = pd.Timedelta(recenter).total_seconds() * (1 + 1 / RECENTER_BUCKETS)
        if rescaled(features):  # the spread factor reads a window of re-centred features
            seconds *= 2
        rows += int(np.ceil(seconds / features.interval_seconds_))
    return int(rows) + 1


def _stretch_features(features: FeatureBuilder, frames: list[pd.DataFrame]) -> list[np.ndarray]:
    """Features of each stretch in one ``transform`` call: stretches are labelled as distinct
    segments, which ``FeatureBuilder`` builds separately (rolling state never crosses them).
    The dtype stays what ``transform`` gives (float32), so re-scoring matches the run."""
    if len(frames) == 1:
        return [features.transform(frames[0]).values.to_numpy()]
    sizes = [len(f) for f in frames]
    together = pd.concat(frames, ignore_index=True)
    together[ASSET] = np.repeat([f"stretch {k}" for k in range(len(frames))], sizes)
    X = features.transform(together).values.to_numpy()
    edges = np.cumsum([0, *sizes])
    return [X[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """shap draws permutations from NumPy's global RNG: seed it, then restore it."""
    with _RNG_LOCK:
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


def _frozen_robust_z(det: RobustZDetector, med: np.ndarray, spread: np.ndarray) -> Callable:
    """The robust z score of any rows against one fixed baseline (a row-wise function)."""
    return lambda Z: _aggregate(np.abs(np.asarray(Z) - med) / spread, det.agg)


RunFactor = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Per point, what the model's run score is multiplied by to give the run's score: called with
the points' features (n, p) and the model's run score against each alarm line (n, 2), returns
(n, 2). A model version's label classifier and alarm line (`core.explain.versioned`)."""


class ModelExplainer:
    """A fitted `AnomalyModel` and what explaining it needs, built once per pipeline and reused.

    ``train`` (the frame the model was fitted on, or a function that reads it) is only needed
    for permutation backgrounds, so exact explanations of a stored model never read it.
    ``factor`` carries the model's run score to the run's (a version's), point by point.
    """

    def __init__(
        self,
        model: AnomalyModel,
        train: pd.DataFrame | Callable[[], pd.DataFrame] | None = None,
        limits: ExplainLimits = DEFAULT_LIMITS,
        factor: RunFactor | None = None,
    ):
        self.model = model
        self._train = train
        self.limits = limits
        self.factor = factor
        self._trees: dict[int, Any] = {}
        self._backgrounds: dict[int, np.ndarray] = {}
        self._lock = threading.RLock()

    @property
    def train(self) -> pd.DataFrame | None:
        """The training frame, read on first use when given as a function."""
        with self._lock:
            if callable(self._train):
                self._train = self._train()
            return self._train

    def pipeline(self, asset: str) -> AssetPipeline:
        return self.model.pipeline_for(asset)

    def method(self, asset: str) -> str:
        return method_of(self.pipeline(asset).detector)

    def meaning(self, asset: str) -> tuple[str, str]:
        return meaning(self.method(asset), self.pipeline(asset).detector, self.limits)

    def context_rows(self, asset: str) -> int:
        return context_rows(self.pipeline(asset).features)

    def frame_hop(self, asset: str) -> int:
        """Hop of the FFT frames (features repeat with this period of rows), 1 without FFT."""
        features = self.pipeline(asset).features
        return max(features.config.fft_window // 4, 1) if features.fft_sensors_ else 1

    def clear(self) -> None:
        """Forget built explainers and backgrounds (benchmarks measure cold starts)."""
        with self._lock:
            self._trees.clear()
            self._backgrounds.clear()

    # -- per-pipeline helpers --------------------------------------------------------------------
    def tree_explainer(self, det: IForestDetector) -> Any:
        """TreeExplainer of a forest, built once (about 0.3 s per 100 trees)."""
        with self._lock:
            if id(det) not in self._trees:
                import shap

                self._trees[id(det)] = shap.TreeExplainer(det.estimator_)
            return self._trees[id(det)]

    def background(self, pipe: AssetPipeline, asset: str) -> np.ndarray:
        """k-means centroids of the pipeline's training features (machine on, past warm-up)."""
        with self._lock:
            if id(pipe) not in self._backgrounds:
                self._backgrounds[id(pipe)] = self._fit_background(pipe, asset)
            return self._backgrounds[id(pipe)]

    def _fit_background(self, pipe: AssetPipeline, asset: str) -> np.ndarray:
        """Typical normal points: k-means medoids of the training rows scoring below the median.

        Real rows, not centroids: a centroid averages operating points (and rare transients with
        huge robust z) into a point the plant never visits, which the detector finds anomalous.
        """
        from sklearn.cluster import KMeans

        train = self.train
        if train is None:
            raise ConfigError("A model-agnostic explanation needs the model's training data.")
        sub = train[train[ASSET].astype(str) == str(asset)]
        if len(sub) < 50:
            sub = train
        rng = np.random.default_rng(self.limits.seed)
        rows_x, rows_score = [], []
        for _, rows in sub.groupby(ASSET, sort=False):
            rows = rows.sort_values(TS, kind="stable")
            X = pipe.features.transform(rows).values.to_numpy(np.float64)
            keep = ~detect_machine_off(rows, self.model.sensors_)
            keep[: pipe.features._warmup()] = False
            idx = np.flatnonzero(keep) if keep.sum() >= 20 else np.arange(len(X))
            if len(idx) > _BACKGROUND_ROWS:
                idx = np.sort(rng.choice(idx, _BACKGROUND_ROWS, replace=False))
            row_wise = _robust_z_kind(pipe.detector) is None
            score = pipe.detector.score(X[idx]) if row_wise else pipe.detector.score(X)[idx]
            rows_x.append(X[idx])
            rows_score.append(score)
        X, score = np.concatenate(rows_x), np.concatenate(rows_score)
        typical = X[score <= np.median(score)]
        k = min(self.limits.background, len(typical))
        km = KMeans(n_clusters=k, n_init=3, random_state=self.limits.seed).fit(typical)
        dist = ((typical[:, None, :] - km.cluster_centers_[None, :, :]) ** 2).sum(axis=2)
        return typical[np.unique(dist.argmin(axis=0))]

    # -- explaining ------------------------------------------------------------------------------
    def explain(
        self,
        asset: str,
        windows: Sequence[tuple[pd.DataFrame, np.ndarray]],
        progress: Progress | None = None,
        deadline: float | None = None,
        priority: np.ndarray | None = None,
        stored: np.ndarray | None = None,
        lift: np.ndarray | None = None,
    ) -> RowValues:
        """Explain rows of ``asset`` given as (readings stretch, target positions) pairs.

        Each stretch is time-ordered with enough history before its first target
        (`context_rows`); features are computed on the whole stretch, as when the run scored.
        Targets are explained in ``priority`` order (ranks over all windows' targets; default:
        as given), so when the time budget stops permutation SHAP the most important are done.
        ``stored`` (the run's scores at the targets) says which alarm line each score used;
        ``lift`` (per target, None: 1) is what the run divided each score by.
        The result's ``positions`` index the targets of all windows, concatenated in order.
        Features and model calls are batched across windows: per-call costs dominate.
        """
        pipe = self.pipeline(asset)
        mats = _stretch_features(pipe.features, [r for r, _ in windows])
        picks = [(w, int(t)) for w, (_, ts) in enumerate(windows) for t in ts]
        order = np.arange(len(picks)) if priority is None else np.argsort(priority, kind="stable")
        picks = [picks[i] for i in order]
        X = gather_rows(mats, tuple(np.array(picks, dtype=np.int64).reshape(-1, 2).T))
        method, smooth = method_of(pipe.detector), max(int(self.model.smooth), 1)
        if method == PERMUTATION:
            out = self._permutation_values(pipe, asset, mats, picks, progress, deadline)
            done = [picks[i] for i in out.positions]
        else:  # closed form: the trailing average of each row's exact parts
            done = picks
            rows = np.array(picks, dtype=np.int64).reshape(-1, 2).T
            values, base = smoothed_parts(pipe.detector, mats, rows, smooth, self.tree_explainer)
            n = len(picks)
            out = RowValues(np.arange(n), values, base, np.zeros(n), X.astype(np.float32))
        _, smoothed = _trailing_scores(pipe.detector, mats, done, smooth)
        lifts = None if lift is None else np.asarray(lift, dtype=np.float64)[order[out.positions]]
        factor = None
        if self.factor is not None:  # a version's classifier reads the run's (lifted) score
            seen = _run_scores(pipe, smoothed)
            seen = seen if lifts is None else seen / np.maximum(lifts, 1e-12)[:, None]
            factor = self.factor(X[out.positions], seen)
        out.positions = order[out.positions]
        out.model_score = _run_scores(pipe, smoothed)
        if getattr(self.factor, "from_stored", False) and stored is not None:
            factor = _stored_factor(out.model_score, np.asarray(stored)[out.positions], lifts)
        _to_run_units(
            pipe, out, None if stored is None else np.asarray(stored)[out.positions], factor, lifts
        )
        if progress is not None:
            progress(1.0, f"Explained {len(done)} points ({method})")
        if isinstance(pipe.detector, EnsembleDetector) and done:
            out.members = {
                m: pipe.detector._normalise(m, _trailing_scores(d, mats, done, 1)[0])
                for m, d in pipe.detector.detectors_.items()
            }
        return out

    def _row_functions(
        self, pipe: AssetPipeline, asset: str, mats: list[np.ndarray]
    ) -> Callable[[int, int], tuple[Callable, np.ndarray]]:
        """For target row t of window w: the row-wise function to explain and its background."""
        det = pipe.detector
        kind = _robust_z_kind(det)
        if kind is None:
            bg = self.background(pipe, asset)
            return lambda w, t: (det.score, bg)
        if kind == "alone":
            refs = [robust_z_reference(det, Xw.astype(np.float64)) for Xw in mats]
            return lambda w, t: (
                _frozen_robust_z(det, refs[w][0][t], refs[w][1][t]),
                refs[w][0][t][None, :],
            )
        members = {m: d for m, d in det.detectors_.items() if isinstance(d, RobustZDetector)}
        refs_by = {
            m: [robust_z_reference(d, Xw.astype(np.float64)) for Xw in mats]
            for m, d in members.items()
        }
        bg = self.background(pipe, asset)

        def combined(w: int, t: int) -> Callable:
            def f(Z: np.ndarray) -> np.ndarray:
                raw = {
                    m: _frozen_robust_z(d, refs_by[m][w][0][t], refs_by[m][w][1][t])(Z)
                    if m in refs_by
                    else d.score(Z)
                    for m, d in det.detectors_.items()
                }
                return det._combine(raw)

            return f

        return lambda w, t: (combined(w, t), bg)

    def _permutation_values(
        self,
        pipe: AssetPipeline,
        asset: str,
        mats: list[np.ndarray],
        picks: list[tuple[int, int]],
        progress: Progress | None,
        deadline: float | None,
    ) -> RowValues:
        import shap

        p = mats[0].shape[1]
        evals = self.limits.permutations * (2 * p + 1)
        row_fn = self._row_functions(pipe, asset, mats)
        values, base, target, done = [], [], [], []
        explainer, last = None, None
        with _seeded(self.limits.seed):
            for i, (w, t) in enumerate(picks):
                if deadline is not None and done and time.perf_counter() > deadline:
                    break
                f, bg = row_fn(w, t)
                if explainer is None or (f, id(bg)) != last:
                    masker = shap.maskers.Independent(bg, max_samples=len(bg))
                    explainer = shap.PermutationExplainer(f, masker)
                    last = (f, id(bg))
                x = mats[w][t : t + 1].astype(np.float64)
                res = explainer(x, max_evals=evals, batch_size=2 * p + 1, silent=True)
                values.append(res.values[0])
                base.append(float(np.ravel(res.base_values)[0]))
                target.append(float(f(x)[0]))
                done.append(i)
                if progress is not None:
                    progress((i + 1) / len(picks), f"Permutation SHAP: point {i + 1}")
        rows = np.array([mats[w][t] for w, t in (picks[i] for i in done)]).reshape(len(done), p)
        return RowValues(
            np.asarray(done, dtype=np.int64),
            np.asarray(values, dtype=np.float64).reshape(len(done), p),
            np.asarray(base),
            np.asarray(target),
            rows.astype(np.float32),
        )


def _trailing_scores(
    det: BaseDetector, mats: list[np.ndarray], picks: list[tuple[int, int]], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(raw score, trailing mean over ``k`` rows) at each (stretch, row) pick: one scoring call
    for row-wise detectors; a robust z detector scores each stretch whole, in time order."""
    if not picks:
        return np.zeros(0), np.zeros(0)
    if _robust_z_kind(det) is not None or not det.row_wise:
        scored = [det.score(Xw) for Xw in mats]
        smoothed = [smooth_scores(s, k) for s in scored]
        return (
            np.array([scored[w][t] for w, t in picks]),
            np.array([smoothed[w][t] for w, t in picks]),
        )
    w, t = np.array(picks, dtype=np.int64).T
    idx = t[:, None] - np.arange(k - 1, -1, -1)[None, :]  # (n, k): t-k+1 .. t
    valid = idx >= 0
    raw = det.score(gather_rows(mats, (np.repeat(w, k), np.clip(idx, 0, None).ravel())))
    raw = raw.reshape(idx.shape)
    return raw[:, -1], np.where(valid, raw, 0.0).sum(axis=1) / valid.sum(axis=1)


def _run_scores(pipe: AssetPipeline, smoothed: np.ndarray) -> np.ndarray:
    """The run's score recomputed from smoothed raw scores, against the normal alarm line and
    against the settling one the model uses right after setpoint changes (which line applied
    depends on context the explanation does not rebuild): (n, 2), for the fidelity check."""
    if len(smoothed) == 0:
        return np.zeros((0, 2))
    settling = np.ones(len(smoothed), dtype=bool)
    return np.column_stack([pipe.normalise(smoothed), pipe.normalise(smoothed, settling)])


def _stored_factor(
    model_score: np.ndarray, stored: np.ndarray, lift: np.ndarray | None
) -> np.ndarray:
    """Per point and line, the factor carrying the model's run score (n, 2, before the lift)
    to the stored score: for a version whose score is no one factor of its base model's that
    the explanation can rebuild (the weighted geometric mean with its untaught detector, whose lasting
    level reads days of history the explained stretch does not hold). 0 where the model's
    score is not positive (the mean is 0 there too)."""
    lifts = np.ones(len(stored)) if lift is None else np.nan_to_num(lift, nan=1.0)
    target = (np.nan_to_num(stored.astype(np.float64)) * lifts)[:, None]
    positive = model_score > 1e-12
    return np.where(positive, target / np.where(positive, model_score, 1.0), 0.0)


def _to_run_units(
    pipe: AssetPipeline,
    out: RowValues,
    stored: np.ndarray | None,
    factor: np.ndarray | None,
    lift: np.ndarray | None = None,
) -> None:
    """Rescale raw-score values as the run's score is rescaled (training median 0, alarm line
    1), against the line each stored score used (the one it is closer to), then by ``factor``
    (n, 2: a version's, per point and line; None: 1) and ``lift`` (n: what the run divided
    each score by; None: 1); ``target`` becomes the run's score as the model computes it."""
    n = len(out.base)
    if factor is not None:
        out.model_score = out.model_score * factor
    lifts = np.ones(n) if lift is None else np.maximum(np.nan_to_num(lift, nan=1.0), 1e-12)
    out.model_score = out.model_score / lifts[:, None]
    column = np.zeros(n, dtype=np.int64)
    if stored is not None and n:
        gaps = np.abs(out.model_score - stored.astype(np.float64)[:, None])
        column = np.where(np.isfinite(stored), np.argmin(np.nan_to_num(gaps, nan=0.0), 1), 0)
    transient = column == 1
    line = np.full(n, pipe.threshold)
    if pipe.transient_threshold is not None:
        line[transient] = pipe.transient_threshold
    scale = (line - pipe.center) * lifts
    if factor is not None:
        out.factor = factor[np.arange(n), column]
        with np.errstate(divide="ignore"):  # a factor of 0 carries every value to 0
            scale = scale / out.factor
    out.values = out.values / scale[:, None]
    out.base = (out.base - pipe.center) / scale
    out.target = out.model_score[np.arange(n), column] if n else np.zeros(0)
