"""Filters and DNs from untrusted values are escaped; bad templates fail at start-up."""

import pytest

from eohub.adapters.ldap.filters import (
    DEFAULT_GROUP_FILTER,
    DEFAULT_USER_FILTER,
    FilterTemplateError,
    ad_in_chain_filter,
    bind_dn,
    check_template,
    group_filter,
    user_filter,
)

F = frozenset


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", "(&(objectClass=person)(uid=alice))"),
        ("*", "(&(objectClass=person)(uid=\\2a))"),
        ("a)(uid=*", "(&(objectClass=person)(uid=a\\29\\28uid=\\2a))"),
        ("a\\b", "(&(objectClass=person)(uid=a\\5cb))"),
        ("a\x00b", "(&(objectClass=person)(uid=a\\00b))"),
    ],
)
def test_user_filter_escapes_rfc4515(username: str, expected: str) -> None:
    assert user_filter(DEFAULT_USER_FILTER, username) == expected


def test_group_filter_escapes_dn_and_name() -> None:
    query = group_filter(DEFAULT_GROUP_FILTER, user_dn="uid=a*,ou=p", username="a*")
    assert "(member=uid=a\\2a,ou=p)" in query
    assert "(memberUid=a\\2a)" in query
    assert "*" not in query


def test_active_directory_in_chain_filter() -> None:
    assert ad_in_chain_filter("CN=Smith\\, J (x),OU=Users,DC=ad,DC=example") == (
        "(&(objectClass=group)"
        "(member:1.2.840.113556.1.4.1941:=CN=Smith\\5c, J \\28x\\29,OU=Users,DC=ad,DC=example))"
    )


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", "uid=alice,ou=people,dc=example,dc=org"),
        ("a,ou=admins", "uid=a\\,ou\\=admins,ou=people,dc=example,dc=org"),
        ("a+cn=x", "uid=a\\+cn\\=x,ou=people,dc=example,dc=org"),
        (" a", "uid=\\ a,ou=people,dc=example,dc=org"),
        ("#a", "uid=\\#a,ou=people,dc=example,dc=org"),
    ],
)
def test_bind_dn_escapes_rfc4514(username: str, expected: str) -> None:
    assert bind_dn("uid={username},ou=people,dc=example,dc=org", username) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("(uid={user})", "unknown placeholders"),
        ("(objectClass=person)", "must contain"),
        ("(&(uid={username})", "unbalanced"),
        ("(uid={username}))(", "unbalanced"),
        ("(uid={username)", "not a valid template"),
    ],
)
def test_bad_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(FilterTemplateError, match=message):
        check_template(
            template, allowed=F({"username"}), required=F({"username"}), where="user_search_filter"
        )
