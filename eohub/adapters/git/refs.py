"""Resolve a repository launch's ref to a commit with ``git ls-remote``, safely.

The spec has passed :mod:`eohub.domain.repos.specs` and :mod:`eohub.domain.repos.policy`
already; this adapter adds what needs I/O:

- a host name the user chose is resolved here, and every address must pass
  :func:`~eohub.domain.repos.policy.address_allowed`. git is then pinned to the checked
  address (``http.curloptResolve``), so a second DNS answer cannot send it elsewhere;
- git runs as :mod:`eohub.adapters.git.process` runs it (no shell, ``--`` before the
  URL, only the http(s) protocols, no credential prompts or helpers), with a time
  limit after which it is killed;
- answers are cached briefly, so a burst of launches of one link asks the server once.

Errors are :class:`~eohub.domain.repos.specs.RepoError` naming the field, in words a
scientist can act on: no such repository, no such ref, the server did not answer.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from eohub.adapters.git.process import git_argv, run_git
from eohub.domain.repos.policy import RepoCheck, address_allowed
from eohub.domain.repos.specs import RepoError, is_commit

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
        key = (spec.url, spec.ref)
        cached = self._cache.get(key)
        if cached is not None and self.clock() - cached[0] < self.cache_seconds:
            return cached[1]
        # The host is checked even for a commit, which git need not resolve: the builder
        # fetches from it next, so its name must not lead inside either.
        pins = await self.pins(check) if check.needs_resolution else []
        if is_commit(spec.ref):
            return Resolved(spec.ref, "commit")
        listing = await self._ls_remote(spec.url, spec.ref, pins)
        resolved = pick(listing, spec.ref)
        if resolved is None:
            raise RepoError("ref", f"{spec.ref!r} is not a branch or tag of {spec.name}")
        self._cache[key] = (self.clock(), resolved)
        return resolved

    async def pins(self, check: RepoCheck) -> list[str]:
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
        argv = [
            *git_argv(self.git, urlsplit(url).scheme, pins),
            "ls-remote",
            "--",
            url,
            *ref_patterns(ref),
        ]
        self.runs += 1
        try:
            async with asyncio.timeout(self.timeout):
                done = await run_git(argv)
        except TimeoutError:
            raise RepoError(
                "repo", f"the git server did not answer within {self.timeout:g} seconds"
            ) from None
        if done.returncode != 0:
            message = done.stderr.lower()
            if any(marker in message for marker in NOT_FOUND) or "404" in message:
                raise RepoError("repo", f"there is no repository at {url}")
            raise RepoError(
                "repo", f"the git server at {urlsplit(url).hostname} refused or failed"
            )
        return done.stdout
