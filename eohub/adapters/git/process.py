"""Running ``git`` against a user's repository: one hardened way for every git command.

Every run has no shell and a fixed environment (no system or global config, no
credential prompts or helpers, no home directory); only the URL's own protocol is
allowed, redirects are not followed, and a host name that policy checked is pinned to
its checked address (``http.curloptResolve``). A caller's time limit
(``asyncio.timeout``) cancels the run, which kills git and the transport helpers it
starts, as one process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GitResult:
    returncode: int
    stdout: str
    stderr: str


def git_argv(git: str, scheme: str, pins: Sequence[str] = ()) -> list[str]:
    """``git`` and its hardening options, to be followed by a subcommand."""
    argv = [
        git,
        "-c",
        "protocol.allow=never",
        "-c",
        f"protocol.{scheme}.allow=always",
        "-c",
        "credential.helper=",
        "-c",
        "http.followRedirects=false",
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "core.fsmonitor=false",
    ]
    for pin in pins:
        argv += ["-c", f"http.curloptResolve={pin}"]
    return argv


def git_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": "/nonexistent",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_LFS_SKIP_SMUDGE": "1",
        "LC_ALL": "C",
    }


async def run_git(argv: Sequence[str], *, cwd: Path | None = None) -> GitResult:
    """Run ``argv`` to its end; cancelled (by a time limit), kill it and its children."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=git_env(),
        cwd=cwd,
        # git runs its http transport as a child: a group of their own lets a time
        # limit end both, and so close the pipes.
        start_new_session=True,
    )
    try:
        out, err = await process.communicate()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await asyncio.shield(process.wait())
        raise
    assert process.returncode is not None
    return GitResult(
        process.returncode, out.decode(errors="replace"), err.decode(errors="replace")
    )


__all__ = ["GitResult", "git_argv", "git_env", "run_git"]
