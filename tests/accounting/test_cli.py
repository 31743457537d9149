"""The ``eohub-accounting`` command: upgrade-db, the outdated-schema refusal, exports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from eohub.adapters.accounting_db import AccountingStore, create_engine_for
from eohub.adapters.accounting_db.schema import current_revision, head_revision
from eohub.domain.accounting.events import parse_batch, start_event_json, stop_event_json
from eohub.domain.accounting.periods import Allocation
from tests.support.accounting import Clock, fresh_store
from tests.support.databases import postgres_database

COMMAND = [sys.executable, "-m", "eohub.accounting"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    return subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_upgrade_db_creates_and_reports_the_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    result = run("upgrade-db", f"--db-url={url}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"revision {head_revision()}" in result.stderr
    assert url.startswith("sqlite:////")  # an absolute path: the log keeps all four slashes
    assert f": {url}\n" in result.stderr
    assert current_revision(create_engine_for(url)) == head_revision()


def _with_password(url: str) -> str:
    """``url`` with a password; the test server trusts loopback and ignores it."""
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


# "@" and ":" percent-encoded, as SQLAlchemy URLs need; none of it may reach a log.
PASSWORD = "Db%40pass%3Aw0rd-42"


def test_upgrade_db_logs_the_url_without_its_password(tmp_path: Path) -> None:
    with postgres_database() as plain:
        url = _with_password(plain)
        result = run("upgrade-db", f"--db-url={url}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert plain.replace("postgres@", "postgres:***@") in result.stderr
        assert "w0rd-42" not in result.stderr


def test_the_service_logs_the_url_without_its_password(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    env["JUPYTERHUB_API_TOKEN"] = "unused"
    env["JUPYTERHUB_API_URL"] = "http://127.0.0.1:9/hub/api"  # no hub: the loops just warn
    with postgres_database() as plain:
        proc = subprocess.Popen(
            [*COMMAND, f"--db-url={_with_password(plain)}", f"--url=http://127.0.0.1:{port}"],
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
    log = "".join(lines)
    listening = [line for line in lines if "listening on" in line]
    assert listening, log
    assert f"(database {plain.replace('postgres@', 'postgres:***@')})" in listening[0], log
    assert "w0rd-42" not in log


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


def _seed(url: str) -> AccountingStore:
    store = fresh_store(url, Clock(datetime(2026, 3, 15, tzinfo=UTC)))
    store.put_group("climate", allocation=Allocation.parse("month"))
    events = []
    for i in range(30):
        at = datetime(2026, 2, 1, tzinfo=UTC) + timedelta(hours=7 * i)
        events.append(
            start_event_json(
                user=f"u{i % 4}", server="", started_at=at, group="climate", cpu=0.25, gpus=i % 2
            )
        )
        events.append(
            stop_event_json(
                user=f"u{i % 4}", server="", started_at=at, stopped_at=at + timedelta(hours=2)
            )
        )
    store.ingest(parse_batch({"events": events}))
    return store


def test_export_writes_sacct_and_csv_files(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    _seed(url).engine.dispose()
    out = tmp_path / "feb.log"
    args = [f"--db-url={url}", "--from=2026-02-01", "--to=2026-03-01"]
    result = run(
        "export", "--kind=sacct.txt", f"--output={out}", "--cluster=eo1", *args, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 30
    assert all(len(line.split("|")) == 26 for line in lines)
    assert lines[0].split("|")[2] == "eo1"
    assert sum("gres/gpu=1" in line for line in lines) == 15
    again = tmp_path / "again.log"
    run("export", "--kind=sacct.txt", f"--output={again}", "--cluster=eo1", *args, cwd=tmp_path)
    assert again.read_text() == out.read_text()  # stable job ids across re-exports

    csv_out = run("export", "--kind=sessions.csv", *args, cwd=tmp_path)
    assert csv_out.returncode == 0, csv_out.stderr
    rows = csv_out.stdout.splitlines()
    assert rows[0].startswith("id,user,server,group")
    assert len(rows) == 31
    usage = run("export", "--kind=usage.csv", *args, cwd=tmp_path)
    assert "climate" in usage.stdout


def test_export_rejects_bad_arguments_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'y.sqlite'}"
    bad_kind = run(
        "export",
        f"--db-url={url}",
        "--kind=pdf",
        "--from=2026-01-01",
        "--to=2026-02-01",
        cwd=tmp_path,
    )
    assert bad_kind.returncode == 2
    assert "Unknown --kind 'pdf'" in bad_kind.stderr
    bad_date = run(
        "export", f"--db-url={url}", "--from=last week", "--to=2026-02-01", cwd=tmp_path
    )
    assert bad_date.returncode == 2
    assert "--from and --to must be dates" in bad_date.stderr
