"""Model versions: skops round trip with identical scores, trust check, promote, apply, transfer."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from core import store
from core.detect import runs
from core.errors import DataError
from core.labels import history as labels
from core.labels.history import LabelDraft
from core.learn import familiarity, versions
from core.learn import retraining as learning
from core.learn.learned_model import LearnedModel
from core.learn.model_files import dump_model, load_model
from tests.test_learning import add_labels, make_dataset, toy_frame

FAULTS = [("p1", 400 + 60 * i, 410 + 60 * i, "temp", 6.0) for i in range(4)]
SPANS = [("p1", 400 + 60 * i, 410 + 60 * i, "confirmed") for i in range(4)] + [
    ("p2", 420 + 80 * i, 430 + 80 * i, "false_alarm") for i in range(3)
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A toy dataset with 4 confirmed faults and 3 false alarms, retrained once per module
    (tests add versions and datasets to it, but only the promotion test promotes)."""
    con = store.open_workspace(tmp_path_factory.mktemp("versions") / "workspace.duckdb")
    info = make_dataset(con, toy_frame(n=900, faults=FAULTS))
    add_labels(con, info, SPANS)
    result = learning.retrain(con, learning.RetrainConfig(info.id), "tester")
    yield con, info, result
    con.close()


def test_version_records_what_made_it(trained):
    con, info, result = trained
    v = result.version
    assert v.semi_supervised, "4 confirmed and 3 false alarms are enough for the classifier"
    assert v.origin == "retrain" and v.created_by == "tester" and v.dataset_id == info.id
    assert (
        len(v.label_ids) == 7 and len(v.label_seqs) == 7 and v.label_watermark >= max(v.label_seqs)
    )
    assert v.training["window"] == {"kind": "first_fraction", "value": 0.3}
    assert v.features["n_features"] > 0 and v.sensors == ["temp", "flow", "vib"]
    assert {"scikit-learn", "numpy", "skops"} <= set(v.versions)
    assert {"held_out", "in_sample", "alarms_per_day", "comparison"} <= set(v.metrics)
    assert v.model_bytes > 0 and len(v.model_sha256) == 64
    run = runs.get_run(con, v.run_id)
    assert run.detector == "version" and run.params == {"version_id": v.id}


def test_reloaded_version_gives_identical_scores(trained):
    con, info, result = trained
    model = versions.load_version(con, result.version.id)
    assert isinstance(model.classifier, object) and model.classifier is not None
    scores = model.score(store.read_readings(con, info)).frame
    stored = runs.run_scores(con, result.version.run_id)
    merged = stored.merge(scores, on=["ts", "asset"], suffixes=("_stored", "_reloaded"))
    assert len(merged) == len(stored) == info.n_rows
    assert np.array_equal(merged["score_stored"], merged["score_reloaded"])
    again = load_model(dump_model(model)).score(store.read_readings(con, info)).frame
    assert np.array_equal(again["score"].to_numpy(), scores["score"].to_numpy())


