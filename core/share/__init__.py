"""Share: what stakeholders see: the overview of a dataset, exports and the offline report.

Built from runs, labels and model versions; never writes to the workspace.
"""

from core.share.overview import (
    dataset_overview,
    events_csv,
    events_export,
    model_story,
)
from core.share.report import (
    html_report,
)

__all__ = [
    "dataset_overview",
    "events_csv",
    "events_export",
    "html_report",
    "model_story",
]
