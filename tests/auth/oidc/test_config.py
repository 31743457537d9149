"""OIDCSettings: the OIDC traits' validators and the defaults they change.

``test_authenticator.py`` checks the same through a whole OIDCAuthenticator.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from traitlets import TraitError
from traitlets.config import Config

from eohub.adapters.oidc import DEFAULT_ALGORITHMS
from eohub.auth.oidc.config import OIDCSettings
from eohub.domain.identity.entitlements import EGI_ENTITLEMENT_PATTERN


def settings(**traits: Any) -> OIDCSettings:
    return OIDCSettings(config=Config({"OIDCSettings": traits}))


@pytest.mark.parametrize(
    ("trait", "value", "message"),
    [
        ("id_token_algorithms", ["RS256", "none"], "OIDCAuthenticator.id_token_algorithms: "),
        ("id_token_algorithms", [], "id_token_algorithms must not be empty"),
        ("id_token_leeway", -0.5, "OIDCAuthenticator.id_token_leeway must be >= 0"),
        (
            "discovery_cache_seconds",
            -1,
            "OIDCAuthenticator.discovery_cache_seconds must be >= 0",
        ),
        ("entitlement_pattern", r"urn:(.+)", "needs a named group (?P<group>...)"),
        ("entitlement_pattern", r"urn:(?P<group>", "invalid regular expression"),
    ],
)
def test_unsafe_or_broken_settings_are_refused(trait: str, value: Any, message: str) -> None:
    with pytest.raises(TraitError, match=re.escape(message)):
        settings(**{trait: value})


@pytest.mark.parametrize(
    ("trait", "value"),
    [
        ("id_token_algorithms", ["RS256", "ES256"]),
        ("id_token_leeway", 0.0),
        ("discovery_cache_seconds", 0.0),
        ("entitlement_pattern", r"urn:x:(?P<group>[a-z]+)"),
        ("entitlement_claim", ""),
    ],
)
def test_good_settings_are_kept(trait: str, value: Any) -> None:
    assert getattr(settings(**{trait: value}), trait) == value


def test_the_defaults() -> None:
    defaults = OIDCSettings()
    assert defaults.id_token_algorithms == list(DEFAULT_ALGORITHMS)
    assert (defaults.id_token_leeway, defaults.discovery_cache_seconds) == (60, 3600)
    assert defaults.entitlement_claim == "eduperson_entitlement"
    assert defaults.entitlement_pattern == EGI_ENTITLEMENT_PATTERN
    assert defaults.logout_from_provider is True
    assert defaults.post_logout_redirect_uri == ""
