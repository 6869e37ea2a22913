"""Synth: synthetic plants and faults, where real labelled failures are rare.

The demo plant, textbook faults, and test copies of a dataset with injected faults.
"""

from core.synth.demo import (
    load_demo,
)
from core.synth.fault_copy import (
    MAX_FAULTS_PER_ASSET,
    inject_into_dataset,
)
from core.synth.faults import (
    FAULT_KINDS,
    inject_faults,
)

__all__ = [
    "FAULT_KINDS",
    "MAX_FAULTS_PER_ASSET",
    "inject_faults",
    "inject_into_dataset",
    "load_demo",
]
