"""The ``eohub-accounting`` service application: its traits, its context, its start-up."""

from __future__ import annotations

import logging
import logging.handlers
import os
import re
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from traitlets import TraitError
from traitlets.config import Config

from eohub.accounting.app import AccountingService
from eohub.accounting.database_app import UpgradeDBApp
from eohub.accounting.service.context import CONTEXT_SETTING, LoopSettings
from eohub.adapters.accounting_db import create_engine_for
from eohub.domain.accounting.enforcement import Mode
from eohub.domain.accounting.ledger import GIB
from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.accounting.storage_quota import StoragePolicy
from tests.accounting.cli_support import COMMAND, run, with_password
from tests.support.accounting import fresh_store
from tests.support.databases import postgres_database


def test_hub_admins_are_admins_is_deprecated_and_says_what_to_do() -> None:
    service = AccountingService()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    service.log.addHandler(handler)
    try:
        service.hub_admins_are_admins = True
    finally:
        service.log.removeHandler(handler)
    (record,) = records
    assert record.levelno == logging.WARNING
    assert "grants nothing" in record.getMessage()
    assert "eohub-accounting-admins" in record.getMessage()


def test_the_application_builds_one_context_from_its_traits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "unused")
    service = AccountingService(
        db_url="sqlite://",
        writer_process=False,
        service_prefix="/services/acct/",
        max_clock_skew=90,
        enforcement="STOP",
        reconcile_interval=0,
        enforcement_interval=15,
        authenticate_metrics=False,
    )
    service.init_store()
    try:
        context = service.build_context()
        assert context.store is service.store
        assert (context.prefix, context.max_clock_skew) == ("/services/acct/", timedelta(0, 90))
        assert context.authenticate_metrics is False
        assert (context.loops.enforcement, context.loops.interval) == (Mode.STOP, 15)
        assert context.enforcer is not None
        assert context.enforcer.store is service.store
        # Session limits are enforced whatever the budget enforcement mode says.
        assert context.lifetimes is not None
        assert context.lifetimes.hub is context.hub
        assert context.lifetimes.warning_period == timedelta(seconds=900)
        assert context.lifetime_warnings() == {}
        app = service.make_app(context)
        assert app.settings[CONTEXT_SETTING] is context
        assert "eohub_service" not in app.settings
    finally:
        service.store.close()
        service.engine.dispose()


def test_the_loop_settings_carry_the_traits() -> None:
    service = AccountingService(
        reconcile_interval=30,
        enforcement="Warn",
        enforcement_grace_period=120,
        enforcement_interval=45,
        reconcile_fallback_group="general",
        reconcile_default_cpu=0.5,
        reconcile_default_memory="2G",
        reconcile_default_gpus=1,
        reconcile_open_after=10,
        hub_api_concurrency=3,
        hub_api_timeout=7.5,
        session_limits_enforcement=False,
        max_duration_warning=60,
    )
    assert service.loop_settings() == LoopSettings(
        reconcile_interval=30,
        enforcement=Mode.WARN,
        grace_period=120,
        enforcement_interval=45,
        fallback_group="general",
        default_cpu=0.5,
        default_memory_bytes=2 * 1024**3,
        default_gpus=1,
        open_after=10,
        hub_api_concurrency=3,
        hub_api_timeout=7.5,
        session_limits=False,
        max_duration_warning=60,
    )


def test_session_limits_are_enforced_by_default_and_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "unused")
    default = AccountingService()
    assert (default.session_limits_enforcement, default.max_duration_warning) == (True, 900)
    assert default.loop_settings().enforcement is Mode.OFF
    assert default.loop_settings().session_limits is True
    for trait in ("session_limits_enforcement", "max_duration_warning"):
        help_text = AccountingService.class_traits()[trait].help
        assert len(help_text) > 80, trait
    assert "launch config" in AccountingService.class_traits()["session_limits_enforcement"].help
    with pytest.raises(TraitError):
        AccountingService(max_duration_warning=-1)
    service = AccountingService(
        db_url="sqlite://", writer_process=False, session_limits_enforcement=False
    )
    service.init_store()
    try:
        assert service.build_context().lifetimes is None
    finally:
        service.store.close()
        service.engine.dispose()


