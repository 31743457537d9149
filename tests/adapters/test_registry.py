"""The registry cache check against a real registry (distribution 2.8), and its parsers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eohub.adapters.registry import (
    Challenge,
    RegistryClient,
    RegistryError,
    parse_www_authenticate,
    split_image,
)
from tests.support.git_server import silent_server
from tests.support.registry import USERS, Registry, Signing, start_registry

DIGEST = "sha256:" + "ab" * 32
PASSWORD = USERS["reader"]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("127.0.0.1:5000/eohub/demo:v1", ("127.0.0.1:5000", "eohub/demo", "v1")),
        ("registry.example.org/a/b/c:1.0-rc_1", ("registry.example.org", "a/b/c", "1.0-rc_1")),
        ("localhost/demo", ("localhost", "demo", "latest")),
        ("localhost:5000/demo:x", ("localhost:5000", "demo", "x")),
        ("[::1]:5000/demo:x", ("[::1]:5000", "demo", "x")),
        ("ubuntu", ("docker.io", "library/ubuntu", "latest")),
        ("ubuntu:22.04", ("docker.io", "library/ubuntu", "22.04")),
        ("jupyter/base-notebook:2024", ("docker.io", "jupyter/base-notebook", "2024")),
        ("docker.io/ubuntu", ("docker.io", "library/ubuntu", "latest")),
        ("index.docker.io/jupyter/x:1", ("docker.io", "jupyter/x", "1")),
        ("quay.io/a/b@" + DIGEST, ("quay.io", "a/b", DIGEST)),
        ("quay.io/a/b:ignored@" + DIGEST, ("quay.io", "a/b", DIGEST)),  # as docker: digest wins
        ("a__b/c.d-e:t", ("docker.io", "a__b/c.d-e", "t")),
    ],
)
def test_split_image_reads_names_as_docker_does(
    image: str, expected: tuple[str, str, str]
) -> None:
    assert split_image(image) == expected


@pytest.mark.parametrize(
    ("image", "complaint"),
    [
        ("", "is not a valid repository"),
        ("Eohub/demo:v1", "'Eohub/demo' is not a valid repository"),
        ("eohub//demo", "is not a valid repository"),
        ("reg.example.org/:v1", "'' is not a valid repository"),
        ("eohub/demo:", "'' is not a valid tag"),
        ("eohub/demo:-x", "'-x' is not a valid tag"),
        ("eohub/demo@md5:abc", "'md5:abc' is not a digest"),
        ("eohub/demo@sha256:short", "is not a digest"),
        ("bad_host.org:x/demo", "'bad_host.org:x' is not a valid registry host"),
    ],
)
def test_split_image_refuses_malformed_names_saying_which_part(image: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="is not a") as error:
        split_image(image)
    assert complaint in str(error.value)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.example.org/token",service="registry.example.org",'
            'scope="repository:a/b:pull,push"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://auth.example.org/token",
                        "service": "registry.example.org",
                        "scope": "repository:a/b:pull,push",
                    },
                )
            ],
        ),
        ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
        (
            'Basic realm="a, b", Bearer realm="https://t/x",service=s',
            [
                Challenge("basic", {"realm": "a, b"}),
                Challenge("bearer", {"realm": "https://t/x", "service": "s"}),
            ],
        ),
        (
            'bearer REALM = "https://t/x" , Service=reg',
            [Challenge("bearer", {"realm": "https://t/x", "service": "reg"})],
        ),
        (r'Bearer realm="say \"hi\", \\ ok"', [Challenge("bearer", {"realm": r'say "hi", \ ok'})]),
        (
            'Bearer realm="r",error="insufficient_scope",scope="repository:x:pull"',
            [
                Challenge(
                    "bearer",
                    {"realm": "r", "error": "insufficient_scope", "scope": "repository:x:pull"},
                )
            ],
        ),
        ("Negotiate abc==, Basic", [Challenge("negotiate", {"": "abc=="}), Challenge("basic")]),
        ("Basic", [Challenge("basic")]),
        ("", []),
        (' ,, "junk", =x', []),
    ],
)
def test_www_authenticate_is_parsed_with_quotes_and_several_challenges(
    header: str, expected: list[Challenge]
) -> None:
    assert parse_www_authenticate(header) == expected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("registry.example.org", "must be http(s)://host"),
        ("ftp://registry.example.org", "must be http(s)://host"),
        ("https://me:secret@registry.example.org", "not the URL"),
    ],
)
def test_the_client_wants_a_plain_http_url(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="registry") as error:
        RegistryClient(url)
    assert complaint in str(error.value)
    assert "secret" not in str(error.value)


def test_the_client_does_not_show_its_password() -> None:
    client = RegistryClient("https://registry.example.org:443/", username="u", password="pw1")
    assert (client.host, "pw1" in repr(client)) == ("registry.example.org", False)


@pytest.fixture(scope="module")
def open_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with start_registry(tmp_path_factory.mktemp("registry")) as registry:
        registry.push_image("eohub/demo", "v1")
        yield registry


async def test_an_empty_registry_has_no_images(tmp_path: Path) -> None:
    with start_registry(tmp_path) as registry:
        client = RegistryClient(registry.url)
        assert await client.manifest_exists("eohub/demo", "v1") is False
        assert await client.image_exists(f"{registry.host}/eohub/demo:v1") is False


async def test_a_pushed_image_is_a_hit_and_other_tags_miss(open_registry: Registry) -> None:
    client = RegistryClient(open_registry.url)
    assert await client.manifest_exists("eohub/demo", "v1") is True
    assert await client.manifest_exists("eohub/demo", "v2") is False
    assert await client.manifest_exists("eohub/other", "v1") is False
    assert await client.image_exists(f"{open_registry.host}/eohub/demo:v1") is True
    assert await client.image_exists(f"{open_registry.host}/eohub/demo:v2") is False


async def test_a_digest_reference_is_checked_too(tmp_path: Path) -> None:
    with start_registry(tmp_path) as registry:
        digest = registry.push_image("eohub/pinned", "v1")
        client = RegistryClient(registry.url)
        assert await client.image_exists(f"{registry.host}/eohub/pinned@{digest}") is True
        assert await client.image_exists(f"{registry.host}/eohub/pinned@{DIGEST}") is False


async def test_an_image_on_another_host_is_refused_without_asking(
    open_registry: Registry,
) -> None:
    client = RegistryClient(open_registry.url)
    before = open_registry.served("HEAD", "/v2/eohub/demo/manifests/v1")
    for image in ("quay.io/eohub/demo:v1", "eohub/demo:v1", "127.0.0.1:1/eohub/demo:v1"):
        with pytest.raises(RegistryError, match=r"is not in the registry 127\.0\.0\.1:"):
            await client.image_exists(image)
    assert open_registry.served("HEAD", "/v2/eohub/demo/manifests/v1") == before


async def test_a_registry_that_is_down_is_an_error(tmp_path: Path) -> None:
    with start_registry(tmp_path) as registry:
        registry.process.stop()
        with pytest.raises(RegistryError, match=r"registry service at 127\.0\.0\.1:.* did not"):
            await RegistryClient(registry.url).manifest_exists("eohub/demo", "v1")


async def test_a_registry_that_never_answers_times_out() -> None:
    with silent_server() as url:
        client = RegistryClient(url, timeout=0.5)
        with pytest.raises(RegistryError, match="did not answer"):
            await client.manifest_exists("eohub/demo", "v1")


@pytest.fixture(scope="module", params=["x5c", "kid"])
def token_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """Token auth, once per way distribution 2.8 can find the token's signing key."""
    signing: Signing = request.param
    with start_registry(
        tmp_path_factory.mktemp("registry"), auth="token", signing=signing
    ) as registry:
        registry.push_image("eohub/demo", "v1")
        yield registry


