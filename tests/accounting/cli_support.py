"""Running the ``eohub-accounting`` command as a user would, for the command's tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

COMMAND = [sys.executable, "-m", "eohub.accounting"]

# "@" and ":" percent-encoded, as SQLAlchemy URLs need; none of it may reach a log.
PASSWORD = "Db%40pass%3Aw0rd-42"


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


def with_password(url: str) -> str:
    """``url`` with a password; the test server trusts loopback and ignores it."""
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)
