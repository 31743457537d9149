"""RepoLaunches: the hub's settings and clients for launches from git repositories.

Configured as ``c.RepoLaunches``; one instance per hub process
(:func:`shared_repo_launches`), so that every spawner shares the ref cache, the
registry's tokens and the build concurrency limit. The policy itself is pure
(:mod:`eohub.domain.launch.repository`); this class only holds the admin's settings and runs
the steps that need the network: resolve the ref, look the image up in the registry,
ask BinderHub to build it, or clone the commit for the local backend.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from traitlets import Bool, Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable

from eohub.adapters.binderhub_build import BuildClient, BuildError
from eohub.adapters.git.clone import clone_commit
from eohub.adapters.git.refs import RefResolver
from eohub.adapters.registry import RegistryClient, RegistryError
from eohub.domain.launch.repository import RepoLaunch, RepoRules
from eohub.domain.repos.build_events import BuildEvent, progress_message
from eohub.domain.repos.images import prefix_problem
from eohub.domain.repos.policy import RepoPolicy
from eohub.domain.repos.specs import RepoError, RepoProviders
from eohub.logs import get_logger

log = get_logger(__name__)

#: Where a step's messages go: ``report(stage, message)``, the stage being a build's
#: phase (``waiting``, ``building``, ..., ``ready``; ``""`` for none) or a clone's.
Report = Callable[[str, str], None]


class RepoLaunchError(Exception):
    """A repository launch failed after it was allowed: a message the user can read."""


class RepoLaunches(LoggingConfigurable):
    """Which repositories users may launch, and where their images come from."""

    github_url = Unicode(
        "https://github.com",
        help="The GitHub (or GitHub Enterprise) base URL of the ``gh`` provider.",
    ).tag(config=True)
    gitlab_url = Unicode(
        "https://gitlab.com", help="The GitLab base URL of the ``gl`` provider."
    ).tag(config=True)
    allowed_hosts = List(
        Unicode(),
        help="""Hosts repositories may come from, as shell patterns
        (``*.example.org``). Empty: any host.""",
    ).tag(config=True)
    denied_hosts = List(
        Unicode(), help="Hosts repositories may never come from; wins over allowed_hosts."
    ).tag(config=True)
    allowed_repos = List(
        Unicode(),
        help="""Repositories users may launch, as shell patterns on ``host/path``
        without scheme or ``.git`` (``github.com/pangeo-data/*``). Empty: any.""",
    ).tag(config=True)
    denied_repos = List(
        Unicode(), help="Repositories never launched; wins over allowed_repos."
    ).tag(config=True)
    trusted_repos = List(
        Unicode(),
        help="""Repositories the admins vouch for. A launch link to any other shows a
        warning before the user clicks Start.""",
    ).tag(config=True)
    allow_http = Bool(
        False, help="Allow ``http://`` repositories (only for a trusted network)."
    ).tag(config=True)
    allow_private_hosts = Bool(
        False,
        help="""Allow repositories on loopback, private and link-local addresses.
        Off by default: a launch must not reach the hub's own network (SSRF).""",
    ).tag(config=True)
    resolve_timeout = Float(15.0, help="Seconds ``git ls-remote`` may take to resolve a ref.").tag(
        config=True
    )
    resolve_cache_seconds = Float(
        60.0, help="How long a resolved branch or tag is reused before asking again."
    ).tag(config=True)
    image_prefix = Unicode(
        "",
        help="""Prefix of built images, as BinderHub's ``image_prefix``
        (``registry.example.org/binder/eohub-``): the image of a launch is this, the
        escaped repository and the commit as tag. Required on Kubernetes.""",
    ).tag(config=True)
    registry_url = Unicode(
        "",
        help="""The registry BinderHub pushes to (``https://registry.example.org``),
        checked for an image before asking for a build. Empty: always ask BinderHub,
        which finds existing images itself.""",
    ).tag(config=True)
    registry_username = Unicode("", help="Username for the registry, if it needs one.").tag(
        config=True
    )
    registry_password = Unicode(
        help="Password or token for the registry. Default: $EOHUB_REGISTRY_PASSWORD."
    ).tag(config=True)
    binderhub_url = Unicode(
        "",
        help="""BinderHub's (or binderhub-service's) URL, e.g.
        ``https://hub.example.org/services/binder``. Empty: images are never built,
        so only images already in the registry launch.""",
    ).tag(config=True)
    binderhub_token = Unicode(
        help="""A JupyterHub API token that may use BinderHub's build API. Default:
        $EOHUB_BINDERHUB_TOKEN."""
    ).tag(config=True)
    build_timeout = Float(3600.0, help="Seconds a build may take, queueing included.").tag(
        config=True
    )
    build_idle_timeout = Float(
        300.0, help="Seconds without a word from BinderHub before a build counts as stalled."
    ).tag(config=True)
    build_concurrency = Integer(
        4, help="Builds this hub asks for at once; further launches wait for a slot."
    ).tag(config=True)
    clone_timeout = Float(
        300.0, help="Seconds a clone into the workspace may take (local backend)."
    ).tag(config=True)

    @default("registry_password")
    def _default_registry_password(self) -> str:
        return os.environ.get("EOHUB_REGISTRY_PASSWORD", "")

    @default("binderhub_token")
    def _default_binderhub_token(self) -> str:
        return os.environ.get("EOHUB_BINDERHUB_TOKEN", "")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._clients: dict[str, Any] = {}

    # -- the pure rules ------------------------------------------------------------

    def rules(self) -> RepoRules:
        """The admin's rules; raise RepoError naming the bad setting."""
        if self.image_prefix and (problem := prefix_problem(self.image_prefix)):
            raise RepoError("image_prefix", problem)
        return RepoRules(
            providers=RepoProviders.default(self.github_url, self.gitlab_url),
            policy=RepoPolicy(
                allowed_hosts=tuple(self.allowed_hosts),
                denied_hosts=tuple(self.denied_hosts),
                allowed_repos=tuple(self.allowed_repos),
                denied_repos=tuple(self.denied_repos),
                trusted_repos=tuple(self.trusted_repos),
                allow_http=self.allow_http,
                allow_private_hosts=self.allow_private_hosts,
            ),
            image_prefix=self.image_prefix,
        )

    # -- clients, built once ---------------------------------------------------------

    @property
    def resolver(self) -> RefResolver:
        if "resolver" not in self._clients:
            self._clients["resolver"] = RefResolver(
                timeout=self.resolve_timeout, cache_seconds=self.resolve_cache_seconds
            )
        client: RefResolver = self._clients["resolver"]
        return client

    @property
    def registry(self) -> RegistryClient | None:
        if not self.registry_url:
            return None
        if "registry" not in self._clients:
            self._clients["registry"] = RegistryClient(
                self.registry_url,
                username=self.registry_username,
                password=self.registry_password,
            )
        client: RegistryClient = self._clients["registry"]
        return client

    @property
    def builder(self) -> BuildClient | None:
        if not self.binderhub_url:
            return None
        if "builder" not in self._clients:
            self._clients["builder"] = BuildClient(
                self.binderhub_url,
                self.binderhub_token,
                timeout=self.build_timeout,
                idle_timeout=self.build_idle_timeout,
                concurrency=self.build_concurrency,
            )
        client: BuildClient = self._clients["builder"]
        return client

    # -- the steps -----------------------------------------------------------------

    async def resolve(self, repo: RepoLaunch, rules: RepoRules) -> RepoLaunch:
        """``repo`` at the commit its ref names now; RepoError if it cannot be found."""
        resolved = await self.resolver.resolve(repo.check)
        return repo.resolved(resolved.commit, rules)

    async def find_or_build(self, repo: RepoLaunch, rules: RepoRules, report: Report) -> str:
        """The image of ``repo``: found in the registry, else built by BinderHub.

        The image is exactly :attr:`RepoLaunch.image`, computed from the resolved spec;
        a builder reporting any other name is refused.
        """
        image, commit = repo.image, repo.commit
        # Resolved, with the image prefix: QuotaKubeSpawner.apply_launch refuses others.
        assert image is not None
        assert commit is not None
        registry = self.registry
        if registry is not None:
            try:
                if await registry.image_exists(image):
                    report("ready", f"Found the image of commit {commit[:12]}: launching.")
                    return image
            except RegistryError as e:
                log.warning("Registry check for {image} failed: {error}", image=image, error=e)
                report("", "Could not check the registry; asking the builder.")
        builder = self.builder
        if builder is None:
            raise RepoLaunchError(
                f"The image of {repo.spec.name} at {commit[:12]} has not been built, "
                "and this hub has no builder; ask an admin to build it."
            )
        report("waiting", f"Building {repo.spec.name} at commit {commit[:12]}.")
        # The build names the commit, not the ref: a branch that moves meanwhile must
        # not give an image of another commit than the one checked.
        pinned = rules.providers.link(dataclasses.replace(repo.spec, ref=commit))
        provider, _, spec = pinned.partition("/")

        def relay(event: BuildEvent) -> None:
            if message := progress_message(event):
                report(event.phase, message)

        try:
            return await builder.build(provider, spec, expected_image=image, on_event=relay)
        except BuildError as e:
            raise RepoLaunchError(str(e)) from None

    async def clone(
        self,
        repo: RepoLaunch,
        workdir: Path,
        folder: str,
        owner: tuple[int, int] | None,
    ) -> Path:
        """Clone ``repo`` at its commit into ``workdir/folder``, which must be new."""
        assert repo.commit is not None
        pins = await self.resolver.pins(repo.check) if repo.check.needs_resolution else []
        return await clone_commit(
            repo.spec.url,
            repo.commit,
            workdir / folder,
            pins=pins,
            time_limit=self.clone_timeout,
            owner=owner,
        )


_shared: dict[int, tuple[Any, RepoLaunches]] = {}
_lock = threading.Lock()


def shared_repo_launches(config: Any) -> RepoLaunches:
    """The process's RepoLaunches for ``config`` (the hub's config object)."""
    with _lock:
        found = _shared.get(id(config))
        if found is None or found[0] is not config:
            found = (config, RepoLaunches(config=config))
            _shared[id(config)] = found
        return found[1]


__all__ = ["RepoLaunchError", "RepoLaunches", "shared_repo_launches"]
