"""The accounting commands' shared base: the database URL as logged, and ``upgrade-db``.

The logged URL keeps SQLite paths intact and never shows a password.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eohub.accounting.database_app import DEFAULT_DB_URL, DatabaseApp
from eohub.adapters.accounting_db import create_engine_for
from eohub.adapters.accounting_db.schema import current_revision, head_revision
from tests.accounting.cli_support import run, with_password
from tests.support.databases import postgres_database

UNPARSEABLE = "(a database URL that does not parse)"

# (URL as configured, as logged, the secret that must not appear or "")
CASES = [
    # A relative file is shown by its absolute path (the tests run in /, see below).
    ("sqlite:///eohub-accounting.sqlite", "sqlite:////eohub-accounting.sqlite", ""),
    ("sqlite:///data/acct.sqlite", "sqlite:////data/acct.sqlite", ""),
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
def test_the_logged_url(
    url: str, logged: str, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir("/")
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


# -- upgrade-db ------------------------------------------------------------


def test_upgrade_db_creates_and_reports_the_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    result = run("upgrade-db", f"--db-url={url}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"revision {head_revision()}" in result.stderr
    assert url.startswith("sqlite:////")  # an absolute path: the log keeps all four slashes
    assert f": {url}\n" in result.stderr
    assert current_revision(create_engine_for(url)) == head_revision()


def test_upgrade_db_logs_the_url_without_its_password(tmp_path: Path) -> None:
    with postgres_database() as plain:
        url = with_password(plain)
        result = run("upgrade-db", f"--db-url={url}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert plain.replace("postgres@", "postgres:***@") in result.stderr
        assert "w0rd-42" not in result.stderr


# -- the database URL and the config file ----------------------------------------------


def test_the_url_defaults_to_the_environment_then_a_local_sqlite_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EOHUB_ACCOUNTING_DB_URL", raising=False)
    assert DatabaseApp().db_url == DEFAULT_DB_URL == "sqlite:///eohub-accounting.sqlite"
    monkeypatch.setenv("EOHUB_ACCOUNTING_DB_URL", "postgresql+psycopg://acct@db/accounting")
    assert DatabaseApp().db_url == "postgresql+psycopg://acct@db/accounting"


def test_a_missing_default_config_file_is_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EOHUB_ACCOUNTING_CONFIG", raising=False)
    app = DatabaseApp()
    app.initialize(["--db-url=sqlite://"])
    assert app.config_file == "eohub_accounting_config.py"
    assert app.db_url == "sqlite://"


def test_the_config_file_is_loaded_and_the_command_line_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EOHUB_ACCOUNTING_CONFIG", raising=False)
    (tmp_path / "eohub_accounting_config.py").write_text(
        'c.DatabaseApp.db_url = "sqlite:///from-file.sqlite"\n'
    )
    app = DatabaseApp()
    app.initialize([])
    assert app.db_url == "sqlite:///from-file.sqlite"
    again = DatabaseApp()
    again.initialize(["--db-url=sqlite:///from-cli.sqlite"])
    assert again.db_url == "sqlite:///from-cli.sqlite"


@pytest.mark.parametrize("how", ["environment", "option"])
def test_a_missing_named_config_file_stops_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EOHUB_ACCOUNTING_CONFIG", raising=False)
    missing = str(tmp_path / "nowhere.py")
    argv = [f"--config={missing}"] if how == "option" else []
    if how == "environment":
        monkeypatch.setenv("EOHUB_ACCOUNTING_CONFIG", missing)
    with pytest.raises(SystemExit) as e:
        DatabaseApp().initialize(argv)
    assert e.value.code == 1
    # The application's own log handler (stderr) shows it, as a user sees it.
    assert f"The config file {missing} does not exist" in capsys.readouterr().err
