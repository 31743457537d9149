"""Kept LDAP connections that break: dropped at once, and the operation moves on.

Real slapd behind fault proxies (one proxy per "server"), so each server can be cut,
slowed or stopped on its own while the directory behind stays the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from ldap3 import BASE

from eohub.adapters.ldap_connections import Lease
from eohub.adapters.ldap_directory import (
    DirectorySettings,
    DirectoryUnavailable,
    DirectoryUser,
    LDAPDirectory,
)
from eohub.adapters.ldap_filters import DEFAULT_GROUP_FILTER
from eohub.adapters.ldap_servers import ServerAddress
from tests.support.faultproxy import FaultProxy
from tests.support.slapd import Directory

ProxyFactory = Callable[..., FaultProxy]


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


def alive(lease: Lease, directory: Directory) -> bool:
    """Whether a kept connection still answers a search (used outside the pool)."""
    ok = lease.conn.search(directory.base_dn, "(objectClass=*)", search_scope=BASE)
    return bool(ok)


def keep_connections(ldap: LDAPDirectory, how_many: int) -> None:
    """Run lookups concurrently until the pool keeps ``how_many`` service connections."""
    barrier = threading.Barrier(how_many)

    def hold_one() -> None:
        # Each thread takes its own connection: all search at the same moment.
        barrier.wait(5)
        assert ldap.lookup("bob") is not None

    with ThreadPoolExecutor(how_many) as pool:
        for future in [pool.submit(hold_one) for _ in range(how_many)]:
            future.result()
    assert len(ldap.connections.idle()) >= 2


def test_a_kept_connection_cut_mid_search_is_dropped_and_the_next_server_answers(
    directory: Directory, fault_proxy_factory: ProxyFactory
) -> None:
    a = fault_proxy_factory(directory.host, directory.port)
    b = fault_proxy_factory(directory.host, directory.port)
    ldap = ldap_directory(directory, a, b)
    assert ldap.lookup("bob") is not None
    (kept,) = ldap.connections.idle()
    assert kept.address == address(a)

    a.latency = 0.5  # the next request waits in the proxy...
    result: list[DirectoryUser | None] = []
    search = threading.Thread(target=lambda: result.append(ldap.lookup("bob")))
    search.start()
    time.sleep(0.25)
    assert a.cut() == 1  # ...and its connection is cut while it waits
    search.join(10)

    (user,) = result
    assert user is not None
    assert user.username == "bob"
    assert kept.conn.closed
    # The cut connection is gone; the one kept now goes to b, where new ones go too.
    assert [lease.address for lease in ldap.connections.idle()] == [address(b)]
    assert ldap.pool.order()[0] == address(b)
    assert b.connections == 1
    ldap.close()


def test_after_every_kept_connection_died_one_failure_is_counted_and_none_stays_kept(
    directory: Directory, fault_proxy_factory: ProxyFactory
) -> None:
    only = fault_proxy_factory(directory.host, directory.port)
    ldap = ldap_directory(directory, only)
    keep_connections(ldap, 4)
    before = ldap.connections.idle()
    server = address(only)
    epoch = ldap.pool.epoch(server)

    only.cut()  # what a directory restart does to every open connection
    with ThreadPoolExecutor(8) as pool:
        users = list(pool.map(ldap.lookup, ["bob", "alice"] * 8))

    assert all(u is not None for u in users)
    # One restart is one failure, however many dead connections noticed it.
    assert ldap.pool.epoch(server) == epoch + 1
    kept = ldap.connections.idle()
    assert kept
    assert not {id(k) for k in kept} & {id(b) for b in before}
    assert all(alive(lease, directory) for lease in kept)
    ldap.close()


def test_a_user_connection_cut_mid_read_is_retried_on_the_next_server(
    directory: Directory, fault_proxy_factory: ProxyFactory
) -> None:
    # The bind answer (14 bytes) passes; the profile search answer is cut off.
    cutting = fault_proxy_factory(directory.host, directory.port, drop_after=20)
    healthy = fault_proxy_factory(directory.host, directory.port)
    ldap = ldap_directory(
        directory,
        cutting,
        healthy,
        start_tls=False,
        service_dn=None,
        service_password=None,
        bind_dn_templates=(f"uid={{username}},ou=people,{directory.base_dn}",),
    )
    user = ldap.authenticate("bob", "bob-pw")
    assert user is not None
    assert set(user.group_names) == {"researchers", "climate"}
    assert cutting.connections == 1
    assert healthy.connections == 1
    assert ldap.pool.order()[0] == address(healthy)
    assert ldap.authenticate("bob", "wrong") is None  # refused, not unavailable


def test_when_no_server_answers_the_error_names_each_and_nothing_is_kept(
    directory: Directory, fault_proxy_factory: ProxyFactory
) -> None:
    a = fault_proxy_factory(directory.host, directory.port)
    b = fault_proxy_factory(directory.host, directory.port)
    ldap = ldap_directory(directory, a, b)
    keep_connections(ldap, 2)
    for proxy in (a, b):
        proxy.cut()
        proxy.stop()  # connection refused from now on

    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable) as info:
        ldap.lookup("bob")
    assert time.monotonic() - started < 2 * 1.0  # two refused connects, no waiting
    message = str(info.value)
    assert address(a).url in message
    assert address(b).url in message
    assert "hub-reader-pw" not in message
    assert ldap.connections.idle() == []
