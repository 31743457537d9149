"""What a hub admin configures on LDAPAuthenticator, checked before the hub starts.

The traits live in :class:`LDAPSettings`, a mixin of
:class:`eohub.auth.ldap.LDAPAuthenticator`: validators refuse a malformed server URL
or filter template at start-up, :meth:`LDAPSettings.config_problem` names settings that
cannot work together, and :meth:`LDAPSettings.directory_settings` hands them to the
directory adapter.
"""

from __future__ import annotations

from typing import Any

from traitlets import Bool, Float, Int, List, TraitError, Unicode, validate
from traitlets.config import LoggingConfigurable

from eohub.adapters.ldap.directory import DirectorySettings, ProfileAttributes
from eohub.adapters.ldap.filters import (
    DEFAULT_GROUP_FILTER,
    DEFAULT_USER_FILTER,
    FilterTemplateError,
    check_template,
)
from eohub.adapters.ldap.servers import ServerAddress, ServerConfigError
from eohub.auth.ldap_legacy import LEGACY_GROUP_FIELDS, translate_group_filter

F = frozenset


class LDAPSettings(LoggingConfigurable):
    """The LDAP options of :class:`eohub.auth.ldap.LDAPAuthenticator`."""

    # A group_search_filter written with ldapauthenticator 2.x placeholders, as given.
    legacy_group_search_filter: str | None = None

    server_urls = List(
        Unicode(),
        help="""
        LDAP servers, tried in order (see ``server_strategy``), e.g.
        ``["ldaps://ldap1.example.org", "ldaps://ldap2.example.org:636"]``. ``ldaps://`` uses
        TLS from the start; ``ldap://`` upgrades with StartTLS unless ``start_tls`` is False.
        """,
    ).tag(config=True)
    server_strategy = Unicode(
        "first",
        help="""
        ``first``: always prefer the first healthy server (a primary with replicas).
        ``round_robin``: spread logins over all servers.
        """,
    ).tag(config=True)
    server_backoff = Float(
        60.0,
        help="Seconds a server that failed is skipped before it is tried first again.",
    ).tag(config=True)
    connect_timeout = Float(
        5.0, help="Seconds to wait for a TCP (and TLS) connection to a server."
    ).tag(config=True)
    receive_timeout = Int(
        10,
        help="""
        Whole seconds to wait for an answer to any LDAP request (ldap3 sets it as a
        socket option, which takes whole seconds). A server that accepts connections
        but never answers fails the request after this long, and the next server is
        tried. Budget of one step of a login or refresh: a kept service connection
        that broke or hangs costs at most this once; it is then dropped, its server
        backs off (``server_backoff``), and the step runs again on a fresh connection to
        each server at most once, in order (each costing at most ``connect_timeout``
        plus this per request); only if none answers is the directory unavailable.
        """,
    ).tag(config=True)
    start_tls = Bool(
        True, help="Upgrade ``ldap://`` connections with StartTLS before binding."
    ).tag(config=True)
    allow_plaintext = Bool(
        False,
        help="""
        Allow ``ldap://`` without StartTLS, sending passwords in clear text. Only for a
        directory on the same host or a trusted test network; a warning is logged.
        """,
    ).tag(config=True)
    tls_ca_file = Unicode(
        "",
        help="""
        PEM file of the CA that signed the servers' certificates. Empty: the system's
        trust store. Certificates and host names are always verified.
        """,
    ).tag(config=True)
    service_dn = Unicode(
        "",
        help="""
        DN of the read-only service account that searches for users and groups, e.g.
        ``cn=jupyterhub,ou=services,dc=example,dc=org``. Needed for search-then-bind and
        for refreshing groups; without it, groups are read as the user at login only.
        """,
    ).tag(config=True)
    service_password = Unicode(
        "",
        help="""
        Password of ``service_dn``. Keep it out of config files you share, e.g.
        ``c.LDAPAuthenticator.service_password = os.environ["LDAP_SERVICE_PASSWORD"]``.
        It is never logged.
        """,
    ).tag(config=True)
    anonymous_search = Bool(
        False,
        help="Search users and groups with an anonymous bind when no ``service_dn`` is set.",
    ).tag(config=True)
    bind_dn_templates = List(
        Unicode(),
        help="""
        Bind directly as these DNs, tried in order, instead of searching for the user
        first, e.g. ``["uid={username},ou=people,dc=example,dc=org"]``. Used only when
        there is no ``service_dn`` and no ``anonymous_search``. ``{username}`` is escaped.
        """,
    ).tag(config=True)
    user_search_base = Unicode(
        "", help="Where users live, e.g. ``ou=people,dc=example,dc=org``."
    ).tag(config=True)
    user_search_filter = Unicode(
        DEFAULT_USER_FILTER,
        help="""
        Filter that finds exactly one user entry; ``{username}`` is replaced by the
        escaped login name. Active Directory:
        ``(&(objectClass=user)(sAMAccountName={username}))``.
        """,
    ).tag(config=True)
    group_search_base = Unicode(
        "", help="Where groups live, e.g. ``ou=groups,dc=example,dc=org``."
    ).tag(config=True)
    group_search_filter = Unicode(
        DEFAULT_GROUP_FILTER,
        help="""
        Filter for the groups a user is a direct member of; ``{dn}`` is the user's DN and
        ``{username}`` their login name, both escaped. The default covers groupOfNames
        ``member``, groupOfUniqueNames ``uniqueMember`` and posixGroup ``memberUid``. Empty:
        rely on ``member_of_attribute`` alone.
        """,
    ).tag(config=True)
    group_name_attribute = Unicode(
        "cn", help="The group entry attribute that names the group."
    ).tag(config=True)
    member_of_attribute = Unicode(
        "memberOf",
        help="""
        User attribute listing the DNs of the user's groups (OpenLDAP's memberof
        overlay, Active Directory). Empty to ignore it.
        """,
    ).tag(config=True)
    nested_groups = Bool(
        False,
        help="""
        Also count groups that contain the user's groups, searched level by level up to
        ``nested_group_depth``; loops in the directory are detected.
        """,
    ).tag(config=True)
    nested_group_depth = Int(
        5, help="How many levels of nested groups ``nested_groups`` follows."
    ).tag(config=True)
    active_directory_in_chain = Bool(
        False,
        help="""
        Find direct and nested groups in one search with Active Directory's in-chain
        matching rule (1.2.840.113556.1.4.1941) instead of ``group_search_filter``.
        """,
    ).tag(config=True)
    pi_attribute = Unicode(
        "",
        help="""
        Group attribute whose DN values are the group's PIs (e.g. ``owner``). A member
        whose DN is listed is recorded as a PI of the group.
        """,
    ).tag(config=True)
    display_name_attribute = Unicode("displayName", help="User's display name.").tag(config=True)
    email_attribute = Unicode("mail", help="User's email address.").tag(config=True)
    uid_number_attribute = Unicode("uidNumber", help="User's POSIX uid.").tag(config=True)
    gid_number_attribute = Unicode("gidNumber", help="User's POSIX gid.").tag(config=True)
    home_directory_attribute = Unicode("homeDirectory", help="User's home directory.").tag(
        config=True
    )
    auth_state_attributes = List(
        Unicode(),
        help="""
        Further user attributes to keep in ``auth_state["user_attributes"]``, as
        ``{"attribute": [values...]}`` (the place and shape jupyterhub-ldapauthenticator
        uses), e.g. ``["employeeType", "departmentNumber"]``. The service account (or,
        with ``bind_dn_templates``, the user) must be allowed to read them.
        """,
    ).tag(config=True)
    max_concurrency = Int(
        32,
        help="""
        Most LDAP operations in flight at once (worker threads). Logins beyond this
        wait their turn without blocking the hub.
        """,
    ).tag(config=True)
    group_cache_ttl = Float(
        60.0,
        help="""
        Seconds a user's refreshed directory entry is cached, so many refreshes of one
        user in a burst cost one lookup.
        """,
    ).tag(config=True)
    refresh_outage_policy = Unicode(
        "keep",
        help="""
        What a refresh does when the directory cannot be reached: ``keep`` leaves the
        session and its groups as they were (nothing new is granted), ``logout`` ends the
        session so the user must log in again once the directory is back.
        """,
    ).tag(config=True)

    @validate("server_urls")
    def _validate_server_urls(self, proposal: dict[str, Any]) -> list[str]:
        try:
            for url in proposal["value"]:
                ServerAddress.parse(url)
        except ServerConfigError as e:
            raise TraitError(f"LDAPAuthenticator.server_urls: {e}") from e
        return list(proposal["value"])

    @validate("server_strategy")
    def _validate_strategy(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in ("first", "round_robin"):
            raise TraitError("LDAPAuthenticator.server_strategy must be 'first' or 'round_robin'")
        return str(proposal["value"])

    @validate("refresh_outage_policy")
    def _validate_outage(self, proposal: dict[str, Any]) -> str:
        if proposal["value"] not in ("keep", "logout"):
            raise TraitError("LDAPAuthenticator.refresh_outage_policy must be 'keep' or 'logout'")
        return str(proposal["value"])

    @validate("user_search_filter", "group_search_filter", "bind_dn_templates")
    def _validate_templates(self, proposal: dict[str, Any]) -> Any:
        name, value = proposal["trait"].name, proposal["value"]
        where = f"LDAPAuthenticator.{name}"
        if name == "group_search_filter" and LEGACY_GROUP_FIELDS.search(value):
            # ldapauthenticator 2.x's {userdn} and {uid}: kept to be warned about at start-up.
            self.legacy_group_search_filter = value
            value = translate_group_filter(value)
        try:
            if name == "user_search_filter":
                check_template(
                    value, allowed=F({"username"}), required=F({"username"}), where=where
                )
            elif name == "group_search_filter" and value:
                check_template(value, allowed=F({"dn", "username"}), required=F(), where=where)
            elif name == "bind_dn_templates":
                for template in value:
                    check_template(
                        template, allowed=F({"username"}), required=F({"username"}), where=where
                    )
        except FilterTemplateError as e:
            raise TraitError(str(e)) from e
        return value

    def config_problem(self) -> str | None:
        """Why these settings cannot work together, or None when they can."""
        if not self.server_urls:
            return "server_urls is empty: name at least one ldap:// or ldaps:// server"
        if any(u.startswith("ldap://") for u in self.server_urls) and not (
            self.start_tls or self.allow_plaintext
        ):
            return (
                "an ldap:// server without start_tls sends passwords in clear: "
                "set start_tls, or allow_plaintext"
            )
        searchable = bool(self.service_dn or self.anonymous_search)
        if not searchable and not self.bind_dn_templates:
            return "set service_dn (search then bind), anonymous_search, or bind_dn_templates"
        if searchable and not self.user_search_base:
            return "user_search_base is needed to search for users"
        if (
            self.group_search_filter or self.active_directory_in_chain or self.nested_groups
        ) and not self.group_search_base:
            return "group_search_base is needed to search for groups"
        if self.service_dn and not self.service_password:
            return "service_password is empty for service_dn"
        return None

    @property
    def sends_plaintext(self) -> bool:
        """Whether passwords may cross the network in clear (``allow_plaintext`` in use)."""
        return (
            self.allow_plaintext
            and any(u.startswith("ldap://") for u in self.server_urls)
            and not self.start_tls
        )

    def directory_settings(self) -> DirectorySettings:
        """What the directory adapter needs, from the traits."""
        return DirectorySettings(
            servers=tuple(ServerAddress.parse(u) for u in self.server_urls),
            user_search_base=self.user_search_base,
            group_search_base=self.group_search_base,
            strategy=self.server_strategy,
            backoff=self.server_backoff,
            start_tls=self.start_tls,
            ca_file=self.tls_ca_file or None,
            connect_timeout=self.connect_timeout,
            receive_timeout=self.receive_timeout,
            service_dn=self.service_dn or None,
            service_password=self.service_password or None,
            anonymous_search=self.anonymous_search,
            bind_dn_templates=tuple(self.bind_dn_templates),
            user_search_filter=self.user_search_filter,
            group_search_filter=self.group_search_filter,
            group_name_attribute=self.group_name_attribute,
            member_of_attribute=self.member_of_attribute or None,
            nested_groups=self.nested_groups,
            nested_depth=self.nested_group_depth,
            ad_in_chain=self.active_directory_in_chain,
            pi_attribute=self.pi_attribute or None,
            attributes=ProfileAttributes(
                display_name=self.display_name_attribute,
                email=self.email_attribute,
                uid_number=self.uid_number_attribute,
                gid_number=self.gid_number_attribute,
                home_directory=self.home_directory_attribute,
            ),
            max_idle_connections=max(1, self.max_concurrency),
            extra_attributes=tuple(self.auth_state_attributes),
        )
