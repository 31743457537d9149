"""Launch links: the query check, the link's request, and the check against the context."""

from __future__ import annotations

import re

import pytest
from tornado import web

from eohub.domain.launch.options import LaunchRequest
from eohub.domain.launch.policy import Member
from eohub.domain.launch.profile_selection import visible_profiles
from eohub.domain.launch.profiles import parse_profile_list
from eohub.domain.launch.repository import BADGE_PATH, LAUNCH_PREFIX
from eohub.spawner.context import LaunchContext
from eohub.spawner.form.launch_link import (
    BadgeHandler,
    LaunchLinkHandler,
    check_link,
    check_query,
    launch_link_handlers,
    link_profile_prefill,
    link_request,
)
from eohub.spawner.form.render import SPAWN_ROUTE_MARK
from eohub.spawner.form.spawn_route import SpawnRouteHandler
from tests.spawner.context_support import ADA, BOB, config, context


def q(**values: str) -> dict[str, list[bytes]]:
    return {k: [v.encode()] for k, v in values.items()}


@pytest.mark.parametrize(
    ("link", "query", "expected"),
    [
        ("gh/eohub/demo/main", {}, LaunchRequest(provider="gh", repo="eohub/demo", ref="main")),
        (
            "gh/eohub/demo/main",
            q(labpath="a.ipynb", size="big"),
            LaunchRequest(
                size="big", provider="gh", repo="eohub/demo", ref="main", filepath="a.ipynb"
            ),
        ),
        (
            "gh/eohub/demo/main",
            q(labpath="lab.ipynb", filepath="file.ipynb"),
            LaunchRequest(provider="gh", repo="eohub/demo", ref="main", filepath="file.ipynb"),
        ),
    ],
)
def test_link_request_reads_the_link_and_its_query(
    link: str, query: dict[str, list[bytes]], expected: LaunchRequest
) -> None:
    assert link_request(context().rules, link, query) == expected


@pytest.mark.parametrize(
    ("built", "link", "query", "status", "words"),
    [
        (LaunchContext(config(), ADA), "gh/o/r/main", {}, 404, "not set up on this hub"),
        (context(), "nope/x/y", {}, 400, "This launch link is not valid: "),
        (context(), "gh/o/r/main", q(size="a b"), 400, "This launch link is not valid: "),
    ],
)
def test_link_request_refusals(
    built: LaunchContext, link: str, query: dict[str, list[bytes]], status: int, words: str
) -> None:
    with pytest.raises(web.HTTPError) as refused:
        link_request(built.rules, link, query)
    assert refused.value.status_code == status
    assert words in str(refused.value.log_message)


def test_check_query_names_the_first_unknown_argument() -> None:
    check_query(q(environment="lab", labpath="x", server="s"))
    with pytest.raises(web.HTTPError, match="not 'image'") as refused:
        check_query(q(zzz="1", image="evil"))
    assert refused.value.status_code == 400


@pytest.mark.parametrize(
    ("member", "request_", "result"),
    [
        (
            ADA,
            LaunchRequest(provider="gh", repo="eohub/demo", ref="main"),
            (
                LaunchRequest(
                    environment="from-repo", provider="gh", repo="eohub/demo", ref="main"
                ),
                False,
            ),
        ),
        (
            ADA,
            LaunchRequest(provider="gh", repo="someone/else", ref="main"),
            (
                LaunchRequest(
                    environment="from-repo", provider="gh", repo="someone/else", ref="main"
                ),
                True,
            ),
        ),
    ],
)
def test_check_link_fills_in_the_environment_and_says_whether_it_is_trusted(
    member: Member, request_: LaunchRequest, result: tuple[LaunchRequest, bool]
) -> None:
    assert check_link(context(member), request_) == result


