"""Repository launches: provider detection, policy and resolution."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.launch.config import parse_launch_config
from eohub.domain.launch.options import LaunchRequest, parse_options
from eohub.domain.launch.policy import Member, authorize, split_charged
from eohub.domain.launch.repository import (
    RepoRules,
    check_repository,
    detect_provider,
    spec_from_request,
)
from eohub.domain.repos.policy import RepoPolicy
from eohub.domain.repos.specs import RepoError, RepoProviders, RepoSpec
from tests.domain.launch.repository_fixtures import (
    COMMIT,
    ENTERPRISE,
    NO_BUILDER,
    PREFIX,
    PROVIDERS,
    RULES,
    spec,
)

# --- detect_provider --------------------------------------------------------------


@pytest.mark.parametrize(
    ("providers", "url", "expected"),
    [
        (PROVIDERS, "https://github.com/org/repo", ("gh", "org/repo")),
        (PROVIDERS, "https://github.com/org/repo.git", ("gh", "org/repo")),
        (PROVIDERS, "https://github.com/org/repo/", ("gh", "org/repo")),
        (PROVIDERS, "https://github.com/org/repo.git/", ("gh", "org/repo")),
        (PROVIDERS, "HTTPS://GitHub.com/org/repo", ("gh", "org/repo")),
        (PROVIDERS, "https://gitlab.com/group/project", ("gl", "group/project")),
        (PROVIDERS, "https://gitlab.com/group/sub/project.git", ("gl", "group/sub/project")),
        # another host, or the same host by another scheme, is a plain git repository
        (PROVIDERS, "https://example.org/a/b.git", ("git", "https://example.org/a/b.git")),
        (PROVIDERS, "https://www.github.com/org/repo", ("git", "https://www.github.com/org/repo")),
        (PROVIDERS, "http://github.com/org/repo", ("git", "http://github.com/org/repo")),
        # GitHub Enterprise under a path prefix: only URLs under that prefix are GitHub's
        (ENTERPRISE, "https://ghe.example.org/github/org/repo", ("gh", "org/repo")),
        (ENTERPRISE, "https://ghe.example.org/github/org/repo.git/", ("gh", "org/repo")),
        (
            ENTERPRISE,
            "https://ghe.example.org/githubx/org/repo",
            ("git", "https://ghe.example.org/githubx/org/repo"),
        ),
        (
            ENTERPRISE,
            "https://ghe.example.org/org/repo",
            ("git", "https://ghe.example.org/org/repo"),
        ),
        (ENTERPRISE, "https://git.example.org/group/project", ("gl", "group/project")),
        (ENTERPRISE, "https://github.com/org/repo", ("git", "https://github.com/org/repo")),
    ],
)
def test_detect_provider(providers: RepoProviders, url: str, expected: tuple[str, str]) -> None:
    assert detect_provider(providers, url) == expected


@pytest.mark.parametrize(
    ("repo", "field", "fragment"),
    [
        ("org/repo", "provider", "choose a provider, or paste the repository's URL"),
        ("github.com/org/repo", "provider", "choose a provider"),
        ("", "provider", "choose a provider"),
        ("https://github.com", "repo", "must name a repository path"),
        ("file:///etc/passwd", "repo", "file://"),
        ("https://user:pw@github.com/org/repo", "repo", "user name or password"),
    ],
)
def test_detect_provider_refuses(repo: str, field: str, fragment: str) -> None:
    with pytest.raises(RepoError) as refused:
        detect_provider(PROVIDERS, repo)
    assert refused.value.field == field
    assert fragment in refused.value.errors[field]


def test_detect_provider_tells_ports_apart() -> None:
    assert detect_provider(PROVIDERS, "https://github.com:8443/org/repo") == (
        "git",
        "https://github.com:8443/org/repo",
    )


# --- spec_from_request ------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (LaunchRequest(provider="gh", repo="org/repo"), spec("gh", "org/repo", "HEAD")),
        (
            LaunchRequest(provider="gh", repo="org/repo", ref="v1.0"),
            spec("gh", "org/repo", "v1.0"),
        ),
        # the provider's own URL is read as its owner/name
        (
            LaunchRequest(provider="gh", repo="https://github.com/org/repo.git"),
            spec("gh", "org/repo"),
        ),
        (
            LaunchRequest(provider="gl", repo="https://gitlab.com/group/sub/project", ref="dev"),
            spec("gl", "group/sub/project", "dev"),
        ),
        # no provider: detected from the URL
        (LaunchRequest(repo="https://github.com/org/repo"), spec("gh", "org/repo")),
        (
            LaunchRequest(repo="https://example.org/a/b.git"),
            spec("git", "https://example.org/a/b.git"),
        ),
        # git takes any URL as it is, a GitHub one too
        (
            LaunchRequest(provider="git", repo="https://github.com/org/repo"),
            spec("git", "https://github.com/org/repo"),
        ),
    ],
)
def test_spec_from_request(request_: LaunchRequest, expected: RepoSpec) -> None:
    assert spec_from_request(PROVIDERS, request_) == expected


@pytest.mark.parametrize(
    ("request_", "field", "fragment"),
    [
        (LaunchRequest(), "repo", "name the repository to launch"),
        (LaunchRequest(provider="gh", ref="main"), "repo", "name the repository to launch"),
        (
            LaunchRequest(provider="gl", repo="https://github.com/org/repo"),
            "repo",
            "is not a repository of provider 'gl'",
        ),
        (
            LaunchRequest(provider="gh", repo="https://example.org/org/repo"),
            "repo",
            "is not a repository of provider 'gh'",
        ),
        (LaunchRequest(repo="org/repo"), "provider", "choose a provider"),
        (LaunchRequest(provider="bb", repo="org/repo"), "provider", "is not a provider"),
        (LaunchRequest(provider="gh", repo="org"), "repo", "invalid repository name"),
        (
            LaunchRequest(provider="gh", repo="org/repo", ref="-x"),
            "ref",
            "must not start with '-'",
        ),
    ],
)
def test_spec_from_request_refuses(request_: LaunchRequest, field: str, fragment: str) -> None:
    with pytest.raises(RepoError) as refused:
        spec_from_request(PROVIDERS, request_)
    assert list(refused.value.errors) == [field]
    assert fragment in refused.value.errors[field]


_OWNER = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,10}", fullmatch=True)
_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,12}", fullmatch=True).filter(
    lambda n: not n.endswith(".git")
)


@given(_OWNER, _NAME, st.sampled_from(["", ".git", "/", ".git/"]))
def test_a_github_url_and_its_owner_name_are_the_same_launch(
    owner: str, name: str, suffix: str
) -> None:
    by_fields = spec_from_request(PROVIDERS, LaunchRequest(provider="gh", repo=f"{owner}/{name}"))
    url = f"https://github.com/{owner}/{name}{suffix}"
    assert spec_from_request(PROVIDERS, LaunchRequest(repo=url)) == by_fields
    assert spec_from_request(PROVIDERS, LaunchRequest(provider="gh", repo=url)) == by_fields


# --- check_repository -------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "repo", "trusted"),
    [
        (RepoPolicy(), "https://github.com/org/repo", False),
        (RepoPolicy(allowed_hosts=("github.com",)), "https://github.com/org/repo", False),
        (
            RepoPolicy(trusted_repos=("github.com/pangeo-data/*",)),
            "https://github.com/org/repo",
            False,
        ),
        (
            RepoPolicy(trusted_repos=("github.com/pangeo-data/*",)),
            "https://github.com/Pangeo-Data/tutorial",
            True,
        ),
        (RepoPolicy(trusted_repos=("gitlab.com/*",)), "https://gitlab.com/g/p", True),
    ],
)
def test_check_repository_allows(policy: RepoPolicy, repo: str, trusted: bool) -> None:
    rules = RepoRules(PROVIDERS, policy)
    request = LaunchRequest(repo=repo, ref="dev", filepath="nb/intro.ipynb")
    launch = check_repository(rules, request)
    assert launch.spec == spec_from_request(PROVIDERS, request)
    assert launch.trusted is trusted
    assert launch.filepath == "nb/intro.ipynb"
    assert (launch.commit, launch.image) == (None, None)


@pytest.mark.parametrize(
    ("policy", "repo", "fragment"),
    [
        (
            RepoPolicy(denied_repos=("github.com/evil/*",)),
            "https://github.com/Evil/x",
            "github.com/evil/x is not allowed here",
        ),
        (
            RepoPolicy(allowed_repos=("github.com/ok/*",)),
            "https://github.com/other/x",
            "is not allowed here",
        ),
        (
            RepoPolicy(denied_hosts=("gitlab.com",)),
            "https://gitlab.com/g/p",
            "repositories on gitlab.com are not allowed",
        ),
        (
            RepoPolicy(allowed_hosts=("github.com",)),
            "https://example.org/a.git",
            "repositories on example.org",
        ),
        (RepoPolicy(), "http://example.org/a.git", "must use https://"),
        (RepoPolicy(), "https://127.0.0.1/a.git", "loopback, private or reserved"),
        # deny wins over trust
        (
            RepoPolicy(denied_repos=("github.com/*",), trusted_repos=("github.com/*",)),
            "https://github.com/org/repo",
            "is not allowed here",
        ),
    ],
)
def test_check_repository_refuses(policy: RepoPolicy, repo: str, fragment: str) -> None:
    with pytest.raises(RepoError) as refused:
        check_repository(RepoRules(PROVIDERS, policy), LaunchRequest(repo=repo))
    assert list(refused.value.errors) == ["repo"]
    assert fragment in refused.value.errors["repo"]


# --- RepoLaunch -------------------------------------------------------------------


def test_resolved_names_the_image_per_repo_image_name() -> None:
    launch = check_repository(
        RULES, LaunchRequest(provider="gh", repo="binder-examples/requirements")
    )
    resolved = launch.resolved(COMMIT, RULES)
    # the name test_repo_images derives by hand from BinderHub's builder
    assert resolved.image == PREFIX + "binder-2dexamples-2drequirements-55ab5c:" + COMMIT
    assert resolved.commit == COMMIT
    assert resolved.check == launch.check
    assert (launch.commit, launch.image) == (None, None)  # the original is unchanged


def test_resolved_without_an_image_prefix_names_no_image() -> None:
    launch = check_repository(NO_BUILDER, LaunchRequest(provider="gh", repo="org/repo"))
    resolved = launch.resolved(COMMIT, NO_BUILDER)
    assert (resolved.commit, resolved.image) == (COMMIT, None)


@pytest.mark.parametrize(
    "commit", ["main", "HEAD", COMMIT.upper(), COMMIT[:-1], COMMIT + "0", "", " " + COMMIT]
)
def test_resolved_refuses_what_is_not_a_commit(commit: str) -> None:
    launch = check_repository(RULES, LaunchRequest(provider="gh", repo="org/repo"))
    with pytest.raises(RepoError) as refused:
        launch.resolved(commit, RULES)
    assert refused.value.field == "ref"


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            LaunchRequest(repo="https://github.com/org/repo.git"),
            {"provider": "gh", "repo": "org/repo", "ref": "HEAD"},
        ),
        (
            LaunchRequest(provider="gl", repo="group/sub/project", ref="v1", filepath="a b.ipynb"),
            {"provider": "gl", "repo": "group/sub/project", "ref": "v1", "filepath": "a b.ipynb"},
        ),
        (
            LaunchRequest(repo="https://example.org/a/b.git", ref="release/2024"),
            {"provider": "git", "repo": "https://example.org/a/b.git", "ref": "release/2024"},
        ),
    ],
)
def test_repo_launch_user_options(request_: LaunchRequest, expected: dict[str, object]) -> None:
    launch = check_repository(RULES, request_)
    assert launch.user_options() == expected
    assert launch.resolved(COMMIT, RULES).user_options() == expected  # the ref, not the commit


CONFIG = parse_launch_config(
    {"binder": {"repository": True}}, {"small": {"cpu": 1, "memory": "1G"}}, {}, backend="kube"
)
ALICE = Member("alice", frozenset({"staff"}))


@pytest.mark.parametrize(
    "options",
    [
        {"provider": "gh", "repo": "org/repo"},
        {"repo": "https://github.com/org/repo.git", "ref": "feature/x", "filepath": "nb/a.ipynb"},
        {"provider": "gl", "repo": "group/sub/project", "ref": COMMIT},
        {"repo": "https://example.org/a/b.git", "ref": "v1.0", "urlpath": "/rstudio/"},
        {"provider": "git", "repo": "https://github.com/org/repo"},
    ],
)
def test_user_options_authorize_to_the_same_launch(options: dict[str, object]) -> None:
    launch = authorize(CONFIG, ALICE, parse_options(options), None, RULES)
    assert launch.repo is not None
    resolved = dataclasses.replace(launch, repo=launch.repo.resolved(COMMIT, RULES))
    stored, _ = split_charged(resolved.user_options())
    again = authorize(CONFIG, ALICE, parse_options(stored), None, RULES)  # type: ignore[arg-type]
    assert again == launch
    assert again.repo is not None
    assert again.repo.resolved(COMMIT, RULES) == resolved.repo
