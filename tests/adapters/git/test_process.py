"""Running git: the hardening options, the fixed environment, and a time limit that kills."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from eohub.adapters.git.process import GitResult, git_argv, git_env, run_git


def test_git_argv_allows_only_the_urls_protocol_and_pins_hosts() -> None:
    argv = git_argv("/usr/bin/git", "https", ["example.org:443:192.0.2.1"])
    options = dict(argv[i + 1].split("=", 1) for i in range(1, len(argv), 2))
    assert argv[0] == "/usr/bin/git"
    assert all(argv[i] == "-c" for i in range(1, len(argv), 2))
    assert options == {
        "protocol.allow": "never",
        "protocol.https.allow": "always",
        "credential.helper": "",
        "http.followRedirects": "false",
        "core.hooksPath": "/dev/null",
        "core.fsmonitor": "false",
        "http.curloptResolve": "example.org:443:192.0.2.1",
    }


def test_git_env_is_fixed_and_keeps_only_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_DIR", "/somewhere/else")
    monkeypatch.setenv("PATH", "/opt/bin")
    env = git_env()
    assert env["PATH"] == "/opt/bin"
    assert "GIT_DIR" not in env
    assert (env["HOME"], env["GIT_TERMINAL_PROMPT"], env["GIT_CONFIG_GLOBAL"]) == (
        "/nonexistent",
        "0",
        "/dev/null",
    )


async def test_run_git_returns_the_exit_code_and_the_output(tmp_path: Path) -> None:
    result = await run_git(["sh", "-c", "pwd; echo oops >&2; exit 3"], cwd=tmp_path)
    assert result == GitResult(3, f"{tmp_path}\n", "oops\n")
    env = await run_git(["sh", "-c", "echo $HOME $LC_ALL"])
    assert env.stdout == "/nonexistent C\n"


async def test_a_time_limit_kills_the_run_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await run_git(["sh", "-c", script])
    assert gone(int(pid_file.read_text()))


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended within a few seconds (it was sent SIGKILL)."""
    deadline = time.monotonic() + 5
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped by its dead parent's reaper) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"