@pytest.mark.parametrize(
    ("member", "request_", "words"),
    [
        (BOB, LaunchRequest(provider="gh", repo="o/r", ref="main"), "You may not launch"),
        (
            ADA,
            LaunchRequest(environment="lab", provider="gh", repo="o/r", ref="main"),
            "This launch link cannot be used: ",
        ),
        (
            ADA,
            LaunchRequest(provider="gh", repo="o/r", ref="main", group="astro"),
            "This launch link cannot be used: ",
        ),
    ],
)
def test_check_link_refusals(member: Member, request_: LaunchRequest, words: str) -> None:
    with pytest.raises(web.HTTPError) as refused:
        check_link(context(member), request_)
    assert refused.value.status_code == 403
    assert words in str(refused.value.log_message)


def test_the_handlers_serve_links_under_the_launch_prefix_and_the_badge() -> None:
    routes = dict(launch_link_handlers())
    assert routes == {
        rf"/{LAUNCH_PREFIX}/(.+)": LaunchLinkHandler,
        rf"/{BADGE_PATH.replace('.', '[.]')}": BadgeHandler,
        r"/eohub/spawn/([^/]+)": SpawnRouteHandler,
        r"/eohub/spawn/([^/]+)/([^/]+)": SpawnRouteHandler,
    }
    # The launch form finds the spawn route among the hub's handlers by this mark.
    assert getattr(SpawnRouteHandler, SPAWN_ROUTE_MARK) is True
    badge = next(p for p, h in routes.items() if h is BadgeHandler)
    assert re.fullmatch(badge, f"/{BADGE_PATH}")
    assert not re.fullmatch(badge, f"/{BADGE_PATH.replace('.', 'x')}")


# -- a link to a profile_list profile that builds images -------------------------------------

BUILDERS = parse_profile_list(
    [
        {
            "display_name": "Builder",
            "allowed_groups": ["builders"],
            "eohub": {"charge_groups": ["builders"]},
            "profile_options": {
                "image": {
                    "display_name": "Image",
                    "dynamic_image_building": {"enabled": True},
                    "choices": {"a": {"display_name": "A"}},
                }
            },
        },
        {"display_name": "Plain"},
    ],
    str.lower,
)


def profile_context(member: Member) -> LaunchContext:
    return context(member, profiles=visible_profiles(BUILDERS, member.groups))


def test_a_link_to_a_building_profile_checks_it_and_prefills_it() -> None:
    request = link_request(
        context().rules, "gh/eohub/demo/main", q(profile="builder", urlpath="/lab")
    )
    assert request == LaunchRequest(urlpath="/lab", provider="gh", repo="eohub/demo", ref="main")
    # The profile, not a repository environment, is what the link launches.
    assert check_link(profile_context(ADA), request, "builder") == (request, False)
    assert link_profile_prefill(request, "builder") == {
        "profile": "builder",
        "urlpath": "/lab",
        "provider": "gh",
        "repo": "eohub/demo",
        "ref": "main",
    }
    assert link_profile_prefill(request, "") == {}


@pytest.mark.parametrize(
    ("member", "profile", "request_", "status", "words"),
    [
        # Hidden from bob's groups: the same answer as a profile that does not exist.
        (BOB, "builder", LaunchRequest(provider="gh", repo="o/r"), 403, "no profile 'builder'"),
        (ADA, "nope", LaunchRequest(provider="gh", repo="o/r"), 403, "no profile 'nope'"),
        # A profile that builds nothing cannot launch a repository.
        (ADA, "plain", LaunchRequest(provider="gh", repo="o/r"), 403, "no profile 'plain'"),
        (
            ADA,
            "builder",
            LaunchRequest(provider="gh", repo="o/r", group="climate"),
            403,
            "group 'climate' cannot be charged",
        ),
        (
            ADA,
            "builder",
            LaunchRequest(environment="lab", provider="gh", repo="o/r"),
            400,
            "an environment or a profile, not both",
        ),
    ],
)
def test_a_link_to_a_profile_is_refused_as_the_spawn_would(
    member: Member, profile: str, request_: LaunchRequest, status: int, words: str
) -> None:
    with pytest.raises(web.HTTPError) as refused:
        check_link(profile_context(member), request_, profile)
    assert refused.value.status_code == status
    assert words in str(refused.value.log_message)
