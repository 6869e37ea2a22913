"""The window autoencoder on every surface: run from the Detect page, explained on the Explain
page (exact window errors that add up), retrained with a label. Real DuckDB file, real app."""

from __future__ import annotations

import numpy as np

from core import store
from core.detect import runs
from core.explain import explain_event
from core.explain.fitted import clear_models
from core.labels import history as labels
from core.labels import triage
from core.learn import RetrainConfig, retrain
from core.synth.demo import load_demo
from tests.apptest import open_app


def test_autoencoder_from_detect_to_explain_to_retraining(tmp_path, monkeypatch):
    path = tmp_path / "workspace.duckdb"
    monkeypatch.setenv("VIGIL_DB", str(path))
    con = store.open_workspace(path)
    info = load_demo(con, seed=3, n_assets=1, rows_per_asset=10_000)
    con.close()

    at = open_app("pages/detect.py")
    at.selectbox(key="detect_detector").set_value("autoencoder")
    at.run()
    at.button(key="detect_go").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.switch_page("pages/explain.py")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Window autoencoder, exact" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) == 2, "waterfall and heatmap"

    con = store.open_workspace(path)
    try:
        (run,) = runs.list_runs(con, info.id)
        assert run.detector == "autoencoder"
        queue = triage.review_queue(con, run.id)
        assert len(queue) > 0, "the demo plant's faults give events"
        expl = explain_event(con, run.id, int(queue["event_id"].iloc[0]))
        assert expl.method == "window_error"
        scored = np.asarray(expl.target) > 0  # points clipped to 0 are labelled so instead
        np.testing.assert_allclose(
            np.asarray(expl.output)[scored], np.asarray(expl.target)[scored], rtol=1e-6
        )
        labels.label_events(con, info.id, queue.iloc[:1], "confirmed", "ana", kind="spike")
        result = retrain(con, RetrainConfig(dataset_id=info.id), "ana")
        assert result.version.detector == "autoencoder"
    finally:
        clear_models()
        con.close()
