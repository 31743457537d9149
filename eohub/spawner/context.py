"""The launch context: what the form, the spawn and a launch link decide from.

A spawner reads its inputs once per request (the launch config, the user's groups,
their last launch, the repository rules and, for the form, accounting's answer per
chargeable group) into one frozen :class:`LaunchContext`; the form
(:mod:`eohub.spawner.form`) renders it and never calls back into the spawner. The
launch-link page asks a spawner for its context through :class:`LaunchContextSource`,
so that nothing under ``eohub.spawner.form`` imports the spawners.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from eohub.accounting.client.client import QuotaAnswer
from eohub.domain.accounting.ledger import Resources
from eohub.domain.launch.config import LaunchConfig
from eohub.domain.launch.options import LaunchRequest
from eohub.domain.launch.policy import Member, chargeable_groups
from eohub.domain.launch.profiles import Profile
from eohub.domain.launch.repository import RepoRules
from eohub.logs import get_logger

log = get_logger(__name__)

#: The hub's URL path when the spawner knows no hub (a spawner built outside one).
DEFAULT_HUB_PREFIX = "/hub/"


class InvalidLaunchConfig(ValueError):
    """The hub's launch config cannot be read; the message names the offending key.

    Only reading the config raises it, so a ValueError from anywhere else in building a
    context is never reported as a bad config.
    """


@dataclass(frozen=True)
class LaunchContext:
    """One user's launch inputs, read once per request.

    ``saved`` prefills the form (the last launch, or a launch link's request), and
    ``messages`` say which saved choices no longer apply. ``budgets`` holds
    accounting's quota answer per chargeable group; a group without one reads as
    "budget unknown". ``rules`` is None when repository launches are not set up or
    their settings are invalid. ``hub_prefix`` and ``origin`` (``scheme://host`` of the
    request, empty without one) make the form's launch links absolute.

    ``profiles`` are the ``profile_list`` profiles this user may see (QuotaKubeSpawner),
    and ``saved_profile`` the last profile launch's choices that still hold, in
    KubeSpawner's ``user_options`` shape.

    ``enforces_read_only`` is False where the backend cannot make a read-only volume
    read-only (the form says so). ``start_blocked`` says why no choice can start this
    server (it runs already, or the named-server limit is reached); the form disables
    Start with it, and the hub still checks.
    """

    config: LaunchConfig
    member: Member
    rules: RepoRules | None = None
    saved: LaunchRequest = field(default_factory=LaunchRequest)
    messages: tuple[str, ...] = ()
    budgets: Mapping[str, QuotaAnswer] = field(default_factory=dict)
    server_name: str = ""
    hub_prefix: str = DEFAULT_HUB_PREFIX
    origin: str = ""
    untrusted_link: bool = False
    profiles: tuple[Profile, ...] = ()
    saved_profile: Mapping[str, object] = field(default_factory=dict)
    enforces_read_only: bool = True
    start_blocked: str = ""

    @property
    def offers_repositories(self) -> bool:
        """Whether the form has a repository section: rules, and an environment for it."""
        return self.rules is not None and any(
            e.repository for e in self.config.environments.values()
        )

    def prefilled(self, request: LaunchRequest, *, untrusted_link: bool = False) -> LaunchContext:
        """This context with ``request`` (a launch link's) in place of the last launch.

        With ``untrusted_link`` the form warns that the repository is not trusted.
        """
        return dataclasses.replace(
            self, saved=request, saved_profile={}, messages=(), untrusted_link=untrusted_link
        )


@runtime_checkable
class LaunchContextSource(Protocol):
    """What builds a :class:`LaunchContext`: eohub's spawners.

    The launch-link page checks a JupyterHub spawner against this type instead of
    importing the spawner classes.
    """

    async def launch_context(self, *, form: bool = True) -> LaunchContext:
        """The context of this request; raises :class:`InvalidLaunchConfig`."""
        ...

    async def form_context(self, context: LaunchContext) -> LaunchContext:
        """``context`` completed with what only the form shows (asks accounting)."""
        ...

    def repo_rules(self) -> RepoRules | None:
        """The admin's repository rules; None when repository launches are off or invalid."""
        ...


def context_source(spawner: object) -> LaunchContextSource | None:
    """``spawner`` when it builds launch contexts (one of eohub's spawners), else None."""
    return spawner if isinstance(spawner, LaunchContextSource) else None


async def ask_budgets(
    accounting: Any, config: LaunchConfig, member: Member
) -> dict[str, QuotaAnswer]:
    """Accounting's quota answer for each group ``member`` may charge, asked in parallel.

    The question is the smallest size, so that a group's answer says whether it can
    start anything at all; without sizes (a hub of ``profile_list`` profiles only), one
    millicore, so that every group still gets its budget and refusal on the form. A
    group with no quota row gets "no limit", one accounting does not know its refusal.
    Empty when accounting cannot be asked: the form still works ("budget unknown"), and
    the spawn's own quota check decides.
    """
    groups = chargeable_groups(config, member)
    if not groups:
        return {}
    charged = Resources.from_cpu(0.001)
    if config.sizes:
        smallest = min(config.sizes.values(), key=lambda s: (s.gpus, s.cpu, s.memory))
        charged = smallest.charged
    try:
        answers = await asyncio.gather(
            *(
                accounting.check_quota(
                    user=member.username,
                    group=g,
                    cpu=charged.millicores / 1000,
                    memory_bytes=charged.memory_bytes,
                    gpus=0,
                    for_spawn=False,
                )
                for g in groups
            )
        )
    except Exception:
        log.exception("Could not ask accounting for the budgets of {user}", user=member.username)
        return {}
    return dict(zip(groups, answers, strict=True))


async def server_limit_reason(spawner: Any) -> str:
    """Why ``spawner``'s server cannot be started whatever the form says, else "".

    It runs (or is starting or stopping) already; or it is a new named server that the
    hub's ``named_server_limit_per_user`` would not let exist besides the user's others.
    The hub limits only new names: a server that exists may start whatever the count
    (an admin may have lowered the limit since). The hub checks again on Start: this
    only saves a click that cannot work.
    """
    name = getattr(spawner, "name", "") or ""
    if getattr(spawner, "active", False):
        which = f"Your server {name!r}" if name else "Your server"
        return f"{which} is already running: stop it before you start it again."
    handler = getattr(spawner, "handler", None)
    limit_of = getattr(handler, "get_current_user_named_server_limit", None)
    if not name or limit_of is None or name in spawner.user.orm_spawners:
        return ""
    try:
        limit = await limit_of()
    except Exception:
        log.exception("Could not read the named-server limit of {user}", user=spawner.user.name)
        return ""
    others = {n for n in spawner.user.orm_spawners if n}
    if isinstance(limit, int) and limit > 0 and len(others) >= limit:
        return (
            f"You already have the maximum of {limit} named servers: delete one on the "
            "hub's home page before you start another."
        )
    return ""


def request_origin(handler: object) -> str:
    """``scheme://host`` of ``handler``'s request (JupyterHub sets the spawner's
    ``handler`` before it asks for the form); empty without one."""
    request = getattr(handler, "request", None)
    if request is None:
        return ""
    return f"{request.protocol}://{request.host}"


__all__ = [
    "DEFAULT_HUB_PREFIX",
    "InvalidLaunchConfig",
    "LaunchContext",
    "LaunchContextSource",
    "ask_budgets",
    "context_source",
    "request_origin",
    "server_limit_reason",
]
