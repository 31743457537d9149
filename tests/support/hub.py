"""A real JupyterHub with configurable-http-proxy, and helpers that drive it over HTTP."""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from .process import ServiceProcess, free_port, start_process
from .tools import DROPIN_DIR, node_bin

SERVICE_NAME = "eohub-test"


def base_config(
    workdir: Path,
    *,
    port: int,
    hub_port: int,
    proxy_api_port: int,
    token: str,
    load_dropins: bool,
) -> str:
    """The config every test hub shares: loopback ports, files in ``workdir``, a token.

    The numbered drop-ins from ``jupyterhub_config.d/`` are loaded in order, the way the
    Zero to JupyterHub chart mounts them, so tests run what admins copy; the test's own
    config comes after them and may override anything.
    """
    dropins = sorted(str(p) for p in DROPIN_DIR.glob("*.py")) if load_dropins else []
    return textwrap.dedent(f"""\
        import os
        c = get_config()  # noqa: F821
        for path in {dropins!r}:
            load_subconfig(path)  # noqa: F821

        c.JupyterHub.ip = "127.0.0.1"
        c.JupyterHub.port = {port}
        c.JupyterHub.hub_ip = "127.0.0.1"
        c.JupyterHub.hub_port = {hub_port}
        c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
        c.ConfigurableHTTPProxy.command = [{str(node_bin("configurable-http-proxy"))!r}]
        c.JupyterHub.db_url = "sqlite:///{workdir}/jupyterhub.sqlite"
        c.JupyterHub.cookie_secret_file = "{workdir}/jupyterhub_cookie_secret"
        c.JupyterHub.pid_file = "{workdir}/jupyterhub.pid"
        c.JupyterHub.services.append({{"name": {SERVICE_NAME!r}, "api_token": {token!r}}})
        c.JupyterHub.load_roles.append({{
            "name": "eohub-test-driver",
            "scopes": ["admin:users", "admin:servers", "admin:groups", "admin:auth_state",
                       "list:users", "read:users", "access:servers", "tokens"],
            "services": [{SERVICE_NAME!r}],
        }})
        c.Spawner.start_timeout = 60
        c.Spawner.http_timeout = 60
        c.SimpleLocalProcessSpawner.home_dir_template = "{workdir}/home/{{username}}"
        if os.geteuid() == 0:
            # Single-user servers refuse to run as root unless told to (CI runs as root).
            c.Spawner.args.append("--allow-root")
        """)


def add_user_scopes(*scopes: str) -> str:
    """Config source, for after the drop-ins, that adds ``scopes`` to the ``user`` role.

    JupyterHub 6 takes them in ``extra_user_scopes``. JupyterHub 5 refuses a second
    ``user`` entry in ``load_roles``, and drop-in 30 adds one there, so on 5 they go
    into that entry (which the parent config holds in a lazy value after
    ``load_subconfig``).
    """
    return textwrap.dedent(f"""\
        import jupyterhub as _jupyterhub
        from traitlets.config import LazyConfigValue as _Lazy
        _scopes = {list(scopes)!r}
        if _jupyterhub.version_info >= (6,):
            c.JupyterHub.extra_user_scopes.update(_scopes)
        else:
            _roles = c.JupyterHub.load_roles
            _roles = _roles.to_dict().get("extend", []) if isinstance(_roles, _Lazy) else _roles
            _user = [r for r in _roles if r["name"] == "user"]
            if _user:
                _user[0]["scopes"] = [*_user[0].get("scopes", ["self"]), *_scopes]
            else:  # no drop-ins
                c.JupyterHub.load_roles.append({{"name": "user", "scopes": ["self", *_scopes]}})
        """)


