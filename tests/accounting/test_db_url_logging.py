"""The database URL as the service logs it: SQLite paths intact, passwords never shown."""

from __future__ import annotations

import pytest

from eohub.accounting.database_app import DatabaseApp
from eohub.adapters.accounting_db import create_engine_for

UNPARSEABLE = "(a database URL that does not parse)"

# (URL as configured, as logged, the secret that must not appear or "")
CASES = [
    ("sqlite:///eohub-accounting.sqlite", "sqlite:///eohub-accounting.sqlite", ""),
    ("sqlite:////srv/hub/accounting.sqlite", "sqlite:////srv/hub/accounting.sqlite", ""),
    ("sqlite:///:memory:", "sqlite:///:memory:", ""),
    ("sqlite://", "sqlite://", ""),
    (
        "postgresql+psycopg://acct:s3cretpw@db.example.org:5432/accounting",
        "postgresql+psycopg://acct:***@db.example.org:5432/accounting",
        "s3cretpw",
    ),
    (
        "mysql+pymysql://acct:s3cretpw@db/accounting?charset=utf8mb4&ssl_ca=/etc/ca.pem",
        "mysql+pymysql://acct:***@db/accounting?charset=utf8mb4&ssl_ca=%2Fetc%2Fca.pem",
        "s3cretpw",
    ),
    # A password with @ and :, percent-encoded as SQLAlchemy URLs require.
    (
        "postgresql+psycopg://acct:p%40ss%3Aw0rd@db/accounting",
        "postgresql+psycopg://acct:***@db/accounting",
        "w0rd",
    ),
    # The same, not encoded: it does not parse as meant, and is not echoed.
    ("postgresql+psycopg://acct:p@ss:w0rd@db/accounting", UNPARSEABLE, "w0rd"),
    ("postgresql+psycopg://acct:p@ssw0rd@db/accounting", UNPARSEABLE, "ssw0rd"),
    # libpq also takes a password in the query string.
    (
        "postgresql+psycopg://acct@db/accounting?password=s3cretpw&sslmode=require",
        "postgresql+psycopg://acct@db/accounting?password=%2A%2A%2A&sslmode=require",
        "s3cretpw",
    ),
    ("not a url s3cretpw", UNPARSEABLE, "s3cretpw"),
]


@pytest.mark.parametrize(("url", "logged", "secret"), CASES)
def test_the_logged_url(url: str, logged: str, secret: str) -> None:
    shown = DatabaseApp(db_url=url).safe_url()
    assert shown == logged
    if secret:
        assert secret not in shown


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://acct:p@ss:w0rd@db/accounting",
        "postgresql+psycopg://acct:p@ssw0rd@db/accounting",
    ],
)
def test_an_unencoded_password_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ValueError, match="percent-encode") as e:
        create_engine_for(url)
    assert "w0rd" not in str(e.value)
