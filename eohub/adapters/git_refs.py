"""Resolve a repository launch's ref to a commit with ``git ls-remote``, safely.

The spec has passed :mod:`eohub.domain.repos` and :mod:`eohub.domain.repo_policy`
already; this adapter adds what needs I/O:

- a host name the user chose is resolved here, and every address must pass
  :func:`~eohub.domain.repo_policy.address_allowed`. git is then pinned to the checked
  address (``http.curloptResolve``), so a second DNS answer cannot send it elsewhere;
- git runs without a shell, with ``--`` before the URL, only the http(s) protocols
  allowed, no credential prompts or helpers, and a time limit after which it is killed;
- answers are cached briefly, so a burst of launches of one link asks the server once.

Errors are :class:`~eohub.domain.repos.RepoError` naming the field, in words a
scientist can act on: no such repository, no such ref, the server did not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from eohub.domain.repo_policy import RepoCheck, address_allowed
from eohub.domain.repos import RepoError, is_commit

NOT_FOUND = ("not found", "repository not found", "does not appear to be a git repository")


@dataclass(frozen=True)
class Resolved:
    """A ref's commit, and where it came from (``refs/heads/main``, ``commit``...)."""

    commit: str
    source: str


def ref_patterns(ref: str) -> list[str]:
    """The exact refs ``git ls-remote`` should list for ``ref``, best first."""
    if ref == "HEAD":
        return ["HEAD"]
    return [f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}"]


def pick(listing: str, ref: str) -> Resolved | None:
    """The commit for ``ref`` from ``git ls-remote`` output; a peeled tag wins."""
    found: dict[str, str] = {}
    for line in listing.splitlines():
        sha, _, name = line.partition("\t")
        if is_commit(sha):
            found[name] = sha
    for pattern in ref_patterns(ref):
        if pattern in found:
            return Resolved(found[pattern], pattern.removesuffix("^{}"))
    return None


class RefResolver:
    """Resolves refs of allowed repositories, with a time limit and a short cache.

    Parameters
    ----------
    timeout
        Seconds git may take; then it is killed and the launch told so.
    cache_seconds
        How long an answer is reused.
    git
        The git executable.
    """

    def __init__(
        self,
        *,
        timeout: float = 15.0,
        cache_seconds: float = 60.0,
        git: str = "git",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.cache_seconds = cache_seconds
        self.git = git
        self.clock = clock
        self.runs = 0  # git processes started, for tests and metrics
        self._cache: dict[tuple[str, str], tuple[float, Resolved]] = {}

    async def resolve(self, check: RepoCheck) -> Resolved:
        spec = check.spec
        if is_commit(spec.ref):
            return Resolved(spec.ref, "commit")
        key = (spec.url, spec.ref)
        cached = self._cache.get(key)
        if cached is not None and self.clock() - cached[0] < self.cache_seconds:
            return cached[1]
        pins = await self._pins(check) if check.needs_resolution else []
        listing = await self._ls_remote(spec.url, spec.ref, pins)
        resolved = pick(listing, spec.ref)
        if resolved is None:
            raise RepoError("ref", f"{spec.ref!r} is not a branch or tag of {spec.name}")
        self._cache[key] = (self.clock(), resolved)
        return resolved

    async def _pins(self, check: RepoCheck) -> list[str]:
        """``host:port:address`` for git to use: only addresses the policy allows."""
        parts = urlsplit(check.spec.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(check.host, port, type=socket.SOCK_STREAM), self.timeout
            )
        except (OSError, TimeoutError):
            raise RepoError("repo", f"the host {check.host} cannot be found") from None
        addresses = sorted({str(info[4][0]) for info in infos})
        if not addresses or not all(
            address_allowed(a, allow_private=check.allow_private) for a in addresses
        ):
            raise RepoError(
                "repo", f"the host {check.host} is on a loopback, private or reserved address"
            )
        pinned = addresses[0]
        return [f"{check.host}:{port}:{'[' + pinned + ']' if ':' in pinned else pinned}"]

    async def _ls_remote(self, url: str, ref: str, pins: list[str]) -> str:
        scheme = urlsplit(url).scheme
        argv = [
            self.git,
            "-c",
            "protocol.allow=never",
            "-c",
            f"protocol.{scheme}.allow=always",
            "-c",
            "credential.helper=",
            "-c",
            "http.followRedirects=false",
        ]
        for pin in pins:
            argv += ["-c", f"http.curloptResolve={pin}"]
        argv += ["ls-remote", "--", url, *ref_patterns(ref)]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": "/nonexistent",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "/bin/false",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "LC_ALL": "C",
        }
        self.runs += 1
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            # git runs its http transport as a child: a group of their own lets a time
            # limit end both, and so close the pipes.
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
            raise RepoError(
                "repo", f"the git server did not answer within {self.timeout:g} seconds"
            ) from None
        if process.returncode != 0:
            message = err.decode(errors="replace").lower()
            if any(marker in message for marker in NOT_FOUND) or "404" in message:
                raise RepoError("repo", f"there is no repository at {url}")
            raise RepoError(
                "repo", f"the git server at {urlsplit(url).hostname} refused or failed"
            )
        return out.decode(errors="replace")
