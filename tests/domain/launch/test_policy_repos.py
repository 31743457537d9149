"""Launch policy for environments that launch a git repository (``repository: true``)."""

from __future__ import annotations

from typing import Any

import pytest

from eohub.domain.launch.config import LaunchConfig, LaunchConfigError, parse_launch_config
from eohub.domain.launch.options import REPO_FIELDS, LaunchRequest, OptionsError, parse_options
from eohub.domain.launch.policy import Member, authorize, visible_environments
from eohub.domain.launch.repository import RepoRules
from eohub.domain.repos.specs import RepoSpec
from tests.domain.launch.policy_repos_fixtures import (
    ALICE,
    CAROL,
    CONFIG,
    LOCAL,
    NOT_FOR_PANGEO,
    REPO_DEFAULT,
    RULES,
    SIZES,
    refusal,
    request,
)

# --- what authorize makes of a repository launch ----------------------------------


@pytest.mark.parametrize("config", [CONFIG, LOCAL], ids=["kube", "local"])
def test_a_repository_launch(config: LaunchConfig) -> None:
    req = request(
        environment="binder", repo="https://github.com/Pangeo-Data/tutorial.git", ref="dev"
    )
    launch = authorize(config, ALICE, req, None, RULES)
    assert launch.environment.name == "binder"
    assert launch.size.name == "medium"
    assert launch.group == "builders"
    assert launch.repo is not None
    assert launch.repo.spec == RepoSpec(
        "gh", "https://github.com/Pangeo-Data/tutorial", "Pangeo-Data/tutorial", "dev"
    )
    assert launch.repo.trusted
    assert (launch.repo.commit, launch.repo.image, launch.repo.filepath) == (None, None, None)
    options = launch.user_options()
    assert options["provider"] == "gh"
    assert options["repo"] == "Pangeo-Data/tutorial"
    assert options["ref"] == "dev"
    assert "filepath" not in options
    assert "image" not in options  # the builder's image is never an option


def test_a_plain_launch_has_no_repository() -> None:
    launch = authorize(CONFIG, ALICE, request(), None, RULES)
    assert launch.repo is None
    assert not set(REPO_FIELDS) & set(launch.user_options())


def test_the_ref_defaults_to_head_and_the_filepath_is_kept() -> None:
    req = request(environment="binder", provider="gl", repo="g/p", filepath="nb/a b.ipynb")
    launch = authorize(CONFIG, ALICE, req, None, RULES)
    assert launch.repo is not None
    assert launch.repo.spec.ref == "HEAD"
    assert not launch.repo.trusted
    assert launch.repo.filepath == "nb/a b.ipynb"
    assert launch.user_options()["filepath"] == "nb/a b.ipynb"


@pytest.mark.parametrize(
    ("config", "member", "req", "repos", "errors"),
    [
        pytest.param(
            CONFIG,
            ALICE,
            request(environment="binder"),
            RULES,
            {"repo": "name the repository to launch"},
            id="no repository",
        ),
        pytest.param(
            CONFIG,
            ALICE,
            request(environment="binder", provider="gh", ref="main", filepath="a.ipynb"),
            RULES,
            {"repo": "name the repository to launch"},
            id="a ref but no repository",
        ),
        pytest.param(
            CONFIG,
            ALICE,
            request(environment="binder", repo="org/repo"),
            RULES,
            {"provider": "choose a provider, or paste the repository's URL"},
            id="no provider and not a URL",
        ),
        pytest.param(
            CONFIG,
            ALICE,
            request(environment="binder", provider="gh", repo="evil/miner"),
            RULES,
            {"repo": "github.com/evil/miner is not allowed here"},
            id="a denied repository",
        ),
        pytest.param(
            CONFIG,
            ALICE,
            request(environment="binder", repo="https://github.com/evil/miner.git"),
            RULES,
            {"repo": "github.com/evil/miner is not allowed here"},
            id="a denied repository by URL",
        ),
        pytest.param(
            CONFIG,
            ALICE,
            request(environment="binder", repo="http://example.org/a.git"),
            RULES,
            {"repo": "must use https://; this hub does not allow http://"},
            id="plain http",
        ),
        pytest.param(
            CONFIG,
            ALICE,
            request(environment="binder", provider="gh", repo="org/repo", ref="a..b"),
            RULES,
            {"ref": "'a..b' must not contain '..'"},
            id="a bad ref",
        ),
        pytest.param(
            CONFIG,
            ALICE,
            request(environment="binder", provider="gl", repo="https://github.com/org/repo"),
            RULES,
            {"repo": "is not a repository of provider 'gl'"},
            id="a URL of another provider",
        ),
        pytest.param(
            CONFIG,
            ALICE,
            request(environment="binder", provider="gh", repo="org/repo"),
            None,
            {
                "environment": "environment 'binder' launches repositories, which this hub "
                "has not set up"
            },
            id="repositories not set up",
        ),
        pytest.param(
            CONFIG,
            ALICE,
            request(environment="binder", provider="gh", repo="evil/x", size="huge"),
            RULES,
            {
                "repo": "github.com/evil/x is not allowed here",
                "size": "size 'huge' is not offered for environment 'binder'",
            },
            id="every field at once",
        ),
        pytest.param(
            REPO_DEFAULT,
            CAROL,
            request(),
            RULES,
            {"repo": "name the repository to launch"},
            id="the default environment needs a repository",
        ),
    ],
)
def test_authorize_refuses_repository_launches(
    config: LaunchConfig,
    member: Member,
    req: LaunchRequest,
    repos: RepoRules | None,
    errors: dict[str, str],
) -> None:
    assert refusal(config, member, req, repos) == errors


