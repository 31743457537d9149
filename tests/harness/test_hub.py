"""A real JupyterHub behind configurable-http-proxy logs in, spawns and stops servers."""

from collections.abc import Callable

import requests

from tests.support.hub import Hub, stop_servers_of_running_hubs

DUMMY_AUTH = """
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "harness-pw"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
"""


def test_login_spawn_and_stop(hub_factory: Callable[..., Hub]) -> None:
    hub = hub_factory(DUMMY_AUTH)
    session = hub.login("alice", "harness-pw")
    assert session.get(f"{hub.url}/hub/home", timeout=10).status_code == 200

    _, wrong = hub.submit_login("alice", "nope")
    assert wrong.status_code == 403
    assert "jupyterhub-hub-login" not in wrong.cookies

    server = hub.spawn("alice")
    # Through the proxy, the single-user server answers for the logged-in user only.
    assert hub.open_server(session, server).url.startswith(f"{hub.url}{server['url']}")
    status = session.get(f"{hub.url}{server['url']}api/status", timeout=30)
    assert status.status_code == 200
    assert "started" in status.json()
    stranger = requests.get(f"{hub.url}{server['url']}api/status", timeout=30)
    assert stranger.status_code == 403

    hub.stop("alice")
    assert hub.server("alice") is None


def test_dropins_are_loaded(hub_factory: Callable[..., Hub]) -> None:
    # jupyterhub_config.d/00-eohub-hub.py allows named servers; without it this is a 400.
    hub = hub_factory(DUMMY_AUTH)
    hub.ensure_user("bob")
    server = hub.spawn("bob", "analysis")
    assert server["name"] == "analysis"
    hub.stop("bob", "analysis")

    bare = hub_factory(DUMMY_AUTH, load_dropins=False)
    bare.ensure_user("bob")
    assert bare.api("POST", "/users/bob/servers/analysis").status_code == 400


def test_every_server_of_a_running_hub_is_stopped_after_a_failure(
    hub_factory: Callable[..., Hub],
) -> None:
    # What tests/conftest.py calls when a hub test fails: a ready server, and a spawn
    # still pending (bob's "server" only sleeps: it never listens), are both stopped.
    hub = hub_factory(
        DUMMY_AUTH + "def slow_for_bob(spawner):\n"
        "    if spawner.user.name == 'bob':\n"
        "        spawner.cmd = ['sh', '-c', 'exec sleep 600', 'sh']\n"
        "c.Spawner.pre_spawn_hook = slow_for_bob\n"
        "c.Spawner.start_timeout = 120\n"
    )
    stopped_hub = hub_factory(DUMMY_AUTH)
    stopped_hub.process.stop(timeout=20)  # a hub that is not running is skipped
    hub.ensure_user("alice")
    hub.spawn("alice")
    hub.ensure_user("bob")
    hub.api("POST", "/users/bob/server").raise_for_status()
    assert hub.server("bob") is not None
    assert hub.server("bob")["ready"] is False  # type: ignore[index]

    report = stop_servers_of_running_hubs()

    assert f"{hub.url}: alice/, bob/" in report
    assert stopped_hub.url not in report
    assert hub.api("GET", "/users?state=active").json() == []
