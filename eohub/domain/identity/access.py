"""Who may log in, and who is admin, from a user's name and canonical groups.

One pure function, :func:`decide_access`, answers for both authenticators. Blocks
always win. ``allowed_groups`` is a restriction: when it is set, ``allow_all`` does
not let anyone else in (the bypass behind several oauthenticator advisories).
:func:`refresh_outcome` says what a refresh leaves the user holding in the hub.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AccessPolicy:
    """The hub's access rules, as configured on the authenticator."""

    allow_all: bool = False
    allowed_users: frozenset[str] = frozenset()
    blocked_users: frozenset[str] = frozenset()
    admin_users: frozenset[str] = frozenset()
    allowed_groups: frozenset[str] = frozenset()
    blocked_groups: frozenset[str] = frozenset()
    admin_groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AccessDecision:
    """Allowed or not, with the reason logged for the hub admin.

    ``admin`` is None when admin status is not managed by groups (no ``admin_groups``
    configured and the user is not in ``admin_users``): JupyterHub then keeps whatever
    admin flag the user already has.
    """

    allowed: bool
    admin: bool | None
    reason: str
    # A block (blocked_users, blocked_groups) rather than a missing permission: the two
    # are logged differently.
    blocked: bool = False


def decide_access(username: str, groups: frozenset[str], policy: AccessPolicy) -> AccessDecision:
    """Decide whether ``username`` with ``groups`` may log in, and whether as admin."""
    if username in policy.blocked_users:
        return AccessDecision(False, None, "user is in blocked_users", blocked=True)
    blocked = groups & policy.blocked_groups
    if blocked:
        return AccessDecision(
            False, None, f"member of blocked group {min(blocked)!r}", blocked=True
        )

    admin: bool | None = None
    if policy.admin_groups:
        admin = bool(groups & policy.admin_groups)
    if username in policy.admin_users:
        admin = True
    if admin:
        return AccessDecision(True, True, "admin")

    if username in policy.allowed_users:
        return AccessDecision(True, admin, "user is in allowed_users")
    if policy.allowed_groups:
        allowed = groups & policy.allowed_groups
        if allowed:
            return AccessDecision(True, admin, f"member of allowed group {min(allowed)!r}")
        return AccessDecision(False, admin, "not a member of any allowed group")
    if policy.allow_all:
        return AccessDecision(True, admin, "allow_all")
    return AccessDecision(False, admin, "not in allowed_users, and no allowed_groups match")


@dataclass(frozen=True)
class RefreshOutcome:
    """What the hub must hold for a user after a refresh read their current groups.

    ``groups`` and ``admin`` replace what the hub has (``admin`` None: leave the flag as
    it is). A user whose access is withdrawn holds nothing: no hub group, since a role
    granted through a group would otherwise outlive the access, and no admin.
    """

    decision: AccessDecision
    groups: frozenset[str]
    admin: bool | None

    @property
    def withdrawn(self) -> bool:
        return not self.decision.allowed


def refresh_outcome(username: str, groups: frozenset[str], policy: AccessPolicy) -> RefreshOutcome:
    """The hub groups and admin flag ``username`` keeps after a refresh found ``groups``."""
    decision = decide_access(username, groups, policy)
    if decision.allowed:
        return RefreshOutcome(decision, groups, decision.admin)
    return RefreshOutcome(decision, frozenset(), False)


@dataclass(frozen=True)
class PIRules:
    """Where PIs come from: config, the directory, or a role in an entitlement."""

    configured: Mapping[str, frozenset[str]] = field(default_factory=dict)
    roles: frozenset[str] = frozenset()


def pi_groups(
    username: str,
    groups: frozenset[str],
    rules: PIRules,
    *,
    directory_pi_of: Iterable[str] = (),
    group_roles: Mapping[str, frozenset[str]] | None = None,
) -> frozenset[str]:
    """The groups among ``groups`` that ``username`` is a PI of.

    A PI must also be a member: a stale PI entry for a group the user has left grants
    nothing.
    """
    pi_of = {g for g in groups if username in rules.configured.get(g, frozenset())}
    pi_of |= groups & set(directory_pi_of)
    for group, roles in (group_roles or {}).items():
        if group in groups and roles & rules.roles:
            pi_of.add(group)
    return frozenset(pi_of)
