"""Reading claims: dotted paths, string lists, entitlement roles and the groups claim."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from eohub.auth.oidc.claims import claim_at, claimed_groups, entitlement_roles, string_list
from eohub.domain.identity.entitlements import EGI_ENTITLEMENT_PATTERN

INFO = {
    "sub": "123",
    "oauth_user": {"groups": ["climate", "ocean"], "profile": {"name": "Ada"}},
    "flat": "x",
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("sub", "123"),
        ("oauth_user.groups", ["climate", "ocean"]),
        ("oauth_user.profile.name", "Ada"),
        ("missing", None),
        ("oauth_user.missing.deeper", None),
        ("flat.deeper", None),  # a string has no keys
        ("oauth_user.groups.0", None),  # nor has a list
    ],
)
def test_claim_at(path: str, value: Any) -> None:
    assert claim_at(INFO, path) == value


@pytest.mark.parametrize(
    ("value", "strings"),
    [
        (None, []),
        ("climate", ["climate"]),
        ("", [""]),
        (["a", "b"], ["a", "b"]),
        (("a", 1, None, "b"), ["a", "b"]),  # what is not a string is left out
        ({"a": 1}, []),  # a mapping is not a list of names
        (42, []),
        (True, []),
    ],
)
def test_string_list(value: Any, strings: list[str]) -> None:
    assert string_list(value) == strings


EGI = re.compile(EGI_ENTITLEMENT_PATTERN)
CLIMATE = "urn:mace:egi.eu:group:vo.climate.eu"


def rename(mapping: Mapping[str, Iterable[str]]) -> Any:
    def resolve(paths: Iterable[str]) -> frozenset[str]:
        return frozenset(name for path in paths for name in mapping.get(path, ()))

    return resolve


def test_entitlement_roles_follow_their_group_through_the_mapping() -> None:
    values = [
        f"{CLIMATE}:role=manager#aai.egi.eu",
        f"{CLIMATE}#aai.egi.eu",
        "urn:mace:egi.eu:group:vo.ocean.eu:sub:role=member#aai.egi.eu",
        "urn:mace:egi.eu:group:vo.dropped.eu#aai.egi.eu",
        "not an entitlement",
    ]
    resolve = rename(
        {
            "vo.climate.eu": ["climate"],
            "vo.ocean.eu:sub": ["ocean", "climate"],
        }
    )
    paths, roles = entitlement_roles(values, EGI, resolve)
    assert sorted(paths) == ["vo.climate.eu", "vo.dropped.eu", "vo.ocean.eu:sub"]
    assert roles == {
        "climate": frozenset({"manager", "member"}),
        "ocean": frozenset({"member"}),
    }


def test_no_entitlements_no_roles() -> None:
    assert entitlement_roles([], EGI, rename({})) == ([], {})


async def async_groups(state: Mapping[str, Any]) -> list[str]:
    return ["from", "a", "coroutine", state["sub"]]


@pytest.mark.parametrize(
    ("key", "groups"),
    [
        ("oauth_user.groups", ["climate", "ocean"]),
        ("oauth_user.profile.name", ["Ada"]),
        ("oauth_user.missing", []),  # no groups claim: no groups, no error
        (lambda state: state["oauth_user"]["groups"][:1], ["climate"]),
        (lambda state: None, []),
        (async_groups, ["from", "a", "coroutine", "123"]),
    ],
)
async def test_claimed_groups(key: Any, groups: list[str]) -> None:
    assert await claimed_groups(key, INFO) == groups
