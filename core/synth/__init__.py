"""Synth: synthetic plants and faults, where real labelled failures are rare.

The demo plant, textbook faults, test copies of a dataset with injected faults, faults
transplanted from confirmed events, and synthetic twins of a plant with their fidelity and
privacy report.
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
from core.synth.fidelity import (
    FidelityReport,
    fidelity_report,
)
from core.synth.transplant import (
    confirmed_kinds,
    transplant_confirmed,
)
from core.synth.twin import (
    make_twin,
)

__all__ = [
    "FAULT_KINDS",
    "FidelityReport",
    "confirmed_kinds",
    "MAX_FAULTS_PER_ASSET",
    "fidelity_report",
    "inject_faults",
    "inject_into_dataset",
    "load_demo",
    "make_twin",
    "transplant_confirmed",
]
