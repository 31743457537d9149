"""LDAP search filters and DNs built from untrusted values, always escaped.

Every value a person typed, or a DN read back from the directory, goes through
ldap3's RFC 4515 filter escaping or RFC 4514 RDN escaping before it becomes part of a
filter or a DN. Templates come from the hub config and use ``{username}`` and ``{dn}``.
"""

from __future__ import annotations

import string

from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

# Active Directory's LDAP_MATCHING_RULE_IN_CHAIN: membership through nested groups.
AD_IN_CHAIN = "1.2.840.113556.1.4.1941"

DEFAULT_USER_FILTER = "(&(objectClass=person)(uid={username}))"
DEFAULT_GROUP_FILTER = (
    "(|(&(objectClass=groupOfNames)(member={dn}))"
    "(&(objectClass=groupOfUniqueNames)(uniqueMember={dn}))"
    "(&(objectClass=posixGroup)(memberUid={username})))"
)
# Groups that contain a given group: the step of a recursive nested-group search.
NESTED_GROUP_FILTER = (
    "(|(&(objectClass=groupOfNames)(member={dn}))"
    "(&(objectClass=groupOfUniqueNames)(uniqueMember={dn})))"
)


class FilterTemplateError(ValueError):
    """A filter or DN template in the hub config is malformed."""


def check_template(
    template: str, *, allowed: frozenset[str], required: frozenset[str], where: str
) -> str:
    """Validate a template's placeholders and parentheses at hub start-up."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as e:
        raise FilterTemplateError(f"{where}: {template!r} is not a valid template: {e}") from e
    unknown = fields - allowed
    if unknown:
        raise FilterTemplateError(
            f"{where}: {template!r} uses unknown placeholders {sorted(unknown)}; "
            f"allowed: {sorted(allowed)}"
        )
    missing = required - fields
    if missing:
        raise FilterTemplateError(f"{where}: {template!r} must contain {sorted(missing)}")
    depth = 0
    for char in template:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            break
    if depth != 0:
        raise FilterTemplateError(f"{where}: {template!r} has unbalanced parentheses")
    return template


def user_filter(template: str, username: str) -> str:
    return template.format(username=escape_filter_chars(username))


def group_filter(template: str, *, user_dn: str, username: str) -> str:
    return template.format(dn=escape_filter_chars(user_dn), username=escape_filter_chars(username))


def ad_in_chain_filter(user_dn: str) -> str:
    """All groups ``user_dn`` belongs to, directly or through nesting (Active Directory)."""
    return f"(&(objectClass=group)(member:{AD_IN_CHAIN}:={escape_filter_chars(user_dn)}))"


def bind_dn(template: str, username: str) -> str:
    """A user DN from a template such as ``uid={username},ou=people,dc=example,dc=org``."""
    return template.format(username=escape_rdn(username))
