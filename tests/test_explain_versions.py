"""Runs a model version made are explained with the version's own model, on Explain and in core.

A version's score is its base model's score times its label classifier's factor, over its alarm
line: the base model's exact values carried through that factor add up to the version's score.
"""

from __future__ import annotations

import numpy as np
import pytest

from core import store
from core.charts.explain import contribution_figure
from core.detect import runs
from core.errors import DataError
from core.explain import event_scope, explain_event, explain_run, method_text
from core.explain.fitted import clear_models
from core.learn import retraining as learning
from tests.apptest import open_app, shown
from tests.test_learning import add_labels, make_dataset, toy_frame
from tests.test_versions import FAULTS, SPANS


@pytest.fixture(scope="module")
def workspace_file(tmp_path_factory):
    """A toy dataset with confirmed faults and false alarms, retrained twice: with the label
    classifier, then without (a version that only moved the alarm line); file closed."""
    path = tmp_path_factory.mktemp("explain_versions") / "workspace.duckdb"
    con = store.open_workspace(path)
    info = make_dataset(con, toy_frame(n=900, faults=FAULTS))
    add_labels(con, info, SPANS)
    plain = learning.retrain(
        con, learning.RetrainConfig(info.id, semi_supervised=False), "tester"
    ).version
    learned = learning.retrain(con, learning.RetrainConfig(info.id), "tester").version
    taught = learning.retrain(
        con, learning.RetrainConfig(info.id, learn_false_alarms=True), "tester"
    ).version
    con.close()
    assert learned.semi_supervised and not plain.semi_supervised
    assert taught.training["n_false_alarm_rows"] > 0
    yield path, learned, plain, taught
    clear_models()


@pytest.fixture
def con(workspace_file):
    con = store.open_workspace(workspace_file[0])
    yield con
    con.close()


def _top_event(con, run_id: int) -> int:
    events = runs.run_events(con, run_id)
    assert len(events), "the version flags the injected faults"
    return int(events["event_id"].iloc[0])


def _adds_up(expl) -> None:
    """Every point's bars sum to the run's stored score within 1% (the waterfall's title)."""
    stored = expl.rows["score"].to_numpy(dtype=np.float64)
    on = stored > 0
    assert on.any()
    assert np.all(np.abs(expl.output[on] - stored[on]) <= 0.01 * stored[on])
    assert np.allclose(expl.target[on], stored[on], rtol=1e-6), "the version's own model"


@pytest.mark.parametrize("which", ["learned", "plain"])
def test_a_version_runs_event_is_explained_exactly_with_its_own_model(con, workspace_file, which):
    version = workspace_file[1] if which == "learned" else workspace_file[2]
    expl = explain_event(con, version.run_id, _top_event(con, version.run_id), refresh=True)
    assert expl.method == "additive", "auto's members split exactly, as for its plain runs"
    assert expl.detector.startswith(f"v{version.id} · auto")
    assert f"model version v{version.id}" in expl.description
    assert not expl.notes, "the stored scores are reproduced: no fidelity note"
    _adds_up(expl)
    total = contribution_figure(expl).data[0].x[-1]
    assert total == pytest.approx(float(expl.rows["score"].iloc[expl.peak]), rel=0.01)
    text = method_text(expl, expl.peak)
    assert text.startswith("**Method: exact**")
    if which == "learned":
        factors = expl.rows["label_factor"].to_numpy()
        assert (factors > 0).all() and np.ptp(factors) > 0, "the labels' factor varies"
        assert "label classifier multiplied the base model's score by" in text
    else:
        assert "label_factor" not in expl.rows and "label classifier" not in text


def test_a_version_taught_false_alarms_is_explained_through_its_geometric_mean(con, workspace_file):
    """Its score is the geometric mean of the detector taught the false alarms and the one
    fitted without them, times the classifier's factor: no one factor of the base model's the
    explanation can rebuild, so the base model's values are carried through the ratio of the
    stored score to it, and add up to the stored score."""
    version = workspace_file[3]
    expl = explain_event(con, version.run_id, _top_event(con, version.run_id), refresh=True)
    assert "geometric mean" in expl.description
    text = method_text(expl, expl.peak)
    assert (
        "times that of the detector fitted without the taught false alarms at this point" in text
        and "label classifier multiplied" not in text
    )
    assert f"model version v{version.id}" in expl.description
    _adds_up(expl)
    factors = expl.rows["label_factor"].to_numpy()
    assert (factors >= 0).all() and np.ptp(factors) > 0, "the ratio varies point by point"
    whole = explain_run(con, version.run_id, refresh=True)
    _adds_up(whole)


def test_a_version_runs_whole_run_summary_adds_up(con, workspace_file):
    expl = explain_run(con, workspace_file[1].run_id, refresh=True)
    _adds_up(expl)


def test_a_run_whose_version_is_gone_says_so(con, workspace_file):
    run = runs.get_run(con, workspace_file[1].run_id)
    record = run.to_record()
    record.update(id=store.next_run_id(con), params={"version_id": 999})
    store.save_run(con, record, runs.run_scores(con, run.id), runs.run_events(con, run.id))
    with pytest.raises(DataError, match="model version v999, which is no longer"):
        explain_event(con, record["id"], _top_event(con, run.id), refresh=True)
    runs.delete_run(con, record["id"])


def test_the_explain_page_explains_a_version_runs_event(workspace_file, monkeypatch, tmp_path):
    path, learned = workspace_file[:2]
    copy = tmp_path / "page.duckdb"
    copy.write_bytes(path.read_bytes())
    monkeypatch.setenv("VIGIL_DB", str(copy))
    clear_models()
    at = open_app()
    at.session_state["explain_event"] = (learned.run_id, 1)
    at.switch_page("pages/explain.py")
    at.run()
    assert not at.exception and not at.error, [shown(e) for e in at.error]
    assert at.selectbox(key="explain_run").value == learned.run_id
    assert len(at.get("plotly_chart")) == 2, "waterfall and heatmap"
    assert any(f"model version v{learned.id}" in shown(c) for c in at.caption)
    method = next(shown(m) for m in at.markdown if shown(m).startswith("**Method:"))
    assert "exact" in method and "label classifier" in method
    con = store.open_workspace(copy)
    try:
        assert store.load_explanation(con, learned.run_id, event_scope(1), "additive", 2), (
            "cached under its base detector's method"
        )
    finally:
        con.close()
