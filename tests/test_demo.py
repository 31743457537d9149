"""The README's demo command starts a hub that answers on the URL it prints."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.process import free_port
from tests.support.tools import REPO_ROOT


def test_demo_hub_answers_on_the_printed_url(tmp_path: Path) -> None:
    env = dict(os.environ, EOHUB_DEMO_PASSWORD="")
    demo = subprocess.Popen(
        [
            sys.executable,
            str(REPO_ROOT / "demo/run.py"),
            "--port",
            str(free_port()),
            "--state-dir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert demo.stdout is not None
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            lines.append(line)
            if "password:" in line or demo.poll() is not None:
                break
        text = "".join(lines)
        url = re.search(r"eohub demo hub: (http://127\.0\.0\.1:\d+)/", text)
        password = re.search(r"the password: (\S+)", text)
        assert url, text
        assert password, text

        session = requests.Session()
        session.get(f"{url[1]}/hub/login", timeout=10)
        login = session.post(
            f"{url[1]}/hub/login",
            data={"username": "admin", "password": password[1], "_xsrf": session.cookies["_xsrf"]},
            allow_redirects=False,
            timeout=30,
        )
        assert login.status_code == 302
        me = session.get(
            f"{url[1]}/hub/api/user", timeout=10, headers={"X-XSRFToken": session.cookies["_xsrf"]}
        )
        assert me.json()["admin"] is True
    finally:
        os.killpg(demo.pid, 2)  # Ctrl-C, as a person stops it
        demo.wait(30)
