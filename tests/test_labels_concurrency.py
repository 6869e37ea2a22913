"""Several sessions labelling one dataset lose nothing: threads on cursors, a second process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pytest

from core import store
from core.errors import WorkspaceError
from core.labels import history as labels
from core.labels.history import LabelDraft
from core.store import labels as label_store
from tests.label_data import at, make_dataset

ROOT = Path(__file__).resolve().parents[1]
N_THREADS = 5
N_WRITES = 10


def test_threads_with_their_own_cursors_all_land(tmp_path):
    """The app's way: one connection, one `con.cursor()` per session thread."""
    con = store.open_workspace(tmp_path / "w.duckdb")
    info = make_dataset(con, n=200)
    [shared] = labels.create_labels(
        con, info.id, [LabelDraft("p1", at(0), at(5), "unsure")], "setup"
    )
    errors: list[BaseException] = []
    start = threading.Barrier(N_THREADS)

    def session(n: int) -> None:
        cur = con.cursor()
        try:
            start.wait()
            for i in range(N_WRITES):
                labels.create_labels(
                    cur,
                    info.id,
                    [LabelDraft("p2", at(i), at(i + 1), "confirmed", "spike", comment=f"{n}/{i}")],
                    f"analyst{n}",
                )
                labels.update_labels(cur, [shared], f"analyst{n}", {"comment": f"{n}/{i}"})
        except BaseException as exc:  # collected and re-raised by the test
            errors.append(exc)
        finally:
            cur.close()

    threads = [threading.Thread(target=session, args=(n,)) for n in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    current = labels.current_labels(con, info.id)
    comments = set(current.loc[current["asset"] == "p2", "comment"])
    assert comments == {f"{n}/{i}" for n in range(N_THREADS) for i in range(N_WRITES)}
    history = store.read_label_history(con, info.id)
    edits = history[(history["label_id"] == shared) & (history["action"] == "update")]
    assert len(edits) == N_THREADS * N_WRITES, "every edit of the shared label is in the history"
    con.close()


def test_a_conflicting_write_is_retried(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    other = con.cursor()
    calls = []

    def work(c: duckdb.DuckDBPyConnection) -> None:
        calls.append(1)
        c.execute("SELECT count(*) FROM fault_kinds").fetchall()  # the snapshot starts here
        if len(calls) == 1:  # another session commits a change to the same row meanwhile
            other.execute("UPDATE fault_kinds SET position = 40 WHERE name = 'spike'")
        c.execute("UPDATE fault_kinds SET position = position + 1 WHERE name = 'spike'")

    label_store.write_with_retry(con, work)
    assert len(calls) == 2
    row = con.execute("SELECT position FROM fault_kinds WHERE name = 'spike'").fetchone()
    assert row[0] == 41, "the retry saw the other session's write and built on it"
    con.close()


def _edit(con: duckdb.DuckDBPyConnection, state: dict, analyst: str, **fields) -> dict:
    """A history row changing `fields` of a label state read by `latest_states`."""
    keep = {f: state[f] for f in label_store.LABEL_FIELDS}
    return {
        **keep,
        "sensors": list(keep["sensors"]),
        **fields,
        "change_id": label_store.next_change_id(con),
        "label_id": state["label_id"],
        "dataset_id": state["dataset_id"],
        "action": "update",
        "analyst": analyst,
    }


def test_a_change_built_on_a_state_another_writer_replaced_is_rebuilt(tmp_path):
    """The label's head row makes a stale snapshot collide (even with a writer outside
    `write_with_retry`): the retry reads the other's change and keeps it."""
    con = store.open_workspace(tmp_path / "w.duckdb")
    info = make_dataset(con, n=200)
    [label] = labels.create_labels(
        con, info.id, [LabelDraft("p1", at(0), at(5), "unsure")], "setup"
    )
    other = con.cursor()
    seen: list[str] = []

    def work(c: duckdb.DuckDBPyConnection) -> None:
        [state] = label_store.latest_states(c, [label])  # the snapshot starts here
        seen.append(state["verdict"])
        if len(seen) == 1:  # another writer commits a change of the same label meanwhile
            with store.transaction(other):
                label_store.append_history(other, [_edit(other, state, "bob", verdict="confirmed")])
        label_store.append_history(c, [_edit(c, state, "ann", comment="ann's note")])

    label_store.write_with_retry(con, work)
    assert seen == ["unsure", "confirmed"], "the retry built on bob's committed change"
    final = labels.get_label(con, label)
    assert (final["verdict"], final["comment"]) == ("confirmed", "ann's note")
    con.close()


def test_endless_conflicts_end_in_a_clear_workspace_error(tmp_path):
    con = store.open_workspace(tmp_path / "w.duckdb")
    blocker = con.cursor()
    blocker.begin()
    blocker.execute("UPDATE fault_kinds SET position = 99 WHERE name = 'drift'")

    def work(c: duckdb.DuckDBPyConnection) -> None:
        c.execute("UPDATE fault_kinds SET position = 0 WHERE name = 'drift'")

    with pytest.raises(WorkspaceError, match="3 attempts collided with other sessions") as err:
        label_store.write_with_retry(con, work, attempts=3)
    assert "Nothing was saved" in str(err.value)
    assert "TransactionContext" not in str(err.value), "no DuckDB jargon for the user"
    blocker.rollback()
    assert con.execute("SELECT position FROM fault_kinds WHERE name = 'drift'").fetchone()[0] == 1
    con.close()


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import datetime
    from core import store
    from core.labels import history as labels
    from core.errors import WorkspaceError
    from core.labels.history import LabelDraft
    try:
        con = store.open_workspace(sys.argv[1])
    except WorkspaceError as exc:
        print(exc)
        sys.exit(2)
    labels.create_labels(
        con, 1, [LabelDraft("p1", datetime(2026, 1, 1, 2), datetime(2026, 1, 1, 3), "unsure")],
        "cli",
    )
    con.close()
    print("written")
    """
)


def _writer(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_second_process_is_told_the_workspace_is_busy_and_nothing_is_lost(tmp_path):
    path = tmp_path / "w.duckdb"
    app = store.open_workspace(path)  # the running app holds the file
    info = make_dataset(app, n=200)
    labels.create_labels(app, info.id, [LabelDraft("p1", at(1), at(2), "confirmed")], "app")

    busy = _writer(path)
    assert busy.returncode == 2, busy.stderr
    assert "is held by another Vigil process" in busy.stdout
    assert f"(PID {os.getpid()}," in busy.stdout, "this process, the app, holds it"
    labels.create_labels(app, info.id, [LabelDraft("p2", at(3), at(4), "false_alarm")], "app")
    assert len(labels.current_labels(app, info.id)) == 2
    app.close()

    done = _writer(path)  # once the app is closed the same write goes through
    assert done.returncode == 0, done.stderr
    con = store.open_workspace(path)
    current = labels.current_labels(con, info.id)
    assert sorted(current["updated_by"]) == ["app", "app", "cli"]
    con.close()


N_EDITS = 200


def test_two_sessions_editing_different_fields_of_one_label_lose_nothing(tmp_path):
    """Issue 14.2: each session's edit is built on the label as the other left it, never on a
    state read before the other's commit (which silently reverted its field)."""
    con = store.open_workspace(tmp_path / "w.duckdb")
    info = make_dataset(con, n=200)
    [label] = labels.create_labels(
        con, info.id, [LabelDraft("p1", at(0), at(5), "unsure")], "setup"
    )
    verdicts = ["confirmed", "false_alarm"] * (N_EDITS // 2)
    plan = {
        "ann": ("comment", [f"note {i}" for i in range(N_EDITS)]),
        "bob": ("verdict", verdicts),
    }
    errors: list[BaseException] = []
    start = threading.Barrier(len(plan))

    def session(analyst: str) -> None:
        field, values = plan[analyst]
        cur = con.cursor()
        try:
            start.wait()
            for value in values:
                labels.update_labels(cur, [label], analyst, {field: value})
        except BaseException as exc:  # collected and re-raised by the test
            errors.append(exc)
        finally:
            cur.close()

    threads = [threading.Thread(target=session, args=(a,)) for a in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    final = labels.get_label(con, label)
    assert (final["comment"], final["verdict"]) == (f"note {N_EDITS - 1}", verdicts[-1])
    history = store.read_label_history(con, info.id, label).sort_values("seq")
    edits = history[history["action"] == "update"]
    reverted_by_ann = edits[
        (edits["analyst"] == "ann") & (edits["verdict"] != edits["prev_verdict"])
    ]
    reverted_by_bob = edits[
        (edits["analyst"] == "bob") & (edits["comment"] != edits["prev_comment"])
    ]
    assert (len(reverted_by_ann), len(reverted_by_bob)) == (0, 0)
    assert (edits["analyst"] == "ann").sum() == N_EDITS, "every edit is in the history"
    assert (edits["analyst"] == "bob").sum() == N_EDITS
    con.close()


def _heads_and_newest(con: duckdb.DuckDBPyConnection) -> tuple[list, list]:
    heads = con.execute("SELECT label_id, seq FROM label_heads ORDER BY label_id").fetchall()
    newest = con.execute(
        "SELECT label_id, max(seq) FROM label_history GROUP BY label_id ORDER BY label_id"
    ).fetchall()
    return heads, newest


def test_a_workspace_from_before_label_heads_gets_them_on_open(tmp_path):
    """Migration 6 on a file that already holds labels: each label's head is its newest seq, and
    edits after the upgrade keep moving it."""
    path = tmp_path / "w.duckdb"
    con = store.open_workspace(path)
    info = make_dataset(con, n=200)
    drafts = [LabelDraft("p1", at(0), at(5), "unsure"), LabelDraft("p2", at(1), at(2), "unsure")]
    ids = labels.create_labels(con, info.id, drafts, "old")
    labels.update_labels(con, ids[:1], "old", {"comment": "edited"})
    con.execute("DROP TABLE label_heads")  # the file as schema version 5 left it
    con.execute("DELETE FROM schema_migrations WHERE version = 6")
    con.close()
    con = store.open_workspace(path)
    before, newest = _heads_and_newest(con)
    assert before == newest and len(before) == 2
    labels.update_labels(con, ids, "new", {"verdict": "confirmed"})
    heads, newest = _heads_and_newest(con)
    assert heads == newest and all(h[1] > b[1] for h, b in zip(heads, before, strict=True))
    con.close()
