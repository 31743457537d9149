"""OIDCAuthenticator's settings: unsafe ones refused, safe defaults, and the how-to
pages' configs (Keycloak, EGI Check-in) mapping groups as the pages say."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from traitlets import TraitError
from traitlets.config import Config

from eohub.auth.oidc.authenticator import OIDCAuthenticator
from tests.support.tools import REPO_ROOT


@pytest.mark.parametrize(
    ("trait", "value", "message"),
    [
        ("id_token_algorithms", ["RS256", "none"], "not an asymmetric"),
        ("id_token_algorithms", ["HS256"], "not an asymmetric"),
        ("id_token_algorithms", ["hs512"], "not an asymmetric"),
        ("id_token_algorithms", [], "must not be empty"),
        ("id_token_leeway", -1, "must be >= 0"),
        ("scope", ["profile", "email"], "must include 'openid'"),
        ("entitlement_pattern", r"urn:(.+)", "named group"),
        ("login_name_pattern", r"[a-z", "login_name_pattern"),
    ],
)
def test_unsafe_or_broken_settings_are_refused(trait: str, value: Any, message: str) -> None:
    with pytest.raises(TraitError, match=re.escape(message)):
        OIDCAuthenticator(config=Config({"OIDCAuthenticator": {trait: value}}))


def test_defaults_are_the_safe_ones() -> None:
    authenticator = OIDCAuthenticator()
    assert authenticator.enable_pkce is True
    assert authenticator.enable_auth_state is True
    assert "openid" in authenticator.scope
    assert authenticator.username_claim == "preferred_username"
    assert not {"none", "HS256"} & set(authenticator.id_token_algorithms)
    with pytest.raises(ValueError, match="issuer must be set"):
        authenticator.check_allow_config()


def how_to_config(page: str, blocks: tuple[int, ...]) -> Config:
    """The ``python`` blocks of a how-to page, run as a hub config file would be."""
    text = (REPO_ROOT / "docs" / "how-to" / page).read_text()
    code = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    config = Config()
    for index in blocks:
        exec(code[index], {"c": config})  # noqa: S102 - our own docs, as JupyterHub would
    return config


EGI_ENTITLEMENTS = [
    "urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu",
    "urn:mace:egi.eu:group:vo.example.org:climate:role=member#aai.egi.eu",
    "urn:mace:egi.eu:group:vo.example.org:climate:role=manager#aai.egi.eu",
    "urn:mace:egi.eu:group:vo.example.org:admins:hub-admins:role=member#aai.egi.eu",
    "urn:mace:egi.eu:group:vo.other.org:role=member#aai.egi.eu",
    "urn:mace:egi.eu:group:vo.example.org:ocean:role=manager#evil.example.org",
]


@pytest.mark.parametrize(
    ("page", "blocks", "user", "user_info", "groups", "admin", "pi_of"),
    [
        (
            "keycloak.md",
            (0,),
            "alice",
            {"groups": ["/projects/climate", "/researchers", "/hub-admins"]},
            {"climate", "researchers", "hub-admins"},
            True,
            ["climate"],  # pi_users
        ),
        (
            "keycloak.md",
            (0, 1),
            "bob",
            {"groups": [], "resource_access": {"jupyterhub": {"roles": ["hub-admins"]}}},
            {"hub-admins"},
            True,
            [],
        ),
        (
            "keycloak.md",
            (0, 2),
            "bob",
            {"groups": ["/projects/climate", "/projects/climate/managers", "/researchers"]},
            {"climate", "researchers"},
            False,
            ["climate"],  # the managers subgroup
        ),
        (
            "egi-checkin.md",
            (0,),
            "carol",
            {"eduperson_entitlement": EGI_ENTITLEMENTS},
            {"example-vo", "climate", "admins:hub-admins"},
            False,
            ["climate"],  # role=manager; the ocean one was asserted by someone else
        ),
    ],
)
def test_the_how_to_configs_map_groups_as_documented(
    monkeypatch: pytest.MonkeyPatch,
    page: str,
    blocks: tuple[int, ...],
    user: str,
    user_info: dict[str, Any],
    groups: set[str],
    admin: bool,
    pi_of: list[str],
) -> None:
    for name in ("OIDC_CLIENT_SECRET", "CHECKIN_CLIENT_ID", "CHECKIN_CLIENT_SECRET"):
        monkeypatch.setenv(name, "from-the-environment")
    authenticator = OIDCAuthenticator(config=how_to_config(page, blocks))
    model = asyncio.run(
        authenticator.update_auth_model(
            {"name": user, "admin": None, "auth_state": {"oauth_user": user_info}}
        )
    )
    assert set(model["groups"]) == groups
    assert model["admin"] is admin
    assert model["auth_state"]["eohub"]["pi_of"] == pi_of
    assert authenticator.check_allowed(user, model) is True
