"""The base of every storage sampler: measure, then charge each owner to a group.

A sampler (:class:`Sampler`) measures what it can see (directories, claims) as
:class:`~eohub.domain.storage.owners.Owner` values and turns them into storage samples
with :meth:`Sampler.resolve_groups`, which applies the group mapping every sampler
shares (``user_groups``, the users' hub groups with ``group_priority``,
``default_group``; the rules are :func:`~eohub.domain.storage.owners.charge_group`).

Hub groups are read through the hub's REST API (``GET /users/<name>``) with the
sampler's token, which then needs the scope ``read:users:groups``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from traitlets import Bool, Dict, Float, List, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from eohub.adapters.hub_api import PAGINATION, HubAPI, HubAPIError
from eohub.domain.accounting.session_record import StorageSample
from eohub.domain.storage.owners import Owner, charge_group, name_problem, round_samples
from eohub.logs import get_logger

log = get_logger(__name__)


class HubGroups(HubAPI):
    """The hub's REST API, reading the groups of one user at a time."""

    async def groups_of(self, user: str) -> frozenset[str]:
        """``user``'s hub groups; none for a user the hub does not know."""
        code, data = await self._request("GET", f"/users/{quote(user, safe='')}", ok=(200, 404))
        if code == 404 or data is None:
            return frozenset()
        groups = data.get("groups") if isinstance(data, dict) else None
        if not isinstance(groups, list):
            raise HubAPIError(
                "GET /users/<name>: the answer has no groups; the sampler's token needs "
                "the scope read:users:groups"
            )
        return frozenset(g for g in groups if isinstance(g, str))


class HubUsers(HubAPI):
    """The hub's REST API, listing the names of all its users."""

    async def user_names(self) -> list[str]:
        """Every user's name, page by page (scopes ``list:users``, ``read:users:name``)."""
        names: list[str] = []
        offset = 0
        while True:
            query: dict[str, str | int] = {"offset": offset, "limit": self.page_size}
            _, data = await self._request("GET", "/users", query=query, accept=PAGINATION)
            if isinstance(data, list):  # a hub without pagination sends everything
                return names + [u["name"] for u in data if isinstance(u, dict) and "name" in u]
            if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                raise HubAPIError("GET /users: the answer is not a page of users")
            names += [u["name"] for u in data["items"] if isinstance(u, dict) and "name" in u]
            following = (data.get("_pagination") or {}).get("next")
            if not isinstance(following, dict):
                return names
            next_offset = following.get("offset")
            if not isinstance(next_offset, int) or next_offset <= offset:
                raise HubAPIError("GET /users: the next page does not move forward")
            offset = next_offset


