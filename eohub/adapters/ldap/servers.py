"""Which LDAP server to try next: an ordered pool with failover and back-off.

The order is decided by :class:`ServerPool` from plain data (no sockets), so it is
tested with tables; :mod:`eohub.adapters.ldap.directory` opens the connections.
ldap3's own ServerPool keeps its offline marks per connection, so a dead server would
be retried by every new login; this pool shares them across all connections.

The pool also decides whether a kept (pooled) connection may be used again: each
failure of a server starts a new *epoch* of that server, and a connection opened in an
older epoch is never reused, because whatever broke one connection to a server (a
restart, a hang, a network cut) has almost certainly broken its siblings too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit


class ServerConfigError(ValueError):
    """An LDAP server URL or option in the hub config is invalid."""


@dataclass(frozen=True)
class ServerAddress:
    """One LDAP server: host, port and whether the connection starts with TLS."""

    url: str
    host: str
    port: int
    ldaps: bool

    @classmethod
    def parse(cls, url: str) -> ServerAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise ServerConfigError(f"{url!r} is not an ldap:// or ldaps:// URL with a host")
        if parts.path not in ("", "/") or parts.query:
            raise ServerConfigError(f"{url!r}: give only scheme, host and port")
        ldaps = parts.scheme == "ldaps"
        return cls(
            url=url, host=parts.hostname, port=parts.port or (636 if ldaps else 389), ldaps=ldaps
        )


class ServerPool:
    """Servers in try order; one that failed is skipped for ``backoff`` seconds.

    ``strategy`` is ``first`` (always prefer the first healthy server: a primary with
    replicas) or ``round_robin`` (spread logins over all servers). When every server is
    backing off, all are tried anyway, oldest failure first: refusing every login
    because of a past failure would turn a blip into an outage.
    """

    def __init__(
        self,
        servers: Sequence[ServerAddress],
        *,
        strategy: str = "first",
        backoff: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not servers:
            raise ServerConfigError("at least one LDAP server is needed")
        if strategy not in ("first", "round_robin"):
            raise ServerConfigError(f"unknown strategy {strategy!r}; use 'first' or 'round_robin'")
        self.servers = tuple(servers)
        self.strategy = strategy
        self.backoff = backoff
        self._clock = clock
        self._failed_at: dict[ServerAddress, float] = {}
        self._epochs: dict[ServerAddress, int] = {}
        self._next = 0
        self._lock = threading.Lock()

    def order(self) -> list[ServerAddress]:
        """The servers to try for one operation, healthy ones first."""
        with self._lock:
            start = 0
            if self.strategy == "round_robin":
                start = self._next % len(self.servers)
                self._next += 1
            return self._ordered(start)

    def _ordered(self, start: int) -> list[ServerAddress]:
        ring = list(self.servers[start:] + self.servers[:start])
        healthy = [s for s in ring if not self._resting(s)]
        resting = sorted((s for s in ring if s not in healthy), key=lambda s: self._failed_at[s])
        return healthy + resting

    def _resting(self, server: ServerAddress) -> bool:
        return self._clock() - self._failed_at.get(server, -1e18) < self.backoff

    def epoch(self, server: ServerAddress) -> int:
        """How many failures of ``server`` were recorded: stamp a new connection with it."""
        with self._lock:
            return self._epochs.get(server, 0)

    def reusable(self, server: ServerAddress, epoch: int) -> bool:
        """Whether a kept connection to ``server``, opened in ``epoch``, may serve again.

        Not if the server failed since (that connection is most likely dead too), nor
        if it is resting, nor, with ``first``, if a server earlier in the list is
        healthy again: new connections go there, and old ones must follow.
        """
        with self._lock:
            if self._epochs.get(server, 0) != epoch or self._resting(server):
                return False
            return self.strategy != "first" or self._ordered(0)[0] == server

    def mark_failed(self, server: ServerAddress, epoch: int | None = None) -> bool:
        """Record that ``server`` failed; True if this was news.

        ``epoch`` is that of the connection that failed, if it was a kept one. When the
        server has failed since that connection was opened, the failure is the same
        event seen again by another connection: recording it once more would throw
        away the fresh connections opened since, and restart the back-off.
        """
        with self._lock:
            current = self._epochs.get(server, 0)
            if epoch is not None and epoch != current:
                return False
            self._epochs[server] = current + 1
            self._failed_at[server] = self._clock()
            return True

    def mark_ok(self, server: ServerAddress) -> None:
        with self._lock:
            self._failed_at.pop(server, None)
