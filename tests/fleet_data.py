"""Parquet fleets for the saved-model scoring tests: one plant written per asset, per day, whole."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.detect.model import AnomalyModel
from core.synth.demo import generate_plant

TRAIN_ROWS = 1500


def plant_frame(rows: int = 4000, assets: int = 3, seed: int = 5) -> pd.DataFrame:
    """A demo plant's readings with the time column named ``timestamp``."""
    frame = generate_plant(seed=seed, n_assets=assets, rows_per_asset=rows).readings
    return frame.rename(columns={"ts": "timestamp"})


def fitted(frame: pd.DataFrame) -> AnomalyModel:
    train = frame.groupby("asset").head(TRAIN_ROWS).rename(columns={"timestamp": "ts"})
    return AnomalyModel("pca").fit(train)


def write_layouts(frame: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """The same readings as one file, one file per day (all assets) and one per asset (no asset
    column: the file name says it)."""
    (folder / "days").mkdir(parents=True)
    (folder / "assets").mkdir()
    frame.to_parquet(folder / "all.parquet", index=False)
    for k, (_, day) in enumerate(frame.groupby(frame["timestamp"].dt.floor("D"))):
        day.to_parquet(folder / "days" / f"day{k}.parquet", index=False)
    for asset, rows in frame.groupby("asset"):
        rows.drop(columns="asset").to_parquet(folder / "assets" / f"{asset}.parquet", index=False)
    return {"all": folder / "all.parquet", "days": folder / "days", "assets": folder / "assets"}


def read_folder(folder: Path) -> dict[str, pd.DataFrame]:
    return {p.name: pd.read_parquet(p) for p in sorted(Path(folder).glob("*.parquet"))}


def by_time(frames: dict[str, pd.DataFrame] | pd.DataFrame) -> pd.DataFrame:
    """Scores of several output files as one table ordered by asset and time."""
    whole = pd.concat(frames.values()) if isinstance(frames, dict) else frames
    return whole.sort_values(["asset", "timestamp"]).reset_index(drop=True)
