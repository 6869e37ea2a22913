"""Learn: retrain with labels into model versions, tune thresholds, promote, watch drift.

Also what to label next (active learning) and model files (skops, trust-checked).
"""

from core.learn.active import (
    suggest,
)
from core.learn.batches import BatchResult, append_batch, describe_batch
from core.learn.drift import (
    PSI_DRIFT,
    DriftReport,
    drift_report,
)
from core.learn.model_files import (
    dump_model,
    load_model,
)
from core.learn.retraining import (
    RetrainConfig,
    label_snapshot,
    retrain,
    retrain_refusal,
    retrain_summary,
    save_threshold,
    version_preview,
)
from core.learn.thresholds import (
    THRESHOLD_MULTIPLIERS,
    ThresholdPreview,
    tune_threshold,
)
from core.learn.versions import (
    compare_versions,
    export_version,
    list_versions,
    load_version,
    promote,
    run_in_use,
)

__all__ = [
    "BatchResult",
    "append_batch",
    "describe_batch",
    "DriftReport",
    "PSI_DRIFT",
    "RetrainConfig",
    "THRESHOLD_MULTIPLIERS",
    "ThresholdPreview",
    "compare_versions",
    "drift_report",
    "dump_model",
    "export_version",
    "label_snapshot",
    "list_versions",
    "load_model",
    "load_version",
    "promote",
    "retrain",
    "retrain_refusal",
    "retrain_summary",
    "run_in_use",
    "save_threshold",
    "suggest",
    "tune_threshold",
    "version_preview",
]
