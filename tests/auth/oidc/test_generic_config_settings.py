"""GenericOAuthenticator settings in eohub: which section wins, what is refused and
why, the warnings that name eohub's trait, the user-name pattern scoped claims get, and
where the issuer is looked for."""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import pytest
from tornado.web import HTTPError
from traitlets import TraitError
from traitlets.config import Config

from eohub.auth.oidc.authenticator import OIDCAuthenticator
from eohub.auth.oidc.generic import issuer_candidates
from eohub.domain.identity.usernames import DEFAULT_USERNAME_PATTERN, EMAIL_LIKE_USERNAME_PATTERN
from tests.auth.oidc.test_generic_config import (
    callable_username,
    keycloak,
    login,
    provider,
    section,
)
from tests.support.oidc import OIDCProvider
from tests.support.tools import REPO_ROOT

__all__ = ["provider"]  # the module-scoped provider fixture, shared


def test_the_oidc_section_wins_over_the_generic_one(provider: OIDCProvider) -> None:
    config = Config(section(keycloak(provider), "GenericOAuthenticator"))
    config.OIDCAuthenticator.allowed_groups = {"hub-admins"}
    config.OAuthenticator.login_service = "ignored: the subclass sections come later"
    authenticator = OIDCAuthenticator(config=config)
    assert authenticator.allowed_groups == {"hub-admins"}
    assert authenticator.login_service == "Keycloak"
    assert authenticator.auth_state_groups_key == "oauth_user.groups"


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"allowed_scopes": ["email"]}, "allowed_scopes is not supported: eohub decides"),
        ({"authorize_url": ""}, "issuer must be set to the provider's issuer URL (or"),
        ({"userdata_url": ""}, "userdata_url must be set when issuer is not"),
    ],
)
def test_what_eohub_cannot_honour_stops_the_start_with_the_reason(
    provider: OIDCProvider, settings: dict[str, Any], message: str
) -> None:
    config = {**keycloak(provider), **settings}
    authenticator = OIDCAuthenticator(config=Config(section(config, "GenericOAuthenticator")))
    with pytest.raises(ValueError, match=re.escape(message)):
        authenticator.check_allow_config()


