"""The store: every SQL statement Vigil runs lives in this package, nowhere else.

One function per query, an explicit connection (or cursor) argument, bound parameters, and
identifiers from users' files quoted with `quote_ident`.
"""

from core.store.connection import (
    default_workspace_path,
    open_workspace,
    quote_ident,
    table_names,
    transaction,
)
from core.store.datasets import (
    add_dataset_from_frame,
    asset_row_counts,
    delete_dataset,
    get_dataset,
    insert_dataset,
    list_datasets,
    next_dataset_id,
    read_ground_truth,
    read_readings,
    readings_table_name,
    sensor_correlation,
    unique_dataset_name,
)
from core.store.explanations import (
    count_readings_before,
    delete_explanations,
    list_explanations,
    load_explanation,
    save_explanation,
)
from core.store.labels import (
    read_fault_kinds,
    read_label_history,
    read_labels,
    read_modes,
    write_with_retry,
)
from core.store.migrations import migrate, schema_version
from core.store.runs import (
    count_run_scores,
    delete_run,
    delete_runs_of_dataset,
    get_run,
    get_runs,
    list_runs,
    next_run_id,
    read_events,
    read_run_scores,
    save_run,
)

__all__ = [
    "add_dataset_from_frame",
    "asset_row_counts",
    "count_readings_before",
    "count_run_scores",
    "default_workspace_path",
    "delete_dataset",
    "delete_explanations",
    "delete_run",
    "delete_runs_of_dataset",
    "get_dataset",
    "get_run",
    "get_runs",
    "insert_dataset",
    "list_datasets",
    "list_explanations",
    "list_runs",
    "load_explanation",
    "migrate",
    "next_dataset_id",
    "next_run_id",
    "open_workspace",
    "quote_ident",
    "read_events",
    "read_fault_kinds",
    "read_ground_truth",
    "read_label_history",
    "read_labels",
    "read_modes",
    "read_readings",
    "read_run_scores",
    "readings_table_name",
    "save_explanation",
    "save_run",
    "schema_version",
    "sensor_correlation",
    "table_names",
    "transaction",
    "unique_dataset_name",
    "write_with_retry",
]
