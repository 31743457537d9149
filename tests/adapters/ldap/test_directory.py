"""LDAPDirectory: what a user's entry and groups say, and a search base a server lacks.

The connections under it, and how they fail over, are in ``test_connections.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eohub.adapters.ldap.directory import DirectoryGroup, DirectoryUnavailable, DirectoryUser
from tests.adapters.ldap.ldap_support import direct, ldap_directory
from tests.support.slapd import BASE_DN, SERVICE_DN, Directory, own_slapd
from tests.support.tools import DATA_DIR


def user_in(
    *groups: DirectoryGroup, dn: str = "uid=Bob,ou=People,dc=example,dc=org"
) -> DirectoryUser:
    return DirectoryUser(dn, "bob", "Bob", "bob@example.org", 1000, 1000, "/home/bob", groups)


def test_group_names_and_the_groups_a_user_leads() -> None:
    me = "uid=bob,ou=people,dc=example,dc=org"
    user = user_in(
        DirectoryGroup("cn=climate,ou=groups", "climate", frozenset({me})),
        DirectoryGroup("cn=ocean,ou=groups", "ocean", frozenset({"uid=carol,ou=people"})),
        DirectoryGroup("cn=ml,ou=groups", "ml", frozenset()),
    )
    assert user.group_names == ["climate", "ocean", "ml"]
    # The user's DN is compared whatever its case and the spaces after its commas.
    assert user.pi_of == ["climate"]
    assert user_in(*user.groups, dn="UID=bob, OU=people, DC=example, DC=org").pi_of == ["climate"]
    assert user_in(*user.groups, dn="uid=carol,ou=people").pi_of == ["ocean"]
    assert user_in().group_names == []


# A user search base that a server lacks: that server's trouble, never "no such user".


def without_people(workdir: Path) -> Path:
    """The test directory as a replica that is still loading it: only the service account."""
    keep = {
        f"dn: {BASE_DN}",
        f"dn: ou=services,{BASE_DN}",
        f"dn: {SERVICE_DN}",
    }
    blocks = (DATA_DIR / "10-directory.ldif").read_text().split("\n\n")
    ldif = workdir / "services-only.ldif"
    ldif.write_text("\n\n".join(b for b in blocks if keep & set(b.splitlines())) + "\n")
    return ldif


def test_a_missing_user_search_base_makes_the_directory_unavailable_not_the_user_gone(
    directory: Directory,
) -> None:
    missing = f"ou=missing,{directory.base_dn}"
    ldap = ldap_directory(directory, servers=(direct(directory),), user_search_base=missing)
    with pytest.raises(DirectoryUnavailable) as info:
        ldap.lookup("bob")
    assert missing in str(info.value)
    with pytest.raises(DirectoryUnavailable):
        ldap.authenticate("bob", "bob-pw")
    assert ldap.connections.idle() == []
    ldap.close()


def test_a_server_without_the_user_search_base_fails_over_to_one_that_has_it(
    directory: Directory, tmp_path: Path
) -> None:
    with own_slapd(tmp_path / "loading", [without_people(tmp_path)], tls=directory.tls) as loading:
        first, full = direct(loading.directory), direct(directory)
        ldap = ldap_directory(directory, servers=(first, full))
        user = ldap.lookup("bob")
        assert user is not None
        assert set(user.group_names) == {"researchers", "climate"}
        assert ldap.pool.order() == [full, first]  # the loading server backs off
        assert [lease.address for lease in ldap.connections.idle()] == [full]
        assert ldap.authenticate("alice", "alice-pw") is not None
        assert ldap.authenticate("alice", "wrong") is None  # refused, not unavailable
        ldap.close()
