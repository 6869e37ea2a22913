"""Share: what stakeholders see: the overview of a dataset, exports and the offline report.

Built from runs, labels, explanations and model versions; writes nothing to the workspace but
the explanation cache (explaining the report's events, as opening them on Explain does).
"""

from core.share.files import report_bytes, report_files, report_format, write_report
from core.share.overview import (
    dataset_overview,
    events_csv,
    events_export,
    model_story,
)
from core.share.report import Report, build_report, html_report

__all__ = [
    "Report",
    "build_report",
    "dataset_overview",
    "events_csv",
    "events_export",
    "html_report",
    "model_story",
    "report_bytes",
    "report_files",
    "report_format",
    "write_report",
]
