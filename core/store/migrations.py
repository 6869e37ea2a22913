"""Numbered schema migrations, recorded in a table and never edited once applied.

Append a new `mNNN_*` function and its entry in `MIGRATIONS`; never change an applied one.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb


def m001_datasets(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE SEQUENCE IF NOT EXISTS dataset_id_seq START 1")
    con.execute(
        """
        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY DEFAULT nextval('dataset_id_seq'),
            name VARCHAR NOT NULL UNIQUE,
            table_name VARCHAR NOT NULL UNIQUE,
            source_file VARCHAR NOT NULL,
            sha256 VARCHAR NOT NULL,
            layout VARCHAR NOT NULL,
            n_rows BIGINT NOT NULL,
            sensors VARCHAR[] NOT NULL,
            assets VARCHAR[] NOT NULL,
            time_start TIMESTAMP,
            time_end TIMESTAMP,
            interval_seconds DOUBLE,
            loaded_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            quality JSON NOT NULL
        )
        """
    )
    con.execute(
        """
        CREATE TABLE ground_truth (
            dataset_id INTEGER NOT NULL,
            asset VARCHAR NOT NULL,
            start_ts TIMESTAMP NOT NULL,
            end_ts TIMESTAMP NOT NULL,
            kind VARCHAR NOT NULL,
            sensors VARCHAR[] NOT NULL,
            magnitude DOUBLE,
            description VARCHAR
        )
        """
    )


def m002_runs(con: duckdb.DuckDBPyConnection) -> None:
    """Detection runs, their per-timestamp scores and their events."""
    con.execute("CREATE SEQUENCE IF NOT EXISTS run_id_seq START 1")
    con.execute(
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY DEFAULT nextval('run_id_seq'),
            dataset_id INTEGER NOT NULL,
            assets VARCHAR[] NOT NULL,
            detector VARCHAR NOT NULL,
            detector_used VARCHAR,
            params JSON NOT NULL,
            training JSON NOT NULL,
            threshold_quantile DOUBLE,
            thresholds JSON,
            status VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            duration_s DOUBLE,
            n_scores BIGINT,
            n_events INTEGER,
            versions JSON,
            evaluation JSON
        )
        """
    )
    con.execute(
        """
        CREATE TABLE run_scores (
            run_id INTEGER NOT NULL,
            asset VARCHAR NOT NULL,
            ts TIMESTAMP NOT NULL,
            score DOUBLE,
            is_anomaly BOOLEAN NOT NULL,
            is_off BOOLEAN NOT NULL
        )
        """
    )
    con.execute(
        """
        CREATE TABLE events (
            run_id INTEGER NOT NULL,
            event_id INTEGER NOT NULL,
            asset VARCHAR NOT NULL,
            start_ts TIMESTAMP NOT NULL,
            end_ts TIMESTAMP NOT NULL,
            peak_ts TIMESTAMP,
            peak_score DOUBLE,
            duration_s DOUBLE,
            n_points INTEGER,
            severity DOUBLE,
            top_sensors VARCHAR[],
            sensor_scores JSON,
            PRIMARY KEY (run_id, event_id)
        )
        """
    )


def m003_labels(con: duckdb.DuckDBPyConnection) -> None:
    """Labels as an append-only history, the fault-kind taxonomy and operating-mode marks."""
    con.execute("CREATE SEQUENCE IF NOT EXISTS label_id_seq START 1")
    con.execute("CREATE SEQUENCE IF NOT EXISTS label_change_seq START 1")
    con.execute("CREATE SEQUENCE IF NOT EXISTS label_history_seq START 1")
    con.execute(
        """
        CREATE TABLE label_history (
            seq BIGINT PRIMARY KEY DEFAULT nextval('label_history_seq'),
            change_id BIGINT NOT NULL,
            label_id BIGINT NOT NULL,
            dataset_id INTEGER NOT NULL,
            action VARCHAR NOT NULL,
            asset VARCHAR NOT NULL,
            start_ts TIMESTAMP NOT NULL,
            end_ts TIMESTAMP NOT NULL,
            verdict VARCHAR NOT NULL,
            kind VARCHAR,
            sensors VARCHAR[] NOT NULL,
            comment VARCHAR NOT NULL DEFAULT '',
            source VARCHAR NOT NULL,
            run_id INTEGER,
            event_id INTEGER,
            deleted BOOLEAN NOT NULL DEFAULT false,
            analyst VARCHAR NOT NULL,
            changed_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            undoes BIGINT
        )
        """
    )
    con.execute("CREATE TABLE fault_kinds (name VARCHAR PRIMARY KEY, position INTEGER NOT NULL)")
    defaults = [
        "spike",
        "drift",
        "level shift",
        "stuck sensor",
        "noise",
        "coupling break",
        "process upset",
        "other",
    ]
    con.executemany(
        "INSERT INTO fault_kinds VALUES (?, ?)", [[k, i] for i, k in enumerate(defaults)]
    )
    con.execute("CREATE SEQUENCE IF NOT EXISTS mode_id_seq START 1")
    con.execute(
        """
        CREATE TABLE operating_modes (
            id BIGINT PRIMARY KEY DEFAULT nextval('mode_id_seq'),
            dataset_id INTEGER NOT NULL,
            asset VARCHAR NOT NULL,
            start_ts TIMESTAMP NOT NULL,
            end_ts TIMESTAMP NOT NULL,
            mode VARCHAR NOT NULL,
            comment VARCHAR NOT NULL DEFAULT '',
            analyst VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            deleted_at TIMESTAMP,
            deleted_by VARCHAR
        )
        """
    )


