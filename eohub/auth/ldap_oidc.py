"""LDAP and OpenID Connect logins on one hub, with one group namespace and one policy.

:class:`LDAPOIDCAuthenticator` is the hub's authenticator. It holds two sources:
eohub's :class:`~eohub.auth.ldap.LDAPAuthenticator`, configured from
``c.LDAPAuthenticator``, and :class:`~eohub.auth.oidc.authenticator.OIDCAuthenticator`,
configured from ``c.OIDCAuthenticator``. Each source reads its own directory or
provider and maps its group names (``group_rules``, ``group_prefix``); the hub's
access, admin and PI rules are set once, on ``c.LDAPOIDCAuthenticator`` (or
``c.Authenticator``), and decide for the users of both.

LDAP users meet the same rules as on eohub-ldap: DN entries in the group settings
match their directory groups' DNs, and a name two of their groups share under
different DNs grants nothing (:meth:`LDAPOIDCAuthenticator.membership_facts`).

A hub user belongs to the source whose login created them (``auth_state["eohub"]
["source"]``): a refresh goes to that source, and a login of the same name through
the other source is refused. jupyterhub-multiauthenticator was evaluated and not used
(docs/how-to/ldap-and-oidc.md says why).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jupyterhub.auth import Authenticator
from oauthenticator.oauth2 import OAuthCallbackHandler
from traitlets import Enum, default

from eohub.auth.common import GroupPolicyMixin
from eohub.auth.ldap import LDAPAuthenticator
from eohub.auth.ldap_legacy import LegacyConfigError
from eohub.auth.ldap_oidc_handlers import (
    LDAPOIDCCallbackHandler,
    LDAPOIDCLoginHandler,
    LDAPOIDCLogoutHandler,
    SourceConflict,
)
from eohub.auth.ldap_oidc_rules import (
    LDAP,
    OIDC,
    SHARED_TRAITS,
    UNREADABLE,
    login_source,
    misplaced_settings,
    ownership_refusal,
)
from eohub.auth.oidc.authenticator import OIDCAuthenticator
from eohub.auth.oidc.handlers import OIDCLoginHandler
from eohub.domain.identity.access import AccessPolicy
from eohub.logs import get_logger

log = get_logger(__name__)


class _HubPolicy:
    """A source asks the hub's authenticator (its parent) who may log in and who is admin.

    Read at each decision: JupyterHub changes ``admin_users`` and ``allowed_users`` on
    its authenticator after start-up (normalising, adding admins to the allowed).
    """

    parent: Any

    def access_policy(self) -> AccessPolicy:
        policy: AccessPolicy = self.parent.access_policy()
        return policy


class LDAPLoginSource(_HubPolicy, LDAPAuthenticator):
    """The LDAP side of :class:`LDAPOIDCAuthenticator`; set it on ``c.LDAPAuthenticator``."""


class OIDCLoginSource(_HubPolicy, OIDCAuthenticator):
    """The OIDC side of :class:`LDAPOIDCAuthenticator`; set it on ``c.OIDCAuthenticator``."""


class LDAPOIDCAuthenticator(GroupPolicyMixin, Authenticator):  # type: ignore[misc]
    """Log in with LDAP (the form) or OpenID Connect (a button) on one login page.

    Configure the directory on ``c.LDAPAuthenticator`` and the provider on
    ``c.OIDCAuthenticator`` exactly as for each alone, including their ``group_rules``
    and ``group_prefix``. Set ``allowed_groups``, ``blocked_groups``, ``admin_groups``,
    ``pi_users`` and ``pi_roles`` here (``c.LDAPOIDCAuthenticator``): they decide for
    the users of both sources, by the hub group names both map into. Requires
    ``JUPYTERHUB_CRYPT_KEY``: each user's source is kept in auth_state.
    """

    preset_user_source = Enum(
        ["ldap", "oidc", ""],
        default_value="ldap",
        help="""
        The source that may claim a hub user no login created yet: a name in
        ``admin_users`` or ``allowed_users`` before its first login, or a user made
        through the REST API. ``"ldap"`` (default): only the username and password form
        logs in as that name, so a person at the provider who picks the name (many
        providers let users choose ``preferred_username``) cannot become your admin.
        ``"oidc"``: only the provider's button. ``""``: whichever source logs in first
        owns the name. Prefer ``admin_groups`` to ``admin_users`` on this hub.
        """,
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._unreadable_warned: set[str] = set()
        self.ldap = LDAPLoginSource(parent=self)
        self.oidc = OIDCLoginSource(parent=self)
        self._problems = misplaced_settings(self._own_settings(), self._source_conflicts())
        for name in SHARED_TRAITS:
            for source in (self.ldap, self.oidc):
                setattr(source, name, getattr(self, name))

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        # The source of each user, and the OIDC tokens, live in auth_state.
        return True

    def _own_settings(self) -> set[str]:
        name = type(self).__name__
        return set(self.config[name]) if name in self.config else set()

    def _source_conflicts(self) -> list[tuple[str, str]]:
        """(section, name) for each shared setting a source's own section changes."""
        hub_sections = set(self.section_names())
        found: list[tuple[str, str]] = []
        for source in (self.ldap, self.oidc):
            for section in source.section_names():
                if section in hub_sections or section not in self.config:
                    continue
                found += [
                    (section, name)
                    for name in SHARED_TRAITS
                    if name in self.config[section]
                    and getattr(source, name) != getattr(self, name)
                ]
        return found

    def check_allow_config(self) -> None:
        """Refuse, at hub start-up, settings with which the two logins cannot work."""
        problems = list(self._problems)
        if not self.enable_auth_state:
            problems.append(
                "enable_auth_state is off: each user's login source (and the OIDC tokens)"
                " are kept in auth_state; leave it on and set JUPYTERHUB_CRYPT_KEY"
            )
        if any(a.auto_login for a in (self, self.ldap, self.oidc)):
            problems.append("auto_login cannot be used: the login page offers two ways in")
        try:
            # First: a 2.x-style c.LDAPAuthenticator section is accepted here as on
            # eohub-ldap, and its mapped settings are what config_problem checks.
            self.ldap.apply_legacy_settings()
        except LegacyConfigError as e:
            problems.append(f"LDAPAuthenticator: {e}")
        ldap_problem = self.ldap.config_problem()
        if ldap_problem:
            problems.append(
                f"LDAPAuthenticator: {ldap_problem} (for OIDC logins alone, use eohub-oidc)"
            )
        if not self.oidc.issuer:
            problems.append(
                "OIDCAuthenticator.issuer is not set: name the provider's issuer URL (for"
                " LDAP logins alone, use eohub-ldap)"
            )
        callback = self.oidc.oauth_callback_url
        if callback and not callback.rstrip("/").endswith("/oauth_callback"):
            problems.append(
                f"OIDCAuthenticator.oauth_callback_url {callback!r} must end in"
                " /hub/oauth_callback, where this hub receives the provider's answer"
            )
        if problems:
            raise ValueError("LDAPOIDCAuthenticator:\n  - " + "\n  - ".join(problems))
        self.ldap.check_allow_config()
        self.oidc.check_allow_config()

    def close(self) -> None:
        """Unbind the LDAP service connections and stop their worker threads."""
        self.ldap.close()

    # Pages

    def get_handlers(self, app: Any) -> list[tuple[str, Any]]:
        return [
            (r"/login", LDAPOIDCLoginHandler),
            (r"/oauth_login", OIDCLoginHandler),
            (r"/oauth_callback", LDAPOIDCCallbackHandler),
            (r"/logout", LDAPOIDCLogoutHandler),
        ]

    # Login: each source authenticates; the hub's pipeline then decides once.

    async def authenticate(
        self, handler: Any, data: dict[str, Any] | None = None
    ) -> dict[str, Any] | None:
        model: dict[str, Any] | None
        if isinstance(handler, OAuthCallbackHandler):
            source, model = OIDC, await self.oidc.authenticate(handler, data)
        elif isinstance(data, dict) and "username" in data:
            source, model = LDAP, await self.ldap.authenticate(handler, data)
        else:
            return None
        if model:
            await self._check_owner(handler, str(model["name"]), source)
        return model

    async def _check_owner(self, handler: Any, username: str, source: str) -> None:
        """Refuse a login whose user name belongs to the other source's user."""
        find_user = getattr(handler, "find_user", None)
        name = self.normalize_username(username)
        user = find_user(name) if find_user is not None else None
        if user is None:
            return
        owner = await self._stored_owner(user)
        why = ownership_refusal(
            name, source, owner, service=self.oidc.login_service, preset=self.preset_user_source
        )
        if why and owner == UNREADABLE:
            self._warn_unreadable(name)
            raise SourceConflict(why)
        if why:
            log.warning(
                "Login of {user} through {source} refused: the hub user {user} was created"
                " by a {owner} login",
                user=name,
                source=source.upper(),
                owner=str(owner or self.preset_user_source).upper(),
            )
            raise SourceConflict(why)

    async def _stored_owner(self, user: Any) -> str | None:
        """The source of hub user ``user``; :data:`UNREADABLE` if its auth_state exists
        but cannot be decrypted (JupyterHub then answers None, as for no state)."""
        state = await user.get_auth_state()
        if state is None and getattr(user, "encrypted_auth_state", None) is not None:
            return UNREADABLE
        return login_source(state)

    def _warn_unreadable(self, name: str) -> None:
        if name in self._unreadable_warned:
            return
        self._unreadable_warned.add(name)
        log.warning(
            "The auth_state of {user} cannot be decrypted (JUPYTERHUB_CRYPT_KEY changed?):"
            " its login source is unknown, so {user} cannot log in through either source"
            " nor be refreshed. Put the old key back in JUPYTERHUB_CRYPT_KEY (after the"
            " new one, ';'-separated), or delete the hub user to free the name",
            user=name,
        )

    def membership_facts(self, model: Mapping[str, Any] | None) -> dict[str, Any]:
        """What the user's own source adds to the decision (LDAP: the group DNs).

        JupyterHub asks the hub's authenticator (``check_blocked_users``,
        ``check_allowed``, ``is_admin``): DN entries and same-named directory groups
        must decide there as they do on eohub-ldap.
        """
        state = (model or {}).get("auth_state")
        source = login_source(state if isinstance(state, Mapping) else None)
        if source == LDAP:
            return self.ldap.membership_facts(model)
        if source == OIDC:
            return self.oidc.membership_facts(model)
        return {}

    # Refresh and logout: the source that created the user answers.

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        """Refresh through the user's source; a user no login created is left alone.

        A user whose auth_state cannot be decrypted must log in (and is refused there):
        which source could vouch for them is unknown.
        """
        source = await self._stored_owner(user)
        if source == UNREADABLE:
            self._warn_unreadable(str(user.name))
            return self.login_required(handler)
        if source == LDAP:
            return await self.ldap.refresh_user(user, handler)
        if source == OIDC:
            return await self.oidc.refresh_user(user, handler)
        return True

    async def end_session_url(
        self, auth_state: dict[str, Any] | None, state: str = ""
    ) -> str | None:
        """The provider's end-session URL for an OIDC user; None for anyone else."""
        if login_source(auth_state) != OIDC:
            return None
        url: str | None = await self.oidc.end_session_url(auth_state, state)
        return url

    # What oauthenticator's handlers read from the hub's authenticator, answered by
    # the OIDC source. The handlers keep the hub's authenticator as theirs, so that a
    # refresh at the start of their requests still goes to each user's own source.

    async def provider_metadata(self) -> Any:
        return await self.oidc.provider_metadata()

    def get_callback_url(self, handler: Any = None) -> str:
        url: str = self.oidc.get_callback_url(handler)
        return url

    @property
    def authorize_url(self) -> str:
        return str(self.oidc.authorize_url)

    @property
    def token_url(self) -> str:
        return str(self.oidc.token_url)

    @property
    def userdata_url(self) -> str:
        return str(self.oidc.userdata_url)

    @property
    def client_id(self) -> str:
        return str(self.oidc.client_id)

    @property
    def scope(self) -> list[str]:
        return list(self.oidc.scope)

    @property
    def enable_pkce(self) -> bool:
        return bool(self.oidc.enable_pkce)

    @property
    def extra_authorize_params(self) -> dict[str, Any]:
        return dict(self.oidc.extra_authorize_params)

    @property
    def custom_403_message(self) -> str:
        return str(self.oidc.custom_403_message)

    @property
    def logout_redirect_url(self) -> str:
        return str(self.oidc.logout_redirect_url)
