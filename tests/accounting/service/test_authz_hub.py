"""The authorisation table against a real JupyterHub: every caller x every endpoint.

One hub serves the module. Its callers hold real tokens: users with their own full
tokens, a PI, users given the read or admin scope by a role, a hub admin (accounting
admin through drop-in 30's role) with a full and a narrowed token, a token with only
``read:users:activity``, the hub's ingest client, and a service named like a user.
Then the pages' cookie: state changes without JupyterHub's XSRF token are refused, in
every content type, and change nothing.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from eohub.accounting.scopes import ACCESS, ADMIN, READ
from eohub.domain.accounting.access import Op
from eohub.domain.accounting.events import start_event_json, stop_event_json
from tests.accounting.service_support import Accounting
from tests.support.hub import Hub, start_hub

PASSWORD = "authz-pw"
SERVICE_TOKEN = secrets.token_hex(32)
# Set after the drop-ins on purpose: drop-in 30's role still finds the hub's admins.
# An authenticator with admin_groups, as eohub's have: greta is an admin by her group.
CONFIG = f"""
from jupyterhub.auth import DummyAuthenticator
from traitlets import Set


class GroupAdminsAuthenticator(DummyAuthenticator):
    admin_groups = Set(config=True)


c.JupyterHub.authenticator_class = GroupAdminsAuthenticator
c.DummyAuthenticator.password = {PASSWORD!r}
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"admin"}}
c.GroupAdminsAuthenticator.admin_groups = {{"hub-admins"}}
c.JupyterHub.load_groups = {{"hub-admins": {{"users": ["greta"]}}}}
# A service named like the user alice, allowed to reach the accounting service.
c.JupyterHub.services.append({{"name": "alice", "api_token": {SERVICE_TOKEN!r}}})
c.JupyterHub.load_roles.extend([
    {{"name": "service-alice", "scopes": [{ACCESS!r}], "services": ["alice"]}},
    {{"name": "usage-readers", "scopes": [{READ!r}], "users": ["rita"]}},
    {{"name": "accountants", "scopes": [{ADMIN!r}], "users": ["amy"]}},
    # The test driver seeds nothing itself; the hub admin's token does.
])
"""
NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(hours=3)


@pytest.fixture(scope="module")
def accounting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Accounting]:
    hub: Hub = start_hub(tmp_path_factory.mktemp("hub"), CONFIG)
    try:
        service = Accounting(hub)
        service.wait_ready(timeout=60)
        yield service
    finally:
        hub.process.stop(timeout=20)


@pytest.fixture(scope="module")
def tokens(accounting: Accounting) -> dict[str, str | None]:
    a = accounting
    tokens = {
        "anonymous": None,
        "bogus": "f" * 64,
        "alice": a.user_token("alice"),
        "bob": a.user_token("bob"),
        "carol (PI)": a.user_token("carol"),
        "rita (read)": a.user_token("rita"),
        "amy (admin scope)": a.user_token("amy"),
        "hub admin": a.user_token("admin"),
        "greta (admin group)": a.user_token("greta"),
        # What a single-user server's token holds.
        "hub admin narrowed": a.user_token(
            "admin", ["access:servers!server=admin/", "users:activity!user=admin"]
        ),
        "activity only": a.user_token("admin", ["read:users:activity"]),
        "ingest client": a.hub_token,
        "service alice": SERVICE_TOKEN,
    }
    admin = tokens["hub admin"]
    for name, body in {
        "climate": {"allocation": "month", "pis": ["carol"]},
        "ocean": {"allocation": "month"},
    }.items():
        r = a.call("PUT", f"api/groups/{name}", admin, json=body)
        assert r.status_code in (200, 201), r.text
    events = []
    for user, group in (("alice", "climate"), ("bob", "ocean"), ("carol", "climate")):
        events.append(start_event_json(user=user, server="", started_at=T0, group=group, cpu=1))
        events.append(stop_event_json(user=user, server="", started_at=T0, stopped_at=NOW))
    r = a.call("POST", "api/events", a.hub_token, json={"events": events})
    assert r.status_code == 200, r.text
    samples = [
        {
            "user": u,
            "group": g,
            "bytes": 10**9,
            "measured_at": (NOW - timedelta(hours=1)).isoformat(),
        }
        for u, g in (("alice", "climate"), ("bob", "ocean"))
    ]
    r = a.call("POST", "api/storage", a.hub_token, json={"samples": samples})
    assert r.status_code == 200, r.text
    return tokens


ADMINS = {"amy (admin scope)", "hub admin", "greta (admin group)"}
READERS = {"rita (read)", *ADMINS}
USERS = {"alice", "bob", "carol (PI)", *READERS}
PI = {"carol (PI)"}
WITH_ACCESS = USERS | {"ingest client", "service alice"}
LATER = (NOW + timedelta(days=1)).strftime("%Y-%m-%d")
EARLIER = (NOW - timedelta(days=40)).strftime("%Y-%m-%d")
RANGE = f"from={EARLIER}&to={LATER}"
EVENT = start_event_json(user="dave", server="", started_at=T0, group="climate", cpu=1)
SAMPLE = {"user": "dave", "bytes": 1, "measured_at": (NOW - timedelta(hours=2)).isoformat()}

# (operation, method, path, body, the callers allowed); everybody else gets 403 (the
# pages send anonymous visitors to log in instead).
MATRIX: list[tuple[Op, str, str, Any, set[str]]] = [
    (Op.EVENTS, "POST", "api/events", {"events": [EVENT]}, {"ingest client"}),
    (
        Op.QUOTA_CHECK,
        "POST",
        "api/quota/check",
        {"user": "alice", "group": "climate", "cpu": 1},
        {"ingest client"},
    ),
    (Op.STORAGE, "POST", "api/storage", {"samples": [SAMPLE]}, {"ingest client"}),
    (Op.USAGE, "GET", "api/usage", None, USERS),
    (Op.USAGE, "GET", "api/usage?user=alice", None, {"alice"} | PI | READERS),
    (Op.USAGE, "GET", "api/usage?group=climate", None, PI | READERS),
    (Op.USAGE, "GET", "api/usage?group=ocean", None, READERS),
    (Op.STORAGE_READ, "GET", "api/storage", None, USERS),
    (Op.STORAGE_READ, "GET", "api/storage?user=alice", None, {"alice"} | PI | READERS),
    (Op.STORAGE_READ, "GET", "api/storage?group=climate", None, PI | READERS),
    (Op.STORAGE_READ, "GET", "api/storage?group=ocean", None, READERS),
    # The hub's client reads sessions back for its home page's stop reasons.
    (Op.SESSIONS, "GET", "api/sessions", None, USERS | {"ingest client"}),
    (
        Op.SESSIONS,
        "GET",
        "api/sessions?user=bob",
        None,
        {"bob"} | PI | READERS | {"ingest client"},
    ),
    (Op.SESSIONS, "GET", "api/sessions?group=climate", None, PI | READERS | {"ingest client"}),
    (
        Op.SESSIONS,
        "GET",
        "api/sessions?user=bob&group=ocean",
        None,
        {"bob"} | READERS | {"ingest client"},
    ),
    (Op.GROUPS, "GET", "api/groups", None, USERS),
    (Op.GROUP, "GET", "api/groups/climate", None, PI | READERS),
    (Op.GROUP, "GET", "api/groups/ocean", None, READERS),
    (Op.CHANGE_GROUP, "PUT", "api/groups/ocean", {"allocation": "month"}, ADMINS),
    (Op.EXPORT_SESSIONS, "GET", f"api/export/sessions.csv?{RANGE}", None, PI | READERS),
    (Op.EXPORT_SESSIONS, "GET", f"api/export/sessions.csv?group=ocean&{RANGE}", None, READERS),
    (Op.EXPORT_USAGE, "GET", f"api/export/usage.csv?group=climate&{RANGE}", None, PI | READERS),
    (Op.EXPORT_SACCT, "GET", f"api/export/sacct.txt?{RANGE}", None, PI | READERS),
    (Op.EXPORT_STORAGE, "GET", f"api/export/storage.json?{RANGE}", None, PI | READERS),
    (Op.EXPORT_STORAGE, "GET", f"api/export/storage.json?group=ocean&{RANGE}", None, READERS),
    (Op.METRICS, "GET", "metrics", None, READERS),
    (Op.WHOAMI, "GET", "api/me", None, WITH_ACCESS),
    (Op.PAGE_USAGE, "GET", "usage", None, USERS),
    (Op.PAGE_GROUPS, "GET", "groups", None, USERS),
    (Op.PAGE_GROUPS, "GET", "groups?group=climate", None, PI | READERS),
    (Op.PAGE_ALL, "GET", "all", None, READERS),
    # The stop's confirmation page, for alice's (climate) and bob's (ocean) closed sessions.
    (Op.STOP_SERVER, "GET", "groups/stop?session=1", None, PI | ADMINS),
    (Op.STOP_SERVER, "GET", "groups/stop?session=2", None, ADMINS),
]


def test_every_operation_is_in_the_matrix() -> None:
    assert {row[0] for row in MATRIX} == set(Op)


@pytest.mark.hub
def test_every_caller_at_every_endpoint(
    accounting: Accounting, tokens: dict[str, str | None]
) -> None:
    wrong = []
    for _, method, path, body, allowed in MATRIX:
        page = not path.startswith(("api/", "metrics"))
        for caller, token in tokens.items():
            r = accounting.call(method, path, token, json=body, allow_redirects=False)
            if caller in allowed:
                ok = r.status_code in (200, 201)
            elif page and token in (None, "f" * 64):
                ok = r.status_code == 302 and "/oauth2/authorize" in r.headers["Location"]
            elif path.startswith("groups/stop") and caller in PI:
                # A PI asking about another group's session gets the answer for one
                # that does not exist: the stop page never tells which sessions exist.
                ok = r.status_code == 404
            else:
                ok = r.status_code == 403
            if not ok:
                wrong.append(f"{caller:20} {method} {path}: {r.status_code} {r.text[:80]!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.hub
def test_a_pi_sees_exactly_their_groups_whatever_the_query(
    accounting: Accounting, tokens: dict[str, str | None]
) -> None:
    carol = tokens["carol (PI)"]

    def get(path: str) -> requests.Response:
        r = accounting.call("GET", path, carol)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
        return r

    usage = get(f"api/usage?group=climate&by=user&{RANGE}").json()["usage"]
    assert usage
    assert {row["group"] for row in usage} == {"climate"}
    # (dave's session in climate comes from the matrix's ingest, when it ran first)
    assert {"alice", "carol"} <= {row["user"] for row in usage} <= {"alice", "carol", "dave"}
    # bob is in ocean only: asking for him gives none of his rows
    assert get(f"api/usage?user=bob&{RANGE}").json()["usage"] == []
    assert get("api/sessions?user=bob").json()["sessions"] == []
    climate = get("api/sessions?group=climate").json()["sessions"]
    assert {"alice", "carol"} <= {s["user"] for s in climate} <= {"alice", "carol", "dave"}
    assert [g["name"] for g in get("api/groups").json()["groups"]] == ["climate"]
    for export in ("sessions.csv", "usage.csv", "sacct.txt", "storage.json"):
        text = get(f"api/export/{export}?{RANGE}").text
        assert "alice" in text, export
        assert "bob" not in text, f"{export}:\n{text}"
        assert "ocean" not in text, f"{export}:\n{text}"
    for path in (
        "api/usage?group=ocean",
        "api/sessions?user=bob&group=ocean",
        "api/export/usage.csv?group=ocean",
        "api/groups/ocean",
    ):
        assert accounting.call("GET", path, carol).status_code == 403, path


@pytest.mark.hub
def test_a_user_asking_for_another_group_sees_only_their_own_rows(
    accounting: Accounting, tokens: dict[str, str | None]
) -> None:
    # The store ORs users and groups; the service must not: bob's ocean sessions stay his.
    r = accounting.call("GET", "api/sessions?user=alice&group=ocean", tokens["alice"])
    assert r.status_code == 200
    assert r.json()["sessions"] == []
    mine = accounting.call("GET", "api/sessions", tokens["alice"]).json()["sessions"]
    assert {s["user"] for s in mine} == {"alice"}


@pytest.mark.hub
def test_a_service_named_like_a_user_reads_nothing_of_theirs(
    accounting: Accounting, tokens: dict[str, str | None]
) -> None:
    me = accounting.call("GET", "api/me", SERVICE_TOKEN).json()
    assert me == {
        "name": "alice",
        "kind": "service",
        "admin": False,
        "reads_all": False,
        "pi_of": [],
    }
    for path in ("api/usage", "api/usage?user=alice", "api/sessions?user=alice", "usage"):
        assert accounting.call("GET", path, SERVICE_TOKEN).status_code == 403, path


@pytest.mark.hub
def test_the_cookie_needs_the_xsrf_token_to_change_anything(
    accounting: Accounting, tokens: dict[str, str | None]
) -> None:
    admin = tokens["hub admin"]
    session = accounting.browser_login("admin", PASSWORD)
    me = session.get(accounting.base + "api/me", timeout=10).json()
    assert me["name"] == "admin"
    assert me["admin"], me  # the pages' OAuth token carries the admin scope
    url = accounting.base + "api/groups/ocean"
    before = accounting.call("GET", "api/groups/ocean", admin).json()
    forged = {"display_name": "forged", "allocation": "year"}
    attempts: list[dict[str, Any]] = [
        {"json": forged},
        {"data": json.dumps(forged), "headers": {"Content-Type": "text/plain"}},
        {"data": forged},  # application/x-www-form-urlencoded
        {"json": forged, "headers": {"X-XSRFToken": "not-the-token"}},
        {
            "json": forged,
            "headers": {
                "Origin": "http://evil.example",
                "Sec-Fetch-Site": "cross-site",
                "Sec-Fetch-Mode": "no-cors",
            },
        },
    ]
    for kwargs in attempts:
        for method in ("PUT", "POST", "DELETE"):
            r = session.request(method, url, timeout=10, **kwargs)
            assert r.status_code == 403, f"{method} {kwargs}: {r.status_code} {r.text}"
    r = session.post(accounting.base + "api/events", json={"events": [EVENT]}, timeout=10)
    assert r.status_code == 403
    assert accounting.call("GET", "api/groups/ocean", admin).json() == before

    # With the _xsrf cookie's value echoed, as the pages' own scripts would send it.
    xsrf = accounting.xsrf(session)
    page = session.get(accounting.base + "usage", timeout=10)
    assert f'name="eohub-xsrf" content="{xsrf}"' in page.text
    r = session.put(url, json={"display_name": "Ocean"}, headers={"X-XSRFToken": xsrf}, timeout=10)
    assert r.status_code == 200, r.text
    assert accounting.call("GET", "api/groups/ocean", admin).json()["display_name"] == "Ocean"
    # A token in the header needs no XSRF token, as in JupyterHub.
    r = accounting.call("PUT", "api/groups/ocean", admin, json={"display_name": "Ocean 2"})
    assert r.status_code == 200, r.text


@pytest.mark.hub
def test_an_ordinary_users_cookie_cannot_change_groups_even_with_xsrf(
    accounting: Accounting, tokens: dict[str, str | None]
) -> None:
    session = accounting.browser_login("alice", PASSWORD)
    xsrf = accounting.xsrf(session)
    r = session.put(
        accounting.base + "api/groups/ocean",
        json={"display_name": "mine"},
        headers={"X-XSRFToken": xsrf},
        timeout=10,
    )
    assert r.status_code == 403, r.text
    assert "admin" in r.json()["message"]


@pytest.mark.hub
def test_a_token_sent_in_the_query_string_is_never_logged(accounting: Accounting) -> None:
    secret = secrets.token_hex(16)
    for path in (f"api/usage?token={secret}", f"api/groups/nope?token={secret}"):
        assert accounting.call("GET", path).status_code == 403
    assert accounting.call("GET", f"api/groups/%00?token={secret}", SERVICE_TOKEN).status_code in (
        400,
        403,
    )
    log = (accounting.hub.workdir / "jupyterhub.log").read_text()
    assert "api/usage" in log  # the refusals were logged, by their path
    assert secret not in log
