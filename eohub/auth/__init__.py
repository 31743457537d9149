"""JupyterHub Authenticator classes that resolve one group model from LDAP or OIDC.

``from eohub.auth import LDAPAuthenticator, OIDCAuthenticator`` works like
``oauthenticator``'s top-level imports. Each class is imported on first use, so a hub
that logs in with OIDC never imports ldap3.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LDAPAuthenticator", "LDAPOIDCAuthenticator", "OIDCAuthenticator"]


def __getattr__(name: str) -> Any:
    if name == "LDAPAuthenticator":
        from eohub.auth.ldap import LDAPAuthenticator

        return LDAPAuthenticator
    if name == "OIDCAuthenticator":
        from eohub.auth.oidc.authenticator import OIDCAuthenticator

        return OIDCAuthenticator
    if name == "LDAPOIDCAuthenticator":
        from eohub.auth.ldap_oidc import LDAPOIDCAuthenticator

        return LDAPOIDCAuthenticator
    raise AttributeError(name)