def test_without_the_hubs_api_the_service_says_once_that_session_limits_cannot_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JUPYTERHUB_API_URL", raising=False)
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    service = AccountingService(db_url="sqlite://", writer_process=False)
    service.init_store()
    try:
        capsys.readouterr()
        context = service.build_context()
        assert (context.hub, context.lifetimes) == (None, None)
    finally:
        service.store.close()
        service.engine.dispose()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert re.match(r"^\[E [-\d]+ [:.\d]+ eohub\.accounting\.service\.workers\] ", lines[0])
    assert (
        lines[0]
        .split("] ", 1)[1]
        .startswith(
            "Session limits (idle limits, maximum durations) and reconcile cannot run without "
            "the hub's API (no hub API URL: set JUPYTERHUB_API_URL)."
        )
    )
    assert "AccountingService.session_limits_enforcement = False" in lines[0]


def test_the_subcommands() -> None:
    assert list(AccountingService.subcommands) == ["upgrade-db", "export"]
    assert AccountingService.subcommands["upgrade-db"][0] is UpgradeDBApp
    assert AccountingService.subcommands["export"][0] == "eohub.accounting.exports.cli.ExportApp"


def test_configured_groups_are_created_at_start_up(capsys: pytest.CaptureFixture[str]) -> None:
    groups = {"climate": {"display_name": "Climate", "allocation": "quarter", "pis": ["carol"]}}
    # An in-memory database is the process's own: the writer process is not used.
    service = AccountingService(db_url="sqlite://", groups=groups)
    service.init_store()
    try:
        assert "writing in the service's own process" in capsys.readouterr().err
        service.init_groups()
        (climate,) = service.store.groups({"climate"})
        assert (climate.display_name, climate.pis) == ("Climate", {"carol"})
        assert climate.allocation.kind.value == "quarter"
    finally:
        service.store.close()
        service.engine.dispose()


def test_a_storage_quota_from_the_config_starts_the_grace_at_start_up(tmp_path: Path) -> None:
    """A quota set by the config at start-up puts a group already over it over, as one
    set through the API does, from the change (the start), not from the sample; the next
    start keeps that time."""
    url = f"sqlite:///{tmp_path / 'acct.sqlite'}"
    measured = datetime.now(UTC) - timedelta(days=2)
    before = fresh_store(url)
    before.put_group("climate")
    before.add_storage_samples([StorageSample("alice", "climate", 3 * GIB, measured)])
    before.engine.dispose()
    groups = {"climate": {"quotas": {"": {"storage_bytes": 2 * GIB}}}}
    since = None
    for _ in range(2):
        service = AccountingService(db_url=url, writer_process=False, groups=groups)
        service.init_store()
        started = datetime.now(UTC)
        try:
            service.init_groups()
            group = service.store.group("climate")
            (standing,) = service.store.standings("alice", group, datetime.now(UTC))
            assert standing.storage_bytes == 3 * GIB
            assert standing.storage_over_since is not None
            assert standing.storage_over_since == (since or standing.storage_over_since)
            assert since is not None or standing.storage_over_since >= started
            since = standing.storage_over_since
        finally:
            service.store.close()
            service.engine.dispose()


def test_the_storage_traits_reach_the_quota_checks() -> None:
    default = AccountingService()
    assert (default.storage_grace, default.storage_warning_fraction) == (259200, 0.9)
    assert default.storage_sample_max_age == 604800
    service = AccountingService(
        db_url="sqlite://",
        writer_process=False,
        storage_grace=0,
        storage_warning_fraction=0,
        storage_sample_max_age=0,
    )
    service.init_store()
    try:
        assert service.build_context().storage == StoragePolicy(timedelta(0), 0.0, timedelta(0))
        assert service.store.storage_sample_max_age == timedelta(0)
    finally:
        service.store.close()
        service.engine.dispose()
    for trait in ("storage_grace", "storage_warning_fraction"):
        assert "launch form" in AccountingService.class_traits()[trait].help, trait


@pytest.mark.parametrize(
    "bad",
    [
        {"storage_grace": -1},
        {"storage_warning_fraction": -0.1},
        {"storage_warning_fraction": 2},
        {"storage_sample_max_age": -1},
    ],
)
def test_bad_storage_traits_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(TraitError):
        AccountingService(**bad)


