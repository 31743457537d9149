"""Ask an image registry whether an image exists (Docker Registry HTTP API v2).

A repository launch whose image is already in the registry starts at once; only a miss
goes to the builder. The check is one ``HEAD /v2/<repository>/manifests/<reference>``.
A registry that wants authentication answers 401 with a ``WWW-Authenticate`` challenge:
``Basic`` is answered with the configured credentials, ``Bearer`` by fetching a token
from the named realm (the distribution token protocol). Tokens are cached per scope until
shortly before they expire, so a cache hit costs a single request.

Errors are translated here, once, into :class:`RegistryError`, whose message can be
shown to a user: passwords and tokens travel in headers only, never in a URL, a log line
or a message.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
DOCKER_HUB = "docker.io"
# Names docker accepts for Docker Hub, and the host that serves its API.
_HUB_ALIASES = dict.fromkeys(("docker.io", "index.docker.io", "registry-1.docker.io"), DOCKER_HUB)
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
# The reference grammar of distribution (reference/regexp.go), written out again.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_HOST = re.compile(
    r"(?:\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
# RFC 9110 section 11: challenges are ``scheme`` then ``name=value`` pairs (a value is a
# token or a quoted string, in which a comma is just a character), or a token68.
_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf'\s*({_TCHARS})\s*=\s*({_TCHARS}|"(?:[^"\\]|\\.)*")\s*(?:,|\Z)')
_SCHEME = re.compile(rf"\s*({_TCHARS})(?:\s+|\s*,|\s*\Z)")
_TOKEN68 = re.compile(r"\s*([A-Za-z0-9._~+/-]+=*)\s*(?:,|\Z)")


class RegistryError(Exception):
    """The registry could not answer: unreachable, credentials refused, or an odd reply.

    The message names the registry host and what went wrong; it never holds a secret.
    """


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: a lower-case scheme, its params."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_www_authenticate(value: str) -> list[Challenge]:
    """The challenges in a ``WWW-Authenticate`` value, in order; junk is skipped.

    Parameter names are lower-cased and quoted values unescaped; a token68 (as in
    ``Negotiate abc==``) is kept under the name ``""``.
    """
    challenges: list[Challenge] = []
    pos = 0
    while pos < len(value):
        if challenges and (m := _PARAM.match(value, pos)):
            raw = m.group(2)
            text = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
            challenges[-1].params[m.group(1).lower()] = text
        elif challenges and not challenges[-1].params and (m := _TOKEN68.match(value, pos)):
            challenges[-1].params[""] = m.group(1)
        elif m := _SCHEME.match(value, pos):
            challenges.append(Challenge(m.group(1).lower()))
        else:  # not a challenge: skip to the next comma
            comma = value.find(",", pos)
            pos = len(value) if comma < 0 else comma + 1
            continue
        pos = m.end()
    return challenges


def split_image(image: str) -> tuple[str, str, str]:
    """``(host, repository, reference)`` of a full image name, as docker reads it.

    The first path part is a registry host only if it has a ``.`` or ``:`` or is
    ``localhost``; otherwise the image is on Docker Hub (``docker.io``), where a
    one-part name lives under ``library/``. The reference is the tag (``latest`` when
    none is given) or, for ``name@sha256:...``, the digest, which then wins over a tag.

    Raises
    ------
    ValueError
        The name is not a valid image reference; the message says which part.
    """
    name, at, digest = image.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise ValueError(f"{image!r}: {digest!r} is not a digest like sha256:<hex>")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = "latest"
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ValueError(f"{image!r}: {tag!r} is not a valid tag")
    first, sep, rest = name.partition("/")
    if sep and (("." in first or ":" in first) or first == "localhost"):
        if not _HOST.fullmatch(first):
            raise ValueError(f"{image!r}: {first!r} is not a valid registry host")
        host, repository = _HUB_ALIASES.get(first.lower(), first), rest
    else:
        host, repository = DOCKER_HUB, name
    if host == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not _REPOSITORY.fullmatch(repository) or len(repository) > 255:
        raise ValueError(
            f"{image!r}: {repository!r} is not a valid repository (lower-case letters, "
            "digits and . _ - separators, parts joined by /)"
        )
    return host, repository, digest if at else tag


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class RegistryClient:
    """Checks for manifests in one registry, with its credentials and a token cache.

    Parameters
    ----------
    url
        The registry's base URL, e.g. ``https://registry.example.org`` or
        ``http://127.0.0.1:5000``. Credentials go in ``username``/``password``.
    username, password
        Sent to the registry (``Basic``) or to its token realm; anonymous if empty.
    timeout
        Seconds each request, and its connection, may take.
    ca_certs
        A PEM bundle to verify the registry's (and realm's) TLS certificates with.
    clock
        Monotonic seconds, for the token cache; tests pass their own.
    """

    def __init__(
        self,
        url: str,
        *,
        username: str = "",
        password: str = "",
        timeout: float = 10.0,
        ca_certs: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the registry URL must be http(s)://host[:port]")
        if parts.username or parts.password:
            raise ValueError("put registry credentials in username and password, not the URL")
        self.url = url.rstrip("/")
        self.host = parts.netloc.lower().removesuffix(_DEFAULT_PORTS[parts.scheme])
        self.username = username
        self._password = password
        self.timeout = timeout
        self.ca_certs = ca_certs
        self.clock = clock
        self._tokens: dict[str, tuple[float, str]] = {}  # scope -> (good until, token)
        self._use_basic = False  # the registry asked for Basic once; send it up front

    def __repr__(self) -> str:  # never the password
        return f"RegistryClient({self.url!r}, username={self.username!r})"

    async def image_exists(self, image: str) -> bool:
        """Whether the full image name ``image`` exists in this registry."""
        host, repository, reference = split_image(image)
        if _HUB_ALIASES.get(self.host, self.host) != host.lower():
            raise RegistryError(f"the image {image} is not in the registry {self.host}")
        return await self.manifest_exists(repository, reference)

    async def manifest_exists(self, repository: str, tag: str) -> bool:
        """Whether ``repository`` has a manifest (image or index) for ``tag`` or a digest."""
        if not _REPOSITORY.fullmatch(repository) or not (
            _TAG.fullmatch(tag) or _DIGEST.fullmatch(tag)
        ):
            raise ValueError(f"{repository}:{tag} is not a valid repository and reference")
        url = f"{self.url}/v2/{repository}/manifests/{tag}"
        scope = f"repository:{repository}:pull"
        response = await self._fetch(url, self._cached_authorization(scope), method="HEAD")
        if response.code == 401:
            authorization = await self._answer(response, scope)
            response = await self._fetch(url, authorization, method="HEAD")
            if response.code == 401:  # Basic: a wrong password; Bearer: too little access
                refused = (
                    f"the credentials of {self.username}"
                    if authorization.startswith("Basic")
                    else f"access to {repository} as {self.username or 'an anonymous user'}"
                )
                raise RegistryError(f"the registry {self.host} refused {refused}")
        if response.code in (200, 404):
            return response.code == 200
        raise RegistryError(f"the registry {self.host} answered HTTP {response.code}")

    def _cached_authorization(self, scope: str) -> str | None:
        cached = self._tokens.get(scope)
        if cached is not None and self.clock() < cached[0]:
            return f"Bearer {cached[1]}"
        if self._use_basic:
            return _basic(self.username, self._password)
        return None

    async def _answer(self, response: HTTPResponse, scope: str) -> str:
        """The ``Authorization`` value that answers the registry's 401 challenge."""
        challenges = parse_www_authenticate(response.headers.get("WWW-Authenticate", ""))
        by_scheme = {c.scheme: c for c in challenges}
        if "bearer" in by_scheme and by_scheme["bearer"].params.get("realm"):
            return await self._token(by_scheme["bearer"].params, scope)
        if "basic" in by_scheme:
            if not self.username:
                raise RegistryError(f"the registry {self.host} needs a username and password")
            self._use_basic = True
            return _basic(self.username, self._password)
        raise RegistryError(f"the registry {self.host} asks for an unsupported login")

    async def _token(self, challenge: dict[str, str], scope: str) -> str:
        """A bearer token for ``scope`` from the challenge's realm; cached until near expiry.

        The realm is trusted as the registry names it, as docker does (over https, the
        registry's certificate vouches for the name); credentials never go to an http
        realm of an https registry.
        """
        self._tokens.pop(scope, None)  # the registry refused it, or it is stale
        realm = urlsplit(challenge["realm"])
        if realm.scheme not in ("http", "https") or not realm.hostname:
            raise RegistryError(f"the registry {self.host} names an invalid token realm")
        if realm.scheme == "http" and self.url.startswith("https:") and self.username:
            raise RegistryError(f"the registry {self.host} wants credentials sent over http")
        query = {"service": challenge.get("service", ""), "scope": challenge.get("scope", scope)}
        url = challenge["realm"] + ("&" if realm.query else "?")
        url += urlencode({k: v for k, v in query.items() if v})
        auth = _basic(self.username, self._password) if self.username else None
        response = await self._fetch(url, auth)
        where = f"the token service {realm.hostname} of the registry {self.host}"
        if response.code in (401, 403):
            raise RegistryError(
                f"{where} refused the credentials of {self.username or 'anonymous'}"
            )
        if response.code != 200:
            raise RegistryError(f"{where} answered HTTP {response.code}")
        try:
            body = json.loads(response.body)
            token = body.get("token") or body.get("access_token")
            expires_in = float(body.get("expires_in") or 60)  # the token spec's default
        except (ValueError, TypeError, AttributeError):
            raise RegistryError(f"{where} did not send a token") from None
        if not isinstance(token, str) or not token:
            raise RegistryError(f"{where} did not send a token")
        # Stop using it a little early, so it cannot expire on its way to the registry.
        self._tokens[scope] = (self.clock() + expires_in - min(10.0, expires_in / 2), token)
        return f"Bearer {token}"

    async def _fetch(
        self, url: str, authorization: str | None, *, method: str = "GET"
    ) -> HTTPResponse:
        headers = {"Accept": ", ".join(MANIFEST_TYPES) if method == "HEAD" else "*/*"}
        if authorization:
            headers["Authorization"] = authorization
        request = HTTPRequest(
            url,
            method=method,
            headers=headers,
            connect_timeout=self.timeout,
            request_timeout=self.timeout,
            ca_certs=self.ca_certs,
            follow_redirects=False,  # a redirect would carry the Authorization header along
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as e:  # refused, reset, TLS failure, timed out
            error: object = e
        else:
            if response.code != 599:  # tornado's "no response"
                return response
            error = response.error
        host = urlsplit(url).netloc
        raise RegistryError(f"the registry service at {host} did not answer ({error})")