@pytest.mark.parametrize(
    "claim", ["email", "voperson_id", "eduperson_principal_name", "eppn", "upn"]
)
def test_scoped_user_names_get_an_email_like_pattern_said_once(
    provider: OIDCProvider, claim: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = {**keycloak(provider), "username_claim": claim}
    with caplog.at_level(logging.INFO, logger="eohub"):
        authenticator = OIDCAuthenticator(config=Config(section(config, "GenericOAuthenticator")))
        authenticator.check_allow_config()
    assert authenticator.login_name_pattern == EMAIL_LIKE_USERNAME_PATTERN
    (record,) = [r for r in caplog.records if "login_name_pattern" in r.getMessage()]
    assert record.levelno == logging.INFO
    line = record.getMessage()
    assert f"from {claim!r}" in line
    assert EMAIL_LIKE_USERNAME_PATTERN in line
    assert "set OIDCAuthenticator.login_name_pattern" in line
    for name in ("alice@example.org", "0a1b2c3d" * 8 + "@egi.eu", "j.doe+hub@uni-x.ac.uk"):
        assert authenticator.checked_login_name(name.upper()) == (name, None)
    for name in ("alice", "a/b@example.org", "a%b@example.org", "x@", "@egi.eu"):
        assert authenticator.checked_login_name(name)[1] is not None, name


@pytest.mark.parametrize(
    ("settings", "pattern"),
    [
        ({"username_claim": "email", "login_name_pattern": r"[a-z]+@example\.org"}, "example"),
        ({"username_claim": "preferred_username"}, DEFAULT_USERNAME_PATTERN),
        ({"username_claim": callable_username}, DEFAULT_USERNAME_PATTERN),
    ],
)
def test_the_admins_pattern_or_the_default_is_kept_silently(
    provider: OIDCProvider,
    settings: dict[str, Any],
    pattern: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {**keycloak(provider), **settings}
    with caplog.at_level(logging.INFO, logger="eohub"):
        authenticator = OIDCAuthenticator(config=Config(section(config, "GenericOAuthenticator")))
        authenticator.check_allow_config()
    assert pattern in authenticator.login_name_pattern
    assert "login_name_pattern" not in caplog.text


async def test_a_callable_whose_names_the_pattern_refuses_says_which_setting(
    provider: OIDCProvider, caplog: pytest.LogCaptureFixture
) -> None:
    config = {**keycloak(provider), "username_claim": lambda info: info["email"]}
    authenticator = OIDCAuthenticator(config=Config(section(config, "GenericOAuthenticator")))
    authenticator.check_allow_config()
    with caplog.at_level(logging.WARNING, logger="eohub"), pytest.raises(HTTPError) as refused:
        await login(authenticator, "alice")
    assert refused.value.status_code == 403
    assert "does not match the allowed pattern" in str(refused.value.log_message)
    (line,) = [r.getMessage() for r in caplog.records if "alice@example.org" in r.getMessage()]
    assert "widen OIDCAuthenticator.login_name_pattern" in line
    assert DEFAULT_USERNAME_PATTERN in line


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"scope": ["profile", "email"]}, "scope must include 'openid': eohub logs in with"),
        ({"manage_groups": False}, "claim_groups_key requires OIDCAuthenticator.manage_groups"),
    ],
)
def test_settings_refused_as_they_load(
    provider: OIDCProvider, settings: dict[str, Any], message: str
) -> None:
    config = Config(section({**keycloak(provider), **settings}, "GenericOAuthenticator"))
    with pytest.raises((TraitError, ValueError), match=re.escape(message)):
        OIDCAuthenticator(config=config)


def test_renamed_settings_warn_once_naming_the_eohub_trait(
    provider: OIDCProvider, caplog: pytest.LogCaptureFixture
) -> None:
    config = {
        **keycloak(provider),
        "extra_params": {"prompt": "login"},
        "validate_server_cert": False,
    }
    with caplog.at_level(logging.WARNING):
        authenticator = OIDCAuthenticator(config=Config(section(config, "GenericOAuthenticator")))
        authenticator.check_allow_config()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for old, new in [
        ("claim_groups_key", "auth_state_groups_key"),
        ("extra_params", "token_params"),
    ]:
        named = [w for w in warnings if f"OIDCAuthenticator.{old} is deprecated" in w]
        assert len(named) == 1, warnings
        assert f"use OIDCAuthenticator.{new} instead" in named[0]
    assert authenticator.token_params == {"prompt": "login"}
    assert authenticator.validate_server_cert is False
    assert any("impersonate it and log in as any user" in w for w in warnings)
    (no_issuer,) = [w for w in warnings if "issuer is not set" in w]
    assert "verifies ID tokens; if none does, logins run as plain OAuth 2" in no_issuer


@pytest.mark.parametrize(
    ("url", "candidates"),
    [
        (
            "https://kc.example.org/realms/r/protocol/openid-connect/auth",
            [
                "https://kc.example.org/realms/r/protocol/openid-connect",
                "https://kc.example.org/realms/r/protocol",
                "https://kc.example.org/realms/r",
                "https://kc.example.org/realms",
                "https://kc.example.org",
            ],
        ),
        ("http://127.0.0.1:9000/auth", ["http://127.0.0.1:9000"]),
        ("https://idp.example.org/", ["https://idp.example.org"]),
        ("ftp://idp.example.org/auth", []),
        ("/relative/auth", []),
    ],
)
def test_issuer_candidates_stay_on_the_authorize_urls_origin(
    url: str, candidates: list[str]
) -> None:
    assert issuer_candidates(url) == candidates