def m004_explanations(con: duckdb.DuckDBPyConnection) -> None:
    """Cached explanations: one row per run, scope (an event or the whole run) and method."""
    con.execute(
        """
        CREATE TABLE explanations (
            run_id INTEGER NOT NULL,
            scope VARCHAR NOT NULL,
            method VARCHAR NOT NULL,
            version INTEGER NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            elapsed_s DOUBLE,
            meta JSON NOT NULL,
            payload BLOB NOT NULL,
            PRIMARY KEY (run_id, scope, method)
        )
        """
    )


def m005_models(con: duckdb.DuckDBPyConnection) -> None:
    """Model versions (skops bytes in a BLOB, never pickle) and their append-only promotions."""
    con.execute("CREATE SEQUENCE IF NOT EXISTS model_version_seq START 1")
    con.execute(
        """
        CREATE TABLE model_versions (
            id INTEGER PRIMARY KEY DEFAULT nextval('model_version_seq'),
            dataset_id INTEGER NOT NULL,
            parent_id INTEGER,
            origin VARCHAR NOT NULL,
            detector VARCHAR NOT NULL,
            params JSON NOT NULL,
            training JSON NOT NULL,
            features JSON NOT NULL,
            sensors VARCHAR[] NOT NULL,
            assets VARCHAR[] NOT NULL,
            threshold DOUBLE NOT NULL,
            objective VARCHAR NOT NULL,
            budget_per_day DOUBLE,
            semi_supervised BOOLEAN NOT NULL,
            label_ids BIGINT[] NOT NULL,
            label_seqs BIGINT[] NOT NULL,
            label_watermark BIGINT NOT NULL,
            metrics JSON NOT NULL,
            versions JSON NOT NULL,
            run_id INTEGER,
            notes VARCHAR NOT NULL DEFAULT '',
            created_by VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            model_sha256 VARCHAR NOT NULL,
            model_bytes BIGINT NOT NULL,
            model BLOB NOT NULL
        )
        """
    )
    con.execute(
        """
        CREATE TABLE model_promotions (
            dataset_id INTEGER NOT NULL,
            version_id INTEGER NOT NULL,
            promoted_by VARCHAR NOT NULL,
            promoted_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp(),
            comment VARCHAR NOT NULL DEFAULT ''
        )
        """
    )


def m006_label_heads(con: duckdb.DuckDBPyConnection) -> None:
    """Each label's newest history seq: the row two sessions changing one label collide on."""
    con.execute("CREATE TABLE label_heads (label_id BIGINT PRIMARY KEY, seq BIGINT NOT NULL)")
    con.execute(
        "INSERT INTO label_heads SELECT label_id, max(seq) FROM label_history GROUP BY label_id"
    )


def m007_run_models(con: duckdb.DuckDBPyConnection) -> None:
    """Each run's fitted model as skops bytes, apart from `runs` so listing runs never reads it."""
    con.execute(
        "CREATE TABLE run_models (run_id INTEGER PRIMARY KEY, model_sha256 VARCHAR NOT NULL, "
        "model_bytes BIGINT NOT NULL, model BLOB NOT NULL)"
    )


def m008_new_mode(con: duckdb.DuckDBPyConnection) -> None:
    """Per score, whether the row lay in an operating mode training never saw (its alarm line is
    higher there): charts shade it and line previews keep it. Runs stored before say no."""
    con.execute("ALTER TABLE run_scores ADD COLUMN new_mode BOOLEAN DEFAULT false")


def m009_lift(con: duckdb.DuckDBPyConnection) -> None:
    """Per score, what it was divided by for the lasting level of the scores before it
    (`windows.lasting_score_lift`): explanations rescale by it. Runs stored before: 1."""
    con.execute("ALTER TABLE run_scores ADD COLUMN lift DOUBLE DEFAULT 1.0")


# --- slots for later migrations (keep the order; append only) ---

MIGRATIONS: list[tuple[int, str, Callable[[duckdb.DuckDBPyConnection], None]]] = [
    (1, "datasets", m001_datasets),
    (2, "runs", m002_runs),
    (3, "labels", m003_labels),
    (4, "explanations", m004_explanations),
    (5, "models", m005_models),
    (6, "label_heads", m006_label_heads),
    (7, "run_models", m007_run_models),
    (8, "new_mode", m008_new_mode),
    (9, "lift", m009_lift),
]


def unknown_schema(con: duckdb.DuckDBPyConnection) -> str | None:
    """Why this DuckDB file must not be migrated, or None: it was made by a newer Vigil (its
    schema has migrations this one lacks), or it is another program's database (tables, no
    migrations table). Migrating either would write into a file this Vigil does not know.
    A data file (CSV, Parquet) is no database at all: DuckDB opens it in memory as a view."""
    file = "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    if con.execute(file).fetchone()[0] is None:
        return (
            "is a data file, not a Vigil workspace (DuckDB file): nothing written to it would "
            "be kept"
        )
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "schema_migrations" not in tables:
        if not tables:
            return None
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        return f"is a DuckDB database of another program (tables {shown}), not a Vigil workspace"
    newest = schema_version(con)
    known = MIGRATIONS[-1][0]
    if newest > known:
        return (
            f"was made by a newer Vigil (workspace schema {newest}; this Vigil knows up to "
            f"{known}): upgrade Vigil to open it"
        )
    return None


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every migration not yet recorded, each in its own transaction; return those applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, step in MIGRATIONS:
        if version in done:
            continue
        con.begin()
        try:
            step(con)
            con.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name]
            )
        except BaseException:
            con.rollback()
            raise
        con.commit()
        applied.append(version)
    return applied


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """Highest applied migration number (0 for a blank database)."""
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0])
