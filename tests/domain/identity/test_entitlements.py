"""Entitlement URN parsing: EGI Check-in's format, tables and properties."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eohub.domain.identity.entitlements import (
    EGI_ENTITLEMENT_PATTERN,
    Entitlement,
    compile_entitlement_pattern,
    parse_entitlement,
    roles_by_group,
)
from eohub.domain.identity.groups import GroupConfigError

EGI = compile_entitlement_pattern(EGI_ENTITLEMENT_PATTERN)


@pytest.mark.parametrize(
    ("urn", "expected"),
    [
        (
            "urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu",
            Entitlement("vo.example.org", "member", "aai.egi.eu"),
        ),
        (
            "urn:mace:egi.eu:group:vo.example.org:climate:role=manager#aai.egi.eu",
            Entitlement("vo.example.org:climate", "manager", "aai.egi.eu"),
        ),
        (
            "urn:mace:egi.eu:group:vo.example.org:a:b:c#aai.egi.eu",
            Entitlement("vo.example.org:a:b:c", "member", "aai.egi.eu"),
        ),
        ("urn:mace:egi.eu:group:vo.example.org", Entitlement("vo.example.org", "member", "")),
        ("urn:mace:egi.eu:group:", None),
        ("urn:mace:egi.eu:role:vo.example.org", None),
        ("urn:geant:example.org:group:vo#x", None),
        ("prefix urn:mace:egi.eu:group:vo#x", None),
        ("urn:mace:egi.eu:group:vo:role=a:role=b#x", None),
    ],
)
def test_egi_urns(urn: str, expected: Entitlement | None) -> None:
    assert parse_entitlement(urn, EGI) == expected


def test_roles_are_collected_per_group() -> None:
    values = [
        "urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu",
        "urn:mace:egi.eu:group:vo.example.org:role=manager#aai.egi.eu",
        "urn:mace:egi.eu:group:other.org#aai.egi.eu",
        "not an entitlement",
    ]
    assert roles_by_group(values, EGI) == {
        "vo.example.org": {"member", "manager"},
        "other.org": {"member"},
    }


def test_a_custom_pattern_for_another_infrastructure() -> None:
    geant = compile_entitlement_pattern(r"urn:geant:example\.org:group:(?P<group>[^#]+)#.*")
    assert parse_entitlement("urn:geant:example.org:group:astro#idp", geant) == Entitlement(
        "astro", "member", ""
    )


@pytest.mark.parametrize(("pattern", "message"), [("(", "invalid"), ("urn:(.*)", "named group")])
def test_bad_patterns_are_refused(pattern: str, message: str) -> None:
    with pytest.raises(GroupConfigError, match=message):
        compile_entitlement_pattern(pattern)


segment = st.text(
    alphabet=st.characters(blacklist_characters=":#=", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
)


@given(
    parts=st.lists(segment, min_size=1, max_size=4),
    role=st.one_of(st.none(), segment),
    authority=st.one_of(st.none(), st.text(alphabet="abcdefghij.", min_size=1, max_size=10)),
)
def test_a_well_formed_urn_round_trips(
    parts: list[str], role: str | None, authority: str | None
) -> None:
    urn = "urn:mace:egi.eu:group:" + ":".join(parts)
    if role is not None:
        urn += f":role={role}"
    if authority is not None:
        urn += f"#{authority}"
    assert parse_entitlement(urn, EGI) == Entitlement(
        ":".join(parts), role or "member", authority or ""
    )


@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(value: str) -> None:
    result = parse_entitlement(value, EGI)
    assert result is None or value.startswith("urn:mace:egi.eu:group:")
    assert re.compile(EGI_ENTITLEMENT_PATTERN)  # the default pattern itself compiles
