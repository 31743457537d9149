"""Kept LDAP connections that break: dropped at once, and the operation moves on.

Real slapd behind fault proxies (one proxy per "server"), so each server can be cut,
slowed or stopped on its own while the directory behind stays the same. Bind answers
no test slapd gives (53, 80, none) are scripted, at the end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from ldap3 import BASE
from ldap3.core.exceptions import LDAPException, LDAPSocketOpenError

from eohub.adapters.ldap.connections import ConnectionSettings, LDAPConnections, Lease
from eohub.adapters.ldap.directory import (
    DirectoryUnavailable,
    DirectoryUser,
    LDAPDirectory,
)
from eohub.adapters.ldap.servers import ServerAddress, ServerPool
from tests.adapters.ldap.ldap_support import address, ldap_directory
from tests.support.faultproxy import FaultProxy
from tests.support.slapd import Directory

ProxyFactory = Callable[..., FaultProxy]


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


# What a bind's answer means: a table over scripted connections (the adapter's own seam,
# LDAPConnections._connection), as no test slapd answers 53 or 80 to a bind.

A, B = (ServerAddress.parse(f"ldap://ldap{i}.example.org") for i in (1, 2))


class ScriptedConnection:
    """Answers open, StartTLS and bind as scripted; records whether it was closed."""

    def __init__(self, bind: int | BaseException | None, *, fails_in: str = "bind") -> None:
        self.answer, self.fails_in = bind, fails_in
        self.closed = True
        self.result: dict[str, object] | None = None

    def _step(self, name: str) -> None:
        if isinstance(self.answer, BaseException) and self.fails_in == name:
            raise self.answer

    def open(self) -> None:
        self.closed = False
        self._step("open")

    def start_tls(self) -> bool:
        self._step("start_tls")
        return True

    def bind(self) -> bool:
        self._step("bind")
        self.result = None if self.answer is None else {"result": self.answer}
        return self.answer == 0

    def unbind(self) -> None:
        self.closed = True


class Scripted(LDAPConnections):
    """Connections to servers A and B that answer as ``script`` says."""

    def __init__(self, script: Callable[[ServerAddress, str | None], ScriptedConnection]) -> None:
        super().__init__(ServerPool([A, B]), ConnectionSettings(service_dn="cn=svc"))
        self.script = script
        self.made: list[ServerAddress] = []

    def _connection(self, address: ServerAddress, user: str | None, password: str | None) -> Any:
        self.made.append(address)
        return self.script(address, user)


REFUSED, FAILS_OVER, RAISES = "refused", "fails over", "raises"


@pytest.mark.parametrize(
    ("service", "answer", "fails_in", "outcome"),
    [
        (False, 0, "bind", A),
        (False, 49, "bind", REFUSED),  # wrong password
        (False, 53, "bind", REFUSED),  # 389-DS / FreeIPA: account locked or inactivated
        (False, 80, "bind", REFUSED),  # other: about this user, not the server
        (False, 51, "bind", FAILS_OVER),  # busy
        (False, 52, "bind", FAILS_OVER),  # unavailable
        (False, None, "bind", FAILS_OVER),  # no result at all
        (True, 49, "bind", REFUSED),  # with_service says why; the server is fine
        (True, 53, "bind", FAILS_OVER),  # the service account is never locked on purpose
        (True, 80, "bind", FAILS_OVER),
        (True, None, "bind", FAILS_OVER),
        (False, LDAPSocketOpenError("refused"), "open", FAILS_OVER),
        (False, LDAPException("odd StartTLS answer"), "start_tls", FAILS_OVER),
        (True, LDAPException("malformed bind answer"), "bind", FAILS_OVER),
        (False, ValueError("a bug"), "bind", RAISES),
    ],
)
def test_what_a_bind_answer_means(
    service: bool, answer: int | BaseException | None, fails_in: str, outcome: object
) -> None:
    scripted = ScriptedConnection(answer, fails_in=fails_in)
    connections = Scripted(lambda address, _: scripted if address == A else ScriptedConnection(0))
    if outcome is RAISES:
        with pytest.raises(type(answer)):  # type: ignore[arg-type]
            connections.bind("uid=bob", "pw", service=service)
    else:
        lease = connections.bind("uid=bob", "pw", service=service)
        if outcome is REFUSED:
            assert lease is None
        else:
            assert lease is not None
            assert lease.address == (B if outcome is FAILS_OVER else outcome)
    # Only trouble counts against A; a refusal or a success leaves it first.
    assert connections.pool.order()[0] == (B if outcome is FAILS_OVER else A)
    if outcome is not A:
        assert scripted.closed  # never a leaked socket, whatever happened
    assert connections.made == ([A, B] if outcome is FAILS_OVER else [A])


def test_a_locked_user_leaves_every_server_and_kept_connection_alone() -> None:
    connections = Scripted(lambda _, user: ScriptedConnection(0 if user == "cn=svc" else 53))
    kept = connections.with_service(lambda conn: conn)  # a service connection, kept
    assert connections.idle()[0].conn is kept
    assert connections.bind("uid=locked", "pw") is None
    assert connections.idle()[0].conn is kept
    assert connections.pool.order() == [A, B]
    assert connections.made == [A, A]  # B was never asked
