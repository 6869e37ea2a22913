"""Runs a model version made (retraining, transfer, import): explained with the version's own model.

A version's score is ``u x (1 - w + 2 w p') / T`` (`core.learn.learned_model`): ``u`` the run
score of its unsupervised base model, ``p'`` its label classifier's probability (pulled towards
0.5 away from the labelled rows), ``T`` the version's alarm line. At each point that is ``u``
times one factor, so the base model's contributions (exact where its detector allows) carried
through that factor add up to the version's score, as TreeSHAP is carried through the forest's
score. The factor itself is what the analysts' labels did at that point, and is shown as such.
A version taught false alarms is carried through the detector fitted without them instead
(`VersionFactor.explained`): its score is no one factor of either detector's.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np

from core.detect import runs
from core.errors import DataError
from core.explain.result import TAUGHT_VERSION
from core.store import models as model_store

VERSION = "version"
"""The detector name of a run a model version made (`core.learn.versions.store_run`)."""


def version_record(con: duckdb.DuckDBPyConnection, run: runs.RunSummary) -> dict[str, Any]:
    """The version behind a version run (its base detector, parameters, id)."""
    version_id = int((run.params or {}).get("version_id", -1))
    record = model_store.get_version(con, version_id)
    if record is None:
        raise DataError(
            f"Run #{run.id} was made by model version v{version_id}, which is no longer in this "
            "workspace: it cannot be explained."
        )
    return record


def load_version_model(con: duckdb.DuckDBPyConnection, run: runs.RunSummary) -> Any:
    """The version's `LearnedModel` (skops, trust-checked), loaded only for version runs."""
    from core.learn.versions import load_version  # learning is heavy: only for version runs

    return load_version(con, int(version_record(con, run)["id"]))


def base_config(run: runs.RunSummary, record: dict[str, Any]) -> runs.RunConfig:
    """Settings that prepare the base model's training frame (permutation backgrounds only)."""
    return runs.RunConfig(
        dataset_id=run.dataset_id,
        assets=list(run.assets),
        detector=str(record["detector"]),
        params=dict(record.get("params") or {}),
        training=run.training,
    )


class VersionFactor:
    """Per point, the factor from the base model's run score ``u`` to the version's score.

    Called with the explained rows' features ``X`` (n, p) and ``u`` (n, k: one column per alarm
    line the point may have been judged against); returns (n, k).
    """

    def __init__(self, model: Any, version_id: int):
        self.model = model
        self.version_id = int(version_id)
        self.from_stored = getattr(model, "untaught", None) is not None
        """A version taught false alarms scores a weighted geometric mean of its base model and the
        detector fitted without them: it is explained through the latter (`explained`), and its
        factor is the stored score over that detector's."""

    @property
    def explained(self) -> Any:
        """The detector whose values the explanation carries: for a version taught false alarms
        the one fitted without them, whose score is positive wherever the version's is (the
        taught one may sit at 0 there: `core.learn.learned_model.TAUGHT_FLOOR`), so the ratio
        carries its values to the version's score; otherwise the base model."""
        return self.model.untaught if self.from_stored else self.model.base

    @property
    def has_classifier(self) -> bool:
        return self.model.classifier is not None

    def __call__(self, X: np.ndarray, u: np.ndarray) -> np.ndarray:
        model = self.model
        out = np.full(u.shape, 1.0 / model.threshold)
        if not self.has_classifier or len(X) == 0:
            return out
        for k in range(u.shape[1]):
            rows = model.classifier_rows(X, u[:, k])
            p = model.classifier.predict_proba(rows)[:, 1]
            out[:, k] = model.combine(np.ones(len(X)), p, model.trust(rows, p)) / model.threshold
        return out

    def words(self, factors: np.ndarray) -> str:
        """What the version does to its base model's score, for the explanation's description."""
        line = f"the version's alarm line ({self.model.threshold:.3g} on the base model's score)"
        if self.from_stored:
            span = f"x{factors.min():.3g} to x{factors.max():.3g}" if len(factors) else "none"
            return (
                f" This run is model version v{self.version_id}, {TAUGHT_VERSION}: "
                "its score is a weighted geometric mean of its base model's (which learnt from them) "
                "and the same detector's fitted without them, times the factor its label "
                f"classifier sets at each point, divided by {line}. The values are those of the "
                "detector fitted without them (the one that still sees faults far from every "
                "verdict), carried through the ratio of the version's score to its score at each "
                f"point (here {span}), so they add up to the version's score; the factor at each "
                "point is shown beside it."
            )
        if not self.has_classifier:
            return (
                f" This run is model version v{self.version_id}: its base model's score divided "
                f"by {line}; the base model's values are divided alike, so they add up to the "
                "version's score."
            )
        labels = factors * self.model.threshold
        span = f"x{labels.min():.2f} to x{labels.max():.2f}" if len(labels) else "none"
        return (
            f" This run is model version v{self.version_id}: its base model's score times the "
            "factor its label classifier sets at each point (below 1 where the point looks like "
            f"the analysts' false alarms, above 1 like their confirmed faults; here {span}), "
            f"divided by {line}. The values are the base model's, carried through that factor, "
            "so they add up to the version's score; the factor at each point is shown beside it."
        )
