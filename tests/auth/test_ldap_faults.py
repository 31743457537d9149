"""LDAP logins through faults: slow, silent and dead servers, restarts and hangs."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ldap3 import BASE
from tornado import web
from traitlets.config import Config

from eohub.auth.ldap import LDAPAuthenticator
from tests.auth.ldap_support import login, make_authenticator
from tests.support.faultproxy import FaultProxy
from tests.support.process import free_port
from tests.support.slapd import Directory, own_slapd
from tests.support.tools import DATA_DIR, REPO_ROOT

LDIFS = sorted(DATA_DIR.glob("*.ldif"))
PASSWORDS = {"alice": "alice-pw", "bob": "bob-pw"}

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


class StoredUser:
    """What refresh_user reads from JupyterHub's User."""

    def __init__(self, name: str) -> None:
        self.name = name


async def timed_logins(
    authenticator: LDAPAuthenticator, count: int
) -> list[tuple[float, dict[str, Any] | BaseException | None]]:
    """``count`` concurrent logins (alice and bob in turn): each one's time and result."""

    async def one(name: str) -> tuple[float, dict[str, Any] | BaseException | None]:
        started = time.monotonic()
        try:
            result = await authenticator.get_authenticated_user(
                None, {"username": name, "password": PASSWORDS[name]}
            )
        except Exception as e:  # reported with the others, not raised: count them all
            result = e
        return time.monotonic() - started, result

    names = ["alice", "bob"] * (count // 2) + ["alice"] * (count % 2)
    return list(await asyncio.gather(*(one(n) for n in names)))


def kept_connections_answer(authenticator: LDAPAuthenticator, directory: Directory) -> bool:
    """Every kept service connection answers a search now (none is dead)."""
    kept = authenticator.directory.connections.idle()
    return bool(kept) and all(
        lease.conn.search(directory.base_dn, "(objectClass=*)", search_scope=BASE)
        for lease in kept
    )


def test_after_a_directory_restart_concurrent_logins_and_refreshes_succeed(
    tmp_path: Path,
) -> None:
    with own_slapd(tmp_path / "slapd", LDIFS) as slapd:
        authenticator = make_authenticator(
            slapd.directory, receive_timeout=2, connect_timeout=1.0, refresh_outage_policy="logout"
        )
        server = authenticator.directory.pool.servers[0]
        assert all(r for _, r in asyncio.run(timed_logins(authenticator, 8)))
        assert len(authenticator.directory.connections.idle()) >= 2  # several kept

        slapd.restart()  # same ports, same data; every kept connection is now dead
        logins = asyncio.run(timed_logins(authenticator, 20))
        assert [type(r) for _, r in logins] == [dict] * 20
        # Dead connections fail at once: no login waited for a receive timeout.
        assert max(t for t, _ in logins) < 2
        assert authenticator.directory.pool.epoch(server) == 1  # one restart, one failure
        assert kept_connections_answer(authenticator, slapd.directory)

        # A refresh that meets a dead connection is served too: the outage policy
        # ("logout" here) is only for when no server answers.
        slapd.restart()
        refreshed = asyncio.run(authenticator.refresh_user(StoredUser("bob")))
        assert isinstance(refreshed, dict)
        assert set(refreshed["groups"]) == {"researchers", "climate"}
        assert kept_connections_answer(authenticator, slapd.directory)
        authenticator.close()


def test_while_the_primary_hangs_logins_use_the_replica_after_one_receive_timeout(
    tmp_path: Path,
) -> None:
    receive_timeout = 2
    with (
        own_slapd(tmp_path / "primary", LDIFS) as primary,
        own_slapd(tmp_path / "replica", LDIFS, tls=primary.directory.tls) as replica,
    ):
        authenticator = make_authenticator(
            primary.directory,
            server_urls=[primary.directory.url, replica.directory.url],  # StartTLS on both
            receive_timeout=receive_timeout,
            connect_timeout=1.0,
            refresh_outage_policy="logout",
        )
        pool = authenticator.directory.pool
        to_primary, to_replica = pool.servers
        assert all(r for _, r in asyncio.run(timed_logins(authenticator, 8)))
        kept = authenticator.directory.connections.idle()
        assert len(kept) >= 2
        assert {k.address for k in kept} == {to_primary}

        with primary.frozen():  # SIGSTOP: connections are accepted, nothing answers
            logins = asyncio.run(timed_logins(authenticator, 10))
            assert [type(r) for _, r in logins] == [dict] * 10
            # Each login waited for the primary once at most, never twice.
            assert max(t for t, _ in logins) < receive_timeout + 1.0
            assert pool.order() == [to_replica, to_primary]  # the primary backs off
            assert {k.address for k in authenticator.directory.connections.idle()} == {to_replica}
            assert kept_connections_answer(authenticator, replica.directory)

            # During the back-off, logins and refreshes go straight to the replica.
            for name in ("alice", "bob"):
                started = time.monotonic()
                assert login(authenticator, name, PASSWORDS[name]) is not None
                assert time.monotonic() - started < 0.5
            started = time.monotonic()
            assert isinstance(asyncio.run(authenticator.refresh_user(StoredUser("bob"))), dict)
            assert time.monotonic() - started < 0.5
        authenticator.close()


# Not a fault, but the weakest setting: the how-to's plaintext lines, as written there.

STARTTLS_OID = "1.3.6.1.4.1.1466.20037"


def documented_plaintext_settings() -> dict[str, Any]:
    """The python block of the how-to's "Plain ldap://" section, run as a config file."""
    text = (REPO_ROOT / "docs" / "how-to" / "openldap.md").read_text()
    section = text.split("## Plain `ldap://`", 1)[1]
    (block,) = re.findall(r"```python\n(.*?)```", section, re.DOTALL)
    config = Config()
    exec(block, {"c": config})  # noqa: S102 - our own docs, as JupyterHub would
    return dict(config["LDAPAuthenticator"])


def test_the_how_to_names_the_settings_that_turn_starttls_off() -> None:
    assert documented_plaintext_settings() == {
        "server_urls": ["ldap://127.0.0.1:389"],
        "start_tls": False,
        "allow_plaintext": True,
    }


@pytest.mark.parametrize(
    ("source", "starttls"),
    [("defaults", True), ("allow_plaintext alone", True), ("the how-to", False)],
)
def test_exactly_the_documented_settings_turn_starttls_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, source: str, starttls: bool
) -> None:
    settings = {
        "defaults": {},
        "allow_plaintext alone": {"allow_plaintext": True},
        "the how-to": documented_plaintext_settings(),
    }[source]
    with own_slapd(tmp_path / "slapd", LDIFS) as slapd:
        settings["server_urls"] = [slapd.directory.url]
        authenticator = make_authenticator(slapd.directory, **settings)
        assert login(authenticator, "bob", "bob-pw") is not None
        authenticator.close()
        assert (STARTTLS_OID in slapd.proc.log_path.read_text()) is starttls
    assert ("without TLS (allow_plaintext)" in caplog.text) is not starttls


def test_start_tls_off_alone_stops_the_hub(directory: Directory) -> None:
    with pytest.raises(ValueError, match="without start_tls sends passwords in clear"):
        make_authenticator(directory, server_urls=[directory.url], start_tls=False)


def test_a_missing_user_search_base_is_an_outage_not_a_wrong_password_nor_a_user_gone(
    directory: Directory,
) -> None:
    # A replica still loading its suffix, or a reorganised directory: the base is gone.
    authenticator = make_authenticator(
        directory,
        user_search_base=f"ou=missing,{directory.base_dn}",
        refresh_outage_policy="keep",
    )
    with pytest.raises(web.HTTPError) as info:
        login(authenticator, "bob", "bob-pw")
    assert info.value.status_code == 503
    # A refresh keeps the user as they are (the outage policy), nothing is withdrawn.
    assert asyncio.run(authenticator.refresh_user(StoredUser("bob"))) is True
    authenticator.close()
