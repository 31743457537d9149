"""``GET api/storage`` against a real JupyterHub: storage over time, read as usage is.

The callers hold the narrowest tokens that may read: only the service's access scope
(plus the read scope, for the reader). A user reads their own storage (in any group, or
none) and nobody else's; a PI their group's, and a member's in it; a reader everyone's.
A user's space in a group is the sum over the sources it is measured at; a sample older
than the service's ``storage_sample_max_age`` (7 days by default) no longer counts.
A bad parameter is a 400 that names it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from eohub.accounting.scopes import ACCESS, READ
from eohub.domain.accounting.events import format_time
from tests.accounting.service_support import Accounting
from tests.support.hub import Hub, start_hub

pytestmark = pytest.mark.hub

CONFIG = f"""
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {{"admin"}}
c.JupyterHub.load_roles.append(
    {{"name": "storage-readers", "scopes": [{READ!r}], "users": ["rita"]}}
)
"""
# Whole hours, so that the points of a daily series fall between the samples.
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
DAY = timedelta(days=1)
GIB = 2**30
HOME, SCRATCH = "/export/home", "/export/scratch"
# (user, group, source, GiB, files, days ago): "" is space charged to no group, or a
# source not named. alice's home and scratch are measured in one round two days ago;
# erin's sample, 10 days old, stopped counting 3 days ago.
SAMPLES = [
    ("alice", "climate", HOME, 2, 100, 5),
    ("alice", "climate", HOME, 3, 150, 2),
    ("alice", "climate", SCRATCH, 1, 20, 2),
    ("alice", "", "", 1, 10, 3),
    ("carol", "climate", "", 4, 40, 4),
    ("dave", "climate", "pvc:hub/claim-dave", 5, 0, 1),
    ("erin", "climate", HOME, 6, 60, 10),
    ("bob", "ocean", HOME, 7, 70, 3),
]


@pytest.fixture(scope="module")
def accounting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Accounting]:
    hub: Hub = start_hub(tmp_path_factory.mktemp("hub"), CONFIG)
    try:
        service = Accounting(hub)
        service.wait_ready(timeout=60)
        admin = service.user_token("admin")
        for name, body in {"climate": {"pis": ["carol"]}, "ocean": {}}.items():
            r = service.call("PUT", f"api/groups/{name}", admin, json=body)
            assert r.status_code in (200, 201), r.text
        samples = [
            {
                "user": user,
                "group": group,
                "bytes": gib * GIB,
                "measured_at": format_time(NOW - days * DAY),
                **({"file_count": files} if files else {}),
                **({"source": source} if source else {}),
            }
            for user, group, source, gib, files, days in SAMPLES
        ]
        r = service.call("POST", "api/storage", service.hub_token, json={"samples": samples})
        assert r.status_code == 200, r.text
        yield service
    finally:
        hub.process.stop(timeout=20)


@pytest.fixture(scope="module")
def tokens(accounting: Accounting) -> dict[str, str]:
    return {
        name: accounting.user_token(name, scopes)
        for name, scopes in {
            "alice": [ACCESS],
            "carol": [ACCESS],
            "rita": [ACCESS, READ],
        }.items()
    }


RANGE = {
    "start": format_time(NOW - 7 * DAY + timedelta(hours=12)),
    "end": format_time(NOW + DAY),
    "step": 86400,
}


def get(accounting: Accounting, token: str, **query: Any) -> requests.Response:
    return accounting.call("GET", "api/storage", token, params={**RANGE, **query})


def series_of(body: dict[str, Any]) -> dict[tuple[str | None, str | None], list[int]]:
    return {(s["user"], s["group"]): s["bytes"] for s in body["series"]}


def test_a_user_reads_their_own_storage_per_group(
    accounting: Accounting, tokens: dict[str, str]
) -> None:
    r = get(accounting, tokens["alice"])
    assert r.status_code == 200, r.text
    body = r.json()
    # Points at 12:00 each day from 7 days ago (one sample is 5 days ago at the hour),
    # then now.
    assert len(body["points"]) == 8
    assert body["step"] == 86400
    # Two days ago her home (3 GiB) and scratch (1 GiB) were measured: both count.
    assert series_of(body) == {
        (None, "climate"): [0, 0, 2 * GIB, 2 * GIB, 2 * GIB, 4 * GIB, 4 * GIB, 4 * GIB],
        (None, None): [0, 0, 0, 0, GIB, GIB, GIB, GIB],
    }
    assert body["total"][-1] == 5 * GIB
    assert [
        (h["user"], h["group"], h["source"], h["bytes"], h["file_count"]) for h in body["latest"]
    ] == [
        ("alice", None, "", GIB, 10),
        ("alice", "climate", HOME, 3 * GIB, 150),
        ("alice", "climate", SCRATCH, GIB, 20),
    ]
    assert body["latest"][1]["measured_at"] == format_time(NOW - 2 * DAY)


@pytest.mark.parametrize("query", [{"user": "bob"}, {"group": "climate"}, {"group": "ocean"}])
def test_a_user_cannot_read_anyone_elses_storage(
    accounting: Accounting, tokens: dict[str, str], query: dict[str, str]
) -> None:
    r = get(accounting, tokens["alice"], **query)
    assert r.status_code == 403, r.text
    assert "bob" not in r.text
    assert "7516192768" not in r.text


def test_a_pi_reads_their_groups_storage_and_its_members(
    accounting: Accounting, tokens: dict[str, str]
) -> None:
    body = get(accounting, tokens["carol"], group="climate", by="user").json()
    series = series_of(body)
    assert {user for user, _ in series} == {"alice", "carol", "dave", "erin"}
    # erin's sample of 10 days ago counts until it is 7 days old, then no longer.
    assert series[("erin", "climate")] == [6 * GIB] * 4 + [0] * 4
    assert body["total"][-1] == (3 + 1 + 4 + 5) * GIB
    assert [(h["user"], h["source"], h["bytes"], h["file_count"]) for h in body["latest"]] == [
        ("alice", HOME, 3 * GIB, 150),
        ("alice", SCRATCH, GIB, 20),
        ("carol", "", 4 * GIB, 40),
        ("dave", "pvc:hub/claim-dave", 5 * GIB, 0),
    ]
    # One member: only their storage in the PI's groups, not what they hold elsewhere.
    member = get(accounting, tokens["carol"], user="alice").json()
    assert set(series_of(member)) == {(None, "climate")}
    assert get(accounting, tokens["carol"], group="ocean").status_code == 403


def test_a_reader_reads_every_group(accounting: Accounting, tokens: dict[str, str]) -> None:
    body = get(accounting, tokens["rita"]).json()
    assert set(series_of(body)) == {(None, "climate"), (None, None), (None, "ocean")}
    assert body["total"][-1] == (3 + 1 + 1 + 4 + 5 + 7) * GIB
    assert get(accounting, tokens["rita"], group="ocean").json()["total"][-1] == 7 * GIB


def test_the_default_range_is_the_last_31_days_up_to_now(
    accounting: Accounting, tokens: dict[str, str]
) -> None:
    r = accounting.call("GET", "api/storage", tokens["alice"])
    body = r.json()
    assert body["step"] == 86400
    assert len(body["points"]) == 32  # 31 midnights, and now
    assert body["total"][-1] == 5 * GIB


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"end": "2026-13-01"}, "end"),
        ({"start": format_time(NOW), "end": format_time(NOW - DAY)}, "end"),
        ({"step": "59"}, "step"),
        ({"step": "1.5"}, "step"),
        ({"step": "3600", "start": "2020-01-01"}, "step"),  # too many points
        ({"by": "member"}, "by"),
        ({"user": "x" * 256}, "user"),
        ({"group": ""}, "group"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(
    accounting: Accounting, tokens: dict[str, str], query: dict[str, str], field: str
) -> None:
    r = get(accounting, tokens["rita"], **query)
    assert r.status_code == 400, r.text
    assert field in r.json()["errors"], r.text
