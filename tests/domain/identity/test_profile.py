"""The auth_state profile round-trips through JSON; other states hold no profile."""

import json

import pytest

from eohub.domain.identity.profile import AUTH_STATE_KEY, UserProfile


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
