"""The LDAP directory, through ldap3: bind users, read profiles and group memberships.

Every method here blocks; :class:`eohub.auth.ldap.LDAPAuthenticator` runs them in a
bounded thread pool, never on the hub's event loop. Connections, their timeouts, the
kept service-account connections and failover between servers are
:mod:`eohub.adapters.ldap.connections`'s job; this module reads entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ldap3 import BASE, SUBTREE, Connection
from ldap3.core.exceptions import LDAPCommunicationError
from ldap3.utils.conv import escape_filter_chars

from eohub.adapters.ldap.connections import (
    SERVER_TROUBLE,
    ConnectionSettings,
    LDAPConnections,
    close,
)
from eohub.adapters.ldap.connections import (
    DirectoryUnavailable as DirectoryUnavailable,  # re-exported
)
from eohub.adapters.ldap.filters import (
    NESTED_GROUP_FILTER,
    ad_in_chain_filter,
    bind_dn,
    group_filter,
    user_filter,
)
from eohub.adapters.ldap.servers import ServerAddress, ServerPool
from eohub.logs import get_logger

log = get_logger(__name__)

_INVALID_CREDENTIALS = 49
_NO_SUCH_OBJECT = 32


@dataclass(frozen=True)
class ProfileAttributes:
    display_name: str = "displayName"
    fallback_name: str = "cn"
    email: str = "mail"
    uid_number: str = "uidNumber"
    gid_number: str = "gidNumber"
    home_directory: str = "homeDirectory"


@dataclass(frozen=True)
class DirectorySettings:
    """Everything the directory adapter needs, validated by the authenticator's traits."""

    servers: tuple[ServerAddress, ...]
    user_search_base: str
    group_search_base: str
    strategy: str = "first"
    backoff: float = 60.0
    start_tls: bool = True
    ca_file: str | None = None
    connect_timeout: float = 5.0
    receive_timeout: int = 10
    service_dn: str | None = None
    service_password: str | None = None
    anonymous_search: bool = False
    bind_dn_templates: tuple[str, ...] = ()
    user_search_filter: str = "(&(objectClass=person)(uid={username}))"
    group_search_filter: str = ""
    group_name_attribute: str = "cn"
    member_of_attribute: str | None = "memberOf"
    nested_groups: bool = False
    nested_depth: int = 5
    ad_in_chain: bool = False
    pi_attribute: str | None = None
    attributes: ProfileAttributes = ProfileAttributes()
    max_idle_connections: int = 8
    # Further user attributes read as they are, for auth_state (auth_state_attributes).
    extra_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DirectoryGroup:
    dn: str
    name: str
    pi_dns: frozenset[str]


@dataclass(frozen=True)
class DirectoryUser:
    """What the directory says about a user."""

    dn: str
    username: str
    display_name: str
    email: str
    uid_number: int | None
    gid_number: int | None
    home_directory: str
    groups: tuple[DirectoryGroup, ...]
    # The ``extra_attributes`` read, each with all its values (none: an empty list).
    extra: Mapping[str, list[str]] = field(default_factory=dict, hash=False)

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    @property
    def group_dns(self) -> list[str]:
        return [g.dn for g in self.groups]

    @property
    def pi_of(self) -> list[str]:
        me = _norm_dn(self.dn)
        return [g.name for g in self.groups if me in g.pi_dns]


def _norm_dn(dn: str) -> str:
    return ",".join(part.strip() for part in dn.lower().split(","))


def _values(attributes: Mapping[str, Any], name: str | None) -> list[str]:
    if not name:
        return []
    for key, value in attributes.items():
        if key.lower() == name.lower():
            if isinstance(value, list | tuple):
                return [str(v) for v in value]
            return [] if value is None else [str(value)]
    return []


def _first(attributes: Mapping[str, Any], *names: str) -> str:
    for name in names:
        values = _values(attributes, name)
        if values and values[0]:
            return values[0]
    return ""


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


