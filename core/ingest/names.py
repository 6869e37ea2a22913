"""What a column's name says about its role: time, asset, tag, value, units.

Shared by the column planner (roles.py) and the workbook reader (excel.py), so neither imports the
other.
"""

from __future__ import annotations

import re

TIME_WORDS = {"time", "timestamp", "datetime", "date", "ts", "epoch", "unix", "zeit", "utc"}
ASSET_WORDS = {"asset", "machine", "equipment", "unit", "device", "pump", "motor", "id",
               "compressor", "turbine", "engine", "station"}  # fmt: skip
TAG_WORDS = {"tag", "tagname", "sensor", "variable", "signal", "parameter", "channel", "point",
             "metric", "attribute"}  # fmt: skip
VALUE_WORDS = {"value", "val", "reading", "measurement", "pv"}
LABEL_WORDS = {"anomaly", "anomalies", "label", "labels", "fault", "faults", "faulty", "target",
               "changepoint", "outlier", "outliers", "attack", "failure", "failures", "abnormal",
               "ground", "truth", "gt"}  # fmt: skip
"""Words of a column holding ground truth (SKAB's ``anomaly`` and ``changepoint``, ``is_anomaly``,
``fault``...): when such a column holds only 0 and 1 it is the answer, not a sensor."""
UNIT_WORDS = {"unit", "units", "uom", "eng"}
"""In a long file a column named only like this holds measurement units, not asset ids."""


def words(name: str) -> set[str]:
    """The lower-case words of a column name (``Pump_ID`` -> {"pump", "id"})."""
    return set(re.split(r"[^0-9a-z]+", name.lower())) - {""}


def is_time_name(name: str) -> bool:
    """Named like a time column."""
    return bool(words(name) & TIME_WORDS)


def is_asset_name(name: str) -> bool:
    """Named like an asset id column (and not like a tag column)."""
    return bool(words(name) & ASSET_WORDS) and not words(name) & TAG_WORDS


def is_tag_name(name: str) -> bool:
    """Named like the tag column of a long historian export."""
    return bool(words(name) & (TAG_WORDS | {"name"})) and not is_asset_name(name)


def is_label_name(name: str) -> bool:
    """Named like a ground-truth column (``anomaly``, ``is_anomaly``, ``fault_label``...)."""
    return bool(words(name) & LABEL_WORDS)
