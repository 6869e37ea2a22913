"""Explanations in the run's score: every waterfall's bars add up to the score in its title.

One small demo plant, one run per detector, the top event explained through the service (the
call the Explain page makes) and drawn as the page draws it.
"""

import re

import numpy as np
import pytest

from core import store
from core.charts.explain import contribution_figure
from core.detect import runs
from core.detect.detectors.registry import DETECTORS
from core.explain import service as explain
from core.explain.exact import shapley_top_k
from core.explain.fitted import clear_models
from core.explain.methods import ExplainLimits, method_for_detector
from core.synth.demo import load_demo

EXACT = ["auto", "zmax", "robust_z", "pca", "iforest", "autoencoder"]
FAST = ExplainLimits(agnostic_rows=4, background=5)


@pytest.fixture(scope="module")
def plant(tmp_path_factory):
    con = store.open_workspace(tmp_path_factory.mktemp("units") / "workspace.duckdb")
    info = load_demo(con, seed=5, n_assets=1, rows_per_asset=8000)
    yield con, info
    clear_models()
    con.close()


def _run(con, info, detector: str) -> int:
    params = {"max_iter": 30} if detector == "autoencoder" else {}  # a quicker fit suffices
    config = runs.RunConfig(dataset_id=info.id, detector=detector, params=params)
    return runs.execute_run(con, config).id


def _title_score(figure) -> float:
    return float(re.search(r"run score ([\d.]+)x", figure.layout.title.text).group(1))


def _scored_rows(expl) -> np.ndarray:
    rows = expl.rows
    return np.flatnonzero((rows["score"] > 0.05) & ~rows["is_off"].astype(bool))


@pytest.mark.parametrize("detector", EXACT)
def test_exact_waterfalls_sum_to_the_run_score_in_their_title(plant, detector):
    con, info = plant
    run_id = _run(con, info, detector)
    event = int(runs.run_events(con, run_id)["event_id"].iloc[0])
    expl = explain.explain_event(con, run_id, event, refresh=True)
    assert expl.method == method_for_detector(detector) != "permutation"
    assert expl.notes == (), expl.notes
    rows = _scored_rows(expl)
    assert len(rows) >= 3, "the event scores above 0 at several points"
    stored = expl.rows["score"].to_numpy()[rows]
    # the values alone (base + contributions) reach the stored score: nothing left over
    np.testing.assert_allclose(expl.output[rows], stored, rtol=0.01)
    for row in [expl.peak, *rows[:: max(1, len(rows) // 5)]]:
        water = contribution_figure(expl, row, level="sensor", top=4)
        bars = np.asarray(water.data[0].x, dtype=float)
        assert not any(str(y).startswith("unexplained") for y in water.data[0].y)
        assert bars[:-1].sum() == pytest.approx(bars[-1], rel=0.01)
        assert bars[-1] == pytest.approx(_title_score(water), rel=0.01, abs=0.006)
        assert bars[-1] == pytest.approx(expl.rows["score"].iloc[row], rel=0.01)
    words = explain.method_text(expl, expl.peak)  # the page states the method in plain words
    assert words.startswith("**Method: exact** (") and "no sampling" in words
    assert ("TreeSHAP" in words) == (detector == "iforest")


def test_permutation_fallback_shows_what_it_leaves_unexplained(plant):
    con, info = plant
    run_id = _run(con, info, "lof")
    event = int(runs.run_events(con, run_id)["event_id"].iloc[0])
    expl = explain.explain_event(con, run_id, event, limits=FAST, refresh=True)
    assert expl.method == "permutation"
    row = expl.peak
    water = contribution_figure(expl, row, level="sensor", top=4).data[0]
    bars = np.asarray(water.x, dtype=float)
    assert bars[:-1].sum() == pytest.approx(bars[-1], rel=1e-9)
    assert bars[-1] == pytest.approx(expl.rows["score"].iloc[row], rel=0.01)
    share = expl.unexplained_share(row)
    if share > 1e-3:
        label = next(str(y) for y in water.y if str(y).startswith("unexplained"))
        assert f"{share:.0%} of the score" in label
    words = explain.method_text(expl, row)
    assert words.startswith("**Method: permutation SHAP**, an estimate")
    assert f"{share:.0%} of the score at this point is left unexplained" in words


def test_every_detector_but_lof_and_ocsvm_is_explained_exactly():
    methods = {name: method_for_detector(name) for name in DETECTORS}
    assert {n for n, m in methods.items() if m == "permutation"} == {"lof", "ocsvm"}
    assert methods["auto"] == methods["ensemble"] == "additive"
    assert method_for_detector("auto", {"norm": "rank"}) == "permutation"
    assert method_for_detector("ensemble", {"members": ["zmax", "lof"]}) == "permutation"


def _brute_shapley(r: np.ndarray, k: int) -> np.ndarray:
    """Shapley values by enumerating every coalition (written out, independent of the code)."""
    from itertools import combinations
    from math import factorial

    p = len(r)

    def f(S):
        return float(np.sort([r[i] for i in S])[::-1][:k].sum()) if S else 0.0

    phi = np.zeros(p)
    for i in range(p):
        others = [j for j in range(p) if j != i]
        for size in range(p):
            w = factorial(size) * factorial(p - size - 1) / factorial(p)
            for S in combinations(others, size):
                phi[i] += w * (f(S + (i,)) - f(S))
    return phi


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_closed_form_shapley_of_the_top_k_matches_enumeration(k):
    rng = np.random.default_rng(k)
    r = rng.exponential(size=(4, 5))
    r[0, 1] = r[0, 3]  # ties
    fast = shapley_top_k(r, k)
    for i in range(len(r)):
        np.testing.assert_allclose(fast[i], _brute_shapley(r[i], k), atol=1e-12)
    np.testing.assert_allclose(fast.sum(1), np.sort(r, 1)[:, ::-1][:, :k].sum(1), atol=1e-12)


def test_a_stored_model_drops_in_without_a_refit_or_reading_training_data(plant):
    """`fitted_run(source=...)` is where stored models (models-at-work) plug in."""
    from core.detect.model import AnomalyModel
    from core.explain.fitted import fitted_run

    con, info = plant
    run_id = _run(con, info, "pca")
    clear_models()
    refit = fitted_run(con, run_id)
    stored = AnomalyModel("pca").fit(refit.explainer.train)
    pipe = stored.pipelines_["P-101"]
    pipe.threshold = pipe.center + 2 * (pipe.threshold - pipe.center)  # not the run's model
    clear_models()
    fitted = fitted_run(con, run_id, source=lambda con, run: stored)
    assert fitted.model is stored
    event = int(runs.run_events(con, run_id)["event_id"].iloc[0])
    expl = explain.explain_event(con, run_id, event, refresh=True)
    assert callable(fitted.explainer._train), "exact methods never read the training frame"
    np.testing.assert_allclose(
        expl.target[expl.peak] * 2, expl.rows["score"].iloc[expl.peak], rtol=0.05
    )
    clear_models()
