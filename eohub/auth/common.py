"""What eohub's authenticators share: login names, group traits, access, the profile.

:class:`GroupPolicyMixin` sits before the JupyterHub authenticator base class in the
MRO. Subclasses resolve a :class:`~eohub.domain.identity.profile.UserProfile` (their only job)
and call :meth:`GroupPolicyMixin.auth_model_for`; the mixin answers JupyterHub's
``check_blocked_users``, ``check_allowed`` and ``is_admin`` hooks from one pure
decision, :func:`~eohub.domain.identity.access.decide_access`.

``check_blocked_users`` runs *before* JupyterHub looks at ``allow_all``; when
``allow_all`` is on, the group restrictions are enforced there too, so ``allow_all``
cannot bypass them.

``allow_existing_users`` defaults to False here: JupyterHub would add every user in its
database to ``allowed_users``, so that no refresh could ever withdraw them.

A refresh ends in :meth:`GroupPolicyMixin.finish_refresh`: an allowed user's groups and
admin flag replace the old ones; a user whose access is withdrawn loses admin, groups
and roles at once, and by default tokens and servers. Returning False alone is not
enough: JupyterHub 6.1 keeps serving token-authenticated requests of a user whose
refresh failed, and a refresh forced inside a request (before a spawn) comes after its
scopes were computed, so such a request is refused with a 403 instead.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from typing import Any

from jupyterhub.handlers.login import LogoutHandler
from jupyterhub.utils import new_token
from tornado import web
from traitlets import Bool, Dict, List, Set, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from eohub.domain.identity import groups as group_names
from eohub.domain.identity.access import (
    AccessDecision,
    AccessPolicy,
    PIRules,
    decide_access,
    pi_groups,
    refresh_outcome,
)
from eohub.domain.identity.groups import GroupConfigError, GroupRule, canonical_groups
from eohub.domain.identity.profile import AUTH_STATE_KEY, UserProfile
from eohub.domain.identity.usernames import (
    DEFAULT_USERNAME_PATTERN,
    login_name_problem,
    normalize_login_name,
)
from eohub.logs import attach, get_logger

log = get_logger(__name__)
_STOPPING: set[asyncio.Future[Any]] = set()


class GroupPolicyMixin(LoggingConfigurable):
    """Login names, group-driven access, admin and PI rules shared by eohub's authenticators."""

    login_name_pattern = Unicode(
        DEFAULT_USERNAME_PATTERN,
        help="""
        Regular expression a user name must match in full, after Unicode (NFKC) folding
        and, with ``lowercase_login_names``, lowercasing: the name typed at an LDAP login
        (checked before anything is sent to the directory), or the ``username_claim`` of
        an OIDC login. Other names are refused. The default suits POSIX, Kubernetes and
        URLs. OIDC with ``username_claim`` ``email``, ``voperson_id``,
        ``eduperson_principal_name``, ``eppn`` or ``upn`` defaults instead to the
        e-mail-like ``[a-z0-9_][a-z0-9._+-]{0,63}@[a-z0-9-]+(?:\\.[a-z0-9-]+)*`` (any
        domain; logged at start-up): narrow it to your domains, e.g.
        ``[a-z0-9._+-]+@example\\.org``. A callable ``username_claim`` keeps the default.
        """,
    ).tag(config=True)
    lowercase_login_names = Bool(
        True, help="Lowercase user names before checking and using them."
    ).tag(config=True)

    allowed_groups = Set(
        Unicode(),
        help="""
        Groups whose members may log in (canonical names, after ``group_rules``).

        This is a restriction: when it is set, only members of these groups, users in
        ``allowed_users`` and admins may log in, even if ``allow_all`` is True.
        """,
    ).tag(config=True, allow_config=True)
    blocked_groups = Set(
        Unicode(),
        help="""
        Groups whose members may never log in, whatever else allows them (including
        ``admin_groups`` and ``allow_all``). Checked again at every refresh.
        """,
    ).tag(config=True)
    admin_groups = Set(
        Unicode(),
        help="""
        Groups whose members are hub admins. When set, admin status follows the groups:
        a user removed from every admin group loses admin at the next login or refresh
        (users in ``admin_users`` stay admins).
        """,
    ).tag(config=True)
    group_rules = List(
        Dict(),
        help="""
        Rules that turn directory or identity-provider group names into hub group
        names, tried in order; the first whose ``pattern`` matches the whole name wins.
        Each rule is ``{"pattern": <regex>, "replacement": <template>}``; the template may
        use ``\\1`` or ``\\g<name>``, and an empty replacement drops the group. Example:
        ``[{"pattern": r"/projects/(.+)", "replacement": r"\\1"}]``.
        Invalid rules stop the hub at start-up with a message naming the rule.
        """,
    ).tag(config=True)
    keep_unmatched_groups = Bool(
        True,
        help="""
        Keep group names that no ``group_rules`` entry matches, unchanged. Set to False
        to keep only the groups your rules name and ignore every other group.
        """,
    ).tag(config=True)
    group_prefix = Unicode(
        "",
        help="""
        Text put before every group name of this source, after ``group_rules``, e.g.
        ``"egi:"``, when two sources share one hub (``LDAPOIDCAuthenticator``) and a
        name must not mean one hub group for both. Group settings (``allowed_groups``,
        quotas, ...) then name the prefixed groups. To prefix only some groups, put the
        prefix in a ``group_rules`` replacement instead.
        """,
    ).tag(config=True)
    pi_users = Dict(
        value_trait=List(Unicode()),
        help="""
        Principal investigators per group, as ``{"group": ["user", ...]}``. A PI sees their
        group's usage and budget; they must also be a member of the group. PIs can also
        come from the directory (LDAP) or an entitlement role (OIDC ``pi_roles``).
        """,
    ).tag(config=True)
    pi_roles = Set(
        Unicode(),
        default_value={"pi", "manager"},
        help="""
        Roles in an entitlement (for example ``role=manager`` in an EGI Check-in URN)
        that make a member a PI of that group.
        """,
    ).tag(config=True)

    withdrawn_access_revokes_tokens = Bool(
        True,
        help="""
        When a refresh finds that a user may no longer log in (removed from every
        allowed group, in a blocked group, gone from the directory), delete all their
        API and OAuth tokens and end all their browser sessions. Whatever this says, the
        user loses admin, their hub groups and their roles at once, so a token they
        keep can no longer act as admin or through a group's role. Set to False only
        if scripts must keep their tokens across a temporary removal.
        """,
    ).tag(config=True)
    withdrawn_access_stops_servers = Bool(
        True,
        help="""
        When a refresh withdraws a user's access (see
        ``withdrawn_access_revokes_tokens``), stop all their running servers. Set to
        False to let running servers finish; they cannot reach the hub's API once the
        tokens are revoked.
        """,
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        parent = kwargs.get("parent")
        if isinstance(parent, LoggingConfigurable):
            # Before the config is loaded: a trait observer may log already.
            attach(parent.log)
        super().__init__(**kwargs)
        attach(self.log)

    @default("manage_groups")
    def _manage_groups_default(self) -> bool:
        # The whole product reads JupyterHub groups; mirror the directory by default.
        return True

    @default("allow_existing_users")
    def _allow_existing_users_default(self) -> bool:
        # JupyterHub turns this on whenever allowed_users is set, and then adds every
        # user in its database (at start-up, and each one created through the API) to
        # allowed_users: anyone who ever logged in would stay allowed whatever their
        # groups, and a refresh could never withdraw them. Access follows the groups.
        return False

    @validate("login_name_pattern")
    def _validate_login_name_pattern(self, proposal: dict[str, Any]) -> str:
        try:
            re.compile(proposal["value"])
        except re.error as e:
            raise TraitError(
                f"{type(self).__name__}.login_name_pattern: invalid regular expression: {e}"
            ) from e
        return str(proposal["value"])

    def checked_login_name(self, raw: str) -> tuple[str, str | None]:
        """The user name ``raw`` stands for, and why it may not log in (None if it may)."""
        name = normalize_login_name(raw, lowercase=self.lowercase_login_names)
        return name, login_name_problem(name, re.compile(self.login_name_pattern))

    @validate("group_rules")
    def _validate_group_rules(self, proposal: dict[str, Any]) -> list[dict[str, str]]:
        rules = proposal["value"]
        for index, spec in enumerate(rules):
            try:
                GroupRule.parse(spec, where=f"{type(self).__name__}.group_rules[{index}]")
            except GroupConfigError as e:
                raise TraitError(str(e)) from e
        return list(rules)

    @validate("group_prefix")
    def _validate_group_prefix(self, proposal: dict[str, Any]) -> str:
        problem = group_names.group_prefix_problem(str(proposal["value"]))
        if problem:
            raise TraitError(f"{type(self).__name__}.group_prefix {problem}")
        return str(proposal["value"])

    @property
    def compiled_group_rules(self) -> tuple[GroupRule, ...]:
        return tuple(GroupRule.parse(spec) for spec in self.group_rules)

    def access_policy(self) -> AccessPolicy:
        return AccessPolicy(
            allow_all=bool(getattr(self, "allow_all", False)),
            allowed_users=frozenset(getattr(self, "allowed_users", ())),
            blocked_users=frozenset(getattr(self, "blocked_users", ())),
            admin_users=frozenset(getattr(self, "admin_users", ())),
            allowed_groups=frozenset(self.allowed_groups),
            blocked_groups=frozenset(self.blocked_groups),
            admin_groups=frozenset(self.admin_groups),
        )

    def resolve_groups(self, raw_names: Iterable[str]) -> frozenset[str]:
        """Canonical hub group names from a directory's or provider's names."""
        return canonical_groups(
            raw_names,
            self.compiled_group_rules,
            keep_unmatched=self.keep_unmatched_groups,
            prefix=self.group_prefix,
        )

    def resolve_pi_of(
        self,
        username: str,
        groups: frozenset[str],
        *,
        directory_pi_of: Iterable[str] = (),
        group_roles: Mapping[str, frozenset[str]] | None = None,
    ) -> frozenset[str]:
        rules = PIRules(
            configured={g: frozenset(users) for g, users in self.pi_users.items()},
            roles=frozenset(self.pi_roles),
        )
        return pi_groups(
            username, groups, rules, directory_pi_of=directory_pi_of, group_roles=group_roles
        )

    def membership_facts(self, model: Mapping[str, Any] | None) -> dict[str, Any]:
        """Keyword arguments for :func:`~eohub.domain.identity.access.decide_access`
        beyond ``model["groups"]`` (LDAP: the group DNs in ``auth_state``), for every
        access decision and refresh outcome of this source. None by default."""
        return {}

    def decide(self, username: str, authentication: Mapping[str, Any] | None) -> AccessDecision:
        groups = frozenset((authentication or {}).get("groups") or ())
        facts = self.membership_facts(authentication)
        return decide_access(username, groups, self.access_policy(), **facts)

    def auth_model_for(
        self, profile: UserProfile, extra_state: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The JupyterHub auth model for ``profile``: name, groups, admin and auth_state."""
        state = {**(extra_state or {}), AUTH_STATE_KEY: profile.to_auth_state()}
        model: dict[str, Any] = {"name": profile.username, "groups": sorted(profile.groups)}
        model["auth_state"] = state
        model["admin"] = self.decide(profile.username, model).admin
        return model

    # JupyterHub's hooks, all answered by the one decision.

    def check_blocked_users(
        self, username: str, authentication: Mapping[str, Any] | None = None
    ) -> bool:
        decision = self.decide(username, authentication)
        # JupyterHub logs a refusal here as "blocked" and skips check_allowed under
        # allow_all: refuse blocks here, and everyone allow_all would let through.
        refuse = not decision.allowed and (
            decision.blocked or bool(getattr(self, "allow_all", False))
        )
        if refuse:
            log.warning("Login of {user} refused: {why}", user=username, why=decision.reason)
        return not refuse

    def check_allowed(
        self, username: str, authentication: Mapping[str, Any] | None = None
    ) -> bool:
        decision = self.decide(username, authentication)
        if not decision.allowed:
            log.warning("Login of {user} refused: {why}", user=username, why=decision.reason)
        return decision.allowed

    def is_admin(self, handler: Any, authentication: Mapping[str, Any]) -> bool | None:
        return self.decide(str(authentication["name"]), authentication).admin

    # Refresh: the source's current groups replace the hub's, and a withdrawal sticks.

    async def finish_refresh(
        self, user: Any, model: dict[str, Any], handler: Any = None
    ) -> bool | dict[str, Any]:
        """The value ``refresh_user`` returns once the source answered with ``model``.

        An allowed user gets ``model``, from which JupyterHub sets their groups and admin
        flag. Otherwise access is withdrawn (:meth:`withdraw_access`); False: log in.
        """
        groups = frozenset(model.get("groups") or ())
        facts = self.membership_facts(model)
        outcome = refresh_outcome(str(user.name), groups, self.access_policy(), **facts)
        if not outcome.withdrawn:
            return {**model, "groups": sorted(outcome.groups), "admin": outcome.admin}
        await self.withdraw_access(user, outcome.decision.reason, handler)
        return self.refused_after_withdrawal(user, handler)

    def refused_after_withdrawal(self, user: Any, handler: Any) -> bool:
        """The ``refresh_user`` answer once ``user``'s access was withdrawn.

        A refresh in ``prepare`` comes before the request's scopes (now emptied): False
        is enough. One forced later (``refresh_pre_spawn``) comes after them, and
        JupyterHub 6.1 would go on with the request: a spawn is refused with a 403; a
        stop (DELETE, logout) may go on.
        """
        request = getattr(handler, "request", None)
        if (
            hasattr(handler, "parsed_scopes")
            and request is not None
            and request.method != "DELETE"
            and not isinstance(handler, LogoutHandler)
        ):
            raise web.HTTPError(403, f"Access of {user.name} has been withdrawn")
        return self.login_required(handler)

    def login_required(self, handler: Any) -> bool:
        """False, the ``refresh_user`` answer that sends the user back to the login.

        JupyterHub 6.1.1 then reads ``handler._token_authenticated``, set only on
        token-authenticated requests: a browser request would end in an AttributeError.
        """
        if handler is not None and not hasattr(handler, "_token_authenticated"):
            handler._token_authenticated = False
        return False

    async def withdraw_access(self, user: Any, reason: str, handler: Any = None) -> None:
        """Take everything away from ``user`` now: admin, groups, roles, tokens, servers.

        JupyterHub 6.1 keeps using the stale user for token-authenticated requests
        after a failed refresh: without roles, even a kept token
        (``withdrawn_access_revokes_tokens`` False) grants nothing. The next login
        gives the default roles back.
        """
        orm_user = getattr(user, "orm_user", None)
        if orm_user is None:
            # Not a user of a running hub (a refresh checked outside one): nothing held.
            log.warning("Refresh of {user}: access withdrawn ({why})", user=user.name, why=reason)
            return
        was_admin = bool(orm_user.admin)
        groups = sorted(g.name for g in orm_user.groups)
        shares, revoked = self._strip_orm_user(user.db, orm_user)
        await self._forget_groups(user)
        stopping = []
        if self.withdrawn_access_stops_servers:
            for name, spawner in list(user.spawners.items()):
                if spawner.active and not spawner.pending:
                    stopping.append(name or "(default)")
                    self._stop_server(user, name, handler)
        log.warning(
            "Refresh of {user}: access withdrawn ({why}); admin {admin}, groups removed"
            " {groups}, shares removed {shares}, tokens revoked {revoked}, servers stopping"
            " {servers}",
            user=user.name,
            why=reason,
            admin="removed" if was_admin else "not held",
            groups=groups,
            shares=shares,
            revoked=revoked,
            servers=stopping,
        )

    def _strip_orm_user(self, db: Any, orm_user: Any) -> tuple[int, int]:
        """Remove admin, groups, roles, shares and (by default) tokens; commit.

        Returns how many shares were removed and how many tokens revoked.
        """
        orm_user.admin = False
        # Even with manage_groups off: a group's roles would outlive the access.
        orm_user.groups = []
        orm_user.roles = []
        # Servers others shared with the user: a token they keep reaches none of them.
        shares = list(getattr(orm_user, "shared_with_me", ()))
        for share in shares:
            db.delete(share)
        revoked = 0
        if self.withdrawn_access_revokes_tokens:
            for token in list(orm_user.api_tokens):
                # The request being refreshed may still read its own token after this
                # commit; load what it reads while the token is attached.
                _ = (token.oauth_client, token.service, token.user)
                db.delete(token)
                revoked += 1
            # A new cookie id ends every browser session of the user.
            orm_user.cookie_id = new_token()
        db.commit()
        return len(shares), revoked

    async def _forget_groups(self, user: Any) -> None:
        # The spawner and services read groups and PI roles from auth_state: clear them.
        get_state = getattr(user, "get_auth_state", None)
        state = await get_state() if get_state is not None else None
        profile = (state or {}).get(AUTH_STATE_KEY)
        if isinstance(profile, dict) and any(
            profile.get(k) for k in ("groups", "pi_of", "group_roles")
        ):
            profile.update(groups=[], pi_of=[], group_roles={})
            await user.save_auth_state(state)

    def _stop_server(self, user: Any, name: str, handler: Any) -> None:
        # In the background: a refresh must not wait up to a spawner's stop timeout.
        stop = getattr(handler, "stop_single_user", None)
        future = asyncio.ensure_future(stop(user, name) if stop else user.stop(name))
        _STOPPING.add(future)  # the event loop keeps only a weak reference

        def done(f: asyncio.Future[Any]) -> None:
            _STOPPING.discard(f)
            if f.cancelled():
                return
            try:
                f.result()
            except Exception as e:
                # Nothing else awaits this stop: its traceback is logged here, once.
                log.exception(
                    "Stopping server {server!r} of {user} after withdrawal failed: {error}",
                    server=name,
                    user=user.name,
                    error=e,
                )

        future.add_done_callback(done)
