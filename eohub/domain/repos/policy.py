"""The admin's rules for repository launches, and the guard against SSRF.

:meth:`RepoPolicy.check` applies allow and deny lists of hosts and repositories, the
``http`` switch, and refuses IP-literal hosts that are loopback, private, link-local or
reserved. A host *name* is not resolved here (the domain does no I/O):
:attr:`RepoCheck.needs_resolution` tells the adapter to resolve it and to call
:func:`address_allowed` on every address before it connects.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from eohub.domain.fields import describe
from eohub.domain.repos.specs import (
    RepoError,
    RepoProviders,
    RepoSpec,
    has_hidden_characters,
    parse_url,
)


def address_allowed(
    address: str | ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_private: bool = False
) -> bool:
    """Whether git may connect to ``address``: call it on every resolved address.

    Global unicast addresses are allowed. Loopback, private, link-local, shared
    (100.64/10), site-local (fec0::/10) and other non-global addresses only with
    ``allow_private``. Multicast, unspecified (``0.0.0.0``, ``::``) and reserved
    addresses never: no git server lives there. An IPv4 address embedded in IPv6
    (mapped, 6to4, Teredo) is judged as IPv4.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return address_allowed(embedded, allow_private=allow_private)
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return False
    # Site-local fec0::/10 is deprecated, yet still routed inside some networks.
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    return allow_private or (ip.is_global and not site_local)


def _patterns(value: Iterable[str], where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise RepoError(where, "must be a list of patterns, not one string")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item or has_hidden_characters(item):
            raise RepoError(where, f"{describe(item)} is not a pattern")
    return tuple(i.lower() for i in items)


@dataclass(frozen=True)
class RepoCheck:
    """What policy made of an allowed repository.

    ``trusted``: on the admin's trusted list (the launch page warns otherwise).
    ``needs_resolution``: the host is a name the user chose; resolve it and connect only
    if :func:`address_allowed` (with ``allow_private``) holds for every address.
    """

    spec: RepoSpec
    host: str
    trusted: bool
    needs_resolution: bool
    allow_private: bool


@dataclass(frozen=True)
class RepoPolicy:
    """The admin's rules for repository launches.

    Patterns are shell-style (:mod:`fnmatch`, case-insensitive): host patterns match the
    host (``*.example.org``), repository patterns match :attr:`RepoSpec.name`, i.e.
    ``host/path`` without scheme or ``.git`` (``github.com/pangeo-data/*``). ``*``
    also matches ``/``. Empty allow lists allow everything; deny lists win over allow
    lists.
    """

    allowed_hosts: tuple[str, ...] = ()
    denied_hosts: tuple[str, ...] = ()
    allowed_repos: tuple[str, ...] = ()
    denied_repos: tuple[str, ...] = ()
    trusted_repos: tuple[str, ...] = ()
    allow_http: bool = False
    allow_private_hosts: bool = False

    def __post_init__(self) -> None:
        for name in (
            "allowed_hosts",
            "denied_hosts",
            "allowed_repos",
            "denied_repos",
            "trusted_repos",
        ):
            object.__setattr__(self, name, _patterns(getattr(self, name), name))
        for name in ("allow_http", "allow_private_hosts"):
            if not isinstance(getattr(self, name), bool):
                raise RepoError(name, "must be true or false")

    def check(self, spec: RepoSpec, providers: RepoProviders) -> RepoCheck:
        """Allow ``spec`` or raise :class:`RepoError` saying which rule refused it."""
        parsed = parse_url(spec.url)
        name = spec.name
        if parsed.scheme == "http" and not self.allow_http:
            raise RepoError("repo", "must use https://; this hub does not allow http://")

        def matches(value: str, patterns: tuple[str, ...]) -> bool:
            return any(fnmatch.fnmatchcase(value, p) for p in patterns)

        if matches(parsed.host, self.denied_hosts) or (
            self.allowed_hosts and not matches(parsed.host, self.allowed_hosts)
        ):
            raise RepoError("repo", f"repositories on {parsed.host} are not allowed here")
        if matches(name, self.denied_repos) or (
            self.allowed_repos and not matches(name, self.allowed_repos)
        ):
            raise RepoError("repo", f"{name} is not allowed here")
        fixed = providers.get(spec.provider).fixed_host
        is_ip = True
        try:
            ipaddress.ip_address(parsed.host)
        except ValueError:
            is_ip = False
        if (
            is_ip
            and not fixed
            and not address_allowed(parsed.host, allow_private=self.allow_private_hosts)
        ):
            raise RepoError("repo", f"{parsed.host} is a loopback, private or reserved address")
        return RepoCheck(
            spec=spec,
            host=parsed.host,
            trusted=matches(name, self.trusted_repos),
            needs_resolution=not fixed and not is_ip,
            allow_private=self.allow_private_hosts,
        )


__all__ = ["RepoCheck", "RepoPolicy", "address_allowed"]
