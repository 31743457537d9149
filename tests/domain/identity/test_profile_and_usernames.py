"""The auth_state profile round-trips; login names are folded and checked."""

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.identity.profile import AUTH_STATE_KEY, UserProfile
from eohub.domain.identity.usernames import (
    DEFAULT_USERNAME_PATTERN,
    login_name_problem,
    normalize_login_name,
)

PATTERN = re.compile(DEFAULT_USERNAME_PATTERN)


def test_profile_round_trips_through_json() -> None:
    profile = UserProfile(
        username="alice",
        source="ldap",
        display_name="Alice Liddell",
        email="alice@example.org",
        uid_number=10001,
        gid_number=10001,
        home_directory="/home/alice",
        groups=frozenset({"researchers", "eo"}),
        pi_of=frozenset({"eo"}),
        group_roles={"eo": frozenset({"member", "manager"})},
    )
    state = json.loads(json.dumps({AUTH_STATE_KEY: profile.to_auth_state()}))
    assert state[AUTH_STATE_KEY]["git"] == {"name": "Alice Liddell", "email": "alice@example.org"}
    assert state[AUTH_STATE_KEY]["groups"] == ["eo", "researchers"]
    assert UserProfile.from_auth_state(state) == profile


@pytest.mark.parametrize("state", [None, {}, {"eohub": "nope"}, {"other": {}}])
def test_no_profile(state: object) -> None:
    assert UserProfile.from_auth_state(state) is None  # type: ignore[arg-type]


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
