"""The admin's repository policy: allow, deny and trusted lists, http, and SSRF guards."""

from __future__ import annotations

import ipaddress

import pytest

from eohub.domain.repos.policy import RepoPolicy, address_allowed
from eohub.domain.repos.specs import RepoError, RepoProviders

PROVIDERS = RepoProviders.default()


def _check(url: str, policy: RepoPolicy | None = None) -> object:
    spec = PROVIDERS.from_fields("git", url, "main")
    return (policy or RepoPolicy()).check(spec, PROVIDERS)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/x",
        "https://[::1]/x",
        "https://169.254.169.254/latest",
        "https://10.0.0.1/x",
        "https://172.16.0.1/x",
        "https://192.168.1.1/x",
        "https://100.64.0.1/x",
        "https://0.0.0.0/x",
        "https://[::]/x",
        "https://224.0.0.1/x",
        "https://240.0.0.1/x",
        "https://[fe80::1]/x",
        "https://[fc00::1]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://[2002:7f00:1::]/x",
    ],
)
def test_internal_ip_literals_are_refused(url: str) -> None:
    with pytest.raises(RepoError, match="loopback, private or reserved") as caught:
        _check(url)
    assert caught.value.field == "repo"


def test_private_hosts_only_when_the_admin_allows_them() -> None:
    policy = RepoPolicy(allow_private_hosts=True)
    for url in ("https://127.0.0.1/x", "https://10.0.0.1/x", "https://[fe80::1]/x"):
        _check(url, policy)
    for url in ("https://0.0.0.0/x", "https://224.0.0.1/x", "https://240.0.0.1/x"):
        with pytest.raises(RepoError):
            _check(url, policy)


@pytest.mark.parametrize(
    ("address", "private", "expected"),
    [
        ("140.82.121.4", False, True),
        ("2606:50c0:8000::153", False, True),
        ("127.0.0.1", False, False),
        ("127.0.0.1", True, True),
        ("::ffff:10.1.2.3", False, False),
        ("::ffff:140.82.121.4", False, True),
        ("169.254.169.254", False, False),
        ("fd00::1", False, False),
        ("0.0.0.0", True, False),  # noqa: S104 (an address to refuse, not to bind)
        ("ff02::1", True, False),
        ("not an address", True, False),
    ],
)
def test_address_allowed(address: str, private: bool, expected: bool) -> None:
    assert address_allowed(address, allow_private=private) is expected


def test_http_only_when_the_admin_allows_it() -> None:
    with pytest.raises(RepoError, match="must use https://"):
        _check("http://example.org/x")
    check = _check("http://example.org/x", RepoPolicy(allow_http=True))
    assert check.needs_resolution is True  # type: ignore[attr-defined]


def test_host_names_are_left_for_the_adapter_to_resolve() -> None:
    user_chosen = RepoPolicy().check(
        PROVIDERS.parse_link("git/https%3A%2F%2Fx.org%2Fr/m"), PROVIDERS
    )
    assert (user_chosen.host, user_chosen.needs_resolution) == ("x.org", True)
    configured = RepoPolicy().check(PROVIDERS.parse_link("gh/a/b/main"), PROVIDERS)
    assert configured.needs_resolution is False
    internal = RepoProviders.default(gitlab_url="https://10.0.0.5")
    spec = internal.from_fields("gl", "eo/tools")
    assert RepoPolicy().check(spec, internal).needs_resolution is False


POLICY = RepoPolicy(
    allowed_hosts=("github.com", "*.example.org"),
    denied_hosts=("evil.example.org",),
    denied_repos=("github.com/banned/*",),
    trusted_repos=("github.com/pangeo-data/*", "git.example.org/eo/*"),
)


