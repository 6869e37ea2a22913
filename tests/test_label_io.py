"""Label import and export on a real DuckDB file: round trips, all-or-nothing, bad files."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from core.errors import DataError
from core.labels import files as label_io
from core.labels import history as labels
from tests.label_data import at, draft, make_dataset


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_then_import_round_trips(con, info, tmp_path, fmt):
    labels.create_labels(
        con,
        info.id,
        [draft(sensors=("temp", "flow"), comment="a, b; c"), draft(asset="p2", verdict="unsure")],
        "ana",
    )
    data = label_io.export_labels(con, info.id, fmt)
    other = make_dataset(con)
    result = label_io.import_labels(con, other.id, data, f"labels.{fmt}", "bob")
    assert (result.n_imported, result.n_skipped) == (2, 0)
    cols = list(label_io.EXPORT_COLUMNS)
    a = label_io.export_frame(con, info.id)[cols]
    b = label_io.export_frame(con, other.id)[cols]
    pd.testing.assert_frame_equal(a, b)
    again = label_io.import_labels(con, other.id, data, f"labels.{fmt}", "bob")
    assert (again.n_imported, again.n_skipped) == (0, 2), "importing twice adds nothing"
    assert set(labels.current_labels(con, other.id)["source"]) == {"import"}


BAD_FILE = """asset,start,end,verdict,kind,sensors,comment
p1,2026-01-01 00:10,2026-01-01 00:20,confirmed,spike,temp;flow,fine
p9,2026-01-01 00:10,2026-01-01 00:20,confirmed,spike,,bad asset
p1,yesterday,2026-01-01 00:20,confirmed,,,bad start
p1,2026-01-01 00:30,2026-01-01 00:20,false alarm,,,end before start
p1,2026-01-01 00:10,2026-01-01 00:20,maybe,,,bad verdict
p1,2026-01-01 00:10,2026-01-01 00:20,confirmed,gremlins,,bad kind
p1,2026-01-01 00:10,2026-01-01 00:20,unsure,,temp;pressure,bad sensor
p2,2031-01-01 00:10,2031-01-01 00:20,confirmed,,,another year
"""


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (2, "row 2: asset 'p9' is not in the dataset"),
        (3, "row 3: start 'yesterday' is not a time"),
        (4, "row 4: end is before start"),
        (5, "row 5: verdict 'maybe' is not one of"),
        (6, "row 6: kind 'gremlins' is not in the taxonomy"),
        (7, "row 7: sensor 'pressure' is not in the dataset"),
        (
            8,
            "row 8: 2031-01-01 00:10:00 to 2031-01-01 00:20:00 covers none of the readings of 'p2' "
            "(2026-01-01 00:00:00 to 2026-01-01 09:59:00)",
        ),
    ],
)
def test_a_bad_file_is_rejected_whole_with_row_numbers(con, info, row, message):
    with pytest.raises(DataError) as err:
        label_io.import_labels(con, info.id, BAD_FILE.encode(), "mine.csv", "ana")
    assert message in str(err.value)
    assert "7 of 8 rows are invalid, nothing was imported" in str(err.value)
    assert labels.current_labels(con, info.id).empty, "row 1 was good but nothing is half-imported"


def test_the_good_rows_of_the_bad_file_import_once_fixed(con, info):
    good = "\n".join(BAD_FILE.splitlines()[:2]).replace("fine", "ok")
    good += "\np1,2026-01-01T00:40:00,2026-01-01T00:45:00,False Alarm,,,\n"
    good += "p2,2025-12-31T23:00:00,2026-01-01T00:00:00,unsure,,,overlaps the first reading\n"
    result = label_io.import_labels(con, info.id, good.encode(), "mine.csv", "ana")
    assert result.n_imported == 3
    current = labels.current_labels(con, info.id)
    assert current["verdict"].tolist() == ["confirmed", "false_alarm", "unsure"]
    assert current.iloc[0]["sensors"] == ["temp", "flow"]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"asset,start,verdict\np1,2026-01-01,confirmed\n", "x.csv", "no column 'end'"),
        (b"asset,start,end,verdict\n", "x.csv", "holds no labels"),
        (b"whatever", "x.xlsx", "from a .csv or .parquet file"),
        (b"not parquet", "x.parquet", "cannot be read"),
        (
            b"asset,start,end,verdict,Verdict\np1,2026-01-01,2026-01-01,confirmed,false_alarm\n",
            "x.csv",
            "^x.csv has more than one column named 'verdict' \\(ignoring case\\)",
        ),
    ],
)
def test_unreadable_label_files(con, info, content, name, message):
    with pytest.raises(DataError, match=message):
        label_io.import_labels(con, info.id, content, name, "ana")


EMPTY = "^{} is empty: a label file has a header row \\(asset, start, end, verdict\\)"
NOT_TEXT = "^{} is not a text CSV file \\(it is binary or not UTF-8\\): save it as CSV UTF-8"


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"", "x.csv", EMPTY),
        (b"\xef\xbb\xbf\r\n \n", "x.csv", EMPTY),
        (b"", "x.parquet", EMPTY),
        (bytes(range(256)) * 8, "x.csv", NOT_TEXT),
        (b"\x89PNG\r\n\x1a\n" + bytes(64), "x.csv", NOT_TEXT),
        (
            "asset,start,end,verdict\nPumpe-\xc4,1,2,confirmed\n".encode("latin-1"),
            "x.csv",
            NOT_TEXT,
        ),
    ],
    ids=["empty", "bom-and-blanks", "empty-parquet", "binary", "png", "latin-1"],
)
def test_an_empty_or_binary_label_file_is_named_in_one_sentence(con, info, content, name, message):
    """pandas' own words came through: 'No columns to parse from file', "'utf-8' codec can't
    decode byte 0x89", 'Error tokenizing data'."""
    with pytest.raises(DataError, match=message.format(name)) as caught:
        label_io.import_labels(con, info.id, content, name, "ana")
    assert str(caught.value).count(". ") == 0 and "codec" not in str(caught.value)


