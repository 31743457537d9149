"""Names that only a byte-exact comparison keeps apart, run through every store feature.

``BiUser`` and ``biuser``, NFC and NFD ``zoë``, ``bob`` and ``bob `` (MariaDB's
``*_bin`` collations ignore trailing spaces) as users; ``climate``, ``CLIMATE`` and
``climate `` as groups; server names and idempotency keys that differ only in case.
:func:`name_outcome` records everything a caller can observe (groups, PIs, ingest
results, usage, sessions, quota decisions, storage) so that the tests can require the
same outcome from every database, and :func:`check_names_kept_apart` checks that the
outcome is the exact one.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from eohub.adapters.accounting_db import AccountingStore
from eohub.adapters.accounting_db.models import Base
from eohub.domain.accounting.events import (
    EventError,
    parse_batch,
    start_event_json,
    stop_event_json,
)
from eohub.domain.accounting.ledger import Resources
from eohub.domain.accounting.periods import Allocation, PeriodKind
from eohub.domain.accounting.quota import Limits
from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.accounting.storage_quota import StoragePolicy

ZOE_NFC = unicodedata.normalize("NFC", "zoë")
ZOE_NFD = unicodedata.normalize("NFD", "zoë")
USERS = ("BiUser", "biuser", ZOE_NFC, ZOE_NFD, "bob", "bob ")
GROUPS = ("climate", "CLIMATE", "climate ")
#: Each group's sessions run on their own server name: the same user, the same start,
#: servers that differ only in case are different sessions.
SERVERS = {"climate": "", "CLIMATE": "Lab", "climate ": "lab"}
#: Sessions start this long before the store's "now": inside CLIMATE's rolling window.
AGO = timedelta(days=20)
#: What one quota check asks for.
REQUEST = Resources(500)
NO_GRACE = StoragePolicy(timedelta(0))


def wipe(store: AccountingStore) -> None:
    """Every row of every table gone (the server databases are shared by the tests)."""
    with store.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


def _put_groups(store: AccountingStore) -> list[bool]:
    month = Allocation.parse("month")
    rolling = Allocation.parse("rolling:30")
    return [
        store.put_group(
            "climate",
            allocation=month,
            display_name="lower",
            pis={"BiUser"},
            quotas={"*": Limits(max_servers=1), "BiUser": Limits(max_servers=2)},
        ),
        store.put_group(
            "CLIMATE",
            allocation=rolling,
            display_name="upper",
            pis={"biuser"},
            quotas={"": Limits(core_hours=Fraction(1000)), "biuser": Limits(core_hours=1)},
        ),
        store.put_group(
            "climate ",
            allocation=month,
            display_name="trailing space",
            pis={ZOE_NFD},
            quotas={"": Limits(storage_bytes=250)},
        ),
        # An update of one group, by its exact name, leaves its look-alikes alone.
        store.put_group("CLIMATE", display_name="UPPER"),
    ]


def _events(started: datetime) -> list[dict[str, Any]]:
    """A session per (user, group), all started at the same instant; even users stop."""
    events = []
    for i, user in enumerate(USERS):
        for group in GROUPS:
            server = SERVERS[group]
            events.append(
                start_event_json(
                    user=user,
                    server=server,
                    started_at=started,
                    group=group,
                    cpu=0.5,
                    profile=f"{group}/{user}",
                )
            )
            if i % 2 == 0:
                end = started + timedelta(hours=i + 1)
                events.append(
                    stop_event_json(user=user, server=server, started_at=started, stopped_at=end)
                )
    # Idempotency keys that differ only in case are two events.
    for user, key in (("bob", "custom:Ab"), ("bob ", "custom:ab")):
        event = start_event_json(
            user=user, server="keys", started_at=started, group="climate", cpu=0.25
        )
        events.append({**event, "id": key})
    return events


def _samples(at: datetime) -> list[StorageSample]:
    return [
        StorageSample(ZOE_NFC, "climate ", 100, at),
        # Later: a collation that merged the two zoës would keep only this sample.
        StorageSample(ZOE_NFD, "climate ", 200, at + timedelta(hours=1)),
        StorageSample(ZOE_NFC, "CLIMATE", 999, at),
        StorageSample("BiUser", "climate", 10, at),
        StorageSample("biuser", "climate", 20, at),
    ]


def _ingest(store: AccountingStore, events: list[dict[str, Any]]) -> object:
    try:
        result = store.ingest(parse_batch({"events": events}))
    except EventError as e:
        return sorted(e.errors)
    return (result.accepted, result.duplicates, result.corrected)


def name_outcome(store: AccountingStore) -> dict[str, Any]:
    """Run the scenario on an empty ``store``; everything observable, in a comparable form."""
    wipe(store)
    now = store.clock()
    out: dict[str, Any] = {"created": _put_groups(store)}
    events = _events(now - AGO)
    out["ingest"] = [_ingest(store, events), _ingest(store, events)]  # the second: a replay
    out["groups"] = [
        (g.name, g.display_name, sorted(g.pis), sorted(g.quotas)) for g in store.groups()
    ]
    out["one group"] = {g: store.group(g).name for g in GROUPS}
    out["pi of"] = {u: sorted(store.pi_groups(u)) for u in USERS}
    samples = _samples(now - timedelta(days=2))
    out["samples added"] = [store.add_storage_samples(samples), store.add_storage_samples(samples)]
    window = (now - 3 * AGO, now + timedelta(days=1))
    out["storage"] = list(store.iter_storage(*window))
    out["usage by group"] = store.usage(PeriodKind.MONTH, *window)
    out["usage by user"] = store.usage(PeriodKind.MONTH, *window, by_user=True)
    out["usage of"] = {u: store.usage(PeriodKind.MONTH, *window, user=u) for u in USERS}
    out["usage in"] = {g: store.usage(PeriodKind.MONTH, *window, groups={g}) for g in GROUPS}
    out["sessions of"] = {
        u: sorted(
            (s.user, s.server, s.group, s.started_at, s.stopped_at)
            for s in store.sessions(users={u}, limit=1000)
        )
        for u in USERS
    }
    out["sessions in"] = {g: len(store.sessions(groups={g}, limit=1000)) for g in GROUPS}
    # No storage grace: a group over its storage quota is refused at once.
    out["quota"] = {
        (u, g): store.check_quota(u, g, REQUEST, NO_GRACE) for u in USERS for g in GROUPS
    }
    return out


def check_names_kept_apart(out: dict[str, Any]) -> None:
    """The outcome of exact comparison, told apart from any folding or padding."""
    assert out["created"] == [True, True, True, False]
    assert [g[0] for g in out["groups"]] == sorted(GROUPS)  # code point order
    assert {g[0]: g[1] for g in out["groups"]} == {
        "CLIMATE": "UPPER",
        "climate": "lower",
        "climate ": "trailing space",
    }
    assert out["one group"] == {g: g for g in GROUPS}
    starts, stops = len(USERS) * len(GROUPS), len(GROUPS) * len(USERS[::2])
    assert out["ingest"] == [(starts + stops + 2, 0, 0), (0, starts + stops + 2, 0)]
    assert out["pi of"] == {
        "BiUser": ["climate"],
        "biuser": ["CLIMATE"],
        ZOE_NFC: [],
        ZOE_NFD: ["climate "],
        "bob": [],
        "bob ": [],
    }
    assert out["samples added"] == [5, 0]
    assert {(r.group, r.user) for r in out["usage by user"]} == {
        (g, u) for g in GROUPS for u in USERS
    }
    for user, rows in out["usage of"].items():
        assert {r.user for r in rows} == {user}
    for group, rows in out["usage in"].items():
        assert {r.group for r in rows} == {group}
    for user, sessions in out["sessions of"].items():
        expected = 3 + (user in ("bob", "bob "))  # one per group, + the key test's
        assert len(sessions) == expected
        assert {s[0] for s in sessions} == {user}
    assert out["sessions in"] == {"climate": 8, "CLIMATE": 6, "climate ": 6}
    allowed = {key for key, decision in out["quota"].items() if decision.allowed}
    # climate: one server each ("bob" and "bob " also run the key test's), BiUser two;
    # CLIMATE (rolling 30 days): biuser's own hour is spent;
    # "climate ": the two zoës store 300 bytes, over its 250.
    assert allowed == {
        ("BiUser", "climate"),
        (ZOE_NFC, "climate"),
        ("BiUser", "CLIMATE"),
        (ZOE_NFC, "CLIMATE"),
        (ZOE_NFD, "CLIMATE"),
        ("bob", "CLIMATE"),
        ("bob ", "CLIMATE"),
    }
