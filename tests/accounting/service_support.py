"""Helpers for tests that talk to the accounting service behind a real JupyterHub."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import requests

from tests.support.hub import Hub

ACCOUNTING_CONFIG = """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}
"""


@dataclass
class Accounting:
    """The managed accounting service of ``hub``, reached through the hub's proxy."""

    hub: Hub

    @property
    def base(self) -> str:
        return f"{self.hub.url}/services/eohub-accounting/"

    @property
    def hub_token(self) -> str:
        return (self.hub.workdir / "eohub-accounting-hub.token").read_text().strip()

    def user_token(self, name: str) -> str:
        """A new API token of ``name`` (``admin`` is a hub admin in ACCOUNTING_CONFIG)."""
        self.hub.ensure_user(name)
        response = self.hub.api("POST", f"/users/{name}/tokens", json={"note": "eohub test"})
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = {"Authorization": f"token {token}"} if token else {}
        return requests.request(method, self.base + path, headers=headers, timeout=30, **kwargs)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.call("GET", "api/me", self.hub_token).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        log = (self.hub.workdir / "jupyterhub.log").read_text()[-4000:]
        raise AssertionError(f"the accounting service did not answer in {timeout}s\n{log}")
