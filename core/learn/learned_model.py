"""A version's model: the unsupervised detector, an optional classifier, and the alarm line.

Kept apart from the version registry (`core.learn.versions`) and the model files
(`core.learn.model_files`): this is the object a notebook scores with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.detect.model import AnomalyModel, ScoreResult
from core.detect.operating_range import NEW_MODE_LINE
from core.learn.familiarity import familiarity

Progress = Callable[[float, str], None]

CLASSIFIER_WEIGHT = 0.95
"""Combined score c = u * (1 - w + 2 w p'), u the unsupervised score (1 = its alarm line) and p'
the classifier's probability that a row looks like a confirmed anomaly, pulled towards 0.5 as
far as the row is unlike the labelled ones (p' = 0.5 + (p - 0.5) x trust, `core.learn.familiarity`):
p' = 0 divides u by 20, p' = 1 raises it by 90%, p' = 0.5 leaves it. A pattern analysts called
a false alarm needs twenty times the deviation; a kind of fault nobody labelled keeps its score.
Measured with bench/bench_learning.py (6 plants, F1 after 10 / 20 labels): 0.8 gave 0.876 /
0.904, 0.95 gives 0.880 / 0.911 (before the trust gate, 0.95 cost recall on unseen faults)."""


class LearnedModel:
    """A version's model: the unsupervised pipelines, an optional classifier, the alarm line.

    ``threshold`` applies to the combined score (see `CLASSIFIER_WEIGHT`); `score` divides by it,
    so 1 is the version's alarm line as in every run. ``reference`` keeps a sample of training
    readings and scores for drift checks; ``familiar`` the labelled rows the classifier's trust
    is measured against (`core.learn.familiarity`; versions saved before it trust the classifier
    everywhere).
    """

    def __init__(
        self,
        base: AnomalyModel,
        threshold: float = 1.0,
        classifier: Any = None,
        weight: float = CLASSIFIER_WEIGHT,
        reference: dict[str, np.ndarray] | None = None,
    ):
        self.base = base
        self.threshold = float(threshold)
        self.classifier = classifier
        self.weight = float(weight)
        self.reference = reference or {}
        self.familiar: dict[str, np.ndarray] | None = None

    @property
    def sensors(self) -> list[str]:
        return list(self.base.sensors_)

    def classifier_input(self, data: pd.DataFrame, u: np.ndarray) -> np.ndarray:
        """What the classifier sees: the unsupervised features of every row plus its score."""
        return self.classifier_rows(self.base.transform(data).values.to_numpy(), u)

    @staticmethod
    def classifier_rows(features: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The classifier's input from rows' features and their unsupervised scores."""
        return np.column_stack([features.astype(np.float32), u.astype(np.float32)])

    def trust(self, X: np.ndarray | None) -> np.ndarray | None:
        """The classifier's trust per row of its input (None: trusted everywhere)."""
        reference = getattr(self, "familiar", None)
        return None if X is None or not reference else familiarity(reference, X)

    def combine(
        self, u: np.ndarray, p: np.ndarray | None, trust: np.ndarray | None = None
    ) -> np.ndarray:
        """The documented combination of unsupervised score and classifier probability."""
        if p is None:
            return u
        if trust is not None:
            p = 0.5 + (p - 0.5) * trust
        return u * (1.0 - self.weight + 2.0 * self.weight * p)

    def parts(self, data: pd.DataFrame, progress: Progress | None = None) -> ScoredParts:
        """Unsupervised result, classifier probability (None without one) and combined score."""
        result = self.base.score(data, progress=progress)
        u = result.frame["score"].to_numpy(dtype=np.float64)
        if self.classifier is None:
            return ScoredParts(result, u, None, u)
        X = self.classifier_input(data, u)
        p = self.classifier.predict_proba(X)[:, 1]
        return ScoredParts(result, u, p, self.combine(u, p, self.trust(X)))

    def score(self, data: pd.DataFrame, progress: Progress | None = None) -> ScoreResult:
        """Score rows like `AnomalyModel.score`, but against this version's alarm line."""
        return self.parts(data, progress).normalised(self.threshold)


@dataclass
class ScoredParts:
    """The pieces of a version's score, row-aligned with the scored frame."""

    result: ScoreResult
    u: np.ndarray
    p: np.ndarray | None
    combined: np.ndarray

    def normalised(self, threshold: float) -> ScoreResult:
        frame = self.result.frame.copy()
        off = frame["is_off"].to_numpy(dtype=bool)
        score = np.where(off, 0.0, self.combined / threshold)
        frame["score"] = score
        line = np.where(frame["new_mode"], NEW_MODE_LINE, 1.0) if "new_mode" in frame else 1.0
        frame["is_anomaly"] = (score > line) & ~off  # a new operating mode: gross departures only
        r = self.result
        thresholds = {a: threshold for a in r.thresholds}
        return ScoreResult(
            frame, thresholds, r.sensor_deviation, r.interval_seconds, r.detector, r.sensors
        )
