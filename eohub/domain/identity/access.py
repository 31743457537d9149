"""Who may log in, and who is admin, from a user's name and canonical groups.

One pure function, :func:`decide_access`, answers for both authenticators. Blocks
always win. ``allowed_groups`` is a restriction: when it is set, ``allow_all`` does
not let anyone else in (the bypass behind several oauthenticator advisories).
:func:`refresh_outcome` says what a refresh leaves the user holding in the hub.

A group entry may also be an LDAP DN (``cn=climate,ou=groups,dc=example,dc=org``): it
matches only the directory group with that DN (compared by :func:`dn_key`), never a
group elsewhere that has the same name, nor a group *name* spelled like that DN (an
OIDC group may be called ``cn=hub-admins,ou=groups,...``). :func:`same_name_clashes`
finds the groups of one user that share a name under different DNs; such a name grants
nothing but still blocks (the ``withheld`` names of :func:`decide_access`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# An RDN's attribute type: a name (cn, ou, dc, ...) or a numeric OID (RFC 4514).
_RDN = re.compile(r"\s*(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)\s*=.*", re.S)
_RDN_SEPARATOR = re.compile(r"(?<!\\),")


def dn_key(entry: str) -> str | None:
    """The comparable form of ``entry`` if it is an LDAP DN, else None.

    A DN here has two RDNs or more (a group's DN always has a parent), so a hub
    group name such as an entitlement URN or ``role=pi`` is never taken for one.
    Attribute types and values are compared without case and surrounding spaces,
    as directories compare ``cn``, ``ou`` and ``dc``.
    """
    parts = _RDN_SEPARATOR.split(entry)
    if len(parts) < 2 or not all(_RDN.fullmatch(part) for part in parts):
        return None
    rdns = []
    for part in parts:
        attribute, _, value = part.partition("=")
        rdns.append(f"{attribute.strip().lower()}={value.strip().lower()}")
    return ",".join(rdns)


def _matching(
    entries: Iterable[str], names: frozenset[str], dn_keys: frozenset[str]
) -> frozenset[str]:
    """The policy ``entries`` a user matches: DN entries (in :func:`dn_key` form) by the
    user's directory group DNs only, name entries by the user's group names only.

    Kept apart because an identity provider may name a group like a DN (Keycloak allows
    ``,`` and ``=``): such a name must not pass for the directory group with that DN.
    """
    found: set[str] = set()
    for entry in entries:
        key = dn_key(entry)
        if key is None and entry in names:
            found.add(entry)
        elif key is not None and key in dn_keys:
            found.add(key)
    return frozenset(found)


@dataclass(frozen=True)
class NameClash:
    """Groups of one user that carry the same name under different DNs."""

    name: str
    dns: tuple[str, ...]


def same_name_clashes(groups: Iterable[tuple[str, str]]) -> tuple[NameClash, ...]:
    """The names that ``groups`` (pairs of DN and name) carry under two DNs or more.

    Such groups are different groups (``cn=climate,ou=groups`` and
    ``cn=climate,ou=partners``); giving their members one hub group would merge them.
    """
    by_name: dict[str, dict[str, str]] = {}
    for dn, name in groups:
        by_name.setdefault(name, {}).setdefault(dn_key(dn) or dn, dn)
    return tuple(
        NameClash(name, tuple(sorted(dns.values())))
        for name, dns in sorted(by_name.items())
        if len(dns) > 1
    )


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


def decide_access(
    username: str,
    groups: frozenset[str],
    policy: AccessPolicy,
    *,
    group_dns: Iterable[str] = (),
    withheld: frozenset[str] = frozenset(),
) -> AccessDecision:
    """Decide whether ``username`` with ``groups`` may log in, and whether as admin.

    ``group_dns`` are the DNs of the user's directory groups, matched by DN entries of
    the policy. ``withheld`` are group names the user holds ambiguously (see
    :func:`same_name_clashes`): they can block, never allow or make an admin.
    """
    if username in policy.blocked_users:
        return AccessDecision(False, None, "user is in blocked_users", blocked=True)
    dn_keys = frozenset(key for dn in group_dns if (key := dn_key(dn)))
    blocked = _matching(policy.blocked_groups, groups | withheld, dn_keys)
    if blocked:
        return AccessDecision(
            False, None, f"member of blocked group {min(blocked)!r}", blocked=True
        )

    admin: bool | None = None
    if policy.admin_groups:
        admin = bool(_matching(policy.admin_groups, groups, dn_keys))
    if username in policy.admin_users:
        admin = True
    if admin:
        return AccessDecision(True, True, "admin")

    if username in policy.allowed_users:
        return AccessDecision(True, admin, "user is in allowed_users")
    if policy.allowed_groups:
        allowed = _matching(policy.allowed_groups, groups, dn_keys)
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


def refresh_outcome(
    username: str,
    groups: frozenset[str],
    policy: AccessPolicy,
    *,
    group_dns: Iterable[str] = (),
    withheld: frozenset[str] = frozenset(),
) -> RefreshOutcome:
    """The hub groups and admin flag ``username`` keeps after a refresh found ``groups``."""
    decision = decide_access(username, groups, policy, group_dns=group_dns, withheld=withheld)
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
