"""Helpers for tests that talk to the accounting service behind a real JupyterHub."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import requests

from tests.support.hub import Hub

# "admin" is a hub admin, and so an accounting admin through drop-in 30's role.
ACCOUNTING_CONFIG = """
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}
"""
SERVICE_PREFIX = "/services/eohub-accounting/"


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

    def user_token(self, name: str, scopes: list[str] | None = None) -> str:
        """A new API token of ``name``: all the user's scopes, or only ``scopes``."""
        self.hub.ensure_user(name)
        body: dict[str, Any] = {"note": "eohub test"}
        if scopes is not None:
            body["scopes"] = scopes
        response = self.hub.api("POST", f"/users/{name}/tokens", json=body)
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def browser_login(self, name: str, password: str) -> requests.Session:
        """Log in through the hub's form and the service's OAuth login, as a browser
        (answering a consent page, which the drop-in's ``oauth_no_confirm`` avoids).

        The session then holds the service's login cookie, and the ``_xsrf`` cookie a
        page view sets (see :meth:`xsrf`).
        """
        session = self.hub.login(name, password)
        page = session.get(self.base + "usage", timeout=30)
        if "/oauth2/authorize" in page.url:  # the first visit asks for consent
            fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text)
            page = session.post(page.url, data=fields, timeout=30)
        if page.status_code != 200 or not page.url.startswith(self.base):
            raise AssertionError(f"OAuth login of {name} ended at {page.url}: {page.status_code}")
        return session

    @staticmethod
    def xsrf(session: requests.Session) -> str:
        """The service's ``_xsrf`` cookie (the hub has one of its own, on /hub/)."""
        value = session.cookies.get("_xsrf", path=SERVICE_PREFIX.rstrip("/"))
        value = value or session.cookies.get("_xsrf", path=SERVICE_PREFIX)
        if not value:
            raise AssertionError(f"no _xsrf cookie for the service: {session.cookies}")
        return str(value)

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
