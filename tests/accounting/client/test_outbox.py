"""The outbox file: durable, ordered, shared safely between processes and threads."""

from __future__ import annotations

import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from eohub.accounting.client.outbox import Outbox, OutboxError
from tests.accounting.client.outbox_support import start, stop


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.sqlite")


# -- the file ------------------------------------------------------------------------


def test_events_come_back_oldest_first_and_leave_only_when_deleted(outbox: Outbox) -> None:
    events = [start(i) for i in range(5)]
    assert outbox.put(events[:3]) == 3
    assert outbox.put(events[3:]) == 2
    rows = outbox.peek(4)
    assert [e for _, e in rows] == events[:4]
    assert [r for r, _ in rows] == sorted(r for r, _ in rows)
    assert outbox.peek(4) == rows  # peeking takes nothing away
    assert outbox.delete([rows[0][0], rows[1][0], 999]) == 2
    assert [e for _, e in outbox.peek(10)] == events[2:]
    assert outbox.count() == 3


def test_an_event_already_queued_is_not_queued_twice(outbox: Outbox) -> None:
    assert outbox.put([start(1), start(2)]) == 2
    assert outbox.put([start(1)]) == 0
    assert outbox.count() == 2
    # Once sent and deleted, the same id may be queued again (the service dedupes).
    outbox.delete(r for r, _ in outbox.peek(1))
    assert outbox.put([start(1)]) == 1


def test_an_event_without_an_id_is_refused(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="'id'"):
        outbox.put([{"kind": "start"}])
    assert outbox.count() == 0


def test_events_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    first = Outbox(path)
    first.put([start(1), stop(1)])
    first.close()
    again = Outbox(path)
    assert [e["kind"] for _, e in again.peek(10)] == ["start", "stop"]


def test_the_file_is_wal_fully_synced_and_private(tmp_path: Path, outbox: Outbox) -> None:
    outbox.put([start(1)])
    with sqlite3.connect(outbox.path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert outbox._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert stat.S_IMODE(outbox.path.stat().st_mode) == 0o600


def test_rejected_events_move_to_the_dead_letters_and_can_be_requeued(outbox: Outbox) -> None:
    outbox.put([start(1), start(2), start(3)])
    _, (r2, _), (r3, _) = outbox.peek(3)
    assert outbox.dead_letter({r2: {"cpu": "must be greater than 0"}}) == 1
    assert [e for _, e in outbox.peek(10)] == [start(1), start(3)]
    [dead] = outbox.dead_letters()
    assert (dead.rowid, dead.event, dead.errors) == (
        r2,
        start(2),
        {"cpu": "must be greater than 0"},
    )
    assert outbox.dead_letter_count() == 1

    assert outbox.requeue_dead_letters() == 1
    assert outbox.dead_letter_count() == 0
    rows = outbox.peek(10)
    assert [e for _, e in rows] == [start(1), start(3), start(2)]  # requeued as the newest
    assert rows[-1][0] > r3  # row ids are never reused


def test_a_row_that_is_not_json_comes_back_as_text(outbox: Outbox) -> None:
    with sqlite3.connect(outbox.path) as db:
        db.execute(
            "INSERT INTO outbox (event_id, body, queued_at) VALUES ('x', '{not json', 'now')"
        )
    assert [e for _, e in outbox.peek(1)] == ["{not json"]


def test_a_file_from_a_newer_eohub_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    Outbox(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 7")
    with pytest.raises(OutboxError, match=r"schema version 7.*upgrade eohub"):
        Outbox(path)


def test_a_path_that_cannot_be_a_database_names_itself(tmp_path: Path) -> None:
    with pytest.raises(OutboxError, match=str(tmp_path)):
        Outbox(tmp_path)  # a directory


def test_two_outboxes_on_one_file_share_it_without_losing_an_event(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    writers = [Outbox(path) for _ in range(3)]
    readers = [Outbox(path) for _ in range(2)]
    per_writer = 150
    sent: list[str] = []
    sent_lock = threading.Lock()
    done = threading.Event()

    def write(n: int) -> None:
        for i in range(per_writer):
            writers[n].put([start(n * 1000 + i, user=f"u{n}")])

    def read(n: int) -> None:
        while True:
            finished = done.is_set()
            rows = readers[n].peek(25)
            readers[n].delete(r for r, _ in rows)
            with sent_lock:
                sent.extend(e["id"] for _, e in rows)
            if finished and not rows:
                return

    threads = [threading.Thread(target=write, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=read, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads[:3]:
        t.join()
    done.set()
    for t in threads[3:]:
        t.join()

    expected = {
        start(n * 1000 + i, user=f"u{n}")["id"] for n in range(3) for i in range(per_writer)
    }
    # Two readers may both send a row before either deletes it: at least once, never lost.
    assert set(sent) == expected
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
