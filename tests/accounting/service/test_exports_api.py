"""The export API without a hub: who exports which group, the range, and the streaming."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tornado import web

from eohub.accounting.scopes import ACCESS, READ, Caller, Kind
from eohub.accounting.service import exports_api
from eohub.accounting.service.context import CONTEXT_SETTING
from eohub.accounting.service.exports_api import ExportCancelled, ExportHandler, _QueueWriter
from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.events import (
    EventError,
    parse_batch,
    start_event_json,
    stop_event_json,
)
from eohub.domain.accounting.periods import Allocation
from tests.accounting.service.context_support import make_context, make_handler
from tests.support.accounting import Clock, fresh_store

NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)
PREFIX = "/services/eohub-accounting/api/export/"
READER = Caller("rita", Kind.USER, frozenset({ACCESS, READ}))
PI = Caller("carol", Kind.USER, frozenset({ACCESS}), frozenset({"climate", "astro"}))
USER = Caller("alice", Kind.USER, frozenset({ACCESS}))


@pytest.fixture
def store(sqlite_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(sqlite_url, Clock(NOW))
    for group in ("climate", "astro"):
        s.put_group(group, allocation=Allocation.parse("month"))
    events = []
    for i, group in enumerate(["climate", "astro", "climate"]):
        at = datetime(2026, 3, 1 + i, tzinfo=UTC)
        events.append(start_event_json(user=f"u{i}", server="", started_at=at, group=group, cpu=1))
        events.append(
            stop_event_json(
                user=f"u{i}", server="", started_at=at, stopped_at=at + timedelta(hours=1)
            )
        )
    s.ingest(parse_batch({"events": events}))
    yield s
    s.engine.dispose()


def export(store: AccountingStore, caller: Caller, uri: str) -> Any:
    handler = make_handler(ExportHandler, PREFIX + uri, **{CONTEXT_SETTING: make_context(store)})
    handler.caller = caller
    handler.written = []
    handler.write = handler.written.append

    async def flush() -> None:
        pass

    handler.flush = flush
    return handler


async def test_a_reader_exports_every_groups_sessions(store: AccountingStore) -> None:
    handler = export(store, READER, "sessions.csv?from=2026-03-01&to=2026-04-01")
    await handler.get("sessions.csv")
    lines = "".join(handler.written).splitlines()
    assert lines[0].startswith("id,user,server,group")
    assert len(lines) == 4
    assert handler.finished == [None]
    assert handler._headers["Content-Type"] == "text/csv; charset=utf-8"
    assert handler._headers["Content-Disposition"] == (
        'attachment; filename="eohub-20260301-20260401-sessions.csv"'
    )
    assert handler._headers["Cache-Control"] == "no-store"


async def test_a_pi_exports_one_of_their_groups(store: AccountingStore) -> None:
    handler = export(store, PI, "sessions.csv?group=climate")
    await handler.get("sessions.csv")
    rows = "".join(handler.written).splitlines()[1:]
    assert len(rows) == 2
    assert all(",climate," in row for row in rows)


def test_a_pi_of_several_groups_must_choose_one(store: AccountingStore) -> None:
    with pytest.raises(EventError) as e:
        export(store, PI, "usage.csv").export_group("usage.csv")
    assert e.value.errors == {"group": "choose one of your groups: astro, climate"}


@pytest.mark.parametrize(
    ("caller", "query", "group"),
    [(READER, "", None), (READER, "?group=astro", "astro"), (PI, "?group=astro", "astro")],
)
def test_the_group_exported(
    store: AccountingStore, caller: Caller, query: str, group: str | None
) -> None:
    assert export(store, caller, "sacct.txt" + query).export_group("sacct.txt") == group


def test_a_user_who_leads_no_group_may_not_export(store: AccountingStore) -> None:
    with pytest.raises(web.HTTPError) as e:
        export(store, USER, "sessions.csv").export_group("sessions.csv")
    assert e.value.status_code == 403


async def test_an_unknown_export_is_404(store: AccountingStore) -> None:
    with pytest.raises(web.HTTPError) as e:
        await export(store, READER, "report.pdf").get("report.pdf")
    assert e.value.status_code == 404
    assert "sessions.csv" in e.value.log_message


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("", datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
        (
            "?from=2026-01-10&to=2026-01-20",
            datetime(2026, 1, 10, tzinfo=UTC),
            datetime(2026, 1, 20, tzinfo=UTC),
        ),
    ],
)
def test_the_range_is_last_month_and_this_one_by_default(
    store: AccountingStore, query: str, start: datetime, end: datetime
) -> None:
    assert export(store, READER, "usage.csv" + query).export_range() == (start, end)


def test_a_range_that_ends_before_it_starts_is_refused(store: AccountingStore) -> None:
    handler = export(store, READER, "usage.csv?from=2026-03-01&to=2026-03-01")
    with pytest.raises(EventError) as e:
        handler.export_range()
    assert e.value.errors == {"to": "must be after from"}


async def test_the_writer_hands_on_large_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exports_api, "CHUNK", 10)
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    writer = _QueueWriter(asyncio.get_running_loop(), queue)

    def produce() -> None:
        assert writer.write("abcd") == 4
        writer.write("efghijk")  # 11 characters: one chunk
        writer.write("lm")
        writer.flush()
        writer.flush()  # nothing left: no empty chunk

    await asyncio.to_thread(produce)
    chunks = [queue.get_nowait() for _ in range(queue.qsize())]
    assert chunks == ["abcdefghijk", "lm"]
    writer.cancelled = True
    with pytest.raises(ExportCancelled):
        writer.flush()
