"""Labels: analysts' verdicts as an append-only history, the review queue, look-alike windows.

Also label files (import / export) and what labels say about rows.
"""

from core.labels.files import (
    export_labels,
    import_labels,
)
from core.labels.history import (
    STATUS_TEXT,
    STATUSES,
    VERDICTS,
    LabelDraft,
    audit_log,
    create_labels,
    current_labels,
    delete_labels,
    fault_kinds,
    get_label,
    label_events,
    set_fault_kinds,
    undo_last,
    update_labels,
)
from core.labels.points import (
    labels_needed,
)
from core.labels.similar import (
    find_similar,
    label_matches,
)
from core.labels.triage import (
    LabelView,
    QueueFilter,
    event_changed,
    event_sensors,
    event_snapshot,
    event_title,
    event_view,
    filter_queue,
    label_view,
    labels_table,
    queue_event,
    queue_position,
    queue_table,
    review_progress,
    review_queue,
    selected_range,
    set_event_extent,
)

__all__ = [
    "LabelDraft",
    "LabelView",
    "QueueFilter",
    "STATUSES",
    "STATUS_TEXT",
    "VERDICTS",
    "audit_log",
    "create_labels",
    "current_labels",
    "delete_labels",
    "event_changed",
    "event_sensors",
    "event_snapshot",
    "event_title",
    "event_view",
    "export_labels",
    "fault_kinds",
    "filter_queue",
    "find_similar",
    "get_label",
    "import_labels",
    "label_events",
    "label_matches",
    "label_view",
    "labels_needed",
    "labels_table",
    "queue_event",
    "queue_position",
    "queue_table",
    "review_progress",
    "review_queue",
    "selected_range",
    "set_event_extent",
    "set_fault_kinds",
    "undo_last",
    "update_labels",
]
