"""LDAP connections with failover: fresh binds, kept service connections, retries.

Every method blocks (the authenticator calls them from worker threads). Each
connection has a connect and a receive timeout and is unbound when done. The
:class:`~eohub.adapters.ldap.servers.ServerPool` decides which server to try and
whether a kept connection may serve again; this module only opens, uses and closes.

The failover rule, for any operation (a user bind, a search for a login or a refresh):
a connection that fails in any way is closed and never kept, its server is marked
failed (the pool's back-off, as for a failed bind), and the operation runs again on a
fresh connection to each server at most once, in the pool's order. So a dead kept
connection costs at most one receive timeout when another server answers, and
DirectoryUnavailable means that no server did.
"""

from __future__ import annotations

import contextlib
import queue
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ldap3 import NONE, Connection, Server, Tls
from ldap3.core.exceptions import (
    LDAPCommunicationError,
    LDAPException,
    LDAPResponseTimeoutError,
    LDAPStartTLSError,
)

from eohub.adapters.ldap.servers import ServerAddress, ServerPool
from eohub.logs import get_logger

log = get_logger(__name__)

# Result codes that mean "this server cannot serve now", not "wrong password", for the
# service account's binds and for searches.
SERVER_TROUBLE = frozenset({51, 52, 53, 80})  # busy, unavailable, unwillingToPerform, other
# For a user's bind only busy and unavailable are the server's trouble: 389-DS and FreeIPA
# answer 53 for a locked or inactivated account, so 53 and 80 there refuse that user alone
# (counting them against the server would fail every server for one locked user).
USER_BIND_TROUBLE = frozenset({51, 52})
_NO_RESULT = -1  # a bind that got no answer at all: the server's trouble, never a refusal

# Anything that means "this connection, or its server, cannot serve now". ldap3 raises
# these even with raise_exceptions=False: a session the server terminated (a restart),
# a receive timeout (LDAPSocketReceiveError: a hung server), a socket that cannot open
# or send, or is already closed (LDAPSocketOpenError). LDAPResponseTimeoutError is
# outside ldap3's LDAPCommunicationError family, so it is named too.
CONNECTION_FAILURES: tuple[type[BaseException], ...] = (
    LDAPCommunicationError,
    LDAPResponseTimeoutError,
    LDAPStartTLSError,
    OSError,
)

_T = TypeVar("_T")


class DirectoryUnavailable(Exception):
    """No LDAP server could serve the request; the message says why (never a secret)."""


@dataclass(frozen=True)
class Lease:
    """A bound connection, its server, and the server's epoch when it was opened."""

    conn: Connection
    address: ServerAddress
    epoch: int


@dataclass
class _Attempt:
    """One operation's failover: servers ruled out for it, and why (for the error)."""

    failed: set[ServerAddress] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ConnectionSettings:
    start_tls: bool = True
    ca_file: str | None = None
    connect_timeout: float = 5.0
    receive_timeout: int = 10
    service_dn: str | None = None  # None: anonymous service connections
    service_password: str | None = None
    max_idle: int = 8


