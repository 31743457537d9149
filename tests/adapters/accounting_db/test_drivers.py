"""The driver behind a database URL: a bare ``postgresql://`` takes psycopg 3 or psycopg2,
whichever is installed; a driver that is not installed is refused with what to install.

"Not installed" is real where it can be (pg8000 and mysqlclient are not in the test
environment); psycopg and psycopg2 are both installed, so a test hides one by making its
import fail (``sys.modules[name] = None``), as it fails in an image without it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from eohub.adapters.accounting_db.drivers import DriverNotInstalledError, installed_driver
from eohub.adapters.accounting_db.schema import (
    create_engine_for,
    current_revision,
    ensure_schema,
    head_revision,
)
from tests.support.databases import postgres_database

SECRET = "s3cretpw"


def _hide(monkeypatch: pytest.MonkeyPatch, modules: tuple[str, ...]) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)  # import name -> ImportError


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://acct@db/accounting",
        "postgresql+psycopg2://acct@db/accounting",
        "mysql+pymysql://acct@db/accounting?charset=utf8mb4",
        "sqlite:///eohub-accounting.sqlite",
        "sqlite://",
    ],
)
def test_a_url_naming_an_installed_driver_is_kept(url: str) -> None:
    assert installed_driver(make_url(url)) == make_url(url)


# (modules hidden, the driver a bare postgresql:// URL gets)
BARE = [
    ((), "psycopg"),
    (("psycopg",), "psycopg2"),
    (("psycopg2",), "psycopg"),
]


@pytest.mark.parametrize(("hidden", "driver"), BARE, ids=["both", "psycopg2 only", "psycopg only"])
def test_a_bare_postgresql_url_takes_the_installed_driver_psycopg_first(
    monkeypatch: pytest.MonkeyPatch, hidden: tuple[str, ...], driver: str
) -> None:
    _hide(monkeypatch, hidden)
    url = f"postgresql://acct:{SECRET}@db:5433/accounting?sslmode=require"
    chosen = installed_driver(make_url(url))
    assert chosen == make_url(url.replace("postgresql:", f"postgresql+{driver}:"))


# (URL, modules hidden, what the message must name)
MISSING = [
    ("postgresql+psycopg2://acct:{pw}@db/acct", ("psycopg2",), ["psycopg2", "psycopg2-binary"]),
    ("postgresql+psycopg://acct:{pw}@db/acct", ("psycopg",), ["psycopg", "'psycopg[binary]'"]),
    ("postgresql+pg8000://acct:{pw}@db/acct", (), ["postgresql driver pg8000", "pip install"]),
    ("mysql://acct:{pw}@db/acct", (), ["mysql driver mysqldb", "mysqlclient", "PyMySQL"]),
    (
        "postgresql://acct:{pw}@db/acct",
        ("psycopg", "psycopg2"),
        ["names no driver", "'psycopg[binary]'", "psycopg2-binary"],
    ),
]


@pytest.mark.parametrize(
    ("url", "hidden", "named"),
    MISSING,
    ids=["psycopg2", "psycopg", "pg8000", "bare mysql", "bare postgresql, neither"],
)
def test_a_driver_that_is_not_installed_is_named_with_what_to_install(
    monkeypatch: pytest.MonkeyPatch, url: str, hidden: tuple[str, ...], named: list[str]
) -> None:
    _hide(monkeypatch, hidden)
    with pytest.raises(DriverNotInstalledError) as caught:
        create_engine_for(url.format(pw=SECRET))
    message = str(caught.value)
    for words in named:
        assert words in message
    assert SECRET not in message
    assert isinstance(caught.value, ValueError)  # refused like a malformed URL
    # No ImportError traceback above the message.
    error = caught.value
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


@pytest.mark.parametrize("url", ["postgres://acct@db/acct", "postgresql+nosuch://acct@db/acct"])
def test_a_scheme_sqlalchemy_does_not_know_is_refused_clearly(url: str) -> None:
    with pytest.raises(ValueError, match="names no database and driver SQLAlchemy knows"):
        create_engine_for(url)


def test_a_bare_url_with_only_psycopg2_installed_opens_the_store(
    monkeypatch: pytest.MonkeyPatch, postgres_urls: dict[str, str]
) -> None:
    _hide(monkeypatch, ("psycopg",))
    bare = make_url(postgres_urls["psycopg2"]).set(drivername="postgresql")
    engine = create_engine_for(bare.render_as_string(hide_password=False))
    try:
        assert engine.dialect.driver == "psycopg2"
        ensure_schema(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


# The command as an admin runs it in a hub image that has psycopg2 and not psycopg 3.
WITHOUT_PSYCOPG = (
    "import sys; sys.modules['psycopg'] = None; "
    "from eohub.accounting.app import main; main(sys.argv[1:])"
)


def _upgrade_db(url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG, "upgrade-db", f"--db-url={url}"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_upgrade_db_on_a_bare_url_uses_psycopg2_when_psycopg_is_missing(tmp_path: Path) -> None:
    with postgres_database() as url:
        bare = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        result = _upgrade_db(bare, tmp_path)
        assert result.returncode == 0, result.stderr
        assert "postgresql:// names no driver: using psycopg2" in result.stderr
        engine = create_engine_for(url)
        assert current_revision(engine) == head_revision()
        engine.dispose()


def test_upgrade_db_names_the_missing_driver_without_a_traceback(tmp_path: Path) -> None:
    result = _upgrade_db(f"postgresql+psycopg://acct:{SECRET}@127.0.0.1:1/acct", tmp_path)
    assert result.returncode == 1
    assert "driver psycopg, which is not installed" in result.stderr
    assert "pip install 'psycopg[binary]' (the extra eohub[postgres])" in result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr
