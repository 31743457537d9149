"""The BinderHub build client against a stand-in replaying BinderHub's own streams."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator

import pytest

from eohub.adapters.binderhub_build import USER_AGENT, BuildClient, BuildError
from eohub.domain.repos.build_events import BuildEvent, progress_message
from tests.support.binderhub_standin import (
    BOT_PATTERNS,
    FAILED_STEP,
    BinderHubStandIn,
    build_path,
)

TOKEN = "s3cr3t-hub-token-0123456789"
SPEC = "eo-lab/build/HEAD"


@pytest.fixture
async def standin() -> AsyncIterator[BinderHubStandIn]:
    async with BinderHubStandIn(token=TOKEN, keepalive_interval=0.05) as hub:
        yield hub


def client(hub: BinderHubStandIn, **kwargs: float) -> BuildClient:
    options = {"timeout": 10.0, "idle_timeout": 2.0, **kwargs}
    return BuildClient(
        hub.url,
        TOKEN,
        timeout=options["timeout"],
        idle_timeout=options["idle_timeout"],
        concurrency=int(options.get("concurrency", 4)),
    )


async def build_error(build: BuildClient, spec: str, provider: str = "gh") -> BuildError:
    with pytest.raises(BuildError) as caught:
        await build.build(provider, spec)
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value.args)
    assert all(TOKEN not in line for line in caught.value.log_tail)
    return caught.value


async def test_a_build_relays_every_phase_and_returns_the_image(
    standin: BinderHubStandIn,
) -> None:
    events: list[BuildEvent] = []
    image = await client(standin).build(
        "gh", SPEC, expected_image=standin.image_for("gh", SPEC), on_event=events.append
    )
    assert image == standin.image_for("gh", SPEC)
    seen = [e.phase for e in events]
    assert seen[0] == "waiting"
    assert seen[-1] == "ready"
    assert {"fetching", "building", "pushing", "unknown", ""} <= set(seen)
    messages = [progress_message(e) for e in events]
    assert "building: Step 1/3 : FROM docker.io/library/buildpack-deps:jammy" in messages
    assert "pushing: Pushing image (2 of 2 layers pushed)" in messages
    assert messages[-1] == "ready: Done! Image built"


async def test_the_request_is_build_only_with_the_token_and_an_event_stream_accept(
    standin: BinderHubStandIn,
) -> None:
    await client(standin).build("gh", SPEC)
    [request] = standin.requests
    assert request.path == build_path(standin.url, "gh", SPEC)
    assert request.path == f"/services/binder/build/gh/{SPEC}"
    assert request.query == {"build_only": ["true"]}
    assert request.authorization == f"token {TOKEN}"
    assert "text/event-stream" in request.accept
    assert request.user_agent == USER_AGENT


def test_our_user_agent_passes_binderhubs_bot_filter() -> None:
    assert not any(pattern.match(USER_AGENT) for pattern in BOT_PATTERNS)


async def test_an_escaped_git_spec_is_sent_as_it_is(standin: BinderHubStandIn) -> None:
    spec = "https%3A%2F%2Fgitlab.example.org%2Feo%2Fcached.git/v1.0"
    await client(standin).build("git", spec)
    assert standin.requests[-1].path == f"/services/binder/build/git/{spec}"


async def test_an_image_already_built_is_ready_at_once(standin: BinderHubStandIn) -> None:
    events: list[BuildEvent] = []
    spec = "eo-lab/cached/HEAD"
    image = await client(standin).build("gh", spec, on_event=events.append)
    assert image == standin.image_for("gh", spec)
    assert [(e.phase, e.message) for e in events] == [("ready", "Done! Found built image\n")]


async def test_an_async_callback_is_awaited(standin: BinderHubStandIn) -> None:
    seen: list[str] = []

    async def relay(event: BuildEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.phase)

    await client(standin).build("gh", "eo-lab/cached/HEAD", on_event=relay)
    assert seen == ["ready"]


async def test_a_failed_build_gives_the_reason_and_the_log_tail_and_hangs_up(
    standin: BinderHubStandIn,
) -> None:
    error = await build_error(client(standin), "eo-lab/fail/HEAD")
    text = str(error)
    assert text.startswith(f"the build of gh/eo-lab/fail/HEAD failed: {FAILED_STEP}")
    assert "Last lines of the build log:" in text
    assert "ERROR: No matching distribution found for nosuchpkg" in text
    assert "Step 2/3 : RUN pip install -r requirements.txt" in error.log_tail
    # BinderHub keeps a failed stream open; only the client ends it
    await standin.wait_for(disconnects=1, active=0)


async def test_an_image_of_another_name_is_refused(standin: BinderHubStandIn) -> None:
    expected = "registry.example.org/binder/r2d-other-abcdef:" + "0" * 40
    with pytest.raises(BuildError, match="but eohub expected") as caught:
        await client(standin).build("gh", SPEC, expected_image=expected)
    assert standin.image_for("gh", SPEC) in str(caught.value)
    assert expected in str(caught.value)


async def test_a_silent_build_stalls_after_the_idle_timeout(standin: BinderHubStandIn) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    error = await build_error(client(standin, idle_timeout=0.3), "eo-lab/stall/HEAD")
    assert "stalled: BinderHub sent nothing for 0.3 s" in str(error)
    assert 0.3 <= loop.time() - started < 2
    await standin.wait_for(disconnects=1, active=0)


async def test_keepalives_count_as_activity_until_the_overall_timeout(
    standin: BinderHubStandIn,
) -> None:
    # keep-alives every 0.05 s keep a 0.3 s idle timer from firing; the 1 s limit ends it
    loop = asyncio.get_running_loop()
    started = loop.time()
    build = client(standin, idle_timeout=0.3, timeout=1.0)
    error = await build_error(build, "eo-lab/stall-alive/HEAD")
    assert str(error) == "the build of gh/eo-lab/stall-alive/HEAD did not finish within 1 s"
    assert loop.time() - started >= 1.0
    await standin.wait_for(disconnects=1, active=0)


async def test_cancelling_a_build_closes_the_connection(standin: BinderHubStandIn) -> None:
    task = asyncio.ensure_future(client(standin).build("gh", "eo-lab/stall-alive/HEAD"))
    await standin.wait_for(active=1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await standin.wait_for(disconnects=1, active=0, within=2)


async def test_builds_wait_for_a_free_slot(standin: BinderHubStandIn) -> None:
    standin.gate = asyncio.Event()
    build = client(standin, concurrency=1)
    first_events: list[BuildEvent] = []
    second_events: list[BuildEvent] = []
    first = asyncio.ensure_future(
        build.build("gh", "eo-lab/one/HEAD", on_event=first_events.append)
    )
    await standin.wait_for(active=1)
    second = asyncio.ensure_future(
        build.build("gh", "eo-lab/two/HEAD", on_event=second_events.append)
    )
    for _ in range(20):
        await asyncio.sleep(0.01)
    # the second waits for the slot, and says so; BinderHub has seen one request
    assert [progress_message(e) for e in second_events] == [
        "waiting: Waiting for a free build slot (1 builds are running)"
    ]
    assert len(standin.requests) == 1
    standin.gate.set()
    images = await asyncio.gather(first, second)
    assert images == [
        standin.image_for("gh", "eo-lab/one/HEAD"),
        standin.image_for("gh", "eo-lab/two/HEAD"),
    ]
    assert standin.max_active == 1
    assert first_events[0].message == "Waiting for build to start...\n"


async def test_waiting_for_a_slot_counts_against_the_timeout(standin: BinderHubStandIn) -> None:
    build = client(standin, concurrency=1, timeout=0.3)
    events: list[BuildEvent] = []
    # Builds of one client share a timeout, so the one holding the slot would give it up
    # in time; hold the slot here instead, as a build stuck beyond its limit would.
    async with build._slots:
        with pytest.raises(BuildError) as caught:
            await build.build("gh", SPEC, on_event=events.append)
    assert str(caught.value) == f"no build slot became free for gh/{SPEC} within 0.3 s"
    assert [e.phase for e in events] == ["waiting"]
    assert standin.requests == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "eo-lab/banned/HEAD",
            "the build of gh/eo-lab/banned/HEAD failed: Sorry, eo-lab/banned/HEAD is not allowed"
            " to launch. Please contact admins for more info!",
        ),
        (
            "eo-lab/badref/HEAD",
            "the build of gh/eo-lab/badref/HEAD failed: Could not resolve ref for"
            " gh:eo-lab/badref/HEAD. Double check your URL and that your repo is public.",
        ),
    ],
)
async def test_refusals_before_a_build_say_why(
    standin: BinderHubStandIn, spec: str, message: str
) -> None:
    error = await build_error(client(standin), spec)
    assert (str(error), error.status) == (message, None)


async def test_an_unknown_provider_is_a_failed_event(standin: BinderHubStandIn) -> None:
    # builder.py writes it with fail(), on a 200 stream: not a 404
    error = await build_error(client(standin), "eo-lab/x/HEAD", provider="nosuch")
    assert (
        str(error)
        == "the build of nosuch/eo-lab/x/HEAD failed: No provider found for prefix nosuch"
    )


async def test_a_bad_token_is_a_403_that_names_the_scope(standin: BinderHubStandIn) -> None:
    build = BuildClient(standin.url, "wrong-" + TOKEN)
    with pytest.raises(BuildError) as caught:
        await build.build("gh", SPEC)
    assert caught.value.status == 403
    assert "refused the build of gh/eo-lab/build/HEAD with 403 (Forbidden)" in str(caught.value)
    assert "access:services!service=" in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert standin.requests[-1].authorization == f"token wrong-{TOKEN}"


async def test_no_token_sends_no_authorization_header(standin: BinderHubStandIn) -> None:
    error = await build_error(BuildClient(standin.url, ""), SPEC)
    assert error.status == 403
    assert standin.requests[-1].authorization is None


async def test_an_older_binderhub_redirecting_to_login_is_a_refused_token() -> None:
    async with BinderHubStandIn(token=TOKEN, legacy_login_redirect=True) as hub:
        error = await build_error(BuildClient(hub.url, "wrong"), SPEC)
    assert error.status == 302
    assert "redirected the build request to /hub/login: the token was not accepted" in str(error)


async def test_build_only_without_api_only_mode_is_a_400() -> None:
    async with BinderHubStandIn(token=TOKEN, api_only=False) as hub:
        error = await build_error(client(hub), SPEC)
    assert error.status == 400
    assert "Building but not launching is not permitted" in str(error)
    assert "enable_api_only_mode" in str(error)


async def test_a_wrong_base_url_is_a_404(standin: BinderHubStandIn) -> None:
    error = await build_error(BuildClient(standin.url + "/hub", TOKEN), SPEC)
    assert error.status == 404
    assert "there is no BinderHub build API at" in str(error)


async def test_an_unreachable_binderhub() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        error = await build_error(BuildClient(f"http://127.0.0.1:{port}", TOKEN), SPEC)
    assert str(error).startswith(f"BinderHub at 127.0.0.1:{port} cannot be reached:")


async def test_the_token_never_shows_even_if_the_server_echoes_it(
    standin: BinderHubStandIn,
) -> None:
    error = await build_error(client(standin), "eo-lab/hostile/HEAD")
    assert "[token]" in str(error)


@pytest.mark.parametrize(
    ("provider", "spec"),
    [
        ("gh", "../../metrics"),
        ("gh", "org/%2e%2e/x"),
        ("gh", "org/repo/HEAD?build_only=false"),
        ("gh", "org/repo/HEAD#x"),
        ("gh", "org/re po/HEAD"),
        ("gh", "/org/repo/HEAD"),
        ("gh", "org/repo/%zz"),
        ("gh", ""),
        ("g/h", "org/repo/HEAD"),
        ("", "org/repo/HEAD"),
    ],
)
def test_specs_that_could_leave_the_build_endpoint_are_refused(provider: str, spec: str) -> None:
    with pytest.raises(
        ValueError, match=r"not an escaped BinderHub spec|not a BinderHub provider"
    ):
        BuildClient("https://hub.example.org/services/binder", TOKEN).build_url(provider, spec)


@pytest.mark.parametrize(
    ("url", "token"),
    [
        ("ftp://hub.example.org", TOKEN),
        ("https://user:pw@hub.example.org", TOKEN),
        ("https://hub.example.org/?x=1", TOKEN),
        ("https://hub.example.org", "a\r\nX-Evil: 1"),
    ],
)
def test_bad_settings_are_refused_without_echoing_the_token(url: str, token: str) -> None:
    with pytest.raises(ValueError, match="BinderHub") as caught:
        BuildClient(url, token)
    assert token not in str(caught.value)


def test_the_client_repr_hides_the_token() -> None:
    assert TOKEN not in repr(BuildClient("https://hub.example.org/services/binder/", TOKEN))
    assert re.fullmatch(
        r"BuildClient\('https://hub.example.org/services/binder', concurrency=4\)",
        repr(BuildClient("https://hub.example.org/services/binder/", TOKEN)),
    )
