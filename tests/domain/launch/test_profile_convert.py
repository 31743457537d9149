"""Converting a KubeSpawner profile list to eohub's launch config: tables of profile lists.

Every case's output must also parse as a launch config: the converter writes only what
:func:`parse_launch_config` accepts, and says in a warning what it could not write.
"""

from __future__ import annotations

from typing import Any

import pytest
from slugify import slugify

from eohub.domain.launch.config import LaunchConfig, parse_launch_config
from eohub.domain.launch.profile_convert import (
    Conversion,
    Route,
    convert_profiles,
    group_spellings,
)
from eohub.domain.launch.profile_reading import NO_CPU, NO_MEMORY, merge, requested
from eohub.domain.launch.profiles import parse_profile_list
from tests.domain.launch.profile_convert_cases import (
    CONVERTS,
    IMAGE,
    PROFILE,
    SMALL,
    WARNS,
    option,
    profile,
)


def convert(data: Any, base: dict[str, Any] | None = None, **kw: Any) -> Conversion:
    profiles = parse_profile_list(data, slugify)
    return convert_profiles(profiles, base=base, spellings=group_spellings(data), **kw)


def parsed(conversion: Conversion) -> LaunchConfig:
    data = conversion.launch_config()
    return parse_launch_config(
        data["environments"],
        data["sizes"],
        {},
        backend="kube",
        charge_groups=data.get("charge_groups", ()),
    )


@pytest.mark.parametrize(
    ("data", "base", "environments", "sizes"),
    [c[1:] for c in CONVERTS],
    ids=[c[0] for c in CONVERTS],
)
def test_what_converts(
    data: Any, base: dict[str, Any], environments: dict[str, Any], sizes: dict[str, Any]
) -> None:
    conversion = convert(data, base)
    assert conversion.warnings == ()
    assert conversion.environments == environments
    assert conversion.sizes == sizes
    assert set(parsed(conversion).environments) == set(environments)


@pytest.mark.parametrize(
    ("data", "base", "expected"), [c[1:] for c in WARNS], ids=[c[0] for c in WARNS]
)
def test_what_cannot_be_said_is_a_warning_naming_the_key(
    data: Any, base: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    conversion = convert(data, base)
    for where, words in expected:
        assert any(w.startswith(f"{where}: ") and words in w for w in conversion.warnings), (
            f"no warning at {where} saying {words!r}: {conversion.warnings}"
        )
    assert len(conversion.warnings) == len(expected), conversion.warnings
    parsed(conversion)  # what was written is still a valid launch config


def test_a_pod_that_requests_nothing_gets_the_smallest_size() -> None:
    conversion = convert([profile(overrides={"image": IMAGE})])
    assert conversion.sizes["pangeo"] == {
        "display_name": "0.001 CPU, 0.000977 GiB",
        "cpu": NO_CPU,
        "memory": NO_MEMORY,
    }


def test_a_size_only_some_groups_may_use_gets_an_environment_for_them() -> None:
    data = [
        profile(
            allowed_groups=["eo-ml", "climate"],
            profile_options={
                "res": {
                    "display_name": "Res",
                    "choices": {
                        "small": {"display_name": "S", "kubespawner_override": SMALL},
                        "gpu": {
                            "display_name": "G",
                            "allowed_groups": ["EO-ML"],
                            "kubespawner_override": {**SMALL, "cpu_guarantee": 4},
                        },
                    },
                }
            },
        )
    ]
    conversion = convert(data)
    groups = {n: e["allowed_groups"] for n, e in conversion.environments.items()}
    # Profiles compare group names casefolded, eohub exactly: every spelling is written.
    assert groups == {
        "pangeo-small": ["EO-ML", "climate", "eo-ml"],
        "pangeo-gpu": ["EO-ML", "eo-ml"],
    }
    assert [w.split(": ")[0] for w in conversion.warnings] == [f"{PROFILE}.profile_options.res"]


def test_a_group_no_level_allows_is_not_converted() -> None:
    data = [
        profile(
            allowed_groups=["a"],
            profile_options={"image": {**option(x={"image": IMAGE}), "allowed_groups": ["b"]}},
        ),
        profile("R"),
    ]
    conversion = convert(data)
    assert set(conversion.environments) == {"r"}
    assert any("no group is allowed at every level" in w for w in conversion.warnings)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            [{"allowed_groups": ["EO-ML"]}, {"x": {"allowed_groups": ["eo-ml", "B"]}}],
            {"eo-ml": ("EO-ML", "eo-ml"), "b": ("B",)},
        ),
        ({"p": {"allowed_groups": None}}, {}),
        ([], {}),
    ],
)
def test_group_spellings(data: Any, expected: dict[str, tuple[str, ...]]) -> None:
    assert group_spellings(data) == expected


def test_routes_say_where_each_profile_launch_lands() -> None:
    data = [
        profile(
            overrides={"image": IMAGE},
            profile_options={
                "image": option(a={"image": "quay.io/x/a:1"}),
                "res": option(small=SMALL, big={"cpu_guarantee": 2, "mem_guarantee": "2G"}),
            },
        )
    ]
    assert convert(data).routes == (
        Route("pangeo", {"image": "a", "res": "small"}, "pangeo-a", "small"),
        Route("pangeo", {"image": "a", "res": "big"}, "pangeo-a", "big"),
    )


@pytest.mark.parametrize(
    ("base", "overrides", "expected"),
    [
        ({"a": 1}, [{"a": 2}], {"a": 2}),
        ({"d": {"x": "1", "y": "2"}}, [{"d": {"y": None, "z": "3"}}], {"d": {"x": "1", "z": "3"}}),
        # As recursive_update: the emptied inner mapping stays, empty.
        ({"d": {"x": {"k": 1}}}, [{"d": {"x": {"k": None}}}], {"d": {"x": {}}}),
        ({"l": [1]}, [{"l": [2]}, {"l": [3]}], {"l": [3]}),
        ({"cpu_limit": 2}, [{"cpu_limit": None}], {"cpu_limit": None}),
        ({}, [{"d": {"x": None}}], {"d": {}}),
    ],
)
def test_merge_applies_overrides_as_kubespawner_does(
    base: dict[str, Any], overrides: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    assert merge(base, [(f"o{i}", o) for i, o in enumerate(overrides)]) == expected


@pytest.mark.parametrize(
    ("guarantee", "limit", "charge", "expected"),
    [
        (1, 2, "guarantee", 1),
        (1, 2, "limit", 2),
        (None, 2, "guarantee", 2),
        # KubeSpawner sends no request for a guarantee of 0: Kubernetes requests the limit.
        (0, 2, "guarantee", 2),
        (1, None, "limit", 1),
        (None, None, "guarantee", None),
    ],
)
def test_what_is_charged_of_a_guarantee_and_a_limit(
    guarantee: object, limit: object, charge: str, expected: object
) -> None:
    assert requested(guarantee, limit, charge) == expected
