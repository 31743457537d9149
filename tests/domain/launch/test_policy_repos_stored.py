"""Stored options of repository launches: fallback, and authorizing them again."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.launch.config import LaunchConfig
from eohub.domain.launch.options import REPO_FIELDS, OptionsError, parse_options
from eohub.domain.launch.policy import Member, authorize, check_charged, fallback, split_charged
from tests.domain.launch.policy_repos_fixtures import (
    ALICE,
    CAROL,
    COMMIT,
    CONFIG,
    LOCAL,
    REPO_DEFAULT,
    RULES,
    request,
)

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
