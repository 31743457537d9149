"""Group mapping rules: tables of cases."""

import pytest

from eohub.domain.identity.groups import (
    GroupConfigError,
    GroupRule,
    canonical_groups,
    valid_group_name,
)

RULES = (
    GroupRule.parse({"pattern": r"cn=([^,]+),ou=groups,dc=example,dc=org", "replacement": r"\1"}),
    GroupRule.parse({"pattern": r"/projects/(?P<name>[\w-]+)", "replacement": r"\g<name>"}),
    GroupRule.parse({"pattern": r"offline_access|uma_authorization", "replacement": ""}),
)


@pytest.mark.parametrize(
    ("raw", "keep_unmatched", "expected"),
    [
        (["cn=climate,ou=groups,dc=example,dc=org"], True, {"climate"}),
        (["/projects/eo-sentinel", "/projects/x y"], True, {"eo-sentinel", "/projects/x y"}),
        (["offline_access", "uma_authorization", "staff"], True, {"staff"}),
        (["offline_access", "staff"], False, set()),
        (["cn=a,ou=groups,dc=example,dc=org", "unmapped"], False, {"a"}),
        (["", "  padded  ", "tab\there", "x" * 256], True, set()),
        (["dup", "dup"], True, {"dup"}),
    ],
)
def test_canonical_groups(raw: list[str], keep_unmatched: bool, expected: set[str]) -> None:
    assert canonical_groups(raw, RULES, keep_unmatched=keep_unmatched) == expected


def test_first_matching_rule_wins() -> None:
    rules = (
        GroupRule.parse({"pattern": r"admins", "replacement": "hub-admins"}),
        GroupRule.parse({"pattern": r".*", "replacement": ""}),
    )
    assert canonical_groups(["admins", "other"], rules) == {"hub-admins"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"pattern": "("}, "needs both"),
        ({"pattern": "(", "replacement": ""}, "invalid pattern"),
        ({"pattern": "a", "replacement": r"\1"}, "refers to group '1'"),
        ({"pattern": "(?P<x>a)", "replacement": r"\g<y>"}, "refers to group 'y'"),
        ({"pattern": "a", "replacement": "b", "replace": "c"}, "unknown keys"),
    ],
)
def test_bad_rules_fail_at_start_up_naming_the_problem(spec: dict[str, str], message: str) -> None:
    with pytest.raises(GroupConfigError, match=message) as info:
        GroupRule.parse(spec, where="LDAPAuthenticator.group_rules[2]")
    assert "LDAPAuthenticator.group_rules[2]" in str(info.value)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("climate", True),
        ("vo.example.org:climate", True),
        ("", False),
        (" x", False),
        ("a\x00b", False),
        ("é" * 255, True),
        ("é" * 256, False),
    ],
)
def test_valid_group_name(name: str, valid: bool) -> None:
    assert valid_group_name(name) is valid