class Sampler(LoggingConfigurable):
    """Measures storage and charges it to groups; subclasses say what they measure."""

    user_groups = Dict(
        value_trait=Unicode(),
        help="""The group each user's storage is charged to, by user name, e.g.
        ``{"alice": "climate"}``. Wins over the hub groups and ``default_group``; a
        group the source names itself (a ``{group}`` folder, a claim's annotation)
        wins over it.""",
    ).tag(config=True)

    hub_groups = Bool(
        False,
        help="""Read each user's groups from the hub's REST API (``$JUPYTERHUB_API_URL``)
        for users that neither the source nor ``user_groups`` places in a group. The
        sampler's token then needs the scope ``read:users:groups`` (drop-in 35 grants
        it when ``$EOHUB_STORAGE_HUB_GROUPS`` is set). A user in one hub group is
        charged to it; a user in several to the first of ``group_priority`` they are in,
        else ``default_group``. When the hub cannot be asked, those users' samples are
        left for the next round rather than charged to the wrong group.""",
    ).tag(config=True)

    group_priority = List(
        Unicode(),
        help="""With ``hub_groups``: the groups to charge, most preferred first, for
        users in several hub groups.""",
    ).tag(config=True)

    default_group = Unicode(
        "",
        help="""The group charged when nothing else names one. Empty: the sample has no
        group (the accounting service keeps it, and the XDMoD storage export names its
        PI as ``XDMoDExport.storage_unassigned_pi``).""",
    ).tag(config=True)

    hub_api_url = Unicode(
        help="""The hub's REST API, for ``hub_groups``. Default: ``$JUPYTERHUB_API_URL``,
        which JupyterHub sets for a managed service.""",
    ).tag(config=True)

    @default("hub_api_url")
    def _hub_api_url_default(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "")

    hub_api_timeout = Float(30.0, help="Seconds each request to the hub's REST API may take.").tag(
        config=True
    )

    #: The token for the hub's API (set by the application; never logged).
    api_token = ""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Set to stop a walk under way in its thread (SIGTERM).
        self.stopping = threading.Event()
        # Whether the last measure() left something unmeasured (the round then fails).
        self.incomplete = False

    @validate("user_groups")
    def _check_user_groups(self, proposal: dict[str, Any]) -> dict[str, str]:
        value: dict[str, str] = proposal["value"]
        for user, group in value.items():
            problem = name_problem(user, "user") or (group and name_problem(group, "group"))
            if problem:
                raise TraitError(f"user_groups[{user!r}] = {group!r}: the name {problem}")
        return value

    @validate("default_group")
    def _check_default_group(self, proposal: dict[str, Any]) -> str:
        value: str = proposal["value"]
        problem = value and name_problem(value, "group")
        if problem:
            raise TraitError(f"default_group {value!r} {problem}")
        return value

    async def measure(self) -> list[StorageSample]:
        """Measure, and return one sample per user, group charged and source."""
        raise NotImplementedError

    def stop(self) -> None:
        """Ask a measurement under way to stop at its next pause."""
        self.stopping.set()

    async def resolve_groups(self, owners: list[Owner]) -> list[StorageSample]:
        """Samples for ``owners``: one per (user, group charged, source).

        Every sample of the round carries one ``measured_at``, the round's end (now),
        so that the service sees the sources of a round as one measurement. Owners with
        a user or group name the accounting service would refuse are left out with a
        warning, so that one bad name cannot spoil a whole batch.
        """
        owners = [o for o in owners if self._usable(o)]
        needed = sorted({o.user for o in owners if not o.group and o.user not in self.user_groups})
        known: dict[str, frozenset[str]] | None = None
        if self.hub_groups and needed:
            known = await self._read_hub_groups(needed)
        charged = []
        for o in owners:
            if known is not None and o.user in needed and o.user not in known:
                continue  # the hub could not be asked: next round
            group = charge_group(
                o.user,
                source_group=o.group,
                user_groups=self.user_groups,
                hub_groups=known.get(o.user) if known is not None else None,
                group_priority=self.group_priority,
                default_group=self.default_group,
            )
            charged.append((o, group))
        return round_samples(charged, datetime.now(UTC))

    def _usable(self, owner: Owner) -> bool:
        for name, kind in ((owner.user, "user"), (owner.group or "", "group")):
            problem = name_problem(name, kind) if name or kind == "user" else None
            if problem:
                log.warning(
                    "Storage of {kind} {name!r} not sampled: the name {problem}",
                    kind=kind,
                    name=name,
                    problem=problem,
                )
                return False
        return True

    async def _read_hub_groups(self, users: list[str]) -> dict[str, frozenset[str]]:
        """The hub groups of ``users``; {} (and one error logged) if the hub cannot say."""
        try:
            hub = HubGroups(self.hub_api_url, self.api_token, request_timeout=self.hub_api_timeout)
            groups = await asyncio.gather(*(hub.groups_of(u) for u in users))
        except HubAPIError as e:
            log.error(
                "Could not read the users' hub groups ({error}); their storage is sampled "
                "at the next round",
                error=e,
            )
            self.incomplete = True
            return {}
        return dict(zip(users, groups, strict=True))


__all__ = ["HubGroups", "HubUsers", "Sampler"]
