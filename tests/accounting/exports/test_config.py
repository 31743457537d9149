"""Export settings: the XDMoD mapping, the worker count, and which export writes what."""

from __future__ import annotations

import io
import json
import logging
import logging.handlers
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from traitlets import TraitError

from eohub.accounting.exports import config
from eohub.accounting.exports.config import EXPORTS, XDMoDExport, run_export
from eohub.adapters.accounting_db import AccountingStore
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation
from eohub.domain.accounting.quota import Limits
from eohub.domain.accounting.session_record import StorageSample
from tests.support.accounting import Clock, fresh_store

FROM = datetime(2026, 2, 1, tzinfo=UTC)
TO = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def store(sqlite_url: str) -> Iterator[AccountingStore]:
    s = fresh_store(sqlite_url, Clock(datetime(2026, 3, 15, tzinfo=UTC)))
    s.put_group(
        "climate",
        allocation=Allocation.parse("month"),
        quotas={"": Limits(storage_bytes=10**12), "*": Limits(storage_bytes=10**9)},
    )
    s.put_group("astro", allocation=Allocation.parse("month"))
    events = []
    for i, group in enumerate(["climate", "astro", "climate"]):
        at = FROM + timedelta(days=i)
        events.append(start_event_json(user=f"u{i}", server="", started_at=at, group=group, cpu=1))
        events.append(
            stop_event_json(
                user=f"u{i}", server="", started_at=at, stopped_at=at + timedelta(hours=2)
            )
        )
    s.ingest(parse_batch({"events": events}))
    yield s
    s.engine.dispose()


def test_negative_settings_are_refused() -> None:
    with pytest.raises(Exception, match="must be 0 or more"):
        XDMoDExport(export_workers=-1)


def test_the_exports_and_their_media_types() -> None:
    assert EXPORTS == {
        "sessions.csv": "text/csv; charset=utf-8",
        "usage.csv": "text/csv; charset=utf-8",
        "sacct.txt": "text/plain; charset=us-ascii",
        "storage.json": "application/json",
    }


@pytest.mark.parametrize(
    ("export_workers", "cpus", "workers"),
    [(0, 4, 4), (0, 32, 8), (0, None, 1), (1, 32, 1), (3, 1, 3), (12, 2, 12)],
)
def test_the_worker_count(
    monkeypatch: pytest.MonkeyPatch, export_workers: int, cpus: int | None, workers: int
) -> None:
    monkeypatch.setattr(config.os, "cpu_count", lambda: cpus)
    assert XDMoDExport(export_workers=export_workers).workers() == workers


def test_the_sacct_options_carry_the_settings() -> None:
    settings = XDMoDExport(
        cluster="eo1", node="jh", job_id_offset=100, uids={"alice": 1001}, gids={"climate": 501}
    )
    options = settings.sacct_options()
    assert (options.cluster, options.node, options.job_id_offset) == ("eo1", "jh", 100)
    assert (dict(options.uids), dict(options.gids)) == ({"alice": 1001}, {"climate": 501})


def test_the_storage_thresholds_are_the_groups_own_quotas(store: AccountingStore) -> None:
    options = XDMoDExport(storage_resource="eo-home", storage_mountpoint="/data").storage_options(
        store
    )
    assert (options.resource, options.mountpoint) == ("eo-home", "/data")
    assert dict(options.hard_thresholds) == {"climate": 10**12}


@pytest.mark.parametrize(
    ("kind", "group", "rows"),
    [
        ("sessions.csv", None, 3),
        ("sessions.csv", "climate", 2),
        ("sacct.txt", None, 3),
        ("sacct.txt", "astro", 1),
        ("storage.json", None, 0),
    ],
)
def test_each_kind_writes_its_rows(
    store: AccountingStore, kind: str, group: str | None, rows: int
) -> None:
    out = io.StringIO()
    written = run_export(kind, store, XDMoDExport(export_workers=1), out, FROM, TO, group=group)
    assert written == rows
    assert out.getvalue()


def test_the_usage_export_holds_only_the_groups_rows(store: AccountingStore) -> None:
    out = io.StringIO()
    written = run_export("usage.csv", store, XDMoDExport(), out, FROM, TO, group="climate")
    lines = out.getvalue().splitlines()
    assert written == len(lines) - 1 >= 1
    assert all("astro" not in line for line in lines)


