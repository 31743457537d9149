"""A service that cannot start fails loudly, with the reason and its log tail."""

import sys
import time
from pathlib import Path

import pytest

from tests.support import databases
from tests.support.process import ServiceStartError, free_port, port_open, start_process


def test_a_process_that_dies_reports_its_log_tail(tmp_path: Path) -> None:
    proc = start_process(
        "broken-service",
        [sys.executable, "-c", "import sys; print('bad config: no such key'); sys.exit(3)"],
        log_path=tmp_path / "broken.log",
    )
    with pytest.raises(
        ServiceStartError, match=r"(?s)exited with code 3.*bad config: no such key"
    ):
        proc.wait_until(lambda: False, timeout=10, what="ready")


def test_a_process_that_never_answers_is_stopped_and_reported(tmp_path: Path) -> None:
    proc = start_process(
        "silent-service",
        [sys.executable, "-c", "import time; print('starting', flush=True); time.sleep(60)"],
        log_path=tmp_path / "silent.log",
    )
    started = time.monotonic()
    with pytest.raises(ServiceStartError, match=r"(?s)was not answering after 1s.*starting"):
        proc.wait_until(lambda: port_open("127.0.0.1", 1), timeout=1, what="answering")
    assert time.monotonic() - started < 10
    assert not proc.running()  # stopped by PID, not left behind


def test_a_missing_program_is_named(tmp_path: Path) -> None:
    with pytest.raises(ServiceStartError, match="cannot run 'no-such-slapd'"):
        start_process("slapd", ["no-such-slapd"], log_path=tmp_path / "x.log")


@pytest.mark.parametrize(
    ("attribute", "database", "url"),
    [
        ("POSTGRES_ADMIN_URL", databases.postgres_database, "postgresql://postgres@127.0.0.1:1/x"),
        ("MARIADB_ADMIN_URL", databases.mariadb_database, "mysql://root@127.0.0.1:1/test"),
    ],
    ids=["postgresql", "mariadb"],
)
def test_an_unreachable_database_says_how_to_start_it(
    monkeypatch: pytest.MonkeyPatch, attribute: str, database: object, url: str
) -> None:
    monkeypatch.setattr(databases, attribute, url)
    expected = r"(?s)not reachable at \w+://127.0.0.1:1/.*start it with: "
    with pytest.raises(ServiceStartError, match=expected), database():  # type: ignore[operator]
        pass


def test_free_port_never_hands_out_a_port_twice() -> None:
    # A hub gets three ports in a row (public, hub, proxy API); the same one twice made
    # its proxy fail with EADDRINUSE in a full run.
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
