"""A real image registry on loopback: Debian's ``docker-registry`` (CNCF distribution 2.8).

It stores blobs in a temporary folder and runs either open or with ``auth: token``. In
token mode, the realm is a :class:`TokenServer` in this process: it checks basic
credentials and issues RS256 JWTs signed with a throwaway key, whose self-signed
certificate is the registry's ``rootcertbundle``. Distribution 2.8 finds the signing key
either from an ``x5c`` header (the certificate chain, verified against the bundle) or
from a ``kid`` equal to the libtrust key ID of a key in the bundle; both are offered.

:func:`push_image` uploads a minimal OCI image (a config blob and a manifest, no layers)
through the registry's HTTP API, so a test has something to find.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urljoin, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from .process import ServiceProcess, ServiceStartError, free_port, start_process
from .tools import system_bin

SERVICE = "eohub-test-registry"
ISSUER = "eohub-test-token-issuer"
# May pull (htpasswd: may push too); anonymous callers get a token granting nothing.
USERS = {"reader": "reader-pw"}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
Signing = Literal["x5c", "kid"]
Auth = Literal["none", "htpasswd", "token"]


def libtrust_key_id(key: rsa.RSAPublicKey) -> str:
    """The key ID distribution 2.8 (docker/libtrust) gives a public key.

    SHA-256 of the DER SubjectPublicKeyInfo, cut to 240 bits, base32 without padding,
    in twelve groups of four joined by ``:``.
    """
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def _self_signed(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@dataclass(frozen=True)
class TokenRequest:
    """One request the token server answered: who asked, for what, and its status.

    ``user`` is ``""`` for an anonymous request and for one with wrong credentials (401).
    """

    user: str
    scopes: tuple[str, ...]
    status: int


@dataclass
class TokenServer:
    """A registry token realm (``GET /token?service=&scope=``) in a thread of this process.

    ``expires_in`` and ``token_field`` may be changed while it runs; ``requests`` lists
    what it answered, so a test can count the tokens a client fetched.
    """

    directory: Path
    signing: Signing = "x5c"
    users: dict[str, str] = field(default_factory=lambda: dict(USERS))
    expires_in: int = 300
    token_field: str = "token"  # or "access_token", the OAuth 2 spelling
    trusted: bool = True  # False: sign with a key the registry does not know
    requests: list[TokenRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._signer = _self_signed("eohub test token signer")
        self._forger = _self_signed("eohub test token forger")
        self.bundle = self.directory / "token-signer.pem"
        self.bundle.write_bytes(self._signer[1].public_bytes(serialization.Encoding.PEM))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def realm(self) -> str:
        assert self._server is not None, "the token server is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def mint(self, subject: str, access: Sequence[dict[str, Any]]) -> str:
        """A signed token for ``subject`` granting ``access`` (the JWT ``access`` claim)."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "iat": now,
            "nbf": now - 10,
            "exp": now + self.expires_in,
            "jti": secrets.token_hex(12),
            "access": list(access),
        }
        key, cert = self._signer if self.trusted else self._forger
        if self.signing == "x5c":
            der = cert.public_bytes(serialization.Encoding.DER)
            headers: dict[str, Any] = {"x5c": [base64.b64encode(der).decode()]}
        else:
            headers = {"kid": libtrust_key_id(key.public_key())}
        return jwt.encode(claims, key, algorithm="RS256", headers=headers)

    def grant(self, user: str, scopes: Sequence[str]) -> list[dict[str, Any]]:
        """What ``user`` may do: pull from any repository if known, nothing if anonymous."""
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if user and kind == "repository" and "pull" in actions.split(","):
                access.append({"type": kind, "name": name, "actions": ["pull"]})
        return access

    def start(self) -> TokenServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                scopes = tuple(query.get("scope", []))
                user = server.check(self.headers.get("Authorization", ""))
                if user is None or query.get("service") != [SERVICE]:
                    status = 401 if user is None else 400
                    body: dict[str, Any] = {"errors": [{"code": "UNAUTHORIZED"}]}
                else:
                    status = 200
                    token = server.mint(user, server.grant(user, scopes))
                    body = {server.token_field: token, "expires_in": server.expires_in}
                server.requests.append(TokenRequest(user or "", scopes, status))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def check(self, authorization: str) -> str | None:
        """The user named by valid basic credentials, ``""`` for none, None if wrong."""
        if not authorization:
            return ""
        scheme, _, encoded = authorization.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return None
        ok = scheme.lower() == "basic" and user in self.users
        return user if ok and secrets.compare_digest(self.users[user], password) else None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


