"""What the Detect page's run form offers and how it words a run: detectors with their parameters'
widget ranges (derived from the limits the engine declares), training-window choices, the
threshold widget, and a run's caption and headline metrics."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.detect.detectors.registry import DETECTORS, make_detector
from core.detect.model import THRESHOLD_QUANTILE
from core.detect.runs import RunSummary
from core.types import DatasetInfo
from core.wording import counted

TRAINING_LABELS = {
    "first_fraction": "First share of each asset",
    "first_rows": "First rows of each asset",
    "until": "Everything until a time",
    "dataset": "Another (reference) dataset",
}


def default_until(info: DatasetInfo, fraction: float = 0.3) -> datetime | None:
    """A cut-off for an `until` training window: `fraction` of the dataset's time span."""
    if info.time_start is None or info.time_end is None:
        return None
    return info.time_start + (info.time_end - info.time_start) * fraction


def reference_options(datasets: Iterable[DatasetInfo], info: DatasetInfo) -> dict[int, str]:
    """Datasets a `dataset` training window can take as reference ({id: name}): all but `info`."""
    return {d.id: d.name for d in datasets if d.id != info.id}


@dataclass(frozen=True)
class ParamOption:
    """One detector parameter as a widget needs it, derived from the registry's declared limits."""

    name: str
    kind: str  # "int", "float" or "choice"
    default: Any
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] | None = None
    help: str = ""
    label: str = ""
    placeholder: str | None = None

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.name)

    def number_args(self) -> dict[str, Any]:
        """A number widget's value, step, format and limits cast to the parameter's type (an empty
        default stays empty, an absent limit is left out)."""
        cast = int if self.kind == "int" else float
        args: dict[str, Any] = {
            "value": None if self.default is None else cast(self.default),
            "step": cast(self.step),
            "format": None if self.kind == "int" else "%g",
        }
        for key, bound in (("min_value", self.low), ("max_value", self.high)):
            if bound is not None:
                args[key] = cast(bound)
        return args


@dataclass(frozen=True)
class DetectorOption:
    name: str
    label: str
    description: str
    params: list[ParamOption]


def _param_option(param: Any, default: Any) -> ParamOption:
    """Widget range from a `Param`: open bounds move one step inwards."""
    if param.choices is not None:
        return ParamOption(param.name, "choice", default, choices=param.choices, help=param.help)
    if param.kind is int:
        step: float = 1
    else:
        step = 10 ** math.floor(math.log10(abs(default))) / 10 if default else 0.01
    low = None if param.low is None else param.low + (step if param.low_open else 0)
    high = None if param.high is None else param.high - (step if param.high_open else 0)
    kind = "int" if param.kind is int else "float"
    return ParamOption(param.name, kind, default, low, high, step, help=param.help)


def threshold_option() -> ParamOption:
    """The threshold quantile widget: the engine's declared limits; empty means calibrated."""
    step = 0.001
    return ParamOption(
        "threshold_quantile",
        "float",
        None,
        THRESHOLD_QUANTILE.low + (step if THRESHOLD_QUANTILE.low_open else 0),
        THRESHOLD_QUANTILE.high - (step if THRESHOLD_QUANTILE.high_open else 0),
        step,
        help="Alarm line = this quantile of the training scores. Empty: calibrated quantile "
        "with a safety margin (recommended).",
        label="Threshold quantile",
        placeholder="calibrated (recommended)",
    )


def detector_options() -> list[DetectorOption]:
    """Every registered detector with its parameters' defaults and widget ranges."""
    options = []
    for name, spec in DETECTORS.items():
        defaults = make_detector(name).get_params()
        params = [_param_option(p, defaults.get(key)) for key, p in spec.params.items()]
        options.append(DetectorOption(name, spec.label, spec.description, params))
    return options


HEADLINE_METRICS = (
    ("F1", "f1", "{:.2f}"),
    ("Precision", "precision", "{:.2f}"),
    ("Recall", "recall", "{:.2f}"),
    ("Faults found", "event_recall", "{:.0%}"),
    ("Alarms on a fault", "event_precision", "{:.0%}"),
    ("Median delay", "median_delay_s", "{:.0f} s"),
)
METRIC_HELP = {
    "F1": "Point F1 against the ground truth, on the rows after the training window.",
    "Precision": "Share of flagged rows that lie inside a fault.",
    "Recall": "Share of fault rows that are flagged.",
    "Faults found": "Faults after the training window with at least one flagged row (faults "
    "inside the training window are not graded).",
    "Alarms on a fault": "Stretches of consecutive flagged rows that overlap a fault. Events in "
    "the table merge stretches a few samples apart, so they are fewer.",
    "Median delay": "From a found fault's start to its first flagged row.",
}


def headline_metrics(run: RunSummary) -> list[tuple[str, str]]:
    """(label, formatted value) of the metrics an analyst reads first, counts where a share
    would hide them; empty without ground truth. `METRIC_HELP` says what each one counts."""
    if not run.evaluation:
        return []
    e = run.evaluation
    counts = {
        "event_recall": (e.get("n_events_found"), e.get("n_events")),
        "event_precision": (
            round(e.get("event_precision", 0) * e.get("n_predicted_events", 0)),
            e.get("n_predicted_events"),
        ),
    }
    items = []
    for label, key, fmt in HEADLINE_METRICS:
        value = e.get(key)
        text = "n/a" if value is None else fmt.format(value)
        part, whole = counts.get(key, (None, None))
        if value is not None and whole:
            text = f"{part}/{whole}"  # the counts say more than a share, and fit the column
        items.append((label, text))
    return items


def describe_run(run: RunSummary) -> str:
    """One line of how a run was made, for a caption under its picker."""
    params = ", ".join(f"{k}={v}" for k, v in run.params.items()) or "default parameters"
    quantile = run.threshold_quantile or "calibrated"
    return (
        f"{run.detector_used or run.detector} · {params} · trained on {run.training.describe()} · "
        f"threshold {quantile} · {run.n_scores:,} points scored in {run.duration_s:.1f} s · "
        f"scikit-learn {run.versions.get('scikit-learn', '?')}, vigil {run.versions.get('vigil', '?')}"
    )


def run_outcome(run: RunSummary | None) -> str:
    """The status line a finished run attempt ends with (None: the run failed)."""
    return f"Run #{run.id}: {counted(run.n_events, 'event')}" if run else "The run failed"
