"""The detector registry: one interface (fit / score, higher = more anomalous), one file a family.

`make_detector(name, **params)` validates parameters against their declared limits.
"""

from core.detect.detectors.base import CONTAMINATION, BaseDetector, Param, check_params
from core.detect.detectors.registry import (
    AUTO_MEMBERS,
    DETECTORS,
    DetectorSpec,
    make_detector,
)

__all__ = [
    "AUTO_MEMBERS",
    "CONTAMINATION",
    "DETECTORS",
    "BaseDetector",
    "DetectorSpec",
    "Param",
    "check_params",
    "make_detector",
]
