"""Run the eohub demo hub on 127.0.0.1 and print where to open it and how to log in.

The demo starts its own OpenLDAP directory (slapd, with the users and groups of
tests/data/10-directory.ldif) and a JupyterHub that logs in through eohub's
LDAPAuthenticator. Usage:
python demo/run.py [--port N] [--state-dir DIR] [--with-oidc] [--json-logs] [--portal]
(make demo runs this in tox). ``--with-oidc`` also starts an OpenID Connect provider on
loopback (the tests' npm oidc-provider) and offers both logins on one page.
``--json-logs`` turns on drop-in 40: the hub and its services log JSON lines on stderr.
``--portal`` serves a small portal page on http://localhost:<port> that shows the hub in
an iframe, and allows it through drop-in 45.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the demo directory is started by the test harness's code

from tests.support.git_server import GIT_ENV, git, git_http_server  # noqa: E402
from tests.support.oidc import OIDCClient, ProviderSettings, start_oidc_provider  # noqa: E402
from tests.support.slapd import Directory, start_slapd  # noqa: E402
from tests.support.tools import DATA_DIR  # noqa: E402

DEMO_REPO = "eohub-demo.git"

USERS = """\
    alice / alice-pw      admin (hub-admins), researchers, eo-scientists
    bob / bob-pw          researchers, climate
    carol / carol-pw      climate (its PI)
    dave / dave-pw        eo-scientists through the nested group sentinel-team
    mallory / mallory-pw  in no allowed group: refused"""

#: --with-oidc: the provider's accounts (its login page takes any password).
OIDC_ACCOUNTS = {
    "olga": {
        "preferred_username": "olga",
        "name": "Olga Visitor",
        "email": "olga@example.org",
        "email_verified": True,
        "groups": ["researchers"],
    },
    "victor": {
        "preferred_username": "victor",
        "name": "Victor Outsider",
        "email": "victor@example.org",
        "email_verified": True,
        "groups": ["visitors"],
    },
}
OIDC_USERS = """\
    olga (any password)   researchers, through "Sign in with the demo identity provider"
    victor                in no allowed group: refused"""

#: --portal: the page another site would show; {hub} is the hub's URL.
PORTAL_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo science portal</title>
<style>
body {{ font-family: sans-serif; margin: 1em 2em; }}
iframe {{ width: 100%; height: 75vh; border: 1px solid #888; }}
</style></head>
<body>
<h1>Demo science portal</h1>
<p>The eohub demo hub, embedded from {hub}. <a href="{hub}/hub/login" target="_top">Log in
to the hub</a> in the whole window first, then come back to this page: logging in through
an identity provider must happen top-level (providers refuse to be framed). The directory's
login form also works inside the frame.</p>
<iframe name="hub" title="eohub demo hub" src="{hub}/hub/home"></iframe>
</body></html>
"""


def free_port(preferred: int = 0) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as s:
            # As the servers do: a port left in TIME_WAIT by the last run is free to them.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise SystemExit("no free port on 127.0.0.1")


def chp_command() -> str:
    tools = Path(os.environ.get("EOHUB_NODE_TOOLS", ROOT / "tools/node/node_modules"))
    chp = tools / ".bin" / "configurable-http-proxy"
    if not chp.exists():
        raise SystemExit(
            f"configurable-http-proxy not found at {chp}: run scripts/bootstrap.sh node"
        )
    return str(chp)


