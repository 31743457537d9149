"""The fault proxy forwards, delays, hangs and cuts real LDAP traffic."""

import time
from collections.abc import Callable

import pytest
from ldap3 import Connection, Server
from ldap3.core.exceptions import LDAPException

from tests.support.faultproxy import FaultProxy
from tests.support.slapd import Directory


def bind(port: int, directory: Directory, *, timeout: float = 5) -> Connection:
    server = Server("127.0.0.1", port=port, connect_timeout=timeout)
    return Connection(
        server,
        directory.service_dn,
        directory.service_password,
        auto_bind=True,
        receive_timeout=timeout,
    )


def test_forwards_and_adds_latency(
    directory: Directory, fault_proxy_factory: Callable[..., FaultProxy]
) -> None:
    proxy = fault_proxy_factory(directory.host, directory.port)
    started = time.monotonic()
    bind(proxy.port, directory).unbind()
    fast = time.monotonic() - started

    proxy.latency = 0.3
    started = time.monotonic()
    conn = bind(proxy.port, directory)
    slow = time.monotonic() - started
    conn.unbind()
    # One bind is one round trip: at least 0.3 s each way more than without latency.
    assert slow >= fast + 0.5
    assert proxy.connections == 2


def test_blackhole_makes_the_client_time_out(
    directory: Directory, fault_proxy_factory: Callable[..., FaultProxy]
) -> None:
    proxy = fault_proxy_factory(directory.host, directory.port, blackhole=True)
    started = time.monotonic()
    with pytest.raises(LDAPException):
        bind(proxy.port, directory, timeout=1)
    assert time.monotonic() - started < 5


def test_drop_after_cuts_the_connection(
    directory: Directory, fault_proxy_factory: Callable[..., FaultProxy]
) -> None:
    # A bind response is about 14 bytes: cut inside it.
    proxy = fault_proxy_factory(directory.host, directory.port, drop_after=5)
    with pytest.raises(LDAPException):
        bind(proxy.port, directory, timeout=2)
