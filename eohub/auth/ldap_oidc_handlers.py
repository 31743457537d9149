"""The pages of a hub with both logins: one login page, the OIDC redirects, one logout.

``/hub/login`` is JupyterHub's own login handler: its form posts to the LDAP source,
and eohub's template (``templates/eohub-ldap-oidc-login.html``, extending the hub's
``login.html``) adds the "Sign in with ..." button of the OIDC source. A refused form
login is shown in the form, as JupyterHub shows it. ``/hub/oauth_login`` and
``/hub/oauth_callback`` are the OIDC source's handlers; they ask the hub's
authenticator, which answers for its OIDC source. ``/hub/logout`` ends an OIDC user's
provider session too (RP-initiated logout) and an LDAP user's hub session only.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader
from jupyterhub.handlers.login import LoginHandler, LogoutHandler
from oauthenticator.oauth2 import STATE_COOKIE_NAME
from tornado import web
from tornado.httputil import url_concat

from eohub.auth.ldap_oidc_rules import OIDC, login_source
from eohub.auth.oidc.handlers import OIDCCallbackHandler, OIDCLogoutHandler

TEMPLATE_DIR = Path(__file__).parent / "templates"
LOGIN_TEMPLATE = "eohub-ldap-oidc-login.html"


@functools.lru_cache(maxsize=8)
def _with_eohub_templates(env: Environment) -> Environment:
    # eohub's templates first, then the hub's own (template_paths, JupyterHub's): the
    # login page extends whatever login.html the site uses.
    loader = ChoiceLoader([FileSystemLoader(str(TEMPLATE_DIR)), env.loader])  # type: ignore[list-item]
    return env.overlay(loader=loader)


class LDAPOIDCLoginHandler(LoginHandler):  # type: ignore[misc]
    """JupyterHub's login page and form, with the OIDC source's button below the form."""

    def get_template(self, name: str, sync: bool = False) -> Any:
        env = self.settings["jinja2_env_sync" if sync else "jinja2_env"]
        return _with_eohub_templates(env).get_template(name)

    def render_template(self, name: str, sync: bool = False, **ns: Any) -> Any:
        if name == "login.html":
            name = LOGIN_TEMPLATE
            oidc = self.authenticator.oidc
            next_url = self.get_argument("next", "")
            ns.update(
                oidc_login_service=oidc.login_service,
                oidc_login_url=url_concat(
                    oidc.login_url(self.hub.base_url), {"next": next_url} if next_url else {}
                ),
            )
        return super().render_template(name, sync=sync, **ns)


class SourceConflict(web.HTTPError):
    """A login refused because its user name belongs to the other source's user.

    The message is shown to the person (in the login form, or on the error page after
    the provider); it was logged once where it was decided.
    """

    def __init__(self, message: str) -> None:
        super().__init__(403)
        self.jupyterhub_message = message


class LDAPOIDCCallbackHandler(OIDCCallbackHandler):
    """``/hub/oauth_callback``: the hub's authenticator passes the login to its OIDC source."""

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, SourceConflict):
            return
        super().log_exception(typ, value, tb)


class LDAPOIDCLogoutHandler(OIDCLogoutHandler):
    """Log out; only a user who came through OIDC is sent on to the provider's logout."""

    _oidc_user = False

    async def handle_logout(self) -> None:
        user = self.current_user
        state = await user.get_auth_state() if user is not None else None
        self._oidc_user = login_source(state) == OIDC
        if self._oidc_user:
            await super().handle_logout()
        else:
            self.clear_cookie(STATE_COOKIE_NAME)

    async def render_logout_page(self) -> None:
        if self._oidc_user:
            await super().render_logout_page()
            return
        # An LDAP user: JupyterHub's own logout, never the provider's logout_redirect_url.
        await LogoutHandler.render_logout_page(self)
