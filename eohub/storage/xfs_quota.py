"""The XFS project quota fast path: ask ``xfs_quota`` instead of walking.

Runs ``xfs_quota -x -c 'report -p -b -i -n -N' <mount>`` with a timeout and reads
``/etc/projects`` and ``/etc/projid`` (parsing in :mod:`eohub.domain.storage.xfs_report`).
Any failure (no such command, not XFS, no project quota, a non-zero exit, a timeout, a
report or mapping file it cannot read) is logged once and answered with None: the
sampler then walks the directories, so a broken fast path costs time, never samples.
``xfs_quota -x`` needs root (or ``CAP_SYS_ADMIN``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from eohub.domain.storage.xfs_report import (
    ProjectUsage,
    XfsReportError,
    parse_projects,
    parse_projid,
    parse_report,
    usage_by_path,
)
from eohub.logs import get_logger

log = get_logger(__name__)

REPORT = "report -p -b -i -n -N"
STDERR_EXCERPT = 300


@dataclass(frozen=True)
class XfsQuota:
    """How to ask: the command, the mapping files and the timeout."""

    command: str = "xfs_quota"
    projects_file: str = "/etc/projects"
    projid_file: str = "/etc/projid"
    timeout: float = 60.0


async def _run(argv: list[str], seconds: float) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    code = process.returncode if process.returncode is not None else -1
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


async def _usage(mount: str, how: XfsQuota) -> dict[str, ProjectUsage]:
    code, out, err = await _run([how.command, "-x", "-c", REPORT, mount], how.timeout)
    if code != 0:
        raise XfsReportError(f"exit status {code}: {' '.join(err.split())[:STDERR_EXCERPT]}")
    return await asyncio.to_thread(_by_real_path, parse_report(out), how)


def _by_real_path(report: list[ProjectUsage], how: XfsQuota) -> dict[str, ProjectUsage]:
    projects = parse_projects(Path(how.projects_file).read_text(encoding="utf-8"))
    projid_path = Path(how.projid_file)
    projid = parse_projid(projid_path.read_text(encoding="utf-8")) if projid_path.exists() else {}
    found = usage_by_path(report, projects, projid)
    return {os.path.realpath(path): usage for path, usage in found.items()}


async def project_usage(mount: str, how: XfsQuota) -> dict[str, ProjectUsage] | None:
    """Usage of each project directory on ``mount``'s filesystem, by its real path, or
    None (logged) when the fast path cannot be used."""
    try:
        return await _usage(mount, how)
    except FileNotFoundError as e:
        why = f"{e.filename or how.command} not found"
    except TimeoutError:
        why = f"no answer within {how.timeout:g} s"
    except (OSError, UnicodeDecodeError, XfsReportError) as e:
        why = str(e)
    log.warning(
        "xfs_quota fast path unusable for {mount} ({why}); walking the directories",
        mount=mount,
        why=why,
    )
    return None


__all__ = ["REPORT", "XfsQuota", "project_usage"]
