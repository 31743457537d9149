"""The accounting authorisation table, as plain cases: caller x operation -> allowed."""

from __future__ import annotations

import re

import pytest

from eohub.domain.accounting.access import (
    ACCESS,
    ADMIN,
    INGEST,
    READ,
    TABLE,
    Caller,
    Forbidden,
    Kind,
    Op,
    Selection,
    authorise,
    grant_for,
    may_stop_server,
    may_stop_some_server,
    readable_groups,
    select,
    table_markdown,
)
from tests.support.tools import REPO_ROOT

F = frozenset
U, S = Kind.USER, Kind.SERVICE
CALLERS: dict[str, Caller | None] = {
    "anonymous": None,
    "no access scope": Caller("alice", U, F({"read:users:activity"})),
    "narrowed hub admin": Caller(
        "admin", U, F({"access:servers!server=admin/", "users:activity!user=admin", ADMIN})
    ),
    "user": Caller("alice", U, F({ACCESS})),
    "pi": Caller("carol", U, F({ACCESS}), F({"climate"})),
    "reader": Caller("rita", U, F({ACCESS, READ})),
    "admin": Caller("root", U, F({"access:services", ADMIN})),
    "ingest client": Caller("eohub-accounting-hub", S, F({ACCESS, INGEST})),
    "service like a user": Caller("alice", S, F({ACCESS}), F({"climate"})),
    "reader service": Caller("report-tool", S, F({ACCESS, READ})),
}
ALL = set(CALLERS)
READERS = {"reader", "admin", "reader service"}
USERS = {"user", "pi", "reader", "admin"}
INGESTERS = {"ingest client"}
# op -> the callers allowed to do it at all (objects are narrowed further below)
EXPECTED: dict[Op, set[str]] = {
    Op.EVENTS: INGESTERS,
    Op.QUOTA_CHECK: INGESTERS,
    Op.STORAGE: INGESTERS,
    Op.USAGE: USERS | READERS,
    Op.STORAGE_READ: USERS | READERS,
    Op.SESSIONS: USERS | READERS | INGESTERS,
    Op.GROUPS: USERS | READERS,
    Op.GROUP: USERS | READERS,
    Op.CHANGE_GROUP: {"admin"},
    Op.EXPORT_SESSIONS: USERS | READERS,
    Op.EXPORT_USAGE: USERS | READERS,
    Op.EXPORT_SACCT: USERS | READERS,
    Op.EXPORT_STORAGE: USERS | READERS,
    Op.METRICS: READERS,
    Op.WHOAMI: ALL - {"anonymous", "no access scope", "narrowed hub admin"},
    Op.PAGE_USAGE: USERS,
    Op.PAGE_GROUPS: USERS | READERS,
    Op.PAGE_ALL: READERS,
    # every user may ask; only PIs and admins get a group (see may_stop_server below)
    Op.STOP_SERVER: USERS,
}


def test_every_operation_has_expectations() -> None:
    assert set(EXPECTED) == set(Op) == set(TABLE)


@pytest.mark.parametrize("op", list(Op))
def test_who_may_do_what(op: Op) -> None:
    allowed = {name for name, caller in CALLERS.items() if grant_for(caller, op) is not None}
    assert allowed == EXPECTED[op]
    for name in ALL - allowed:
        with pytest.raises(Forbidden):
            authorise(CALLERS[name], op)