@pytest.mark.parametrize(
    ("field", "repo", "outcome"),
    [
        ("gh", "pangeo-data/pangeo-docker-images", "trusted"),
        ("gh", "Pangeo-Data/Notebooks", "trusted"),
        ("gh", "someone/notebooks", "untrusted"),
        ("git", "https://git.example.org/eo/tools.git", "trusted"),
        ("git", "https://git.example.org/other/tools", "untrusted"),
        ("gh", "banned/repo", "github.com/banned/repo is not allowed"),
        ("git", "https://evil.example.org/a/b", "evil.example.org are not allowed"),
        ("git", "https://example.org/a/b", "example.org are not allowed"),
        ("gl", "a/b", "gitlab.com are not allowed"),
    ],
)
def test_allow_deny_and_trusted_lists(field: str, repo: str, outcome: str) -> None:
    spec = PROVIDERS.from_fields(field, repo, "main")
    if outcome in ("trusted", "untrusted"):
        assert POLICY.check(spec, PROVIDERS).trusted is (outcome == "trusted")
    else:
        with pytest.raises(RepoError, match=outcome):
            POLICY.check(spec, PROVIDERS)


def test_repo_patterns_can_allow_only_some_repositories() -> None:
    policy = RepoPolicy(allowed_repos=["github.com/eo-lab/*"])  # type: ignore[arg-type]
    policy.check(PROVIDERS.from_fields("gh", "eo-lab/x"), PROVIDERS)
    with pytest.raises(RepoError, match="not allowed"):
        policy.check(PROVIDERS.from_fields("gh", "other/x"), PROVIDERS)


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"allowed_hosts": "github.com"}, "allowed_hosts"),
        ({"denied_repos": ("",)}, "denied_repos"),
        ({"trusted_repos": ("a\nb",)}, "trusted_repos"),
        ({"allow_http": "yes"}, "allow_http"),
    ],
)
def test_a_bad_policy_names_its_field(kwargs: dict[str, object], where: str) -> None:
    with pytest.raises(RepoError) as caught:
        RepoPolicy(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == where


@pytest.mark.parametrize(
    ("address", "private", "expected"),
    [
        ("fec0::1", False, False),  # site-local: deprecated, still routed inside some networks
        ("fec0::1", True, True),
        ("100.64.0.1", False, False),  # shared address space
        ("2002:8c52:7904::1", False, True),  # 6to4 of a global IPv4 address
        ("2002:0a00:0001::1", False, False),  # 6to4 of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", True, True),  # Teredo of 192.0.2.45 (ok)
        ("240.0.0.1", True, False),  # reserved
        ("::", True, False),  # unspecified
        ("", False, False),
    ],
)
def test_address_allowed_edges(address: str, private: bool, expected: bool) -> None:
    assert address_allowed(address, allow_private=private) is expected


def test_address_allowed_takes_address_objects() -> None:
    assert address_allowed(ipaddress.ip_address("140.82.121.4")) is True
    assert address_allowed(ipaddress.ip_address("::1")) is False


def test_patterns_are_case_insensitive_and_deny_wins() -> None:
    policy = RepoPolicy(allowed_hosts=("*.EXAMPLE.org",), denied_hosts=("Bad.Example.Org",))
    assert policy.allowed_hosts == ("*.example.org",)
    check = policy.check(PROVIDERS.from_fields("git", "https://git.example.org/a/b"), PROVIDERS)
    assert (check.host, check.trusted) == ("git.example.org", False)
    with pytest.raises(RepoError, match=r"bad\.example\.org are not allowed"):
        policy.check(PROVIDERS.from_fields("git", "https://bad.example.org/a/b"), PROVIDERS)


def test_the_check_carries_the_private_hosts_switch() -> None:
    spec = PROVIDERS.from_fields("git", "https://10.0.0.1/a/b")
    check = RepoPolicy(allow_private_hosts=True).check(spec, PROVIDERS)
    assert (check.spec, check.host, check.needs_resolution) == (spec, "10.0.0.1", False)
    assert check.allow_private is True


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"allowed_repos": ("ok", 3)}, "allowed_repos"),
        ({"denied_hosts": "evil.org"}, "denied_hosts"),
        ({"allow_private_hosts": 1}, "allow_private_hosts"),
    ],
)
def test_more_bad_policies_name_their_field(kwargs: dict[str, object], where: str) -> None:
    with pytest.raises(RepoError) as caught:
        RepoPolicy(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == where
