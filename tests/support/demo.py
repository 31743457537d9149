"""The README's demo launcher (demo/run.py), run as a person runs it, for the demo's tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .tools import REPO_ROOT


def start_demo(
    state: Path, port: int, log_file: Any, *flags: str
) -> tuple[subprocess.Popen[str], str]:
    """Run the README's demo launcher with ``flags`` (``--with-oidc``...); return it and
    what it printed up to "stop with Ctrl-C"."""
    command = [sys.executable, str(REPO_ROOT / "demo/run.py"), "--port", str(port)]
    demo = subprocess.Popen(
        [*command, "--state-dir", str(state), *flags],
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
        env=dict(os.environ),
        start_new_session=True,
    )
    assert demo.stdout is not None
    lines = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = demo.stdout.readline()
        lines.append(line)
        if "stop with Ctrl-C" in line or demo.poll() is not None:
            break
    return demo, "".join(lines)


def stop_demo(demo: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C, as a person stops it
    demo.wait(30)
