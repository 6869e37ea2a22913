"""The Load data page through Streamlit's AppTest: empty state, demo in one click, uploads."""

import pytest

from core import store
from pages import ui
from tests.apptest import open_app, shown
from tests.workbooks import plant_workbook

GOOD_CSV = b"time;pump_speed;flow\n2026-01-01 00:00;1450;20.5\n2026-01-01 00:01;1452;20.7\n" + (
    b"".join(f"2026-01-01 00:{m:02d};{1450 + m};{20 + m / 10}\n".encode() for m in range(2, 60))
)


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("VIGIL_DB", str(tmp_path / "workspace.duckdb"))
    return open_app()


def _datasets(tmp_path):
    con = store.open_workspace(tmp_path / "workspace.duckdb")
    try:
        return store.list_datasets(con)
    finally:
        con.close()


def test_empty_workspace_offers_the_demo(app):
    assert not app.exception
    assert app.title[0].value == "Load data"
    assert any("workspace is empty" in info.value for info in app.info)
    labels = [b.label for b in app.button]
    assert "Load the demo plant" in labels


def test_demo_plant_in_one_click(app):
    next(b for b in app.button if b.label == "Load the demo plant").click()
    app.run()
    assert not app.exception
    assert not app.error
    assert app.dataframe, "the datasets table should be shown"
    table = app.dataframe[0].value
    assert table["name"].iloc[0].startswith("Demo plant")
    assert bool(table["ground truth"].iloc[0])
    assert "Demo plant" in app.sidebar.selectbox[0].format_func(app.sidebar.selectbox[0].value)


def test_upload_a_csv_creates_a_dataset(app, tmp_path):
    app.file_uploader[0].set_value(("pumps.csv", GOOD_CSV, "text/csv"))
    app.run()
    next(b for b in app.button if b.label == "Load file").click()
    app.run()
    assert not app.exception
    assert not app.error, [e.value for e in app.error]
    table = app.dataframe[0].value
    assert table["name"].tolist() == ["pumps"]
    assert int(table["rows"].iloc[0]) == 60


def test_upload_a_workbook_with_one_sheet_per_pump(app, tmp_path):
    path = plant_workbook(tmp_path / "plant.xlsx", ["P-101", "P-102"], rows=30)
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    app.file_uploader[0].set_value(("plant.xlsx", path.read_bytes(), xlsx))
    app.run()
    next(b for b in app.button if b.label == "Load file").click()
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert any("each is an asset" in w.value for w in app.warning)
    (info,) = _datasets(tmp_path)
    assert info.assets == ["P-101", "P-102"] and info.n_rows == 60


def test_a_second_click_on_load_file_does_not_load_the_upload_twice(app, tmp_path):
    """A double click on "Load file" loaded one upload twice, as "dbl" and "dbl (2)"."""
    app.file_uploader[0].set_value(("dbl.csv", GOOD_CSV, "text/csv"))
    app.run()
    for _ in range(2):
        next(b for b in app.button if b.label == "Load file").click()
        app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert [d.name for d in _datasets(tmp_path)] == ["dbl"]
    assert any("already loaded as dbl" in shown(i) for i in app.info)
    app.file_uploader[0].set_value(("dbl.csv", GOOD_CSV, "text/csv"))  # uploaded once more
    app.run()
    next(b for b in app.button if b.label == "Load file").click()
    app.run()
    assert sorted(d.name for d in _datasets(tmp_path)) == ["dbl", "dbl (2)"]


@pytest.mark.parametrize(
    ("filename", "content"),
    [
        ("empty.csv", b""),
        ("binary.csv", bytes(range(256)) * 8),
        ("notime.csv", b"a,b\n1,2\n3,4\n"),
    ],
)
def test_bad_upload_shows_an_error_and_changes_nothing(app, tmp_path, filename, content):
    app.file_uploader[0].set_value((filename, content, "text/csv"))
    app.run()
    next(b for b in app.button if b.label == "Load file").click()
    app.run()
    assert not app.exception
    assert app.error, "a clear message is expected"
    assert "Traceback" not in app.error[0].value
    assert not app.dataframe


def _make_test_copy(tmp_path, monkeypatch, rows: int, faults: int):
    """A workspace with one pump dataset; press "Make the test copy" with ``faults`` per asset."""
    from tests.test_fault_copy import normal_plant

    con = store.open_workspace(tmp_path / "workspace.duckdb")
    source = normal_plant(con, n=rows)
    con.close()
    monkeypatch.setenv("VIGIL_DB", str(tmp_path / "workspace.duckdb"))
    app = open_app()
    app.number_input(key="inject_n").set_value(faults)
    next(b for b in app.button if b.label == "Make the test copy").click()
    return app.run(), source


def test_a_test_copy_with_injected_faults_becomes_the_active_dataset(tmp_path, monkeypatch):
    app, source = _make_test_copy(tmp_path, monkeypatch, rows=3000, faults=2)
    assert not app.exception and not app.error, [e.value for e in app.error]
    copy = next(d for d in _datasets(tmp_path) if d.id != source.id)
    assert copy.has_ground_truth and copy.name == "pumps + 2 faults per asset"
    assert app.sidebar.selectbox[0].value == copy.id, "the sidebar follows the new dataset"
    assert any("4 injected faults" in m.value for m in app.success)
    assert sorted(app.dataframe[0].value["name"]) == ["pumps", copy.name]


def test_a_test_copy_that_would_be_mostly_faults_is_refused_on_the_page(tmp_path, monkeypatch):
    app, _ = _make_test_copy(tmp_path, monkeypatch, rows=600, faults=30)
    assert not app.exception
    assert any("would make" in e.value and "faulty" in e.value for e in app.error)
    assert len(_datasets(tmp_path)) == 1, "nothing written"


def _demo_and_pumps(app, tmp_path):
    """Two datasets loaded through the page: the demo plant, then an uploaded pumps.csv."""
    next(b for b in app.button if b.label == "Load the demo plant").click()
    app.run()
    app.file_uploader[0].set_value(("pumps.csv", GOOD_CSV, "text/csv"))
    app.run()
    next(b for b in app.button if b.label == "Load file").click()
    app.run()
    return sorted(_datasets(tmp_path), key=lambda d: d.id)


def test_the_dataset_pickers_follow_the_sidebar(app, tmp_path):
    """Test copy, twin and append drew their Dataset picker once and kept it: after a switch in
    the sidebar they still named the dataset active before, so a batch went to the wrong one."""
    demo, pumps = _demo_and_pumps(app, tmp_path)
    for active in (pumps, demo, pumps):
        app.sidebar.selectbox(key="sidebar_dataset").set_value(active.id)
        app.run()
        assert not app.exception
        pickers = [s for s in app.main.selectbox if s.label == "Dataset"]
        assert len(pickers) == 4, "test copy, twin, append, delete"
        assert [s.value for s in pickers] == [active.id] * 4


def test_deleting_a_dataset_asks_first_and_deletes_the_one_picked(app, tmp_path):
    """Delete removed a dataset on one click, with no confirmation step."""
    demo, pumps = _demo_and_pumps(app, tmp_path)
    app.sidebar.selectbox(key="sidebar_dataset").set_value(demo.id)
    app.run()
    (popover,) = [n for n in app.main if getattr(n, "type", None) == "popover"]
    assert popover.proto.popover.label == f"Delete {ui.plain(demo.name)}"
    assert "cannot be undone" in popover.markdown[0].value
    assert [b.key for b in popover.button] == ["delete_dataset"], "Delete only inside it"
    popover.button[0].click()
    app.run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert [d.name for d in _datasets(tmp_path)] == ["pumps"]
