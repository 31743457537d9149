"""Run the eohub demo hub on 127.0.0.1 and print where to open it and how to log in.

Usage: python demo/run.py [--port N] [--state-dir DIR]   (make demo runs this in tox)
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port(preferred: int = 0) -> int:
    """``preferred`` if it is free on 127.0.0.1, else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as s:
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


def wait_until_up(url: str, hub: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if hub.poll() is not None:
            raise SystemExit(f"the hub exited with code {hub.returncode}; see its log above")
        try:
            # The URL is ours: http on 127.0.0.1, never a user-supplied scheme.
            with urllib.request.urlopen(f"{url}/hub/api/", timeout=1):  # noqa: S310
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    hub.terminate()
    raise SystemExit(f"the hub did not answer on {url} within {timeout:.0f}s")


def main() -> int:
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
    args = parser.parse_args()

    state = args.state_dir.resolve()
    (state / "home").mkdir(parents=True, exist_ok=True)
    port = free_port(args.port)
    password = os.environ.get("EOHUB_DEMO_PASSWORD") or secrets.token_urlsafe(9)
    env = dict(os.environ)
    env.update(
        EOHUB_DEMO_STATE=str(state),
        EOHUB_DEMO_PORT=str(port),
        EOHUB_DEMO_HUB_PORT=str(free_port()),
        EOHUB_DEMO_PROXY_API_PORT=str(free_port()),
        EOHUB_DEMO_CHP=chp_command(),
        EOHUB_DEMO_PASSWORD=password,
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    hub = subprocess.Popen(
        [sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "demo/jupyterhub_config.py")],
        cwd=state,
        env=env,
    )
    # Ctrl-C reaches the hub too; it stops the proxy and the users' servers itself.
    signal.signal(signal.SIGTERM, lambda *_: hub.terminate())
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, hub)
    print(
        f"\n  eohub demo hub: {url}/\n"
        f"  log in with any user name and the password: {password}\n"
        f"  (user name 'admin' is a hub admin)   stop with Ctrl-C\n",
        flush=True,
    )
    try:
        return hub.wait()
    except KeyboardInterrupt:
        return hub.wait()


if __name__ == "__main__":
    sys.exit(main())
