"""Launch policy for environments that launch a git repository (``repository: true``)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.launch.config import LaunchConfig, LaunchConfigError, parse_launch_config
from eohub.domain.launch.options import REPO_FIELDS, LaunchRequest, OptionsError, parse_options
from eohub.domain.launch.policy import (
    Member,
    authorize,
    check_charged,
    fallback,
    split_charged,
    visible_environments,
)
from eohub.domain.launch.repository import RepoRules
from eohub.domain.repos.policy import RepoPolicy
from eohub.domain.repos.specs import RepoProviders, RepoSpec

COMMIT = "0123456789abcdef0123456789abcdef01234567"
PREFIX = "registry.example.org/binder/r2d-"
SIZES = {"small": {"cpu": 1, "memory": "2G"}, "medium": {"cpu": 2, "memory": "4G"}}
ENVIRONMENTS: dict[str, Any] = {
    "pangeo": {"image": "pangeo/pangeo-notebook:2024.01.01", "default": True},
    "binder": {
        "display_name": "From a repository",
        "repository": True,
        "allowed_groups": ["builders"],
        "default_size": "medium",
    },
    "classic": {"repository": True, "default_urlpath": "/tree"},
    "hidden": {"image": "eohub/hidden:1", "allowed_groups": ["builders"]},
}
CONFIG = parse_launch_config(ENVIRONMENTS, SIZES, {}, backend="kube")
# The same, for the local backend: a command instead of an image.
LOCAL = parse_launch_config(
    {
        name: {k: v for k, v in env.items() if k != "image"}
        | {"command": ["jupyterhub-singleuser"]}
        for name, env in ENVIRONMENTS.items()
    },
    SIZES,
    {},
    backend="local",
)
# A hub whose default environment launches repositories.
REPO_DEFAULT = parse_launch_config(
    {"plain": {"image": "eohub/plain:1"}, "binder": {"repository": True, "default": True}},
    SIZES,
    {},
    backend="kube",
)
PROVIDERS = RepoProviders.default()
RULES = RepoRules(
    PROVIDERS,
    RepoPolicy(denied_repos=("github.com/evil/*",), trusted_repos=("github.com/pangeo-data/*",)),
    image_prefix=PREFIX,
)

ALICE = Member("alice", frozenset({"builders"}))  # may use "binder"
CAROL = Member("carol", frozenset({"staff"}))  # may not

NOT_FOR_PANGEO = "is only for environments that launch a repository; 'pangeo' does not"


def request(**kwargs: Any) -> LaunchRequest:
    return LaunchRequest(**kwargs)


def refusal(
    config: LaunchConfig,
    member: Member,
    req: LaunchRequest,
    repos: RepoRules | None = RULES,
) -> dict[str, str]:
    with pytest.raises(OptionsError) as refused:
        authorize(config, member, req, None, repos)
    errors: dict[str, str] = refused.value.errors
    return errors


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


# --- stored options: fallback and re-authorization --------------------------------


def stored(config: LaunchConfig, member: Member, **kwargs: Any) -> dict[str, object]:
    """What a launch stores once its repository is resolved."""
    launch = authorize(config, member, request(**kwargs), None, RULES)
    assert launch.repo is not None
    return dataclasses.replace(launch, repo=launch.repo.resolved(COMMIT, RULES)).user_options()


REPO_CHOICE = {"provider": "gh", "repo": "org/repo", "ref": "feature/x", "filepath": "a.ipynb"}


def test_fallback_keeps_the_repository_of_a_repository_environment() -> None:
    saved = stored(CONFIG, ALICE, environment="binder", **REPO_CHOICE)
    req, messages = fallback(CONFIG, ALICE, saved)
    assert messages == []
    assert req == parse_options(split_charged(saved)[0])  # type: ignore[arg-type]
    assert {k: getattr(req, k) for k in REPO_FIELDS} == REPO_CHOICE


def test_fallback_keeps_the_repository_of_a_repository_default() -> None:
    req, messages = fallback(REPO_DEFAULT, CAROL, REPO_CHOICE)
    assert messages == []
    assert {k: getattr(req, k) for k in REPO_FIELDS} == REPO_CHOICE


@pytest.mark.parametrize(
    ("saved", "member", "messages"),
    [
        pytest.param(
            {"environment": "pangeo", **REPO_CHOICE}, ALICE, [], id="a plain environment"
        ),
        pytest.param(REPO_CHOICE, ALICE, [], id="the plain default"),
        pytest.param(
            {"environment": "binder", **REPO_CHOICE},
            CAROL,
            ["The environment 'binder' you used last time is no longer offered."],
            id="a repository environment no longer visible",
        ),
        pytest.param(
            {"environment": "gone", **REPO_CHOICE},
            ALICE,
            ["The environment 'gone' you used last time is no longer offered."],
            id="a removed environment",
        ),
    ],
)
def test_fallback_drops_the_repository_of_a_plain_environment(
    saved: dict[str, object], member: Member, messages: list[str]
) -> None:
    req, said = fallback(CONFIG, member, saved)
    assert said == messages
    assert all(getattr(req, k) is None for k in REPO_FIELDS)
    authorize(CONFIG, member, req, None, RULES)  # what is left launches


@pytest.mark.parametrize("config", [CONFIG, LOCAL], ids=["kube", "local"])
@pytest.mark.parametrize(
    "choice",
    [
        REPO_CHOICE,
        {"repo": "https://gitlab.com/group/sub/project.git", "ref": COMMIT},
        {"provider": "git", "repo": "https://example.org/a/b.git", "urlpath": "/rstudio/"},
    ],
)
def test_stored_repository_options_authorize_to_the_same_launch(
    config: LaunchConfig, choice: dict[str, str]
) -> None:
    launch = authorize(config, ALICE, request(environment="binder", **choice), None, RULES)
    saved = stored(config, ALICE, environment="binder", **choice)
    choices, charged = split_charged(saved)
    assert "image" not in charged
    again = authorize(config, ALICE, parse_options(choices), None, RULES)  # type: ignore[arg-type]
    assert again == launch
    check_charged(charged, again)  # what was stored agrees with the launch
    req, messages = fallback(config, ALICE, saved)
    assert messages == []
    assert authorize(config, ALICE, req, None, RULES) == launch


def test_the_builders_image_is_never_accepted_as_an_option() -> None:
    saved = stored(CONFIG, ALICE, environment="binder", provider="gh", repo="org/repo")
    launch = authorize(CONFIG, ALICE, parse_options(split_charged(saved)[0]), None, RULES)  # type: ignore[arg-type]
    assert launch.repo is not None
    image = launch.repo.resolved(COMMIT, RULES).image
    assert image is not None
    for value in (image, "evil/miner:latest"):
        with pytest.raises(OptionsError) as refused:
            check_charged({"image": value}, launch)
        assert list(refused.value.errors) == ["image"]


_REPO_VALUES = {
    "provider": st.sampled_from([None, "gh", "gl", "git", "bb"]),
    "repo": st.sampled_from(
        [
            None,
            "org/repo",
            "evil/x",
            "g/sub/p",
            "https://github.com/org/repo.git",
            "https://gitlab.com/g/p",
            "https://example.org/a.git",
            "http://example.org/a.git",
            "https://127.0.0.1/a.git",
            "-x/y",
        ]
    ),
    "ref": st.sampled_from([None, "main", "feature/x", "-bad", "a..b", COMMIT]),
    "filepath": st.sampled_from([None, "a.ipynb", "nb/my notebook.ipynb"]),
}


@given(
    st.sampled_from(["binder", "classic", "pangeo", None]),
    st.fixed_dictionaries({}, optional=_REPO_VALUES),
    st.sampled_from([ALICE, CAROL]),
)
def test_repository_options_launch_as_stored_or_name_what_is_wrong(
    environment: str | None, choice: dict[str, str | None], member: Member
) -> None:
    req = parse_options({"environment": environment, **choice})
    refused: OptionsError | None = None
    try:
        launch = authorize(CONFIG, member, req, None, RULES)
    except OptionsError as e:
        refused = e
    if refused is not None:
        assert refused.errors
        assert set(refused.errors) <= {"environment", *REPO_FIELDS}
        return
    assert launch.environment.repository == (launch.repo is not None)
    if launch.repo is None:
        assert not req.names_repository
        return
    assert not launch.repo.spec.name.startswith("github.com/evil/")
    saved = dataclasses.replace(launch, repo=launch.repo.resolved(COMMIT, RULES)).user_options()
    choices, charged = split_charged(saved)
    again = authorize(CONFIG, member, parse_options(choices), None, RULES)  # type: ignore[arg-type]
    assert again == launch
    check_charged(charged, again)


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
