"""What eohub's authenticators share: login names, group traits, access, the profile.

:class:`GroupPolicyMixin` sits before the JupyterHub authenticator base class in the
MRO. Subclasses resolve a :class:`~eohub.domain.profile.UserProfile` (their only job)
and call :meth:`GroupPolicyMixin.auth_model_for`; the mixin answers JupyterHub's
``check_blocked_users``, ``check_allowed`` and ``is_admin`` hooks from one pure
decision, :func:`~eohub.domain.access.decide_access`.

``check_blocked_users`` runs *before* JupyterHub looks at ``allow_all``, which is why the
group restrictions are enforced there: ``allow_all`` cannot bypass them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from traitlets import Bool, Dict, List, Set, TraitError, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from eohub.domain.access import AccessDecision, AccessPolicy, PIRules, decide_access, pi_groups
from eohub.domain.groups import GroupConfigError, GroupRule, canonical_groups
from eohub.domain.profile import AUTH_STATE_KEY, UserProfile
from eohub.domain.usernames import (
    DEFAULT_USERNAME_PATTERN,
    login_name_problem,
    normalize_login_name,
)


class GroupPolicyMixin(LoggingConfigurable):
    """Login names, group-driven access, admin and PI rules shared by eohub's authenticators."""

    login_name_pattern = Unicode(
        DEFAULT_USERNAME_PATTERN,
        config=True,
        help="""
        Regular expression a user name must match in full, after Unicode (NFKC) folding
        and, with `lowercase_login_names`, lowercasing: the name typed at an LDAP login
        (checked before anything is sent to the directory), or the `username_claim` of
        an OIDC login. Other names are refused. The default suits POSIX, Kubernetes and
        URLs; with OIDC `username_claim = "email"`, widen it, e.g.
        `[a-z0-9._-]+@example\\.org`.
        """,
    )
    lowercase_login_names = Bool(
        True, config=True, help="Lowercase user names before checking and using them."
    )

    allowed_groups = Set(
        Unicode(),
        config=True,
        help="""
        Groups whose members may log in (canonical names, after `group_rules`).

        This is a restriction: when it is set, only members of these groups, users in
        `allowed_users` and admins may log in, even if `allow_all` is True.
        """,
    ).tag(allow_config=True)
    blocked_groups = Set(
        Unicode(),
        config=True,
        help="""
        Groups whose members may never log in, whatever else allows them (including
        `admin_groups` and `allow_all`). Checked again at every refresh.
        """,
    )
    admin_groups = Set(
        Unicode(),
        config=True,
        help="""
        Groups whose members are hub admins. When set, admin status follows the groups:
        a user removed from every admin group loses admin at the next login or refresh
        (users in `admin_users` stay admins).
        """,
    )
    group_rules = List(
        Dict(),
        config=True,
        help="""
        Rules that turn directory or identity-provider group names into hub group
        names, tried in order; the first whose `pattern` matches the whole name wins.
        Each rule is `{"pattern": <regex>, "replacement": <template>}`; the template may
        use `\\1` or `\\g<name>`, and an empty replacement drops the group. Example:
        `[{"pattern": r"/projects/(.+)", "replacement": r"\\1"}]`.
        Invalid rules stop the hub at start-up with a message naming the rule.
        """,
    )
    keep_unmatched_groups = Bool(
        True,
        config=True,
        help="""
        Keep group names that no `group_rules` entry matches, unchanged. Set to False
        to keep only the groups your rules name and ignore every other group.
        """,
    )
    pi_users = Dict(
        value_trait=List(Unicode()),
        config=True,
        help="""
        Principal investigators per group, as `{"group": ["user", ...]}`. A PI sees their
        group's usage and budget; they must also be a member of the group. PIs can also
        come from the directory (LDAP) or an entitlement role (OIDC `pi_roles`).
        """,
    )
    pi_roles = Set(
        Unicode(),
        default_value={"pi", "manager"},
        config=True,
        help="""
        Roles in an entitlement (for example `role=manager` in an EGI Check-in URN)
        that make a member a PI of that group.
        """,
    )

    @default("manage_groups")
    def _manage_groups_default(self) -> bool:
        # The whole product reads JupyterHub groups; mirror the directory by default.
        return True

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
            raw_names, self.compiled_group_rules, keep_unmatched=self.keep_unmatched_groups
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

    def decide(self, username: str, authentication: Mapping[str, Any] | None) -> AccessDecision:
        groups = frozenset((authentication or {}).get("groups") or ())
        return decide_access(username, groups, self.access_policy())

    def auth_model_for(
        self, profile: UserProfile, extra_state: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """The JupyterHub auth model for ``profile``: name, groups, admin and auth_state."""
        decision = decide_access(profile.username, profile.groups, self.access_policy())
        return {
            "name": profile.username,
            "admin": decision.admin,
            "groups": sorted(profile.groups),
            "auth_state": {**(extra_state or {}), AUTH_STATE_KEY: profile.to_auth_state()},
        }

    # JupyterHub's hooks, all answered by the one decision.

    def check_blocked_users(
        self, username: str, authentication: Mapping[str, Any] | None = None
    ) -> bool:
        decision = self.decide(username, authentication)
        if not decision.allowed:
            self.log.warning("Login of %s refused: %s", username, decision.reason)
        return decision.allowed

    def check_allowed(
        self, username: str, authentication: Mapping[str, Any] | None = None
    ) -> bool:
        return self.decide(username, authentication).allowed

    def is_admin(self, handler: Any, authentication: Mapping[str, Any]) -> bool | None:
        return self.decide(str(authentication["name"]), authentication).admin
