"""Start a service process, wait until it answers, and stop it by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ServiceStartError(RuntimeError):
    """A service the tests need could not be started or reached; the message says why."""


#: Ports this test process has handed out: the kernel may offer a port again as soon as
#: the probing socket closes, and a hub given the same port for its proxy's public and
#: API addresses fails to start (EADDRINUSE).
_HANDED_OUT: set[int] = set()

#: Every process started by :func:`start_process`, in order: a failed test's report
#: shows the logs of those it started or that still run (tests/conftest.py).
STARTED: list[ServiceProcess] = []


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0), never one
    this process handed out before."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


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
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)
        # Children (the proxy, single-user servers) share the group unless they made
        # their own session; anything still alive in it after the grace period is killed.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait()


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