def wait_until_up(env: dict[str, str], hub: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the proxy routes ``/`` to the hub, asking the proxy's API.

    Polling the public URL instead would hit the proxy before the hub's route exists:
    each poll a 404, and a "Failed to get custom error page" in the log.
    """
    api = f"http://127.0.0.1:{env['EOHUB_DEMO_PROXY_API_PORT']}/api/routes"
    request = urllib.request.Request(
        api, headers={"Authorization": f"token {env['CONFIGPROXY_AUTH_TOKEN']}"}
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            raise SystemExit(f"the hub exited with code {hub.returncode}; see its log above")
        try:
            # The URL is ours: http on 127.0.0.1, never a user-supplied scheme.
            with urllib.request.urlopen(request, timeout=1) as answer:  # noqa: S310
                if "/" in json.load(answer):
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.2)
    hub.terminate()
    raise SystemExit(f"the hub did not start within {timeout:.0f}s")


def ldap_env(directory: Directory) -> dict[str, str]:
    return {
        "EOHUB_DEMO_LDAP_URL": directory.ldaps_url,
        "EOHUB_DEMO_LDAP_CA": str(directory.tls.ca_cert),
        "EOHUB_DEMO_LDAP_SERVICE_DN": directory.service_dn,
        "EOHUB_DEMO_LDAP_SERVICE_PASSWORD": directory.service_password,
    }


def crypt_key(state: Path) -> str:
    """The key JupyterHub encrypts auth_state with, kept across demo runs."""
    path = state / "jupyterhub_crypt_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


#: The demo repository's one commit has fixed dates, so the same files give the same
#: commit on every run: clones and launch links from earlier runs still match.
COMMIT_DATES = {
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
}


def demo_repository(state: Path) -> Path:
    """A bare repository of demo/example-repo, made afresh each run; its served root."""
    root = state / "git"
    shutil.rmtree(root, ignore_errors=True)
    work = root / "work"
    shutil.copytree(ROOT / "demo/example-repo", work)
    git("init", "-q", "-b", "main", cwd=work)
    git("add", ".", cwd=work)
    subprocess.run(
        ["git", "commit", "-q", "-m", "The demo repository"],
        cwd=work,
        env={**os.environ, **GIT_ENV, **COMMIT_DATES},
        check=True,
    )
    git("clone", "-q", "--bare", str(work), str(root / DEMO_REPO), cwd=root)
    return root


def git_port(state: Path) -> int:
    """The demo git server's port: the one of earlier runs (kept in the state dir), so
    that the launch links they printed keep working; a new one only if it is taken."""
    path = state / "git-port"
    kept = int(path.read_text()) if path.exists() and path.read_text().strip().isdigit() else 0
    port = free_port(kept) if kept else free_port()
    if kept and port != kept:
        print(
            f"  note: port {kept} of the demo git server is taken; launch links printed by "
            f"earlier runs no longer work (the new port is {port})",
            file=sys.stderr,
        )
    path.write_text(f"{port}\n")
    return port


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("EOHUB_DEMO_PORT", 8000)),
        help="public port on 127.0.0.1 (default 8000, or a free one if taken)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=ROOT / ".demo",
        help="where the hub keeps its database, secrets and user homes",
    )
    parser.add_argument(
        "--with-oidc",
        action="store_true",
        help="also log visitors in through an OpenID Connect provider on loopback",
    )
    parser.add_argument(
        "--json-logs",
        action="store_true",
        help="the hub and its services log JSON lines on stderr (EOHUB_LOG_FORMAT=json)",
    )
    parser.add_argument(
        "--portal",
        action="store_true",
        help="serve a portal page on http://localhost that embeds the hub in an iframe",
    )
    return parser.parse_args()


def hub_env(state: Path, port: int, directory: Directory) -> dict[str, str]:
    """The environment demo/jupyterhub_config.py reads, on top of this process's."""
    env = dict(os.environ)
    env.update(
        EOHUB_DEMO_STATE=str(state),
        EOHUB_DEMO_PORT=str(port),
        EOHUB_DEMO_HUB_PORT=str(free_port()),
        EOHUB_DEMO_PROXY_API_PORT=str(free_port()),
        # The hub passes it to the proxy it starts; the demo asks the proxy for its routes.
        CONFIGPROXY_AUTH_TOKEN=secrets.token_hex(32),
        EOHUB_DEMO_CHP=chp_command(),
        **ldap_env(directory),
        JUPYTERHUB_CRYPT_KEY=crypt_key(state),
        # The accounting service (drop-in 30) on SQLite in the state dir, with the demo's
        # groups and quotas.
        EOHUB_ACCOUNTING_URL=f"http://127.0.0.1:{free_port()}",
        EOHUB_ACCOUNTING_CONFIG=str(ROOT / "demo/eohub_accounting_config.py"),
        # The storage sampler (drop-in 35) measures the workspaces every minute and
        # charges each user's to their directory group (demo/eohub_storage_config.py).
        EOHUB_STORAGE_SAMPLER="local",
        EOHUB_STORAGE_HUB_GROUPS="1",
        EOHUB_STORAGE_CONFIG=str(ROOT / "demo/eohub_storage_config.py"),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    return env


def start_demo_provider(state: Path, port: int, env: dict[str, str]) -> Any:
    """The demo's OpenID Connect provider, registered for this hub; sets its env vars."""
    hub = f"http://127.0.0.1:{port}/hub"
    client = OIDCClient(
        client_secret=secrets.token_hex(16),
        redirect_uris=(f"{hub}/oauth_callback",),
        post_logout_redirect_uris=(f"{hub}/login",),
    )
    process, provider = start_oidc_provider(
        state / "oidc", ProviderSettings(accounts=OIDC_ACCOUNTS, clients=(client,))
    )
    env.update(
        EOHUB_DEMO_OIDC_ISSUER=provider.issuer,
        EOHUB_DEMO_OIDC_CLIENT_ID=client.client_id,
        EOHUB_DEMO_OIDC_CLIENT_SECRET=client.client_secret,
    )
    return process


def json_logs(state: Path, env: dict[str, str]) -> Path:
    """--json-logs: drop-in 40 on; the proxy's and servers' text logs go to files."""
    logs = state / "logs"
    logs.mkdir(exist_ok=True)
    env.update(EOHUB_LOG_FORMAT="json", EOHUB_DEMO_TEXT_LOGS=str(logs))
    return logs


def start_portal(hub_url: str, env: dict[str, str]) -> tuple[ThreadingHTTPServer, str]:
    """--portal: serve PORTAL_PAGE on loopback; the hub allows its origin (drop-in 45).

    The page's URL says ``localhost``, the hub's ``127.0.0.1``: another site, as a real
    portal is, so the frame shows what a portal's users would see.
    """
    body = PORTAL_PAGE.format(hub=hub_url).encode()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] not in ("/", "/index.html"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # the demo's stderr is the hub's log (JSON only with --json-logs)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    origin = f"http://localhost:{server.server_port}"
    env["EOHUB_EMBED_ORIGINS"] = origin
    return server, origin


def banner(url: str, link: str, directory: Directory, slapd_pid: int, extra: str) -> str:
    return (
        f"\n  eohub demo hub: {url}/\n"
        f"  usage pages:    {url}/services/eohub-accounting/\n"
        f"  launch link:    {link}\n"
        f"                  (the demo repository, cloned into your workspace)\n"
        f"  demo directory: {directory.ldaps_url} (slapd, pid {slapd_pid})\n"
        f"{extra}"
        f"  log in as one of:\n{USERS}\n"
    )


def main() -> int:
    args = parse_args()
    state = args.state_dir.resolve()
    (state / "home").mkdir(parents=True, exist_ok=True)
    port = free_port(args.port)
    slapd_dir = state / "slapd"
    shutil.rmtree(slapd_dir, ignore_errors=True)  # a fresh directory every run
    slapd, directory = start_slapd(slapd_dir, sorted(DATA_DIR.glob("*.ldif")))
    served = git_http_server(demo_repository(state), git_port(state))
    git_url = served.__enter__()
    repo_url = f"{git_url}/{DEMO_REPO}"
    env = hub_env(state, port, directory)
    provider = start_demo_provider(state, port, env) if args.with_oidc else None
    url = f"http://127.0.0.1:{port}"
    extra = ""
    if args.json_logs:
        logs = json_logs(state, env)
        extra += f"  JSON logs:      on stderr; the proxy's and servers' text logs in {logs}/\n"
    portal = start_portal(url, env) if args.portal else None
    if portal is not None:
        extra += f"  portal:         {portal[1]}/ (the hub in an iframe; log in top-level)\n"
    hub = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "demo/jupyterhub_config.py")],
        cwd=state,
        env=env,
    )
    # Ctrl-C reaches the hub too; it stops the proxy and the users' servers itself.
    signal.signal(signal.SIGTERM, lambda *_: hub.terminate())
    link = f"{url}/hub/eohub/launch/git/{quote(repo_url, safe='')}/main?filepath=intro.ipynb"
    try:
        wait_until_up(env, hub)
        print(
            banner(url, link, directory, slapd.pid, extra)
            + (f"  or, at the identity provider:\n{OIDC_USERS}\n" if provider else "")
            + "  stop with Ctrl-C\n",
            flush=True,
        )
        try:
            return hub.wait()
        except KeyboardInterrupt:
            return hub.wait()
    finally:
        if hub.poll() is None:
            hub.terminate()
            hub.wait(30)
        slapd.stop()
        if provider is not None:
            provider.stop()
        if portal is not None:
            portal[0].shutdown()
            portal[0].server_close()
        served.__exit__(None, None, None)


if __name__ == "__main__":
    sys.exit(main())
