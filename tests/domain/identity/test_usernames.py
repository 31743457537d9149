"""Login names are folded and checked."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.identity.usernames import (
    DEFAULT_USERNAME_PATTERN,
    login_name_problem,
    normalize_login_name,
)

PATTERN = re.compile(DEFAULT_USERNAME_PATTERN)


@pytest.mark.parametrize(
    ("typed", "normalized", "problem"),
    [
        ("Alice", "alice", None),
        ("  bob  ", "bob", None),
        ("\uff41\uff4c\uff49\uff43\uff45", "alice", None),  # full-width letters fold
        ("", "", "empty user name"),
        ("*", "*", "does not match"),
        ("alice)(uid=*", "alice)(uid=*", "does not match"),
        ("a,b", "a,b", "does not match"),
        ("a+b", "a+b", "does not match"),
        ("a=b", "a=b", "does not match"),
        ("a\x00b", "a\x00b", "does not match"),
        ("\u0430lice", "\u0430lice", "does not match"),  # Cyrillic a: no fold, refused
        ("x" * 65, "x" * 65, "does not match"),
    ],
)
def test_login_names(typed: str, normalized: str, problem: str | None) -> None:
    name = normalize_login_name(typed)
    assert name == normalized
    found = login_name_problem(name, PATTERN)
    assert (found is None) if problem is None else (problem in (found or ""))


@given(st.text(max_size=100))
def test_accepted_names_never_carry_ldap_metacharacters(typed: str) -> None:
    name = normalize_login_name(typed)
    if login_name_problem(name, PATTERN) is None:
        assert not set(name) & set('*()\\\x00,+=<>;"#/ ')


def test_lowercasing_is_optional() -> None:
    assert normalize_login_name("  Alice\uff22 ", lowercase=False) == "AliceB"


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("a", True),
        ("0day", True),
        ("a.b_c-d", True),
        ("x" * 64, True),
        ("-alice", False),  # must start with a letter or digit
        (".alice", False),
        ("Alice", False),  # the default pattern is lowercase only
        ("al ice", False),
    ],
)
def test_the_default_pattern(name: str, allowed: bool) -> None:
    assert (login_name_problem(name, PATTERN) is None) is allowed


def test_a_custom_pattern_is_matched_in_full() -> None:
    pattern = re.compile(r"[A-Z]+")
    assert login_name_problem("ABC", pattern) is None
    assert login_name_problem("ABCd", pattern) == "user name does not match the allowed pattern"
    assert login_name_problem("", pattern) == "empty user name"
