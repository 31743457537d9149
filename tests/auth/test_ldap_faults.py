"""LDAP logins through the fault proxy: slow, silent and dead servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
from tornado import web

from eohub.auth.ldap import LDAPAuthenticator
from tests.auth.ldap_support import login, make_authenticator
from tests.support.faultproxy import FaultProxy
from tests.support.process import free_port
from tests.support.slapd import Directory

ProxyFactory = Callable[..., FaultProxy]


def via(proxy: FaultProxy) -> str:
    return f"ldap://127.0.0.1:{proxy.port}"


def behind_a_silent_server(
    directory: Directory, fault_proxy_factory: ProxyFactory, *, receive_timeout: int
) -> LDAPAuthenticator:
    """An authenticator whose only server accepts connections and never answers."""
    proxy = fault_proxy_factory(directory.host, directory.port, blackhole=True)
    return make_authenticator(
        directory,
        server_urls=[via(proxy)],
        start_tls=False,
        allow_plaintext=True,
        receive_timeout=receive_timeout,
        connect_timeout=1.0,
    )


def test_logins_work_at_50ms_per_operation(
    directory: Directory, fault_proxy_factory: ProxyFactory
) -> None:
    proxy = fault_proxy_factory(directory.host, directory.port, latency=0.025)  # 50 ms round trip
    authenticator = make_authenticator(directory, server_urls=[via(proxy)], start_tls=True)
    started = time.monotonic()
    model = login(authenticator, "bob", "bob-pw")
    assert model is not None
    assert set(model["groups"]) == {"researchers", "climate"}
    assert time.monotonic() - started >= 0.2  # the latency really applied


def test_a_silent_server_fails_the_login_within_the_receive_timeout(
    directory: Directory, fault_proxy_factory: ProxyFactory
) -> None:
    authenticator = behind_a_silent_server(directory, fault_proxy_factory, receive_timeout=1)
    started = time.monotonic()
    with pytest.raises(web.HTTPError) as info:
        login(authenticator, "bob", "bob-pw")
    assert info.value.status_code == 503
    assert time.monotonic() - started < 3  # one receive timeout, not a hang


def test_failover_from_a_dead_primary(directory: Directory) -> None:
    dead = f"ldap://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    authenticator = make_authenticator(
        directory, server_urls=[dead, directory.url], connect_timeout=1.0
    )
    started = time.monotonic()
    assert login(authenticator, "alice", "alice-pw") is not None
    assert time.monotonic() - started < 1.0 + 0.5  # connect timeout plus a round trip, at most
    # The dead primary now rests for its back-off: the next login goes straight on.
    assert authenticator.directory.pool.order()[0].url == directory.url


def test_failover_from_a_silent_primary(
    directory: Directory, fault_proxy_factory: ProxyFactory
) -> None:
    silent = fault_proxy_factory(directory.host, directory.port, blackhole=True)
    authenticator = make_authenticator(
        directory,
        server_urls=[via(silent), directory.url],
        receive_timeout=1,
        connect_timeout=1.0,
    )
    started = time.monotonic()
    assert login(authenticator, "alice", "alice-pw") is not None
    first = time.monotonic() - started
    started = time.monotonic()
    assert login(authenticator, "bob", "bob-pw") is not None
    second = time.monotonic() - started
    assert first < 3
    assert second < 0.5  # the silent server is skipped during its back-off


def test_round_robin_spreads_logins(
    directory: Directory, fault_proxy_factory: ProxyFactory
) -> None:
    a = fault_proxy_factory(directory.host, directory.port)
    b = fault_proxy_factory(directory.host, directory.port)
    authenticator = make_authenticator(
        directory,
        server_urls=[via(a), via(b)],
        server_strategy="round_robin",
    )
    for _ in range(4):
        assert login(authenticator, "bob", "bob-pw") is not None
    assert a.connections >= 2
    assert b.connections >= 2


def test_the_event_loop_keeps_running_while_ldap_hangs(
    directory: Directory, fault_proxy_factory: ProxyFactory
) -> None:
    authenticator = behind_a_silent_server(directory, fault_proxy_factory, receive_timeout=2)

    async def scenario() -> float:
        worst = 0.0

        async def ticker() -> None:
            nonlocal worst
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                worst = max(worst, time.monotonic() - before - 0.01)

        tick = asyncio.create_task(ticker())
        logins = [
            authenticator.get_authenticated_user(None, {"username": "bob", "password": "bob-pw"})
            for _ in range(10)
        ]
        results = await asyncio.gather(*logins, return_exceptions=True)
        tick.cancel()
        assert all(isinstance(r, web.HTTPError) for r in results)
        return worst

    worst = asyncio.run(scenario())
    # A blocking client would stall the loop for the whole 2 s timeout (10 times over).
    assert worst < 0.5
