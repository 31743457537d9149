"""ServiceLoginScopes: the hub's warning at each login to the service pages is dropped,
and only that one (the real-hub test is pages/test_login_scopes_browser.py)."""

from __future__ import annotations

import logging

import pytest

from eohub.accounting.scopes import ADMIN, INGEST, READ, ServiceLoginScopes

SERVICE = "JupyterHub service eohub-accounting"
IDENTIFY = "read:users:name!user,read:users:groups!user"
ACCESS = "access:services!service=eohub-accounting"


def notice(client: str, requested: str, granted: str, level: int = logging.WARNING) -> bool:
    record = logging.LogRecord(
        "JupyterHub",
        level,
        "auth.py",
        319,
        f"Service {client} requested scopes {requested} for user alice, granting only {granted}.",
        None,
        None,
    )
    return ServiceLoginScopes().filter(record)


@pytest.mark.parametrize(
    ("client", "requested", "granted", "kept"),
    [
        # A user without the admin or read scope: the designed outcome, dropped.
        (SERVICE, f"{ADMIN},{IDENTIFY},{READ},{ACCESS}", f"{IDENTIFY},{ACCESS}", False),
        (SERVICE, f"{ADMIN},{READ}", "[]", False),
        # Something else was refused: kept.
        (SERVICE, f"{ADMIN},{INGEST},{ACCESS}", ACCESS, True),
        (SERVICE, f"{IDENTIFY},{ACCESS}", IDENTIFY, True),
        # Another service's logins are none of eohub's business.
        ("JupyterHub service other", f"{ADMIN},{ACCESS}", ACCESS, True),
        ("Server at /user/alice/", f"{ADMIN},{ACCESS}", ACCESS, True),
    ],
)
def test_only_the_services_expected_notice_is_dropped(
    client: str, requested: str, granted: str, kept: bool
) -> None:
    assert notice(client, requested, granted) is kept


def test_other_records_pass() -> None:
    assert notice(SERVICE, f"{ADMIN},{ACCESS}", ACCESS, level=logging.ERROR) is True
    record = logging.LogRecord(
        "JupyterHub", logging.WARNING, "x", 1, "granting only %s", ("x",), None
    )
    assert ServiceLoginScopes().filter(record) is True