@dataclass
class Hub:
    """A running hub: its public URL, an API token with admin scopes, and its process."""

    url: str
    token: str
    workdir: Path
    process: ServiceProcess

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call ``/hub/api{path}`` with the test service's token."""
        headers = {"Authorization": f"token {self.token}", **kwargs.pop("headers", {})}
        return requests.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=30, **kwargs
        )

    def submit_login(
        self, username: str, password: str
    ) -> tuple[requests.Session, requests.Response]:
        """Post the login form as a browser would (xsrf cookie and field); no judgement."""
        session = requests.Session()
        page = session.get(f"{self.url}/hub/login", timeout=30)
        page.raise_for_status()
        found = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
        xsrf = session.cookies.get("_xsrf") or (found.group(1) if found else "")
        response = session.post(
            f"{self.url}/hub/login",
            data={"username": username, "password": password, "_xsrf": xsrf},
            allow_redirects=False,
            timeout=30,
        )
        return session, response

    def login(self, username: str, password: str) -> requests.Session:
        """Log in through the login form; the returned session holds the login cookie."""
        session, response = self.submit_login(username, password)
        if response.status_code != 302:
            raise AssertionError(f"login of {username} failed: HTTP {response.status_code}")
        return session

    def open_server(self, session: requests.Session, server: dict[str, Any]) -> requests.Response:
        """Open a running server's page in a logged-in session.

        The first HTML request to a single-user server runs the OAuth redirects that
        give the session its cookie there; API calls with the cookie alone get 403
        until that has happened.
        """
        response = session.get(f"{self.url}{server['url']}", timeout=30)
        response.raise_for_status()
        return response

    def ensure_user(self, username: str) -> None:
        response = self.api("POST", f"/users/{username}")
        if response.status_code not in (201, 409):
            raise AssertionError(f"creating {username}: {response.status_code} {response.text}")

    def _server_path(self, username: str, server_name: str) -> str:
        return (
            f"/users/{username}/servers/{server_name}"
            if server_name
            else f"/users/{username}/server"
        )

    def server(self, username: str, server_name: str = "") -> dict[str, Any] | None:
        response = self.api("GET", f"/users/{username}")
        response.raise_for_status()
        servers: dict[str, Any] = response.json().get("servers", {})
        return servers.get(server_name)

    def spawn(
        self,
        username: str,
        server_name: str = "",
        *,
        options: dict[str, Any] | None = None,
        timeout: float = 90,
    ) -> dict[str, Any]:
        """Start a server through the REST API and wait until the hub says it is ready."""
        response = self.api(
            "POST", self._server_path(username, server_name), data=json.dumps(options or {})
        )
        if response.status_code not in (201, 202):
            raise AssertionError(f"spawn {username}: HTTP {response.status_code} {response.text}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.server(username, server_name)
            if server is None:
                # After a 201 or 202 the hub lists the server until its spawn fails.
                raise AssertionError(f"spawn of {username} failed:\n{self.process.log_tail()}")
            if server["ready"]:
                return server
            time.sleep(0.2)
        raise AssertionError(
            f"spawn of {username} not ready in {timeout}s:\n{self.process.log_tail()}"
        )

    def stop_every_server(self, *, timeout: float = 60) -> list[str]:
        """Stop every server the hub lists (pending ones too); the servers it stopped.

        The harness calls it after a failed test, so that a retry, or the next test of
        a module that shares the hub, does not meet the failed test's servers.
        """
        users = self.api("GET", "/users?state=active").json()
        stopped = []
        for user in users:
            for name in user.get("servers", {}):
                self.api("DELETE", self._server_path(user["name"], name))
                stopped.append(f"{user['name']}/{name}")
        deadline = time.monotonic() + timeout
        while self.api("GET", "/users?state=active").json():
            if time.monotonic() > deadline:
                raise AssertionError(f"servers still listed after {timeout}s")
            time.sleep(0.2)
        return stopped

    def stop(self, username: str, server_name: str = "", *, timeout: float = 60) -> None:
        """Stop a server through the REST API and wait until the hub no longer lists it."""
        response = self.api("DELETE", self._server_path(username, server_name))
        if response.status_code not in (202, 204):
            raise AssertionError(f"stop {username}: HTTP {response.status_code} {response.text}")
        deadline = time.monotonic() + timeout
        while self.server(username, server_name) is not None:
            if time.monotonic() > deadline:
                raise AssertionError(f"server of {username} still listed after {timeout}s")
            time.sleep(0.2)


#: Every hub the harness started in this process, in order (stopped ones too).
STARTED_HUBS: list[Hub] = []

#: Whether the running test may start a hub. tests/conftest.py sets it before each test
#: from the ``hub`` marker, so ``pytest -m "not hub"`` truly starts none; outside pytest
#: (the benchmarks) it stays True.
hub_allowed = True


class UnmarkedHubTest(RuntimeError):
    """A test without the ``hub`` marker tried to start a JupyterHub."""


def start_hub(
    workdir: Path,
    config: str = "",
    *,
    load_dropins: bool = True,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Hub:
    """Start JupyterHub with the harness's base config plus ``config`` (Python source).

    ``port`` fixes the public port, for tests that must register the hub's URL with
    another service (an OIDC redirect URI) before the hub starts; ``env`` adds
    environment variables (JUPYTERHUB_CRYPT_KEY is always set, so auth_state works).
    """
    if not hub_allowed:
        raise UnmarkedHubTest(
            "this test starts a JupyterHub: mark it with @pytest.mark.hub (or a module-level"
            " pytestmark) so that `pytest -m 'not hub'` leaves it out of the fast loop"
        )
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    hub_port, proxy_api_port = free_port(), free_port()
    token = secrets.token_hex(32)
    config_path = workdir / "jupyterhub_config.py"
    config_path.write_text(
        base_config(
            workdir,
            port=port,
            hub_port=hub_port,
            proxy_api_port=proxy_api_port,
            token=token,
            load_dropins=load_dropins,
        )
        + "\n# --- the test's own config ---\n"
        + textwrap.dedent(config)
    )
    env = {
        **os.environ,
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
        # The hub hands it to the proxy it starts; the harness asks the proxy's API with it.
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32),
        # The accounting drop-in's managed service gets a free port of its own.
        "EOHUB_ACCOUNTING_URL": f"http://127.0.0.1:{free_port()}",
        **(env or {}),
    }
    # The spawner finds jupyterhub-singleuser, and the proxy finds node, on PATH.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("JUPYTERHUB_API_TOKEN", None)
    process = start_process(
        "jupyterhub",
        [sys.executable, "-m", "jupyterhub", "-f", str(config_path)],
        log_path=workdir / "jupyterhub.log",
        env=env,
        cwd=workdir,
    )
    proxy_routes = f"http://127.0.0.1:{proxy_api_port}/api/routes"
    proxy_auth = {"Authorization": f"token {env['CONFIGPROXY_AUTH_TOKEN']}"}

    # Ready once the proxy routes "/" to the hub, asked through the proxy's API as the
    # demo does: polling the public URL earlier gets 404s, each logged by the proxy with
    # "Failed to get custom error page", which start-up log tests must not see.
    def routed() -> bool:
        try:
            answer = requests.get(proxy_routes, headers=proxy_auth, timeout=1)
            return answer.status_code == 200 and "/" in answer.json()
        except (requests.RequestException, ValueError):
            return False

    process.wait_until(routed, timeout=60, what="routed by its proxy")
    hub = Hub(url=f"http://127.0.0.1:{port}", token=token, workdir=workdir, process=process)
    STARTED_HUBS.append(hub)
    return hub


def stop_servers_of_running_hubs() -> str:
    """Stop every server of every hub of :data:`STARTED_HUBS` still running; what was
    stopped, hub by hub (for a failure report: it never raises)."""
    lines = []
    for hub in STARTED_HUBS:
        if not hub.process.running():
            continue
        try:
            stopped = hub.stop_every_server()
        except Exception as e:  # a report section, never a second failure
            lines.append(f"{hub.url}: could not stop its servers: {e!r}")
        else:
            lines.append(f"{hub.url}: {', '.join(stopped) or 'none running'}")
    return "\n".join(lines) or "no hub running"