@pytest.fixture
def tokens(token_registry: Registry) -> Iterator[Registry]:
    """The token registry, with its token server's settings and request list reset."""
    assert token_registry.tokens is not None
    server = token_registry.tokens
    server.requests.clear()
    yield token_registry
    server.expires_in, server.token_field, server.trusted = 300, "token", True


async def test_a_token_is_fetched_once_and_then_a_hit_costs_one_request(
    tokens: Registry,
) -> None:
    assert tokens.tokens is not None
    client = RegistryClient(tokens.url, username="reader", password=PASSWORD)
    assert await client.manifest_exists("eohub/demo", "v1") is True
    assert await client.manifest_exists("eohub/demo", "v1") is True
    assert await client.manifest_exists("eohub/demo", "v2") is False  # same repository, same token
    assert [(r.user, r.scopes, r.status) for r in tokens.tokens.requests] == [
        ("reader", ("repository:eohub/demo:pull",), 200)
    ]
    assert tokens.served("HEAD", "/v2/eohub/demo/manifests/v1")[-3:] == [401, 200, 200]
    assert tokens.served("HEAD", "/v2/eohub/demo/manifests/v2")[-1:] == [404]


async def test_tokens_are_cached_per_repository_and_renewed_before_they_expire(
    tokens: Registry,
) -> None:
    assert tokens.tokens is not None
    tokens.tokens.expires_in = 60
    now = [0.0]
    client = RegistryClient(tokens.url, username="reader", password=PASSWORD, clock=lambda: now[0])
    assert await client.manifest_exists("eohub/demo", "v1") is True
    assert await client.manifest_exists("eohub/other", "v1") is False
    now[0] = 49.0
    assert await client.manifest_exists("eohub/demo", "v1") is True
    assert len(tokens.tokens.requests) == 2  # one per repository
    now[0] = 51.0  # 60 s tokens are dropped 10 s early
    assert await client.manifest_exists("eohub/demo", "v1") is True
    assert [r.scopes for r in tokens.tokens.requests][-1] == ("repository:eohub/demo:pull",)
    assert len(tokens.tokens.requests) == 3


