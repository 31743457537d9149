"""Who asked for a stop: the context variable, the reason, and the hub's swapped routes.

The real hub tests (``test_stop_attribution_hub.py``) run these with JupyterHub, its
proxy and jupyterhub-idle-culler; here, the pieces alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from jupyterhub.apihandlers import default_handlers, users
from jupyterhub.app import JupyterHub
from tornado import httputil, web
from traitlets.config import Config

from eohub.spawner import stop_routes
from eohub.spawner.form import hub_routes
from eohub.spawner.stop_attribution import (
    current_caller,
    current_stop_reason,
    stops_asked_by,
    stops_at_shutdown,
)
from eohub.spawner.stop_routes import (
    UserServerStopHandler,
    UserStopHandler,
    attribute_stops,
    install_in_hub,
    use_stop_reasons,
)

CULLERS = ("jupyterhub-idle-culler", "cull-idle")


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        (("user", "alice"), "user"),
        (("user", "admin"), "admin"),
        (("user", "carol"), "admin"),  # another user with the scope to stop it
        (("service", "jupyterhub-idle-culler"), "idle"),
        (("service", "cull-idle"), "idle"),
        (("service", "eohub-accounting"), "admin"),
        (("service", "alice"), "admin"),  # a service named like the owner is not her
        (("user", "jupyterhub-idle-culler"), "admin"),  # a user named like the culler
        ("shutdown", "shutdown"),
        (None, "stopped"),
        ((None, None), "stopped"),  # a request without a caller notes none
        (("user", ""), "stopped"),
    ],
)
def test_the_reason_for_the_caller_in_context(caller: Any, expected: str) -> None:
    if caller == "shutdown":
        context: Any = stops_at_shutdown()
    elif caller is None:
        context = stops_asked_by(None, None)
    else:
        context = stops_asked_by(*caller)
    with context:
        assert current_stop_reason(owner="alice", culler_services=CULLERS) == expected
    assert current_stop_reason(owner="alice", culler_services=CULLERS) == "stopped"


def test_without_culler_services_a_culler_is_an_admin() -> None:
    with stops_asked_by("service", "jupyterhub-idle-culler"):
        assert current_stop_reason(owner="alice") == "admin"


async def test_a_stop_task_created_in_the_block_keeps_its_caller_after_it() -> None:
    # JupyterHub's stop_single_user starts the stop with ensure_future and may answer
    # (202) before it ends: the task keeps the caller it was created with.
    release = asyncio.Event()

    async def stop() -> str:
        await release.wait()
        return current_stop_reason(owner="alice", culler_services=CULLERS)

    with stops_asked_by("service", "jupyterhub-idle-culler"):
        culled = asyncio.ensure_future(stop())
    with stops_asked_by("user", "alice"):
        own = asyncio.ensure_future(stop())
    unknown = asyncio.ensure_future(stop())  # created outside: the hub on its own
    release.set()
    assert await asyncio.gather(culled, own, unknown) == ["idle", "user", "stopped"]
    assert current_caller() is None


async def test_concurrent_requests_do_not_see_each_others_caller() -> None:
    async def request(kind: str, name: str) -> str:
        with stops_asked_by(kind, name):
            await asyncio.sleep(0.01)  # the other request runs meanwhile
            return current_stop_reason(owner="alice", culler_services=CULLERS)

    got = await asyncio.gather(
        request("user", "alice"), request("user", "admin"), request("service", "cull-idle")
    )
    assert got == ["user", "admin", "idle"]


# -- the routes ---------------------------------------------------------------------------


def hub_routes_of(base_url: str) -> list[Any]:
    """JupyterHub's own API routes, prefixed as its init_handlers prefixes them."""
    return JupyterHub.add_url_prefix(f"{base_url}hub/", list(default_handlers))


def handler_for(routes: list[Any], path: str, method: str = "DELETE") -> type:
    """The handler class tornado's router picks for ``path`` among ``routes``."""
    application = web.Application(routes)
    request = httputil.HTTPServerRequest(
        start_line=httputil.RequestStartLine(method, path, "HTTP/1.1"),
        headers=httputil.HTTPHeaders({"Host": "hub.example.org"}),
    )
    delegate = application.find_handler(request)
    return delegate.handler_class  # type: ignore[no-any-return,attr-defined]


@pytest.mark.parametrize("base_url", ["/", "/jupyter/"])
@pytest.mark.parametrize(
    ("path", "ours"),
    [
        ("hub/api/users/alice/server", UserServerStopHandler),
        ("hub/api/users/alice/servers/lab2", UserServerStopHandler),
        ("hub/api/users/alice/servers/", UserServerStopHandler),  # JupyterHub's [^/]*
        ("hub/api/users/alice", UserStopHandler),
        ("hub/api/users/alice/server/progress", users.SpawnProgressAPIHandler),
        ("hub/api/users/alice/tokens", users.UserTokenListAPIHandler),
        ("hub/api/users", users.UserListAPIHandler),
    ],
)
def test_the_hubs_own_stop_routes_are_served_by_eohubs_handlers(
    base_url: str, path: str, ours: type
) -> None:
    routes = hub_routes_of(base_url)
    before = [(entry[0], entry[2:]) for entry in routes]
    swapped = attribute_stops(routes)
    assert handler_for(routes, base_url + path) is ours
    # Same patterns, same order, same arguments: only the two classes changed.
    assert [(entry[0], entry[2:]) for entry in routes] == before
    assert swapped == [
        (f"{base_url}hub/api/users/([^/]+)", UserStopHandler),
        (f"{base_url}hub/api/users/([^/]+)/server", UserServerStopHandler),
        (f"{base_url}hub/api/users/([^/]+)/servers/([^/]*)", UserServerStopHandler),
    ]
    assert attribute_stops(routes) == []  # swapped once


def test_a_sites_own_handler_and_other_entries_are_left_alone() -> None:
    class SiteHandler(users.UserServerAPIHandler):  # type: ignore[misc]
        pass

    routes: list[Any] = [
        ("/hub/api/users/([^/]+)/server", SiteHandler),
        ["/hub/api/users/([^/]+)/servers/([^/]*)", users.UserServerAPIHandler, {"x": 1}],
        web.url("/hub/elsewhere", web.RequestHandler),
        "not a route",
    ]
    assert attribute_stops(routes) == [
        ("/hub/api/users/([^/]+)/servers/([^/]*)", UserServerStopHandler)
    ]
    assert routes[0][1] is SiteHandler
    assert routes[1] == ["/hub/api/users/([^/]+)/servers/([^/]*)", UserServerStopHandler, {"x": 1}]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (UserServerStopHandler, users.UserServerAPIHandler),
        (UserStopHandler, users.UserAPIHandler),
    ],
)
def test_eohubs_handlers_change_only_delete(ours: type, theirs: type) -> None:
    assert issubclass(ours, theirs)
    # JupyterHub's request metrics label requests by module and class name.
    assert (ours.__module__, ours.__name__) == (theirs.__module__, theirs.__name__)
    for method in ("get", "post", "put", "patch", "head", "options", "prepare"):
        assert getattr(ours, method) is getattr(theirs, method), method
    assert ours.delete is not theirs.delete


@pytest.fixture
def hub_app(caplog: pytest.LogCaptureFixture) -> Iterator[JupyterHub]:
    """A JupyterHub application, not started; its log (which eohub's joins) in caplog."""
    hub = JupyterHub()
    hub.log.addHandler(caplog.handler)
    yield hub
    hub.log.removeHandler(caplog.handler)


def test_the_hub_swaps_its_routes_when_it_sets_them_and_marks_its_cleanup(
    hub_app: JupyterHub, caplog: pytest.LogCaptureFixture
) -> None:
    hub = hub_app
    cleanup = hub.cleanup
    install_in_hub(hub)
    install_in_hub(hub)  # once per hub
    hub.handlers = hub_routes_of("/")  # as init_handlers does
    assert handler_for(hub.handlers, "/hub/api/users/alice/server") is UserServerStopHandler
    routes = ", ".join(
        f"/hub/api/users/<name>{rest}" for rest in ("", "/server", "/servers/<server>")
    )
    assert f"it serves JupyterHub's DELETE {routes} with JupyterHub's own code" in caplog.text
    assert caplog.text.count("eohub records who stops each server") == 1
    assert hub.cleanup is not cleanup
    assert hub.cleanup.__name__ == "cleanup_marked_shutdown"


async def test_the_marked_cleanup_runs_the_hubs_own_as_a_shutdown() -> None:
    seen = []

    async def cleanup() -> None:
        seen.append(current_stop_reason(owner="alice"))

    await stop_routes._marked_shutdown(cleanup)()
    assert seen == ["shutdown"]
    assert current_caller() is None


def test_a_hub_without_the_routes_says_stops_are_recorded_as_stopped(
    hub_app: JupyterHub, caplog: pytest.LogCaptureFixture
) -> None:
    hub = hub_app
    install_in_hub(hub)
    own = type("Own", (web.RequestHandler,), {})
    # The user route is JupyterHub's, the server routes a site's own.
    hub.handlers = [
        ("/hub/api/users/([^/]+)", users.UserAPIHandler),
        ("/hub/api/users/([^/]+)/server", own),
    ]
    assert "stops are recorded as 'stopped'" in caplog.text
    assert caplog.records[-1].levelname == "WARNING"
    assert "eohub records who stops" not in caplog.text


def test_a_hub_whose_routes_are_built_already_says_so(
    hub_app: JupyterHub, caplog: pytest.LogCaptureFixture
) -> None:
    hub_app.tornado_application = web.Application(hub_routes_of("/"))
    install_in_hub(hub_app)
    assert "use_stop_reasons ran after the hub built its routes" in caplog.text


def test_outside_a_running_hub_nothing_is_installed() -> None:
    assert not JupyterHub.initialized()
    assert use_stop_reasons(None) is False


def test_a_config_calling_only_use_launch_links_records_who_stops_too(
    hub_app: JupyterHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A drop-in 00 copied before use_stop_reasons, or the kit's older values.
    monkeypatch.setattr(hub_routes, "running_hub", lambda: hub_app)
    # Not the launch links' own part: it filters the log JupyterHub apps share.
    monkeypatch.setattr(hub_routes, "install_in_hub", lambda hub: None)
    monkeypatch.setattr(stop_routes, "running_hub", lambda: hub_app)
    hub_routes.use_launch_links(Config())
    hub_app.handlers = hub_routes_of("/")
    assert handler_for(hub_app.handlers, "/hub/api/users/a/servers/b") is UserServerStopHandler
