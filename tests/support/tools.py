"""Where the harness finds the programs it runs, with the command that installs each."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .process import ServiceStartError

REPO_ROOT = Path(__file__).resolve().parents[2]
DROPIN_DIR = REPO_ROOT / "jupyterhub_config.d"
DATA_DIR = REPO_ROOT / "tests" / "data"


def node_modules() -> Path:
    """The npm tools folder that ``scripts/bootstrap.sh node`` fills."""
    path = Path(os.environ.get("EOHUB_NODE_TOOLS", REPO_ROOT / "tools/node/node_modules"))
    if not path.is_dir():
        raise ServiceStartError(
            f"npm tools not installed at {path}: run `scripts/bootstrap.sh node`"
        )
    return path


def node_bin(name: str) -> Path:
    """A command installed by npm into the tools folder, e.g. configurable-http-proxy."""
    path = node_modules() / ".bin" / name
    if not path.exists():
        raise ServiceStartError(
            f"{name} not found in {path.parent}: run `scripts/bootstrap.sh node`"
        )
    return path


def system_bin(name: str, package: str) -> str:
    """A program from a Debian package, or an error naming the package to install."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise ServiceStartError(
            f"{name} not found: run `scripts/bootstrap.sh apt` (Debian package {package})"
        )
    return found


def chromium_path() -> str:
    """Debian's Chromium (never a browser download); ``CHROMIUM`` overrides the path."""
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not Path(path).exists():
        raise ServiceStartError(
            f"Chromium not found at {path}: "
            "run `scripts/bootstrap.sh apt` (Debian package chromium)"
        )
    return path


def artifacts_dir() -> Path:
    """Where tests write screenshots and logs worth keeping after the run."""
    path = Path(os.environ.get("EOHUB_TEST_ARTIFACTS", REPO_ROOT / ".artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path
