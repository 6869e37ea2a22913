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


def test_the_classifier_raises_a_score_only_where_a_confirmed_label_vouches_for_it():
    """Near rows analysts saw as normal (a false alarm, the reviewed context) the classifier
    may lower a score but not raise it; near confirmed rows it may raise one but not lower it."""
    rng = np.random.default_rng(2)
    context = rng.normal(0.0, 1.0, size=(300, 3))
    alarm = rng.normal([8.0, 0.0, 0.0], 0.5, size=(40, 3))
    confirmed = rng.normal([0.0, 8.0, 0.0], 0.5, size=(40, 3))
    X = np.vstack([context, alarm, confirmed])
    kinds = np.r_[np.full(300, fam.CONTEXT), np.full(40, fam.FALSE_ALARM), np.full(40, 1)]
    ref = fam.fit_familiarity(X, np.arange(len(X)), kinds=kinds)
    rows = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, 0.0], [0.0, 8.0, 0.0]])  # context, alarm, fault
    low = fam.vouched_trust(ref, rows, np.zeros(3))
    assert low[0] == 1.0 and low[1] == 1.0 and low[2] < 0.05, low
    high = fam.vouched_trust(ref, rows, np.ones(3))
    assert high[0] < 0.05 and high[1] < 0.05 and high[2] == 1.0, high
    plain = {k: v for k, v in ref.items() if k != "kinds"}  # a version saved before kinds
    assert np.allclose(fam.vouched_trust(plain, rows, np.ones(3)), 1.0), "any labelled row"
