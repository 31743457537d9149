"""Start a service process, wait until it answers, and stop it by PID."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ServiceStartError(RuntimeError):
    """A service the tests need could not be started or reached; the message says why."""


#: Ports this test process has handed out: a hub given the same port twice (its
#: proxy's public and API addresses) fails to start (EADDRINUSE).
_HANDED_OUT: set[int] = set()

#: Where test ports come from: below Linux's ephemeral range (32768 and up by default),
#: where the kernel picks the local ports of outgoing connections, and of bind(0). A
#: port taken from that range was free a moment ago, but any outgoing connection of
#: any process could take it before the service bound it, and so could the other
#: pytest-xdist worker's next bind(0): both happened, once in a full run each.
PORTS = range(20_000, 32_700)


def worker_ports(worker: str = "", workers: int = 1) -> range:
    """This pytest-xdist worker's own slice of :data:`PORTS` (``worker``: ``gw0``,
    ``gw1``...; empty outside xdist): two workers never hand out the same port."""
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    size = len(PORTS) // max(workers, index + 1)
    return range(PORTS.start + index * size, PORTS.start + (index + 1) * size)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


#: Every process started by :func:`start_process`, in order: a failed test's report
#: shows the logs of those it started or that still run (tests/conftest.py).
STARTED: list[ServiceProcess] = []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now, from this worker's slice of
    :data:`PORTS`, never one this process handed out before (until the slice runs out:
    then the oldest come round again, long since released)."""
    ports = worker_ports(
        os.environ.get("PYTEST_XDIST_WORKER", ""),
        int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")),
    )
    # Start where this process left off, or at a random place: the previous run's
    # services may still be letting their ports go.
    start = _NEXT.get(ports, ports.start + secrets.randbelow(len(ports)))
    for offset in range(len(ports)):
        port = ports.start + (start - ports.start + offset) % len(ports)
        if port in _HANDED_OUT:
            continue
        if _bindable(port):
            _HANDED_OUT.add(port)
            _NEXT[ports] = port + 1 if port + 1 < ports.stop else ports.start
            return port
    if not _HANDED_OUT & set(ports):
        raise ServiceStartError(f"no free port on 127.0.0.1 in {ports.start}-{ports.stop - 1}")
    _HANDED_OUT.difference_update(ports)
    return free_port()


_NEXT: dict[range, int] = {}


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on (host, port)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"(empty log at {path})"


@dataclass
class ServiceProcess:
    """A child process in its own session, with its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)

    def fail(self, what: str) -> ServiceStartError:
        """An error naming the service, what went wrong, and the tail of its log."""
        return ServiceStartError(
            f"{self.name} (pid {self.pid}) {what}\n--- last lines of {self.log_path} ---\n"
            f"{self.log_tail()}"
        )

    def wait_until(self, check: Callable[[], bool], *, timeout: float, what: str) -> None:
        """Poll ``check`` until it is true; fail early if the process dies."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                code = self.popen.returncode
                self.stop()  # children it started (a proxy, say) may still be running
                raise self.fail(f"exited with code {code} before {what}")
            if check():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise self.fail(f"was not {what} after {timeout:.0f}s")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group we created, then SIGKILL whatever is left."""
        if self._stopped:
            return
        self._stopped = True
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
        # Children (the proxy, single-user servers) share the group unless they made
        # their own session; anything still alive in it after the grace period is killed.
        self._signal_group(signal.SIGKILL)
        self.popen.wait()

    def _signal_group(self, sig: int) -> None:
        """Signal the process group we created, unless its number is another's now.

        Once the leader has exited and been reaped, the kernel may give its number to a
        new process; pid_max is 32768 here, and a full run starts far more processes
        than that. Our group keeps the number only while one of its members lives, and
        then no process can hold it. So if a process holds it, the group is not ours,
        and signalling it would kill, say, a single-user server of the other
        pytest-xdist worker (a session leader of its own) without a word.
        """
        if self.popen.returncode is not None and Path(f"/proc/{self.pid}").exists():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ServiceProcess:
    """Start ``argv`` in a new session with stdout and stderr going to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        try:
            popen = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError as e:
            raise ServiceStartError(f"{name}: cannot run {argv[0]!r}: {e}") from e
    started = ServiceProcess(name=name, popen=popen, log_path=log_path)
    STARTED.append(started)
    return started
