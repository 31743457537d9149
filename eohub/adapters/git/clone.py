"""Clone a resolved commit into a user's workspace, for repository launches on one machine.

The clone never touches what is already in the workspace: it is made in a fresh hidden
directory beside its target and renamed into place only when complete, and a target
folder that exists already is left alone (the caller picks another name). git never runs
inside a directory the user controls, whose ``.git/config`` could otherwise run commands
as the hub. With ``owner``, the clone is handed to the user, without following any
symbolic link the repository holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from eohub.adapters.git.process import git_argv, run_git
from eohub.domain.repos.specs import RepoError, is_commit
from eohub.logs import get_logger

log = get_logger(__name__)


def _scratch_beside(target: Path) -> Path:
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".eohub-clone-", dir=target.parent))


def _move_into_place(scratch: Path, target: Path, owner: tuple[int, int] | None) -> None:
    if owner is not None:
        os.lchown(scratch, *owner)
        for parent, dirs, files in os.walk(scratch):
            for name in dirs + files:
                os.lchown(os.path.join(parent, name), *owner)
    if target.exists() or target.is_symlink():
        raise FileExistsError(target)
    # rename() would replace an empty directory; the check above keeps it.
    os.rename(scratch, target)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


async def clone_commit(
    url: str,
    commit: str,
    target: Path,
    *,
    pins: Sequence[str] = (),
    time_limit: float = 300.0,
    owner: tuple[int, int] | None = None,
    git: str = "git",
) -> Path:
    """Clone ``url`` at ``commit`` into ``target``, which must not exist yet.

    Raises :class:`RepoError` (field ``repo``) when git fails or takes longer than
    ``time_limit`` seconds, and :class:`FileExistsError` when ``target`` appeared
    meanwhile. Nothing is left behind on failure.
    """
    if not is_commit(commit):
        raise RepoError("ref", f"{commit!r} is not a commit id")
    scratch = _scratch_beside(target)
    base = git_argv(git, urlsplit(url).scheme, pins)
    try:
        try:
            async with asyncio.timeout(time_limit):
                done = await run_git(
                    [*base, "clone", "--quiet", "--no-checkout", "--", url, str(scratch)]
                )
                if done.returncode == 0:
                    done = await run_git(
                        [*base, "checkout", "--quiet", "--detach", commit, "--"], cwd=scratch
                    )
        except TimeoutError:
            raise RepoError(
                "repo", f"cloning {url} took longer than {time_limit:g} seconds"
            ) from None
        if done.returncode != 0:
            # The user sees the short reason; the admin's log keeps git's own words.
            log.warning(
                "git could not clone {url} at commit {commit}: {reason}",
                url=url,
                commit=commit[:12],
                reason=_last_line(done.stderr) or f"exit status {done.returncode}",
            )
            raise RepoError("repo", f"could not clone {url} at commit {commit[:12]}")
        _move_into_place(scratch, target, owner)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(scratch)
        raise
    return target


__all__ = ["clone_commit"]