# (caller, op, user, group) -> the selection, or None for Forbidden
SELECTIONS: list[tuple[str, Op, str | None, str | None, Selection | None]] = [
    ("user", Op.USAGE, None, None, Selection(F({"alice"}), None)),
    ("user", Op.USAGE, "alice", None, Selection(F({"alice"}), None)),
    ("user", Op.USAGE, "bob", None, None),
    ("user", Op.USAGE, None, "climate", None),
    ("user", Op.SESSIONS, "alice", "ocean", Selection(F({"alice"}), F({"ocean"}))),
    ("user", Op.SESSIONS, "bob", "ocean", None),
    ("pi", Op.USAGE, None, "climate", Selection(None, F({"climate"}))),
    ("pi", Op.USAGE, None, "ocean", None),
    ("pi", Op.USAGE, "bob", "climate", Selection(F({"bob"}), F({"climate"}))),
    ("pi", Op.USAGE, "bob", "ocean", None),
    # one member, without a group: that member's rows in the PI's groups only
    ("pi", Op.SESSIONS, "bob", None, Selection(F({"bob"}), F({"climate"}))),
    ("pi", Op.SESSIONS, None, None, Selection(F({"carol"}), None)),
    ("pi", Op.EXPORT_SACCT, None, None, Selection(None, F({"climate"}))),
    ("pi", Op.EXPORT_STORAGE, None, "ocean", None),
    ("pi", Op.EXPORT_USAGE, None, "climate", Selection(None, F({"climate"}))),
    ("user", Op.EXPORT_SESSIONS, None, None, None),
    ("user", Op.EXPORT_SESSIONS, None, "climate", None),
    ("reader", Op.USAGE, None, None, Selection(None, None)),
    ("reader", Op.SESSIONS, "bob", "ocean", Selection(F({"bob"}), F({"ocean"}))),
    ("admin", Op.EXPORT_STORAGE, None, None, Selection(None, None)),
    ("service like a user", Op.USAGE, None, None, None),
    ("service like a user", Op.USAGE, "alice", None, None),
    ("service like a user", Op.EXPORT_USAGE, None, "climate", None),
    ("reader service", Op.USAGE, "alice", None, Selection(F({"alice"}), None)),
    # Storage is read as usage is.
    ("user", Op.STORAGE_READ, None, None, Selection(F({"alice"}), None)),
    ("user", Op.STORAGE_READ, "bob", None, None),
    ("user", Op.STORAGE_READ, None, "climate", None),
    ("pi", Op.STORAGE_READ, None, "climate", Selection(None, F({"climate"}))),
    ("pi", Op.STORAGE_READ, "bob", None, Selection(F({"bob"}), F({"climate"}))),
    ("pi", Op.STORAGE_READ, None, "ocean", None),
    ("reader", Op.STORAGE_READ, "bob", None, Selection(F({"bob"}), None)),
    ("ingest client", Op.STORAGE_READ, None, None, None),
]


@pytest.mark.parametrize(("who", "op", "user", "group", "expected"), SELECTIONS)
def test_queries_are_narrowed_to_what_the_caller_may_see(
    who: str, op: Op, user: str | None, group: str | None, expected: Selection | None
) -> None:
    if expected is None:
        with pytest.raises(Forbidden):
            select(CALLERS[who], op, user=user, group=group)
    else:
        assert select(CALLERS[who], op, user=user, group=group) == expected


@pytest.mark.parametrize(
    ("who", "expected"),
    [("user", F()), ("pi", F({"climate"})), ("reader", None), ("admin", None)],
)
def test_listed_groups(who: str, expected: frozenset[str] | None) -> None:
    assert readable_groups(CALLERS[who], Op.GROUPS) == expected


def test_a_selection_matches_both_conditions() -> None:
    selection = Selection(F({"bob"}), F({"climate"}))
    assert selection.matches("bob", "climate")
    assert not selection.matches("bob", "ocean")
    assert not selection.matches("alice", "climate")
    assert Selection().matches("anyone", "any")


def test_the_admin_scope_includes_read_but_not_ingest() -> None:
    admin = CALLERS["admin"]
    assert admin is not None
    assert admin.reads_all
    assert admin.is_admin
    assert not admin.holds(INGEST)


def test_the_reference_docs_show_the_table_the_code_uses() -> None:
    docs = REPO_ROOT / "docs" / "reference" / "accounting-service.md"
    text = docs.read_text()
    found = re.search(r"<!-- authorisation table -->\n(.*?)<!-- end -->", text, re.S)
    assert found, "the authorisation table markers are missing from the reference docs"
    assert found.group(1) == table_markdown()


# (caller, the group a server is charged to) -> may they stop it?
STOPS = [
    ("pi", "climate", True),
    ("pi", "ocean", False),  # a PI of another group
    ("user", "climate", False),
    ("reader", "climate", False),  # reading everything is not changing anything
    ("reader service", "climate", False),
    ("admin", "ocean", True),
    ("narrowed hub admin", "climate", False),
    ("service like a user", "climate", False),
    ("anonymous", "climate", False),
]


@pytest.mark.parametrize(("who", "group", "allowed"), STOPS)
def test_who_may_stop_a_members_server(who: str, group: str, allowed: bool) -> None:
    assert may_stop_server(CALLERS[who], group) is allowed


# Who may ask to stop any server at all (checked before a session is looked up).
STOPPERS = {"pi", "admin"}


@pytest.mark.parametrize("who", sorted(CALLERS))
def test_only_pis_and_admins_may_stop_some_server(who: str) -> None:
    assert may_stop_some_server(CALLERS[who]) is (who in STOPPERS)
