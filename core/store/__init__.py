"""The store: every SQL statement Vigil runs lives in this package, nowhere else.

One function per query, an explicit connection (or cursor) argument, bound parameters, and
identifiers from users' files quoted with `quote_ident`.
"""

from core.store.connection import (
    default_workspace_path,
    open_workspace,
    quote_ident,
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
from core.store.migrations import migrate, schema_version

__all__ = [
    "add_dataset_from_frame",
    "asset_row_counts",
    "default_workspace_path",
    "delete_dataset",
    "get_dataset",
    "insert_dataset",
    "list_datasets",
    "migrate",
    "next_dataset_id",
    "open_workspace",
    "quote_ident",
    "read_ground_truth",
    "read_readings",
    "readings_table_name",
    "schema_version",
    "sensor_correlation",
    "transaction",
    "unique_dataset_name",
]
