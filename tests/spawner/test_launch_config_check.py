"""``eohub-launch-config check``: a launch config file checked as the hub's start-up does,
session limits included, without starting a hub."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from eohub.spawner.launch_config_cli import main

COMMAND = [sys.executable, "-m", "eohub.spawner.launch_config_cli", "check"]
GOOD = """\
session_limits:
  idle_timeout: 2h
  max_duration: 24h
  groups:
    long-runs: {max_duration: 7d}
sizes:
  small: {cpu: 1, memory: 2G}
environments:
  climate-gpu:
    image: quay.io/eohub/climate-ml:2026.11
    idle_timeout: 30m
    max_duration: 8h
    group_limits:
      climate: {max_duration: 24h}
  pangeo:
    image: quay.io/eohub/pangeo-notebook:2026.11
    max_duration: 0
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "launch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_file_is_exit_0(tmp_path: Path) -> None:
    done = subprocess.run(
        [*COMMAND, str(write(tmp_path, GOOD))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == (
        "eohub-launch-config: checked: 2 environments, 1 sizes and 0 volumes parse as a "
        "kube launch config\n"
    )


@pytest.mark.parametrize(
    ("text", "backend", "message"),
    [
        (
            GOOD.replace("climate: {max_duration: 24h}", "climate: {max_duration: a day}"),
            "kube",
            "environments.climate-gpu.group_limits.climate.max_duration: must be a duration "
            "like 3600, '30m', '2h' or '7d', not 'a day'",
        ),
        (
            GOOD.replace("long-runs: {max_duration: 7d}", "long-runs: 7d"),
            "kube",
            "session_limits.groups.long-runs: must be a mapping of limits",
        ),
        (
            GOOD.replace("  idle_timeout: 2h\n", "  idle: 2h\n", 1),
            "kube",
            "session_limits.idle: is not a setting",
        ),
        (GOOD, "local", "environments.climate-gpu.image: is not used by the 'local' backend"),
        ("sizes: {}\nlimits: {}\n", "kube", "limits: is not a launch config key"),
        ("- a list\n", "kube", "launch_config_file: must hold a mapping"),
    ],
)
def test_a_bad_file_is_exit_1_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, backend: str, message: str
) -> None:
    path = write(tmp_path, text)
    assert main(["check", str(path), "--backend", backend]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"eohub-launch-config: error: {path}: {message}")
    assert captured.err.count("\n") == 1


def test_an_unreadable_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["check", str(write(tmp_path, "sizes: [unclosed\n"))]) == 2
    assert "is not valid YAML" in capsys.readouterr().err


def test_an_empty_file_is_a_valid_empty_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(write(tmp_path, ""))]) == 0
    assert "0 environments" in capsys.readouterr().err
