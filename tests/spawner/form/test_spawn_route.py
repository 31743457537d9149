"""eohub's spawn route: what a refused launch's form shows again, and the form's script."""

from __future__ import annotations

import dataclasses

import pytest
from tornado import web

from eohub.domain.fields import FieldErrors
from eohub.domain.launch.options import LaunchRequest
from eohub.spawner.errors import options_error, user_error
from eohub.spawner.form.render import (
    render_launch_form,
    spawn_route_installed,
    spawn_route_path,
)
from eohub.spawner.form.spawn_route import (
    is_expected,
    repository_trusted,
    resubmitted,
    submitted_options,
)
from eohub.spawner.repo_launches import RepoLaunchError
from tests.spawner.context_support import ADA, BOB, context, rules
from tests.spawner.form.forms import Page


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (user_error(403, "The budget of climate is spent.", "Quota"), True),
        (options_error(FieldErrors({"size": "no such size"})), True),
        (web.HTTPError(400, "Named servers are not enabled."), True),
        (web.HTTPError(429, "Too many users trying to log in right now."), True),
        (FieldErrors({"repo": "denied"}), True),
        (RepoLaunchError("the build failed"), True),
        (web.HTTPError(500, "Unhandled error"), False),
        (RuntimeError("boom"), False),
        (KeyError("x"), False),
    ],
)
def test_which_errors_are_expected_refusals(error: Exception, expected: bool) -> None:
    assert is_expected(error) is expected


def test_submitted_options_read_the_raw_form() -> None:
    formdata = {"_xsrf": ["t"], "environment": ["lab"], "size": ["a b"], "volumes": ["x", "y"]}
    assert submitted_options(formdata) == {
        "environment": "lab",
        "size": "a b",
        "volumes": ["x", "y"],
    }


@pytest.mark.parametrize(
    ("options", "trusted"),
    [
        ({"environment": "lab"}, True),
        ({"repo": "https://github.com/eohub/demo"}, True),
        ({"repo": "https://github.com/someone/else"}, False),
        ({"repo": "file:///etc/passwd"}, False),  # refused: warned about as untrusted
        ({"repo": "https://github.com/eohub/demo", "ref": ["a", "b"]}, False),
    ],
)
def test_a_repository_is_trusted_only_when_the_admin_lists_it(
    options: dict[str, object], trusted: bool
) -> None:
    assert repository_trusted(rules(), options) is trusted
    assert repository_trusted(None, options) is True  # no repository launches: no repository


def test_a_refused_launch_comes_back_with_its_choices_and_server_name() -> None:
    last = context(ADA, saved=LaunchRequest(environment="lab"), server_name="second")
    last = dataclasses.replace(last, messages=("an old notice",))
    options = {"environment": "lab", "size": "big", "group": "climate", "urlpath": "/lab"}
    again = resubmitted(last, options)
    assert again.saved == LaunchRequest(
        environment="lab", size="big", group="climate", urlpath="/lab"
    )
    assert (again.server_name, again.messages, again.untrusted_link) == ("second", (), False)
    page = Page.of(render_launch_form(again, spawn_route=False))
    assert page.checked("size") == ["big"]
    assert page.checked("group") == ["climate"]
    assert "Server name: second" in page.text


def test_a_refused_repository_comes_back_with_its_warning() -> None:
    options = {"environment": "from-repo", "repo": "https://github.com/evil/r", "ref": "x"}
    again = resubmitted(context(ADA), options)
    assert again.saved.repo == "https://github.com/evil/r"
    assert again.untrusted_link is True
    assert "not on this hub" in render_launch_form(again, spawn_route=False)


def test_choices_the_user_may_not_make_are_left_out() -> None:
    # bob may not use the repository environment, nor charge builders: the defaults.
    options = {"environment": "from-repo", "repo": "https://github.com/evil/r", "group": "x"}
    again = resubmitted(context(BOB), options)
    assert again.saved == LaunchRequest()
    assert resubmitted(context(BOB), ["not", "a", "mapping"]).saved == LaunchRequest()


def test_the_form_posts_to_the_spawn_route_of_its_server() -> None:
    assert spawn_route_path("/hub/", "ann@x.org", "") == "/hub/eohub/spawn/ann@x.org"
    assert spawn_route_path("/j/hub/", "a b/c", "s1") == "/j/hub/eohub/spawn/a%20b%2Fc/s1"
    built = context(ADA, server_name="second")
    html = render_launch_form(built, spawn_route=True)
    assert 'target.pathname = "/hub/eohub/spawn/ada/second"' in html
    assert 'getElementById("spawn_form")' in html
    # Outside a hub (or a hub without the route) the form posts where JupyterHub says.
    assert not spawn_route_installed()
    assert "eohub/spawn" not in render_launch_form(built)
