"""Server order: failover and back-off, with a clock the test controls."""

import pytest

from eohub.adapters.ldap_servers import ServerAddress, ServerConfigError, ServerPool

A, B, C = (ServerAddress.parse(f"ldaps://ldap{i}.example.org") for i in (1, 2, 3))


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_prefers_the_primary_until_it_fails() -> None:
    clock = Clock()
    pool = ServerPool([A, B, C], strategy="first", backoff=60, clock=clock)
    assert pool.order() == [A, B, C]
    pool.mark_failed(A)
    assert pool.order() == [B, C, A]  # the dead server is tried last, not never
    clock.now += 59
    assert pool.order() == [B, C, A]
    clock.now += 2
    assert pool.order() == [A, B, C]  # back-off over


def test_when_all_failed_the_oldest_failure_goes_first() -> None:
    clock = Clock()
    pool = ServerPool([A, B, C], backoff=60, clock=clock)
    for server in (B, A, C):
        pool.mark_failed(server)
        clock.now += 1
    assert pool.order() == [B, A, C]
    pool.mark_ok(A)
    assert pool.order() == [A, B, C]


def test_round_robin_rotates_and_still_skips_dead_servers() -> None:
    clock = Clock()
    pool = ServerPool([A, B, C], strategy="round_robin", backoff=60, clock=clock)
    assert [pool.order()[0] for _ in range(4)] == [A, B, C, A]
    pool.mark_failed(C)
    assert pool.order() == [B, A, C]  # its turn started at B; C rests


@pytest.mark.parametrize(
    ("url", "host", "port", "ldaps"),
    [
        ("ldaps://ldap.example.org", "ldap.example.org", 636, True),
        ("ldap://127.0.0.1:3890", "127.0.0.1", 3890, False),
        ("ldap://[::1]:389", "::1", 389, False),
    ],
)
def test_parse(url: str, host: str, port: int, ldaps: bool) -> None:
    address = ServerAddress.parse(url)
    assert (address.host, address.port, address.ldaps) == (host, port, ldaps)


@pytest.mark.parametrize(
    "url", ["http://ldap.example.org", "ldap://", "ldaps://h/dc=example", "ldap.example.org"]
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ServerConfigError):
        ServerAddress.parse(url)


def test_bad_pool_settings() -> None:
    with pytest.raises(ServerConfigError, match="at least one"):
        ServerPool([])
    with pytest.raises(ServerConfigError, match="unknown strategy"):
        ServerPool([A], strategy="random")
