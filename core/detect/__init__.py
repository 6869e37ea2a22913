"""Detect: features per asset, the detector registry, fitted models and their scores, ranked events.

Runs store scores and events; operating-mode marks keep stretches out of training and alarms.
"""

from core.detect.coverage import AssetCoverage, coverage_warning, run_coverage
from core.detect.detectors.registry import (
    DETECTORS,
    BaseDetector,
    DetectorSpec,
    make_detector,
)
from core.detect.events import (
    extract_events,
)
from core.detect.features import (
    FeatureConfig,
)
from core.detect.model import (
    AnomalyModel,
    ScoreResult,
)
from core.detect.modes import (
    MODES,
    add_mode,
    list_modes,
    modes_table,
    remove_mode,
)
from core.detect.run_chart import (
    run_view,
)
from core.detect.run_options import (
    METRIC_HELP,
    TRAINING_LABELS,
    ParamOption,
    default_until,
    describe_run,
    detector_options,
    headline_metrics,
    reference_options,
    run_outcome,
    threshold_option,
)
from core.detect.runs import (
    MIN_TRAINING_ROWS,
    RunConfig,
    RunSummary,
    TrainingWindow,
    compare_runs,
    delete_run,
    execute_run,
    get_run,
    list_runs,
    run_events,
    run_scores,
)
from core.detect.scoring import (
    score_files,
)

__all__ = [
    "AnomalyModel",
    "AssetCoverage",
    "coverage_warning",
    "run_coverage",
    "BaseDetector",
    "DETECTORS",
    "DetectorSpec",
    "FeatureConfig",
    "METRIC_HELP",
    "MIN_TRAINING_ROWS",
    "MODES",
    "ParamOption",
    "RunConfig",
    "RunSummary",
    "ScoreResult",
    "TRAINING_LABELS",
    "TrainingWindow",
    "add_mode",
    "extract_events",
    "compare_runs",
    "default_until",
    "delete_run",
    "describe_run",
    "detector_options",
    "execute_run",
    "get_run",
    "headline_metrics",
    "list_modes",
    "list_runs",
    "make_detector",
    "modes_table",
    "reference_options",
    "remove_mode",
    "run_events",
    "run_outcome",
    "run_scores",
    "run_view",
    "score_files",
    "threshold_option",
]
