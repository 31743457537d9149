"""The rules of one hub with two login sources, LDAP and OIDC, as pure functions.

:class:`eohub.auth.ldap_oidc.LDAPOIDCAuthenticator` asks these: which source a hub user
came from (:func:`login_source`), whether a login may take a user name another source
already holds (:func:`ownership_refusal`), and which settings belong to the hub as a
whole or to one source (:func:`misplaced_settings`). No JupyterHub import here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

LDAP = "ldap"
OIDC = "oidc"
SOURCES = (LDAP, OIDC)
#: The owner of a hub user whose encrypted auth_state the hub cannot decrypt (the
#: crypt key changed): unknown, so neither source may take the name.
UNREADABLE = "unreadable"

#: Settings the combined authenticator decides with, for users of both sources: set
#: on ``c.LDAPOIDCAuthenticator`` (or ``c.Authenticator``), never on one source's own
#: section, where they would make the two sources' users meet different rules.
SHARED_TRAITS = (
    "allow_all",
    "allowed_users",
    "blocked_users",
    "admin_users",
    "allowed_groups",
    "blocked_groups",
    "admin_groups",
    "pi_users",
    "pi_roles",
    "withdrawn_access_revokes_tokens",
    "withdrawn_access_stops_servers",
    "enable_auth_state",
    "manage_groups",
)

#: Settings that read one source's names: they go on ``c.LDAPAuthenticator`` or
#: ``c.OIDCAuthenticator``; on ``c.LDAPOIDCAuthenticator`` they would do nothing.
PER_SOURCE_TRAITS = (
    "login_name_pattern",
    "lowercase_login_names",
    "group_rules",
    "keep_unmatched_groups",
    "group_prefix",
)

#: How a refusal names each source to the person who logs in.
SOURCE_WORDS = {LDAP: "the username and password form", OIDC: "the {service} button"}


def login_source(auth_state: Mapping[str, Any] | None) -> str | None:
    """The source (``"ldap"`` or ``"oidc"``) whose login stored ``auth_state``, or None.

    eohub's profile names it; older states are told apart by what each source keeps
    (the LDAP entry's DN, the provider's tokens). None: a user no login created (an
    API-created service account, a name in ``admin_users`` before its first login).
    """
    state = auth_state or {}
    profile = state.get("eohub")
    if isinstance(profile, Mapping) and profile.get("source") in SOURCES:
        return str(profile["source"])
    ldap = state.get("ldap")
    if isinstance(ldap, Mapping) and ldap.get("dn"):
        return LDAP
    if state.get("oauth_user") or state.get("id_token"):
        return OIDC
    return None


def ownership_refusal(
    username: str, source: str, owner: str | None, *, service: str, preset: str = ""
) -> str | None:
    """Why a ``source`` login may not become hub user ``username``, or None if it may.

    A hub user belongs to the source that created them: a second person with the same
    name at the other source must not take over their servers, files and groups.
    ``owner`` None: an existing hub user no login created (``admin_users``,
    ``allowed_users``, the REST API); it belongs to ``preset`` ("" for either source).
    """
    if owner == UNREADABLE:
        return (
            f"The hub cannot read the sign-in record of the user name {username!r}, so"
            " it cannot tell which sign-in owns it. Ask the hub's admins."
        )
    owner = owner or preset or None
    if owner is None or owner == source:
        return None
    way = SOURCE_WORDS[owner].format(service=service)
    return (
        f"The user name {username!r} on this hub belongs to an account that signs in with"
        f" {way}. Sign in that way, or ask the hub's admins."
    )


def misplaced_settings(
    own_settings: Iterable[str], source_conflicts: Iterable[tuple[str, str]]
) -> list[str]:
    """Start-up errors for settings placed where the combined hub cannot honour them.

    ``own_settings`` are the names set in ``c.LDAPOIDCAuthenticator``;
    ``source_conflicts`` holds (section, name) for each shared setting that a source's
    own section (``LDAPAuthenticator``) sets to another value than the hub's.
    """
    own = set(own_settings)
    problems = [
        f"LDAPOIDCAuthenticator.{name} is per source: set c.LDAPAuthenticator.{name}"
        f" and/or c.OIDCAuthenticator.{name} instead"
        for name in PER_SOURCE_TRAITS
        if name in own
    ]
    problems += [
        f"{section}.{name} differs from LDAPOIDCAuthenticator.{name}: access, admin and PI"
        f" rules are decided once for both sources; set c.LDAPOIDCAuthenticator.{name}"
        f" (or c.Authenticator.{name}) instead"
        for section, name in source_conflicts
    ]
    return problems