def test_the_how_tos_before_and_after_configs_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OIDC_CLIENT_SECRET", "from-the-environment")
    text = (REPO_ROOT / "docs" / "how-to" / "migrate-authenticators.md").read_text()
    generic = text[text.index("## From GenericOAuthenticator") :]
    before, after = [
        block
        for block in re.findall(r"```python\n(.*?)```", generic, re.DOTALL)
        if "client_id" in block
    ]
    for source in (before, after):
        config = Config()
        exec(source, {"c": config, "os": os})  # noqa: S102 - our own docs, as a hub would
        authenticator = OIDCAuthenticator(config=config)
        authenticator.check_allow_config()
        assert authenticator.allowed_groups == {"researchers"}
        assert authenticator.admin_groups == {"hub-admins"}
        assert authenticator.auth_state_groups_key == "oauth_user.groups"
    assert "generic-oauth" in before
    assert 'authenticator_class = "eohub-oidc"' in after


def _without_claim(provider: OIDCProvider) -> dict[str, Any]:
    return {k: v for k, v in keycloak(provider).items() if k != "username_claim"}


CLAIM_UNSET = "OIDCAuthenticator.username_claim is not set"


@pytest.mark.parametrize(
    ("section_name", "settings", "warned"),
    [
        # GenericOAuthenticator's own section, claim left to the default: said once.
        ("GenericOAuthenticator", {}, True),
        # Endpoints and no issuer on eohub's section: a GenericOAuthenticator config.
        ("OIDCAuthenticator", {}, True),
        ("GenericOAuthenticator", {"username_claim": "preferred_username"}, False),
        ("GenericOAuthenticator", {"username_claim": "username"}, False),
        ("GenericOAuthenticator", {"username_key": "preferred_username"}, False),
        ("OAuthenticator", {"username_claim": "email"}, False),
    ],
)
def test_a_generic_config_without_username_claim_is_warned_once(
    provider: OIDCProvider,
    section_name: str,
    settings: dict[str, Any],
    warned: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = Config(section(_without_claim(provider), section_name))
    for name, value in settings.items():
        config[section_name][name] = value
    with caplog.at_level(logging.WARNING, logger="eohub"):
        OIDCAuthenticator(config=config).check_allow_config()
    lines = [r.getMessage() for r in caplog.records if CLAIM_UNSET in r.getMessage()]
    assert len(lines) == (1 if warned else 0)
    if warned:
        assert "'preferred_username'" in lines[0]
        assert "'username'" in lines[0]
        assert "Set username_claim explicitly" in lines[0]


def test_an_issuer_config_or_the_shared_env_variable_is_not_warned(
    provider: OIDCProvider, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer_config = {
        "issuer": provider.issuer,
        "client_id": "generic-basic",
        "client_secret": "x",
        "oauth_callback_url": "http://127.0.0.1:8000/hub/oauth_callback",
    }
    with caplog.at_level(logging.WARNING, logger="eohub"):
        OIDCAuthenticator(config=Config({"OIDCAuthenticator": issuer_config})).check_allow_config()
        # GenericOAuthenticator reads OAUTH2_USERNAME_KEY too: both then agree.
        monkeypatch.setenv("OAUTH2_USERNAME_KEY", "preferred_username")
        config = Config(section(_without_claim(provider), "GenericOAuthenticator"))
        OIDCAuthenticator(config=config).check_allow_config()
    assert CLAIM_UNSET not in caplog.text


async def test_the_warned_default_names_users_by_preferred_username(
    provider: OIDCProvider,
) -> None:
    config = Config(section(_without_claim(provider), "GenericOAuthenticator"))
    authenticator = OIDCAuthenticator(config=config)
    authenticator.check_allow_config()
    bob = await login(authenticator, "bob")
    assert bob.model is not None
    assert bob.model["name"] == "bob"  # the provider's preferred_username
