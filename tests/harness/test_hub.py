"""A real JupyterHub behind configurable-http-proxy logs in, spawns and stops servers."""

from collections.abc import Callable

import requests

from tests.support.hub import Hub

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
