"""Ingest: files written in tmp_path, loaded into a real DuckDB workspace, stored values checked."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from core import store
from core.errors import DataError
from core.ingest.explore import quality_items
from core.ingest.files import HEAD_BYTES
from core.ingest.pipeline import ingest_file
from tests.workbooks import plant_workbook, pump_sheet, write_workbook

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def rows(con, info) -> list[tuple]:
    """Stored rows in read order (read_readings orders by asset, then time)."""
    return list(store.read_readings(con, info).itertuples(index=False, name=None))


def minutes(n: int, start: str = "2024-01-01 00:00:00") -> list[str]:
    return pd.date_range(start, periods=n, freq="min").strftime("%Y-%m-%d %H:%M:%S").tolist()


# --- happy paths -------------------------------------------------------------------------------

QUALITY_CSV = """time,temp,pressure,status,flat
2024-01-01 00:00:00,1,5,OK,3
2024-01-01 00:00:10,2,,OK,3
2024-01-01 00:00:20,3,6,ALARM,3
2024-01-01 00:00:20,4,7,OK,3
2024-01-01 00:01:20,5,8,OK,3
2024-01-01 00:01:10,6,9,OK,3
2024-01-01 00:01:30,7,10,OK,3
"""


def test_wide_csv_quality_report(workspace, tmp_path):
    result = ingest_file(workspace, write(tmp_path, "plant.csv", QUALITY_CSV))
    info = result.dataset
    assert (info.name, info.layout, info.source_file) == ("plant", "wide", "plant.csv")
    assert info.n_rows == 7
    assert info.sensors == ["temp", "pressure", "flat"]
    assert info.assets == ["main"]
    assert info.interval_seconds == 10.0
    assert (info.time_start, info.time_end) == (
        datetime(2024, 1, 1, 0, 0, 0),
        datetime(2024, 1, 1, 0, 1, 30),
    )
    q = info.quality
    assert q.n_rows == 7
    assert q.n_duplicate_timestamps == 1
    assert q.n_non_monotonic == 1
    assert (q.n_gaps, q.largest_gap_seconds) == (1, 50.0)
    assert dict(quality_items(info))["Gaps"] == "1 (largest 50 s)"
    assert dict(quality_items(replace(info, quality=replace(q, n_gaps=0))))["Gaps"] == "0"
    assert q.constant_sensors == ["flat"]
    assert q.nan_share == {"temp": 0.0, "pressure": pytest.approx(1 / 7, abs=1e-6), "flat": 0.0}
    assert q.ignored_columns == ["status"]
    assert any("sorted" in note for note in q.notes)
    assert any("status" in w for w in result.warnings)
    stored = store.read_readings(workspace, info)
    assert stored["ts"].is_monotonic_increasing
    assert list(stored.columns) == ["ts", "asset", "temp", "pressure", "flat"]
    assert stored["temp"].tolist() == [1, 2, 3, 4, 6, 5, 7]
    assert stored["pressure"].isna().sum() == 1


@pytest.mark.parametrize(
    ("name", "text", "encoding"),
    [
        ("comma.csv", "time,a,b\n{r0},1.5,2\n{r1},2.5,3\n{r2},3.5,4\n", "utf-8"),
        ("semi.csv", "time;a;b\n{r0};1,5;2\n{r1};2,5;3\n{r2};3,5;4\n", "utf-8"),
        ("tab.tsv", "time\ta\tb\n{r0}\t1.5\t2\n{r1}\t2.5\t3\n{r2}\t3.5\t4\n", "utf-8"),
        ("crlf.csv", "time,a,b\r\n{r0},1.5,2\r\n{r1},2.5,3\r\n{r2},3.5,4\r\n", "utf-8"),
        ("bom.csv", "\ufefftime,a,b\n{r0},1.5,2\n{r1},2.5,3\n{r2},3.5,4\n", "utf-8"),
        ("spaces.csv", "time , a , b\n{r0}, 1.5 ,2\n{r1},2.5 , 3\n{r2},3.5,4\n", "utf-8"),
        ("quoted.csv", '"time","a","b"\n"{r0}","1.5","2"\n"{r1}","2.5","3"\n"{r2}","3.5","4"\n',
         "utf-8"),
    ],
)  # fmt: skip
def test_wide_delimiters(workspace, tmp_path, name, text, encoding):
    stamps = minutes(3)
    path = write(tmp_path, name, text.format(r0=stamps[0], r1=stamps[1], r2=stamps[2]), encoding)
    info = ingest_file(workspace, path).dataset
    assert info.sensors == ["a", "b"]
    assert info.interval_seconds == 60.0
    assert [r[2:] for r in rows(workspace, info)] == [(1.5, 2.0), (2.5, 3.0), (3.5, 4.0)]


def test_latin1_semicolon_decimal_comma(workspace, tmp_path):
    text = "Zeit;Temp_é;Druck °C\n13.01.2024 00:00:05;1,5;2\n13.01.2024 00:01:05;-2,25;3\n"
    info = ingest_file(workspace, write(tmp_path, "werk.csv", text, "latin-1")).dataset
    assert info.sensors == ["Temp_é", "Druck °C"]
    assert info.time_start == datetime(2024, 1, 13, 0, 0, 5)
    assert [r[2] for r in rows(workspace, info)] == [1.5, -2.25]


def test_weird_column_names_are_kept_verbatim_and_harmless(workspace, tmp_path):
    names = ['a"b', "x; DROP TABLE datasets; --", "it's", "Robert'); --"]
    header = ",".join('"' + n.replace('"', '""') + '"' for n in ["time", *names])
    body = "".join(f"{t},1,2,3,{i}\n" for i, t in enumerate(minutes(3)))
    info = ingest_file(workspace, write(tmp_path, "odd.csv", header + "\n" + body)).dataset
    assert info.sensors == names
    assert store.read_readings(workspace, info)["Robert'); --"].tolist() == [0, 1, 2]
    assert [d.name for d in store.list_datasets(workspace)] == ["odd"]


def test_asset_column_named_like_machine(workspace, tmp_path):
    body = "".join(f"{t},P{k},{k}.{i}\n" for i, t in enumerate(minutes(3)) for k in (2, 1))
    info = ingest_file(workspace, write(tmp_path, "m.csv", "timestamp,machine_id,temp\n" + body))
    info = info.dataset
    assert info.assets == ["P1", "P2"]
    assert info.n_rows == 6
    assert store.asset_row_counts(workspace, info) == {"P1": 3, "P2": 3}
    assert info.quality.n_duplicate_timestamps == 0
    assert info.quality.n_non_monotonic == 0
    stored = store.read_readings(workspace, info, asset="P2")
    assert stored["temp"].tolist() == [2.0, 2.1, 2.2]


def test_low_cardinality_text_column_is_an_asset(workspace, tmp_path):
    body = "".join(f"{t},{site},{i}\n" for i, t in enumerate(minutes(4)) for site in "NS")
    info = ingest_file(workspace, write(tmp_path, "s.csv", "time,site,flow\n" + body)).dataset
    assert info.assets == ["N", "S"]
    assert info.sensors == ["flow"]
    assert info.quality.ignored_columns == []


def test_integer_asset_id(workspace, tmp_path):
    body = "".join(f"{t},{u},{u * 10 + i}\n" for i, t in enumerate(minutes(3)) for u in (1, 2))
    info = ingest_file(workspace, write(tmp_path, "u.csv", "time,unit,speed\n" + body)).dataset
    assert (info.assets, info.sensors) == (["1", "2"], ["speed"])


def test_long_format_without_asset(workspace, tmp_path):
    stamps = minutes(3)
    body = "".join(f"{t},{tag},{v + i},{unit}\n" for tag, v, unit in (("T1", 10, "°C"),
                   ("P1", 20, "bar")) for i, t in enumerate(stamps))  # fmt: skip
    result = ingest_file(workspace, write(tmp_path, "h.csv", "time,tagname,value,Unit\n" + body))
    info = result.dataset
    assert info.layout == "long"
    assert info.quality.ignored_columns == ["Unit"]  # a measurement unit, not an asset
    assert info.sensors == ["T1", "P1"]
    assert (info.n_rows, info.assets, info.interval_seconds) == (3, ["main"], 60.0)
    assert info.quality.n_non_monotonic == 0  # each tag's series runs forward
    assert [r[2:] for r in rows(workspace, info)] == [(10, 20), (11, 21), (12, 22)]


def test_long_format_with_asset_and_repeated_tag_value(workspace, tmp_path):
    text = (
        "Timestamp;Equipment;Sensor;Value\n"
        "2024-01-01 00:00:00;A;temp;1\n2024-01-01 00:00:00;A;temp;1,5\n"
        "2024-01-01 00:00:00;B;temp;2\n2024-01-01 00:00:00;A;rpm;100\n"
        "2024-01-01 00:00:10;A;temp;3\n2024-01-01 00:00:10;B;rpm;200\n"
    )
    info = ingest_file(workspace, write(tmp_path, "hist.csv", text)).dataset
    assert (info.layout, info.assets, info.sensors) == ("long", ["A", "B"], ["temp", "rpm"])
    assert info.n_rows == 4
    assert info.quality.n_duplicate_timestamps == 1
    stored = store.read_readings(workspace, info, asset="A")
    assert stored["temp"].tolist() == [1.5, 3.0]  # the last value in the file wins
    assert stored["rpm"].isna().tolist() == [False, True]


def test_parquet_with_utc_offset_times_and_nan(workspace, tmp_path):
    frame = pd.DataFrame(
        {
            "when": pd.date_range("2024-01-01 02:00", periods=4, freq="30s", tz="Europe/Berlin"),
            "flow": [1.0, float("nan"), 3.0, 4.0],
            "count": [1, 2, 3, 4],
            "note": ["a", "b", "c", "d"],
        }
    )
    frame.to_parquet(tmp_path / "p.parquet")
    info = ingest_file(workspace, tmp_path / "p.parquet").dataset
    assert info.sensors == ["flow", "count"]
    assert info.time_start == datetime(2024, 1, 1, 1, 0)  # 02:00 Berlin = 01:00 UTC
    assert info.interval_seconds == 30.0
    assert info.quality.nan_share["flow"] == 0.25
    assert info.quality.ignored_columns == ["note"]


def test_excel_with_asset(workspace, tmp_path):
    frame = pd.DataFrame(
        {
            "Date Time": pd.date_range("2024-05-01", periods=4, freq="min").repeat(2),
            "Pump": ["P1", "P2"] * 4,
            "Vibration": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
            "Temp": [20, 21, "NA", 23, 24, 25, 26, 27],  # a text cell meaning "missing"
        }
    )
    frame.to_excel(tmp_path / "pumps.xlsx", index=False)
    result = ingest_file(workspace, tmp_path / "pumps.xlsx", name="pumps May")
    info = result.dataset
    assert (info.name, info.assets) == ("pumps May", ["P1", "P2"])
    assert info.sensors == ["Vibration", "Temp"]
    assert info.interval_seconds == 60.0
    assert info.quality.nan_share == {"Vibration": 0.0, "Temp": 0.125}
    stored = store.read_readings(workspace, info, asset="P2")
    assert stored["Vibration"].tolist() == [0.2, 0.4, 0.6, 0.8]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["2024-03-13 08:00:00", "2024-03-13 08:01:00"], datetime(2024, 3, 13, 8)),
        (["2024-03-13T08:00:00.500", "2024-03-13T08:01:00.500"], datetime(2024, 3, 13, 8, 0, 0, 500000)),
        (["13/03/2024 08:00", "13/03/2024 08:01"], datetime(2024, 3, 13, 8)),
        (["03/13/2024 08:00:00", "03/13/2024 08:01:00"], datetime(2024, 3, 13, 8)),
        (["03/13/2024 08:00:00 AM", "03/13/2024 08:01:00 AM"], datetime(2024, 3, 13, 8)),
        (["13.03.2024 08:00:00", "13.03.2024 08:01:00"], datetime(2024, 3, 13, 8)),
        (["2024/03/13 08:00", "2024/03/13 08:01"], datetime(2024, 3, 13, 8)),
        (["13-Mar-2024 08:00:00", "13-Mar-2024 08:01:00"], datetime(2024, 3, 13, 8)),
        (["2024-03-13T10:00:00+02:00", "2024-03-13T10:01:00+02:00"], datetime(2024, 3, 13, 8)),
        (["2024-03-13 08:00:00 UTC", "2024-03-13 08:01:00 UTC"], datetime(2024, 3, 13, 8)),
        # a zone that changes (summer time) is still a zone on every row: converted row by row
        (["2024-03-31 01:59:00+01:00", "2024-03-31 03:00:00+02:00"], datetime(2024, 3, 31, 0, 59)),
        (["1710316800", "1710316860"], datetime(2024, 3, 13, 8)),
        (["1710316800000", "1710316860000"], datetime(2024, 3, 13, 8)),
        # ambiguous day/month: the reading in which time runs forward wins
        (["11/01/2024 00:00", "12/01/2024 00:00", "01/02/2024 00:00"], datetime(2024, 1, 11)),
        (["01/11/2024 00:00", "01/12/2024 00:00", "02/01/2024 00:00"], datetime(2024, 1, 11)),
    ],
)  # fmt: skip
def test_time_formats(workspace, tmp_path, cells, expected):
    body = "".join(f"{c},{i}\n" for i, c in enumerate(cells))
    info = ingest_file(workspace, write(tmp_path, "t.csv", "time,level\n" + body)).dataset
    assert info.time_start == expected
    assert info.quality.n_non_monotonic == 0
    assert info.sensors == ["level"]


def test_mostly_text_column_is_ignored_and_empty_time_rows_dropped(workspace, tmp_path):
    text = "time,temp,comment\n2024-01-01 00:00,1,ok\n,2,no time\n2024-01-01 00:01,3,7\n"
    result = ingest_file(workspace, write(tmp_path, "c.csv", text))
    q = result.dataset.quality
    assert result.dataset.n_rows == 2
    assert q.ignored_columns == ["comment"]
    assert any("1 rows without a time" in n for n in q.notes)


def test_missing_value_tokens_are_missing_not_text(workspace, tmp_path):
    cells = ["1.5", "NaN", "", "NA", "#N/A", "2.5", "nan", "n/a", "inf", "-"]
    body = "".join(f"{t},{c}\n" for t, c in zip(minutes(len(cells)), cells, strict=True))
    info = ingest_file(workspace, write(tmp_path, "na.csv", "time,flow\n" + body)).dataset
    assert info.quality.nan_share == {"flow": 0.8}
    assert store.read_readings(workspace, info)["flow"].isna().sum() == 8
    nulls = workspace.execute(f"SELECT count(*) FROM {info.table_name} WHERE flow IS NULL")
    assert nulls.fetchall() == [(8,)]  # stored as NULL, not NaN: SQL aggregates stay clean


def test_missing_marker_first_seen_past_the_start(workspace, tmp_path):
    path = write(tmp_path, "late.csv", BIG + "2024-03-01 00:00:00,M1,NA\n")
    info = ingest_file(workspace, path).dataset
    assert info.n_rows == 15_001
    assert info.quality.nan_share == {"a": pytest.approx(1 / 15_001)}
    assert [d.id for d in store.list_datasets(workspace)] == [info.id]


def test_unnamed_trailing_column_is_ignored(workspace, tmp_path):
    text = "time,a,b,\n2024-01-01 00:00,1,2,\n2024-01-01 00:01,3,4,\n"
    q = ingest_file(workspace, write(tmp_path, "trail.csv", text)).dataset.quality
    assert q.ignored_columns == []
    assert q.notes == ["1 column(s) without a name in the header were ignored."]


def test_boolean_columns_are_sensors(workspace, tmp_path):
    text = "time,running,a\n2024-01-01 00:00,true,1\n2024-01-01 00:01,false,2\n"
    info = ingest_file(workspace, write(tmp_path, "b.csv", text)).dataset
    assert store.read_readings(workspace, info)["running"].tolist() == [1.0, 0.0]


def test_metadata_names_and_hash(workspace, tmp_path):
    path = write(tmp_path, "upload.tmp", QUALITY_CSV)
    first = ingest_file(workspace, path, source_name="Line 4.csv").dataset
    second = ingest_file(workspace, path, source_name="Line 4.csv").dataset
    assert (first.name, second.name) == ("Line 4", "Line 4 (2)")
    assert first.source_file == "Line 4.csv"
    assert first.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert first.table_name == store.readings_table_name(first.id)
    assert store.get_dataset(workspace, first.id).quality == first.quality


# --- bad input: a clear DataError and an unchanged workspace --------------------------------------


def _truncated_parquet(tmp_path: Path) -> bytes:
    """A real Parquet file with its middle cut out (the footer magic is kept)."""
    frame = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=500, freq="s"), "x": 1.0})
    frame.to_parquet(tmp_path / "ok.parquet")
    data = (tmp_path / "ok.parquet").read_bytes()
    return data[: len(data) // 2] + data[-8:]


def test_excel_sheets_with_the_same_columns_are_stacked_one_asset_each(workspace, tmp_path):
    result = ingest_file(workspace, plant_workbook(tmp_path / "plant.xlsx", ["P-101", "P-102"], 4))
    info = result.dataset
    assert info.assets == ["P-101", "P-102"] and info.sensors == ["Vibration", "Temp"]
    stored = store.read_readings(workspace, info, asset="P-102")["Vibration"]
    assert stored.tolist() == [2.0, 2.01, 2.02, 2.03]
    said = " ".join(result.warnings)
    assert "Sheets P-101, P-102 stacked: each is an asset." in said
    assert "left out" in said and "Notes" in said


def test_excel_sheets_naming_their_asset_are_stacked_as_they_are(workspace, tmp_path):
    first, second = pump_sheet(1.0), pump_sheet(2.0)
    first.insert(1, "Pump", "A"), second.insert(1, "Pump", "B")
    result = ingest_file(
        workspace, write_workbook(tmp_path / "ab.xlsx", {"May": first, "June": second})
    )
    assert result.dataset.assets == ["A", "B"] and result.dataset.sensors == ["Vibration", "Temp"]
    assert not any("each is an asset" in w for w in result.warnings)


def test_a_bad_cell_in_a_later_sheet_is_named_by_sheet_and_row(workspace, tmp_path):
    bad = pump_sheet(2.0, temp=[20, 21, "hot", 23])
    path = write_workbook(tmp_path / "bad.xlsx", {"P-101": pump_sheet(1.0), "P-102": bad})
    before = _snapshot(workspace)
    with pytest.raises(DataError, match="column 'Temp' holds numbers but sheet 'P-102' row 4"):
        ingest_file(workspace, path)
    assert _snapshot(workspace) == before, "nothing half-written"


def _parquet_bytes(tmp_path: Path, frame: pd.DataFrame) -> bytes:
    frame.to_parquet(tmp_path / "x.parquet")
    return (tmp_path / "x.parquet").read_bytes()


def _excel_bytes(tmp_path: Path, frame: pd.DataFrame) -> bytes:
    frame.to_excel(tmp_path / "x.xlsx", index=False)
    return (tmp_path / "x.xlsx").read_bytes()


GOOD = "".join(f"{t},{i}\n" for i, t in enumerate(minutes(3)))
LONG_MIXED = "time,a,b\n" + "".join(f"{t},{i},1\n" for i, t in enumerate(minutes(30_000)))
"""30,000 clean rows: more than DuckDB's sniffer samples, so what follows is only seen on load."""
ZONED = "time,a,b\n" + "".join(f"{t}+01:00,{i},1\n" for i, t in enumerate(minutes(30_000)))
EPOCH = "time,a\n" + "".join(f"{1704067200 + 60 * i},{i}\n" for i in range(30_000))
BIG = "time,machine,a\n" + "".join(f"{t},M1,{i}\n" for i, t in enumerate(minutes(15_000)))
"""More than the head of the file that decides encoding and missing-value markers."""
assert len(BIG) > HEAD_BYTES
BAD_INPUTS = [
    ("empty", "e.csv", b"", "is empty"),
    ("blank lines only", "e.csv", "\n\n \n", "is empty"),
    ("header only", "h.csv", "time,temp\n", "header line but no data rows"),
    ("binary", "b.csv", bytes(range(256)) * 8, "binary NUL bytes"),
    ("utf-16", "u.csv", "time,a\n".encode("utf-16"), "UTF-16"),
    ("gzip", "g.csv.gz", gzip.compress(b"time,a\n2024-01-01,1\n"), "gzip-compressed"),
    ("no time column", "n.csv", "when,a\nyesterday,1\ntoday,2\n", "no time column"),
    ("elapsed seconds, not epoch", "n.csv", "time,a\n0,1\n1,2\n",
     "'time': numbers, but not epoch seconds"),
    ("time column only", "t.csv", "time\n2024-01-01 00:00\n2024-01-01 00:01\n",
     "there is no column"),
    ("no numeric column", "n.csv", "time,label\n2024-01-01 00:00,a\n2024-01-01 00:01,b\n",
     "no numeric sensor column"),
    ("mixed types in the sample", "m.csv",
     "time,pressure\n" + "".join(f"{t},{i}\n" for i, t in enumerate(minutes(5)))
     + "2024-01-02 00:00:00,oops\n", "column 'pressure' holds numbers but line 7 has 'oops'"),
    ("mixed types past the sniffer sample", "m.csv",
     LONG_MIXED + "2024-02-01 00:00:00,n/a?,1\n", "column 'a' holds numbers but line 30002"),
    ("ragged row", "r.csv", "time,a,b\n2024-01-01 00:00,1,2\n2024-01-01 00:01,1\n",
     "line 3 has 2 fields but the header has 3"),
    ("ragged row past the sample", "r.csv", LONG_MIXED + "2024-02-01 00:00:00,1,2,3\n",
     "line 30002 has 4 fields but the header has 3"),
    ("duplicate column names", "d.csv", "time,temp,temp\n" + GOOD.replace("\n", ",1\n"),
     "two columns named 'temp' and 'temp'"),
    ("duplicate names but for case", "d.csv", "time,Temp,temp\n" + GOOD.replace("\n", ",1\n"),
     "two columns named 'Temp' and 'temp'"),
    ("sensor named ts", "s.csv", "time,ts\n" + GOOD, "sensor 'ts' clashes"),
    ("sensor named ASSET", "s.csv", "time,ASSET\n" + GOOD.replace(",", ",1.5") , "'ASSET' clashes"),
    ("tag named asset", "l.csv", "time,tag,value\n2024-01-01 00:00,asset,1\n", "'asset' clashes"),
    ("bad time cell", "t.csv", "time,a\n13/01/2024 10:00,1\n14/01/2024 10:00,2\n32/13/2024 x,3\n",
     "time column 'time' has '32/13/2024 x' on line 4"),
    ("bad time past the sample", "t.csv", LONG_MIXED + "not a time,1,2\n", "on line 30002"),
    ("zone from row 50", "z.csv", "time,a\n" + "".join(
        f"{t}{'+05:00' if i >= 50 else ''},{i}\n" for i, t in enumerate(minutes(200))),
     "'2024-01-01 00:50:00+05:00' on line 52 with a time zone, but the rows above it have none"),
    ("zone past the sample", "z.csv", LONG_MIXED + "2024-02-01 00:00:00+05:00,1,2\n",
     "on line 30002 with a time zone"),
    ("zone named past the sample", "z.csv", LONG_MIXED + "2024-02-01 00:00:00 CET,1,2\n",
     "on line 30002 with a time zone"),
    ("naive among zoned times", "z.csv", "time,a\n2024-01-01 00:00+01:00,1\n2024-01-01 00:01,2\n",
     "'2024-01-01 00:01' on line 3 with no time zone, but the rows above it have one"),
    ("naive past zoned sample", "z.csv", ZONED + "2024-02-01 00:00:00,1,2\n",
     "on line 30002 with no time zone"),
    ("epoch seconds, then milliseconds", "e.csv", "time,a\n" + "".join(
        f"{1704067200 + 60 * i}{'000' if i >= 100 else ''},{i}\n" for i in range(200)),
     "'1704073200000' on line 102, which is not in epoch seconds like the first rows"),
    ("epoch milliseconds past the sample", "e.csv", EPOCH + "1705867200000,1\n",
     "'1705867200000' on line 30002, which is not in epoch seconds"),
    ("every sensor empty", "e.csv", "time,a,b\n" + "".join(f"{t},,\n" for t in minutes(5)),
     "has no sensor with a usable value: 'a' is empty, 'b' is empty"),
    ("the only sensor empty", "e.csv", "time,e\n" + "".join(f"{t},\n" for t in minutes(5)),
     "'e' is empty. There is nothing to detect on"),
    ("the only sensor inf", "i.parquet", lambda p: _parquet_bytes(p, pd.DataFrame(
        {"time": pd.date_range("2024-01-01", periods=4, freq="h"), "e": [float("inf")] * 4})),
     "'e' holds only out-of-range values"),
    ("the only sensor inf in a CSV", "i.csv", "time,e\n" + "".join(f"{t},inf\n" for t in minutes(5)),
     "'e' holds only out-of-range values"),
    ("5,000 assets", "a.csv", "time,asset,a\n" + "".join(
        f"{t},A{i},1\n" for t in minutes(2) for i in range(5000)),
     "the asset column 'asset' names 5,000 assets in its first 20,480 rows, and a dataset "
     "holds at most 1,000"),
    ("1,100 assets, the last past the sample", "a.csv", "time,machine,a\n" + "".join(
        f"{t},M{i % 500 if i < 25_000 else 500 + i % 600},1\n"
        for i, t in enumerate(minutes(30_000))),
     "the asset column 'machine' names 1,100 assets, and a dataset holds at most 1,000"),
    ("times a nanosecond apart", "n.csv", "time,a\n2024-01-01 00:00:00.123456789,1\n"
     "2024-01-01 00:00:00.123456788,2\n2024-01-01 00:00:01,3\n",
     "'2024-01-01 00:00:00.123456789' on line 2 and '2024-01-01 00:00:00.123456788' on line 3, "
     "less than a microsecond apart"),
    ("parquet nanoseconds apart", "n.parquet", lambda p: _parquet_bytes(p, pd.DataFrame(
        {"time": pd.to_datetime([1704067200_000000100, 1704067200_000000200, 1704067201_0000]),
         "a": [1.0, 2.0, 3.0]})), "on row 1 and '2024-01-01 00:00:00.0000002' on row 2"),
    ("long tag nanoseconds apart", "l.csv", "time,tag,value\n2024-01-01 00:00:00.1234567,p,1\n"
     "2024-01-01 00:00:00.1234567,q,2\n2024-01-01 00:00:00.1234568,p,3\n",
     "on line 2 and '2024-01-01 00:00:00.1234568' on line 4"),
    ("headerless", "x.csv", "2024-01-01 00:00,1.5\n2024-01-01 00:01,2\n", "looks like data"),
    ("not utf-8 past the start", "x.csv", BIG.encode() + b"2024-03-01 00:00:00,M\xe9,1\n",
     "line 15002 is not valid UTF-8"),
    ("not utf-8 in a number past the start", "x.csv", BIG.encode() + b"2024-03-01,M1,\xe91\n",
     "line 15002 is not valid UTF-8"),
    ("broken parquet", "p.parquet", b"PAR1 this is not parquet at all", "Parquet"),
    ("parquet name, text inside", "p.parquet", "time,a\n", "not a valid Parquet file"),
    ("truncated parquet", "p.parquet", _truncated_parquet, "Parquet"),
    ("old xls", "o.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), ".xls workbook"),
    ("broken xlsx", "b.xlsx", b"PK\x03\x04 not really a zip", "not a readable .xlsx"),
    ("excel header only", "h.xlsx", lambda p: _excel_bytes(p, pd.DataFrame(columns=["t", "a"])),
     "no data rows"),
    ("excel, every sheet empty", "e.xlsx", lambda p: _excel_bytes(p, pd.DataFrame()),
     "every sheet is empty"),
    ("excel mixed column", "m.xlsx", lambda p: _excel_bytes(p, pd.DataFrame(
        {"time": pd.date_range("2024-01-01", periods=4, freq="h"), "flow": [1, 2, "x", 4]})),
     "column 'flow' holds numbers but row 4 has 'x'"),
]  # fmt: skip


def test_nanosecond_times_that_do_not_merge_load(workspace, tmp_path):
    """Nanosecond-typed times on whole seconds (pandas' default), the same nanosecond on two
    assets, and true repeats all load: only times merged by the microsecond are refused."""
    seconds = pd.date_range("2024-01-01", periods=4, freq="s")
    path = tmp_path / "s.parquet"
    pd.DataFrame({"time": seconds, "a": [1.0, 2, 3, 4]}).to_parquet(path)
    assert ingest_file(workspace, path).dataset.n_rows == 4
    two_assets = write(tmp_path, "a.csv", "time,asset,a\n2024-01-01 00:00:00.123456789,A,1\n"
                       "2024-01-01 00:00:00.123456700,B,2\n2024-01-01 00:00:01,A,3\n"
                       "2024-01-01 00:00:01,B,4\n")  # fmt: skip
    assert ingest_file(workspace, two_assets).dataset.n_rows == 4
    repeated = write(tmp_path, "r.csv", "time,a\n2024-01-01 00:00:00.5,1\n"
                     "2024-01-01 00:00:00.5,2\n2024-01-01 00:00:01,3\n")  # fmt: skip
    assert ingest_file(workspace, repeated).warnings == [
        "1 rows repeat a timestamp of the same asset."
    ]


@pytest.mark.parametrize("day", ["1500-01-01", "2300-01-01"])
def test_repeated_times_outside_the_nanosecond_range_load(workspace, tmp_path, day):
    """A repeated date before 1677 or after 2262 cannot hold nanoseconds: the merge check
    passes it instead of failing to convert it (a traceback on Load data)."""
    path = write(tmp_path, "far.csv", f"time,a\n{day},1\n{day},2\n2024-01-01,3\n")
    result = ingest_file(workspace, path)
    assert result.dataset.n_rows == 3
    assert "1 rows repeat a timestamp of the same asset." in result.warnings


def test_semicolons_in_column_names_do_not_make_a_comma_file_semicolon_separated(
    workspace, tmp_path
):
    """The header alone splits into more fields at ';' here; the rows only at ','."""
    header = 'time,"a""; DROP TABLE x; --",b\'); DELETE FROM datasets;--,semi;colon\n'
    path = write(tmp_path, "sql.csv", header + "".join(
        f"{t},{i},{2 * i},{3 * i}\n" for i, t in enumerate(minutes(5))))  # fmt: skip
    info = ingest_file(workspace, path).dataset
    assert info.sensors == ['a"; DROP TABLE x; --', "b'); DELETE FROM datasets;--", "semi;colon"]
    assert rows(workspace, info)[1][2:] == (1.0, 2.0, 3.0)


def test_a_folder_is_called_a_folder_not_a_missing_file(workspace, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    with pytest.raises(DataError, match=r"^exports is a folder: give the file of readings"):
        ingest_file(workspace, folder)
    assert store.list_datasets(workspace) == []


def test_a_csv_column_of_inf_is_a_sensor_out_of_range_not_text(workspace, tmp_path):
    """DuckDB's sniffer types a column of 'inf' as dates; it is a sensor with no usable value."""
    path = write(tmp_path, "inf.csv", "time,a,b\n" + "".join(
        f"{t},{i},{'-inf' if i % 2 else 'Infinity'}\n" for i, t in enumerate(minutes(5))))  # fmt: skip
    result = ingest_file(workspace, path)
    assert result.dataset.sensors == ["a", "b"]
    assert result.dataset.quality.ignored_columns == []
    assert "Sensors with no usable value (all out of range): b." in result.warnings


def _snapshot(con) -> tuple[list[int], list[str]]:
    datasets = [d.id for d in store.list_datasets(con)]
    tables = con.execute(
        "SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views() "
        "WHERE NOT internal"
    ).fetchall()
    return datasets, sorted(t[0] for t in tables if t[0].startswith(("readings_", "__vigil")))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """One workspace holding one dataset, shared by the bad-input cases (none may change it)."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    con = store.open_workspace(folder / "workspace.duckdb")
    ingest_file(con, write(folder, "existing.csv", "time,a\n" + GOOD))
    yield con, _snapshot(con)
    con.close()


@pytest.mark.parametrize(("case", "name", "content", "fragment"), BAD_INPUTS,
                         ids=[c[0] for c in BAD_INPUTS])  # fmt: skip
def test_bad_input_is_refused_and_workspace_unchanged(
    seeded, tmp_path, case, name, content, fragment
):
    workspace, before = seeded
    if callable(content):
        content = content(tmp_path)
    path = write(tmp_path, name, content)
    with pytest.raises(DataError) as caught:
        ingest_file(workspace, path)
    message = str(caught.value)
    assert fragment in message
    assert name in message  # every message names the file
    assert _snapshot(workspace) == before
    assert len(before[1]) == 1  # the earlier dataset's table, nothing stray


def test_failed_ingest_leaves_connection_usable(workspace, tmp_path):
    with pytest.raises(DataError):
        ingest_file(workspace, write(tmp_path, "bad.csv", "time,a,b\n2024-01-01,1\n"))
    info = ingest_file(workspace, write(tmp_path, "good.csv", "time,a\n" + GOOD)).dataset
    assert info.n_rows == 3


# --- command line ------------------------------------------------------------------------------


def _cli(
    *args: str, env_extra: dict[str, str] | None = None, **kwargs
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "core", *args], capture_output=True, text=True, cwd=ROOT,
        env=env, timeout=60, **kwargs,
    )  # fmt: skip


def test_cli_ingest_good_file(tmp_path):
    path = write(tmp_path, "plant.csv", QUALITY_CSV)
    done = _cli("ingest", str(path), "--db", str(tmp_path / "ws.duckdb"))
    assert done.returncode == 0, done.stderr
    assert "Loaded 'plant': 7 rows, 3 sensors, 1 asset(s)" in done.stdout
    assert "warning: Ignored non-numeric columns: status." in done.stdout


@pytest.mark.parametrize(
    ("content", "fragment"),
    [(b"", "is empty"), ("time,a,b\n2024-01-01 00:00,1,2\n2024-01-01 00:01,1\n", "line 3")],
)
def test_cli_bad_file_is_one_line_and_exit_2(tmp_path, content, fragment):
    path = write(tmp_path, "bad.csv", content)
    done = _cli("ingest", str(path), "--db", str(tmp_path / "ws.duckdb"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bad.csv")
    assert fragment in lines[0]


@pytest.mark.parametrize(
    ("name", "cells", "stored"),
    [
        ("naive", ["2024-07-01 12:00:00", "2024-07-01 12:01:00"], ["2024-07-01 12:00:00"]),
        ("zoned", ["2024-07-01 14:00:00+02:00", "2024-07-01 14:01:00+02:00"],
         ["2024-07-01 12:00:00"]),
        ("mixed", ["2024-07-01 12:00:00", "2024-07-01 14:01:00+02:00"], None),
    ],
)  # fmt: skip
def test_cli_stores_the_same_times_whatever_the_machine_time_zone(tmp_path, name, cells, stored):
    """Naive times as written, zoned ones in UTC, a mix refused: never the server's zone."""
    path = write(tmp_path, f"{name}.csv", "time,a\n" + "".join(f"{c},{i}\n" for i, c in
                                                               enumerate(cells)))  # fmt: skip
    outcomes = []
    for tz in ("UTC", "America/New_York", "Asia/Tokyo"):
        db = tmp_path / f"{name}-{tz.replace('/', '_')}.duckdb"
        done = _cli("ingest", str(path), "--db", str(db), env_extra={"TZ": tz})
        con = store.open_workspace(db)
        try:
            times = [str(r[0]) for d in store.list_datasets(con) for r in rows(con, d)]
        finally:
            con.close()
        outcomes.append((done.returncode, done.stderr, times))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    returncode, stderr, times = outcomes[0]
    if stored is None:
        assert returncode == 2 and "line 3 with a time zone" in stderr and times == []
    else:
        assert returncode == 0, stderr
        assert times[:1] == stored


def test_cli_workspace_locked_by_another_process(tmp_path):
    db = tmp_path / "ws.duckdb"
    holder_code = (  # any process holding the file read-write (duckdb alone starts fastest)
        "import sys, duckdb; con = duckdb.connect(sys.argv[1]); "
        "print('ready', flush=True); sys.stdin.readline()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(db)], cwd=ROOT, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        done = _cli("ingest", str(write(tmp_path, "a.csv", "time,a\n" + GOOD)), "--db", str(db))
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "held by another Vigil process" in lines[0] and str(db) in lines[0]
    assert f"(PID {holder.pid}," in lines[0], "the holder, as DuckDB names it"
