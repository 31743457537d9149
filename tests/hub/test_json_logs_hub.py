"""A real hub with drop-in 40 (``EOHUB_LOG_FORMAT=json``): every line is JSON, no secret.

One scenario as a site runs it: slapd logins (one with a wrong password), a user's API
token in the header and in ``?token=`` (also on requests the hub refuses with a message,
which tornado logs with the URI, and on /user/<name>/ URLs), a server started and
stopped with eohub's local spawner, the OAuth logins to that server and to the
accounting pages, and the managed accounting service on PostgreSQL through a URL with a
password. Then every line the hub and the service wrote must parse as a JSON object,
with eohub's fields as keys, and none may hold any secret the scenario used or the hub
was given (the services' and the single-user server's API tokens too). The same
scenario in text mode (the default) must not write any secret either.

The proxy and the single-user server are processes of their own with their own text
formats (configurable-http-proxy has no JSON output); here they write to files of
their own, which are searched for the secrets too.
"""

from __future__ import annotations

import json
import secrets
import textwrap
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pytest
import requests

from tests.accounting.service_support import Accounting
from tests.auth.ldap_support import ldap_hub_config
from tests.support.databases import postgres_database
from tests.support.hub import Hub, start_hub
from tests.support.slapd import Directory
from tests.support.tools import node_bin

pytestmark = pytest.mark.hub

ACCOUNTING_GROUPS = {"climate": {"allocation": "month"}}


def wrapper(path: Path, command: str, log: Path, before: str = "") -> str:
    """A script that runs ``command`` with its output in ``log``, not in the hub's."""
    path.write_text(f'#!/bin/sh\n{before}exec {command} "$@" >>{log} 2>&1\n')
    path.chmod(0o755)
    return str(path)


def hub_config(directory: Directory, workdir: Path) -> str:
    proxy = wrapper(
        workdir / "proxy.sh", str(node_bin("configurable-http-proxy")), workdir / "proxy.log"
    )
    # The server's API token, which the hub gives it, to search the logs for.
    keep_token = f'printf %s "$JUPYTERHUB_API_TOKEN" >{workdir / "singleuser.token"}\n'
    singleuser = wrapper(
        workdir / "singleuser.sh",
        "jupyterhub-singleuser",
        workdir / "singleuser.log",
        before=keep_token,
    )
    launch = {
        "sizes": {"small": {"display_name": "Small", "cpu": 0.5, "memory": "1G"}},
        "environments": {"lab": {"display_name": "Lab", "sizes": ["small"], "default": True}},
        "volumes": {
            "home": {
                "kind": "workspace",
                "mount_path": "/home/jovyan",
                "local_path": str(workdir / "home" / "{username}"),
            }
        },
    }
    return ldap_hub_config(directory) + textwrap.dedent(f"""\
        c.JupyterHub.log_level = "DEBUG"  # the most a hub writes
        c.ConfigurableHTTPProxy.command = [{proxy!r}]
        c.Spawner.cmd = [{singleuser!r}]
        c.JupyterHub.spawner_class = "eohub-local"
        c.QuotaLocalSpawner.switch_user = False
        c.QuotaLocalSpawner.launch_sizes = {launch["sizes"]!r}
        c.QuotaLocalSpawner.launch_environments = {launch["environments"]!r}
        c.QuotaLocalSpawner.launch_volumes = {launch["volumes"]!r}
        c.QuotaLocalSpawner.charge_groups = ["climate"]
        from eohub.spawner import check_hub_config
        check_hub_config(c)
        """)


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username or 'postgres'}:{password}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


def oauth_values(responses: list[requests.Response]) -> list[str]:
    """The OAuth ``code`` and ``state`` values in the URLs a login went through."""
    found = []
    for response in responses:
        for url in (response.url, response.headers.get("Location", "")):
            found += [v for k, v in parse_qsl(urlsplit(url).query) if k in ("code", "state")]
    return found