class LDAPConnections:
    """Bound connections to the pool's servers; service connections are kept for reuse."""

    def __init__(self, pool: ServerPool, settings: ConnectionSettings) -> None:
        self.pool = pool
        self.settings = settings
        self._idle: queue.LifoQueue[Lease] = queue.LifoQueue(max(1, settings.max_idle))
        self._tls = Tls(
            validate=ssl.CERT_REQUIRED,
            ca_certs_file=settings.ca_file or None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )

    def _server(self, address: ServerAddress) -> Server:
        return Server(
            address.host,
            port=address.port,
            use_ssl=address.ldaps,
            tls=self._tls,
            get_info=NONE,
            connect_timeout=self.settings.connect_timeout,
        )

    def _connection(
        self, address: ServerAddress, user: str | None, password: str | None
    ) -> Connection:
        """An unopened connection (a seam: tests put a connection with scripted answers here)."""
        return Connection(
            self._server(address),
            user=user,
            password=password,
            receive_timeout=self.settings.receive_timeout,
            raise_exceptions=False,
            read_only=True,
            auto_referrals=False,
        )

    def bind(
        self,
        user: str | None,
        password: str | None,
        attempt: _Attempt | None = None,
        *,
        service: bool = False,
    ) -> Lease | None:
        """A fresh bound connection, None if the directory refused the credentials.

        Servers are tried in the pool's order, skipping those already ruled out in
        this ``attempt``. Raises DirectoryUnavailable when no server could answer.
        ``service`` says the credentials are the service account's, whose refusal with
        53 or 80 is the server's trouble; a user's is that user's (see USER_BIND_TROUBLE).
        """
        attempt = attempt or _Attempt()
        trouble = SERVER_TROUBLE if service else USER_BIND_TROUBLE
        for address in self.pool.order():
            if address in attempt.failed:
                continue
            epoch = self.pool.epoch(address)  # before connecting: a failure meanwhile counts
            conn = self._connection(address, user, password)
            lease = Lease(conn, address, epoch)
            try:
                conn.open()
                if not address.ldaps and self.settings.start_tls and not conn.start_tls():
                    raise LDAPStartTLSError("StartTLS refused")
                bound = conn.bind()
                code = int(conn.result.get("result", _NO_RESULT)) if conn.result else _NO_RESULT
            except (*CONNECTION_FAILURES, LDAPException) as e:
                # Any ldap3 error here (a malformed answer, an unexpected StartTLS
                # state...) is this server failing to answer, not a refusal.
                close(conn)
                self._failed(lease, attempt, e)
                continue
            except BaseException:
                close(conn)  # never leak the socket, whatever went wrong
                raise
            if bound:
                self.pool.mark_ok(address)
                return lease
            close(conn)
            if code == _NO_RESULT or code in trouble:
                self._failed(lease, attempt, f"bind result {code}")
                continue
            self.pool.mark_ok(address)
            return None
        raise DirectoryUnavailable("no LDAP server answered: " + "; ".join(attempt.problems))

    def with_service(self, operation: Callable[[Connection], _T]) -> _T:
        """Run ``operation`` on a service-account connection, failing over if it breaks.

        A kept connection is tried first. When it fails, its server is tried again
        too, last, on a fresh connection: after a restart it answers new ones.
        """
        attempt = _Attempt()
        lease = self._kept()
        kept = lease is not None
        while True:
            if lease is None:
                lease = self.bind(
                    self.settings.service_dn, self.settings.service_password, attempt, service=True
                )
                if lease is None:
                    raise DirectoryUnavailable(
                        "the LDAP service account was refused by the directory"
                    )
            try:
                result = operation(lease.conn)
            except CONNECTION_FAILURES as e:
                close(lease.conn)
                self._failed(lease, attempt, e, kept=kept)
                lease, kept = None, False
                continue
            except BaseException:
                close(lease.conn)
                raise
            self._give_back(lease)
            return result

    def with_user(
        self, dn: str, password: str, operation: Callable[[Connection], _T]
    ) -> _T | None:
        """Bind as ``dn`` and run ``operation`` on that connection, failing over the
        same way; None if the directory refused the password."""
        attempt = _Attempt()
        while True:
            lease = self.bind(dn, password, attempt)
            if lease is None:
                return None
            try:
                return operation(lease.conn)
            except CONNECTION_FAILURES as e:
                self._failed(lease, attempt, e)
            finally:
                close(lease.conn)

    def idle(self) -> list[Lease]:
        """The kept connections, most recently used first (for tests and diagnostics)."""
        with self._idle.mutex:
            return list(reversed(self._idle.queue))

    def close(self) -> None:
        """Unbind every kept connection."""
        while True:
            try:
                close(self._idle.get_nowait().conn)
            except queue.Empty:
                return

    def _failed(
        self, lease: Lease, attempt: _Attempt, problem: BaseException | str, *, kept: bool = False
    ) -> None:
        """Count a failure against the lease's server, for the pool and this attempt.

        A fresh connection that fails rules its server out for the rest of the
        attempt; a kept one does not, as the server may have restarted since.
        """
        if not kept:
            attempt.failed.add(lease.address)
        if isinstance(problem, BaseException):
            problem = f"{type(problem).__name__}: {problem}"
        attempt.problems.append(f"{lease.address.url}: {problem}")
        if self.pool.mark_failed(lease.address, lease.epoch):
            log.warning(
                "LDAP server {server} failed; backing off: {why}",
                server=lease.address.url,
                why=problem,
            )
            self._drop_unusable()

    def _usable(self, lease: Lease) -> bool:
        return not lease.conn.closed and self.pool.reusable(lease.address, lease.epoch)

    def _kept(self) -> Lease | None:
        """A kept connection the pool still trusts; the others met on the way are closed."""
        while True:
            try:
                lease = self._idle.get_nowait()
            except queue.Empty:
                return None
            if self._usable(lease):
                return lease
            close(lease.conn)

    def _drop_unusable(self) -> None:
        """Close every kept connection the pool no longer trusts, at once.

        Without this, connections to a server that just failed would wait in the
        pool, each costing a later operation one receive timeout.
        """
        keep: list[Lease] = []
        while True:
            try:
                lease = self._idle.get_nowait()
            except queue.Empty:
                break
            if self._usable(lease):
                keep.append(lease)
            else:
                close(lease.conn)
        for lease in reversed(keep):  # back in the same LIFO order
            self._give_back(lease)

    def _give_back(self, lease: Lease) -> None:
        if not self._usable(lease):  # its server failed meanwhile, on another connection
            close(lease.conn)
            return
        try:
            self._idle.put_nowait(lease)
        except queue.Full:
            close(lease.conn)


def close(conn: Connection) -> None:
    """Unbind and close; a connection that is already dead is fine."""
    with contextlib.suppress(LDAPException, OSError):
        conn.unbind()
