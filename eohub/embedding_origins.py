"""Which portal origins :func:`eohub.embedding.allow_embedding` accepts, and why not others.

Each origin becomes one ``frame-ancestors`` source, normalized, or raises
:class:`EmbeddingConfigError` with the reason and what to write instead. The rules are
listed in :mod:`eohub.embedding`'s docstring and in the how-to "Embed the hub in a
portal".
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Domains under which anyone can get a host name (registries' second levels, hosting
#: services): a wildcard over one of them lets strangers frame the hub. Not exhaustive
#: (the Public Suffix List has thousands); it catches the usual slips.
SHARED_SUFFIXES = frozenset(
    {
        "ac.uk",
        "co.uk",
        "gov.uk",
        "org.uk",
        "com.au",
        "edu.au",
        "co.jp",
        "ac.jp",
        "github.io",
        "gitlab.io",
        "pages.dev",
        "netlify.app",
        "vercel.app",
        "herokuapp.com",
        "azurewebsites.net",
        "cloudfront.net",
        "appspot.com",
        "web.app",
        "readthedocs.io",
    }
)
SHARED_ORIGIN = (
    "the hub and the users' servers share one origin (c.JupyterHub.subdomain_host is not"
    " set), so every user's server could frame the hub and other users' JupyterLab and"
    " trick them into clicks (clickjacking); JupyterHub forbids this since 4.1. List the"
    " portal's own origin instead, or set c.JupyterHub.subdomain_host before this call"
)


class EmbeddingConfigError(ValueError):
    """An embedding origin that eohub refuses; the message says why and what to do."""


def split_origins(text: str) -> list[str]:
    """Origins separated by spaces and/or commas, as in ``$EOHUB_EMBED_ORIGINS``."""
    return [part for part in re.split(r"[\s,]+", text) if part]


def host_of(url: str) -> str:
    return (urlsplit(url if "://" in url else f"https://{url}").hostname or "").lower()


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_host(host: str, origin: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if not host.isascii():
        try:
            ascii_form = host.encode("idna").decode()
            hint = f": write it as {ascii_form!r} (its punycode, xn--, form)"
        except UnicodeError:
            hint = ": write it in its punycode (xn--) form"
        raise EmbeddingConfigError(
            f"embedding origin {origin!r}: browsers compare the host in ASCII{hint}"
        )
    domain = host.removeprefix("*.")
    labels = domain.split(".")
    if not all(_LABEL.match(label) for label in labels):
        raise EmbeddingConfigError(f"embedding origin {origin!r}: {host!r} is not a host name")
    if host.startswith("*.") and len(labels) < 2:
        raise EmbeddingConfigError(
            f"embedding origin {origin!r}: a wildcard must name a domain under a top-level"
            " domain (https://*.example.org), never a whole top-level domain"
        )
    if host.startswith("*.") and domain in SHARED_SUFFIXES:
        raise EmbeddingConfigError(
            f"embedding origin {origin!r}: anyone can get a host under {domain}, a shared"
            " suffix, so the wildcard would let strangers frame the hub; list the"
            " portal's own host, or a wildcard under a domain you control"
        )


def wildcard_matches(host: str, other: str) -> bool:
    """Whether CSP host ``host`` matches host ``other`` (``*.d`` matches subdomains of d)."""
    if host.startswith("*."):
        return other.endswith(host[1:])
    return host == other


def _refuse_any(text: str) -> None:
    if (
        text == "*"
        or text.startswith("*:")
        or text in ("http:", "https:", "http://*", "https://*")
    ):
        raise EmbeddingConfigError(
            f"embedding origin {text!r} would let any site frame the hub and trick a"
            " logged-in user into clicks (clickjacking): list the portal's origins"
        )


def check_origin(origin: str, *, subdomain_host: str = "", hub_url: str = "") -> str:
    """The CSP source for one embedding origin, normalized; or the reason it is refused.

    ``subdomain_host`` is ``c.JupyterHub.subdomain_host`` (the users' servers then run on
    its subdomains); ``hub_url`` the hub's public URL when known.
    """
    text = origin.strip()
    _refuse_any(text)
    if text.lower() in ("'self'", "self"):
        if not subdomain_host:
            raise EmbeddingConfigError(f"embedding origin 'self' refused: {SHARED_ORIGIN}")
        return "'self'"
    if text.startswith("'") or "://" not in text:
        raise EmbeddingConfigError(
            f"embedding origin {text!r}: give scheme://host[:port], such as"
            " https://portal.example.org (of CSP's keywords only 'self' is accepted)"
        )
    parts = urlsplit(text)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if parts.path not in ("", "/") or parts.query or parts.fragment or "?" in text or "#" in text:
        raise EmbeddingConfigError(
            f"embedding origin {text!r}: an origin has no path, query or fragment;"
            f" give {scheme}://{parts.netloc}"
        )
    if parts.username is not None:
        # Not echoed: the part before @ may be a password.
        raise EmbeddingConfigError("an embedding origin has a user name or password: remove it")
    if not host:
        raise EmbeddingConfigError(f"embedding origin {text!r}: give scheme://host[:port]")
    try:
        port = parts.port
    except ValueError as e:
        raise EmbeddingConfigError(f"embedding origin {text!r}: the port must be a number") from e
    if port == 0:
        raise EmbeddingConfigError(
            f"embedding origin {text!r}: port 0 is no port a portal is served on (1-65535)"
        )
    _check_host(host, text)
    if scheme != "https" and not (scheme == "http" and _is_loopback(host)):
        raise EmbeddingConfigError(
            f"embedding origin {text!r}: use https (http is accepted only on loopback,"
            " localhost or 127.0.0.1, for tests)"
        )
    shown = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        shown = f"{shown}:{port}"
    source = f"{scheme}://{shown}"
    check_not_the_hub(text, source, host, subdomain_host=subdomain_host, hub_url=hub_url)
    return source


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL, the port left out when it is the default."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    shown = f"[{host}]" if ":" in host else host
    port = parts.port if parts.port not in (None, DEFAULT_PORTS.get(parts.scheme)) else None
    return f"{parts.scheme}://{shown}" + (f":{port}" if port else "")


def check_not_the_hub(
    text: str, source: str, host: str, *, subdomain_host: str, hub_url: str
) -> None:
    """Refuse a source (of ``host``) that covers the users' servers (with
    ``subdomain_host``) or, on a shared origin, is the hub's own origin ``hub_url``."""
    if subdomain_host:
        hub_host = host_of(subdomain_host)
        # The users' servers run on hub_host's subdomains.
        if wildcard_matches(host, "user." + hub_host) or host.endswith("." + hub_host):
            raise EmbeddingConfigError(
                f"embedding origin {text!r} covers the users' servers, which run on"
                f" subdomains of {hub_host} (c.JupyterHub.subdomain_host): one user's"
                " server could frame another's (clickjacking); list the portal's origin"
            )
    elif hub_url and "://" in hub_url:
        hub_origin, hub_host = origin_of(hub_url), host_of(hub_url)
        if source == hub_origin or (host.startswith("*.") and wildcard_matches(host, hub_host)):
            raise EmbeddingConfigError(
                f"embedding origin {text!r} is the hub's own origin ({hub_origin}):"
                f" {SHARED_ORIGIN}"
            )


def check_origins(
    origins: Iterable[str], *, subdomain_host: str = "", hub_url: str = "", where: str = ""
) -> list[str]:
    """:func:`check_origin` for each, duplicates dropped, order kept."""
    sources: list[str] = []
    for origin in origins:
        try:
            source = check_origin(origin, subdomain_host=subdomain_host, hub_url=hub_url)
        except EmbeddingConfigError as e:
            raise EmbeddingConfigError(f"{e} ({where})" if where else str(e)) from None
        if source not in sources:
            sources.append(source)
    return sources