def service_api_token(hub_pid: int, name: str) -> str:
    """The API token the hub gave its managed service ``name`` (in its environment)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue  # gone, or not ours
        if f"\nPPid:\t{hub_pid}\n" not in status:
            continue
        variables = dict(v.decode().partition("=")[::2] for v in environ if b"=" in v)
        if variables.get("JUPYTERHUB_SERVICE_NAME") == name:
            return variables["JUPYTERHUB_API_TOKEN"]
    raise AssertionError(f"no process of service {name} under the hub (pid {hub_pid})")


def wait_for(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def run_scenario(hub: Hub) -> tuple[list[str], list[str]]:
    """Use the hub as its users and admins do; return the secrets that went by, and
    the browsers' cookie values."""
    used = []
    wrong = "wrong-pw-" + secrets.token_hex(8)
    _, refused = hub.submit_login("bob", wrong)
    assert refused.status_code == 403
    used.append(wrong)

    bob = hub.login("bob", "bob-pw")
    token = hub.api("POST", "/users/bob/tokens", json={"note": "script"}).json()["token"]
    used.append(token)
    api = f"{hub.url}/hub/api"
    header = {"Authorization": f"token {token}"}
    assert requests.get(f"{api}/user", headers=header, timeout=30).json()["name"] == "bob"
    requests.get(f"{api}/user?token={token}&include_stopped_servers=1", timeout=30)
    # Refused with a message: tornado's own line about it shows the request's URI.
    unknown = "unknown-token-" + secrets.token_hex(8)
    used.append(unknown)
    for query_token in (token, unknown):
        refused = requests.get(f"{api}/users/nosuchuser?token={query_token}", timeout=30)
        assert refused.status_code in (403, 404), refused.text
    started = requests.post(
        f"{api}/users/bob/server",
        json={"environment": "lab", "size": "small"},
        headers=header,
        timeout=60,
    )
    assert started.status_code in (201, 202), started.text
    wait_for(lambda: (hub.server("bob") or {}).get("ready"), "bob's server ready")
    opened = hub.open_server(bob, hub.server("bob") or {})
    used += oauth_values([*opened.history, opened])
    # A token in a single-user server's URL: through the proxy to the server (which may
    # refuse a token in a URL: 403), logged by the proxy and the server.
    contents = requests.get(f"{hub.url}/user/bob/api/contents?token={token}", timeout=30)
    assert contents.status_code in (200, 403), contents.text
    assert requests.get(f"{hub.url}/hub/health", timeout=10).status_code == 200

    accounting = Accounting(hub)
    accounting.wait_ready(timeout=60)
    used.append(service_api_token(hub.process.pid, "eohub-accounting"))
    pages = accounting.browser_login("bob", "bob-pw")
    used += oauth_values([*pages.get(accounting.base + "usage", timeout=30).history])
    alice = hub.login("alice", "alice-pw")
    alice_token = accounting.user_token("alice")
    used.append(alice_token)
    accounting.call("PUT", "api/groups/climate", alice_token, json={}).raise_for_status()

    hub.stop("bob")

    def bobs_session_closed() -> bool:
        answer = accounting.call("GET", "api/sessions?user=bob", alice_token)
        sessions = answer.json().get("sessions", []) if answer.ok else []
        return any(s["group"] == "climate" and s["stopped_at"] for s in sessions)

    wait_for(bobs_session_closed, "bob's session recorded and closed by accounting")
    # The same URL with the server stopped: the hub answers it, and logs it.
    stopped = requests.get(f"{hub.url}/user/bob/lab?token={token}", timeout=30)
    assert stopped.status_code in (200, 424, 503), stopped.status_code
    cookies = [c.value for s in (bob, pages, alice) for c in s.cookies if c.value]
    return used, cookies