class LDAPDirectory:
    """Blocking LDAP operations over a pool of servers."""

    def __init__(self, settings: DirectorySettings, pool: ServerPool | None = None) -> None:
        self.settings = settings
        self.connections = LDAPConnections(
            pool
            or ServerPool(settings.servers, strategy=settings.strategy, backoff=settings.backoff),
            ConnectionSettings(
                start_tls=settings.start_tls,
                ca_file=settings.ca_file,
                connect_timeout=settings.connect_timeout,
                receive_timeout=settings.receive_timeout,
                service_dn=settings.service_dn,
                service_password=settings.service_password,
                max_idle=settings.max_idle_connections,
            ),
        )

    @property
    def pool(self) -> ServerPool:
        return self.connections.pool

    def _search(
        self,
        base: str,
        filter_: str,
        attributes: Sequence[str],
        *,
        scope: Any = SUBTREE,
        conn: Connection | None = None,
        base_must_exist: bool = False,
    ) -> list[tuple[str, Mapping[str, Any]]]:
        """Entries as (dn, attributes), on ``conn`` or on a service connection.

        A missing ``base`` (result 32) means no entries, unless ``base_must_exist``:
        then it is this server's trouble, and the search fails over.
        """
        if conn is not None:
            return _entries(conn, base, filter_, attributes, scope, base_must_exist)
        return self.connections.with_service(
            lambda c: _entries(c, base, filter_, attributes, scope, base_must_exist)
        )

    def close(self) -> None:
        """Unbind the kept service connections."""
        self.connections.close()

    # Operations

    def authenticate(self, username: str, password: str) -> DirectoryUser | None:
        """The user, if ``password`` binds as them; None for bad credentials."""
        if not password or not password.strip():
            return None  # an unauthenticated bind would "succeed": never try it
        settings = self.settings
        if settings.service_dn or settings.anonymous_search:
            # The search that finds the DN also reads the profile: one round trip less.
            found = self._find_user(username)
            if found is None:
                return None
            dn, attrs = found
            lease = self.connections.bind(dn, password)
            if lease is None:
                return None
            close(lease.conn)
            return self._user(dn, username, attrs, conn=None)
        for template in settings.bind_dn_templates:
            dn = bind_dn(template, username)

            def read_as_user(conn: Connection, dn: str = dn) -> DirectoryUser | None:
                # No service account: read as the user, on the user's own connection.
                entries = self._search(
                    dn, "(objectClass=*)", self._profile_attributes(), scope=BASE, conn=conn
                )
                return self._user(dn, username, entries[0][1], conn=conn) if entries else None

            user = self.connections.with_user(dn, password, read_as_user)
            if user is not None:
                return user
        return None

    def lookup(self, username: str) -> DirectoryUser | None:
        """The user as the service account sees them now, or None if they are gone."""
        if not (self.settings.service_dn or self.settings.anonymous_search):
            raise DirectoryUnavailable(
                "no service account or anonymous search to look users up with"
            )
        found = self._find_user(username)
        return None if found is None else self._user(found[0], username, found[1], conn=None)

    def _profile_attributes(self) -> list[str]:
        a = self.settings.attributes
        wanted = [
            a.display_name,
            a.fallback_name,
            a.email,
            a.uid_number,
            a.gid_number,
            a.home_directory,
        ]
        if self.settings.member_of_attribute:
            wanted.append(self.settings.member_of_attribute)
        return wanted + list(self.settings.extra_attributes)

    def _find_user(self, username: str) -> tuple[str, Mapping[str, Any]] | None:
        """The one entry the user search finds, with its profile attributes."""
        settings = self.settings
        entries = self._search(
            settings.user_search_base,
            user_filter(settings.user_search_filter, username),
            self._profile_attributes(),
            # A user search base that is missing is not "no such user": a replica still
            # loading its suffix, or a reorganised directory, would otherwise log every
            # user out at their next refresh.
            base_must_exist=True,
        )
        if len(entries) > 1:
            log.warning(
                "LDAP user search for {user} matched {count} entries; refusing",
                user=username,
                count=len(entries),
            )
        return entries[0] if len(entries) == 1 else None

    def _user(
        self, dn: str, username: str, attrs: Mapping[str, Any], *, conn: Connection | None
    ) -> DirectoryUser:
        a = self.settings.attributes
        return DirectoryUser(
            dn=dn,
            username=username,
            display_name=_first(attrs, a.display_name, a.fallback_name),
            email=_first(attrs, a.email),
            uid_number=_int(_first(attrs, a.uid_number)),
            gid_number=_int(_first(attrs, a.gid_number)),
            home_directory=_first(attrs, a.home_directory),
            groups=self._groups(
                dn, username, _values(attrs, self.settings.member_of_attribute), conn
            ),
            extra={name: _values(attrs, name) for name in self.settings.extra_attributes},
        )

    def _groups(
        self, user_dn: str, username: str, member_of: list[str], conn: Connection | None
    ) -> tuple[DirectoryGroup, ...]:
        settings = self.settings
        attrs = [settings.group_name_attribute] + (
            [settings.pi_attribute] if settings.pi_attribute else []
        )
        found: dict[str, DirectoryGroup] = {}

        def add(entries: list[tuple[str, Mapping[str, Any]]]) -> list[str]:
            new = []
            for dn, values in entries:
                key = _norm_dn(dn)
                name = _first(values, settings.group_name_attribute)
                if key in found or not name:
                    continue
                pis = frozenset(_norm_dn(v) for v in _values(values, settings.pi_attribute))
                found[key] = DirectoryGroup(dn=dn, name=name, pi_dns=pis)
                new.append(dn)
            return new

        if settings.ad_in_chain:
            # One search returns direct and nested groups; the server walks the chain.
            add(
                self._search(
                    settings.group_search_base, ad_in_chain_filter(user_dn), attrs, conn=conn
                )
            )
        elif settings.group_search_filter:
            query = group_filter(settings.group_search_filter, user_dn=user_dn, username=username)
            add(self._search(settings.group_search_base, query, attrs, conn=conn))
        for dn in member_of:
            if _norm_dn(dn) not in found:
                add(self._search(dn, "(objectClass=*)", attrs, scope=BASE, conn=conn))
        if settings.nested_groups and not settings.ad_in_chain:
            frontier = list(found.values())
            for _ in range(settings.nested_depth):
                if not frontier:
                    break
                # One search per level: groups that contain any group found so far.
                parents = "".join(
                    NESTED_GROUP_FILTER.format(dn=escape_filter_chars(g.dn)) for g in frontier
                )
                new = add(
                    self._search(settings.group_search_base, f"(|{parents})", attrs, conn=conn)
                )
                frontier = [found[_norm_dn(dn)] for dn in new]
            if frontier:
                log.warning(
                    "Nested groups of {user} deeper than {depth} levels were not followed",
                    user=username,
                    depth=settings.nested_depth,
                )
        return tuple(sorted(found.values(), key=lambda g: g.name))


def _entries(
    conn: Connection,
    base: str,
    filter_: str,
    attributes: Sequence[str],
    scope: Any,
    base_must_exist: bool = False,
) -> list[tuple[str, Mapping[str, Any]]]:
    ok = conn.search(base, filter_, search_scope=scope, attributes=list(attributes))
    code = int(conn.result.get("result", 0)) if conn.result else 0
    if not ok and code == _NO_SUCH_OBJECT and base_must_exist:
        # Fail over as if the connection had broken; DirectoryUnavailable if no server has it.
        raise LDAPCommunicationError(f"search base {base!r} does not exist (result 32)")
    if not ok and code not in (0, _NO_SUCH_OBJECT):
        if code in SERVER_TROUBLE:
            # The server cannot serve now: fail over as if the connection had broken.
            raise LDAPCommunicationError(f"search result {code}")
        raise DirectoryUnavailable(
            f"LDAP search refused: result {code} {conn.result.get('description')}"
        )
    return [
        (e["dn"], e.get("attributes", {}))
        for e in (conn.response or [])
        if e.get("type") == "searchResEntry"
    ]