def test_csv_export_joins_sensors_with_semicolons(con, info):
    labels.create_labels(con, info.id, [draft(sensors=("temp", "vib"))], "ana")
    frame = pd.read_csv(io.BytesIO(label_io.export_labels(con, info.id, "csv")))
    assert frame.columns.tolist() == list(label_io.EXPORT_COLUMNS)
    assert frame.iloc[0]["sensors"] == "temp;vib"


HOSTILE = [
    '=HYPERLINK("http://x.example","click")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    "'=quoted by the analyst",
    "''@twice",
]
PLAIN = ["it's fine", "'quoted, no formula", "a - b = c", " spaced"]


def test_formulas_in_comments_go_out_defused_and_come_back_unchanged(con, info):
    comments = HOSTILE + PLAIN
    drafts = [
        draft(start=at(10 * i), end=at(10 * i + 5), comment=c) for i, c in enumerate(comments)
    ]
    labels.create_labels(con, info.id, drafts, "ana")
    data = label_io.export_labels(con, info.id, "csv")
    cells = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)["comment"]
    assert sorted(cells) == sorted([f"'{c}" for c in HOSTILE] + PLAIN), "formulas open as text"
    other = make_dataset(con)
    label_io.import_labels(con, other.id, data, "labels.csv", "bob")
    back = label_io.export_frame(con, other.id)["comment"]
    assert sorted(back) == sorted(comments), "the round trip is exact"


def test_csv_export_quotes_text_cells_only_and_keeps_a_carriage_return_in_its_cell():
    """A carriage return inside a comment was written bare, and read back as a new row."""
    frame = pd.DataFrame({"severity": [-1.5, 2.0], "event": [-3, 4], "comment": ["-1", "a\rb"]})
    back = pd.read_csv(io.BytesIO(label_io.csv_bytes(frame)), keep_default_na=False)
    expected = frame.assign(comment=["'-1", "a\rb"])
    pd.testing.assert_frame_equal(back, expected)  # numbers unquoted, still numbers