@dataclass(frozen=True)
class Registry:
    """A running registry: its base URL, ``host:port``, auth mode and token realm, if any."""

    url: str
    host: str
    auth: Auth
    process: ServiceProcess
    tokens: TokenServer | None

    def served(self, method: str, path: str) -> list[int]:
        """The statuses of the registry's answers to ``method path``, from its access log."""
        pattern = re.compile(rf'"{re.escape(method)} {re.escape(path)} HTTP/[0-9.]+" ([0-9]+) ')
        text = self.process.log_path.read_text(errors="replace")
        return [int(m.group(1)) for m in pattern.finditer(text)]

    def push_image(self, repository: str, tag: str) -> str:
        """Upload a minimal OCI image as ``repository:tag``; return the manifest digest."""
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        headers = {}
        if self.auth == "htpasswd":
            user, password = next(iter(USERS.items()))
            encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {encoded}"
        if self.tokens is not None:
            access = [{"type": "repository", "name": repository, "actions": ["pull", "push"]}]
            headers["Authorization"] = "Bearer " + self.tokens.mint("pusher", access)
        base = f"{self.url}/v2/{repository}"
        started = _call("POST", f"{base}/blobs/uploads/", headers=headers, expect=202)
        location = urljoin(self.url, started.headers["Location"])
        separator = "&" if "?" in location else "?"
        _call(
            "PUT",
            f"{location}{separator}digest={config_digest}",
            body=config,
            headers={**headers, "Content-Type": "application/octet-stream"},
            expect=201,
        )
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
                "layers": [],
            }
        ).encode()
        done = _call(
            "PUT",
            f"{base}/manifests/{tag}",
            body=manifest,
            headers={**headers, "Content-Type": OCI_MANIFEST},
            expect=201,
        )
        return str(done.headers["Docker-Content-Digest"])


def _call(
    method: str, url: str, *, headers: dict[str, str], expect: int, body: bytes | None = None
) -> Any:
    # Loopback http URLs of the registry under test only.
    request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310
    try:
        response = urllib.request.urlopen(request, timeout=10)  # noqa: S310
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {url}: HTTP {e.code} {e.read()[:500]!r}") from None
    with response:
        response.read()
    if response.status != expect:
        raise AssertionError(f"{method} {url}: HTTP {response.status}, expected {expect}")
    return response


def _bcrypt(password: str) -> str:
    """A bcrypt hash for htpasswd (the only kind distribution reads), from glibc's crypt."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # removed in Python 3.13
        try:
            import crypt
        except ImportError:
            raise ServiceStartError("htpasswd needs the crypt module (Python < 3.13)") from None
        # bcrypt, as distribution requires (ruff takes "blowfish" for a weak hash).
        salt = crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 4)  # noqa: S324
        hashed = crypt.crypt(password, salt)
    if not hashed or not hashed.startswith("$2"):
        raise ServiceStartError("this libcrypt cannot make bcrypt hashes for htpasswd")
    return hashed


def _config(root: Path, port: int, auth: Auth, tokens: TokenServer | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "storage")},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": secrets.token_hex(16)},
    }
    if auth == "htpasswd":
        htpasswd = root / "htpasswd"
        htpasswd.write_text("".join(f"{u}:{_bcrypt(p)}\n" for u, p in USERS.items()))
        config["auth"] = {"htpasswd": {"realm": "eohub-test", "path": str(htpasswd)}}
    if tokens is not None:
        config["auth"] = {
            "token": {
                "realm": tokens.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(tokens.bundle),
            }
        }
    return config


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/v2/", timeout=1):  # noqa: S310 (loopback http)
            return True
    except urllib.error.HTTPError as e:
        return e.code == 401  # token mode: the API is up and asks for a token
    except OSError:
        return False


@contextmanager
def start_registry(
    workdir: Path, *, auth: Auth = "none", signing: Signing = "x5c"
) -> Iterator[Registry]:
    """Run a registry in ``workdir`` until the block ends.

    ``auth`` is ``"none"``, ``"htpasswd"`` (Basic, for the users in :data:`USERS`) or
    ``"token"`` (a :class:`TokenServer` realm signing with ``signing``).
    """
    binary = system_bin("docker-registry", "docker-registry")
    workdir.mkdir(parents=True, exist_ok=True)
    tokens = TokenServer(workdir / "token", signing=signing).start() if auth == "token" else None
    process: ServiceProcess | None = None
    try:
        port = free_port()
        config_path = workdir / "config.yml"  # JSON is YAML too
        config_path.write_text(json.dumps(_config(workdir, port, auth, tokens), indent=2))
        process = start_process(
            "docker-registry",
            [binary, "serve", str(config_path)],
            log_path=workdir / "registry.log",
            env={"PATH": "/usr/bin:/bin", "HOME": str(workdir)},
        )
        url = f"http://127.0.0.1:{port}"
        process.wait_until(lambda: _answers(url), timeout=20, what="answering /v2/")
        yield Registry(
            url=url, host=f"127.0.0.1:{port}", auth=auth, process=process, tokens=tokens
        )
    finally:
        if process is not None:
            process.stop()
        if tokens is not None:
            tokens.stop()
