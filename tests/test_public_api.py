"""The public imports, like oauthenticator's: the classes a hub admin names in a config."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest
from traitlets.utils.importstring import import_item

import eohub.auth
import eohub.spawner


def test_the_authenticators_import_from_eohub_auth() -> None:
    from eohub.auth import LDAPAuthenticator, OIDCAuthenticator
    from eohub.auth.ldap import LDAPAuthenticator as ldap_home
    from eohub.auth.oidc.authenticator import OIDCAuthenticator as oidc_home

    assert (LDAPAuthenticator, OIDCAuthenticator) == (ldap_home, oidc_home)


def test_the_spawners_import_from_eohub_spawner() -> None:
    from eohub.spawner import QuotaKubeSpawner, QuotaLocalSpawner, check_hub_config
    from eohub.spawner.kube import QuotaKubeSpawner as kube_home
    from eohub.spawner.local import QuotaLocalSpawner as local_home
    from eohub.spawner.settings import check_hub_config as settings_home

    assert (QuotaKubeSpawner, QuotaLocalSpawner, check_hub_config) == (
        kube_home,
        local_home,
        settings_home,
    )


@pytest.mark.parametrize(
    "dotted",
    [
        "eohub.auth.LDAPAuthenticator",
        "eohub.auth.OIDCAuthenticator",
        "eohub.spawner.QuotaKubeSpawner",
        "eohub.spawner.QuotaLocalSpawner",
    ],
)
def test_jupyterhub_can_load_the_dotted_names(dotted: str) -> None:
    # JupyterHub's authenticator_class and spawner_class take these strings.
    assert import_item(dotted).__name__ == dotted.rsplit(".", 1)[1]


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = eohub.auth.NoSuchAuthenticator
    with pytest.raises(AttributeError):
        _ = eohub.spawner.NoSuchSpawner


@pytest.mark.parametrize(
    ("group", "name"),
    [
        ("jupyterhub.authenticators", "eohub-ldap"),
        ("jupyterhub.authenticators", "eohub-oidc"),
        ("jupyterhub.spawners", "eohub-kube"),
        ("jupyterhub.spawners", "eohub-local"),
        ("jupyterhub.services", "eohub-accounting"),
    ],
)
def test_the_entry_points_load(group: str, name: str) -> None:
    (entry,) = importlib.metadata.entry_points(group=group, name=name)
    assert isinstance(entry.load(), type)


def test_the_local_spawner_and_ldap_load_without_kubernetes_or_oauthenticator() -> None:
    # Each class is imported on first use: a single-machine LDAP hub needs neither.
    code = (
        "import sys\n"
        "from eohub.spawner import QuotaLocalSpawner\n"
        "from eohub.auth import LDAPAuthenticator\n"
        "print(sorted(m for m in ('kubernetes_asyncio', 'kubespawner', 'oauthenticator')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
