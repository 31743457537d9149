"""The docs' config reference is generated from entry points, one page per class."""

import importlib
import importlib.util
import sys
from pathlib import Path

from tests.support.tools import REPO_ROOT

spec = importlib.util.spec_from_file_location(
    "config_reference", REPO_ROOT / "docs/_ext/config_reference.py"
)
assert spec is not None
assert spec.loader is not None
config_reference = importlib.util.module_from_spec(spec)
# dataclasses look their module up in sys.modules while the class is created.
sys.modules[spec.name] = config_reference
spec.loader.exec_module(config_reference)
Entry = config_reference.Entry

LDAP = Entry("jupyterhub.authenticators", "eohub-ldap", "eohub.auth.ldap:LDAPAuthenticator")
KUBE = Entry("jupyterhub.spawners", "eohub-kube", "eohub.spawner.kube:QuotaKubeSpawner")


def test_a_class_page_documents_every_trait_through_autoconfigurable() -> None:
    page = config_reference.class_page(LDAP)
    assert page.startswith("# LDAPAuthenticator\n")
    assert ".. autoconfigurable:: eohub.auth.ldap.LDAPAuthenticator" in page
    assert 'c.JupyterHub.authenticator_class = "eohub-ldap"' in page
    assert 'c.JupyterHub.spawner_class = "eohub-kube"' in config_reference.class_page(KUBE)
    service = Entry(
        "jupyterhub.services", "eohub-accounting", "eohub.accounting.app:AccountingService"
    )
    assert "`c.AccountingService.<option>`" in config_reference.class_page(service)


def test_the_index_lists_classes_by_group(tmp_path: Path) -> None:
    config_reference.write_reference(tmp_path, [LDAP, KUBE])
    index = (tmp_path / "index.md").read_text()
    assert index.index("## Authenticators") < index.index("## Spawners")
    assert "[`eohub-kube`: eohub.spawner.kube.QuotaKubeSpawner](eohub-kube.md)" in index
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "eohub-kube.md",
        "eohub-ldap.md",
        "index.md",
    ]

    # A class that is no longer registered loses its page on the next build.
    config_reference.write_reference(tmp_path, [KUBE])
    assert not (tmp_path / "eohub-ldap.md").exists()


def test_the_installed_distribution_is_read() -> None:
    # Every entry eohub registers in a jupyterhub.* group must name an importable class.
    for entry in config_reference.eohub_entries():
        module, _, cls = entry.target.partition(":")
        assert hasattr(importlib.import_module(module), cls), entry
    empty = config_reference.index_page([])
    assert "No eohub class is registered" in empty


def test_inherited_help_links_become_plain_text() -> None:
    plain = config_reference.plain_inherited_links
    assert plain("a `access token`_ here") == "a access token here"
    assert (
        plain("see `RFC 7636 <https://x.org/rfc7636>`_.")
        == "see `RFC 7636 <https://x.org/rfc7636>`_."
    )
    assert plain(":external:py:class:`tornado.httpclient.HTTPRequest`") == (
        "``tornado.httpclient.HTTPRequest``"
    )
    assert plain("an anonymous `link <https://x>`__") == "an anonymous `link <https://x>`__"
    assert plain("see :ref:`templates` for more") == "see ``templates`` for more"
