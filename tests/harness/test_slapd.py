"""slapd answers binds and group searches, over plain LDAP, StartTLS and LDAPS."""

import ssl

import pytest
from ldap3 import SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPBindError

from tests.support.slapd import Directory


def service(directory: Directory, **server_kwargs: object) -> Connection:
    server = Server(directory.host, port=directory.port, connect_timeout=5, **server_kwargs)  # type: ignore[arg-type]
    return Connection(
        server, directory.service_dn, directory.service_password, auto_bind=True, receive_timeout=5
    )


def test_user_bind_and_member_of(directory: Directory) -> None:
    user = Connection(
        Server(directory.host, port=directory.port),
        directory.user_dn("alice"),
        "alice-pw",
        auto_bind=True,
    )
    assert user.extend.standard.who_am_i() == f"dn:{directory.user_dn('alice')}"
    user.unbind()

    conn = service(directory)
    conn.search(directory.base_dn, "(uid=alice)", SUBTREE, attributes=["memberOf", "mail"])
    (entry,) = conn.entries
    assert entry.mail.value == "alice@example.org"
    # Filled by the memberof overlay from groupOfNames membership at ldapadd time.
    assert set(entry.memberOf.values) == {
        directory.group_dn("researchers"),
        directory.group_dn("hub-admins"),
        directory.group_dn("eo-scientists"),
    }
    conn.unbind()


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ("(&(objectClass=groupOfUniqueNames)(uniqueMember={carol}))", {"climate"}),
        ("(&(objectClass=posixGroup)(memberUid=carol))", {"staff"}),
        ("(&(objectClass=groupOfNames)(member={sentinel}))", {"eo-scientists"}),
    ],
    ids=["groupOfUniqueNames", "posixGroup", "nested-group"],
)
def test_group_kinds(directory: Directory, filter_: str, expected: set[str]) -> None:
    conn = service(directory)
    query = filter_.format(
        carol=directory.user_dn("carol"), sentinel=directory.group_dn("sentinel-team")
    )
    conn.search(f"ou=groups,{directory.base_dn}", query, SUBTREE, attributes=["cn"])
    assert {e.cn.value for e in conn.entries} == expected
    conn.unbind()


def test_wrong_password_and_anonymous_read_refused(directory: Directory) -> None:
    server = Server(directory.host, port=directory.port)
    with pytest.raises(LDAPBindError):
        Connection(server, directory.user_dn("alice"), "wrong", auto_bind=True)
    anonymous = Connection(server, auto_bind=True)
    anonymous.search(directory.base_dn, "(uid=alice)", SUBTREE)
    assert anonymous.entries == []


def test_starttls_and_ldaps_verify_the_generated_ca(directory: Directory) -> None:
    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(directory.tls.ca_cert))
    conn = Connection(
        Server(directory.host, port=directory.port, tls=tls),
        directory.user_dn("bob"),
        "bob-pw",
    )
    conn.open()
    assert conn.start_tls()
    assert conn.bind()
    conn.unbind()

    secure = Connection(
        Server(directory.host, port=directory.ldaps_port, use_ssl=True, tls=tls),
        directory.user_dn("carol"),
        "carol-pw",
        auto_bind=True,
    )
    assert secure.extend.standard.who_am_i() == f"dn:{directory.user_dn('carol')}"
    secure.unbind()


def test_ldaps_rejects_an_untrusted_certificate(directory: Directory) -> None:
    # The system trust store does not know the throwaway CA, so verification must fail.
    tls = Tls(validate=ssl.CERT_REQUIRED)
    conn = Connection(
        Server(
            directory.host, port=directory.ldaps_port, use_ssl=True, tls=tls, connect_timeout=5
        ),
        directory.user_dn("carol"),
        "carol-pw",
    )
    with pytest.raises(Exception, match=r"(?i)certificate|socket ssl wrapping"):
        conn.open()
