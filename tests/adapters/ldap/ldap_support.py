"""An LDAPDirectory on the test slapd, reached directly or through fault proxies."""

from __future__ import annotations

from eohub.adapters.ldap.directory import DirectorySettings, LDAPDirectory
from eohub.adapters.ldap.filters import DEFAULT_GROUP_FILTER
from eohub.adapters.ldap.servers import ServerAddress
from tests.support.faultproxy import FaultProxy
from tests.support.slapd import Directory


def address(proxy: FaultProxy) -> ServerAddress:
    return ServerAddress.parse(f"ldap://127.0.0.1:{proxy.port}")


def ldap_directory(
    directory: Directory, *proxies: FaultProxy, **overrides: object
) -> LDAPDirectory:
    settings: dict[str, object] = {
        "servers": tuple(address(p) for p in proxies),
        "user_search_base": f"ou=people,{directory.base_dn}",
        "group_search_base": f"ou=groups,{directory.base_dn}",
        "ca_file": str(directory.tls.ca_cert),
        "connect_timeout": 1.0,
        "receive_timeout": 2,
        "service_dn": directory.service_dn,
        "service_password": directory.service_password,
        "group_search_filter": DEFAULT_GROUP_FILTER,
    }
    settings.update(overrides)
    return LDAPDirectory(DirectorySettings(**settings))  # type: ignore[arg-type]


def direct(directory: Directory) -> ServerAddress:
    return ServerAddress.parse(directory.url)