@pytest.mark.parametrize("field", REPO_FIELDS)
@pytest.mark.parametrize("environment", ["pangeo", None])
def test_repository_options_on_a_plain_environment_name_the_field(
    field: str, environment: str | None
) -> None:
    value = {"provider": "gh", "repo": "org/repo", "ref": "main", "filepath": "a.ipynb"}[field]
    req = request(environment=environment, **{field: value})
    for repos in (RULES, None):
        assert refusal(CONFIG, ALICE, req, repos) == {field: NOT_FOR_PANGEO}


def test_a_plain_environment_names_the_first_repository_option_given() -> None:
    req = request(ref="main", filepath="a.ipynb")
    assert refusal(CONFIG, ALICE, req) == {"ref": NOT_FOR_PANGEO}


def test_a_restricted_repository_environment_is_refused_like_a_missing_one() -> None:
    assert "binder" not in [e.name for e in visible_environments(CONFIG, CAROL)]
    for name in ("binder", "hidden", "nonexistent"):
        # also with a denied repository: a hidden environment reveals no repository policy
        for repo in ("org/repo", "evil/x"):
            req = request(environment=name, provider="gh", repo=repo)
            assert refusal(CONFIG, CAROL, req) == {
                "environment": f"no environment {name!r} is available to you"
            }


def test_a_member_may_launch_an_open_repository_environment() -> None:
    req = request(environment="classic", provider="gh", repo="org/repo")
    launch = authorize(CONFIG, CAROL, req, None, RULES)
    assert launch.repo is not None
    assert launch.repo.spec.url == "https://github.com/org/repo"


@pytest.mark.parametrize(
    ("filepath", "fragment"),
    [
        ("../secret", "must not contain '..'"),
        ("nb/../../x", "must not contain '..'"),
        ("%2E%2E/x", "must not contain '..'"),
        ("/etc/passwd", "must be a path inside the repository"),
        ("a//b", "must be a path inside the repository"),
        ("a\\b", "must be a path inside the repository"),
        ("a\nb", "must not contain control characters"),
        ("x" * 1025, "must be at most 1024 characters"),
    ],
)
def test_bad_filepaths_are_refused_before_policy(filepath: str, fragment: str) -> None:
    raw = {"environment": "binder", "provider": "gh", "repo": "org/repo", "filepath": filepath}
    with pytest.raises(OptionsError) as refused:
        parse_options(raw)
    assert list(refused.value.errors) == ["filepath"]
    assert fragment in refused.value.errors["filepath"]


def test_a_filepath_on_a_plain_environment_is_refused() -> None:
    req = parse_options({"environment": "pangeo", "filepath": "nb/intro.ipynb"})
    assert refusal(CONFIG, ALICE, req) == {"filepath": NOT_FOR_PANGEO}


@pytest.mark.parametrize(
    ("environment", "urlpath", "expected", "chosen"),
    [
        ("binder", None, "/lab", False),
        ("classic", None, "/tree", False),
        ("binder", "/rstudio/", "/rstudio/", True),
        ("classic", "/lab", "/lab", True),
    ],
)
def test_the_start_page_is_chosen_or_the_environments(
    environment: str, urlpath: str | None, expected: str, chosen: bool
) -> None:
    req = request(environment=environment, provider="gh", repo="org/repo", urlpath=urlpath)
    launch = authorize(CONFIG, ALICE, req, None, RULES)
    assert (launch.urlpath, launch.urlpath_chosen) == (expected, chosen)
    assert launch.user_options().get("urlpath") == (expected if chosen else None)


def test_a_bad_start_page_is_refused_with_the_repository() -> None:
    req = request(environment="binder", provider="gh", repo="evil/x", urlpath="//evil.example")
    errors = refusal(CONFIG, ALICE, req)
    assert set(errors) == {"repo", "urlpath"}


# --- the config -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backend", "env", "where", "fragment"),
    [
        (
            "kube",
            {"repository": True, "image": "eohub/x:1"},
            "environments.binder.image",
            "is the builder's image for the repository; leave it out",
        ),
        (
            "local",
            {"repository": True, "image": "eohub/x:1"},
            "environments.binder.image",
            "is not used by the 'local' backend",
        ),
        (
            "kube",
            {"repository": "yes"},
            "environments.binder.repository",
            "must be true or false, not 'yes'",
        ),
        ("kube", {"repository": 1}, "environments.binder.repository", "must be true or false"),
        ("kube", {"repository": False}, "environments.binder.image", "is required"),
        ("kube", {}, "environments.binder.image", "is required"),
    ],
)
def test_repository_config_errors_name_the_key(
    backend: str, env: dict[str, Any], where: str, fragment: str
) -> None:
    with pytest.raises(LaunchConfigError) as info:
        parse_launch_config({"binder": env}, SIZES, {}, backend=backend)  # type: ignore[arg-type]
    assert info.value.where == where
    assert str(info.value).startswith(f"{where}: ")
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("backend", "env", "repository"),
    [
        ("kube", {"repository": True}, True),
        ("kube", {"repository": None, "image": "eohub/x:1"}, False),
        ("kube", {"repository": False, "image": "eohub/x:1"}, False),
        ("local", {"repository": True}, True),
        ("local", {"repository": True, "command": ["jupyterhub-singleuser"]}, True),
    ],
)
def test_repository_environments_need_no_image(
    backend: str, env: dict[str, Any], repository: bool
) -> None:
    config = parse_launch_config({"binder": env}, SIZES, {}, backend=backend)  # type: ignore[arg-type]
    parsed = config.environments["binder"]
    assert parsed.repository is repository
    assert parsed.image == env.get("image")