def test_an_unknown_export_is_refused_naming_the_kinds(store: AccountingStore) -> None:
    with pytest.raises(
        ValueError, match=r"unknown export 'report\.pdf': choose one of sessions\.csv"
    ):
        run_export("report.pdf", store, XDMoDExport(), io.StringIO(), FROM, TO)


@pytest.mark.parametrize(("pi", "written"), [(None, "unassigned"), ("no-group", "no-group")])
def test_the_storage_export_carries_file_counts_and_the_unassigned_pi(
    store: AccountingStore, pi: str | None, written: str
) -> None:
    """Space charged to no group is exported under the unassigned PI; XDMoD requires one."""
    at = FROM + timedelta(days=3)
    store.add_storage_samples(
        [StorageSample("u0", "climate", 5, at, 12), StorageSample("u1", "", 7, at, 3)]
    )
    settings = XDMoDExport() if pi is None else XDMoDExport(storage_unassigned_pi=pi)
    out = io.StringIO()
    assert run_export("storage.json", store, settings, out, FROM, TO) == 2
    records = json.loads(out.getvalue())
    assert [(r["user"], r["pi"], r["logical_usage"], r["file_count"]) for r in records] == [
        ("u0", "climate", 5, 12),
        ("u1", written, 7, 3),
    ]


@pytest.mark.parametrize("pi", ["", "two words", "a" * 31, "zoë", "-x"])
def test_a_bad_unassigned_pi_is_refused_naming_the_setting(pi: str) -> None:
    with pytest.raises(TraitError, match="storage_unassigned_pi"):
        XDMoDExport(storage_unassigned_pi=pi)


def test_a_rounds_sources_are_one_storage_record(store: AccountingStore) -> None:
    """/home and /scratch measured in one round: XDMoD gets one entry, their sum."""
    at = FROM + timedelta(days=3)
    store.add_storage_samples(
        [
            StorageSample("u0", "climate", 5, at, 12, "/home"),
            StorageSample("u0", "climate", 7, at, 3, "/scratch"),
            StorageSample("u0", "", 1, at, 1, "/home"),
            StorageSample("u0", "climate", 2, at + timedelta(hours=1), 1, "/home"),
        ]
    )
    out = io.StringIO()
    assert run_export("storage.json", store, XDMoDExport(), out, FROM, TO) == 3
    records = json.loads(out.getvalue())
    assert [(r["pi"], r["dt"], r["logical_usage"], r["file_count"]) for r in records] == [
        ("climate", "2026-02-04T00:00:00Z", 12, 15),
        ("unassigned", "2026-02-04T00:00:00Z", 1, 1),
        ("climate", "2026-02-04T01:00:00Z", 2, 1),
    ]


@pytest.mark.parametrize(("pi", "warned"), [("climate", True), ("unassigned", False)])
def test_an_unassigned_pi_that_is_a_group_is_warned_of(
    store: AccountingStore, pi: str, warned: bool
) -> None:
    kept = logging.handlers.BufferingHandler(100)
    logger = logging.getLogger(config.__name__)
    logger.addHandler(kept)  # an application's log may not reach the root logger
    try:
        assert config.warn_if_unassigned_pi_is_a_group(store, pi) is warned
        settings = XDMoDExport(storage_unassigned_pi=pi)
        run_export("storage.json", store, settings, io.StringIO(), FROM, TO)
    finally:
        logger.removeHandler(kept)
    messages = [r.getMessage() for r in kept.buffer]
    expected = (
        "XDMoDExport.storage_unassigned_pi 'climate' is also the XDMoD PI of group(s) climate: "
        "the storage export mixes their space with the space charged to no group. Set "
        "storage_unassigned_pi to a name no group has."
    )
    assert messages == ([expected] * 2 if warned else [])


def test_a_long_group_is_warned_of_under_the_name_xdmod_sees() -> None:
    long = "a" * 40
    cut = config.xdmod_text(long, 30)
    assert config.warn_about_the_unassigned_pi(["climate", long], cut)
    assert not config.warn_about_the_unassigned_pi(["climate", long], "a" * 30)
