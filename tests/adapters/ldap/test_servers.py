"""Server order: failover and back-off, with a clock the test controls."""

import pytest

from eohub.adapters.ldap.servers import ServerAddress, ServerConfigError, ServerPool

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


def test_a_failure_starts_a_new_epoch_and_kept_connections_of_older_ones_are_not_reused() -> None:
    clock = Clock()
    pool = ServerPool([A, B], strategy="round_robin", backoff=60, clock=clock)
    old = pool.epoch(A)
    assert pool.reusable(A, old)
    assert pool.mark_failed(A, old) is True
    assert pool.epoch(A) == old + 1
    assert not pool.reusable(A, old)  # its sibling broke: this one is most likely dead too
    assert not pool.reusable(A, old + 1)  # resting
    clock.now += 61
    assert pool.reusable(A, old + 1)  # opened after the failure, back-off over
    assert not pool.reusable(A, old)  # never again


def test_the_same_failure_seen_by_another_old_connection_is_not_news() -> None:
    clock = Clock()
    pool = ServerPool([A, B], backoff=60, clock=clock)
    old = pool.epoch(A)
    assert pool.mark_failed(A, old)
    pool.mark_ok(A)  # a fresh connection after the restart worked
    clock.now += 5
    # A connection from before the restart fails now: nothing new, A stays healthy and
    # the fresh connections opened since (epoch old + 1) stay usable.
    assert pool.mark_failed(A, old) is False
    assert pool.order() == [A, B]
    assert pool.reusable(A, old + 1)
    # Without an epoch (or with the current one) a failure always counts.
    assert pool.mark_failed(A, old + 1) is True
    assert pool.order() == [B, A]


@pytest.mark.parametrize(
    ("strategy", "failed", "reusable"),
    [
        # first: only the preferred server's connections are reused, so that the pool
        # follows new connections back to the primary once its back-off is over.
        ("first", [], {A: True, B: False, C: False}),
        ("first", [A], {A: False, B: True, C: False}),
        ("first", [A, B], {A: False, B: False, C: True}),
        ("first", [A, B, C], {A: False, B: False, C: False}),
        # round_robin: any healthy server's.
        ("round_robin", [], {A: True, B: True, C: True}),
        ("round_robin", [B], {A: True, B: False, C: True}),
    ],
)
def test_which_kept_connections_may_serve(
    strategy: str, failed: list[ServerAddress], reusable: dict[ServerAddress, bool]
) -> None:
    pool = ServerPool([A, B, C], strategy=strategy, backoff=60, clock=Clock())
    for server in failed:
        pool.mark_failed(server)
    assert {s: pool.reusable(s, pool.epoch(s)) for s in (A, B, C)} == reusable


def test_kept_connections_follow_the_primary_back_after_its_back_off() -> None:
    clock = Clock()
    pool = ServerPool([A, B], strategy="first", backoff=60, clock=clock)
    pool.mark_failed(A)
    assert pool.reusable(B, pool.epoch(B))
    clock.now += 61
    assert not pool.reusable(B, pool.epoch(B))  # new connections go to A again
    assert pool.reusable(A, pool.epoch(A))
