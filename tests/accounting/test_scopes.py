"""The service's custom scopes and drop-in 30's admins role, whose members are read late."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from eohub.accounting.scopes import (
    ACCESS,
    ADMIN,
    ADMINS_ROLE,
    CUSTOM_SCOPES,
    INGEST,
    READ,
    HubAdmins,
    admins_role,
)


def test_the_custom_scopes_are_described_and_admin_includes_read() -> None:
    assert list(CUSTOM_SCOPES) == [INGEST, READ, ADMIN]
    assert all(spec["description"] for spec in CUSTOM_SCOPES.values())
    assert CUSTOM_SCOPES[ADMIN]["subscopes"] == [READ]
    assert "subscopes" not in CUSTOM_SCOPES[INGEST]
    assert all(s.startswith("custom:eohub-accounting:") for s in CUSTOM_SCOPES)


def test_the_admins_role_grants_the_admin_scope_and_the_service_access() -> None:
    role = admins_role()
    assert role["name"] == ADMINS_ROLE == "eohub-accounting-admins"
    assert role["scopes"] == [ADMIN, ACCESS]
    assert repr(role["users"]) == "HubAdmins(groups=False)"
    assert repr(role["groups"]) == "HubAdmins(groups=True)"


def test_the_admins_are_nobody_before_the_hub_is_initialised() -> None:
    # Outside a running hub (as here) the lists are empty, and falsy.
    users = HubAdmins()
    assert (list(users), len(users), bool(users)) == ([], 0, False)


def test_a_deep_copy_stays_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyterhub.app import JupyterHub

    original = HubAdmins(groups=True)
    copied = copy.deepcopy(original)
    assert isinstance(copied, HubAdmins)
    assert copied is not original
    assert copied.groups is True
    # The copy reads the hub's admins when iterated, not when copied.
    authenticator = SimpleNamespace(admin_groups={"b", "a"}, manage_roles=False)
    hub = SimpleNamespace(authenticator=authenticator)
    monkeypatch.setattr(JupyterHub, "initialized", classmethod(lambda cls: True))
    monkeypatch.setattr(JupyterHub, "instance", classmethod(lambda cls: hub))
    assert list(copied) == ["a", "b"]


def test_the_admins_role_stays_empty_when_the_authenticator_manages_roles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from jupyterhub.app import JupyterHub

    from eohub.accounting.scopes import HubAdmins

    authenticator = SimpleNamespace(
        admin_users={"admin"}, admin_groups={"hub-admins"}, manage_roles=False
    )
    hub = SimpleNamespace(authenticator=authenticator)
    monkeypatch.setattr(JupyterHub, "initialized", classmethod(lambda cls: True))
    monkeypatch.setattr(JupyterHub, "instance", classmethod(lambda cls: hub))
    users, groups = HubAdmins(), HubAdmins(groups=True)
    assert (list(users), list(groups), bool(users)) == (["admin"], ["hub-admins"], True)
    # JupyterHub refuses load_roles members when the authenticator manages roles.
    authenticator.manage_roles = True
    assert (list(users), list(groups), bool(users), bool(groups)) == ([], [], False, False)