async def test_an_oauth_style_access_token_is_accepted(tokens: Registry) -> None:
    assert tokens.tokens is not None
    tokens.tokens.token_field = "access_token"
    client = RegistryClient(tokens.url, username="reader", password=PASSWORD)
    assert await client.manifest_exists("eohub/demo", "v1") is True


async def test_a_wrong_password_is_a_clear_error_without_the_password(
    tokens: Registry,
) -> None:
    assert tokens.tokens is not None
    client = RegistryClient(tokens.url, username="reader", password="not-the-password-42")
    with pytest.raises(RegistryError) as error:
        await client.manifest_exists("eohub/demo", "v1")
    message = str(error.value)
    assert message.startswith("the token service 127.0.0.1 of the registry 127.0.0.1:")
    assert message.endswith("refused the credentials of reader")
    assert "not-the-password-42" not in message + repr(error.value) + repr(client)
    assert [(r.user, r.status) for r in tokens.tokens.requests] == [("", 401)]


async def test_an_anonymous_token_without_access_is_refused(tokens: Registry) -> None:
    with pytest.raises(RegistryError, match="refused access to eohub/demo as an anonymous"):
        await RegistryClient(tokens.url).manifest_exists("eohub/demo", "v1")


async def test_the_registry_checks_the_token_signature(tokens: Registry) -> None:
    assert tokens.tokens is not None
    tokens.tokens.trusted = False  # signed by a key that is not in the rootcertbundle
    client = RegistryClient(tokens.url, username="reader", password=PASSWORD)
    with pytest.raises(RegistryError, match="refused access to eohub/demo as reader"):
        await client.manifest_exists("eohub/demo", "v1")


async def test_basic_auth_is_sent_up_front_once_the_registry_asked(tmp_path: Path) -> None:
    with start_registry(tmp_path, auth="htpasswd") as registry:
        registry.push_image("eohub/demo", "v1")
        client = RegistryClient(registry.url, username="reader", password=PASSWORD)
        assert await client.manifest_exists("eohub/demo", "v1") is True
        assert await client.manifest_exists("eohub/demo", "v1") is True
        assert registry.served("HEAD", "/v2/eohub/demo/manifests/v1") == [401, 200, 200]
        wrong = RegistryClient(registry.url, username="reader", password="wrong-pw-7")
        with pytest.raises(RegistryError, match=r"refused the credentials of reader$") as error:
            await wrong.manifest_exists("eohub/demo", "v1")
        assert "wrong-pw-7" not in str(error.value)
        with pytest.raises(RegistryError, match="needs a username and password"):
            await RegistryClient(registry.url).manifest_exists("eohub/demo", "v1")
