"""The classifier's trust: full among the labelled rows, falling off with distance from them."""

from __future__ import annotations

import numpy as np
import pytest

from core.learn import familiarity as fam
from core.learn.learned_model import LearnedModel


def test_trust_is_full_among_labelled_rows_and_falls_with_distance():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    labelled = np.arange(500)
    ref = fam.fit_familiarity(X, labelled)
    assert ref["radius"] > 0 and ref["rows"].shape == (500, 3)
    assert np.all(fam.familiarity(ref, X[labelled]) == 1.0), "a labelled row is familiar"
    far = np.array([[40.0, 0.0, 0.0], [400.0, 0.0, 0.0]])
    trust = fam.familiarity(ref, far)
    assert 0 < trust[1] < trust[0] < 0.2, "falls with distance"
    ratio = 10.0**fam.TRUST_POWER  # ten times further: a tenth, to the power
    assert 0.75 * ratio < trust[0] / trust[1] < 1.35 * ratio


def test_reference_is_a_seeded_sample_and_needs_two_rows():
    X = np.random.default_rng(1).normal(size=(5000, 2))
    first = fam.fit_familiarity(X, np.arange(5000))
    again = fam.fit_familiarity(X, np.arange(5000))
    assert len(first["rows"]) == fam.MAX_REFERENCE_ROWS
    assert np.array_equal(first["rows"], again["rows"])
    lonely = fam.fit_familiarity(X, np.array([3]))
    assert np.all(fam.familiarity(lonely, X[:10]) == 0.0), "no radius: no trust"


def test_an_unfamiliar_row_keeps_its_unsupervised_score():
    model = LearnedModel(base=None, weight=0.8)
    u, p = np.array([2.0, 2.0, 2.0]), np.array([0.0, 0.0, 1.0])
    combined = model.combine(u, p, trust=np.array([1.0, 0.0, 1.0]))
    assert combined.tolist() == pytest.approx([0.4, 2.0, 3.6])
    assert model.combine(u, p).tolist() == pytest.approx([0.4, 0.4, 3.6]), "no trust: full"