def parsed_lines(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Each line of ``path`` as JSON, and the lines that are not a JSON object."""
    records, bad = [], []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        elif line.strip():
            bad.append(line)
    return records, bad


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_a_full_scenario_logs_without_any_secret(
    directory: Directory, tmp_path: Path, log_format: str
) -> None:
    workdir = tmp_path / "hub"
    workdir.mkdir()
    (workdir / "eohub_accounting_config.py").write_text(
        f"c.AccountingService.groups = {ACCOUNTING_GROUPS!r}\n"
        "c.AccountingService.reconcile_interval = 0\n"
    )
    given = {
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32),
        "EOHUB_ACCOUNTING_COOKIE_SECRET": secrets.token_hex(32),
    }
    db_password = "db-pw-" + secrets.token_hex(8)
    with postgres_database() as url:
        env = {
            **given,
            "EOHUB_LOG_FORMAT": log_format,
            "EOHUB_ACCOUNTING_DB_URL": with_password(url, db_password),
        }
        hub = start_hub(workdir, hub_config(directory, workdir), env=env)
        try:
            used, cookies = run_scenario(hub)
        finally:
            hub.process.stop(timeout=20)

    # JupyterHub writes the secret as hex text and a newline.
    cookie_secret = (workdir / "jupyterhub_cookie_secret").read_text().strip()
    client_token = (workdir / "eohub-accounting-hub.token").read_text().strip()
    known = [
        (workdir / "singleuser.token").read_text().strip(),
        "bob-pw",
        "alice-pw",
        directory.service_password,
        hub.token,
        db_password,
        cookie_secret,
        client_token,
        *given.values(),
        *used,
    ]
    assert all(len(secret) >= 6 for secret in [*known, *cookies])
    # The single-user server (JupyterHub's code, its own text log) shows its session
    # id cookie's value at INFO, as the hub would without eohub's filter.
    for name, secrets_there in (
        ("jupyterhub.log", [*known, *cookies]),
        ("proxy.log", [*known, *cookies]),
        ("singleuser.log", known),
    ):
        lines = (workdir / name).read_text().splitlines()
        leaks = [
            line.replace(secret, "<SECRET>")[:300]
            for secret in secrets_there
            for line in lines
            if secret in line
        ]
        assert leaks == [], f"{name} holds secrets:\n" + "\n".join(leaks)
    if log_format == "json":
        check_json_lines(hub.process.log_path)
    else:
        lines = hub.process.log_path.read_text().splitlines()
        # tornado's line about the refused request is there, without its query.
        assert [line for line in lines if "GET /hub/api/users/nosuchuser (127.0.0.1)" in line]


def check_json_lines(log_path: Path) -> None:
    """Every line JSON, eohub's fields and the access log's parts as keys."""
    records, bad = parsed_lines(log_path)
    assert bad == [], "lines that are not JSON:\n" + "\n".join(bad[:20])
    by_event: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        assert {"timestamp", "level", "logger", "message"} <= set(record), record
        by_event.setdefault(record.get("event", ""), []).append(record)

    # The access log: its parts as keys, no query string credentials.
    access = by_event["{status} {method} {path} ({user}@{remote_addr}) {duration_ms:.2f}ms"]
    api_user = [r for r in access if r["path"] == "/hub/api/user"]
    by_header = {"method": "GET", "status": 200, "user": "bob", "remote_addr": "127.0.0.1"}
    assert by_header in [{k: r[k] for k in by_header} for r in api_user if "query" not in r]
    # The ?token= call, whatever this JupyterHub answers to it: the token is gone.
    assert [r["query"] for r in api_user if "query" in r] == ["include_stopped_servers=1"]
    assert all(isinstance(r["duration_ms"], float) for r in access)
    health = [r for r in access if r["path"] == "/hub/health"]
    assert [r["level"] for r in health] == ["DEBUG"]  # as JupyterHub logs it

    # eohub's fields as keys: the hub's LDAP refusal, the service's group change.
    (refusal,) = by_event["LDAP login of {user} failed: unknown user or wrong password"]
    assert (refusal["user"], refusal["logger"]) == ("bob", "eohub.auth.ldap")
    (change,) = by_event["Group {group} {change} by {caller}"]
    assert (change["group"], change["change"], change["caller"]) == ("climate", "changed", "alice")
    (listening,) = by_event[
        "eohub-accounting {version} listening on {url}{prefix} (database {database})"
    ]
    assert listening["database"].startswith("postgresql+psycopg://postgres:***@")
    # The service's access lines: the hub's keys, with the caller it identified.
    service_access = [r for r in access if r["logger"] == "eohub.access_log"]
    group_change = {
        "method": "PUT",
        "path": "/services/eohub-accounting/api/groups/climate",
        "user": "alice",
        "remote_addr": "127.0.0.1",
    }
    assert group_change in [{k: r[k] for k in group_change} for r in service_access]
    assert all(isinstance(r["duration_ms"], float) for r in service_access)
