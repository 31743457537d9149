"""Exports written by worker processes are byte for byte the one-process exports."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eohub.accounting.exports.config import XDMoDExport, run_export
from eohub.accounting.exports.parallel import ExportWorkerError, id_ranges, shareable
from eohub.adapters.accounting_db import AccountingStore, create_engine_for
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation
from tests.support.accounting import Clock, fresh_store

REASONS = ("user", "idle", "max_duration", "failed", "budget", "admin", "culled")
FROM = datetime(2026, 2, 1, tzinfo=UTC)
TO = datetime(2026, 3, 1, tzinfo=UTC)


def seeded(url: str, sessions: int = 240) -> AccountingStore:
    store = fresh_store(url, Clock(datetime(2026, 2, 20, tzinfo=UTC)))
    store.put_group("climate", allocation=Allocation.parse("month"))
    events = []
    for i in range(sessions):
        at = FROM + timedelta(minutes=97 * i, microseconds=i)
        events.append(
            start_event_json(
                user=f"u{i % 7}",
                server="" if i % 3 else "gpu",
                started_at=at,
                group="climate",
                cpu=0.25 * (1 + i % 8),
                memory_bytes=(i % 5) * 2**30,
                gpus=i % 2,
                profile="=cmd" if i == 5 else "default",  # a cell that needs a guard
                idle_timeout=600 * (i % 4),  # 0: no limit
                max_duration=3600 * (i % 3),
            )
        )
        if i % 11:  # some stay open: their usage counts up to the store's now
            events.append(
                stop_event_json(
                    user=f"u{i % 7}",
                    server="" if i % 3 else "gpu",
                    started_at=at,
                    stopped_at=at + timedelta(minutes=45 + i),
                    reason=REASONS[i % len(REASONS)],
                )
            )
    store.ingest(parse_batch({"events": events}))
    return store


def export(store: AccountingStore, kind: str, settings: XDMoDExport) -> tuple[str, list[int]]:
    out = io.StringIO()
    seen: list[int] = []
    written = run_export(
        kind, store, settings, out, FROM, TO, progress=lambda done, _total: seen.append(done)
    )
    text = out.getvalue()
    assert written == (len(text.splitlines()) - (kind == "sessions.csv"))
    return text, seen


@pytest.mark.parametrize("kind", ["sessions.csv", "sacct.txt"])
def test_worker_processes_write_the_same_bytes(database_url: str, kind: str) -> None:
    store = seeded(database_url)
    try:
        alone, _ = export(store, kind, XDMoDExport(export_workers=1))
        parallel = XDMoDExport(export_workers=3, parallel_export_sessions=1)
        together, progress = export(store, kind, parallel)
    finally:
        store.engine.dispose()
    assert together == alone
    assert alone.count("\n") > 100
    assert progress[0] == 0
    assert progress[-1] == 240 if kind == "sessions.csv" else progress[-1] > 0
    assert progress == sorted(progress)
    # Every session's reason and limits, as the store's rows give them to the writers.
    if kind == "sacct.txt":
        jobs = [line.split("|") for line in alone.splitlines()]
        assert {(j[16], j[15]) for j in jobs} == {
            ("COMPLETED", "0:0"),
            ("TIMEOUT", "0:0"),
            ("FAILED", "1:0"),
            ("CANCELLED", "0:0"),
        }
        assert {j[23] for j in jobs} == {"UNLIMITED", "01:00:00", "02:00:00"}
    else:
        header, *rows = (line.split(",") for line in alone.splitlines())
        cells = [dict(zip(header, row, strict=True)) for row in rows]
        assert {c["end_reason"] for c in cells} == {*REASONS[:-1], ""}  # culled: idle
        assert {c["idle_timeout"] for c in cells} == {"", "600", "1200", "1800"}
        assert {c["max_duration"] for c in cells} == {"", "3600", "7200"}


def test_small_exports_and_memory_databases_stay_in_one_process(tmp_path: Path) -> None:
    assert not shareable(create_engine_for("sqlite://"))
    assert not shareable(create_engine_for("sqlite:///:memory:"))
    assert shareable(create_engine_for(f"sqlite:///{tmp_path / 'a.sqlite'}"))
    store = seeded("sqlite://", sessions=30)
    text, _ = export(store, "sessions.csv", XDMoDExport(export_workers=4))
    assert len(text.splitlines()) == 31


def test_a_failing_worker_fails_the_export_with_its_error(tmp_path: Path) -> None:
    store = seeded(f"sqlite:///{tmp_path / 'gone.sqlite'}", sessions=20)
    (tmp_path / "gone.sqlite").unlink()  # the workers open the file anew and find no tables
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"gone.sqlite{suffix}").unlink(missing_ok=True)
    settings = XDMoDExport(export_workers=2, parallel_export_sessions=1)
    with pytest.raises(ExportWorkerError, match="no such table"):
        run_export("sessions.csv", store, settings, io.StringIO(), FROM, TO)
    store.engine.dispose()


@pytest.mark.parametrize(
    ("low", "high", "parts", "expected"),
    [
        (1, 10, 3, [(1, 4), (5, 7), (8, 10)]),
        (5, 5, 4, [(5, 5)]),
        (1, 4, 8, [(1, 1), (2, 2), (3, 3), (4, 4)]),
        (1, 100, 1, [(1, 100)]),
    ],
)
def test_id_ranges_cover_every_id_once(
    low: int, high: int, parts: int, expected: list[tuple[int, int]]
) -> None:
    assert id_ranges(low, high, parts) == expected