def test_a_bad_configured_group_stops_start_up_naming_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    service = AccountingService(
        db_url="sqlite://", writer_process=False, groups={"climate": {"allocation": "weekly"}}
    )
    service.init_store()
    try:
        with pytest.raises(SystemExit) as e:
            service.init_groups()
        assert e.value.code == 1
        assert "AccountingService.groups['climate'] is invalid: allocation" in (
            capsys.readouterr().err
        )
    finally:
        service.store.close()
        service.engine.dispose()


def test_a_bad_export_setting_stops_start_up_naming_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The export settings are read once, when the context is built, not per request.
    config = Config({"XDMoDExport": {"export_workers": -1}})
    service = AccountingService(db_url="sqlite://", writer_process=False, config=config)
    service.init_store()
    try:
        with pytest.raises(SystemExit) as e:
            service.build_context()
        assert e.value.code == 1
        err = capsys.readouterr().err
        assert "The XDMoDExport config is invalid" in err
        assert "export_workers" in err
        assert "Traceback" not in err
    finally:
        service.store.close()
        service.engine.dispose()


# -- the command ------------------------------------------------------------


def first_lines(tmp_path: Path, *args: str) -> tuple[str, list[str]]:
    """Start the service with ``args`` in ``tmp_path``; its log up to "listening on"."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "EOHUB_"))}
    env["JUPYTERHUB_API_TOKEN"] = "unused"
    env["JUPYTERHUB_API_URL"] = "http://127.0.0.1:9/hub/api"  # no hub: the loops just warn
    proc = subprocess.Popen(
        [*COMMAND, *args, f"--url=http://127.0.0.1:{port}"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    lines = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "listening on" in line:
                break
    finally:
        proc.terminate()
        lines.extend(proc.communicate(timeout=30)[1].splitlines(keepends=True))
    return "".join(lines), [line for line in lines if "listening on" in line]


def test_the_service_logs_the_url_without_its_password(tmp_path: Path) -> None:
    with postgres_database() as plain:
        log, listening = first_lines(tmp_path, f"--db-url={with_password(plain)}")
    assert listening, log
    assert f"(database {plain.replace('postgres@', 'postgres:***@')})" in listening[0], log
    assert "w0rd-42" not in log


def test_the_services_lines_have_a_time_and_the_database_file_its_real_path(
    tmp_path: Path,
) -> None:
    log, listening = first_lines(tmp_path)  # the default: a SQLite file, relative
    assert listening, log
    real = tmp_path / "eohub-accounting.sqlite"
    assert f"(database sqlite:///{real})" in listening[0], log
    assert real.exists()
    # As the hub's lines: level, date and time, logger.
    stamp = r"^\[I \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} eohub\.accounting\.app\] "
    assert re.match(stamp, listening[0]), listening[0]


def test_start_against_an_outdated_schema_names_the_upgrade_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = create_engine_for(url)
    with engine.begin() as c:
        c.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        c.execute(text("INSERT INTO alembic_version VALUES ('0000')"))
    result = run(f"--db-url={url}", cwd=tmp_path)
    assert result.returncode == 1
    assert "eohub-accounting upgrade-db" in result.stderr
    export = run("export", f"--db-url={url}", "--from=2026-01-01", "--to=2026-02-01", cwd=tmp_path)
    assert export.returncode == 1
    assert "eohub-accounting upgrade-db" in export.stderr


@pytest.mark.parametrize(("group", "warned"), [("unassigned", True), ("climate", False)])
def test_start_up_warns_when_the_unassigned_pi_is_a_groups_name(group: str, warned: bool) -> None:
    # The service's log does not reach the root logger: listen on the module's own.
    kept = logging.handlers.BufferingHandler(100)
    logger = logging.getLogger("eohub.accounting.exports.config")
    logger.addHandler(kept)
    service = AccountingService(
        db_url="sqlite://",
        writer_process=False,
        groups={group: {}},
        reconcile_interval=0,
        session_limits_enforcement=False,
    )
    service.init_store()
    try:
        service.init_groups()
        service.build_context()
    finally:
        logger.removeHandler(kept)
        service.store.close()
        service.engine.dispose()
    found = [r.getMessage() for r in kept.buffer if "storage_unassigned_pi" in r.getMessage()]
    assert len(found) == warned
    assert all("'unassigned' is also the XDMoD PI of group(s) unassigned" in m for m in found)
