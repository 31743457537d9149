"""eohub's LDAP authenticator: non-blocking, failover, escaped, group-aware.

Unlike jupyterhub-ldapauthenticator, no LDAP call runs on the hub's event loop: each
login is one blocking job in a bounded thread pool. Servers fail over with connect and
receive timeouts, the service-account connections are reused, and every value put
into a filter or DN is escaped. The options are in :mod:`eohub.auth.ldap_config`;
jupyterhub-ldapauthenticator 2.x settings are accepted and mapped onto them at start-up
(:mod:`eohub.auth.ldap_legacy`).

Entries of ``allowed_groups``, ``admin_groups`` and ``blocked_groups`` may be group DNs,
matched against the DNs of the user's directory groups (kept in ``auth_state["ldap"]``).
Two of a user's groups with one name under different DNs are not merged: the name is
withheld from the user's hub groups and grants nothing, yet still blocks, and a
WARNING names both DNs. Groups of *different* users with one name under different DNs
become one hub group, as names do; the first login that shows it logs one WARNING per
name and DN (:meth:`LDAPAuthenticator._note_group_origins`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import Any

from jupyterhub.auth import Authenticator
from tornado import web

from eohub.adapters.ldap.directory import DirectoryUnavailable, DirectoryUser, LDAPDirectory
from eohub.auth.common import GroupPolicyMixin
from eohub.auth.ldap_config import LDAPSettings
from eohub.auth.ldap_legacy import LegacyLDAPSettings
from eohub.domain.identity.access import dn_key
from eohub.domain.identity.access import same_name_clashes as find_clashes
from eohub.domain.identity.profile import UserProfile
from eohub.logs import get_logger

log = get_logger(__name__)


class LDAPAuthenticator(GroupPolicyMixin, LegacyLDAPSettings, LDAPSettings, Authenticator):  # type: ignore[misc]
    """Log users in against an LDAP directory (OpenLDAP, Active Directory, 389-ds, ...).

    Groups are read through a service account from ``memberOf``, groupOfNames,
    groupOfUniqueNames and posixGroup entries, optionally following nested groups, and
    become JupyterHub groups that decide access, admin and everything eohub does next.
    """

    def check_allow_config(self) -> None:
        """Fail hub start-up on settings that cannot work together; start the workers."""
        self.apply_legacy_settings()
        super().check_allow_config()
        problem = self.config_problem()
        if problem:
            raise ValueError(f"LDAPAuthenticator: {problem}")
        self._start_workers()
        if self.sends_plaintext:
            log.warning(
                "LDAPAuthenticator sends passwords over ldap:// without TLS (allow_plaintext)"
            )

    # Wiring

    @cached_property
    def directory(self) -> LDAPDirectory:
        return LDAPDirectory(self.directory_settings())

    @cached_property
    def _executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(
            max_workers=max(1, self.max_concurrency), thread_name_prefix="eohub-ldap"
        )

    def _start_workers(self) -> None:
        """Create every worker thread now, at hub start-up, not during the first burst.

        ThreadPoolExecutor starts threads lazily from the submitting thread, the event
        loop; a burst of logins right after start-up would stall it while they start.
        """
        workers = max(1, self.max_concurrency)
        barrier = threading.Barrier(workers)
        for future in [self._executor.submit(barrier.wait, 10) for _ in range(workers)]:
            future.result()

    def close(self) -> None:
        """Unbind the idle service connections and stop the worker threads.

        Safe at any point: only what was built is closed (a hub stopping after a
        refused config never built its directory, and must not fail on it again).
        """
        built = vars(self)
        if "directory" in built:
            self.directory.close()
        if "_executor" in built:
            self._executor.shutdown(wait=True)

    @cached_property
    def _lookup_cache(self) -> dict[str, tuple[float, DirectoryUser | None]]:
        return {}

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _split_clashes(self, user: DirectoryUser) -> tuple[frozenset[str], frozenset[str]]:
        """The user's hub groups, and the names withheld because two DNs carry them."""
        clashes = find_clashes((g.dn, g.name) for g in user.groups)
        for clash in clashes:
            log.warning(
                "LDAP groups {dns} of {user} share the name {group}: not merged, the name"
                " is withheld from the user (it can block, not allow); give the groups"
                " distinct names or list them by DN",
                dns=list(clash.dns),
                user=user.username,
                group=clash.name,
            )
        clashed = {c.name for c in clashes}
        self._note_group_origins(user, clashed)
        groups = self.resolve_groups(n for n in user.group_names if n not in clashed)
        return groups, self.resolve_groups(clashed) - groups

    @cached_property
    def _group_origins(self) -> dict[str, tuple[str, str]]:
        """Per directory group name: the DN (compared form, as read) first seen with it."""
        return {}

    @cached_property
    def _merges_warned(self) -> set[tuple[str, str]]:
        return set()

    def _note_group_origins(self, user: DirectoryUser, clashed: set[str]) -> None:
        """Warn once per (name, DN) when another user's group of that name has another DN.

        Groups are hub groups by name, so ``cn=climate,ou=groups`` and
        ``cn=climate,ou=partners`` give their members one hub group "climate" (one
        quota, one launch rule). Names one user holds twice are warned about already.
        """
        for group in user.groups:
            key = dn_key(group.dn) or group.dn
            first_key, first_dn = self._group_origins.setdefault(group.name, (key, group.dn))
            if key == first_key or group.name in clashed:
                continue
            if (group.name, key) in self._merges_warned:
                continue
            self._merges_warned.add((group.name, key))
            hub_groups = sorted(self.resolve_groups([group.name]))
            if not hub_groups:
                continue  # dropped by group_rules: nothing is merged
            log.warning(
                "LDAP groups {first} and {other} are both named {name}: their members are"
                " merged into hub group {group}. If they are different groups, narrow"
                " group_search_base to one subtree, rename one in the directory or set"
                " group_name_attribute; list them by DN in allowed_groups, admin_groups or"
                " blocked_groups (a DN entry matches only that DN). group_rules and"
                " group_prefix see names only, not DNs",
                first=first_dn,
                other=group.dn,
                name=group.name,
                group=hub_groups[0],
            )

    def profile_for(
        self, user: DirectoryUser, groups: frozenset[str] | None = None
    ) -> UserProfile:
        """The user's profile; ``groups``: their hub groups if already resolved."""
        if groups is None:
            groups, _ = self._split_clashes(user)
        # PIs found in the directory are named by directory group names: map them too.
        directory_pi_of = self.resolve_groups(user.pi_of)
        return UserProfile(
            username=user.username,
            source="ldap",
            display_name=user.display_name,
            email=user.email,
            uid_number=user.uid_number,
            gid_number=user.gid_number,
            home_directory=user.home_directory,
            groups=groups,
            pi_of=self.resolve_pi_of(user.username, groups, directory_pi_of=directory_pi_of),
        )

    # The JupyterHub Authenticator API

    async def authenticate(self, handler: Any, data: dict[str, str]) -> dict[str, Any] | None:
        username, problem = self.checked_login_name(data.get("username", ""))
        password = data.get("password", "")
        if problem:
            log.warning("LDAP login refused before any directory call: {why}", why=problem)
            return None
        if not password.strip():
            log.warning("LDAP login of {user} refused: empty password", user=username)
            return None
        try:
            user = await self._in_thread(self.directory.authenticate, username, password)
        except DirectoryUnavailable as e:
            # An outage, not a bug: the cause is the line, no traceback.
            log.error("LDAP login of {user} failed: {error}", user=username, error=e)
            raise web.HTTPError(
                503, "The login service cannot reach the directory; try again soon."
            ) from e
        if user is None:
            log.warning(
                "LDAP login of {user} failed: unknown user or wrong password", user=username
            )
            return None
        self._lookup_cache[username] = (time.monotonic(), user)
        return self.ldap_model(user)

    async def refresh_user(self, user: Any, handler: Any = None) -> bool | dict[str, Any]:
        """Re-read the user's groups through the service account (cached for a short TTL).

        The hub's groups and admin flag follow the directory at once. A user who is
        gone or no longer allowed loses everything they held (see
        :meth:`~eohub.auth.common.GroupPolicyMixin.withdraw_access`) and must log in
        again; nothing new is granted when the directory cannot be reached.
        """
        if not (self.service_dn or self.anonymous_search):
            return True  # no account to look users up with: groups stay as at login
        name = user.name
        cached = self._lookup_cache.get(name)
        if cached and time.monotonic() - cached[0] < self.group_cache_ttl:
            found = cached[1]
        else:
            try:
                found = await self._in_thread(self.directory.lookup, name)
            except DirectoryUnavailable as e:
                log.error("LDAP refresh of {user} failed: {error}", user=name, error=e)
                if self.refresh_outage_policy == "keep":
                    return True
                return self.login_required(handler)
            self._lookup_cache[name] = (time.monotonic(), found)
        if found is None:
            if not await self._logged_in_here(user):
                # An API-created service user or a local admin_users account: never
                # in the directory, so its absence withdraws nothing.
                log.debug("Refresh of {user}: not an LDAP login, left alone", user=name)
                return True
            await self.withdraw_access(user, "no longer in the directory", handler)
            return self.refused_after_withdrawal(user, handler)
        return await self.finish_refresh(user, self.ldap_model(found), handler)

    async def _logged_in_here(self, user: Any) -> bool:
        """Whether ``user`` logged in through this authenticator (their DN is recorded).

        Without auth_state (``enable_auth_state`` off) this cannot be told: every user
        counts as an LDAP login, so one gone from the directory still loses access.
        """
        get_state = getattr(user, "get_auth_state", None)
        if not self.enable_auth_state or get_state is None:
            return True
        state = await get_state()
        ldap_state = (state or {}).get("ldap")
        return isinstance(ldap_state, dict) and bool(ldap_state.get("dn"))

    # DN entries and same-named groups: the decision also reads auth_state["ldap"].

    def ldap_model(self, user: DirectoryUser) -> dict[str, Any]:
        """The auth model of a directory user, with their group DNs in auth_state."""
        groups, withheld = self._split_clashes(user)
        state: dict[str, Any] = {
            "ldap": {
                "dn": user.dn,
                "group_dns": user.group_dns,
                "withheld_groups": sorted(withheld),
            }
        }
        if self.auth_state_attributes:
            state["user_attributes"] = dict(user.extra)
        return self.auth_model_for(self.profile_for(user, groups), extra_state=state)

    def membership_facts(self, model: Mapping[str, Any] | None) -> dict[str, Any]:
        """The user's directory group DNs and withheld names, from ``auth_state["ldap"]``."""
        state = (model or {}).get("auth_state") or {}
        ldap_state = state.get("ldap") if isinstance(state, Mapping) else None
        if not isinstance(ldap_state, Mapping):
            return {}
        return {
            "group_dns": tuple(ldap_state.get("group_dns") or ()),
            "withheld": frozenset(ldap_state.get("withheld_groups") or ()),
        }
