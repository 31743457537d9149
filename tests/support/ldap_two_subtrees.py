"""A slapd with the test directory plus a second subtree holding a same-named group.

``ou=partners`` has its own ``cn=climate`` (groupOfNames): bob is in both climates
(the one in ``ou=groups`` and this one), mallory only in this one. Tests of DN entries
in allowed/admin groups and of same-named groups use it; the shared ``directory``
fixture's data is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .process import ServiceProcess
from .slapd import BASE_DN, Directory, start_slapd

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
PARTNER_GROUPS = f"ou=groups,ou=partners,{BASE_DN}"
PARTNER_CLIMATE = f"cn=climate,{PARTNER_GROUPS}"

PARTNERS_LDIF = f"""\
dn: ou=partners,{BASE_DN}
objectClass: organizationalUnit
ou: partners

dn: {PARTNER_GROUPS}
objectClass: organizationalUnit
ou: groups

dn: {PARTNER_CLIMATE}
objectClass: groupOfNames
cn: climate
description: a partner project's group: same name as cn=climate,ou=groups
member: uid=bob,ou=people,{BASE_DN}
member: uid=mallory,ou=people,{BASE_DN}
"""


def start_two_subtrees(workdir: Path) -> tuple[ServiceProcess, Directory]:
    """slapd loaded with tests/data/*.ldif, then the partners subtree."""
    extra = workdir / "partners.ldif"
    workdir.mkdir(parents=True, exist_ok=True)
    extra.write_text(PARTNERS_LDIF)
    return start_slapd(workdir / "slapd", [*sorted(DATA_DIR.glob("*.ldif")), extra])


@pytest.fixture(scope="module")
def two_subtrees(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Directory]:
    """The directory with a second ``cn=climate`` under ``ou=partners``."""
    proc, directory = start_two_subtrees(tmp_path_factory.mktemp("two-subtrees"))
    yield directory
    proc.stop()