def _renamed(data: bytes, old: str, new: str) -> bytes:
    """The same skops file with one class path rewritten (as a file from an older Vigil)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        files = {name: z.read(name) for name in z.namelist()}
    files["schema.json"] = files["schema.json"].replace(old.encode(), new.encode())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files.items():
            z.writestr(name, content)
    return out.getvalue()


def test_a_model_file_from_before_the_module_split_still_loads(trained):
    con, info, result = trained
    model = versions.load_version(con, result.version.id)
    data = dump_model(model)
    old = _renamed(data, '"core.learn.learned_model"', '"core.versions"')
    assert "core.versions.LearnedModel" in sio.get_untrusted_types(data=old)
    loaded = load_model(old)
    frame = store.read_readings(con, info)
    assert np.array_equal(loaded.score(frame).frame["score"], model.score(frame).frame["score"])


def test_a_model_file_from_before_the_stage_packages_still_loads(trained):
    """Files saved when core/ was flat name core.model, core.features, core.detectors_pca..."""
    con, info, result = trained
    model = versions.load_version(con, result.version.id)
    old = dump_model(model)
    for new, former in [
        ("core.learn.learned_model", "core.learned_model"),
        ("core.detect.model", "core.model"),
        ("core.detect.features", "core.features"),
        ("core.detect.detectors.registry", "core.detectors"),
        ("core.detect.detectors.pca", "core.detectors_pca"),
        ("core.detect.detectors.scikit", "core.detectors_sklearn"),
    ]:
        old = _renamed(old, f'"{new}"', f'"{former}"')
    found = sio.get_untrusted_types(data=old)
    assert "core.model.AnomalyModel" in found and not any(".detect." in t for t in found)
    loaded = load_model(old)
    frame = store.read_readings(con, info)
    assert np.array_equal(loaded.score(frame).frame["score"], model.score(frame).frame["score"])


class Evil:
    """Not a type Vigil trusts: a model file containing it must not load."""

    def __init__(self):
        self.payload = "anything"


def test_skops_refuses_an_untrusted_type(trained):
    con, _, result = trained
    model = versions.load_version(con, result.version.id)
    model.reference = {"trap": Evil()}
    with pytest.raises(DataError, match=r"does not trust \(tests\.test_versions\.Evil\)"):
        load_model(dump_model(model))
    with pytest.raises(DataError, match="not a skops model file"):
        load_model(b"PK\x03\x04 certainly not a model")


def test_import_goes_through_the_trust_check(trained):
    con, info, result = trained
    data = versions.export_version(con, result.version.id)
    imported = versions.import_version(con, info.id, data, "tester", "mine.skops")
    assert imported.origin == "import" and imported.model_sha256 == result.version.model_sha256
    model = versions.load_version(con, result.version.id)
    model.base = Evil()
    with pytest.raises(DataError, match="does not trust"):
        versions.import_version(con, info.id, dump_model(model), "tester")


def test_promote_makes_a_version_active_and_keeps_the_history(trained):
    con, info, result = trained
    assert versions.active_version(con, info.id) is None
    versions.promote(con, result.version.id, "alice", "first")
    assert versions.active_version(con, info.id).id == result.version.id
    second = learning.retrain(con, learning.RetrainConfig(info.id), "bob").version
    assert second.parent_id is None and not second.active
    assert second.metrics["comparison"]["champion"] == f"v{result.version.id} (active)"
    versions.promote(con, second.id, "bob")
    assert versions.active_version(con, info.id).id == second.id
    history = versions.promotions(con, info.id)
    assert list(history["version_id"]) == [second.id, result.version.id]
    table = versions.compare_versions(con, [second.id, result.version.id])
    assert list(table["version"]) == [f"v{second.id} (active)", f"v{result.version.id}"]


def test_threshold_change_is_a_new_version(trained):
    con, _, result = trained
    moved = learning.save_threshold(con, result.version.id, 2.0, "tester")
    assert moved.parent_id == result.version.id and moved.origin == "threshold"
    assert moved.threshold == pytest.approx(2 * result.version.threshold)
    old = runs.run_scores(con, result.version.run_id)["score"].to_numpy()
    new = runs.run_scores(con, moved.run_id)["score"].to_numpy()
    assert np.allclose(new * 2.0, old)


def test_apply_to_a_sister_machine_with_an_asset_map(trained):
    con, info, result = trained
    sister = make_dataset(con, toy_frame(assets=("p9",), n=500, seed=3), name="sister")
    run_id = versions.apply_version(con, result.version.id, sister.id, asset_map={"p9": "p1"})
    scores = runs.run_scores(con, run_id)
    assert set(scores["asset"]) == {"p9"} and len(scores) == 500
    moved = versions.transfer_version(con, result.version.id, sister.id, "tester")
    assert moved.dataset_id == sister.id and moved.parent_id == result.version.id
    assert moved.origin == "transfer" and moved.run_id is not None


@pytest.mark.parametrize(
    ("sensors", "message"),
    [
        (["temp", "flow"], "missing 'vib'"),
        (["temp", "flow", "vib", "pressure"], "extra 'pressure'"),
        (["temp", "pressure", "rpm"], "missing 'flow', 'vib'; extra 'pressure', 'rpm'"),
    ],
)
def test_transfer_names_missing_and_extra_sensors(trained, sensors, message):
    con, _, result = trained
    other = make_dataset(con, toy_frame(assets=("p1",), n=300, sensors=sensors), name="other")
    with pytest.raises(DataError, match=message):
        versions.transfer_version(con, result.version.id, other.id, "tester")
    with pytest.raises(DataError, match=message):
        versions.apply_version(con, result.version.id, other.id)


def test_unknown_version_is_a_data_error(workspace):
    with pytest.raises(DataError, match="no model version v42"):
        versions.get_version(workspace, 42)


def test_learned_model_without_classifier_scores_like_its_base():
    frame = toy_frame(assets=("p1",), n=400)
    from core.detect.model import AnomalyModel

    base = AnomalyModel().fit(frame.head(200))
    model = LearnedModel(base, threshold=2.0)
    ours = model.score(frame).frame["score"].to_numpy()
    theirs = base.score(frame).frame["score"].to_numpy()
    assert np.allclose(ours * 2.0, theirs)
    assert pd.Series(ours > 1.0).equals(pd.Series(model.score(frame).frame["is_anomaly"]))


def test_a_version_is_graded_like_a_run_after_its_training_window(workspace):
    from core.synth.demo import load_demo

    info = load_demo(workspace, seed=7, rows_per_asset=3000)
    run = runs.execute_run(workspace, runs.RunConfig(info.id))
    quiet = store.read_run_scores(workspace, run.id).iloc[:10]  # a verdict that moves nothing
    assert quiet["score"].max() < 1.0
    draft = LabelDraft(quiet["asset"].iloc[0], quiet["ts"].min(), quiet["ts"].max(), "false_alarm")
    labels.create_labels(workspace, info.id, [draft], "tester")
    version = learning.retrain(workspace, learning.RetrainConfig(info.id), "tester").version
    graded = version.metrics["ground_truth"]
    assert version.threshold == 1.0 and graded["f1"] == pytest.approx(run.evaluation["f1"])
    scores = store.read_run_scores(workspace, version.run_id)
    everything = runs.graded_evaluation(
        workspace, info, info.assets, scores, runs.TrainingWindow("dataset", 0)
    )
    assert everything["f1"] != pytest.approx(graded["f1"]), "the training window is not graded"


def test_a_version_keeps_the_rows_its_classifier_is_trusted_near(trained):
    con, info, result = trained
    model = versions.load_version(con, result.version.id)
    assert model.classifier is not None and model.familiar["radius"] > 0
    assert 0 < len(model.familiar["rows"]) <= familiarity.MAX_REFERENCE_ROWS
