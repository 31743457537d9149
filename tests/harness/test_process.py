"""A service that cannot start fails loudly, with the reason and its log tail."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import databases, process
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


def test_each_xdist_worker_has_its_own_ports_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert process.PORTS.stop <= low  # the kernel never hands these out by itself
    slices = [process.worker_ports(f"gw{i}", 3) for i in range(3)]
    assert all(s.start >= process.PORTS.start and s.stop <= process.PORTS.stop for s in slices)
    assert not set(slices[0]) & set(slices[1])
    assert not set(slices[1]) & set(slices[2])
    assert process.worker_ports() == process.worker_ports("gw0", 1) == process.PORTS


def test_free_port_keeps_to_its_worker_and_skips_a_port_in_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    mine = process.worker_ports("gw1", 2)
    in_use = next(p for p in mine if p not in process._HANDED_OUT and bindable(p))
    with socket.socket() as held:  # something else listens there: the port is skipped
        held.bind(("127.0.0.1", in_use))
        held.listen()
        monkeypatch.setitem(process._NEXT, mine, in_use)
        port = free_port()
    assert port in mine
    assert port != in_use


def bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_stop_after_the_process_ended_never_signals_a_stranger_with_its_number(
    tmp_path: Path,
) -> None:
    # A process that exited and was reaped lends its number to the next one the kernel
    # starts; here a stranger in a session of its own stands in for that one.
    ended = start_process("ended", [sys.executable, "-c", "pass"], log_path=tmp_path / "e.log")
    ended.popen.wait(30)
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        ended.popen.pid = stranger.pid  # the number, taken by the stranger
        ended.stop(timeout=1)
        with pytest.raises(subprocess.TimeoutExpired):  # still running: not signalled
            stranger.wait(timeout=2)
    finally:
        stranger.kill()
        stranger.wait()
